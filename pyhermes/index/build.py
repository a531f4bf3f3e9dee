"""Reading many run directories at once: across all cores, streamed to the one writer.

A sync that must read many runs (the first build of an index above all) spends
its time reading files and parsing scores, work that runs in parallel. With at
least :data:`PARALLEL_FROM` runs to read and more than one core, the read step
of a sync (:func:`pyhermes.index.sync.read_runs`) reads them in a process pool
(:func:`map_chunks`), in chunks of :data:`CHUNK_RUNS`; the records come back
chunk by chunk, in order, and no more than :data:`CHUNKS_IN_FLIGHT` chunks per
worker are pending at any time. Fewer runs are read in this process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

__all__ = ["PARALLEL_FROM", "CHUNK_RUNS", "CHUNKS_IN_FLIGHT", "map_chunks", "parallel_workers", "worker_count"]

#: Runs to read below which one process reads them (starting workers costs ~0.1 s).
PARALLEL_FROM = 2000
#: Runs read by a worker per task.
CHUNK_RUNS = 250
#: Tasks queued per worker ahead of the writer.
CHUNKS_IN_FLIGHT = 3

T = TypeVar("T")


def worker_count() -> int:
    """The number of cores this process may use (``HERMES_BUILD_WORKERS`` overrides it)."""
    wanted = os.environ.get("HERMES_BUILD_WORKERS", "")
    if wanted.isdigit() and int(wanted) > 0:
        return int(wanted)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def parallel_workers(items: int) -> int:
    """How many worker processes to read ``items`` runs with (0: read them in this process)."""
    workers = min(worker_count(), max(1, items // CHUNK_RUNS))
    return workers if items >= PARALLEL_FROM and workers >= 2 else 0


def map_chunks(
    function: Callable[..., list[T]], head: tuple[Any, ...], items: Sequence[Any], tail: tuple[Any, ...]
) -> Iterator[T]:
    """Yield, in order, the results of ``function(*head, chunk, *tail)`` over chunks of ``items``.

    The chunks run in a pool of :func:`parallel_workers` processes; at most
    :data:`CHUNKS_IN_FLIGHT` per worker are pending, so results stream to the
    caller while the workers go on. ``function`` must be a module-level function.
    """
    workers = max(2, parallel_workers(len(items)))
    # fork: the workers start at once with the modules already imported (no pickled state).
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    chunks = (items[start : start + CHUNK_RUNS] for start in range(0, len(items), CHUNK_RUNS))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: list[Future[list[T]]] = []
        for chunk in chunks:
            pending.append(pool.submit(function, *head, chunk, *tail))
            if len(pending) >= workers * CHUNKS_IN_FLIGHT:
                yield from pending.pop(0).result()
        for future in pending:
            yield from future.result()
