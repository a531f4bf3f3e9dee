"""A folder's listing beside the index's runs of that folder, both in path order.

A sync that lists a folder (always in ``full`` mode; in ``quick`` mode when its
remembered listing is no longer valid) must tell, for every subfolder, whether it
is a run the index knows, a new run or another folder, and find the known runs
that are gone. Holding the index's rows of a folder of a million runs in a dict
cost ~1 KB a run (1.3 GB); here they stream from the index in path order, beside
the sorted listing, and each is dropped once its run is decided: what stays in
memory is the listing's names and the decisions (runs to read, to remove, to mark
settled), never a row per run.

:class:`RunChecks` holds the per-run rule of the sync contract (rules 2 and 3 of
:mod:`pyhermes.index.sync.syncer`): which known runs to read again, which to mark
settled.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pyhermes import rundir
from pyhermes.index.rules import (
    SIGNATURE_START,
    Signature,
    disk_name,
    is_settled,
    posix_join,
    signature,
    stored_name,
)

__all__ = ["Named", "RunChecks", "FolderMerge", "folder_mtime_ns", "in_sorted", "merge_listing", "sorted_stored_names"]


class Named(Protocol):
    """Where the runs to read are named as they are found (a :class:`~pyhermes.index.sync.parallel.ReadAhead`)."""

    def add(self, item: Any) -> None: ...


class RunChecks:
    """Decides, run by run, which known runs a sync reads again and which it marks settled.

    A known run (a row of :meth:`Syncer._known_runs`: id, path, parent, settled,
    finished, signature...) that is settled is trusted in quick mode; otherwise its
    files are looked at (:func:`~pyhermes.index.rules.signature`, five ``stat``
    calls): changed (or ``reread``) it goes to :attr:`to_read` and to ``ahead``,
    unchanged and settled by now to :attr:`newly_settled`.
    """

    def __init__(
        self, prefix: str, full: bool, reread: bool, settle_seconds: float, now: float,
        ahead: Named | None = None,
    ) -> None:
        self.prefix, self.full, self.reread = prefix, full, reread
        self.settle_seconds, self.now, self.ahead = settle_seconds, now, ahead
        self.to_read: list[str] = []
        self.newly_settled: list[tuple[str, Signature]] = []

    def check(self, path: str, row: Sequence[Any]) -> None:
        """Decide for the known run at stored ``path`` whose index row is ``row``."""
        settled, finished = row[3], row[4]
        if settled and not self.full:
            return
        run_dir = self.prefix + disk_name(path)
        sig = signature(run_dir)
        if self.reread or sig != tuple(row[SIGNATURE_START:]):
            self.to_read.append(path)
            if self.ahead is not None:
                self.ahead.add(path)
        elif not settled and is_settled(finished, sig, self.now, self.settle_seconds, run_dir):
            self.newly_settled.append((path, sig))


@dataclass
class FolderMerge:
    """What one folder's listing held, beside the index.

    ``names``: the stored names of all its real subdirectories, sorted (for
    :meth:`has`); ``new``: stored paths of runs the index does not know;
    ``others``: stored names of subfolders that are not runs (sorted);
    ``removed``: ``(path, id)`` of the known runs no longer there; ``problems``:
    the paths recorded as problems that are still listed.
    """

    names: list[str]
    new: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)
    removed: list[tuple[str, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def has(self, name: str) -> bool:
        """True when the folder holds a real subdirectory of stored name ``name``."""
        return in_sorted(self.names, name)


def in_sorted(items: Sequence[str], value: str) -> bool:
    """True when the sorted ``items`` hold ``value`` (a binary search: no set of a million names)."""
    index = bisect.bisect_left(items, value)
    return index < len(items) and items[index] == value


def folder_mtime_ns(path: str) -> int | None:
    """The mtime (ns) of the folder ``path``; ``None`` when it cannot be looked at."""
    try:
        return os.stat(path).st_mtime_ns
    except (OSError, ValueError):
        return None


def sorted_stored_names(names: Iterable[str]) -> list[str]:
    """The stored names (:func:`~pyhermes.index.rules.stored_name`) of ``names``, sorted."""
    return sorted(map(stored_name, names))


def merge_listing(
    folder: str,
    names: list[str],
    rows: Iterator[Sequence[Any]],
    is_run: Callable[[str], bool],
    problems: set[str] | frozenset[str],
    checks: RunChecks,
    forget: Callable[[str], object] = lambda path: None,
) -> FolderMerge:
    """Merge the listing of ``folder`` (stored path) with the index's runs in it.

    ``names``: the stored names of the folder's real subdirectories, sorted
    (:func:`sorted_stored_names`); ``rows``: the index's rows of the runs whose
    parent is ``folder``, ordered by path (code point order, as Python compares).
    A listed known run is a run without a look at its ``hermes.info`` and goes to
    ``checks``; a listed name the index does not know is a new run when it is a
    recorded problem or ``is_run(path)`` (its ``hermes.info`` is there), else
    another folder (but :data:`~pyhermes.rundir.SKIPPED_FOLDERS`). ``forget(path)``
    is called for each known run decided here.

    Raises:
        RuntimeError: the rows are not in path order (a query that does not order as
            Python does: that would be a defect of the caller).
    """
    merge = FolderMerge(names)
    row = next(rows, None)
    last = ""
    for name in names:
        path = posix_join(folder, name)
        while row is not None and row[1] < path:
            last = _in_order(last, row[1])
            merge.removed.append((row[1], row[0]))
            forget(row[1])
            row = next(rows, None)
        if row is not None and row[1] == path:
            last = _in_order(last, path)
            forget(path)
            checks.check(path, row)
            if path in problems:
                merge.problems.append(path)
            row = next(rows, None)
        elif path in problems:
            merge.problems.append(path)
            merge.new.append(path)
        elif is_run(path):
            merge.new.append(path)
        elif name not in rundir.SKIPPED_FOLDERS:
            merge.others.append(name)
    while row is not None:
        last = _in_order(last, row[1])
        merge.removed.append((row[1], row[0]))
        forget(row[1])
        row = next(rows, None)
    return merge


def _in_order(last: str, path: str) -> str:
    if path < last:
        raise RuntimeError(f"the index's runs came out of path order ({last!r} before {path!r})")
    return path
