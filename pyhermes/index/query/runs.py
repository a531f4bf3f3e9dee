"""The read side of one folder's index: :class:`RunQueries`, the queries a :class:`RunIndex` answers.

:class:`RunQueries` holds every read of :class:`pyhermes.index.run_index.RunIndex`
(which subclasses it and adds opening, syncing and writing): run rows and ids in
order and by page, counts, the per-run details (info, args, score summaries), the
change token, the runs that could not be read or were read with warnings, free
read-only SQL (:meth:`RunQueries.sql`) and DataFrames (:meth:`RunQueries.frame`).

The SQL text comes from :mod:`pyhermes.index.query.select` and
:mod:`pyhermes.index.query.filters` and runs on the subclass's
:class:`~pyhermes.index.store.sql_reader.Reader`; only :meth:`RunQueries.sql` opens
the SQLAlchemy engine. Also here: :func:`as_condition` (a ``where`` argument as a
filter), :func:`path_is` (the run stored at one path) and :class:`SqlResult`.
"""

from __future__ import annotations

import array
import math
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyhermes.errors import QueryError, ReadOnlyQueryError
from pyhermes.index.query.filters import ColumnCompare, Filter, Params, everything, under
from pyhermes.index.query.known_keys import check_index_keys
from pyhermes.index.query.select import (
    ARG_SORT_PARTS,
    arg_sort_key,
    select_runs,
    select_runs_by_arg,
    sort_columns,
    window_bound,
)
from pyhermes.index.rules import disk_name, relative
from pyhermes.index.store.layout import CHANGE_TOKEN_KEY, SUMMARY_COLUMNS
from pyhermes.index.store.sql_reader import to_datetime

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from pyhermes.index.query.table import RunsTable
    from pyhermes.index.store.sql_reader import Reader

__all__ = ["RunQueries", "SqlResult", "as_condition", "path_is", "RUN_ROW", "WINDOW_LIMIT"]

#: Up to this many runs wanted, an order on one indexed column searches a window first.
WINDOW_LIMIT = 100

#: Up to this many runs wanted, :meth:`RunQueries.run_id_array` reads them as rows (the
#: page queries of :meth:`RunQueries.select_rows`); more, as one text the database joins.
ID_ROWS_LIMIT = 10_000

_ID_TEXT_PIECE = 1 << 16  # the ids of a long list are parsed this many characters at a time

#: The columns of a run row (:meth:`RunQueries.run_rows`): enough to build a run object.
RUN_ROW = ("id", "path", "commit_hash", "start_time")


@dataclass(frozen=True)
class SqlResult:
    """The answer of :meth:`Catalog.sql`: column names and rows (tuples); ``truncated`` when
    the statement had more rows than the row limit asked (only the first are held)."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool = False

    def as_dicts(self) -> list[dict[str, Any]]:
        """Return the rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row, strict=False)) for row in self.rows]


class RunQueries:
    """The read-only queries of an index of run directories (the base of :class:`RunIndex`).

    It holds no state of its own and is not built directly: the subclass
    (:class:`pyhermes.index.run_index.RunIndex`) provides what these methods read:

    * ``reader`` -- the :class:`~pyhermes.index.store.sql_reader.Reader` that runs
      the read queries (its ``rows(sql, params)`` and ``dialect``);
    * ``engine`` -- the SQLAlchemy engine, used only by :meth:`sql`;
    * ``root`` -- the absolute root folder the stored (relative) run paths start from;
    * ``_folder`` -- the resolved folder the index was opened on, or ``None``: the
      scope of :meth:`count` (see :meth:`_scope`).
    """

    if TYPE_CHECKING:
        root: Path
        _folder: Path | None

        @property
        def url(self) -> str: ...

        @property
        def reader(self) -> Reader: ...

        @property
        def engine(self) -> Engine: ...

    def _rel(self, path: str | os.PathLike[str]) -> str:
        return relative(self.root, Path(path).resolve())

    def run_rows(
        self,
        where: Filter,
        order_by: Sequence[str] | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[tuple[Any, ...]]:
        """Return ``(id, absolute path, commit_hash, start_time)`` of the matching runs, in order.

        Raises:
            QueryError: a bad sort key.
        """
        prefix = str(self.root).rstrip(os.sep) + os.sep
        return [
            (run_id, prefix + disk_name(path), commit_hash, to_datetime(start))
            for run_id, path, commit_hash, start in self.select_rows(RUN_ROW, where, order_by, limit, offset)
        ]

    def select_rows(
        self,
        columns: Sequence[str],
        where: Filter,
        order_by: Sequence[str] | str | None,
        limit: int | None,
        offset: int,
    ) -> list[tuple[Any, ...]]:
        """The rows of :func:`select_runs`. A page in the order of one exec-arg key is read
        from the arguments' index when many runs match (see :meth:`_walk_pays`); a few
        runs in the order of one indexed column are first looked for among the first runs
        in that order (see :func:`window_bound`)."""
        check_index_keys(where, self)
        by_arg = arg_sort_key(order_by)
        if by_arg is not None and limit is not None and self._walk_pays(where, offset + limit):
            return self._walk_by_arg(columns, where, *by_arg, limit, offset)
        if limit is not None and limit <= WINDOW_LIMIT:
            bound_sql = window_bound(order_by)
            bound = self.reader.rows(bound_sql) if bound_sql is not None else []
            if bound:
                sql, params = select_runs(
                    columns, where, order_by, limit, offset,
                    within=bound[0][0], dialect=self.reader.dialect,
                )
                rows = self.reader.rows(sql, params)
                if len(rows) == limit:
                    return rows
        sql, params = select_runs(columns, where, order_by, limit, offset)
        return self.reader.rows(sql, params)

    def _walk_pays(self, where: Filter, reach: int) -> bool:
        """True when the first ``reach`` runs in the order of one exec-arg key are best
        read by walking the arguments' index (:meth:`_walk_by_arg`), not by sorting.

        Reaching the ``reach``-th of ``m`` matches among ``n`` runs walks about
        ``reach * n / m`` arguments, where sorting the matches costs about ``m``; so
        the walk pays for ``m`` above ``sqrt(reach * n)``, which a count stopped
        there tells. Fewer matches are sorted by one ORDER BY.
        """
        enough = math.isqrt(reach * self.count_in(everything)) + 1
        sql, params = select_runs(["id"], where, limit=enough)
        (matches,), = self.reader.rows(f"SELECT COUNT(*) FROM ({sql}) AS page_reach", params)
        return matches >= enough

    def _walk_by_arg(
        self,
        columns: Sequence[str],
        where: Filter,
        key: str,
        descending: bool,
        limit: int,
        offset: int,
    ) -> list[tuple[Any, ...]]:
        """A page in the order of the exec-arg ``key``, read part by part (see
        :func:`select_runs_by_arg`): a part is counted only when the page starts after it."""
        rows: list[tuple[Any, ...]] = []
        for number, part in enumerate(ARG_SORT_PARTS):
            wanted = limit - len(rows)
            if wanted == 0:
                break
            sql, params = select_runs_by_arg(columns, where, key, descending, part, wanted, offset)
            found = self.reader.rows(sql, params)
            rows += found
            if found:
                offset = 0  # the page started in this part: the next part is read from its start
            elif offset and number < len(ARG_SORT_PARTS) - 1:
                sql, params = select_runs_by_arg(
                    ["COUNT(*)"], where, key, descending, part, ordered=False
                )
                offset = max(0, offset - int(self.reader.rows(sql, params)[0][0]))
        return rows

    def run_ids(
        self,
        where: Filter | str | None = None,
        order_by: Sequence[str] | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[int]:
        """Return the ids of the matching runs, in order."""
        return [run_id for (run_id,) in self.select_rows(["id"], as_condition(where), order_by or [], limit, offset)]

    def run_id_array(
        self, where: Filter, order_by: Sequence[str] | str | None = None, limit: int | None = None
    ) -> array.array[int]:
        """Return the ids of the runs matching ``where``, in ``order_by`` (the first ``limit``),
        as one ``array('q')``: 8 bytes a run, and no Python object per run (what a bound list
        holds before its runs are built, see :class:`pyhermes.runlist.ExperimentList`).

        The database joins the ids into one text, parsed a piece at a time: 1,000,000 ids
        as rows would be a tuple and an int object each (about 90 MB, for an instant); as
        text they are about 8 MB. Each id carries its position (a window function): PostgreSQL
        joins them in that order; SQLite (< 3.44: no ORDER BY in an aggregate) joins the
        positions beside, which put the ids back in place should they come out of order.
        Up to :data:`ID_ROWS_LIMIT` runs are read as rows.

        Raises:
            QueryError: a bad sort key, or an exec-arg key no run has.
        """
        keys = order_by or []
        if limit is not None and limit <= ID_ROWS_LIMIT:
            return array.array("q", self.run_ids(where, keys, limit))
        check_index_keys(where, self)
        window = Params("w")
        position = f"ROW_NUMBER() OVER (ORDER BY {', '.join(sort_columns(keys, window))}) AS position"
        inner, params = select_runs(["id", position], where, keys if limit is not None else None, limit)
        params = {**params, **window.values}
        if self.reader.dialect == "sqlite":
            sql = f"SELECT group_concat(position, ','), group_concat(id, ',') FROM ({inner}) AS ordered_ids"
            ((positions, ids),) = self.reader.rows(sql, params)
            return _in_position(_int_array(positions), _int_array(ids))
        sql = f"SELECT string_agg(CAST(id AS TEXT), ',' ORDER BY position) FROM ({inner}) AS ordered_ids"
        ((text,),) = self.reader.rows(sql, params)
        return _int_array(text)

    def count(self, where: Filter | str | None = None, *, alone: bool = False) -> int:
        """Return how many runs (below the opened folder) match ``where`` (``alone``: see :meth:`count_in`)."""
        return self.count_in(self._scope() & as_condition(where), alone=alone)

    def count_in(self, condition: Filter, *, alone: bool = False) -> int:
        """Return how many runs match ``condition`` (no folder scope added); with ``alone``, on a
        connection of its own (a count in the background keeps no other read waiting)."""
        check_index_keys(condition, self)
        sql, params = select_runs(["COUNT(*)"], condition)
        return int((self.reader.rows_alone if alone else self.reader.rows)(sql, params)[0][0])

    def count_and_newest(self, condition: Filter) -> tuple[int, int | None]:
        """How many runs match ``condition``, and the newest one's id (``None`` for none): one
        aggregate over the condition's index, no row fetched. A folder's list keeps it to tell
        later which runs it held (see :class:`pyhermes.runlist.BoundQuery`)."""
        check_index_keys(condition, self)
        sql, params = select_runs(["COUNT(*)", "MAX(id)"], condition)
        ((count, newest),) = self.reader.rows(sql, params)
        return int(count), (newest if count else None)

    def holds_exactly(self, condition: Filter, run_ids: Sequence[int]) -> bool:
        """True when the runs matching ``condition`` are still ``run_ids``, the ones that matched
        when those ids were read: as many, and none added (a new run's id is above every id
        the index held)."""
        return self.count_and_newest(condition) == (len(run_ids), max(run_ids) if run_ids else None)

    def any_in(self, condition: Filter) -> bool:
        """Return True when some run matches ``condition``."""
        check_index_keys(condition, self)
        sql, params = select_runs(["id"], condition, limit=1)
        return bool(self.reader.rows(sql, params))

    def ids_in(self, run_ids: Iterable[int]) -> Filter:
        """The filter of the runs with these index ids."""
        from pyhermes.index.query.filters import RunIds

        return RunIds(tuple(run_ids))

    @property
    def folder(self) -> Path | None:
        """The folder the index was opened on, whose runs :meth:`count` and :meth:`table`
        answer about (``None``: every run of the index)."""
        return self._folder

    def table(
        self,
        where: Filter | str | None = None,
        columns: Sequence[str] | None = None,
        order_by: Sequence[str] | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> RunsTable:
        """Return the ``columns`` of the runs (below :attr:`folder`) matching ``where``, in
        ``order_by``, ``limit`` runs from ``offset``, straight from SQL.

        The one runs-table path (:func:`pyhermes.index.query.table.runs_table`):
        ``hermes ls``, the runs page, its exports and the notebook view of a bound
        list show what it returns. ``columns`` ``None`` gives the default columns.

        Raises:
            QueryError: a malformed filter, an unknown column or sort key.
        """
        from pyhermes.index.query.table import runs_table

        return runs_table(self, self._scope() & as_condition(where), columns, order_by, limit, offset)

    def same_for_all(
        self, where: Filter | str | None, candidates: dict[str, Any], total: int | None = None
    ) -> list[str]:
        """Return the columns of ``candidates`` (name: the value a page shows on every row)
        whose value every run (below :attr:`folder`) matching ``where`` shares; ``total`` is
        how many match, when known. See :func:`pyhermes.index.query.table.same_for_all`.

        Raises:
            QueryError: a malformed filter.
        """
        from pyhermes.index.query.table import same_for_all

        condition = as_condition(where)
        if total is None:
            total = self.count(condition)
        # The folder's runs are every run of the index when it is the index's root, or holds them all.
        whole_index = (
            self._folder is None
            or self._rel(self._folder) in ("", ".")
            or self.count_in(self._scope()) == self.count_in(everything)
        )
        scoped = condition if whole_index else self._scope() & condition
        return same_for_all(self, scoped, candidates, total, whole_index=whole_index)

    def _scope(self) -> Filter:
        if self._folder is None:
            return everything
        return under(self._rel(self._folder), True)

    def details(self, what: str, run_ids: Sequence[int]) -> dict[int, Any]:
        """Return, per run id, its ``"info"`` dict, ``"args"`` lines, ``"summary"`` fields,
        ``"tags"`` (a sorted list of str) or ``"notes"`` (a list of
        :class:`pyhermes.rundir.Note`, in the order written): one query for all the runs.

        Runs without any get an empty dict or list (``"summary"``: a dict of the
        summary fields, ``None`` where unknown).
        """
        params = Params()
        ids = list(run_ids)
        if not ids:
            return {}
        if len(ids) <= 500:
            wanted = "IN (" + ", ".join(params.bind(run_id) for run_id in ids) + ")"
        else:
            wanted = f"BETWEEN {params.bind(min(ids))} AND {params.bind(max(ids))}"
        if what == "info":
            infos: dict[int, Any] = {run_id: {} for run_id in ids}
            sql = f"SELECT run_id, key, value FROM hermes_info WHERE run_id {wanted}"
            for run_id, key, value in self.reader.rows(sql, params.values):
                if run_id in infos:
                    infos[run_id][key] = value
            return infos
        if what == "args":
            lines: dict[int, Any] = {run_id: [] for run_id in ids}
            sql = f"SELECT run_id, raw FROM hermes_arg WHERE run_id {wanted} ORDER BY run_id, position"
            for run_id, raw in self.reader.rows(sql, params.values):
                if run_id in lines:
                    lines[run_id].append(raw)
            return lines
        if what == "tags":
            tags: dict[int, Any] = {run_id: [] for run_id in ids}
            sql = f"SELECT run_id, tag FROM hermes_tag WHERE run_id {wanted}"
            for run_id, tag in self.reader.rows(sql, params.values):
                if run_id in tags:
                    tags[run_id].append(tag)
            for found in tags.values():
                found.sort()  # as Python orders them (as hermes.tags is), whatever the collation
            return tags
        if what == "notes":
            from pyhermes.rundir import Note

            notes: dict[int, Any] = {run_id: [] for run_id in ids}
            sql = (
                f'SELECT run_id, "time", "text" FROM hermes_note WHERE run_id {wanted} '
                "ORDER BY run_id, position"
            )
            for run_id, moment, text in self.reader.rows(sql, params.values):
                if run_id in notes:
                    notes[run_id].append(Note(to_datetime(moment), text))
            return notes
        columns = ", ".join(SUMMARY_COLUMNS.values())
        sql = f"SELECT id, {columns} FROM hermes_run WHERE id {wanted}"
        summaries: dict[int, Any] = {}
        for run_id, *values in self.reader.rows(sql, params.values):
            summaries[run_id] = dict(zip(SUMMARY_COLUMNS, values, strict=True))
        return summaries

    def change_token(self) -> str | None:
        """The token of the index's last change to its runs (lists bound to another are stale)."""
        rows = self.reader.rows(
            "SELECT value FROM hermes_meta WHERE key = :key", {"key": CHANGE_TOKEN_KEY}
        )
        return rows[0][0] if rows else None

    def problems(self) -> list[tuple[str, str]]:
        """Return (path relative to the root, reason) of every run that could not be read."""
        rows = self.reader.rows("SELECT path, reason FROM hermes_problem ORDER BY path")
        return [(path, reason) for path, reason in rows]

    def run_warnings(self) -> list[tuple[str, list[str]]]:
        """Return (path relative to the root, notes) of every indexed run read with warnings.

        These runs are in the index (unlike :meth:`problems`): their files were
        irregular but readable, e.g. a line decoded by the Latin-1 fallback, NUL
        bytes dropped, a line without ``:`` skipped (see
        :func:`pyhermes.rundir.decode_text`).
        """
        rows = self.reader.rows(
            "SELECT path, warnings FROM hermes_run WHERE warnings IS NOT NULL ORDER BY path"
        )
        return [(path, notes.split("\n")) for path, notes in rows]

    def sql(
        self,
        query: str,
        params: Mapping[str, Any] | Sequence[Any] | None = None,
        *,
        timeout: float | None = None,
        limit: int | None = None,
    ) -> SqlResult:
        """Run one read-only SQL statement with bound parameters; return its columns and rows.

        Named parameters (``:name``) take a mapping. The statement runs in a
        read-only transaction that is rolled back, so the index is never changed.
        With ``timeout`` (seconds) the database stops it after that long (SQLite: a
        progress handler on the connection; PostgreSQL: ``SET LOCAL statement_timeout``);
        with ``limit`` at most ``limit`` rows are fetched (``truncated`` says whether
        there were more), so a statement without end (a recursive ``WITH`` that never
        stops) ends at the row limit or the time limit.

        Raises:
            ReadOnlyQueryError: the statement would write (or is not a single statement).
            QueryError: the database rejected the statement (the message is its error),
                or it ran longer than ``timeout``.
        """
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError, StatementError

        _check_read_only(query)
        truncated = False
        with self.engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            stopped = _Deadline(timeout)
            raw = conn.connection.driver_connection if sqlite and timeout is not None else None
            if sqlite:
                conn.exec_driver_sql("PRAGMA query_only = ON")
            else:
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                if timeout is not None:
                    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(timeout * 1000))}")
            if raw is not None:
                raw.set_progress_handler(stopped.passed, 1000)
            try:
                # A server-side cursor on PostgreSQL, so that fetching the first rows does not
                # read all (EXPLAIN cannot be a cursor; its answer is short).
                streamed = not sqlite and _first_word(query) != "explain"
                result = conn.execution_options(stream_results=streamed).execute(
                    text(query), dict(params or {})
                )
                columns = list(result.keys())
                rows: list[tuple[Any, ...]] = []
                if result.returns_rows:
                    fetched = result.fetchall() if limit is None else result.fetchmany(limit + 1)
                    truncated = limit is not None and len(fetched) > limit
                    rows = [tuple(row) for row in fetched[:limit]]
                result.close()
            except (DBAPIError, StatementError) as exc:
                message = str(getattr(exc, "orig", exc)).splitlines()[0]
                if stopped.hit or "statement timeout" in message:
                    raise QueryError(
                        f"stopped: the statement ran longer than the time limit ({timeout:g} s)"
                    ) from None
                if "readonly" in message.lower().replace(" ", "") or "read-only" in message.lower():
                    raise ReadOnlyQueryError(f"refused: the statement would write ({message})") from None
                raise QueryError(f"SQL error: {message}") from None
            finally:
                if raw is not None:
                    raw.set_progress_handler(None, 0)
                conn.rollback()
                if sqlite:
                    conn.exec_driver_sql("PRAGMA query_only = OFF")
        return SqlResult(columns, rows, truncated)

    def frame(
        self,
        scope: Filter,
        order_by: Sequence[str] | str | None = ("path",),
        limit: int | None = None,
    ) -> Any:
        """Return a pandas DataFrame of the runs matching ``scope``, from one SQL query.

        Columns: identifier, path, start_time, end_time, execution_time, finished,
        commit_hash, comments, one per exec-arg key (numbers as numbers, flags as
        True, multi-values as text, a repeated key as the list of its values), one
        per score summary; and ``run_id``, the index id of each row's run; the
        first ``limit`` runs in ``order_by`` when a limit is given. Two queries
        run at once, the runs and their arguments; numpy pivots the arguments into
        columns (see :mod:`pyhermes.index.query.frame`).

        Raises:
            MissingDependencyError: pandas is not installed.
        """
        from pyhermes.index.query.frame import build_frame

        check_index_keys(scope, self)
        return build_frame(self.reader, self.root, scope, order_by, limit)


def as_condition(where: Filter | str | None) -> Filter:
    """``where`` as a filter: ``None`` is everything, expression text is parsed by
    :func:`pyhermes.index.query.grammar.as_filter` (imported only for text: a fresh process
    that filters with objects never loads the grammar).

    Raises:
        QueryError: the text is not a valid expression.
        TypeError: ``where`` is neither a filter nor text.
    """
    if isinstance(where, Filter):
        return where
    if where is None:
        return everything
    from pyhermes.index.query.grammar import as_filter

    return as_filter(where)


def path_is(rel: str) -> Filter:
    """The run stored at ``rel`` (internal: users do not filter on paths)."""
    return ColumnCompare("path", "==", rel)


class _Deadline:
    """The time limit of one statement: :meth:`passed` (a SQLite progress handler) says
    True once ``seconds`` have passed, which makes SQLite stop the statement."""

    def __init__(self, seconds: float | None) -> None:
        self.end = None if seconds is None else time.monotonic() + seconds
        self.hit = False

    def passed(self) -> bool:
        if self.end is not None and time.monotonic() > self.end:
            self.hit = True
        return self.hit


def _first_word(query: str) -> str:
    bare = _strip_sql_literals(query).strip()
    return bare.split(None, 1)[0].lower() if bare else ""


def _strip_sql_literals(query: str) -> str:
    query = re.sub(r"'(?:[^']|'')*'", "''", query)
    query = re.sub(r'"(?:[^"]|"")*"', '""', query)
    query = re.sub(r"--[^\n]*", " ", query)
    return re.sub(r"/\*.*?\*/", " ", query, flags=re.DOTALL)


def _check_read_only(query: str) -> None:
    """Refuse anything but one SELECT / WITH / VALUES / EXPLAIN statement.

    This gives the clear message; the database itself runs the statement read-only
    (SQLite ``PRAGMA query_only``, PostgreSQL ``SET TRANSACTION READ ONLY``), which
    also stops a write hidden in a ``WITH`` or a function.
    """
    bare = _strip_sql_literals(query).strip().rstrip(";").strip()
    if ";" in bare:
        raise ReadOnlyQueryError("refused: give one SQL statement at a time")
    first = bare.split(None, 1)[0].lower() if bare else ""
    if first not in {"select", "with", "values", "explain"}:
        raise ReadOnlyQueryError(
            "refused: only read-only statements (SELECT, WITH, VALUES, EXPLAIN) run here, "
            f"not {first.upper() or 'an empty statement'}"
        )


def _int_array(text: str | None) -> array.array[int]:
    """The integers of a comma-separated ``text`` (``None``: none), parsed a piece at a time."""
    values: array.array[int] = array.array("q")
    text = text or ""
    start, end = 0, len(text)
    while start < end:
        stop = text.find(",", start + _ID_TEXT_PIECE)
        if stop < 0:
            stop = end
        values.extend(map(int, text[start:stop].split(",")))
        start = stop + 1
    return values


def _in_position(positions: array.array[int], ids: array.array[int]) -> array.array[int]:
    """``ids`` ordered by their ``positions`` (1, 2, ...); as they are when already in order."""
    if positions == array.array("q", range(1, len(positions) + 1)):
        return ids
    return array.array("q", (ids[index] for index in sorted(range(len(ids)), key=positions.__getitem__)))
