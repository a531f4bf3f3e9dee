"""Reading many run directories at once: across all cores, streamed to the one writer.

A sync that must read many runs (the first build of an index above all) spends
its time reading files and parsing scores, work that runs in parallel. With at
least :data:`PARALLEL_FROM` runs to read and more than one core, the read step
of a sync (:func:`pyhermes.index.sync.run_reading.read_runs`) reads them in a process pool
(:func:`map_chunks`), in chunks of :data:`CHUNK_RUNS`; the records come back
chunk by chunk, in order, and no more than :data:`CHUNKS_IN_FLIGHT` chunks per
worker are pending at any time. Fewer runs are read in this process.

A sync with fewer runs to read than a slice (a full sync after some runs
changed) names them to a :class:`ReadAhead` while it still stats the others:
from :data:`AHEAD_FROM` runs on, a worker per core but one reads them
meanwhile, so that the reads cost little more than the stat loop.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from pyhermes.index.store.guard import connection_opened

__all__ = [
    "PARALLEL_FROM", "CHUNK_RUNS", "CHUNKS_IN_FLIGHT", "AHEAD_FROM", "AHEAD_CHUNK", "ChunkReader", "ReadAhead",
    "map_chunks",
    "parallel_workers", "worker_count",
]

#: Runs to read below which one process reads them (starting workers costs ~0.1 s).
PARALLEL_FROM = 2000
#: Runs read by a worker per task.
CHUNK_RUNS = 250
#: Tasks queued per worker ahead of the writer.
CHUNKS_IN_FLIGHT = 3

#: Runs to read, named while a sync still looks for changes, from which :class:`ReadAhead` reads them.
AHEAD_FROM = 200
#: Runs per task of a :class:`ReadAhead`.
AHEAD_CHUNK = 50

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


def _pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` reading processes that hold no database descriptor and die with
    this process.

    Forked (they start at once, with the modules already imported) while this
    process has never opened a database connection; otherwise started by a
    ``forkserver``, a clean process that never opened one (a forked child holds
    the descriptors of every connection open at the fork, and a child closing one
    drops this process's SQLite locks or ends its PostgreSQL session). Each worker
    dies with this process (:func:`_start_worker`).
    """
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and not connection_opened():
        context = multiprocessing.get_context("fork")
    elif "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["pyhermes.index.sync.run_reading"])
    else:  # pragma: no cover - not POSIX
        context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_start_worker, initargs=(os.getpid(),)
    )


#: Linux's prctl option: the signal a process gets when its parent dies.
_PR_SET_PDEATHSIG = 1
#: How often a worker looks whether the process that started its pool is still alive (seconds).
LIVENESS_POLL = 1.0


def _start_worker(origin: int) -> None:
    """Set up a reading worker of the process ``origin``: it dies when that process dies.

    On Linux the kernel sends it ``SIGKILL`` when its parent dies
    (``PR_SET_PDEATHSIG``; the parent is ``origin``, or the forkserver, which ends
    with ``origin``); everywhere, a thread looks every :data:`LIVENESS_POLL`
    seconds whether ``origin`` is alive. Without this a worker of a killed
    process blocks forever writing a result nobody reads. Also freezes the
    garbage collector's view of what a forked worker shares with ``origin``
    (walking it would copy those pages).
    """
    gc.freeze()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if not _alive(origin):
        os._exit(1)  # it died before the signal was asked for
    threading.Thread(target=_exit_when_gone, args=(origin,), daemon=True, name="hermes-liveness").start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exit_when_gone(origin: int) -> None:
    while _alive(origin):
        time.sleep(LIVENESS_POLL)
    os._exit(1)


def map_chunks(
    function: Callable[..., list[T]], head: tuple[Any, ...], items: Sequence[Any], tail: tuple[Any, ...]
) -> Iterator[T]:
    """Yield, in order, the results of ``function(*head, chunk, *tail)`` over chunks of ``items``.

    The chunks run in a pool of :func:`parallel_workers` processes (see
    :class:`ChunkReader`). ``function`` must be a module-level function.
    """
    yield from ChunkReader(function, head, items, tail)


class ChunkReader:
    """``function(*head, chunk, *tail)`` over chunks of :data:`CHUNK_RUNS` of ``items``,
    started in a process pool at once; iterating yields the results in order, once.

    At most ``in_flight`` chunks (default :data:`CHUNKS_IN_FLIGHT` per worker) are
    pending: results stream to the caller while the workers go on, in bounded
    memory. Made ahead of time (a first build, while the database layer is still
    being imported), the workers read meanwhile. :meth:`close` (or the end of the
    iteration) stops the pool. ``function`` must be a module-level function.
    """

    def __init__(
        self,
        function: Callable[..., list[T]],
        head: tuple[Any, ...],
        items: Sequence[Any],
        tail: tuple[Any, ...],
        in_flight: int | None = None,
    ) -> None:
        self.function, self.head, self.items, self.tail = function, head, items, tail
        workers = max(2, parallel_workers(len(items)))
        self._in_flight = in_flight or workers * CHUNKS_IN_FLIGHT
        self._starts = iter(range(0, len(items), CHUNK_RUNS))
        self._pending: deque[Future[list[T]]] = deque()
        self._pool: ProcessPoolExecutor | None = _pool(workers)
        try:
            self._submit()
        except BaseException:
            self.close()
            raise

    def _submit(self) -> None:
        while self._pool is not None and len(self._pending) < self._in_flight:
            start = next(self._starts, None)
            if start is None:
                return
            chunk = self.items[start : start + CHUNK_RUNS]
            self._pending.append(self._pool.submit(self.function, *self.head, chunk, *self.tail))

    def __iter__(self) -> Iterator[T]:
        try:
            while self._pending:
                future = self._pending.popleft()
                self._submit()
                yield from future.result()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the pool (pending work is dropped); safe to call again."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._pending.clear()


class ReadAhead:
    """Runs ``function(*head, chunk, *tail)`` over items named one by one (:meth:`add`),
    in a process pool, chunk by chunk as they come: the work overlaps what names them.

    A full sync stats every run to find the changed ones; read ahead, the changed
    runs are read on the other cores meanwhile. The pool starts only once
    :data:`AHEAD_FROM` items were named (fewer are read faster in one process, by
    :meth:`results`), with a worker per core but one (this process goes on
    naming items meanwhile); not on one core. Past ``limit`` items it stops
    (:attr:`overflowed`): the caller reads them its own way. ``function`` must be a
    module-level function returning one result per item, in order.
    """

    def __init__(
        self, function: Callable[..., list[T]], head: tuple[Any, ...], tail: tuple[Any, ...], limit: int
    ) -> None:
        self._function, self._head, self._tail, self._limit = function, head, tail, limit
        self._items: list[Any] = []
        self._submitted = 0
        self._futures: list[tuple[Future[list[T]], list[Any]]] = []
        self._executor: ProcessPoolExecutor | None = None
        self.overflowed = False

    def add(self, item: Any) -> None:
        """Name one more item; a chunk full of them is handed to the pool."""
        if self.overflowed:
            return
        self._items.append(item)
        if len(self._items) > self._limit:
            self.close()
            self.overflowed = True
        elif len(self._items) - self._submitted >= AHEAD_CHUNK and len(self._items) >= AHEAD_FROM:
            self._submit()

    def _submit(self) -> None:
        if self._executor is None:
            # One core is this process's, which goes on naming items meanwhile.
            workers = worker_count() - 1
            if workers < 1:
                return
            self._executor = _pool(workers)
        chunk = self._items[self._submitted :]
        self._futures.append((self._executor.submit(self._function, *self._head, chunk, *self._tail), chunk))
        self._submitted = len(self._items)

    def results(self) -> Iterator[T]:
        """Yield the results of every item named, in order; the pool is closed at the end.

        This process works on the items not handed to the pool (one by one) and on
        the chunks no worker has started yet.
        """
        if self.overflowed:
            raise RuntimeError("more items than the limit of this ReadAhead")
        try:
            if self._executor is not None and self._submitted < len(self._items):
                self._submit()
            for future, chunk in self._futures:
                # A chunk no worker has started yet is done here: this process helps.
                yield from self._function(*self._head, chunk, *self._tail) if future.cancel() else future.result()
            for item in self._items[self._submitted :]:
                yield from self._function(*self._head, [item], *self._tail)
        finally:
            self.close()

    def close(self) -> None:
        """Stop the pool (pending work is dropped)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self._futures = []
