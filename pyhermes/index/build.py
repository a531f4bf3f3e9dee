"""Reading many run directories at once: across all cores, streamed to the one writer.

A sync that must read many runs (the first build of an index above all) spends
its time reading files and parsing scores, work that runs in parallel. With at
least :data:`PARALLEL_FROM` runs to read and more than one core,
:func:`read_runs` reads them in a process pool, in chunks of
:data:`CHUNK_RUNS`; the records come back chunk by chunk while the caller (the
only writer of the index) stores the previous ones, and no more than
:data:`CHUNKS_IN_FLIGHT` chunks per worker are pending at any time, so memory
stays flat however many runs there are. Fewer runs are read in this process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from pyhermes.errors import RunFormatError
from pyhermes.index.layout import TABLES

__all__ = ["PARALLEL_FROM", "CHUNK_RUNS", "CHUNKS_IN_FLIGHT", "insert_rows", "read_runs", "worker_count"]

#: Runs to read below which one process reads them (starting workers costs ~0.1 s).
PARALLEL_FROM = 2000
#: Runs read by a worker per task.
CHUNK_RUNS = 250
#: Tasks queued per worker ahead of the writer.
CHUNKS_IN_FLIGHT = 3

#: What reading a run may raise for a user's bad run (reported as a problem, not raised).
READ_ERRORS = (RunFormatError, OSError, ValueError)

Outcome = tuple[str, "int | None", Any]


def insert_rows(connection: Any, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (tuples in the order of ``columns``) with one executemany of the driver.

    ``connection`` is a SQLAlchemy connection (its transaction is the caller's);
    the values must already be what the database stores (no type processing).
    """
    if not rows:
        return
    kinds = {spec.name: {c.name: c.kind for c in spec.columns} for spec in TABLES}[table]
    assert set(columns) <= set(kinds), (table, columns)
    if connection.dialect.name == "sqlite":
        # Datetimes as SQLAlchemy stores them in SQLite (the text every query compares with).
        times = [at for at, name in enumerate(columns) if kinds[name] == "datetime"]
        if times:
            rows = [_sqlite_times(row, times) for row in rows]
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    connection.exec_driver_sql(sql, list(rows))


def _sqlite_times(row: tuple[Any, ...], positions: Sequence[int]) -> tuple[Any, ...]:
    from pyhermes.index.reader import sqlite_value

    values = list(row)
    for at in positions:
        values[at] = sqlite_value(values[at])
    return tuple(values)


def worker_count() -> int:
    """The number of cores this process may use (``HERMES_BUILD_WORKERS`` overrides it)."""
    wanted = os.environ.get("HERMES_BUILD_WORKERS", "")
    if wanted.isdigit() and int(wanted) > 0:
        return int(wanted)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _read_one(prefix: str, path: str, run_id: int | None, settle_seconds: float) -> Outcome:
    from pyhermes.index.sync import read_run

    try:
        return path, run_id, read_run(prefix + path, path, settle_seconds)
    except READ_ERRORS as exc:
        return path, run_id, exc


def _read_chunk(prefix: str, items: Sequence[tuple[str, int | None]], settle_seconds: float) -> list[Outcome]:
    return [_read_one(prefix, path, run_id, settle_seconds) for path, run_id in items]


def read_runs(
    prefix: str, to_read: Sequence[tuple[str, int | None]], settle_seconds: float
) -> Iterator[Outcome]:
    """Read the runs ``to_read`` (``(path relative to the root, run id or None)``), in order.

    ``prefix`` is the root folder with a trailing separator. Yields
    ``(path, run id, RunRecord)`` for a run read, ``(path, run id, exception)``
    for one that could not be (see :data:`READ_ERRORS`).
    """
    workers = min(worker_count(), max(1, len(to_read) // CHUNK_RUNS))
    if len(to_read) < PARALLEL_FROM or workers < 2:
        for path, run_id in to_read:
            yield _read_one(prefix, path, run_id, settle_seconds)
        return
    # fork: the workers start at once with the modules already imported (no pickled state).
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    chunks = (to_read[start : start + CHUNK_RUNS] for start in range(0, len(to_read), CHUNK_RUNS))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: list[Future[list[Outcome]]] = []
        for chunk in chunks:
            pending.append(pool.submit(_read_chunk, prefix, chunk, settle_seconds))
            if len(pending) >= workers * CHUNKS_IN_FLIGHT:
                yield from pending.pop(0).result()
        for future in pending:
            yield from future.result()
