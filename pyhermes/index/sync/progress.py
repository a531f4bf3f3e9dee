"""How far a running sync has got, for another thread to read (the web server's status line).

A :class:`SyncProgress` is the ``progress`` callback of a sync
(:func:`pyhermes.index.sync.syncer.sync_folder`, :meth:`pyhermes.index.run_index.RunIndex.sync`):
the sync calls it with the number of runs read so far, and tells it, through
:func:`announce`, how many runs it has to read once it knows. Any other callable
``progress(n)`` (the progress bar of ``hermes-reindex``) is called as before and
never sees :func:`announce`.

Thread safety: the sync's thread is the only writer; a reader in another thread
takes :meth:`SyncProgress.snapshot`, built from two attribute reads (each atomic in
CPython), so it may mix the step just begun with the count of the one before: the
snapshot clamps ``done`` to ``total`` so that it never shows more read than there is.
A call costs one attribute store: no lock, no allocation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["SyncProgress", "announce", "LISTING", "READING", "WRITING", "WAITING", "SLICE_RUNS"]

#: Runs read and written per transaction by a sync with many runs to read (here, not in the
#: syncer, so that what watches a sync needs no SQLAlchemy).
SLICE_RUNS = 4000

#: The sync has not started yet.
WAITING = "waiting"
#: Listing folders and deciding which runs to read: how many is not known yet.
LISTING = "listing"
#: Reading the runs (and, in a first build, writing them slice by slice): ``done`` of ``total``.
READING = "reading"
#: Every run read: the last writes (removals, folder listings, statistics).
WRITING = "writing"


class SyncProgress:
    """The step a sync is at, and how many of the runs it reads are read (see the module's notes)."""

    def __init__(self) -> None:
        self._step: tuple[str, int | None, float] = (WAITING, None, time.time())
        self.done = 0

    def __call__(self, done: int) -> None:
        """The sync's callback: ``done`` runs of this step are read."""
        self.done = done

    def begin(self, phase: str, total: int | None = None) -> None:
        """Start step ``phase`` (:data:`LISTING`, :data:`READING`...) with ``total`` runs to go."""
        self.done = 0
        self._step = (phase, total, time.time())

    def snapshot(self) -> dict[str, Any]:
        """Return ``{phase, done, total, since}``: ``total`` is ``None`` while unknown, and
        ``phase`` is :data:`WRITING` once every run to read is read."""
        phase, total, since = self._step
        done = self.done
        if total is not None:
            done = min(done, total)
            if phase == READING and done >= total:
                phase = WRITING
        elif phase != READING:
            done = 0
        return {"phase": phase, "done": done, "total": total, "since": since}


def announce(progress: Callable[[int], None] | None, phase: str, total: int | None = None) -> None:
    """Tell ``progress`` that the sync starts step ``phase`` with ``total`` runs to read, when it
    is a :class:`SyncProgress` (any other callback only counts runs)."""
    begin = getattr(progress, "begin", None)
    if begin is not None:
        begin(phase, total)
