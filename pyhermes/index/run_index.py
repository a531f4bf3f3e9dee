"""The index of run directories, opened on a folder: syncing it and answering in SQL.

Storage contract: the run directories are the source of truth. An :class:`RunIndex`
reads them (never writes or deletes them) and keeps the index a faithful cache.

Dependencies point one way: ``pyhermes.storage`` -> ``pyhermes.index`` ->
``pyhermes.rundir``. This package answers with rows, ids and DataFrames of
columns and never imports :mod:`pyhermes.storage`; the documented
:class:`pyhermes.Catalog` (in ``storage``) subclasses :class:`RunIndex` and turns
rows into :class:`~pyhermes.storage.Experiment` objects.

Reads are SQL text from :mod:`pyhermes.index.query.filters` run by a
:mod:`pyhermes.index.store.sql_reader`: the standard library's sqlite3 for a SQLite
index at the current schema (SQLAlchemy is then not imported at all), else
SQLAlchemy. Writes (sync, write-through, forget) open the SQLAlchemy engine.
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyhermes import rundir
from pyhermes.errors import CatalogError, QueryError, ReadOnlyQueryError, RunFormatProblemsWarning
from pyhermes.index.query.filters import (
    ARG_SORT_PARTS,
    ColumnCompare,
    Filter,
    Params,
    arg_sort_key,
    everything,
    select_runs,
    select_runs_by_arg,
    under,
    window_bound,
)
from pyhermes.index.rules import SETTLE_SECONDS, SYNC_MODES, disk_name, relative
from pyhermes.index.store.layout import CHANGE_TOKEN_KEY, SUMMARY_COLUMNS
from pyhermes.index.store.sql_reader import (
    EngineReader,
    Reader,
    SqliteReader,
    open_sqlite_reader,
    to_datetime,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from pyhermes.index.store.location import IndexLocation
    from pyhermes.index.sync.parallel import ChunkReader
    from pyhermes.index.sync.syncer import SyncReport

__all__ = [
    "RunIndex", "SqlResult", "as_condition", "RunFormatProblemsWarning", "write_through", "writes_through", "WRITE_THROUGH_VAR",
    "RUN_ROW", "check_sync_mode",
]

#: Up to this many runs wanted, an order on one indexed column searches a window first.
WINDOW_LIMIT = 100

#: The columns of a run row (:meth:`RunIndex.run_rows`): enough to build a run object.
RUN_ROW = ("id", "path", "commit_hash", "start_time")

# Refresh the planner's statistics after a sync that added or removed this many runs.
_ANALYZE_AFTER = 500
#: SQLite page cache of a syncing connection, in KiB.
SYNC_CACHE_KIB = 65536


@dataclass(frozen=True)
class SqlResult:
    """The answer of :meth:`Catalog.sql`: column names and rows (tuples)."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    def as_dicts(self) -> list[dict[str, Any]]:
        """Return the rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row, strict=False)) for row in self.rows]


class RunIndex:
    """An index of the run directories below a root folder.

    Open it with :meth:`open`; :class:`pyhermes.Catalog` adds the methods that
    return runs. ``engine`` (SQLAlchemy) is opened on first use: reads of a SQLite
    index at the current schema do not need it.
    """

    def __init__(
        self,
        engine: Engine | None,
        root: Path,
        location: IndexLocation | None = None,
        *,
        reader: Reader | None = None,
    ) -> None:
        self._engine = engine
        self.root = root
        self.location = location
        self._reader = reader
        self.settle_seconds = SETTLE_SECONDS
        self._folder: Path | None = None
        self._early: ChunkReader | None = None

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine of the index (opened, and the schema checked, on first use)."""
        if self._engine is None:
            from pyhermes.index.store.engine import open_engine

            assert self.location is not None
            if isinstance(self._reader, SqliteReader):
                # Its connection made SQLite's -wal file; closed, the file is as the
                # opening's integrity check last saw it (see engine.quick_check).
                self._reader.close()
            self._engine = open_engine(self.location)
        return self._engine

    @property
    def reader(self) -> Reader:
        """What runs the read queries (see :mod:`pyhermes.index.store.sql_reader`)."""
        if self._reader is None:
            self._reader = EngineReader(self.engine)
        return self._reader

    @property
    def url(self) -> str:
        """The URL of the index (an SQLAlchemy URL)."""
        if self.location is not None:
            return self.location.url
        return self.engine.url.render_as_string(hide_password=False)

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] = ".",
        index: str | os.PathLike[str] | None = None,
        sync: str = "quick",
    ) -> Any:
        """Open the index serving ``path`` and sync the whole tree below ``path`` into it.

        ``index`` is a SQLite file path or an SQLAlchemy URL; ``None`` applies the
        rule of the README ("Where the index lives"). ``sync`` is ``"quick"``,
        ``"full"`` or ``"none"``. Returns an instance of ``cls``.

        Raises:
            FileNotFoundError: ``path`` is not a directory.
            ValueError: ``sync`` is not a known mode.
            CatalogError: ``sync="none"`` and no index serves ``path`` yet.
            IndexVersionError: the index was written by a newer pyhermes.
        """
        from pyhermes.index.store.location import find_index

        check_sync_mode(sync)
        folder = Path(path)
        if not folder.is_dir():
            raise FileNotFoundError(f"no such directory: {folder}")
        if sync == "none" and find_index(folder.resolve(), index) is None:
            raise CatalogError(
                f"no index serves {folder} yet, and sync='none' does not build one: "
                f"load it once with sync='quick', or run: hermes-reindex {folder}"
            )
        catalog = cls.open_index(folder, index, syncs_tree=None if sync == "none" else True)
        catalog.refresh(folder, recursive=True, mode=sync)
        return catalog

    @classmethod
    def open_index(
        cls, folder: Path, index: str | os.PathLike[str] | None = None, *, syncs_tree: bool | None = None
    ) -> Any:
        """Open the index serving ``folder`` without syncing; create or migrate it as needed.

        Used by ``hermes-reindex`` and ``load_all``, which sync right after. A SQLite
        index at the current schema is opened for reading with the standard library only.
        ``syncs_tree`` says that the caller syncs ``folder`` next (its whole tree when
        True): a new SQLite index then reads the runs ahead, on every core, while it
        is created (:func:`pyhermes.index.sync.run_reading.read_ahead_for_new_index`).
        """
        from pyhermes.index.store.location import resolve_index

        resolved = folder.resolve()
        location = resolve_index(resolved, index)
        served = open_sqlite_reader(location)
        if served is not None:
            reader, root = served
            catalog = cls(None, root, location, reader=reader)
        else:
            from pyhermes.index.store.engine import index_root, open_engine

            early = None
            if (
                syncs_tree is not None
                and location.file is not None
                and location.root == resolved
                and not location.file.exists()
            ):
                from pyhermes.index.sync.run_reading import read_ahead_for_new_index

                early = read_ahead_for_new_index(str(resolved), syncs_tree)
            try:
                engine = open_engine(location)
            except BaseException:
                if early is not None:
                    early.close()
                raise
            catalog = cls(engine, Path(index_root(engine, location, resolved)), location)
            catalog._early = early
        catalog._folder = resolved
        return catalog

    def _rel(self, path: str | os.PathLike[str]) -> str:
        return relative(self.root, Path(path).resolve())

    # ------------------------------------------------------------------ syncing

    def refresh(self, path: str | os.PathLike[str], *, recursive: bool, mode: str) -> None:
        """Sync ``path`` in ``mode`` unless a quick sync is sure to find nothing to do.

        That check (:func:`pyhermes.index.sync.unchanged.nothing_to_sync`) only reads: on the
        standard-library read path of a SQLite index it needs no SQLAlchemy, and on
        PostgreSQL it spares a transaction (which, in a live lab, would read the running
        jobs' runs again each time).
        """
        check_sync_mode(mode)
        if mode == "none":
            return
        if mode == "quick":
            from pyhermes.index.sync.unchanged import nothing_to_sync

            relisted: list[tuple[str, int, float]] = []
            if self._quick_check(nothing_to_sync, path, recursive, relisted):
                if relisted:
                    self._remember_listings(relisted)
                return
        self.sync(path, recursive=recursive, mode=mode)

    def _quick_check(
        self, check: Callable[..., bool], path: str | os.PathLike[str], recursive: bool, relisted: list[Any]
    ) -> bool:
        """``check`` (the quick check) on this index; a database that is busy through SQLAlchemy
        (a PostgreSQL lock timeout) is "not sure": the sync, which waits and retries, follows."""
        if isinstance(self._reader, SqliteReader):
            return check(self.reader, self.root, self._rel(path), recursive, relisted)
        from sqlalchemy.exc import DBAPIError

        try:
            return check(self.reader, self.root, self._rel(path), recursive, relisted)
        except DBAPIError:
            return False

    def _remember_listings(self, listings: Sequence[tuple[str, int, float]]) -> None:
        """Store folder listings the quick check found to hold what the index holds, so that the
        next process trusts them unlisted. Only an optimisation: a write that fails (a busy or
        read-only index) is skipped, and the next check lists the folder again."""
        sql = "UPDATE hermes_folder SET mtime_ns = :mtime_ns, listed_at = :listed_at WHERE path = :path"
        rows = [{"path": path, "mtime_ns": mtime_ns, "listed_at": listed_at} for path, mtime_ns, listed_at in listings]
        if isinstance(self._reader, SqliteReader):
            from pyhermes.index.store import guard

            try:
                connection = guard.connect(self._reader.file, ("PRAGMA busy_timeout=1000",))
            except sqlite3.Error:
                return
            try:
                connection.executemany(sql, rows)
                connection.commit()
            except sqlite3.Error:
                connection.rollback()
            finally:
                guard.close_recorded(self._reader.file, [connection])
            return
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self.engine.begin() as conn:
                conn.execute(text(sql), rows)
        except SQLAlchemyError:
            return

    def sync(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        recursive: bool = True,
        mode: str = "full",
        reread: bool = False,
        progress: Callable[[int], None] | None = None,
        warn: bool = True,
    ) -> SyncReport:
        """Bring the index in step with the runs below ``path`` (default: the folder opened).

        Returns the :class:`SyncReport`. With ``warn``, one warning names how many
        runs could not be read and how to see them.
        """
        # Runs read ahead while a new index was created: for this sync's first attempt only.
        early, self._early = self._early, None
        try:
            return self._sync(path, recursive, mode, reread, progress, warn, early)
        finally:
            if early is not None:
                early.close()

    def _sync(
        self,
        path: str | os.PathLike[str] | None,
        recursive: bool,
        mode: str,
        reread: bool,
        progress: Callable[[int], None] | None,
        warn: bool,
        early: ChunkReader | None,
    ) -> SyncReport:
        """:meth:`sync`, given the runs read ahead (``early``, closed by the caller)."""
        from pyhermes.index.sync import syncer as syncer_module
        from pyhermes.index.sync.syncer import Syncer, SyncReport, run_in_transaction

        check_sync_mode(mode)
        folder = Path(path) if path is not None else (self._folder or self.root)
        if mode == "none":
            return SyncReport()
        rel = self._rel(folder)

        def finish(conn: Any, report: SyncReport) -> None:
            if report.added + report.removed < _ANALYZE_AFTER:
                return
            if conn.dialect.name == "sqlite":
                # Fresh statistics for the planner, from a sample of each index
                # (a full ANALYZE reads every index: seconds at 100,000 runs).
                conn.exec_driver_sql("PRAGMA analysis_limit=1000")
                conn.exec_driver_sql("ANALYZE")
            elif conn.dialect.name == "postgresql":
                # Autovacuum analyzes a table a minute or more later: queries right after a
                # first build would be planned without statistics.
                conn.exec_driver_sql("ANALYZE hermes_run, hermes_arg, hermes_info")

        syncers: list[Syncer] = []

        def work(conn: Any) -> tuple[Syncer, SyncReport | None]:
            if conn.dialect.name == "sqlite":
                # A first build inserts into indexes larger than SQLite's default 2 MiB
                # page cache: a bigger one keeps their pages in memory.
                conn.exec_driver_sql(f"PRAGMA cache_size=-{SYNC_CACHE_KIB}")
            if syncers and early is not None:
                early.close()  # a retry reads again: the reads ahead may be stale
            syncer = Syncer(conn, self.root, self.settle_seconds, progress, early=None if syncers else early)
            syncers.append(syncer)
            report = syncer.run(rel, recursive, mode, reread, slice_runs=syncer_module.SLICE_RUNS)
            if report is not None:
                finish(conn, report)
            return syncer, report

        # Another process may sync or write the same runs: a transaction that lost
        # that race is rolled back and run again (see run_in_transaction). Many runs
        # to read are written in slices, each in its own transaction.
        syncer, done = run_in_transaction(self.engine, work, "sync")
        report = done if done is not None else syncer.write_slices(
            self.engine, syncer_module.SLICE_RUNS, finish
        )
        if warn and report.problems:
            warnings.warn(
                f"{report.problems} run(s) under {folder} could not be read and were skipped; "
                f"see them with: hermes-reindex --check {folder}",
                RunFormatProblemsWarning,
                stacklevel=3,
            )
        if warn and report.warning_paths:
            first = next(iter(report.warning_paths.values()))[0]
            warnings.warn(
                f"{len(report.warning_paths)} run(s) under {folder} were read with warnings "
                f"and loaded (first: {first}); see them with: hermes-reindex --check {folder}",
                rundir.RunFormatWarning,
                stacklevel=3,
            )
        return report

    # ------------------------------------------------------------------ queries

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
            for run_id, path, commit_hash, start in self._select(RUN_ROW, where, order_by, limit, offset)
        ]

    def _select(
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
        return [run_id for (run_id,) in self._select(["id"], as_condition(where), order_by or [], limit, offset)]

    def count(self, where: Filter | str | None = None) -> int:
        """Return how many runs (below the opened folder) match ``where``."""
        return self.count_in(self._scope() & as_condition(where))

    def count_in(self, condition: Filter) -> int:
        """Return how many runs match ``condition`` (no folder scope added)."""
        sql, params = select_runs(["COUNT(*)"], condition)
        return int(self.reader.rows(sql, params)[0][0])

    def holds_exactly(self, condition: Filter, run_ids: Sequence[int]) -> bool:
        """True when the runs matching ``condition`` are still ``run_ids``, the ones that matched
        when those ids were read: as many, and none added (a new run's id is above every id
        the index held). One aggregate over the condition's index, no row fetched."""
        sql, params = select_runs(["COUNT(*)", "MAX(id)"], condition)
        ((count, newest),) = self.reader.rows(sql, params)
        return int(count) == len(run_ids) and (newest if count else None) == (max(run_ids) if run_ids else None)

    def any_in(self, condition: Filter) -> bool:
        """Return True when some run matches ``condition``."""
        sql, params = select_runs(["id"], condition, limit=1)
        return bool(self.reader.rows(sql, params))

    def ids_in(self, run_ids: Iterable[int]) -> Filter:
        """The filter of the runs with these index ids."""
        from pyhermes.index.query.filters import RunIds

        return RunIds(tuple(run_ids))

    def _scope(self) -> Filter:
        if self._folder is None:
            return everything
        return under(self._rel(self._folder), True)

    def details(self, what: str, run_ids: Sequence[int]) -> dict[int, Any]:
        """Return, per run id, its ``"info"`` dict, ``"args"`` lines or ``"summary"`` fields.

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

    def sql(self, query: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> SqlResult:
        """Run one read-only SQL statement with bound parameters; return its columns and rows.

        Named parameters (``:name``) take a mapping. The statement runs in a
        read-only transaction that is rolled back, so the index is never changed.

        Raises:
            ReadOnlyQueryError: the statement would write (or is not a single statement).
            QueryError: the database rejected the statement; the message is its error.
        """
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError, StatementError

        _check_read_only(query)
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA query_only = ON")
            else:
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            try:
                result = conn.execute(text(query), dict(params or {}))
                columns = list(result.keys())
                rows = [tuple(row) for row in result] if result.returns_rows else []
            except (DBAPIError, StatementError) as exc:
                message = str(getattr(exc, "orig", exc)).splitlines()[0]
                if "readonly" in message.lower().replace(" ", "") or "read-only" in message.lower():
                    raise ReadOnlyQueryError(f"refused: the statement would write ({message})") from None
                raise QueryError(f"SQL error: {message}") from None
            finally:
                conn.rollback()
                if conn.dialect.name == "sqlite":
                    conn.exec_driver_sql("PRAGMA query_only = OFF")
        return SqlResult(columns, rows)

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

        return build_frame(self.reader, self.root, scope, order_by, limit)

    def forget(self, experiment: Any) -> None:
        """Drop one run (anything with a ``path_to_experiment``) from the index, after its erase."""
        from sqlalchemy import delete, select

        from pyhermes.index.store.models import arg_table, info_table, run_table
        from pyhermes.index.sync.syncer import bump_change_token, run_in_transaction

        rel = self._rel(experiment.path_to_experiment)

        def work(conn: Any) -> None:
            run_id = conn.execute(select(run_table.c.id).where(run_table.c.path == rel)).scalar()
            if run_id is not None:
                conn.execute(delete(arg_table).where(arg_table.c.run_id == run_id))
                conn.execute(delete(info_table).where(info_table.c.run_id == run_id))
                conn.execute(delete(run_table).where(run_table.c.id == run_id))
            bump_change_token(conn)

        run_in_transaction(self.engine, work, "removal")

    def upsert(self, run_dir: Path) -> None:
        """Read one run directory and store it in the index (write-through of new runs).

        The run is read first; the write is keyed by its path, so it commutes with
        syncs and other write-throughs of the same run. Raises what
        :func:`~pyhermes.index.sync.syncer.run_in_transaction` raises.
        """
        from pyhermes.index.sync.syncer import (
            Syncer,
            bump_change_token,
            read_runs,
            run_in_transaction,
        )

        results = read_runs(str(self.root), [self._rel(run_dir)], self.settle_seconds)

        def work(conn: Any) -> None:
            Syncer(conn, self.root, self.settle_seconds).store(results)
            bump_change_token(conn)

        run_in_transaction(self.engine, work, "write-through")


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




def check_sync_mode(mode: str) -> None:
    """Raise ValueError unless ``mode`` is one of :data:`~pyhermes.index.rules.SYNC_MODES`."""
    if mode not in SYNC_MODES:
        raise ValueError(f"sync must be one of {', '.join(SYNC_MODES)}, not {mode!r}")


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


def _existing_index_for(folder: Path) -> Path | None:
    for candidate in (folder, *folder.parents):
        index_file = candidate / ".hermes" / "index.sqlite"
        if index_file.is_file():
            return candidate
    return None


#: Environment variable that turns the write-through of new runs on (``1``) or off (``0``).
WRITE_THROUGH_VAR = "HERMES_WRITE_THROUGH"


def writes_through(location: IndexLocation) -> bool:
    """True when a run just written should be stored in the index at ``location`` right away.

    ``$HERMES_WRITE_THROUGH`` decides when set (``1``/``true``/``on`` or
    ``0``/``false``/``off``). Otherwise yes, except for a SQLite file on a
    network filesystem: there many nodes writing one file is fragile, so jobs
    write their run directories only and the next reader's sync indexes them.
    """
    from pyhermes.index.store.sqlitefile import on_network_filesystem

    value = os.environ.get(WRITE_THROUGH_VAR, "").strip().lower()
    if value in ("1", "true", "on", "yes"):
        return True
    if value in ("0", "false", "off", "no"):
        return False
    return location.file is None or not on_network_filesystem(location.file.parent)


def write_through(experiment: Any, index: Any) -> None:
    """Store a run just written by pyhermes in the index serving it, if one exists.

    Used by :meth:`Experiment.create`, ``finish`` and ``store_comments``. Without
    an explicit ``index``, ``HERMES_INDEX`` or an existing ``.hermes/index.sqlite``
    above the run, nothing is written; nor where :func:`writes_through` says no
    (the run is indexed by the next sync). An index that cannot be updated only
    costs a warning: the run directory is complete either way.
    """
    from pyhermes.index.store.engine import index_root, open_engine
    from pyhermes.index.store.location import resolve_index

    run_dir = experiment.path_to_experiment.resolve()
    explicit = index if index not in (None, True) else os.environ.get("HERMES_INDEX") or None
    try:
        if experiment._catalog is not None:
            catalog = experiment._catalog
            if catalog.location is not None and not writes_through(catalog.location):
                return
        else:
            serving = run_dir.parent
            if explicit is None:
                found = _existing_index_for(serving)
                if found is None:
                    return
                serving = found
            location = resolve_index(serving, explicit)
            if not writes_through(location):
                return
            engine = open_engine(location)
            catalog = RunIndex(engine, Path(index_root(engine, location, serving)), location)
            experiment._catalog = catalog
        catalog.upsert(run_dir)
    except Exception as exc:  # noqa: BLE001 - the run on disk is what matters
        warnings.warn(f"run {experiment.identifier} was written but not indexed: {exc}", stacklevel=3)
