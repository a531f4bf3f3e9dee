"""Filters over runs: Python objects that compile to one SQL condition with bound parameters.

This module is the one query builder of pyhermes: filters and sort keys render
SQL text (with named parameters, ``:name``) over the tables of
:mod:`pyhermes.index.store.layout`, the same text for SQLite and PostgreSQL. It does
not import SQLAlchemy: the standard library's ``sqlite3`` runs that text on the
read path (:mod:`pyhermes.index.store.sql_reader`), and :meth:`Filter.clause` wraps it for
SQLAlchemy statements.

Build them with :func:`arg`, :func:`flag`, :func:`info`, :data:`score`, :data:`run`
and combine them with ``&``, ``|`` and ``~``::

    flag("--doubledqn") & (arg("-lr") < 0.01) & (score.final_mean > 200)

Every filter also evaluates in memory (:meth:`Filter.matches`) against an
:class:`~pyhermes.storage.Experiment`, which is how hand-built lists answer.
Logic is two-valued: a comparison on a value a run does not have is false, and
its negation true.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from pyhermes import rundir
from pyhermes.errors import QueryError
from pyhermes.index.store import layout
from pyhermes.index.store.layout import SUMMARY_COLUMNS


class Experiment(Protocol):
    """What a filter reads of a run in memory: a :class:`pyhermes.storage.Experiment`
    (named by what it needs, so that the index does not import the objects built on it).
    Run fields (``start_time``, ``commit_hash``...) are read by name too."""

    _run_id: int | None
    identifier: str
    path_to_experiment: Path

    @property
    def exec_arg_lines(self) -> list[str]: ...

    @property
    def exec_args(self) -> set[str]: ...

    @property
    def info_dict(self) -> dict[str, str]: ...

    @property
    def is_finished(self) -> bool: ...

    @property
    def score_summary(self) -> Any: ...

__all__ = [
    "Filter",
    "arg",
    "flag",
    "info",
    "score",
    "run",
    "has_args",
    "under",
    "everything",
    "sort_columns",
    "check_summary_field",
    "RUN_FIELDS",
    "Params",
    "select_runs",
    "window_bound",
    "arg_sort_key",
    "ARG_SORT_PARTS",
    "select_runs_by_arg",
]

RUN = layout.RUN.name
ARG = layout.ARG.name
INFO = layout.INFO.name
_RUN_COLUMNS = frozenset(layout.column_names(layout.RUN))
_ARG_COLUMNS = frozenset(layout.column_names(layout.ARG))
_INFO_COLUMNS = frozenset(layout.column_names(layout.INFO))


def _run_col(name: str) -> str:
    assert name in _RUN_COLUMNS, name
    return f"{RUN}.{name}"


def _arg_col(name: str) -> str:
    assert name in _ARG_COLUMNS, name
    return f"{ARG}.{name}"


def _info_col(name: str) -> str:
    assert name in _INFO_COLUMNS, name
    return f"{INFO}.{name}"


class Params:
    """The bound parameters of one SQL statement, named ``:<prefix><n>``.

    Values stay Python values (a datetime is a datetime); the reader adapts them
    to its database.
    """

    def __init__(self, prefix: str = "p", *, correlated: bool = False) -> None:
        self.prefix = prefix
        self.values: dict[str, Any] = {}
        #: Write argument conditions as correlated EXISTS (see :func:`_arg_exists`).
        self.correlated = correlated

    def bind(self, value: Any) -> str:
        """Return the placeholder of a new parameter holding ``value``."""
        name = f"{self.prefix}{len(self.values)}"
        self.values[name] = value
        return ":" + name


_SQL_OPS = {"==": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_CLAUSE_NUMBERS = itertools.count()


def _like_escape(text: str) -> str:
    """``text`` with LIKE's wildcards escaped by ``/`` (matches ``ESCAPE '/'``)."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def text_condition(column: str, op: str, value: str, params: Params) -> str:
    """``column op value`` for text; ``op`` may also be ``startswith`` or ``contains``."""
    if op == "startswith":
        return f"{column} LIKE {params.bind(_like_escape(value) + '%')} ESCAPE '/'"
    if op == "contains":
        return f"{column} LIKE {params.bind('%' + _like_escape(value) + '%')} ESCAPE '/'"
    return f"{column} {_SQL_OPS[op]} {params.bind(value)}"

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

    def sql(self, params: Params) -> str:
        """Return the SQL condition on ``hermes_run``; its values go into ``params``."""
        raise NotImplementedError

    def clause(self) -> Any:
        """Return the condition as a SQLAlchemy clause (for statements built with SQLAlchemy)."""
        from sqlalchemy import bindparam, text

        params = Params(f"q{next(_CLAUSE_NUMBERS)}_")
        sql = self.sql(params)
        return text(f"({sql})").bindparams(*(bindparam(k, v) for k, v in params.values.items()))

    def matches(self, experiment: Experiment) -> bool:
        """Evaluate the condition in memory for one run (reads its files if needed)."""
        raise NotImplementedError

    def __and__(self, other: Filter) -> Filter:
        other = _operand(other)
        return self if isinstance(other, _Everything) else And((self, other))

    def __or__(self, other: Filter) -> Filter:
        return Or((self, _operand(other)))

    def __invert__(self) -> Filter:
        return Not(self)

    def __bool__(self) -> bool:
        raise TypeError(
            "a pyhermes filter has no truth value: combine filters with &, | and ~, "
            "not with and, or, not (and write a < b < c as (a < b) & (b < c))"
        )


class _Node(Filter):
    """A filter whose fields (``_fields``) are set once, by the constructor.

    What ``@dataclass(frozen=True, eq=False)`` gave, without generating code when
    the module is imported (that cost ~2 ms per class, on every fresh process).
    """

    _fields: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        values = dict(zip(self._fields, args, strict=False))
        values.update(kwargs)
        if set(values) != set(self._fields):
            raise TypeError(f"{type(self).__name__} takes the fields {', '.join(self._fields)}")
        for name in self._fields:
            object.__setattr__(self, name, values[name])

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a {type(self).__name__} filter cannot be changed")

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({fields})"


class _Everything(_Node):
    def sql(self, params: Params) -> str:
        return "1 = 1"

    def matches(self, experiment: Experiment) -> bool:
        return True

    def __and__(self, other: Filter) -> Filter:
        return _operand(other)

    def __repr__(self) -> str:
        return "everything"


everything: Filter = _Everything()


class And(_Node):
    _fields = ('parts',)
    parts: tuple[Filter, ...]

    def sql(self, params: Params) -> str:
        # "1 = 1 AND 1 = 1" is not harmless: SQLite then walks an index of another
        # column to sort a whole table (7x slower at 100,000 runs).
        parts = [part for part in _flat(self) if not isinstance(part, _Everything)]
        if not parts:
            return everything.sql(params)
        return "(" + " AND ".join(part.sql(params) for part in parts) + ")"

    def matches(self, experiment: Experiment) -> bool:
        return all(part.matches(experiment) for part in self.parts)

    def __repr__(self) -> str:
        return "(" + " and ".join(map(repr, self.parts)) + ")"


def _flat(node: And | Or) -> list[Filter]:
    """The parts of a chain of one operator, nested chains of it inlined (``(a and b) and c``)."""
    parts: list[Filter] = []
    for part in node.parts:
        parts.extend(_flat(part) if type(part) is type(node) else [part])  # type: ignore[arg-type]
    return parts


class Or(_Node):
    _fields = ('parts',)
    parts: tuple[Filter, ...]

    def sql(self, params: Params) -> str:
        return "(" + " OR ".join(part.sql(params) for part in _flat(self)) + ")"

    def matches(self, experiment: Experiment) -> bool:
        return any(part.matches(experiment) for part in self.parts)

    def __repr__(self) -> str:
        return "(" + " or ".join(map(repr, self.parts)) + ")"


class Not(_Node):
    _fields = ('part',)
    part: Filter

    def sql(self, params: Params) -> str:
        return f"NOT ({self.part.sql(params)})"

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


def _arg_exists(condition: str, params: Params) -> str:
    """The runs having an argument that meets ``condition``.

    An uncorrelated IN lets the database use the (raw, run_id) / (key, num) indexes
    once, instead of probing the argument table for every run: the better plan for a
    whole answer. A query that wants the first few runs in index order
    (``hermes ls --limit``) probes instead (``params.correlated``): the walk stops
    after a few runs, where the IN would first collect every run having the
    argument (50,000 of 100,000 for a common flag).
    """
    if params.correlated:
        return (
            f"EXISTS (SELECT 1 FROM {ARG} WHERE {_arg_col('run_id')} = {_run_col('id')} "
            f"AND {condition})"
        )
    return f"{_run_col('id')} IN (SELECT {_arg_col('run_id')} FROM {ARG} WHERE {condition})"


class ArgPresent(_Node):
    _fields = ('key',)
    key: str

    def sql(self, params: Params) -> str:
        return _arg_exists(f"{_arg_col('key')} = {params.bind(self.key)}", params)

    def matches(self, experiment: Experiment) -> bool:
        return bool(_arg_values(experiment, self.key))

    def __repr__(self) -> str:
        return self.key


def _numeric_operand(value: Any) -> float | None:
    """A Python number compares numerically; strings (even ``"64"``) compare as text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


class ArgCompare(_Node):
    """``key op value``: a Python number compares with the option's number, anything else
    (strings, lists for multi-value options) with its text."""

    _fields = ('key', 'op', 'value')
    key: str
    op: str
    value: Any

    def sql(self, params: Params) -> str:
        key = f"{_arg_col('key')} = {params.bind(self.key)}"
        number = _numeric_operand(self.value)
        if number is not None and not math.isnan(number):
            column, operand = _arg_col("num"), number
        else:
            column, operand = _arg_col("value"), _arg_text(self.value)
        condition = f"{column} IS NOT NULL AND {column} {_SQL_OPS[self.op]} {params.bind(operand)}"
        return _arg_exists(f"{key} AND {condition}", params)

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


class ArgIn(_Node):
    _fields = ('key', 'values')
    key: str
    values: tuple[Any, ...]

    def sql(self, params: Params) -> str:
        if not self.values:
            return "1 = 0"
        return "(" + " OR ".join(ArgCompare(self.key, "==", v).sql(params) for v in self.values) + ")"

    def matches(self, experiment: Experiment) -> bool:
        return any(ArgCompare(self.key, "==", value).matches(experiment) for value in self.values)

    def __repr__(self) -> str:
        return f"{self.key} in {self.values!r}"


class HasArgs(_Node):
    """The run's exec-args set contains every one of ``raws`` (lines like ``-lr 0.001``)."""

    _fields = ('raws',)
    raws: frozenset[str]

    def sql(self, params: Params) -> str:
        if not self.raws:
            return "1 = 1"
        parts = (
            _arg_exists(f"{_arg_col('raw')} = {params.bind(raw)}", params) for raw in sorted(self.raws)
        )
        return "(" + " AND ".join(parts) + ")"

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


class InfoCompare(_Node):
    """A ``hermes.info`` value: ``op`` is a comparison, ``startswith`` or ``contains`` (text)."""

    _fields = ('key', 'op', 'value')
    key: str
    op: str
    value: str

    def sql(self, params: Params) -> str:
        condition = text_condition(_info_col("value"), self.op, self.value, params)
        return (
            f"EXISTS (SELECT 1 FROM {INFO} WHERE {_info_col('run_id')} = {_run_col('id')} "
            f"AND {_info_col('key')} = {params.bind(self.key)} AND {condition})"
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


def _column(name: str) -> str:
    """The SQL column of a run field or score summary."""
    if name in SUMMARY_COLUMNS:
        return _run_col(SUMMARY_COLUMNS[name])
    if name in RUN_FIELDS:
        return _run_col(name)
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


class ColumnCompare(_Node):
    """A run field or score summary compared with a value (``startswith``/``contains`` for text)."""

    _fields = ('name', 'op', 'value')
    name: str
    op: str
    value: Any

    def sql(self, params: Params) -> str:
        column = _column(self.name)
        if self.op in {"startswith", "contains"}:
            condition = text_condition(column, self.op, str(self.value), params)
        else:
            condition = f"{column} {_SQL_OPS[self.op]} {params.bind(_coerce(self.name, self.value))}"
        return f"({column} IS NOT NULL AND {condition})"

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


class Under(_Node):
    """Runs whose directory lies in the folder ``parent`` (relative to the index root)."""

    _fields = ('parent', 'recursive')
    parent: str
    recursive: bool

    def sql(self, params: Params) -> str:
        if self.recursive and self.parent == "":
            return "1 = 1"
        direct = f"{_run_col('parent')} = {params.bind(self.parent)}"
        if not self.recursive:
            return direct
        below = text_condition(_run_col("parent"), "startswith", self.parent + "/", params)
        return f"({direct} OR {below})"

    def matches(self, experiment: Experiment) -> bool:  # pragma: no cover - scopes are SQL only
        raise QueryError("a folder scope is answered by the index only")

    def __repr__(self) -> str:
        return f"under({self.parent!r}, recursive={self.recursive})"


class RunIds(_Node):
    """The runs with these index ids (internal: lists answering for the runs they hold)."""

    _fields = ('ids',)
    ids: tuple[int, ...]

    def sql(self, params: Params) -> str:
        if not self.ids:
            return "1 = 0"
        # Ids are integers from the index itself, written as literals: a list may hold more
        # runs than a statement may have parameters.
        return f"{_run_col('id')} IN ({', '.join(str(int(run_id)) for run_id in self.ids)})"

    def matches(self, experiment: Experiment) -> bool:
        return experiment._run_id in self.ids

    def __repr__(self) -> str:
        return f"run ids ({len(self.ids)})"


def _operand(other: Filter | None) -> Filter:
    """The other side of ``&``/``|``: a filter (``None`` is everything)."""
    if other is None:
        return everything
    if isinstance(other, Filter):
        return other
    raise TypeError(
        f"a pyhermes filter combines with another filter, not a {type(other).__name__}: parse "
        "expression text with pyhermes.index.query.grammar.as_filter, or pass it to where()"
    )


def under(parent: str, recursive: bool) -> Filter:
    """The runs in folder ``parent`` (a POSIX path relative to the index root; ``""`` is the root)."""
    return Under(parent.strip("/"), recursive)


# --------------------------------------------------------------------------- ordering


def parse_sort_key(key: str) -> tuple[str, bool]:
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


def _one_sort_key(order_by: Sequence[str] | str | None) -> tuple[str, bool] | None:
    """``(name, descending)`` of ``order_by`` when it is exactly one sort key, else ``None``."""
    keys = order_by.split(",") if isinstance(order_by, str) else list(order_by or ())
    keys = [key for key in keys if key.strip()]
    return parse_sort_key(keys[0]) if len(keys) == 1 else None


def _is_arg_key(name: str) -> bool:
    """True when the sort key name ``name`` is an exec-arg option key (``-lr``)."""
    return name.startswith("-") and len(name.split()) == 1


def _arg_sort_value(key: str, column: str, params: Params) -> str:
    return (
        f"(SELECT {_arg_col(column)} FROM {ARG} WHERE {_arg_col('run_id')} = {_run_col('id')} "
        f"AND {_arg_col('key')} = {params.bind(key)} ORDER BY {_arg_col('position')} LIMIT 1)"
    )


def sort_columns(keys: Sequence[str] | str | None, params: Params | None = None) -> list[str]:
    """Return the SQL terms of ORDER BY for sort keys (values of arg keys go into ``params``).

    A key is a score summary or run field (``final_mean``, ``start_time``) or an
    exec-arg option key (``-lr``: numbers before texts, numbers compared as numbers).
    ``NAME:desc`` / ``NAME:asc`` choose the direction; ``-final_mean`` (a dash before
    a field name) is short for ``final_mean:desc``. Runs without a value sort last in
    either direction; the run id breaks ties, so the order is stable.

    Raises:
        QueryError: a key is neither a field nor an exec-arg key.
    """
    if params is None:
        params = Params()
    if isinstance(keys, str):
        keys = [part for part in keys.split(",") if part.strip()]
    terms: list[str] = []
    descending = False
    for key in keys or ():
        name, descending = parse_sort_key(key)
        if name in SUMMARY_COLUMNS or name in RUN_FIELDS:
            columns = [_column(name)]
        elif _is_arg_key(name):
            columns = [_arg_sort_value(name, "num", params), _arg_sort_value(name, "value", params)]
        else:
            raise QueryError(
                f"unknown sort key {key!r}; expected a score summary ({', '.join(SUMMARY_COLUMNS)}), "
                f"a run field ({', '.join(RUN_FIELDS)}) or an exec-arg key like -lr"
            )
        for column in columns:
            terms.append(f"{column} {'DESC' if descending else 'ASC'} NULLS LAST")
    # The id breaks ties in the direction of the last key, so that an index on that key
    # (which orders equal keys by id) can serve the whole ORDER BY.
    terms.append(f"{_run_col('id')} {'DESC' if descending else 'ASC'}")
    return terms


#: Up to this many runs wanted, argument conditions probe per run (see :func:`_arg_exists`).
_PROBE_LIMIT = 100


#: Runs in the window that a query for a few runs in the order of one indexed column
#: searches first (see :func:`window_bound`).
WINDOW_RUNS = 1000

_INDEXED_RUN_COLUMNS = frozenset(column.name for column in layout.RUN.columns if column.indexed)


def window_bound(order_by: Sequence[str] | str | None) -> str | None:
    """The SQL of the bound of the first :data:`WINDOW_RUNS` runs in the order ``order_by``.

    For an order on one indexed run column (``-start_time`` of ``latest()``,
    ``-final_mean`` of a top-k), returns a query giving the column's value at
    the end of that window (no row: fewer runs with a value); else ``None``.
    The runs whose value is at or before that bound are a prefix of the order:
    the first matches within them are the first matches of all the runs, found
    by walking the column's index and probing each run (see :func:`select_runs`'s
    ``within``, which needs the column's index named ``ix_<table>_<column>``), at a
    cost that grows with how far the first matches are, not
    with the corpus or with how many runs have an argument.
    """
    one = _one_sort_key(order_by)
    if one is None:
        return None
    name, descending = one
    if name in SUMMARY_COLUMNS:
        name = SUMMARY_COLUMNS[name]
    elif name not in RUN_FIELDS:
        return None
    if name not in _INDEXED_RUN_COLUMNS:
        return None
    column = _run_col(name)
    return (
        f"SELECT {column} FROM {RUN} WHERE {column} IS NOT NULL "
        f"ORDER BY {column} {'DESC' if descending else 'ASC'} LIMIT 1 OFFSET {WINDOW_RUNS}"
    )


def arg_sort_key(order_by: Sequence[str] | str | None) -> tuple[str, bool] | None:
    """``(key, descending)`` when ``order_by`` is exactly one exec-arg key, else ``None``."""
    one = _one_sort_key(order_by)
    if one is None or one[0] in SUMMARY_COLUMNS or one[0] in RUN_FIELDS or not _is_arg_key(one[0]):
        return None
    return one


#: The parts of the order of one exec-arg key (see :func:`sort_columns`), in order:
#: runs whose first value of the key is a number, then a text, then the runs
#: without a value (a flag) or without the key.
ARG_SORT_PARTS = ("numbers", "texts", "rest")

_SORT_ARG = "sort_arg"


def select_runs_by_arg(
    columns: Sequence[str],
    where: Filter,
    key: str,
    descending: bool,
    part: str,
    limit: int | None = None,
    offset: int = 0,
    *,
    ordered: bool = True,
) -> tuple[str, dict[str, Any]]:
    """The SQL and parameters of one part (of :data:`ARG_SORT_PARTS`) of the runs in
    the order of the exec-arg ``key``.

    The three parts, one after the other, are the order :func:`sort_columns` gives
    (first value by position; numbers by number, then by text; texts; then the rest;
    the run id breaking ties), but each part is read in the order of the index
    ``(key, num, value, run_id)`` of the arguments, or of the runs' ids for the
    rest: a page of 50 runs stops after 50 rows of that index instead of sorting
    every run. ``columns`` as for :func:`select_runs`; ``["COUNT(*)"]`` with
    ``ordered=False`` (no ORDER BY) counts the part.
    """
    if part not in ARG_SORT_PARTS:
        raise ValueError(f"part must be one of {ARG_SORT_PARTS}, got {part!r}")
    params = Params(correlated=True)
    selected = _selected(columns)
    direction = "DESC" if descending else "ASC"
    if part == "rest":
        first_value = _arg_sort_value(key, "value", params)
        sql = f"SELECT {selected} FROM {RUN} WHERE {first_value} IS NULL AND {where.sql(params)}"
        order = [_run_col("id")]
    else:
        value_kind = (
            f"{_SORT_ARG}.num IS NOT NULL" if part == "numbers"
            else f"{_SORT_ARG}.num IS NULL AND {_SORT_ARG}.value IS NOT NULL"
        )
        order = [f"{_SORT_ARG}.value", f"{_SORT_ARG}.run_id"]
        if part == "numbers":
            order.insert(0, f"{_SORT_ARG}.num")
        sql = (
            f"SELECT {selected} FROM {ARG} AS {_SORT_ARG} "
            f"JOIN {RUN} ON {_run_col('id')} = {_SORT_ARG}.run_id "
            f"WHERE {_SORT_ARG}.key = {params.bind(key)} AND {value_kind} "
            # Only the first occurrence of the key in a run counts.
            f"AND NOT EXISTS (SELECT 1 FROM {ARG} AS earlier WHERE earlier.run_id = {_SORT_ARG}.run_id "
            f"AND earlier.key = {_SORT_ARG}.key AND earlier.position < {_SORT_ARG}.position) "
            f"AND {where.sql(params)}"
        )
    if ordered:
        sql += " ORDER BY " + ", ".join(f"{term} {direction}" for term in order)
    return _paged(sql, limit, offset), params.values


def _selected(columns: Sequence[str]) -> str:
    """The SELECT list of ``columns``: ``hermes_run`` column names, or SQL expressions
    (given with a table prefix or a parenthesis) as they are."""
    return ", ".join(c if ("." in c or "(" in c) else _run_col(c) for c in columns)


def _paged(sql: str, limit: int | None, offset: int) -> str:
    """``sql`` with its LIMIT and OFFSET."""
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    if offset:
        # SQLite takes OFFSET only after a LIMIT; the largest 64-bit integer reads as "all".
        sql += (" LIMIT 9223372036854775807" if limit is None else "") + f" OFFSET {int(offset)}"
    return sql


def select_runs(
    columns: Sequence[str],
    where: Filter,
    order_by: Sequence[str] | str | None = None,
    limit: int | None = None,
    offset: int = 0,
    *,
    within: Any = None,
    dialect: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """Return the SQL and parameters of ``SELECT columns FROM hermes_run WHERE ... ORDER BY ...``.

    ``columns`` are ``hermes_run`` column names, or SQL expressions over them
    (given with a table prefix or a parenthesis). ``order_by`` is a list of sort keys
    (see :func:`sort_columns`); ``None`` leaves the order to the database.

    Raises:
        QueryError: a bad sort key.
    """
    # In index order (no sort key: the order of the index the database walks, such as
    # the folder index (parent, path)) a few runs are found by probing the first runs; a
    # sort key on another column makes SQLite walk the folder index and sort, so the IN
    # plan is better there.
    probe = limit is not None and limit <= _PROBE_LIMIT and (not order_by or within is not None)
    params = Params(correlated=probe)
    selected = _selected(columns)
    source = RUN
    bound = ""
    if within is not None:
        # Only the runs up to the bound of window_bound(order_by): a prefix of the order.
        one = _one_sort_key(order_by)
        assert one is not None, "within needs one sort key (see window_bound)"
        name, descending = one
        column = _column(name)
        bound = f" AND {column} {'>=' if descending else '<='} {params.bind(within)}"
        if dialect == "sqlite":
            # Walk that column's index: SQLite's planner would take the folder's
            # (parent, path) index, which holds every run of a one-folder tree, and sort.
            source = f"{RUN} INDEXED BY ix_{RUN}_{column.rpartition('.')[2]}"
    sql = f"SELECT {selected} FROM {source} WHERE {where.sql(params)}{bound}"
    if order_by is not None:
        sql += " ORDER BY " + ", ".join(sort_columns(order_by, params))
    return _paged(sql, limit, offset), params.values
