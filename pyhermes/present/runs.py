"""Tables of runs as the front ends show them: a page, every page of an export, a selection.

A bound catalogue answers through the one runs-table path of the index
(:meth:`pyhermes.Catalog.table`, :mod:`pyhermes.index.query.table`): straight
from SQL, no run object built. A list of runs built by hand (not bound to an
index) is read through :func:`column_getter`, which gives each column the same
values from the run objects.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from pyhermes.errors import QueryError
from pyhermes.present import counts
from pyhermes.present.values import json_value, split_list

if TYPE_CHECKING:
    from pyhermes.index.query.filters import Filter
    from pyhermes.storage import Catalog, Experiment

__all__ = [
    "MAX_PER_PAGE", "RunsPage", "runs_page", "export_pages", "selection", "column_getter",
    "check_columns", "sort_keys", "list_table", "ListTable", "forget_counts", "count_of",
]

#: The most runs one page of :func:`runs_page` holds, whatever is asked.
MAX_PER_PAGE = 500


def column_getter(name: str) -> Callable[[Experiment], Any]:
    """Return the function reading column ``name`` (see :func:`check_columns`) of a run object.

    Raises:
        QueryError: ``name`` is no column.
    """
    from pyhermes.index.query.filters import run_value
    from pyhermes.index.query.table import resolve_column

    column = resolve_column(name, None)
    if column.kind == "args":
        return lambda experiment: " ".join(experiment.exec_arg_lines)
    if column.kind == "tags":
        return lambda experiment: ", ".join(experiment.tags)
    if column.kind == "info":
        return lambda experiment: experiment.info_dict.get(column.source)
    if column.kind == "arg":
        return lambda experiment: experiment.exec_args_dict.get(column.source)
    base = name.partition(".")[2] if name.startswith(("score.", "run.")) else name
    return lambda experiment: run_value(experiment, base)


def check_columns(columns: Sequence[str] | str | None) -> list[str] | None:
    """Return the column names of ``columns`` (comma-separated text or a list), ``None`` for the defaults.

    Columns are run fields (``identifier``, ``start_time``, ...), score summaries
    (``final_mean``, or ``score.final_mean``), ``args`` (all arguments as one
    text), ``info.KEY`` and exec-arg keys (``-lr``, or a positional like ``train``).

    Raises:
        QueryError: a name that is no column, or names given but none named.
    """
    from pyhermes.index.query.table import resolve_column

    if columns is None:
        return None
    names = split_list(columns) if isinstance(columns, str) else list(columns)
    if not names:
        raise QueryError("no column named")
    for name in names:
        resolve_column(name, None)
    return names


def sort_keys(sort: Sequence[str] | str | None, default: str = "start_time:desc") -> list[str]:
    """Return the sort keys of ``sort`` (comma-separated text or a list; ``default`` when empty).

    Raises:
        QueryError: a key that is no field, summary or exec-arg key.
    """
    from pyhermes.index.query.select import sort_columns

    keys = split_list(sort) if isinstance(sort, str) or sort is None else list(sort)
    keys = keys or [default]
    sort_columns(keys)
    return keys


def _condition(where: str | None, identifiers: Sequence[str] | None) -> Filter:
    from pyhermes.index.query.filters import run
    from pyhermes.index.query.grammar import as_filter

    condition = as_filter(where or None)
    if identifiers is not None:
        condition = condition & run.identifier.isin(list(identifiers))
    return condition


@dataclass
class RunsPage:
    """One page of a runs table: what :func:`runs_page` returns.

    ``rows`` hold raw values (format them with :func:`~pyhermes.present.text_value`
    or :func:`~pyhermes.present.json_value`); ``paths`` are the runs' paths relative
    to the index root and ``identifiers`` their identifiers, row by row.
    """

    columns: list[str]
    rows: list[list[Any]]
    paths: list[str]
    identifiers: list[str]
    total: int
    page: int
    per_page: int
    where: str
    sort: list[str]
    available: list[str] = field(default_factory=list)
    #: The columns whose value every matched run shares (name: value), in column order:
    #: found for the default columns only (see :func:`runs_page`).
    same_for_all: dict[str, Any] = field(default_factory=dict)
    #: False when the page was given before its match count (see :func:`runs_page`'s
    #: ``count_wait``): ``total`` is then the runs up to this page, and ``more`` tells
    #: whether the page was full (more runs may follow).
    counted: bool = True
    more: bool = False

    @property
    def pages(self) -> int:
        """The number of pages (at least 1; not counted: the pages known so far)."""
        return max(1, -(-self.total // self.per_page) + (1 if self.more else 0))

    def as_dict(self) -> dict[str, Any]:
        """Return the page as JSON data (the answer of ``/api/runs``)."""
        return {
            "where": self.where,
            "sort": self.sort,
            "page": self.page,
            "per_page": self.per_page,
            "pages": self.pages,
            "total": self.total,
            "counted": self.counted,
            "columns": self.columns,
            "same_for_all": {name: json_value(value) for name, value in self.same_for_all.items()},
            "runs": [
                {
                    "path": path,
                    "identifier": identifier,
                    "values": {
                        column: json_value(value)
                        for column, value in zip(self.columns, row, strict=True)
                    },
                }
                for path, identifier, row in zip(self.paths, self.identifiers, self.rows, strict=True)
            ],
        }


# The columns found the same for all matched runs, by (count key, candidates).
_SAME: collections.OrderedDict[tuple[Any, ...], list[str]] = collections.OrderedDict()
_SAME_SIZE = 64
#: A page number is brought down to this before it reaches SQL (its offset stays a 64-bit
#: integer); any page past the end is the last page anyway.
_MAX_PAGE = 2**40


def forget_counts() -> None:
    """Forget the remembered match counts (and columns the same for all) of :func:`runs_page`."""
    counts.forget()
    _SAME.clear()


def count_of(catalog: Catalog, where: str | None = None, identifiers: Sequence[str] | None = None) -> int:
    """How many runs of ``catalog`` match ``where`` (and ``identifiers``): the count a page of
    :func:`runs_page` gave or left to follow (remembered until the index changes).

    Raises:
        QueryError: a malformed expression, or an exec-arg key no run has.
    """
    key = counts.count_key(catalog, where, identifiers)
    total = counts.wait(counts.start(key, catalog, _condition(where, identifiers)), None)
    assert total is not None
    return total


def runs_page(
    catalog: Catalog,
    where: str | None = None,
    sort: Sequence[str] | str | None = None,
    columns: Sequence[str] | str | None = None,
    page: int = 1,
    per_page: int = 50,
    *,
    identifiers: Sequence[str] | None = None,
    count_wait: float | None = None,
) -> RunsPage:
    """Return one page of the runs of ``catalog`` that match ``where``, sorted by ``sort``.

    Args:
        catalog: the open catalogue (its runs below the folder it was opened on).
        where: an expression of the grammar of ``hermes ls --where`` (empty: every run).
        sort: sort keys (``-final_mean``, ``-lr:desc``, ...); default newest first.
        columns: the columns (see :func:`check_columns`); default the columns of
            :func:`pyhermes.index.query.table.runs_table` (the same as ``hermes ls``).
        page: the page, from 1; a page below 1 is the first, one past the end the last.
        per_page: runs per page, at most :data:`MAX_PER_PAGE` (larger values are capped).
        identifiers: when given, only the runs with these identifiers.
        count_wait: how long (seconds) the page waits, in all, for the match count and the
            columns the same for all when they are not remembered (``None``: until they are there). A count not there in time goes on in
            the background (:func:`count_of` gives it); the page then has ``counted``
            false, ``total`` the runs up to this page, and no ``same_for_all``.

    Only the runs of the page are read (one query for the count, which is remembered
    until the index changes, and the queries of one runs table). With the default
    columns, the columns whose value every matched run shares are found too
    (:attr:`RunsPage.same_for_all`: candidates from the page, checked in SQL).

    Raises:
        QueryError: a malformed expression (``position`` tells where), an unknown
            column or sort key, a page size below 1.
    """
    from pyhermes.index.query.table import arg_keys, available_columns

    if per_page < 1:
        raise QueryError(f"per_page must be at least 1, got {per_page}")
    per_page = min(per_page, MAX_PER_PAGE)
    page = min(max(page, 1), _MAX_PAGE)
    condition = _condition(where, identifiers)
    keys_of_sort = sort_keys(sort)
    names = check_columns(columns or None)
    count_key = counts.count_key(catalog, where, identifiers)
    total = counts.remembered(count_key)
    deadline = None if count_wait is None else time.monotonic() + count_wait

    def table() -> Any:
        return catalog.table(condition, names, keys_of_sort, per_page, (page - 1) * per_page)

    if total is None:
        # The count runs beside the page, on a connection of its own (see counts).
        counting = counts.start(count_key, catalog, condition)
        rows = table()
        total = counts.wait(counting, _left(deadline))
        if total is None and not rows.rows and page > 1:
            total = counts.wait(counting, None)  # past the end: the last page needs the count
    else:
        rows = table()
    if total is None:
        seen = (page - 1) * per_page + len(rows.rows)
        return RunsPage(
            columns=rows.columns, rows=rows.rows, paths=rows.paths, identifiers=rows.identifiers,
            total=seen, page=page, per_page=per_page, where=where or "", sort=keys_of_sort,
            available=available_columns(arg_keys(catalog)), counted=False,
            more=len(rows.rows) == per_page,
        )
    last = max(1, -(-total // per_page))
    if page > last:
        page = last
        rows = table()
    same = _same_for_all(catalog, where, identifiers, count_key, rows, total, _left(deadline)) if names is None else {}
    return RunsPage(
        columns=rows.columns,
        rows=rows.rows,
        paths=rows.paths,
        identifiers=rows.identifiers,
        total=total,
        page=page,
        per_page=per_page,
        where=where or "",
        sort=keys_of_sort,
        available=available_columns(arg_keys(catalog)),
        same_for_all=same,
    )


def _same_for_all(
    catalog: Catalog,
    where: str | None,
    identifiers: Sequence[str] | None,
    count_key: tuple[Any, ...],
    rows: Any,
    total: int,
    wait: float | None = None,
) -> dict[str, Any]:
    """The columns of a page of default columns whose value every matched run shares.

    Candidates are the foldable columns (run fields of
    :data:`~pyhermes.index.query.table.FOLDABLE_FIELDS`, exec-arg keys) with one value
    on every row of the page; when the page holds every match they are the answer,
    else the index checks them (remembered like the count, until the index changes).
    """
    from pyhermes.index.query.table import DEFAULT_LEADING, DEFAULT_TRAILING, FOLDABLE_FIELDS

    if total < 2 or not rows.rows:
        return {}
    fixed = {*DEFAULT_LEADING, *DEFAULT_TRAILING} - set(FOLDABLE_FIELDS)
    candidates: dict[str, Any] = {}
    for at, name in enumerate(rows.columns):
        values = [row[at] for row in rows.rows]
        if name not in fixed and values[0] is not None and all(value == values[0] for value in values):
            candidates[name] = values[0]
    if not candidates:
        return {}
    if len(rows.rows) >= total:
        return candidates
    key = (count_key, tuple((name, repr(value)) for name, value in candidates.items()))
    found = _SAME.get(key) if count_key[3] is not None else None
    if found is None:
        # Like the count, in the background: not there within ``wait``, the page folds nothing.
        finding = counts.in_background(catalog.same_for_all, _condition(where, identifiers), candidates, total)
        if count_key[3] is not None:
            finding.add_done_callback(lambda done: _remember_same(key, done))
        found = counts.wait(finding, wait)
    return {name: candidates[name] for name in found or ()}


def _left(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (a ``time.monotonic()``; ``None``: no deadline)."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _remember_same(key: tuple[Any, ...], done: Future[list[str]]) -> None:
    if not done.cancelled() and done.exception() is None:
        _SAME[key] = done.result()
        while len(_SAME) > _SAME_SIZE:
            _SAME.popitem(last=False)


def export_pages(
    catalog: Catalog,
    where: str | None = None,
    sort: Sequence[str] | str | None = None,
    columns: Sequence[str] | str | None = None,
    *,
    identifiers: Sequence[str] | None = None,
    limit: int | None = None,
) -> tuple[list[str], Iterator[tuple[str, list[Any]]]]:
    """Return the columns and an iterator of (path, row) of every run matching ``where`` (at most ``limit``).

    The rows are read page after page of :data:`MAX_PER_PAGE` runs as the iterator
    is consumed, so never all rows are in memory at once; the default columns hold
    every exec-arg key of the index, so that each page has the same columns.

    Raises:
        QueryError: as :func:`runs_page`, at once.
    """
    from pyhermes.index.query.table import arg_keys, default_columns

    condition = _condition(where, identifiers)
    keys_of_sort = sort_keys(sort)
    names = check_columns(columns or None) or default_columns(arg_keys(catalog))

    def rows() -> Iterator[tuple[str, list[Any]]]:
        offset = 0
        while limit is None or offset < limit:
            size = MAX_PER_PAGE if limit is None else min(MAX_PER_PAGE, limit - offset)
            page = catalog.table(condition, names, keys_of_sort, size, offset)
            yield from zip(page.paths, page.rows, strict=True)
            if len(page.rows) < size:
                return
            offset += size

    return names, rows()


def selection(
    catalog: Catalog,
    where: str | None,
    identifiers: Sequence[str] | None,
    sort: Sequence[str] | str | None,
    limit: int,
) -> tuple[list[Experiment], int]:
    """Return the first ``limit`` runs of a selection (by ``identifiers`` when given, else by
    ``where``) in ``sort`` order, and how many runs the selection holds.

    ``sort`` empty leaves the order of :meth:`pyhermes.Catalog.find`.

    Raises:
        QueryError: a malformed filter or an unknown sort key.
    """
    from pyhermes.index.query.filters import run
    from pyhermes.index.query.grammar import as_filter

    condition = run.identifier.isin(list(identifiers)) if identifiers else as_filter(where or None)
    total = catalog.count(condition)
    return list(catalog.find(condition, order_by=sort or None, limit=limit)), total


class ListTable(NamedTuple):
    """The first runs of a list under the default columns, the list's length, and whether
    the rows are its newest runs first (else they are in the list's own order)."""

    columns: list[str]
    rows: list[list[Any]]
    total: int
    newest_first: bool


def list_table(experiments: Sequence[Experiment], limit: int) -> ListTable:
    """Return the default columns and rows of the first ``limit`` runs of a list, and its length.

    A list bound to an index (what ``load_all`` and the queries on it return) is read
    through the runs-table path: one count and the queries of one page, however long
    the list; in load order, its newest runs come first (as on the Runs page). A
    list built by hand is read from its run objects in its own order, with the same columns.
    """
    from pyhermes.index.query.table import default_columns

    bound = getattr(experiments, "bound_table", None)
    answer = bound(limit) if bound is not None else None
    if answer is not None:
        table, total, newest_first = answer
        return ListTable(table.columns, table.rows, total, newest_first)
    shown = list(experiments[:limit])
    keys: dict[str, None] = {}
    for experiment in shown:
        keys.update(dict.fromkeys(experiment.exec_args_dict))
    ordered = sorted(keys, key=lambda key: (not key.startswith("-"), key.lstrip("-"), key))
    names = default_columns(ordered)
    getters = [column_getter(name) for name in names]
    rows = [[getter(experiment) for getter in getters] for experiment in shown]
    return ListTable(names, rows, len(experiments), False)
