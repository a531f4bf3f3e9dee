"""The write-throughs: runs stored in the index as soon as they are written, or dropped once gone.

:meth:`pyhermes.Experiment.create`, ``finish`` and ``store_comments`` store the run
they wrote (:func:`store_runs`); ``erase`` drops it (:func:`forget_run`), and
archiving drops the runs it moved away (:func:`forget_runs`), so the index answers
for them before the next sync. Each owns short transactions, retried like a
sync's (:func:`~pyhermes.index.sync.transaction.run_in_transaction`), and its
writes are keyed by the runs' paths
(:func:`~pyhermes.index.sync.writes.store_read`): they commute with syncs and
other write-throughs of the same runs. The tags and notes a library call just
wrote are stored without reading the rest of the runs again (:func:`store_curation`).
"""

from __future__ import annotations

import operator
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, text

from pyhermes import rundir
from pyhermes.index.rules import (
    CURATION_COLUMNS,
    KEY_LENGTH,
    SETTLE_SECONDS,
    curation_signature,
    disk_name,
)
from pyhermes.index.store.models import note_table, run_table, tag_table
from pyhermes.index.sync.run_reading import (
    NOTE_FIELDS,
    TAG_FIELDS,
    ReadResult,
    read_curation,
    read_runs,
)
from pyhermes.index.sync.transaction import bump_change_token, run_in_transaction
from pyhermes.index.sync.writes import chunks, delete_runs, execute_many, store_read

__all__ = [
    "store_runs", "forget_run", "forget_runs", "store_curation", "read_curation_now", "CurationRead",
    "CURATION_KINDS", "RUNS_PER_TRANSACTION", "change_tags_on_disk", "TAG_WRITERS", "RUNS_PER_TAG_WRITER",
]

#: Most runs one write-through transaction stores or drops (a longer list takes several).
RUNS_PER_TRANSACTION = 4000


def store_runs(
    engine: Engine, root: Path, paths: Sequence[str], settle_seconds: float = SETTLE_SECONDS
) -> None:
    """Read the runs at ``paths`` (stored paths relative to ``root``) and store them in the index
    of ``engine``: the write-through of runs just written (or moved back in place). One
    transaction per :data:`RUNS_PER_TRANSACTION` runs (each retried, see
    :func:`run_in_transaction`), each read just before it is written. Keyed by path, it
    commutes with syncs and other write-throughs of the same runs. A run that cannot be read
    is recorded as a problem, as a sync does.

    Raises:
        IndexBusyError: the index stayed locked past the limit.
    """
    for chunk in chunks(sorted(dict.fromkeys(paths)), RUNS_PER_TRANSACTION):
        run_in_transaction(engine, _storing(read_runs(str(root), chunk, settle_seconds)), "write-through")


def _storing(results: list[ReadResult]) -> Callable[[Connection], None]:
    """The transaction's work that stores ``results`` and bumps the change token."""

    def work(conn: Connection) -> None:
        store_read(conn, results)
        bump_change_token(conn)

    return work


def forget_runs(engine: Engine, paths: Sequence[str]) -> int:
    """Drop the runs stored at ``paths`` (relative to the index root) from the index of
    ``engine``, with their args, info, tags and notes: one transaction per
    :data:`RUNS_PER_TRANSACTION` runs (retried, see :func:`run_in_transaction`).

    Returns:
        How many of them the index held.

    Raises:
        IndexBusyError: the index stayed locked past the limit.
    """
    dropped = 0
    for chunk in chunks(sorted(dict.fromkeys(paths)), RUNS_PER_TRANSACTION):

        def work(conn: Connection, chunk: list[str] = chunk) -> int:
            count = 0
            for part in chunks(chunk, 500):
                count += delete_runs(conn, select(run_table.c.id).where(run_table.c.path.in_(part)))
            if count:
                bump_change_token(conn)
            return count

        dropped += run_in_transaction(engine, work, "removal")
    return dropped


def forget_run(engine: Engine, path: str) -> None:
    """Drop the run stored at ``path`` (relative to the index root) from the index of ``engine``,
    with its args, info, tags and notes, in one transaction (retried, see
    :func:`run_in_transaction`).

    Raises:
        IndexBusyError: the index stayed locked past the limit.
    """

    def work(conn: Connection) -> None:
        delete_runs(conn, select(run_table.c.id).where(run_table.c.path == path))
        bump_change_token(conn)

    run_in_transaction(engine, work, "removal")


#: What :func:`store_curation` can store: the tags, the notes.
CURATION_KINDS = ("tags", "notes")

#: One run's curation files as read for the index: (read_at, curation signature, tag rows, note rows).
CurationRead = tuple[float, tuple[Any, ...], list[Any], list[Any]]


def read_curation_now(run_dir: str, kinds: Sequence[str] = CURATION_KINDS) -> CurationRead:
    """Read the run directory ``run_dir``'s ``hermes.tags`` and/or ``hermes.notes`` (``kinds``)
    as a sync would: the time (the row's ``read_at``), then the signature, then the files."""
    read_at = time.time()
    sig = curation_signature(run_dir)
    tags, notes = read_curation(
        run_dir, [], sig[0] is not None and "tags" in kinds, sig[2] is not None and "notes" in kinds
    )
    return read_at, sig, tags, notes


def store_curation(
    engine: Engine, root: Path, paths: Sequence[str], kinds: Sequence[str] = CURATION_KINDS,
    reads: Sequence[CurationRead] | None = None,
) -> int:
    """Store the tags and/or notes (``kinds``) of the runs at ``paths`` (stored paths relative to
    ``root``) as their files hold them now: the write-through of a library call that just
    changed those files. ``reads`` are the runs' :func:`read_curation_now`, in the order of
    ``paths``, when the caller read them already. Only runs the index holds are touched, and
    only their tag or note rows and the curation columns of their signature (the rest of the
    runs is not read). One transaction per :data:`RUNS_PER_TRANSACTION` runs (retried, see
    :func:`run_in_transaction`), which bumps the change token when it stored any run.

    Each run's files are read after the time that becomes the row's ``read_at`` (see
    :func:`read_curation_now`): the freshest read wins, whichever commits last (a sync that
    read the run earlier is ignored, see :func:`~pyhermes.index.sync.writes.store_read`).
    The rows are marked unsettled, so the next quick sync checks the rest of the signature
    and reads the run again if another file changed meanwhile.

    Returns:
        How many of the runs the index holds (and were stored).

    Raises:
        IndexBusyError: the index stayed locked past the limit.
    """
    prefix = str(root).rstrip(os.sep) + os.sep
    if reads is None:
        reads = [read_curation_now(prefix + disk_name(path), kinds) for path in paths]
    latest = dict(zip(paths, reads, strict=True))  # a path given twice: its last read
    items = sorted(latest.items(), key=operator.itemgetter(0))
    stored = 0
    for chunk in chunks(items, RUNS_PER_TRANSACTION):
        stored += run_in_transaction(engine, _curating(chunk, kinds), "write-through")
    return stored


def _curating(items: list[tuple[str, CurationRead]], kinds: Sequence[str]) -> Callable[[Connection], int]:
    """The transaction's work of :func:`store_curation` for ``items`` (path, read); it returns
    how many runs it stored."""

    def work(conn: Connection) -> int:
        # The signature columns of the files stored (tags_size, tags_mtime_ns / notes_...).
        columns = [(at, name) for at, name in enumerate(CURATION_COLUMNS) if CURATION_KINDS[at // 2] in kinds]
        sets = ", ".join(f"{name} = :{name}" for _, name in columns)
        sql = (
            f"UPDATE hermes_run SET read_at = :read_at, settled = :settled, {sets} "
            "WHERE path = :path AND read_at <= :read_at"
        )
        params = [
            {"read_at": read_at, "settled": False, "path": path, **{name: sig[at] for at, name in columns}}
            for path, (read_at, sig, _, _) in items
        ]
        if conn.dialect.name == "sqlite":  # straight to the driver: SQLAlchemy's per-row work costs more
            conn.exec_driver_sql(sql.replace(":settled", "0"), [_named(row) for row in params])
        else:
            conn.execute(text(sql), params)
        wanted = dict(items)
        mine: list[tuple[int, CurationRead]] = []
        for part in chunks(list(wanted), 500):
            rows = conn.execute(
                select(run_table.c.path, run_table.c.id, run_table.c.read_at).where(run_table.c.path.in_(part))
            )
            for path, run_id, read_at in rows:
                if read_at == wanted[path][0]:  # this write holds the row (no fresher read does)
                    mine.append((run_id, wanted[path]))
        ids = sorted(run_id for run_id, _ in mine)
        for table, fields, kind, at in ((tag_table, TAG_FIELDS, "tags", 2), (note_table, NOTE_FIELDS, "notes", 3)):
            if kind in kinds:
                for part in chunks(ids, 500):
                    conn.execute(delete(table).where(table.c.run_id.in_(part)))
                rows = [(run_id, *row) for run_id, read in mine for row in read[at]]
                execute_many(conn, insert(table), ("run_id", *fields), rows)
        if mine:
            bump_change_token(conn)
        return len(mine)

    return work


def _named(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` without the parameter the SQLite statement writes inline."""
    return {key: value for key, value in row.items() if key != "settled"}


#: Most threads that change the tag files of many runs at once, each a contiguous share of
#: the runs: creating each new file (its inode) costs far more than the rest of a change,
#: and the threads overlap it. On 2 cores, 2 to 4 were fastest and more cost CPU in
#: contention (tagging 10,000 runs, medians of 3 interleaved rounds: 1 thread 2.5 s,
#: 4 threads 1.8 s, 16 threads 2.2 s).
TAG_WRITERS = 4
#: Fewest runs a thread of :func:`change_tags_on_disk` gets (a few runs: one thread).
RUNS_PER_TAG_WRITER = 50


def change_tags_on_disk(
    run_dirs: Sequence[str], add: Iterable[str], remove: Iterable[str]
) -> list[tuple[list[str], list[str], CurationRead | None] | Exception]:
    """Add the tags ``add`` to, and take ``remove`` from, the runs ``run_dirs``
    (:func:`pyhermes.rundir.rewrite_tags`, read-modify-write under each run's lock, on up
    to :data:`TAG_WRITERS` threads for many runs), every change on disk when this returns:
    one run's file and folder are flushed (``fsync``) as it is written; many runs' files
    are written unflushed and their filesystems flushed once at the end
    (:func:`pyhermes.rundir.flush_to_disk`: an ``fsync`` of each file and folder costs
    several times the rest).

    Returns:
        For each run, in order: (tags before, tags after, its read for the index, or ``None``
        when its tags did not change), or the exception its change raised (the other runs
        are changed all the same). The read is the :data:`CurationRead` of its new
        ``hermes.tags``, as :func:`read_curation_now` would read it: taken from the change
        itself (the file written, its signature, and the time just after the change, under
        the run's lock), so no file is read again.

    Raises:
        InvalidTagError: a tag is not valid: checked before anything is written.
        ValueError: a tag is both added and removed (nothing is written).
        OSError: the filesystems could not be flushed (every change was made).
    """
    added = {rundir.check_tag(tag) for tag in add}
    removed = {rundir.check_tag(tag) for tag in remove}
    both = added & removed
    if both:
        raise ValueError(f"tags both added and removed: {', '.join(sorted(both))}")
    outcomes: list[tuple[list[str], list[str], CurationRead | None] | Exception] = [
        LookupError("not changed")
    ] * len(run_dirs)
    one = len(run_dirs) == 1

    def change(start: int, stop: int) -> None:
        for at in range(start, stop):
            try:
                done = rundir.rewrite_tags(run_dirs[at], added, removed, durable=one)
            except Exception as exc:  # noqa: BLE001 - given back: the other runs go on
                outcomes[at] = exc
                continue
            read: CurationRead | None = None
            if done.changed_at is not None:
                rows = [(tag,) for tag in done.after if len(tag) <= KEY_LENGTH]
                read = (done.changed_at, (done.size, done.mtime_ns, None, None), rows, [])
            outcomes[at] = (done.before, done.after, read)

    writers = max(1, min(TAG_WRITERS, len(run_dirs) // RUNS_PER_TAG_WRITER))
    if writers == 1:
        change(0, len(run_dirs))
    else:
        bounds = [len(run_dirs) * part // writers for part in range(writers + 1)]
        with ThreadPoolExecutor(writers) as pool:
            list(pool.map(change, bounds[:-1], bounds[1:]))
    if not one and run_dirs:
        rundir.flush_to_disk(run_dirs)
    return outcomes
