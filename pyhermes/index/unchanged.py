"""Telling, without SQLAlchemy, that a quick sync would change nothing.

A quick sync of a folder whose unsettled runs did not change, whose listing is
still valid (:func:`listing_still_valid`) and that has no problem records does
nothing but confirm it. :func:`nothing_to_sync` checks exactly that with the
standard library's sqlite3 (a ``stat`` per folder, per remembered subfolder and
per file of an unsettled run), so that a fresh process answering a question
from an archive of runs never imports SQLAlchemy; whenever it is not sure it
says so, and the caller runs the real sync (:mod:`pyhermes.index.sync`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pyhermes import rundir
from pyhermes.index.query import Params, _text_condition, under
from pyhermes.index.rules import (
    _SIGNATURE_COLUMNS,
    RACY_SECONDS,
    SETTLE_SECONDS,
    _settled,
    decode_subfolders,
    disk_name,
    posix_join,
    signature,
)

if TYPE_CHECKING:
    from pyhermes.index.reader import Reader

__all__ = ["listing_still_valid", "nothing_to_sync"]


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



def nothing_to_sync(reader: Reader, root: Path, folder: str, recursive: bool) -> bool:
    """True when a quick sync of ``folder`` (stored path relative to ``root``) would find nothing to do.

    False means "not sure": an unsettled run changed or would settle, a problem
    record would be retried, or a folder changed since it was listed.
    """
    params = Params()
    scope = under(folder, recursive).sql(params)
    # Unsettled runs (unfinished, or finished lately) are checked as the sync would.
    now = time.time()
    prefix = str(root).rstrip(os.sep) + os.sep
    columns = ", ".join(("path", "finished", *_SIGNATURE_COLUMNS))
    for path, finished, *stored in reader.rows(
        # "settled = false" (not "NOT settled") lets the database use the settled index.
        f"SELECT {columns} FROM hermes_run WHERE {scope} AND settled = {params.bind(False)}",
        params.values,
    ):
        sig = signature(prefix + disk_name(path))
        if sig != tuple(stored) or _settled(bool(finished), sig, now, SETTLE_SECONDS):
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
            status: int | None = os.stat(prefix + disk_name(current) if current else str(root)).st_mtime_ns
        except OSError:
            status = None
        names = decode_subfolders(row[2])
        if names is None or not listing_still_valid(row[0], row[1], status):
            return False
        for name in names:
            rel = posix_join(current, name)
            if rundir.has_info_file(prefix + disk_name(rel)):
                return False  # a new (possibly broken) run in a folder listed before
            if recursive:
                pending.append(rel)
    return not recursive or visited == set(remembered)
