"""Match counts of the runs pages: remembered until the index changes, counted in the background.

A page of runs needs its rows at once and its count soon after: at a million
runs a filtered count scans for a second where its page takes milliseconds. A
count is started (:func:`start`) in a background thread, on a database
connection of its own (:meth:`~pyhermes.index.query.runs.RunQueries.count`
with ``alone``), so the page's own reads never wait for it; the page waits for
it only as long as it is told (:func:`wait`), and an answer that comes later is
remembered for the next page of the same filter and for ``/api/count``
(:func:`count_of`). Counts are remembered by (index, scope, change token,
filter): a change of the index starts new ones.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from pyhermes.index.query.filters import Filter
    from pyhermes.storage import Catalog

__all__ = ["CountKey", "count_key", "remembered", "start", "wait", "forget", "in_background"]

T = TypeVar("T")

#: What a count is remembered by: (index URL, root, folder, change token, filter, identifiers).
CountKey = tuple[Any, ...]

_COUNTS: collections.OrderedDict[CountKey, int] = collections.OrderedDict()
_COUNTS_SIZE = 64
_PENDING: dict[CountKey, Future[int]] = {}
_LOCK = threading.Lock()
_POOL: list[ThreadPoolExecutor] = []
_POOL_LOCK = threading.Lock()
#: Counts running at once (each holds a database connection while it scans).
COUNT_THREADS = 2


def count_key(catalog: Catalog, where: str | None, identifiers: Sequence[str] | None) -> CountKey:
    """The key the count of ``where`` (and ``identifiers``) in ``catalog`` is remembered by."""
    chosen = tuple(identifiers) if identifiers is not None else None
    return (catalog.url, str(catalog.root), str(catalog.folder), catalog.change_token(), where or "", chosen)


def remembered(key: CountKey) -> int | None:
    """The count remembered under ``key``; ``None`` when not known (or the index has no change token)."""
    if key[3] is None:
        return None
    with _LOCK:
        if key not in _COUNTS:
            return None
        _COUNTS.move_to_end(key)
        return _COUNTS[key]


def start(key: CountKey, catalog: Catalog, condition: Filter) -> Future[int]:
    """The count of ``condition`` under ``key``: remembered, running, or started now in the background."""
    with _LOCK:
        known = _COUNTS.get(key) if key[3] is not None else None
        if known is not None:
            done: Future[int] = Future()
            done.set_result(known)
            return done
        running = _PENDING.get(key)
        if running is not None:
            return running
        future = in_background(catalog.count, condition, alone=True)
        _PENDING[key] = future
    future.add_done_callback(lambda finished: _remember(key, finished))
    return future


def in_background(work: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
    """``work(*args, **kwargs)`` started in one of the :data:`COUNT_THREADS` background threads."""
    with _POOL_LOCK:
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(max_workers=COUNT_THREADS, thread_name_prefix="hermes-count"))
        return _POOL[0].submit(work, *args, **kwargs)


def _remember(key: CountKey, finished: Future[int]) -> None:
    with _LOCK:
        _PENDING.pop(key, None)
        if key[3] is None or finished.cancelled() or finished.exception() is not None:
            return
        _COUNTS[key] = finished.result()
        while len(_COUNTS) > _COUNTS_SIZE:
            _COUNTS.popitem(last=False)


def wait(future: Future[T], seconds: float | None) -> T | None:
    """The answer of ``future`` (a count), waiting at most ``seconds`` (``None``: until it is
    there); ``None`` when it is not there in time (it goes on, and is remembered when done).

    Raises:
        QueryError: the count was refused (as the page's own query would be).
    """
    try:
        return future.result(timeout=seconds)
    except FutureTimeout:
        return None


def forget() -> None:
    """Forget every remembered count (counts running go on, and are remembered when done)."""
    with _LOCK:
        _COUNTS.clear()
