"""Ordering and SELECT statements over runs: sort keys, windows and pages, as SQL text.

The second half of the query builder, over the conditions of
:mod:`pyhermes.index.query.filters`: :func:`parse_sort_key` and
:func:`sort_columns` turn sort keys (``-final_mean``, ``start_time:asc``, the
exec-arg key ``-lr``) into ORDER BY terms; :func:`select_runs` writes
``SELECT ... FROM hermes_run WHERE ... ORDER BY ... LIMIT ... OFFSET ...``;
:func:`window_bound` (with :data:`WINDOW_RUNS`) bounds the first runs in the
order of one indexed column, which ``select_runs(within=...)`` searches first;
:func:`arg_sort_key`, :data:`ARG_SORT_PARTS` and :func:`select_runs_by_arg` read
a page in the order of one exec-arg key part by part, from the arguments' index.

Like the filters, it renders SQL text with named parameters (``:name``) over the
tables of :mod:`pyhermes.index.store.layout`, the same for SQLite and PostgreSQL,
and does not import SQLAlchemy. :class:`pyhermes.index.query.runs.RunQueries`
chooses among these statements and runs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyhermes.errors import QueryError
from pyhermes.index.query.filters import (
    ARG,
    RUN,
    RUN_FIELDS,
    Filter,
    Params,
    arg_col,
    field_column,
    run_col,
)
from pyhermes.index.store import layout
from pyhermes.index.store.layout import SUMMARY_COLUMNS

__all__ = [
    "parse_sort_key",
    "sort_columns",
    "select_runs",
    "window_bound",
    "WINDOW_RUNS",
    "arg_sort_key",
    "ARG_SORT_PARTS",
    "select_runs_by_arg",
]


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
        f"(SELECT {arg_col(column)} FROM {ARG} WHERE {arg_col('run_id')} = {run_col('id')} "
        f"AND {arg_col('key')} = {params.bind(key)} ORDER BY {arg_col('position')} LIMIT 1)"
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
            columns = [field_column(name)]
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
    terms.append(f"{run_col('id')} {'DESC' if descending else 'ASC'}")
    return terms


#: Up to this many runs wanted, argument conditions probe per run (see
#: :func:`pyhermes.index.query.arg_filters._arg_exists`).
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
    column = run_col(name)
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
        order = [run_col("id")]
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
            f"JOIN {RUN} ON {run_col('id')} = {_SORT_ARG}.run_id "
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
    return ", ".join(c if ("." in c or "(" in c) else run_col(c) for c in columns)


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
    condition = where.sql(params)
    if within is not None:
        # Only the runs up to the bound of window_bound(order_by): a prefix of the order.
        one = _one_sort_key(order_by)
        assert one is not None, "within needs one sort key (see window_bound)"
        name, descending = one
        column = field_column(name)
        bound = f" AND {column} {'>=' if descending else '<='} {params.bind(within)}"
        if dialect == "sqlite":
            # Walk that column's index: SQLite's planner would take the folder's
            # (parent, path) index, which holds every run of a one-folder tree, and sort.
            source = f"{RUN} INDEXED BY ix_{RUN}_{column.rpartition('.')[2]}"
            # One term (unary plus): a condition of the filter on the same column (final_mean >
            # -50) must not take the bound's place as the end of the walk.
            condition = f"+({condition})"
    sql = f"SELECT {selected} FROM {source} WHERE {condition}{bound}"
    if order_by is not None:
        sql += " ORDER BY " + ", ".join(sort_columns(order_by, params))
    return _paged(sql, limit, offset), params.values
