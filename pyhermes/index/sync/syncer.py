"""Keeping the index in step with the run directories.

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
:data:`RACY_SECONDS` of that listing) is not listed again.

Many writers: a sync runs in three steps -- decide what to read (from the index
and the folder listings), read those runs (:func:`read_runs`, no database
access; read ahead by a worker while the first step still stats runs, see
:class:`pyhermes.index.sync.parallel.ReadAhead`), then write everything in one short
transaction (a re-read run's args and info rows are rewritten only if they
changed); or, with more than
:data:`SLICE_RUNS` runs to read (a first build), write them slice by slice as
they are read, each slice in its own short transaction, then the rest
(removals, settle marks, folder listings) in a last one
(:meth:`Syncer.write_slices`): memory stays bounded by a slice. Every write is keyed by
the run's path and tolerates what another process wrote meanwhile (``INSERT ...
ON CONFLICT (path) DO UPDATE``; deletes and settle marks name the exact rows
they decided on), so any number of syncs and write-throughs of the same runs
commute. :func:`run_in_transaction` retries a transaction that lost a race
(locked, deadlock, serialization failure) with backoff and jitter, up to
:func:`busy_limit` seconds, then raises :class:`IndexBusyError` naming what
holds the database.

Names: run paths are stored as text. A name that is not valid UTF-8 (read by
Python as lone surrogates, see :func:`os.fsdecode`) is stored with a reversible
escape (:func:`stored_name`, :func:`disk_name`), so every run directory has a
row, whatever bytes its name holds.
"""

from __future__ import annotations

import copy
import gc
import operator
import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    delete,
    func,
    insert,
    not_,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError

from pyhermes import rundir
from pyhermes.errors import IndexBusyError
from pyhermes.index.query.filters import under
from pyhermes.index.rules import (  # the rules that need no SQLAlchemy (re-exported)
    SETTLE_SECONDS,
    SIGNATURE_COLUMNS,
    SIGNATURE_START,
    Signature,
    decode_subfolders,
    disk_name,
    encode_subfolders,
    is_settled,
    posix_join,
    posix_parent,
    signature,
    stored_name,
)
from pyhermes.index.store.engine import BUSY_LIMIT_VAR, busy_limit, recover_from_damage
from pyhermes.index.store.layout import CHANGE_TOKEN_KEY
from pyhermes.index.store.models import (
    arg_table,
    folder_table,
    info_table,
    meta_table,
    problem_table,
    run_table,
)
from pyhermes.index.sync.parallel import ChunkReader, ReadAhead
from pyhermes.index.sync.run_reading import (  # the read step (no SQLAlchemy there)
    ARG_FIELDS,
    INFO_FIELDS,
    ReadFailure,
    ReadResult,
    RunRecord,
    iter_read_runs,
    problem_reason,
    read_runs,
    with_progress,
)
from pyhermes.index.sync.unchanged import listing_still_valid

T = TypeVar("T")


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
        # Quick mode fetches the settled runs of a folder only when it must list that folder.
        known = {
            row[1]: row
            for row in self._known_runs(scope if full else and_(scope, not_(run_table.c.settled)))
        }
        folders = {row.path: row for row in self._known_folders(folder, recursive)}
        scope_problems = self._known_problems(folder, recursive)
        problems = {row.path for row in scope_problems}
        self._scope_problems = [row for row in scope_problems if row.path not in known]
        listed_runs: set[str] = set()
        listed_folders: set[str] = set()
        new_runs: list[str] = []
        folder_rows: list[dict[str, Any]] = []
        pending = [folder]
        while pending:
            current = pending.pop()
            listed_folders.add(current)
            status = _folder_status(self._abs(current))
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
                if not full:
                    known.update(
                        (row[1], row) for row in self._known_runs(run_table.c.parent == current)
                    )
                run_names, other_names = self._list(current, known, problems)
                if remembered_names is not None:
                    # A subfolder that is gone takes every run below it out of the index.
                    listed = set(other_names) | {name.rpartition("/")[2] for name in run_names}
                    self._gone_folders.extend(
                        posix_join(current, name) for name in remembered_names if name not in listed
                    )
                for rel in run_names:
                    listed_runs.add(rel)
                    if rel not in known:
                        new_runs.append(rel)
                subfolder_paths = [posix_join(current, name) for name in other_names]
                subfolders = encode_subfolders(other_names)
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
        # The runs to read are read on the other cores while the plan stats the rest;
        # not when they will be more than a slice (a first build, a reread).
        limit = sys.maxsize if slice_runs is None else slice_runs
        ahead = None
        if self._early is None and len(new_runs) <= limit and not (reread and len(known) > limit):
            ahead = ReadAhead(read_runs, (self._root_text,), (self.settle_seconds,), limit)
        try:
            plan = self._plan(known, listed_runs, new_runs, full, reread, ahead)
            self._pending = _Pending(plan, folder_rows, folders, listed_folders, recursive, scope, started)
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
                yield from with_progress(early, self.progress)
                return
            early.close()
        yield from iter_read_runs(self._root_text, paths, self.settle_seconds, self.progress)

    def finish(self) -> SyncReport:
        """Write what :meth:`run` decided besides the runs read: removals, settle marks,
        folder listings, the change token; return the report."""
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
        return self.report

    def write_slices(
        self, engine: Engine, slice_runs: int, finish: Callable[[Connection, SyncReport], None]
    ) -> SyncReport:
        """Read the runs :meth:`run` left to read and write them ``slice_runs`` at a time,
        each slice in its own transaction (retried alone), then :meth:`finish` in one more.

        Memory stays bounded by a slice, other writers wait at most for one slice,
        and readers see the runs arrive while the sync goes on. A sync killed
        midway leaves whole runs written (each run is written in one transaction)
        and no folder listing remembered, so the next sync lists the folders
        again and reads only the runs still missing. ``finish(connection,
        report)`` runs in the last transaction.
        """
        pending = self._pending
        assert pending is not None, "write_slices() follows run()"
        plan = pending.plan
        batch: list[ReadResult] = []
        # The records that stream in hold no reference cycles, and what is alive now (the
        # modules, the plan) lasts the whole build: the cyclic collector, walking them
        # again and again, took 0.4 s of the writer's 2.4 s at 10,000 runs, 2.2 s at 100,000.
        collecting = gc.isenabled()
        gc.disable()
        try:
            for result in self._read(plan.to_read):
                batch.append(result)
                if len(batch) >= slice_runs:
                    self._write_slice(engine, batch, plan.new)
                    batch = []
            if batch:
                self._write_slice(engine, batch, plan.new)
        finally:
            if collecting:
                gc.enable()

        def tail() -> SyncReport:
            report = self.finish()
            finish(self.connection, report)
            return report

        return self._transaction(engine, tail, "sync")

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

    def _list(
        self, current: str, known: dict[str, Any], problems: set[str]
    ) -> tuple[list[str], list[str]]:
        """Return (run paths, stored names of other subfolders) of one folder's listing.

        Known runs and runs recorded as problems count as runs without a look at
        their ``hermes.info`` (which may be what cannot be read).
        """

        def vouched(name: str) -> bool:
            path = posix_join(current, stored_name(name))
            return path in known or path in problems

        names, others = rundir.list_folder(self._abs(current), vouched)
        return [posix_join(current, stored_name(name)) for name in names], [
            stored_name(name) for name in others
        ]

    def _plan(
        self,
        known: dict[str, Any],
        listed_runs: set[str],
        new_runs: list[str],
        full: bool,
        reread: bool,
        ahead: ReadAhead | None = None,
    ) -> _Plan:
        """Decide, from what was read of the index and the disk, what to read and remove.

        Each run to read is named to ``ahead`` as soon as it is known.
        """
        now = time.time()
        plan = _Plan()
        plan.removed = [(row[1], row[0]) for path, row in known.items() if path not in listed_runs]
        plan.new = set(dict.fromkeys(new_runs))
        to_read = sorted(plan.new)
        if ahead is not None:
            for path in to_read:
                ahead.add(path)
        # The loop below runs once per run in a full sync: plain tuples and local names.
        settle_seconds = self.settle_seconds
        prefix = self._prefix
        newly_settled = plan.newly_settled
        for path in listed_runs:
            row = known.get(path)
            if row is None:
                continue
            settled, finished = row[3], row[4]
            if settled and not full:
                continue
            sig = signature(prefix + disk_name(path))
            if reread or sig != row[SIGNATURE_START:]:
                to_read.append(path)
                if ahead is not None:
                    ahead.add(path)
            elif not settled and is_settled(finished, sig, now, settle_seconds):
                newly_settled.append((path, sig))
        retried = plan.new
        plan.vanished_problems = [
            row.path
            for row in self._scope_problems
            if row.path not in listed_runs and row.path not in retried
        ]
        plan.to_read = sorted(dict.fromkeys(to_read))
        return plan

    def _write(self, plan: _Plan, folder_rows: list[dict[str, Any]]) -> None:
        """Apply a plan (but for the runs read for it, see :meth:`store`); every write
        tolerates concurrent writers."""
        conn = self.connection
        # Removed runs: by (path, id) as read, so a run stored again meanwhile is not touched.
        if plan.removed:
            removed = sorted(plan.removed)
            for chunk in _chunks(removed, 500):
                ids = [run_id for _, run_id in chunk]
                gone = select(run_table.c.id).where(
                    run_table.c.id.in_(ids), run_table.c.path.in_([p for p, _ in chunk])
                )
                self.report.removed += _delete_runs(conn, gone)
        for folder in sorted(self._gone_folders):
            below = (run_table.c.parent == folder) | run_table.c.parent.startswith(
                folder + "/", autoescape=True
            )
            self.report.removed += _delete_runs(conn, select(run_table.c.id).where(below))
            conn.execute(
                delete(folder_table).where(
                    (folder_table.c.path == folder)
                    | folder_table.c.path.startswith(folder + "/", autoescape=True)
                )
            )
        if self.report.removed:
            self._changed = True
        if plan.vanished_problems:
            for chunk in _chunks(sorted(plan.vanished_problems), 500):
                conn.execute(delete(problem_table).where(problem_table.c.path.in_(chunk)))
        if plan.newly_settled:
            self._settle(plan.newly_settled)
        if folder_rows:
            _upsert(conn, folder_table, ["path"], sorted(folder_rows, key=lambda row: row["path"]))

    def store(self, results: list[ReadResult], new: set[str] | None = None) -> None:
        """Write the runs read by :func:`read_runs`: records upserted by path, failures as problems.

        The freshest read wins, whatever the order the writers commit in: a record
        replaces a stored row only if it was read no earlier than that row
        (``read_at``), and a failure removes a stored row only if that row was read
        earlier. ``new`` names the paths the caller did not find in the index (for
        the report's ``added``); the writes do not depend on it.
        """
        conn = self.connection
        records = sorted(
            ((path, outcome) for path, outcome in results if isinstance(outcome, RunRecord)),
            key=lambda result: result[0],
        )
        failures = sorted(
            ((path, outcome) for path, outcome in results if isinstance(outcome, ReadFailure)),
            key=lambda result: result[0],
        )
        for chunk in _chunks(records, 1000):
            paths = [path for path, _ in chunk]
            _upsert(
                conn, run_table, ["path"], [record.row for _, record in chunk], fresher="read_at",
                kept=_FROM_PATH,
            )
            stored = {
                path: (run_id, read_at)
                for path, run_id, read_at in conn.execute(
                    select(run_table.c.path, run_table.c.id, run_table.c.read_at).where(
                        run_table.c.path.in_(paths)
                    )
                )
            }
            # The rows this write holds (not those a fresher read of another writer keeps).
            mine = [
                (stored[path][0], record)
                for path, record in chunk
                if path in stored and stored[path][1] == record.row["read_at"]
            ]
            self._replace_children(mine)
            conn.execute(delete(problem_table).where(problem_table.c.path.in_(paths)))
            for path, record in chunk:
                if record.row["warnings"] is not None:
                    self.report.warning_paths[path] = record.row["warnings"].split("\n")
                if new is not None and path in new:
                    self.report.added += 1
                else:
                    self.report.updated += 1
            if mine:
                self._changed = True
        for chunk in _chunks(failures, 500):
            failed = dict(chunk)
            paths = list(failed)
            fresher = {
                path
                for path, read_at in conn.execute(
                    select(run_table.c.path, run_table.c.read_at).where(run_table.c.path.in_(paths))
                )
                if read_at > failed[path].read_at
            }
            stale = [path for path in paths if path not in fresher]
            if _delete_runs(conn, select(run_table.c.id).where(run_table.c.path.in_(stale))):
                self._changed = True
            rows = [
                {"path": path, "reason": problem_reason(failure.error), "seen_at": failure.read_at}
                for path, failure in chunk
                if path not in fresher
            ]
            _upsert(conn, problem_table, ["path"], rows)
            for row in rows:
                self.report.problems += 1
                self.report.problem_paths[row["path"]] = row["reason"]

    def _settle(self, newly_settled: list[tuple[str, Signature]]) -> None:
        """Mark runs settled, each only if its row still holds the signature that was checked."""
        condition = and_(
            run_table.c.path == bindparam("b_path"),
            *(
                run_table.c[name].is_not_distinct_from(bindparam(f"b_{name}"))
                for name in SIGNATURE_COLUMNS
            ),
        )
        params = [
            {"b_path": path, **{f"b_{name}": value for name, value in zip(SIGNATURE_COLUMNS, sig, strict=True)}}
            for path, sig in sorted(newly_settled)
        ]
        statement = update(run_table).where(condition).values(settled=True)
        for chunk in _chunks(params, 1000):
            self.connection.execute(statement, chunk)

    def _replace_children(self, pairs: list[tuple[int, RunRecord]]) -> None:
        """Store the args and info of the runs ``(run_id, record)``, rewriting only what changed.

        A run read again is most often unchanged but for its scores (a job still
        writing, or files touched): its stored args and info rows are compared
        with the new ones and left alone when equal, so a full sync after a few
        runs changed does not rewrite (and dirty the index pages of) their rows.
        """
        conn = self.connection
        ids = [run_id for run_id, _ in pairs]
        for table, fields, order, new_rows in (
            (arg_table, ARG_FIELDS, "position", lambda record: record.args),
            (info_table, INFO_FIELDS, "key", lambda record: sorted(record.info)),
        ):
            stored: dict[int, list[tuple[Any, ...]]] = {}
            columns = [table.c.run_id, *(table.c[name] for name in fields)]
            for chunk in _chunks(ids, 1000):
                rows = conn.execute(
                    select(*columns).where(table.c.run_id.in_(chunk)).order_by(table.c.run_id, table.c[order])
                )
                for run_id, *values in rows:
                    stored.setdefault(run_id, []).append(tuple(values))
            stale: list[int] = []
            inserts: list[tuple[Any, ...]] = []
            for run_id, record in pairs:
                wanted = new_rows(record)
                before = stored.get(run_id)
                if before == wanted or (before is None and not wanted):
                    continue
                if before is not None:
                    stale.append(run_id)
                inserts.extend([(run_id, *row) for row in wanted])
            for chunk in _chunks(stale, 500):
                conn.execute(delete(table).where(table.c.run_id.in_(chunk)))
            _execute_many(conn, insert(table), ("run_id", *fields), inserts)

    # ------------------------------------------------------------------ index reads

    def _known_runs(self, condition: Any) -> list[tuple[Any, ...]]:
        columns = [
            run_table.c.id,
            run_table.c.path,
            run_table.c.parent,
            run_table.c.settled,
            run_table.c.finished,
            *(run_table.c[name] for name in SIGNATURE_COLUMNS),
        ]
        return [tuple(row) for row in self.connection.execute(select(*columns).where(condition))]

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
        for chunk in _chunks(gone, 500):
            self.connection.execute(delete(folder_table).where(folder_table.c.path.in_(chunk)))


#: Runs read and written per transaction by a sync with many runs to read.
SLICE_RUNS = 4000


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


def _delete_runs(conn: Connection, ids: Any) -> int:
    """Delete the runs whose ids the select ``ids`` gives, with their args and info; return how many."""
    id_list = [run_id for (run_id,) in conn.execute(ids)]
    if not id_list:
        return 0
    deleted = 0
    for chunk in _chunks(sorted(id_list), 500):
        conn.execute(delete(arg_table).where(arg_table.c.run_id.in_(chunk)))
        conn.execute(delete(info_table).where(info_table.c.run_id.in_(chunk)))
        deleted += conn.execute(delete(run_table).where(run_table.c.id.in_(chunk))).rowcount or 0
    return deleted


#: The indexed ``hermes_run`` columns that follow from the stored path alone: a run stored
#: again keeps them, so SQLite leaves the indexes on them untouched (a full sync after 1%
#: of 100,000 runs changed wrote 20 MiB instead of 36 MiB). Not the layout names: they
#: come from the absolute path, which changes when a tree moves with its index.
_FROM_PATH = ("parent", "identifier")


def _upsert(
    conn: Connection,
    table: Any,
    keys: list[str],
    rows: list[dict[str, Any]],
    fresher: str | None = None,
    kept: Sequence[str] = (),
) -> None:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE`` the ``rows`` (all with the same columns).

    With ``fresher``, a stored row is updated only where its ``fresher`` column is
    not greater than the new row's. The ``kept`` columns are inserted, never updated.
    """
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    statement = dialect_insert(table)
    names = [column.name for column in table.columns if column.name in rows[0]]
    columns = [name for name in names if name not in keys and name not in kept]
    if columns:
        statement = statement.on_conflict_do_update(
            index_elements=keys,
            set_={name: statement.excluded[name] for name in columns},
            where=None if fresher is None else table.c[fresher] <= statement.excluded[fresher],
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=keys)
    values = operator.itemgetter(*names)
    _execute_many(conn, statement, names, [values(row) for row in rows] if len(names) > 1 else [(row[names[0]],) for row in rows])


def _execute_many(
    conn: Connection, statement: Any, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Execute the INSERT ``statement`` once per row of ``rows`` (values of ``columns``, in order).

    On SQLite the statement is compiled once and the rows go to the driver's
    ``executemany`` as tuples, only the columns whose type needs it (datetimes)
    converted: SQLAlchemy's processing of each row's parameters cost more than
    SQLite's insert itself in a first build (~13 us a row). Elsewhere it is
    SQLAlchemy's ``executemany`` (batched multi-row VALUES on PostgreSQL).
    """
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(statement, [dict(zip(columns, row, strict=True)) for row in rows])
        return
    dialect = conn.dialect
    compiled = statement.compile(dialect=dialect, column_keys=list(columns))
    order = [columns.index(name) for name in compiled.positiontup or ()]
    table = statement.table
    converters = [
        (at, process)
        for at, process in (
            (at, dialect.type_descriptor(table.c[columns[source]].type).bind_processor(dialect))
            for at, source in enumerate(order)
        )
        if process is not None
    ]
    if order != list(range(len(columns))) or not isinstance(rows[0], tuple):
        rows = [tuple(row[source] for source in order) for row in rows]
    if converters:  # column by column: map() runs each converter without a Python loop
        columns = list(zip(*rows, strict=True))
        for at, process in converters:
            columns[at] = tuple(map(process, columns[at]))
        rows = list(zip(*columns, strict=True))
    conn.exec_driver_sql(compiled.string, rows)


# --------------------------------------------------------------------------- retrying

#: SQLSTATEs of PostgreSQL errors that a retry of the transaction resolves.
_RETRY_SQLSTATES = frozenset({"40001", "40P01", "55P03", "23505"})


def is_retryable(exc: BaseException) -> bool:
    """True for the errors another writer of the index causes: retrying the transaction helps.

    SQLite: "database is locked" / "busy", a unique conflict; PostgreSQL:
    serialization failure, deadlock, lock not available, a unique conflict.
    """
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in _RETRY_SQLSTATES
    name = type(orig).__name__
    if name == "IntegrityError":
        return True
    message = str(orig).lower()
    return name == "OperationalError" and ("locked" in message or "busy" in message)


#: How often one transaction runs again after its SQLite file was found damaged.
_RECOVERIES = 2


def run_in_transaction(engine: Engine, work: Callable[[Connection], T], what: str = "sync") -> T:
    """Run ``work(connection)`` in a transaction of ``engine``; return its result.

    A transaction that finds the SQLite file damaged runs again once the damage
    is handled (:func:`~pyhermes.index.store.engine.recover_from_damage`). A
    transaction that fails for a reason another writer causes (see
    :func:`is_retryable`) is rolled back and run again, after a pause that
    doubles from 50 ms up to 2 s, with jitter, for at most :func:`busy_limit`
    seconds in all.

    Raises:
        IndexBusyError: the index stayed locked or in conflict past the limit; the
            message names what holds it, when that can be found.
        sqlalchemy.exc.SQLAlchemyError: any other database error.
    """
    limit = busy_limit()
    deadline = time.monotonic() + limit
    pause = 0.05
    attempts = 0
    recoveries = 0
    while True:
        attempts += 1
        try:
            with engine.begin() as conn:
                return work(conn)
        except DBAPIError as exc:
            if recoveries < _RECOVERIES and recover_from_damage(engine, exc):
                recoveries += 1  # a damaged file was reset (or the damage did not repeat)
                continue
            if not is_retryable(exc):
                raise
            wait = pause * (0.5 + random.random())
            if time.monotonic() + wait > deadline:
                raise IndexBusyError(
                    f"the index {_describe(engine)} stayed busy for {limit:g} s ({attempts} "
                    f"attempts of this {what}); last error: {str(exc.orig).splitlines()[0]}. "
                    f"{holders(engine)} Raise the limit with {BUSY_LIMIT_VAR}=<seconds>."
                ) from exc
            time.sleep(wait)
            pause = min(pause * 2, 2.0)


def _describe(engine: Engine) -> str:
    if engine.dialect.name == "sqlite":
        return str(engine.url.database)
    return engine.url.render_as_string(hide_password=True)


def holders(engine: Engine) -> str:
    """Return a sentence naming what holds the index: processes with the SQLite file open, or
    the other PostgreSQL sessions in a transaction on the database. Never raises."""
    try:
        if engine.dialect.name == "sqlite":
            found = _sqlite_holders(str(engine.url.database or ""))
        else:
            found = _postgresql_holders(engine)
    except Exception as exc:  # noqa: BLE001 - only a hint in an error message
        return f"(what holds it could not be found: {exc})"
    if not found:
        return "No other holder could be found (it may have finished, or run on another machine)."
    return "Held by: " + "; ".join(found[:10]) + "."


def _sqlite_holders(file: str) -> list[str]:
    """Processes of this machine with ``file`` (or its ``-wal``) open, from ``/proc``."""
    if not file or not os.path.isdir("/proc"):
        return []
    targets = {os.path.realpath(file), os.path.realpath(file) + "-wal"}
    found: list[str] = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target in targets:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as handle:
                        command = handle.read(300).replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    command = "?"
                found.append(f"process {pid} ({command.strip()})")
                break
    return found


def _postgresql_holders(engine: Engine) -> list[str]:
    """Other sessions on the database with a transaction open, oldest first."""
    from sqlalchemy import text

    query = text(
        "SELECT pid, usename, application_name, client_addr, state, "
        "now() - xact_start AS age, left(query, 120) AS query FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND xact_start IS NOT NULL ORDER BY xact_start"
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        f"session {row.pid} of {row.usename}@{row.client_addr or 'local'} "
        f"({row.application_name or 'no name'}, {row.state}, transaction open for {row.age}): "
        f"{row.query!r}"
        for row in rows
    ]


def bump_change_token(connection: Connection) -> None:
    """Record that the runs stored in the index changed (a new random token)."""
    _upsert(connection, meta_table, ["key"], [{"key": CHANGE_TOKEN_KEY, "value": uuid.uuid4().hex}])



def _folder_status(path: str) -> int | None:
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return None
    return status.st_mtime_ns


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
