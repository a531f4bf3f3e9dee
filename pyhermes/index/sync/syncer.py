"""Keeping the index in step with the run directories: the syncer and the sync stage's entry points.

The sync contract (see the README, "The sync contract"):

1. runs added or removed under a folder are always seen (removed runs leave
   the index, never the disk);
2. a run that is unfinished, or had finished less than ``settle_seconds`` before
   it was last read, is checked (sizes and mtimes of its files) on every sync;
3. a finished run that had settled when it was last read is trusted in
   ``quick`` mode; ``full`` mode stats every run and re-reads those whose files
   changed; ``reread`` re-reads every run.

The quick mode makes no per-run system call for settled runs: a folder whose
mtime has not changed since it was listed (and was not changed within
:data:`~pyhermes.index.rules.RACY_SECONDS` of that listing) is not listed again.

The entry point is :func:`sync_folder`: a sync, owning its transactions and their
retries (:func:`~pyhermes.index.sync.transaction.run_in_transaction`), returning
its :class:`SyncReport`. The write-throughs of single runs are
:mod:`pyhermes.index.sync.write_through`.

Many writers: a sync runs in three steps -- decide what to read (from the index
and the folder listings), read those runs
(:func:`~pyhermes.index.sync.run_reading.read_runs`, no database access; read
ahead by workers while the first step still stats runs, see
:class:`pyhermes.index.sync.parallel.ReadAhead`), then write everything in one
short transaction; or, with more than :data:`SLICE_RUNS` runs to read (a first
build), write them slice by slice as they are read, each slice in its own short
transaction, then the rest (removals, settle marks, folder listings) in a last
one (:meth:`Syncer.write_slices`): memory stays bounded by a slice. Every write
is keyed by the run's path and tolerates what another process wrote meanwhile
(:mod:`pyhermes.index.sync.writes`), so any number of syncs and write-throughs
of the same runs commute.

Names: run paths are stored as text. A name that is not valid UTF-8 (read by
Python as lone surrogates, see :func:`os.fsdecode`) is stored with a reversible
escape (:func:`~pyhermes.index.rules.stored_name`,
:func:`~pyhermes.index.rules.disk_name`), so every run directory has a row,
whatever bytes its name holds.
"""

from __future__ import annotations

import copy
import gc
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, and_, delete, func, not_, select

from pyhermes import rundir
from pyhermes.index.query.filters import under
from pyhermes.index.rules import (
    SETTLE_SECONDS,
    SIGNATURE_COLUMNS,
    Signature,
    decode_subfolders,
    disk_name,
    encode_subfolders,
    posix_join,
    posix_parent,
)
from pyhermes.index.store.models import folder_table, problem_table, run_table
from pyhermes.index.sync.listing_merge import (
    RunChecks,
    folder_mtime_ns,
    in_sorted,
    merge_listing,
    sorted_stored_names,
)
from pyhermes.index.sync.parallel import ChunkReader, ReadAhead
from pyhermes.index.sync.progress import READING, SLICE_RUNS, announce
from pyhermes.index.sync.run_reading import ReadResult, iter_read_runs, read_runs, with_progress
from pyhermes.index.sync.transaction import bump_change_token, run_in_transaction
from pyhermes.index.sync.unchanged import listing_still_valid
from pyhermes.index.sync.writes import chunks, remove_runs, settle_runs, store_read, upsert

__all__ = ["SyncReport", "Syncer", "sync_folder", "SLICE_RUNS", "ANALYZE_AFTER", "SYNC_CACHE_KIB"]

T = TypeVar("T")

#: Refresh the planner's statistics after a sync that added or removed this many runs.
ANALYZE_AFTER = 500
#: SQLite page cache of a syncing connection, in KiB.
SYNC_CACHE_KIB = 65536


@dataclass
class SyncReport:
    """What one sync did.

    ``problem_paths`` maps the runs that could not be read (paths relative to the
    root) to the reason; they are not in the index. ``warning_paths`` maps the runs
    read in this sync that were irregular but readable (see
    :func:`pyhermes.rundir.decode_text`) to their notes; they are in the index.
    """

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    problems: int = 0
    seconds: float = 0.0
    problem_paths: dict[str, str] = field(default_factory=dict)
    warning_paths: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dict."""
        return {
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "problems": self.problems,
            "warnings": len(self.warning_paths),
            "seconds": round(self.seconds, 4),
            "problem_paths": dict(self.problem_paths),
            "warning_paths": {path: list(notes) for path, notes in self.warning_paths.items()},
        }


# --------------------------------------------------------------------------- the sync


class Syncer:
    """Syncs the runs below one folder of ``root`` into the index behind ``connection``.

    Paths inside the syncer are stored paths (:func:`stored_name`); ``_abs``
    turns them back into paths on disk.
    """

    def __init__(
        self,
        connection: Connection,
        root: Path,
        settle_seconds: float = SETTLE_SECONDS,
        progress: Callable[[int], None] | None = None,
        early: ChunkReader | None = None,
    ) -> None:
        """``early``: the runs of a first build, read ahead while the index was created
        (:func:`pyhermes.index.sync.run_reading.read_ahead_for_new_index`); taken when they are
        exactly the runs this sync reads, else closed."""
        self._early = early
        self.connection = connection
        self.root = root
        self.settle_seconds = settle_seconds
        self.progress = progress
        self.report = SyncReport()
        self._root_text = str(root)
        self._prefix = self._root_text.rstrip(os.sep) + os.sep
        self._scope_problems: list[Any] = []
        self._gone_folders: list[str] = []
        self._changed = False
        self._pending: _Pending | None = None

    def _abs(self, rel: str) -> str:
        return self._prefix + disk_name(rel) if rel else self._root_text

    def run(
        self, folder: str, recursive: bool, mode: str, reread: bool = False,
        slice_runs: int | None = None,
    ) -> SyncReport | None:
        """Sync the runs in ``folder`` (stored path relative to the root; its tree with ``recursive``).

        ``mode`` is ``"quick"`` or ``"full"``; ``reread`` re-reads every run.
        Returns the report; or, with ``slice_runs`` and more runs than that to
        read, ``None`` having written nothing: :meth:`write_slices` goes on.
        """
        started = time.perf_counter()
        full = mode == "full" or reread
        scope = under(folder, recursive).clause()
        limit = sys.maxsize if slice_runs is None else slice_runs
        # Quick mode fetches the settled runs of a folder only when it must list that
        # folder; a listed folder's runs stream beside its listing (listing_merge).
        known = {} if full else {
            row[1]: row for row in self._known_runs(and_(scope, not_(run_table.c.settled)))
        }
        folders = {row.path: row for row in self._known_folders(folder, recursive)}
        scope_problems = self._known_problems(folder, recursive)
        problems = {row.path for row in scope_problems}
        self._scope_problems = [row for row in scope_problems if row.path not in known]
        # The runs to read are read on the other cores while the sync stats the rest;
        # not when they will be more than a slice (a first build, a reread).
        ahead = None
        if self._early is None and not reread:
            ahead = ReadAhead(read_runs, (self._root_text,), (self.settle_seconds,), limit)
        checks = RunChecks(self._prefix, full, reread, self.settle_seconds, time.time(), ahead)
        # A first build listed its runs (sorted) to read them ahead: no second look at each.
        found_before: Sequence[str] = self._early.items if self._early is not None else ()
        listed_runs: set[str] = set()
        listed_folders: set[str] = set()
        merged_folders: set[str] = set()
        new_runs: list[str] = []
        removed: list[tuple[str, int]] = []
        folder_rows: list[dict[str, Any]] = []
        pending = [folder]
        try:
            while pending:
                current = pending.pop()
                listed_folders.add(current)
                status = folder_mtime_ns(self._abs(current))
                if status is None:
                    continue
                remembered = folders.get(current)
                remembered_names = (
                    None if remembered is None else decode_subfolders(remembered.subfolders)
                )
                if (
                    not full
                    and remembered is not None
                    and remembered_names is not None
                    and listing_still_valid(remembered.mtime_ns, remembered.listed_at, status)
                ):
                    runs_here = [path for path, row in known.items() if row[2] == current]
                    candidates = []
                    for name in remembered_names:
                        rel = posix_join(current, name)
                        if rundir.has_info_file(self._abs(rel)):
                            candidates.append(rel)
                    listed_runs.update(runs_here)
                    listed_runs.update(candidates)
                    new_runs.extend(rel for rel in candidates if rel not in known)
                    new_runs.extend(
                        path for path in problems if posix_parent(path) == current and path not in known
                    )
                    subfolder_paths = [posix_join(current, n) for n in remembered_names]
                    subfolder_paths = [p for p in subfolder_paths if p not in candidates]
                else:
                    merge = merge_listing(
                        current,
                        sorted_stored_names(rundir.list_subfolders(self._abs(current))),
                        self._folder_runs(current),
                        lambda path: in_sorted(found_before, path) or rundir.has_info_file(self._abs(path)),
                        problems,
                        checks,
                        forget=lambda path: known.pop(path, None),
                    )
                    merged_folders.add(current)
                    if remembered_names is not None:
                        # A subfolder that is gone takes every run below it out of the index.
                        self._gone_folders.extend(
                            posix_join(current, name) for name in remembered_names if not merge.has(name)
                        )
                    new_runs.extend(merge.new)
                    removed.extend(merge.removed)
                    listed_runs.update(merge.problems)
                    subfolder_paths = [posix_join(current, name) for name in merge.others]
                    subfolders = encode_subfolders(merge.others)
                    # A listing the index already holds, still valid, is not written again:
                    # a full sync that finds nothing changed leaves the index file as it was
                    # (the next process then need not check the file again).
                    if not (
                        remembered is not None
                        and remembered.subfolders == subfolders
                        and listing_still_valid(remembered.mtime_ns, remembered.listed_at, status)
                    ):
                        folder_rows.append(
                            {
                                "path": current,
                                "mtime_ns": status,
                                "listed_at": time.time(),
                                "subfolders": subfolders,
                            }
                        )
                if recursive:
                    pending.extend(sorted(subfolder_paths, reverse=True))
            if full and (recursive or folder not in merged_folders):
                removed.extend(self._orphans(scope, merged_folders))
            if ahead is not None and len(new_runs) + len(checks.to_read) > limit:
                ahead.close()  # more than a slice: read slice by slice (what it read is dropped)
                ahead = checks.ahead = None
            plan = self._plan(known, listed_runs, new_runs, removed, checks)
            self._pending = _Pending(plan, folder_rows, folders, listed_folders, recursive, scope, started)
            announce(self.progress, READING, len(plan.to_read))
            if len(plan.to_read) > limit:
                return None  # many runs to read: the caller writes them slice by slice
            if ahead is not None:
                results = list(with_progress(ahead.results(), self.progress))
            else:
                results = list(self._read(plan.to_read))
        finally:
            if ahead is not None:
                ahead.close()
        # Everything above only read; the writes below go in one short transaction.
        self.store(results, new=plan.new)
        return self.finish()

    def _read(self, paths: list[str]) -> Iterator[ReadResult]:
        """Yield what :func:`iter_read_runs` yields for ``paths``: the runs read ahead
        (``early``) when they are those, read the same way; else read now."""
        early, self._early = self._early, None
        if early is not None:
            if (early.head, early.items, early.tail) == ((self._root_text,), paths, (self.settle_seconds,)):
                plan = self._pending.plan if self._pending is not None else None
                if plan is not None and plan.to_read is paths:
                    # A first build listed its runs twice (the reads ahead, then the sync): keep
                    # one copy of their paths, not two (~80 MB at a million runs).
                    plan.to_read, plan.new = early.items, {path for path in early.items if path in plan.new}
                del paths
                yield from with_progress(early, self.progress)
                return
            early.close()
        yield from iter_read_runs(self._root_text, paths, self.settle_seconds, self.progress)

    def finish(self) -> SyncReport:
        """Write what :meth:`run` decided besides the runs read: removals, settle marks,
        folder listings, the change token; refresh the planner's statistics after a sync
        that added or removed :data:`ANALYZE_AFTER` runs or more; return the report."""
        pending = self._pending
        assert pending is not None, "finish() follows run()"
        self._write(pending.plan, pending.folder_rows)
        self._forget_folders(pending.folders, pending.listed_folders, pending.recursive)
        if self._changed:
            bump_change_token(self.connection)
        total = self.connection.execute(
            select(func.count()).select_from(run_table).where(pending.scope)
        ).scalar_one()
        self.report.unchanged = max(total - self.report.added - self.report.updated, 0)
        self.report.seconds = time.perf_counter() - pending.started
        if self.report.added + self.report.removed >= ANALYZE_AFTER:
            _analyze(self.connection)
        return self.report

    def write_slices(self, engine: Engine, slice_runs: int) -> SyncReport:
        """Read the runs :meth:`run` left to read and write them ``slice_runs`` at a time,
        each slice in its own transaction (retried alone), then :meth:`finish` in one more.

        Memory stays bounded by a slice, other writers wait at most for one slice,
        and readers see the runs arrive while the sync goes on. A sync killed
        midway leaves whole runs written (each run is written in one transaction)
        and no folder listing remembered, so the next sync lists the folders
        again and reads only the runs still missing.
        """
        pending = self._pending
        assert pending is not None, "write_slices() follows run()"
        plan = pending.plan
        batch: list[ReadResult] = []
        # What is alive now (the modules, the plan) lasts the whole build: the cyclic
        # collector, walking it again and again, took 0.4 s of the writer's 2.4 s at 10,000
        # runs, 2.2 s at 100,000. Frozen, it is left out of every collection, while the
        # cycles each slice's writes leave behind are still collected.
        gc.freeze()
        try:
            for result in self._read(plan.to_read):
                batch.append(result)
                if len(batch) >= slice_runs:
                    self._write_slice(engine, batch, plan.new)
                    batch = []
            if batch:
                self._write_slice(engine, batch, plan.new)
        finally:
            gc.unfreeze()
        return self._transaction(engine, self.finish, "sync")

    def _write_slice(self, engine: Engine, batch: list[ReadResult], new: set[str]) -> None:
        def work() -> None:
            self.store(batch, new=new)
            if self._changed:
                bump_change_token(self.connection)

        self._transaction(engine, work, "sync")

    def _transaction(self, engine: Engine, work: Callable[[], T], what: str) -> T:
        """Run ``work()`` with :attr:`connection` in a transaction of ``engine`` (retried by
        :func:`run_in_transaction`); each attempt starts from the report as it was."""
        saved = copy.deepcopy(self.report)

        def attempt(connection: Connection) -> T:
            self.connection = connection
            self.report = copy.deepcopy(saved)
            self._changed = False
            return work()

        return run_in_transaction(engine, attempt, what)

    def _plan(
        self,
        known: dict[str, Any],
        listed_runs: set[str],
        new_runs: list[str],
        removed: list[tuple[str, int]],
        checks: RunChecks,
    ) -> _Plan:
        """Decide, from what was read of the index and the disk, what to read and remove.

        ``known`` holds the rows of the runs no listing decided (unsettled runs of
        folders whose listing still held); ``removed`` and ``checks`` what the listings
        decided. Each run to read is named to ``checks.ahead`` as soon as it is known.
        """
        plan = _Plan()
        plan.removed = removed + [(row[1], row[0]) for path, row in known.items() if path not in listed_runs]
        plan.new = set(new_runs)
        to_read = sorted(plan.new)
        if checks.ahead is not None:
            for path in to_read:
                checks.ahead.add(path)
        for path in listed_runs:
            row = known.get(path)
            if row is not None:
                checks.check(path, row)
        plan.newly_settled = checks.newly_settled
        retried = plan.new
        plan.vanished_problems = [
            row.path
            for row in self._scope_problems
            if row.path not in listed_runs and row.path not in retried
        ]
        to_read += checks.to_read
        to_read.sort()  # no path twice: the runs checks decided are known, the new ones not
        plan.to_read = to_read
        return plan

    def _write(self, plan: _Plan, folder_rows: list[dict[str, Any]]) -> None:
        """Apply a plan (but for the runs read for it, see :meth:`store`); every write
        tolerates concurrent writers (see :mod:`pyhermes.index.sync.writes`)."""
        conn = self.connection
        self.report.removed += remove_runs(conn, plan.removed, self._gone_folders)
        if self.report.removed:
            self._changed = True
        for chunk in chunks(sorted(plan.vanished_problems), 500):
            conn.execute(delete(problem_table).where(problem_table.c.path.in_(chunk)))
        if plan.newly_settled:
            settle_runs(conn, plan.newly_settled)
        if folder_rows:
            upsert(conn, folder_table, ["path"], sorted(folder_rows, key=lambda row: row["path"]))

    def store(self, results: list[ReadResult], new: set[str] | None = None) -> None:
        """Write the runs read (:func:`~pyhermes.index.sync.writes.store_read`) and count them
        in the report. ``new`` names the paths not found in the index (counted as added)."""
        stored = store_read(self.connection, results, new)
        report = self.report
        report.added += stored.added
        report.updated += stored.updated
        report.problems += stored.problems
        report.problem_paths.update(stored.problem_paths)
        report.warning_paths.update(stored.warning_paths)
        if stored.changed:
            self._changed = True

    # ------------------------------------------------------------------ index reads

    @staticmethod
    def _known_columns() -> list[Any]:
        return [
            run_table.c.id,
            run_table.c.path,
            run_table.c.parent,
            run_table.c.settled,
            run_table.c.finished,
            *(run_table.c[name] for name in SIGNATURE_COLUMNS),
        ]

    def _known_runs(self, condition: Any) -> list[tuple[Any, ...]]:
        statement = select(*self._known_columns()).where(condition)
        return [tuple(row) for row in self.connection.execute(statement)]

    def _folder_runs(self, folder: str) -> Iterator[tuple[Any, ...]]:
        """The rows (as :meth:`_known_runs`) of the runs whose parent is ``folder``, in path
        order (code point order, as Python compares), streamed from the index."""
        path = run_table.c.path
        if self.connection.dialect.name == "postgresql":
            path = path.collate("C")  # the byte order of UTF-8 is the code point order
        statement = (
            select(*self._known_columns()).where(run_table.c.parent == folder).order_by(path)
            .execution_options(yield_per=2000)
        )
        for row in self.connection.execute(statement):
            yield tuple(row)

    def _orphans(self, scope: Any, listed: set[str]) -> list[tuple[str, int]]:
        """``(path, id)`` of the runs in ``scope`` whose parent folder was not listed (gone)."""
        columns = (run_table.c.path, run_table.c.id, run_table.c.parent)
        statement = select(*columns).where(scope).execution_options(yield_per=2000)
        return [(path, run_id) for path, run_id, parent in self.connection.execute(statement) if parent not in listed]

    def _known_folders(self, folder: str, recursive: bool) -> list[Any]:
        condition = folder_table.c.path == folder
        if recursive and folder:
            condition = condition | folder_table.c.path.startswith(folder + "/", autoescape=True)
        elif recursive:
            condition = folder_table.c.path.is_not(None)
        return list(self.connection.execute(select(folder_table).where(condition)))

    def _known_problems(self, folder: str, recursive: bool) -> list[Any]:
        """The problem records of the runs below ``folder`` (directly in it, unless recursive)."""
        column = problem_table.c.path
        condition = column.startswith(folder + "/", autoescape=True) if folder else column.is_not(None)
        rows = list(self.connection.execute(select(problem_table).where(condition)))
        if not recursive:
            rows = [row for row in rows if posix_parent(row.path) == folder]
        return rows

    def _forget_folders(self, folders: dict[str, Any], listed: set[str], recursive: bool) -> None:
        if not recursive:
            return
        gone = sorted(path for path in folders if path not in listed)
        for chunk in chunks(gone, 500):
            self.connection.execute(delete(folder_table).where(folder_table.c.path.in_(chunk)))


@dataclass
class _Pending:
    """What :meth:`Syncer.run` decided and listed, for the writes that follow."""

    plan: _Plan
    folder_rows: list[dict[str, Any]]
    folders: dict[str, Any]
    listed_folders: set[str]
    recursive: bool
    scope: Any
    started: float


@dataclass
class _Plan:
    """What a sync decided from its reads of the index and the disk."""

    to_read: list[str] = field(default_factory=list)
    new: set[str] = field(default_factory=set)
    removed: list[tuple[str, int]] = field(default_factory=list)
    newly_settled: list[tuple[str, Signature]] = field(default_factory=list)
    vanished_problems: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- entry points


def sync_folder(
    engine: Engine,
    root: Path,
    folder: str,
    *,
    recursive: bool,
    mode: str,
    reread: bool = False,
    settle_seconds: float = SETTLE_SECONDS,
    progress: Callable[[int], None] | None = None,
    early: ChunkReader | None = None,
) -> SyncReport:
    """Sync the runs in ``folder`` (stored path relative to ``root``; its tree with ``recursive``)
    into the index of ``engine``; return the report.

    ``mode`` is ``"quick"`` or ``"full"``; ``reread`` re-reads every run. The
    sync owns its transactions: one short one, or, with more than
    :data:`SLICE_RUNS` runs to read, one per slice and a last one
    (:meth:`Syncer.write_slices`). A transaction that lost a race with another
    writer is rolled back and run again (:func:`run_in_transaction`), from a new
    :class:`Syncer`. ``early``: the runs read ahead while a new index was created
    (:func:`~pyhermes.index.sync.run_reading.read_ahead_for_new_index`), taken by
    the first attempt only and closed when the sync is done.

    Raises:
        IndexBusyError: the index stayed locked past the limit (see :func:`run_in_transaction`).
    """
    attempts: list[Syncer] = []

    def work(conn: Connection) -> tuple[Syncer, SyncReport | None]:
        if conn.dialect.name == "sqlite":
            # A first build inserts into indexes larger than SQLite's default 2 MiB
            # page cache: a bigger one keeps their pages in memory.
            conn.exec_driver_sql(f"PRAGMA cache_size=-{SYNC_CACHE_KIB}")
        if attempts and early is not None:
            early.close()  # a retry reads again: the reads ahead may be stale
        syncer = Syncer(conn, root, settle_seconds, progress, early=None if attempts else early)
        attempts.append(syncer)
        return syncer, syncer.run(folder, recursive, mode, reread, slice_runs=SLICE_RUNS)

    try:
        syncer, report = run_in_transaction(engine, work, "sync")
        return report if report is not None else syncer.write_slices(engine, SLICE_RUNS)
    finally:
        if early is not None:
            early.close()


def _analyze(conn: Connection) -> None:
    """Fresh statistics for the query planner, after a sync that changed many runs."""
    if conn.dialect.name == "sqlite":
        # From a sample of each index (a full ANALYZE reads every index: seconds at 100,000 runs).
        conn.exec_driver_sql("PRAGMA analysis_limit=1000")
        conn.exec_driver_sql("ANALYZE")
    elif conn.dialect.name == "postgresql":
        # Autovacuum analyzes a table a minute or more later: queries right after a
        # first build would be planned without statistics.
        conn.exec_driver_sql("ANALYZE hermes_run, hermes_arg, hermes_info, hermes_tag, hermes_note")
