"""The read step of a sync: run directories into records, touching files only, never the index.

:func:`read_run` reads one run directory into a :class:`RunRecord` (or the
:class:`ReadFailure` of a run that cannot be read); :func:`read_runs` and
:func:`iter_read_runs` read many, on every core from
:data:`pyhermes.index.sync.parallel.PARALLEL_FROM` runs on. This module needs the
standard library, numpy and :mod:`pyhermes.rundir` only, not SQLAlchemy: a first
build starts reading (:class:`pyhermes.index.sync.parallel.ChunkReader`) before the
database layer is even imported. :mod:`pyhermes.index.sync.writes` writes the records.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pyhermes import rundir
from pyhermes.errors import RunFormatError
from pyhermes.index.rules import (
    KEY_LENGTH,
    SETTLE_SECONDS,
    SIGNATURE_COLUMNS,
    disk_name,
    is_settled,
    posix_join,
    posix_parent,
    printable,
    signature,
    stored_name,
)
from pyhermes.index.store.layout import SUMMARY_COLUMNS
from pyhermes.index.sync import parallel
from pyhermes.index.sync.parallel import ChunkReader, map_chunks, parallel_workers
from pyhermes.summary import ScoreSummary, summarize_chunks

__all__ = [
    "ARG_FIELDS",
    "INFO_FIELDS",
    "TAG_FIELDS",
    "NOTE_FIELDS",
    "read_curation",
    "RunRecord",
    "ReadFailure",
    "ReadResult",
    "read_run",
    "read_runs",
    "iter_read_runs",
    "problem_reason",
    "with_progress",
    "FIRST_BUILD_AHEAD",
    "list_new_runs",
    "read_ahead_for_new_index",
]


#: The ``hermes_arg`` columns of :attr:`RunRecord.args` tuples, in order (``run_id`` goes first).
ARG_FIELDS = ("position", "raw", "key", "value", "num")
#: The ``hermes_info`` columns of :attr:`RunRecord.info` tuples, in order (``run_id`` goes first).
INFO_FIELDS = ("key", "value")
#: The ``hermes_tag`` columns of :attr:`RunRecord.tags` tuples (``run_id`` goes first).
TAG_FIELDS = ("tag",)
#: The ``hermes_note`` columns of :attr:`RunRecord.notes` tuples, in order (``run_id`` goes first).
NOTE_FIELDS = ("position", "time", "text")


@dataclass
class RunRecord:
    """Everything the index stores about one run, read from its directory.

    ``row`` is the ``hermes_run`` row; ``args``, ``info``, ``tags`` and ``notes`` are
    plain tuples of :data:`ARG_FIELDS`, :data:`INFO_FIELDS`, :data:`TAG_FIELDS` and
    :data:`NOTE_FIELDS` (cheap to send from a reading worker and to insert).
    """

    row: dict[str, Any]
    args: list[tuple[Any, ...]]
    info: list[tuple[str, str]]
    tags: list[tuple[str]] = field(default_factory=list)
    notes: list[tuple[int, datetime | None, str]] = field(default_factory=list)


def read_curation(
    run_dir: str, notes: list[str], tags_file: bool = True, notes_file: bool = True
) -> tuple[list[tuple[str]], list[tuple[int, datetime | None, str]]]:
    """The :attr:`RunRecord.tags` and :attr:`RunRecord.notes` of ``run_dir``: its ``hermes.tags``
    and ``hermes.notes`` as rows (see :func:`pyhermes.rundir.read_tags`, :func:`~pyhermes.rundir.read_notes`).

    A tag the index cannot hold (longer than :data:`KEY_LENGTH`: none a valid tag is)
    is left out. What was irregular goes to the list ``notes``; a file that is not a regular
    file, too large or unreadable is a note too (the run has no tags or notes then):
    these files never make a run unreadable. Without ``tags_file`` (``notes_file``) the
    run is taken to have no ``hermes.tags`` (``hermes.notes``): not even looked for.
    """
    tags: list[str] = []
    found: list[rundir.Note] = []
    if tags_file:
        try:
            tags = rundir.read_tags(run_dir, notes)
        except (RunFormatError, OSError) as exc:
            notes.append(f"{printable(str(exc))} (tags not read)")
    if notes_file:
        try:
            found = rundir.read_notes(run_dir, notes)
        except (RunFormatError, OSError) as exc:
            notes.append(f"{printable(str(exc))} (notes not read)")
    return (
        [(tag,) for tag in tags if len(tag) <= KEY_LENGTH],
        [(position, note.time, note.text) for position, note in enumerate(found)],
    )


# --------------------------------------------------------------------------- reading runs


def read_run(run_dir: str, rel_path: str, settle_seconds: float = SETTLE_SECONDS) -> RunRecord:
    """Read one run directory into a :class:`RunRecord`.

    ``run_dir`` is the path on disk; ``rel_path`` the stored path (see
    :func:`stored_name`). The signature is taken before the files are read, so
    a change during the read is seen by the next sync. Only regular files are
    read (see :func:`pyhermes.rundir.open_regular`). What was irregular but
    readable (lines decoded by the fallback or skipped, NULs dropped, a scores
    file that is not all numbers or cannot be read, which leaves the score
    summary empty) goes into ``row["warnings"]``, one note per line; the run is
    still recorded. The scores file is summarised chunk by chunk, in bounded memory.

    Raises:
        RunFormatError: ``hermes.info`` or ``exec_arguments`` is not a regular file,
            is too large, or holds a key longer than :data:`KEY_LENGTH`.
        OSError: ``hermes.info`` or ``exec_arguments`` cannot be read at all.
    """
    now = time.time()
    sig = signature(run_dir)
    notes: list[str] = []
    info = rundir.read_info(run_dir, notes)
    arg_lines = rundir.read_exec_args(run_dir, notes)
    for key in (*info.keys(), *(line.split(None, 1)[0] for line in arg_lines)):
        if len(key) > KEY_LENGTH:
            raise RunFormatError(
                f"{run_dir}: a key of hermes.info or exec_arguments is longer than "
                f"{KEY_LENGTH} characters: {printable(key[:40])!r}...",
                run_dir,
            )
    identifier = os.path.basename(run_dir)
    scores_file = f"{run_dir}{os.sep}{identifier}{rundir.SCORES_SUFFIX}"
    summary: ScoreSummary | None = None
    try:
        summary = summarize_chunks(rundir.iter_scores(scores_file, notes))
    except (RunFormatError, OSError) as exc:
        notes.append(f"{printable(str(exc))} (scores not summarized)")
    id_start, job_idx, _ = rundir.parse_identifier(identifier)
    start = rundir.parse_time(info.get(rundir.START_TIME_KEY, "")) or id_start
    end = rundir.parse_time(info.get(rundir.END_TIME_KEY, ""))
    try:
        execution_time: float | None = float(info[rundir.EXECUTION_TIME_KEY])
    except (KeyError, ValueError):
        execution_time = None
    script_name, experiment_name = rundir.layout_names(run_dir)
    # The two files are read only when the signature (taken first) saw them: most runs have neither.
    tags, run_notes = read_curation(run_dir, notes, sig[6] is not None, sig[8] is not None)
    commit = info.get(rundir.COMMIT_HASH_KEY)
    row: dict[str, Any] = {
        "path": rel_path,
        "parent": posix_parent(rel_path),
        # These columns only help queries (the path is what names the run): cut to fit.
        "identifier": stored_name(identifier)[:KEY_LENGTH],
        "script_name": None if script_name is None else stored_name(script_name)[:KEY_LENGTH],
        "experiment_name": (
            None if experiment_name is None else stored_name(experiment_name)[:KEY_LENGTH]
        ),
        "job_idx": job_idx,
        "commit_hash": commit.strip() if commit is not None else None,
        "start_time": start,
        "end_time": end,
        "execution_time": execution_time,
        "comments": info.get(rundir.COMMENTS_KEY),
        "finished": end is not None,
        "read_at": now,
        "settled": is_settled(end is not None, sig, now, settle_seconds, run_dir),
        "warnings": "\n".join(printable(note.replace("\n", " ")) for note in notes) or None,
    }
    row.update(zip(SIGNATURE_COLUMNS, sig, strict=False))
    for name, column in SUMMARY_COLUMNS.items():
        row[column] = getattr(summary, name) if summary is not None else None
    args = []
    for position, line in enumerate(arg_lines):
        key, texts = rundir.split_arg(line)
        args.append((position, line, key, " ".join(texts) if texts else None, rundir.numeric_value(texts)))
    return RunRecord(row, args, list(info.items()), tags, run_notes)


@dataclass
class ReadFailure:
    """A run that could not be read: the error, and when the read started (``time.time()``)."""

    error: Exception
    read_at: float


#: What :func:`read_runs` gives for one run: (stored path, its record or why it failed).
ReadResult = tuple[str, "RunRecord | ReadFailure"]


def iter_read_runs(
    root: str, paths: Iterable[str], settle_seconds: float = SETTLE_SECONDS,
    progress: Callable[[int], None] | None = None,
) -> Iterator[ReadResult]:
    """Yield, in order, what :func:`read_runs` returns, run by run, as the runs are read.

    Many runs are read on every core (:mod:`pyhermes.index.sync.parallel`); the results
    stream out while the workers read ahead, so a caller that writes them slice
    by slice holds only a slice in memory.
    """
    paths = list(paths)
    if parallel_workers(len(paths)):  # many runs: read on every core (pyhermes.index.sync.parallel)
        results: Iterable[ReadResult] = map_chunks(read_runs, (root,), paths, (settle_seconds,))
    else:
        results = _read_here(root, paths, settle_seconds)
    yield from with_progress(results, progress)


def _read_here(root: str, paths: list[str], settle_seconds: float) -> Iterator[ReadResult]:
    prefix = root.rstrip(os.sep) + os.sep
    for path in paths:
        started = time.time()
        try:
            yield path, read_run(prefix + disk_name(path), path, settle_seconds)
        except (RunFormatError, OSError, ValueError) as exc:
            yield path, ReadFailure(exc, started)


def with_progress(
    results: Iterable[ReadResult], progress: Callable[[int], None] | None
) -> Iterator[ReadResult]:
    """Yield ``results``, calling ``progress(n)`` after the n-th (when ``progress`` is given)."""
    for done, result in enumerate(results, start=1):
        yield result
        if progress is not None:
            progress(done)


def read_runs(
    root: str, paths: Iterable[str], settle_seconds: float = SETTLE_SECONDS,
    progress: Callable[[int], None] | None = None,
) -> list[ReadResult]:
    """Read the runs at ``paths`` (stored paths relative to the folder ``root``).

    This is the whole "read" step of a sync: it touches files only, never the
    index. A run that cannot be read gives a :class:`ReadFailure` instead of a
    record (for a :class:`RunFormatError`, :class:`OSError` or :class:`ValueError`);
    any other exception propagates. ``progress(n)`` is called after each run.
    """
    return list(iter_read_runs(root, paths, settle_seconds, progress))


def problem_reason(exc: BaseException) -> str:
    """The text stored for a run that could not be read: the exception's type and message."""
    return printable(f"{type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------- a first build

#: Runs a first build reads ahead, before the database layer is ready (in bounded memory).
FIRST_BUILD_AHEAD = 4000


def list_new_runs(root: str, recursive: bool) -> list[str]:
    """The stored paths of the runs below the folder ``root`` (its tree with ``recursive``), sorted.

    What a sync of ``root`` into an empty index finds to read (the same listing
    rule, :func:`pyhermes.rundir.list_folder`).
    """
    prefix = root.rstrip(os.sep) + os.sep
    runs: list[str] = []
    pending = [""]
    while pending:
        current = pending.pop()
        names, others = rundir.list_folder(prefix + disk_name(current) if current else root)
        runs.extend(posix_join(current, stored_name(name)) for name in names)
        if recursive:
            pending.extend(posix_join(current, stored_name(name)) for name in others)
    return sorted(runs)


def read_ahead_for_new_index(
    root: str, recursive: bool, settle_seconds: float = SETTLE_SECONDS
) -> ChunkReader | None:
    """Start reading, on every core, the runs a first sync of ``root`` into a new index will read.

    Called before the index is created, so that the runs are read while the
    database layer is imported and the schema created (~0.3-0.5 s of one core).
    Returns the :class:`ChunkReader` of :func:`read_runs` over
    :func:`list_new_runs` (the sync takes it when its list of runs to read is the
    same), or None for fewer than :data:`~pyhermes.index.sync.parallel.AHEAD_FROM` runs,
    a single core, or when no worker process can be started. At most
    :data:`FIRST_BUILD_AHEAD` runs are read ahead of the sync.
    """
    if parallel.worker_count() < 2:
        return None
    paths = list_new_runs(root, recursive)
    if len(paths) < parallel.AHEAD_FROM:
        return None
    in_flight = -(-min(len(paths), FIRST_BUILD_AHEAD) // parallel.CHUNK_RUNS)
    try:
        return ChunkReader(read_runs, (root,), paths, (settle_seconds,), in_flight=in_flight)
    except OSError:  # no process to be had (a process limit): the sync reads them itself
        return None
