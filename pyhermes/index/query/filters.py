"""Filters over runs: Python objects that compile to one SQL condition with bound parameters.

With :mod:`pyhermes.index.query.select` (sort keys and whole SELECT statements,
built on the conditions, :class:`Params` and column helpers :func:`run_col`,
:func:`arg_col` and :func:`field_column` of this module) it is the one query builder
of pyhermes: filters render SQL text (with named parameters, ``:name``) over the
tables of :mod:`pyhermes.index.store.layout`, the same text for SQLite and
PostgreSQL. It does not import SQLAlchemy: the standard library's ``sqlite3`` runs
that text on the read path (:mod:`pyhermes.index.store.sql_reader`), and
:meth:`Filter.clause` wraps it for SQLAlchemy statements.

Here: the filter base (:class:`Filter`, :class:`Node`, :class:`Comparisons`) and
the combinators (``&``, ``|``, ``~``, :data:`everything`), the :class:`Experiment`
protocol filters read in memory, :class:`Params`, the run-field and score references
(:data:`score`, :data:`run`), :data:`RUN_FIELDS` and :func:`run_value`, and the
folder scopes (:func:`under`).

Build them with :data:`score` and :data:`run` (here) and with
:func:`~pyhermes.index.query.arg_filters.arg`, :func:`~pyhermes.index.query.arg_filters.flag`
and :func:`~pyhermes.index.query.arg_filters.info` (exec args and ``hermes.info``
values, in :mod:`pyhermes.index.query.arg_filters`; ``tag`` and ``note``, a run's
curation, in :mod:`pyhermes.index.query.curation_filters`), and combine them with ``&``,
``|`` and ``~``::

    flag("--doubledqn") & (arg("-lr") < 0.01) & (score.final_mean > 200)

Every filter also evaluates in memory (:meth:`Filter.matches`) against an
:class:`~pyhermes.storage.Experiment`, which is how hand-built lists answer.
Logic is two-valued: a comparison on a value a run does not have is false, and
its negation true.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterable
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

    @property
    def tags(self) -> list[str]: ...

    @property
    def notes(self) -> list[rundir.Note]: ...

__all__ = [
    "Filter",
    "score",
    "run",
    "under",
    "everything",
    "check_summary_field",
    "RUN_FIELDS",
    "Params",
]

RUN = layout.RUN.name
ARG = layout.ARG.name
INFO = layout.INFO.name
_RUN_COLUMNS = frozenset(layout.column_names(layout.RUN))
_ARG_COLUMNS = frozenset(layout.column_names(layout.ARG))
_INFO_COLUMNS = frozenset(layout.column_names(layout.INFO))


def run_col(name: str) -> str:
    """The qualified SQL name of the ``hermes_run`` column ``name``."""
    assert name in _RUN_COLUMNS, name
    return f"{RUN}.{name}"


def arg_col(name: str) -> str:
    """The qualified SQL name of the ``hermes_arg`` column ``name``."""
    assert name in _ARG_COLUMNS, name
    return f"{ARG}.{name}"


def info_col(name: str) -> str:
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


SQL_OPS = {"==": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
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
    return f"{column} {SQL_OPS[op]} {params.bind(value)}"

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


class Node(Filter):
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


class _Everything(Node):
    def sql(self, params: Params) -> str:
        return "1 = 1"

    def matches(self, experiment: Experiment) -> bool:
        return True

    def __and__(self, other: Filter) -> Filter:
        return _operand(other)

    def __repr__(self) -> str:
        return "everything"


everything: Filter = _Everything()


class And(Node):
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


class Or(Node):
    _fields = ('parts',)
    parts: tuple[Filter, ...]

    def sql(self, params: Params) -> str:
        return "(" + " OR ".join(part.sql(params) for part in _flat(self)) + ")"

    def matches(self, experiment: Experiment) -> bool:
        return any(part.matches(experiment) for part in self.parts)

    def __repr__(self) -> str:
        return "(" + " or ".join(map(repr, self.parts)) + ")"


class Not(Node):
    _fields = ('part',)
    part: Filter

    def sql(self, params: Params) -> str:
        return f"NOT ({self.part.sql(params)})"

    def matches(self, experiment: Experiment) -> bool:
        return not self.part.matches(experiment)

    def __repr__(self) -> str:
        return f"not {self.part!r}"


# --------------------------------------------------------------------------- shared by all filters


def to_number(value: Any) -> float | None:
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


class Comparisons:
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


def text_matches(op: str, actual: str, wanted: str) -> bool:
    """``actual op wanted`` for text; ``op`` may also be ``startswith`` or ``contains``."""
    if op == "startswith":
        return actual.startswith(wanted)
    if op == "contains":
        return wanted in actual
    return bool(COMPARISONS[op](actual, wanted))


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


def field_column(name: str) -> str:
    """The SQL column of a run field or score summary."""
    if name in SUMMARY_COLUMNS:
        return run_col(SUMMARY_COLUMNS[name])
    if name in RUN_FIELDS:
        return run_col(name)
    raise QueryError(
        f"unknown column {name!r}; expected a score summary ({', '.join(SUMMARY_COLUMNS)}) "
        f"or a run field ({', '.join(RUN_FIELDS)})"
    )


def _coerce(name: str, value: Any) -> Any:
    kind = "number" if name in SUMMARY_COLUMNS else RUN_FIELDS.get(name)
    if kind == "number":
        number = to_number(value)
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


class ColumnCompare(Node):
    """A run field or score summary compared with a value (``startswith``/``contains`` for text)."""

    _fields = ('name', 'op', 'value')
    name: str
    op: str
    value: Any

    def sql(self, params: Params) -> str:
        column = field_column(self.name)
        if self.op in {"startswith", "contains"}:
            condition = text_condition(column, self.op, str(self.value), params)
        else:
            condition = f"{column} {SQL_OPS[self.op]} {params.bind(_coerce(self.name, self.value))}"
        return f"({column} IS NOT NULL AND {condition})"

    def matches(self, experiment: Experiment) -> bool:
        actual = run_value(experiment, self.name)
        if actual is None:
            return False
        if self.op in {"startswith", "contains"}:
            return text_matches(self.op, str(actual), str(self.value))
        return bool(COMPARISONS[self.op](actual, _coerce(self.name, self.value)))

    def __repr__(self) -> str:
        return f"{self.name} {self.op} {self.value!r}"


class ColumnIn(Node):
    """A run field or score summary equal to one of ``values``: one ``IN`` list, however many
    values (a chain of ORs grows SQLite's expression tree past its limit at a few
    thousand)."""

    _fields = ('name', 'values')
    name: str
    values: tuple[Any, ...]

    def sql(self, params: Params) -> str:
        column = field_column(self.name)
        bound = ", ".join(params.bind(_coerce(self.name, value)) for value in self.values)
        return f"({column} IS NOT NULL AND {column} IN ({bound}))"

    def matches(self, experiment: Experiment) -> bool:
        actual = run_value(experiment, self.name)
        return actual is not None and any(actual == _coerce(self.name, value) for value in self.values)

    def __repr__(self) -> str:
        return f"{self.name} in ({', '.join(map(repr, self.values))})"


class FieldRef(Comparisons):
    """A run field or score summary to compare (``score.final_mean > 200``)."""

    def __init__(self, name: str) -> None:
        field_column(name)
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
        chosen = tuple(values)
        if not chosen:
            return Not(everything)
        return self == chosen[0] if len(chosen) == 1 else ColumnIn(self.name, chosen)


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


class Under(Node):
    """Runs whose directory lies in the folder ``parent`` (relative to the index root)."""

    _fields = ('parent', 'recursive')
    parent: str
    recursive: bool

    def sql(self, params: Params) -> str:
        if self.recursive and self.parent == "":
            return "1 = 1"
        direct = f"{run_col('parent')} = {params.bind(self.parent)}"
        if not self.recursive:
            return direct
        below = text_condition(run_col("parent"), "startswith", self.parent + "/", params)
        return f"({direct} OR {below})"

    def matches(self, experiment: Experiment) -> bool:  # pragma: no cover - scopes are SQL only
        raise QueryError("a folder scope is answered by the index only")

    def __repr__(self) -> str:
        return f"under({self.parent!r}, recursive={self.recursive})"


class RunIds(Node):
    """The runs with these index ids (internal: lists answering for the runs they hold)."""

    _fields = ('ids',)
    ids: tuple[int, ...]

    def sql(self, params: Params) -> str:
        if not self.ids:
            return "1 = 0"
        # Ids are integers from the index itself, written as literals: a list may hold more
        # runs than a statement may have parameters.
        return f"{run_col('id')} IN ({', '.join(str(int(run_id)) for run_id in self.ids)})"

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
