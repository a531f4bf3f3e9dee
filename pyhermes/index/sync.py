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
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, not_, select, update

from pyhermes import rundir
from pyhermes.errors import RunFormatError
from pyhermes.index.models import (
    SUMMARY_COLUMNS,
    arg_table,
    folder_table,
    info_table,
    meta_table,
    problem_table,
    run_table,
)
from pyhermes.index.query import under
from pyhermes.summary import ScoreSummary, summarize

#: A folder changed this close to its listing is listed again (timestamps are coarse).
RACY_SECONDS = 2.0
#: Default settle window: a run finished this recently is still checked on every sync.
SETTLE_SECONDS = 60.0
SYNC_MODES = ("quick", "full", "none")

Signature = tuple[Any, ...]


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


@dataclass
class RunRecord:
    """Everything the index stores about one run, read from its directory."""

    row: dict[str, Any]
    args: list[dict[str, Any]]
    info: list[dict[str, Any]]


def signature(run_dir: str) -> Signature:
    """(size, mtime_ns) of ``hermes.info``, ``exec_arguments`` and the scores file, flattened.

    A missing file gives ``(None, None)``. This runs once per run in a full sync,
    so it does little but the three ``stat`` calls.
    """
    prefix = run_dir + os.sep
    return (
        *_size_and_mtime(prefix + rundir.INFO_FILE),
        *_size_and_mtime(prefix + rundir.EXEC_ARGS_FILE),
        *_size_and_mtime(prefix + run_dir.rpartition(os.sep)[2] + rundir.SCORES_SUFFIX),
    )


def _size_and_mtime(path: str) -> tuple[int | None, int | None]:
    try:
        status = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None, None
    return status.st_size, status.st_mtime_ns


# Rows of Syncer._known_runs: (id, path, parent, settled, finished, *signature).
_SIGNATURE_START = 5
_SIGNATURE_COLUMNS = (
    "info_size",
    "info_mtime_ns",
    "args_size",
    "args_mtime_ns",
    "scores_size",
    "scores_mtime_ns",
)


def _settled(finished: bool, sig: Signature, now: float, settle_seconds: float) -> bool:
    mtimes = [value for value in sig[1::2] if value is not None]
    newest = max(mtimes) / 1e9 if mtimes else 0.0
    return finished and now - newest >= settle_seconds


def read_run(run_dir: str, rel_path: str, settle_seconds: float = SETTLE_SECONDS) -> RunRecord:
    """Read one run directory into a :class:`RunRecord`.

    The signature is taken before the files are read, so a change during the read
    is seen by the next sync. What was irregular but readable (lines decoded by the
    fallback or skipped, NULs dropped, a scores file that is not all numbers, which
    leaves the score summary empty) goes into ``row["warnings"]``, one note per
    line; the run is still recorded.

    Raises:
        OSError: a file cannot be read at all (e.g. ``hermes.info`` is unreadable).
    """
    now = time.time()
    sig = signature(run_dir)
    notes: list[str] = []
    info = rundir.read_info(run_dir, notes)
    arg_lines = rundir.read_exec_args(run_dir, notes)
    identifier = os.path.basename(run_dir)
    scores_file = f"{run_dir}{os.sep}{identifier}{rundir.SCORES_SUFFIX}"
    summary: ScoreSummary | None = None
    try:
        summary = summarize(rundir.read_scores(scores_file, notes))
    except RunFormatError as exc:
        notes.append(f"{exc} (scores not summarized)")
    id_start, job_idx, _ = rundir.parse_identifier(identifier)
    start = rundir.parse_time(info.get(rundir.START_TIME_KEY, "")) or id_start
    end = rundir.parse_time(info.get(rundir.END_TIME_KEY, ""))
    try:
        execution_time: float | None = float(info[rundir.EXECUTION_TIME_KEY])
    except (KeyError, ValueError):
        execution_time = None
    script_name, experiment_name = rundir.layout_names(run_dir)
    commit = info.get(rundir.COMMIT_HASH_KEY)
    row: dict[str, Any] = {
        "path": rel_path,
        "parent": posix_parent(rel_path),
        "identifier": identifier,
        "script_name": script_name,
        "experiment_name": experiment_name,
        "job_idx": job_idx,
        "commit_hash": commit.strip() if commit is not None else None,
        "start_time": start,
        "end_time": end,
        "execution_time": execution_time,
        "comments": info.get(rundir.COMMENTS_KEY),
        "finished": end is not None,
        "read_at": now,
        "settled": _settled(end is not None, sig, now, settle_seconds),
        "warnings": "\n".join(note.replace("\n", " ") for note in notes) or None,
    }
    row.update(zip(_SIGNATURE_COLUMNS, sig, strict=False))
    for name, column in SUMMARY_COLUMNS.items():
        row[column] = getattr(summary, name) if summary is not None else None
    args = []
    for position, line in enumerate(arg_lines):
        key, texts = rundir.split_arg(line)
        args.append(
            {
                "position": position,
                "raw": line,
                "key": key,
                "value": " ".join(texts) if texts else None,
                "num": rundir.numeric_value(texts),
            }
        )
    info_rows = [{"key": key, "value": value} for key, value in info.items()]
    return RunRecord(row, args, info_rows)


def posix_parent(rel_path: str) -> str:
    """The parent of a POSIX relative path (``""`` for a top-level entry)."""
    head, _, _ = rel_path.rpartition("/")
    return head


def relative(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` as a POSIX string (``""`` for the root itself)."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    return "" if rel == "." else Path(rel).as_posix()


class Syncer:
    """Syncs the runs below one folder of ``root`` into the index behind ``connection``."""

    def __init__(
        self,
        connection: Connection,
        root: Path,
        settle_seconds: float = SETTLE_SECONDS,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.connection = connection
        self.root = root
        self.settle_seconds = settle_seconds
        self.progress = progress
        self.report = SyncReport()
        self._root_text = str(root)
        self._prefix = self._root_text.rstrip(os.sep) + os.sep
        self._scope_problems: list[Any] = []
        self._gone_folders: list[str] = []
        self._dropped = False

    def _abs(self, rel: str) -> str:
        return self._prefix + rel if rel else self._root_text

    def run(self, folder: str, recursive: bool, mode: str, reread: bool = False) -> SyncReport:
        """Sync the runs in ``folder`` (relative to the root; its whole tree with ``recursive``).

        ``mode`` is ``"quick"`` or ``"full"``; ``reread`` re-reads every run.
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
            if (
                not full
                and remembered is not None
                and remembered.mtime_ns == status
                and remembered.listed_at - status / 1e9 > RACY_SECONDS
            ):
                runs_here = [path for path, row in known.items() if row[2] == current]
                subfolders = [name for name in remembered.subfolders.split("\n") if name]
                candidates = []
                for name in subfolders:
                    rel = _join(current, name)
                    if os.path.isfile(os.path.join(self._abs(rel), rundir.INFO_FILE)):
                        candidates.append(rel)
                listed_runs.update(runs_here)
                listed_runs.update(candidates)
                new_runs.extend(rel for rel in candidates if rel not in known)
                new_runs.extend(
                    path for path in problems if posix_parent(path) == current and path not in known
                )
                subfolder_paths = [_join(current, n) for n in subfolders]
                subfolder_paths = [p for p in subfolder_paths if p not in candidates]
            else:
                if not full:
                    known.update(
                        (row[1], row) for row in self._known_runs(run_table.c.parent == current)
                    )
                run_names, other_names = self._list(current, known, problems)
                if remembered is not None:
                    # A subfolder that is gone takes every run below it out of the index.
                    listed = set(other_names) | {name.rpartition("/")[2] for name in run_names}
                    self._gone_folders.extend(
                        _join(current, name)
                        for name in remembered.subfolders.split("\n")
                        if name and name not in listed
                    )
                for rel in run_names:
                    listed_runs.add(rel)
                    if rel not in known:
                        new_runs.append(rel)
                subfolder_paths = [_join(current, name) for name in other_names]
                folder_rows.append(
                    {
                        "path": current,
                        "mtime_ns": status,
                        "listed_at": time.time(),
                        "subfolders": "\n".join(other_names),
                    }
                )
            if recursive:
                pending.extend(sorted(subfolder_paths, reverse=True))
        self._apply(known, listed_runs, new_runs, folder_rows, full, reread)
        self._forget_folders(folders, listed_folders, recursive)
        if self.report.added or self.report.updated or self.report.removed or self._dropped:
            bump_change_token(self.connection)
        total = self.connection.execute(
            select(func.count()).select_from(run_table).where(scope)
        ).scalar_one()
        self.report.unchanged = total - self.report.added - self.report.updated
        self.report.seconds = time.perf_counter() - started
        return self.report

    def _list(
        self, current: str, known: dict[str, Any], problems: set[str]
    ) -> tuple[list[str], list[str]]:
        """Return (run paths, names of other subfolders) of one folder's listing.

        Known runs and runs recorded as problems count as runs without a look at
        their ``hermes.info`` (which may be what cannot be read).
        """

        def vouched(name: str) -> bool:
            path = _join(current, name)
            return path in known or path in problems

        names, others = rundir.list_folder(self._abs(current), vouched)
        return [_join(current, name) for name in names], others

    def _apply(
        self,
        known: dict[str, Any],
        listed_runs: set[str],
        new_runs: list[str],
        folder_rows: list[dict[str, Any]],
        full: bool,
        reread: bool,
    ) -> None:
        conn = self.connection
        now = time.time()
        removed = [row[0] for path, row in known.items() if path not in listed_runs]
        to_read: list[tuple[str, int | None]] = [(path, None) for path in dict.fromkeys(new_runs)]
        newly_settled: list[int] = []
        # The loop below runs once per run in a full sync: plain tuples and local names.
        settle_seconds = self.settle_seconds
        prefix = self._prefix
        for path in listed_runs:
            row = known.get(path)
            if row is None:
                continue
            run_id, _, _, settled, finished = row[:_SIGNATURE_START]
            if settled and not full:
                continue
            sig = signature(prefix + path)
            if reread or sig != row[_SIGNATURE_START:]:
                to_read.append((path, run_id))
            elif not settled and _settled(finished, sig, now, settle_seconds):
                newly_settled.append(run_id)
        for gone in self._gone_folders:
            below = (run_table.c.parent == gone) | run_table.c.parent.startswith(
                gone + "/", autoescape=True
            )
            removed.extend(
                run_id
                for (run_id,) in conn.execute(select(run_table.c.id).where(below))
                if run_id not in removed
            )
            conn.execute(
                delete(folder_table).where(
                    (folder_table.c.path == gone)
                    | folder_table.c.path.startswith(gone + "/", autoescape=True)
                )
            )
        if removed:
            for chunk in _chunks(removed, 500):
                conn.execute(delete(arg_table).where(arg_table.c.run_id.in_(chunk)))
                conn.execute(delete(info_table).where(info_table.c.run_id.in_(chunk)))
                conn.execute(delete(run_table).where(run_table.c.id.in_(chunk)))
            self.report.removed += len(removed)
        retried = set(new_runs)
        vanished_problems = [
            row.path
            for row in self._scope_problems
            if row.path not in listed_runs and row.path not in retried
        ]
        if vanished_problems:
            conn.execute(delete(problem_table).where(problem_table.c.path.in_(vanished_problems)))
        if newly_settled:
            for chunk in _chunks(newly_settled, 500):
                conn.execute(update(run_table).where(run_table.c.id.in_(chunk)).values(settled=True))
        self._read_and_store(to_read)
        if folder_rows:
            paths = [row["path"] for row in folder_rows]
            conn.execute(delete(folder_table).where(folder_table.c.path.in_(paths)))
            conn.execute(insert(folder_table), folder_rows)

    def _read_and_store(self, to_read: list[tuple[str, int | None]]) -> None:
        conn = self.connection
        new_rows: list[RunRecord] = []
        fixed: list[str] = []
        for done, (path, run_id) in enumerate(to_read, start=1):
            try:
                record = read_run(self._abs(path), path, self.settle_seconds)
            except (RunFormatError, OSError, ValueError) as exc:  # not readable at all
                self._problem(path, run_id, exc)
            else:
                fixed.append(path)
                if record.row["warnings"] is not None:
                    self.report.warning_paths[path] = record.row["warnings"].split("\n")
                if run_id is None:
                    new_rows.append(record)
                    self.report.added += 1
                else:
                    self._replace(run_id, record)
                    self.report.updated += 1
            if self.progress is not None:
                self.progress(done)
        if fixed:
            for chunk in _chunks(fixed, 500):
                conn.execute(delete(problem_table).where(problem_table.c.path.in_(chunk)))
        if new_rows:
            self._insert(new_rows)

    def _insert(self, records: list[RunRecord]) -> None:
        conn = self.connection
        for chunk in _chunks(records, 2000):
            ids = conn.execute(
                insert(run_table).returning(run_table.c.id, sort_by_parameter_order=True),
                [record.row for record in chunk],
            ).scalars().all()
            self._insert_children(zip(ids, chunk, strict=False))

    def _insert_children(self, pairs: Iterable[tuple[int, RunRecord]]) -> None:
        args: list[dict[str, Any]] = []
        infos: list[dict[str, Any]] = []
        for run_id, record in pairs:
            args.extend({**item, "run_id": run_id} for item in record.args)
            infos.extend({**item, "run_id": run_id} for item in record.info)
        if args:
            self.connection.execute(insert(arg_table), args)
        if infos:
            self.connection.execute(insert(info_table), infos)

    def _replace(self, run_id: int, record: RunRecord) -> None:
        conn = self.connection
        conn.execute(update(run_table).where(run_table.c.id == run_id).values(**record.row))
        conn.execute(delete(arg_table).where(arg_table.c.run_id == run_id))
        conn.execute(delete(info_table).where(info_table.c.run_id == run_id))
        self._insert_children([(run_id, record)])

    def _problem(self, path: str, run_id: int | None, exc: BaseException) -> None:
        conn = self.connection
        reason = f"{type(exc).__name__}: {exc}"
        if run_id is not None:
            conn.execute(delete(arg_table).where(arg_table.c.run_id == run_id))
            conn.execute(delete(info_table).where(info_table.c.run_id == run_id))
            conn.execute(delete(run_table).where(run_table.c.id == run_id))
            self._dropped = True
        conn.execute(delete(problem_table).where(problem_table.c.path == path))
        conn.execute(insert(problem_table).values(path=path, reason=reason, seen_at=time.time()))
        self.report.problems += 1
        self.report.problem_paths[path] = reason

    # ------------------------------------------------------------------ index reads

    def _known_runs(self, condition: Any) -> list[tuple[Any, ...]]:
        columns = [
            run_table.c.id,
            run_table.c.path,
            run_table.c.parent,
            run_table.c.settled,
            run_table.c.finished,
            *(run_table.c[name] for name in _SIGNATURE_COLUMNS),
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
        gone = [path for path in folders if path not in listed]
        for chunk in _chunks(gone, 500):
            self.connection.execute(delete(folder_table).where(folder_table.c.path.in_(chunk)))


CHANGE_TOKEN_KEY = "change_token"


def bump_change_token(connection: Connection) -> None:
    """Record that the runs stored in the index changed (a new random token)."""
    token = uuid.uuid4().hex
    done = connection.execute(
        update(meta_table).where(meta_table.c.key == CHANGE_TOKEN_KEY).values(value=token)
    )
    if done.rowcount == 0:
        connection.execute(insert(meta_table).values(key=CHANGE_TOKEN_KEY, value=token))


def read_change_token(connection: Connection) -> str | None:
    """The token of the last change to the runs stored in the index (``None`` before any)."""
    return connection.execute(
        select(meta_table.c.value).where(meta_table.c.key == CHANGE_TOKEN_KEY)
    ).scalar()


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _folder_status(path: str) -> int | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_mtime_ns


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def to_datetime(value: Any) -> datetime | None:
    """A database value as a datetime (SQLite may hand back ISO text)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))
