"""Telling, without SQLAlchemy, that a quick sync would change nothing.

A quick sync of a folder whose unsettled runs did not change, whose listing is
still valid (:func:`listing_still_valid`) and that has no problem records does
nothing but confirm it. Two things a live lab changes all the time count as
unchanged too, so that a fresh process there costs what it costs in a settled
tree: the scores file of an unfinished run read less than
:func:`live_refresh_seconds` ago (a running job's scores are in the index at
most that old; a change to its ``hermes.info``, such as its end, is read at
once), and a folder that
changed since it was listed but whose runs and subfolders are exactly the ones
the index holds (runs that the jobs writing them stored themselves). :func:`nothing_to_sync` checks exactly that with the
standard library's sqlite3 (a ``stat`` per folder, per remembered subfolder and
per file of an unsettled run), so that a fresh process answering a question
from an archive of runs never imports SQLAlchemy; whenever it is not sure it
says so, and the caller runs the real sync (:mod:`pyhermes.index.sync.syncer`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyhermes import rundir
from pyhermes.index.query.filters import Params, text_condition, under
from pyhermes.index.rules import (
    RACY_SECONDS,
    SCORES_SIGNATURE,
    SETTLE_SECONDS,
    SIGNATURE_COLUMNS,
    Signature,
    decode_subfolders,
    disk_name,
    is_settled,
    posix_join,
    seconds_from_env,
    signature,
    stored_name,
)

if TYPE_CHECKING:
    from pyhermes.index.store.sql_reader import Reader

__all__ = [
    "LIVE_REFRESH_VAR", "SETTLE_MARKS_FROM", "listing_still_valid", "live_refresh_seconds", "nothing_to_sync",
]

#: The quick check's caller marks runs settled only when at least this many are behind: a
#: sweep's runs settling a few at a time wait for the next sync that writes (a live lab's
#: reads stay reads), while an index built moments after thousands of runs ended is marked once.
SETTLE_MARKS_FROM = 256
#: A folder's listing as the index keeps it: (stored path, mtime_ns when listed, listed_at).
Listing = tuple[str, int, float]
#: A difference younger than this (seconds) may be a job's write that its write-through follows.
WRITER_WINDOW = 1.0
#: The pauses (seconds) before a young difference is looked at again.
WRITER_PAUSES = (0.02, 0.05)
#: Where the scores file's (size, mtime) are in a signature.
_SCORES = SCORES_SIGNATURE
#: Environment variable: seconds the scores of an unfinished run may go unread by a quick sync (default 5).
LIVE_REFRESH_VAR = "HERMES_LIVE_REFRESH"
_DEFAULT_LIVE_REFRESH = 5.0


def live_refresh_seconds() -> float:
    """How long (seconds) an unfinished run's stored read stays fresh enough for a quick
    check: ``$HERMES_LIVE_REFRESH``, default 5; ``0`` re-reads a changed run every time."""
    return seconds_from_env(LIVE_REFRESH_VAR, _DEFAULT_LIVE_REFRESH)


def listing_still_valid(mtime_ns: int, listed_at: float, status_mtime_ns: int | None) -> bool:
    """True when a folder listed at ``listed_at`` (mtime then ``mtime_ns``) need not be listed again.

    Its mtime must be unchanged, and must not have changed within
    :data:`~pyhermes.index.rules.RACY_SECONDS` of the listing (a change in the same
    clock tick would not show in the mtime).
    """
    return (
        status_mtime_ns is not None
        and mtime_ns == status_mtime_ns
        and listed_at - status_mtime_ns / 1e9 > RACY_SECONDS
    )



def _listing_matches_index(reader: Reader, on_disk: str, folder: str, subfolders: list[str]) -> bool:
    """True when the folder ``on_disk`` (stored path ``folder``) holds exactly the runs the index
    has in it and the ``subfolders`` remembered: listing it again would change nothing.

    The runs the index holds are taken as runs without a ``stat`` of their
    ``hermes.info`` (a folder of 100,000 runs lists in a few tens of ms)."""
    indexed = {path for (path,) in reader.rows(
        "SELECT path FROM hermes_run WHERE parent = :parent", {"parent": folder}
    )}
    runs, others = rundir.list_folder(on_disk, lambda name: posix_join(folder, stored_name(name)) in indexed)
    if sorted(stored_name(name) for name in others) != sorted(subfolders):
        return False
    return indexed == {posix_join(folder, stored_name(name)) for name in runs}


def nothing_to_sync(
    reader: Reader,
    root: Path,
    folder: str,
    recursive: bool,
    relisted: list[Listing] | None = None,
    settling: list[tuple[str, Signature]] | None = None,
    settle_seconds: float = SETTLE_SECONDS,
) -> bool:
    """True when a quick sync of ``folder`` (stored path relative to ``root``) would find nothing to do.

    False means "not sure": an unsettled run changed (an unfinished one read more
    than :func:`live_refresh_seconds` ago), a problem record would be retried, or
    a folder changed since it was listed and now holds other runs than the index.
    A difference made in the last :data:`WRITER_WINDOW` seconds is looked at again
    after a few ms (up to :data:`WRITER_PAUSES`): a job that has just written a run
    stores it in the index (its write-through) moments later, and then there is
    nothing to sync after all.

    A folder that changed since it was listed but holds what the index holds is
    added to ``relisted`` as its new listing ``(path, mtime_ns, listed_at)``, for
    the caller to store (see :meth:`pyhermes.index.run_index.RunIndex.refresh`): the
    next process then trusts it without listing it again.

    Likewise, an unsettled run whose files are as indexed and that would settle now
    (finished, nothing written for ``settle_seconds``) is added to ``settling`` as
    ``(path, signature)``, for the caller to mark settled: only its flag is behind
    (an index built moments after its runs ended, and no sync has written since),
    and without it every quick check would look at its files again.
    """
    for pause in (*WRITER_PAUSES, None):
        listings: list[Listing] = []
        settled_now: list[tuple[str, Signature]] = []
        found = _difference(reader, root, folder, recursive, listings, settled_now, settle_seconds)
        if found is _SAME:
            if relisted is not None:
                relisted.extend(listings)
            if settling is not None:
                settling.extend(settled_now)
            return True
        if found is _OLD or pause is None:
            return False
        time.sleep(pause)
    return False  # pragma: no cover - the loop returns


#: What :func:`_difference` finds.
_SAME, _YOUNG, _OLD = "same", "young", "old"


def _age_of(mtime_ns: int | None, now: float) -> str:
    """``_YOUNG`` for a change made within :data:`WRITER_WINDOW` of ``now``, else ``_OLD``."""
    return _YOUNG if mtime_ns is not None and now - mtime_ns / 1e9 < WRITER_WINDOW else _OLD


def _but_scores(sig: Sequence[Any]) -> tuple[Any, ...]:
    """The values of a signature but the scores file's (its other files' sizes and mtimes)."""
    return (*sig[: _SCORES.start], *sig[_SCORES.stop :])


def _difference(
    reader: Reader,
    root: Path,
    folder: str,
    recursive: bool,
    relisted: list[Listing],
    settled_now: list[tuple[str, Signature]],
    settle_seconds: float,
) -> str:
    """The first difference between the index and the disk that a quick sync would act on:
    ``_SAME`` (none), ``_YOUNG`` (made moments ago) or ``_OLD``; the unchanged runs that
    would settle now go to ``settled_now``."""
    params = Params()
    scope = under(folder, recursive).sql(params)
    # Unsettled runs (unfinished, or finished lately) are checked as the sync would.
    now = time.time()
    fresh_since = now - live_refresh_seconds()
    prefix = str(root).rstrip(os.sep) + os.sep
    columns = ", ".join(("path", "finished", "read_at", *SIGNATURE_COLUMNS))
    for path, finished, read_at, *stored in reader.rows(
        # "settled = false" (not "NOT settled") lets the database use the settled index.
        f"SELECT {columns} FROM hermes_run WHERE {scope} AND settled = {params.bind(False)}",
        params.values,
    ):
        run_dir = prefix + disk_name(path)
        sig = signature(run_dir)
        if sig == tuple(stored):
            if is_settled(bool(finished), sig, now, settle_seconds, run_dir):
                settled_now.append((path, sig))
            continue
        if not finished and read_at >= fresh_since and _but_scores(sig) == _but_scores(stored):
            continue  # only the scores of a job read moments ago grew: they wait for a later sync
        return _age_of(max((mtime for mtime in sig[1::2] if mtime is not None), default=None), now)
    # A run that would settle now counts as indexed: only its flag is behind, which the
    # next sync that writes sets (until then a quick check looks at its files).
    problem_params = Params()
    condition = text_condition("path", "startswith", folder + "/", problem_params) if folder else "1 = 1"
    for (path,) in reader.rows(f"SELECT path FROM hermes_problem WHERE {condition}", problem_params.values):
        if recursive or path.rpartition("/")[0] == folder:
            return _OLD
    folder_params = Params()
    condition = f"path = {folder_params.bind(folder)}"
    if recursive:
        below = text_condition("path", "startswith", folder + "/", folder_params)
        condition = f"({condition} OR {below})" if folder else "1 = 1"
    remembered = {
        path: (mtime_ns, listed_at, subfolders)
        for path, mtime_ns, listed_at, subfolders in reader.rows(
            f"SELECT path, mtime_ns, listed_at, subfolders FROM hermes_folder WHERE {condition}",
            folder_params.values,
        )
    }
    visited: set[str] = set()
    pending = [folder]
    while pending:
        current = pending.pop()
        visited.add(current)
        row = remembered.get(current)
        if row is None:
            return _OLD
        try:
            status: int | None = os.stat(prefix + disk_name(current) if current else str(root)).st_mtime_ns
        except OSError:
            status = None
        names = decode_subfolders(row[2])
        if names is None:
            return _OLD
        if not listing_still_valid(row[0], row[1], status):
            if not _listing_matches_index(reader, prefix + disk_name(current) if current else str(root), current, names):
                return _age_of(status, now)
            if status is not None:
                relisted.append((current, status, time.time()))
        for name in names:
            rel = posix_join(current, name)
            if rundir.has_info_file(prefix + disk_name(rel)):
                return _OLD  # a new (possibly broken) run in a folder listed before
            if recursive:
                pending.append(rel)
    return _SAME if not recursive or visited == set(remembered) else _OLD
