"""Telling, without SQLAlchemy, that a quick sync would change nothing.

A quick sync of a folder whose runs have all settled, whose listing is still
valid (:func:`listing_still_valid`) and that has no problem records does
nothing but confirm it. :func:`nothing_to_sync` checks exactly that with the
standard library's sqlite3 (a ``stat`` per folder and one per remembered
subfolder), so that a fresh process answering a question from an archive of
runs never imports SQLAlchemy; whenever it is not sure it says so, and the
caller runs the real sync (:mod:`pyhermes.index.sync`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyhermes import rundir
from pyhermes.index.query import Params, _text_condition, under

if TYPE_CHECKING:
    from pyhermes.index.reader import Reader

__all__ = [
    "RACY_SECONDS", "SETTLE_SECONDS", "SYNC_MODES", "SIGNATURE_COLUMNS", "Signature",
    "listing_still_valid", "nothing_to_sync", "settled", "signature",
]

#: A folder changed this close to its listing is listed again (timestamps are coarse).
RACY_SECONDS = 2.0
#: Default settle window: a run finished this recently is still checked on every sync.
SETTLE_SECONDS = 60.0
#: The modes of a sync (see the README, "The sync contract").
SYNC_MODES = ("quick", "full", "none")

#: What a sync compares to tell that a run changed (see :func:`signature`).
Signature = tuple[Any, ...]


def listing_still_valid(mtime_ns: int, listed_at: float, status_mtime_ns: int | None) -> bool:
    """True when a folder listed at ``listed_at`` (mtime then ``mtime_ns``) need not be listed again.

    Its mtime must be unchanged, and must not have changed within
    :data:`RACY_SECONDS` of the listing (a change in the same clock tick would not
    show in the mtime).
    """
    return (
        status_mtime_ns is not None
        and mtime_ns == status_mtime_ns
        and listed_at - status_mtime_ns / 1e9 > RACY_SECONDS
    )


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


SIGNATURE_COLUMNS = (
    "info_size",
    "info_mtime_ns",
    "args_size",
    "args_mtime_ns",
    "scores_size",
    "scores_mtime_ns",
)


def settled(finished: bool, sig: Signature, now: float, settle_seconds: float) -> bool:
    mtimes = [value for value in sig[1::2] if value is not None]
    newest = max(mtimes) / 1e9 if mtimes else 0.0
    return finished and now - newest >= settle_seconds


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def nothing_to_sync(reader: Reader, root: Path, folder: str, recursive: bool) -> bool:
    """True when a quick sync of ``folder`` (relative to ``root``) would find nothing to do.

    False means "not sure": some run below it is unsettled, a problem record would
    be retried, or a folder changed since it was listed.
    """
    params = Params()
    scope = under(folder, recursive).sql(params)
    # Unsettled runs (unfinished, or finished lately) are checked as the sync would.
    now = time.time()
    prefix = str(root).rstrip(os.sep) + os.sep
    columns = ", ".join(("path", "finished", *SIGNATURE_COLUMNS))
    for path, finished, *stored in reader.rows(
        # "settled = false" (not "NOT settled") lets the database use the settled index.
        f"SELECT {columns} FROM hermes_run WHERE {scope} AND settled = {params.bind(False)}",
        params.values,
    ):
        sig = signature(prefix + path)
        if sig != tuple(stored) or settled(bool(finished), sig, now, SETTLE_SECONDS):
            return False
    problem_params = Params()
    condition = _text_condition("path", "startswith", folder + "/", problem_params) if folder else "1 = 1"
    for (path,) in reader.rows(f"SELECT path FROM hermes_problem WHERE {condition}", problem_params.values):
        if recursive or path.rpartition("/")[0] == folder:
            return False
    folder_params = Params()
    condition = f"path = {folder_params.bind(folder)}"
    if recursive:
        below = _text_condition("path", "startswith", folder + "/", folder_params)
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
            return False
        try:
            status: int | None = os.stat(prefix + current if current else str(root)).st_mtime_ns
        except OSError:
            status = None
        if not listing_still_valid(row[0], row[1], status):
            return False
        for name in (name for name in row[2].split("\n") if name):
            rel = _join(current, name)
            if os.path.isfile(prefix + rel + os.sep + rundir.INFO_FILE):
                return False  # a new run in a folder listed before
            if recursive:
                pending.append(rel)
    return not recursive or visited == set(remembered)

