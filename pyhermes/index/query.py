"""Filters over runs: Python objects that compile to one SQL condition with bound parameters.

Build them with :func:`arg`, :func:`flag`, :func:`info`, :data:`score`, :data:`run`
and combine them with ``&``, ``|`` and ``~``::

    flag("--doubledqn") & (arg("-lr") < 0.01) & (score.final_mean > 200)

Every filter also evaluates in memory (:meth:`Filter.matches`) against an
:class:`~pyhermes.storage.Experiment`, which is how hand-built lists answer.
Logic is two-valued: a comparison on a value a run does not have is false, and
its negation true.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, false, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from pyhermes import rundir
from pyhermes.errors import QueryError
from pyhermes.index.models import SUMMARY_COLUMNS, arg_table, info_table, run_table

if TYPE_CHECKING:
    from pyhermes.storage import Experiment

__all__ = [
    "Filter",
    "arg",
    "flag",
    "info",
    "score",
    "run",
    "has_args",
    "under",
    "as_filter",
    "everything",
    "sort_columns",
    "check_summary_field",
    "RUN_FIELDS",
]

COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

#: Run attributes that filters and sort keys may name, and their kinds.
RUN_FIELDS: dict[str, str] = {
    "identifier": "text",
    "path": "text",
    "script_name": "text",
    "experiment_name": "text",
    "commit_hash": "text",
    "comments": "text",
    "start_time": "time",
    "end_time": "time",
    "execution_time": "number",
    "job_idx": "number",
    "finished": "bool",
}


def check_summary_field(name: str) -> str:
    """Return ``name`` if it is a score-summary field.

    Raises:
        QueryError: it is not one; the message lists the valid names.
    """
    if name not in SUMMARY_COLUMNS:
        raise QueryError(
            f"unknown score summary {name!r}; expected one of {', '.join(SUMMARY_COLUMNS)}"
        )
    return name


class Filter:
    """A condition on runs. Combine with ``&``, ``|`` and ``~``."""

    def clause(self) -> ColumnElement[bool]:
        """Return the SQL condition on ``hermes_run`` (correlated subqueries for args and info)."""
        raise NotImplementedError

    def matches(self, experiment: Experiment) -> bool:
        """Evaluate the condition in memory for one run (reads its files if needed)."""
        raise NotImplementedError

    def __and__(self, other: Filter) -> Filter:
        return And((self, as_filter(other)))

    def __or__(self, other: Filter) -> Filter:
        return Or((self, as_filter(other)))

    def __invert__(self) -> Filter:
        return Not(self)

    def __bool__(self) -> bool:
        raise TypeError(
            "a pyhermes filter has no truth value: combine filters with &, | and ~, "
            "not with and, or, not (and write a < b < c as (a < b) & (b < c))"
        )


@dataclass(frozen=True, eq=False)
class _Everything(Filter):
    def clause(self) -> ColumnElement[bool]:
        return true()

    def matches(self, experiment: Experiment) -> bool:
        return True

    def __and__(self, other: Filter) -> Filter:
        return as_filter(other)

    def __repr__(self) -> str:
        return "everything"


everything: Filter = _Everything()


@dataclass(frozen=True, eq=False)
class And(Filter):
    parts: tuple[Filter, ...]

    def clause(self) -> ColumnElement[bool]:
        return and_(*(part.clause() for part in self.parts))

    def matches(self, experiment: Experiment) -> bool:
        return all(part.matches(experiment) for part in self.parts)

    def __repr__(self) -> str:
        return "(" + " and ".join(map(repr, self.parts)) + ")"


@dataclass(frozen=True, eq=False)
class Or(Filter):
    parts: tuple[Filter, ...]

    def clause(self) -> ColumnElement[bool]:
        return or_(*(part.clause() for part in self.parts))

    def matches(self, experiment: Experiment) -> bool:
        return any(part.matches(experiment) for part in self.parts)

    def __repr__(self) -> str:
        return "(" + " or ".join(map(repr, self.parts)) + ")"


@dataclass(frozen=True, eq=False)
class Not(Filter):
    part: Filter

    def clause(self) -> ColumnElement[bool]:
        return not_(self.part.clause())

    def matches(self, experiment: Experiment) -> bool:
        return not self.part.matches(experiment)

    def __repr__(self) -> str:
        return f"not {self.part!r}"


# --------------------------------------------------------------------------- exec args


def _number(value: Any) -> float | None:
    """The value as a float when it is a number (bool excluded), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        converted = rundir.convert_value(value.strip())
        if isinstance(converted, (int, float)):
            return float(converted)
    return None


def _arg_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(item) for item in value)
    return " ".join(str(value).split())


def _arg_values(experiment: Experiment, key: str) -> list[tuple[str | None, float | None]]:
    """(text, number) of every occurrence of ``key`` among the run's arguments."""
    occurrences = []
    for line in experiment.exec_arg_lines:
        line_key, texts = rundir.split_arg(line)
        if line_key != key:
            continue
        text = " ".join(texts) if texts else None
        occurrences.append((text, rundir.numeric_value(texts)))
    return occurrences


def _arg_exists(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    # An uncorrelated IN lets the database use the (raw, run_id) / (key, num) indexes once,
    # instead of probing the argument table for every run.
    return run_table.c.id.in_(select(arg_table.c.run_id).where(condition))


@dataclass(frozen=True, eq=False)
class ArgPresent(Filter):
    key: str

    def clause(self) -> ColumnElement[bool]:
        return _arg_exists(arg_table.c.key == self.key)

    def matches(self, experiment: Experiment) -> bool:
        return bool(_arg_values(experiment, self.key))

    def __repr__(self) -> str:
        return self.key


def _numeric_operand(value: Any) -> float | None:
    """A Python number compares numerically; strings (even ``"64"``) compare as text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


@dataclass(frozen=True, eq=False)
class ArgCompare(Filter):
    """``key op value``: a Python number compares with the option's number, anything else
    (strings, lists for multi-value options) with its text."""

    key: str
    op: str
    value: Any

    def clause(self) -> ColumnElement[bool]:
        compare = COMPARISONS[self.op]
        number = _numeric_operand(self.value)
        if number is not None and not math.isnan(number):
            condition = and_(arg_table.c.num.is_not(None), compare(arg_table.c.num, number))
        else:
            condition = and_(
                arg_table.c.value.is_not(None), compare(arg_table.c.value, _arg_text(self.value))
            )
        return _arg_exists(and_(arg_table.c.key == self.key, condition))

    def matches(self, experiment: Experiment) -> bool:
        compare = COMPARISONS[self.op]
        number = _numeric_operand(self.value)
        for text, num in _arg_values(experiment, self.key):
            if number is not None and not math.isnan(number):
                if num is not None and compare(num, number):
                    return True
            elif text is not None and compare(text, _arg_text(self.value)):
                return True
        return False

    def __repr__(self) -> str:
        return f"{self.key} {self.op} {self.value!r}"


@dataclass(frozen=True, eq=False)
class ArgIn(Filter):
    key: str
    values: tuple[Any, ...]

    def clause(self) -> ColumnElement[bool]:
        if not self.values:
            return false()
        return or_(*(ArgCompare(self.key, "==", value).clause() for value in self.values))

    def matches(self, experiment: Experiment) -> bool:
        return any(ArgCompare(self.key, "==", value).matches(experiment) for value in self.values)

    def __repr__(self) -> str:
        return f"{self.key} in {self.values!r}"


@dataclass(frozen=True, eq=False)
class HasArgs(Filter):
    """The run's exec-args set contains every one of ``raws`` (lines like ``-lr 0.001``)."""

    raws: frozenset[str]

    def clause(self) -> ColumnElement[bool]:
        if not self.raws:
            return true()
        return and_(*(_arg_exists(arg_table.c.raw == raw) for raw in sorted(self.raws)))

    def matches(self, experiment: Experiment) -> bool:
        return self.raws <= experiment.exec_args


def has_args(*raws: str) -> Filter:
    """Runs whose exec-args set contains all of ``raws`` (e.g. ``"-lr 0.001"``, ``"--doubledqn"``)."""
    return HasArgs(frozenset(" ".join(raw.split()) for raw in raws))


class _Comparisons:
    """``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` build filters through ``_compare``."""

    def _compare(self, op: str, value: Any) -> Filter:
        raise NotImplementedError

    def __eq__(self, value: Any) -> Filter:  # type: ignore[override]
        return self._compare("==", value)

    def __ne__(self, value: Any) -> Filter:  # type: ignore[override]
        return self._compare("!=", value)

    def __lt__(self, value: Any) -> Filter:
        return self._compare("<", value)

    def __le__(self, value: Any) -> Filter:
        return self._compare("<=", value)

    def __gt__(self, value: Any) -> Filter:
        return self._compare(">", value)

    def __ge__(self, value: Any) -> Filter:
        return self._compare(">=", value)

    __hash__ = None  # type: ignore[assignment]


class ArgRef(_Comparisons):
    """An exec-arg key (``arg("-lr")``) to compare: ``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``, :meth:`isin`."""

    def __init__(self, key: str) -> None:
        if not key or len(key.split()) != 1:
            raise QueryError(f"an exec-arg key is one word like '-lr' or '--doubledqn', not {key!r}")
        self.key = key

    def _compare(self, op: str, value: Any) -> Filter:
        return ArgCompare(self.key, op, value)

    def isin(self, values: Iterable[Any]) -> Filter:
        """Runs whose value of this key equals one of ``values``."""
        return ArgIn(self.key, tuple(values))

    def exists(self) -> Filter:
        """Runs that have this key (flag, positional or option)."""
        return ArgPresent(self.key)


def arg(key: str) -> ArgRef:
    """Refer to the exec-arg ``key`` (e.g. ``"-lr"``) for comparisons."""
    return ArgRef(key)


def flag(key: str) -> Filter:
    """Runs that have the flag or positional ``key`` (or an option of that key); negate with ``~``."""
    return ArgPresent(ArgRef(key).key)


# --------------------------------------------------------------------------- info


@dataclass(frozen=True, eq=False)
class InfoCompare(Filter):
    """A ``hermes.info`` value: ``op`` is a comparison, ``startswith`` or ``contains`` (text)."""

    key: str
    op: str
    value: str

    def _condition(self, column: Any) -> ColumnElement[bool]:
        if self.op == "startswith":
            return column.startswith(self.value, autoescape=True)
        if self.op == "contains":
            return column.contains(self.value, autoescape=True)
        return COMPARISONS[self.op](column, self.value)

    def clause(self) -> ColumnElement[bool]:
        return exists(
            select(1)
            .select_from(info_table)
            .where(
                info_table.c.run_id == run_table.c.id,
                info_table.c.key == self.key,
                self._condition(info_table.c.value),
            )
        )

    def matches(self, experiment: Experiment) -> bool:
        value = experiment.info_dict.get(self.key)
        return value is not None and _text_matches(self.op, value, self.value)

    def __repr__(self) -> str:
        return f"info.{self.key} {self.op} {self.value!r}"


def _text_matches(op: str, actual: str, wanted: str) -> bool:
    if op == "startswith":
        return actual.startswith(wanted)
    if op == "contains":
        return wanted in actual
    return bool(COMPARISONS[op](actual, wanted))


class InfoRef:
    """A ``hermes.info`` key (``info("comments")``) to compare as text."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __eq__(self, value: Any) -> Filter:  # type: ignore[override]
        return InfoCompare(self.key, "==", str(value))

    def __ne__(self, value: Any) -> Filter:  # type: ignore[override]
        return InfoCompare(self.key, "!=", str(value))

    __hash__ = None  # type: ignore[assignment]

    def startswith(self, prefix: str) -> Filter:
        """Runs whose value starts with ``prefix``."""
        return InfoCompare(self.key, "startswith", prefix)

    def contains(self, text: str) -> Filter:
        """Runs whose value contains ``text``."""
        return InfoCompare(self.key, "contains", text)


def info(key: str) -> InfoRef:
    """Refer to the ``hermes.info`` key ``key`` for text comparisons."""
    return InfoRef(key)


# --------------------------------------------------------------------------- run columns and scores


def run_value(experiment: Experiment, name: str) -> Any:
    """The value of a run field or score summary of ``experiment`` (reads files if needed)."""
    if name in SUMMARY_COLUMNS:
        return getattr(experiment.score_summary, name)
    if name == "path":
        return str(experiment.path_to_experiment)
    if name == "finished":
        return experiment.is_finished
    if name == "job_idx":
        return rundir.parse_identifier(experiment.identifier)[1]
    return getattr(experiment, name)


def _column(name: str) -> Any:
    if name in SUMMARY_COLUMNS:
        return run_table.c[SUMMARY_COLUMNS[name]]
    if name in RUN_FIELDS:
        return run_table.c[name]
    raise QueryError(
        f"unknown column {name!r}; expected a score summary ({', '.join(SUMMARY_COLUMNS)}) "
        f"or a run field ({', '.join(RUN_FIELDS)})"
    )


def _coerce(name: str, value: Any) -> Any:
    kind = "number" if name in SUMMARY_COLUMNS else RUN_FIELDS.get(name)
    if kind == "number":
        number = _number(value)
        if number is None:
            raise QueryError(f"{name} compares with a number, not {value!r}")
        return number
    if kind == "time":
        if isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(str(value))
        except ValueError:
            raise QueryError(
                f"{name} compares with a date like 2024-03-01 or 2024-03-01T15:45, not {value!r}"
            ) from None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in {"true", "1", "yes"}:
            return True
        if text in {"false", "0", "no"}:
            return False
        raise QueryError(f"{name} compares with true or false, not {value!r}")
    return str(value)


@dataclass(frozen=True, eq=False)
class ColumnCompare(Filter):
    """A run field or score summary compared with a value (``startswith``/``contains`` for text)."""

    name: str
    op: str
    value: Any

    def clause(self) -> ColumnElement[bool]:
        column = _column(self.name)
        if self.op == "startswith":
            condition = column.startswith(str(self.value), autoescape=True)
        elif self.op == "contains":
            condition = column.contains(str(self.value), autoescape=True)
        else:
            condition = COMPARISONS[self.op](column, _coerce(self.name, self.value))
        return and_(column.is_not(None), condition)

    def matches(self, experiment: Experiment) -> bool:
        actual = run_value(experiment, self.name)
        if actual is None:
            return False
        if self.op in {"startswith", "contains"}:
            return _text_matches(self.op, str(actual), str(self.value))
        return bool(COMPARISONS[self.op](actual, _coerce(self.name, self.value)))

    def __repr__(self) -> str:
        return f"{self.name} {self.op} {self.value!r}"


class FieldRef(_Comparisons):
    """A run field or score summary to compare (``score.final_mean > 200``)."""

    def __init__(self, name: str) -> None:
        _column(name)
        if name == "path":
            raise QueryError(
                "runs are not filtered by path (the index keeps it relative to its root); "
                "filter on identifier, script_name or experiment_name"
            )
        self.name = name

    def _compare(self, op: str, value: Any) -> Filter:
        _coerce(self.name, value)
        return ColumnCompare(self.name, op, value)

    def startswith(self, prefix: str) -> Filter:
        """Runs whose text value starts with ``prefix`` (e.g. ``run.commit_hash.startswith("ab1")``)."""
        return ColumnCompare(self.name, "startswith", prefix)

    def contains(self, text: str) -> Filter:
        """Runs whose text value contains ``text`` (e.g. ``run.comments.contains("sweep")``)."""
        return ColumnCompare(self.name, "contains", text)

    def isin(self, values: Iterable[Any]) -> Filter:
        """Runs whose value equals one of ``values``."""
        filters = [self == value for value in values]
        if not filters:
            return Not(everything)
        return filters[0] if len(filters) == 1 else Or(tuple(filters))


class _Fields:
    """Attribute access to fields: ``score.final_mean``, ``run.start_time``."""

    def __init__(self, names: Iterable[str], label: str) -> None:
        self._names = tuple(names)
        self._label = label

    def __getattr__(self, name: str) -> FieldRef:
        if name.startswith("_") or name not in self._names:
            raise AttributeError(
                f"{self._label} has no field {name!r}; expected one of {', '.join(self._names)}"
            )
        return FieldRef(name)

    def __getitem__(self, name: str) -> FieldRef:
        return self.__getattr__(name)

    def __dir__(self) -> list[str]:
        return list(self._names)


#: Score-summary fields: ``score.final_mean``, ``score.max``, ``score.count`` ...
score = _Fields(SUMMARY_COLUMNS, "score")
#: Run fields: ``run.start_time``, ``run.finished``, ``run.commit_hash`` ...
run = _Fields(RUN_FIELDS, "run")


# --------------------------------------------------------------------------- scopes


@dataclass(frozen=True, eq=False)
class Under(Filter):
    """Runs whose directory lies in the folder ``parent`` (relative to the index root)."""

    parent: str
    recursive: bool

    def clause(self) -> ColumnElement[bool]:
        direct = run_table.c.parent == self.parent
        if not self.recursive:
            return direct
        if self.parent == "":
            return true()
        return or_(direct, run_table.c.parent.startswith(self.parent + "/", autoescape=True))

    def matches(self, experiment: Experiment) -> bool:  # pragma: no cover - scopes are SQL only
        raise QueryError("a folder scope is answered by the index only")

    def __repr__(self) -> str:
        return f"under({self.parent!r}, recursive={self.recursive})"


def under(parent: str, recursive: bool) -> Filter:
    """The runs in folder ``parent`` (a POSIX path relative to the index root; ``""`` is the root)."""
    return Under(parent.strip("/"), recursive)


def as_filter(condition: Filter | str | None) -> Filter:
    """Return ``condition`` as a :class:`Filter`: text is parsed with the expression grammar.

    Raises:
        QueryError: the text is not a valid expression.
        TypeError: ``condition`` is neither.
    """
    if condition is None:
        return everything
    if isinstance(condition, Filter):
        return condition
    if isinstance(condition, str):
        if not condition.strip():
            return everything
        from pyhermes.index.grammar import parse_filter

        return parse_filter(condition)
    raise TypeError(f"expected a pyhermes filter or an expression string, not {type(condition).__name__}")


# --------------------------------------------------------------------------- ordering


def _parse_sort_key(key: str) -> tuple[str, bool]:
    """Split a sort key into (name, descending)."""
    key = key.strip()
    descending = False
    for suffix, is_desc in ((":desc", True), (":asc", False)):
        if key.lower().endswith(suffix):
            return key[: -len(suffix)].strip(), is_desc
    if key.startswith("-") and (key[1:] in SUMMARY_COLUMNS or key[1:] in RUN_FIELDS):
        return key[1:], True
    if key.startswith("+"):
        key = key[1:]
    return key, descending


def _arg_sort_value(key: str, column: Any) -> Any:
    return (
        select(column)
        .where(arg_table.c.run_id == run_table.c.id, arg_table.c.key == key)
        .order_by(arg_table.c.position)
        .limit(1)
        .scalar_subquery()
    )


def sort_columns(keys: Sequence[str] | str | None) -> list[Any]:
    """Return ORDER BY clauses for sort keys.

    A key is a score summary or run field (``final_mean``, ``start_time``) or an
    exec-arg option key (``-lr``: numbers before texts, numbers compared as numbers).
    ``NAME:desc`` / ``NAME:asc`` choose the direction; ``-final_mean`` (a dash before
    a field name) is short for ``final_mean:desc``. Runs without a value sort last in
    either direction; the run id breaks ties, so the order is stable.

    Raises:
        QueryError: a key is neither a field nor an exec-arg key.
    """
    if isinstance(keys, str):
        keys = [part for part in keys.split(",") if part.strip()]
    clauses: list[Any] = []
    descending = False
    for key in keys or ():
        name, descending = _parse_sort_key(key)
        if name in SUMMARY_COLUMNS or name in RUN_FIELDS:
            columns = [_column(name)]
        elif name.startswith("-") and len(name.split()) == 1:
            columns = [_arg_sort_value(name, arg_table.c.num), _arg_sort_value(name, arg_table.c.value)]
        else:
            raise QueryError(
                f"unknown sort key {key!r}; expected a score summary ({', '.join(SUMMARY_COLUMNS)}), "
                f"a run field ({', '.join(RUN_FIELDS)}) or an exec-arg key like -lr"
            )
        for column in columns:
            clauses.append((column.desc() if descending else column.asc()).nulls_last())
    # The id breaks ties in the direction of the last key, so that an index on that key
    # (which orders equal keys by id) can serve the whole ORDER BY.
    clauses.append(run_table.c.id.desc() if descending else run_table.c.id.asc())
    return clauses
