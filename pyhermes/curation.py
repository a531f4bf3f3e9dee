"""Curating runs in bulk: archive, unarchive and garbage collection (library layer).

:func:`archive_runs` moves ``ROOT/<rel>`` to ``ROOT/.archive/<rel>``, :func:`unarchive_runs`
moves it back, :func:`archived_runs` lists the archive; :func:`gc_candidates` finds the
crashed and empty runs (SQL on the index, then only the candidates on disk),
:func:`trash_runs` moves runs to ``ROOT/.trash/<rel>``, :func:`purge_trash` empties it.

Every move is one ``rename`` per run directory, so a run is always complete in one
place. The target is never overwritten; a run another process moved first is reported
in :attr:`Moved.refused`, not raised; nothing moves through a symbolic link or out of
``ROOT``; a run still being written (:func:`running`) is refused by archive and trash.
The index follows each batch in one call (``forget_runs`` after archiving or trashing,
``store_runs`` after unarchiving); should that fail, the next sync catches up (the
listing of every folder a run left or entered changed).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import time
import warnings
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from pyhermes import rundir
from pyhermes.catalog import ARCHIVE_FOLDER, Catalog
from pyhermes.errors import HermesError, RunFormatError
from pyhermes.experiment import Experiment
from pyhermes.index.query.filters import Filter, score, under
from pyhermes.index.query.filters import run as run_field
from pyhermes.index.query.runs import as_condition
from pyhermes.index.rules import SETTLE_SECONDS, disk_name, relative
from pyhermes.index.run_index import RunIndex
from pyhermes.runlist import ExperimentList

__all__ = [
    "ARCHIVE_FOLDER", "TRASH_FOLDER", "GC_REASONS", "Moved", "GcCandidate", "running", "running_reason",
    "archive_runs", "unarchive_runs", "archived_runs", "gc_candidates", "trash_runs", "purge_trash",
    "trash_size", "parse_age", "run_status",
]

PathLike = rundir.PathLike

#: The folder below a root that ``hermes gc --yes`` moves runs into (keeping their relative paths).
TRASH_FOLDER = ".trash"
GC_REASONS = ("crashed", "traceback", "empty")  #: why a run is a garbage-collection candidate

_AGE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


class Moved(NamedTuple):
    """What became of one run asked to move: ``target`` its new directory, or ``None``
    when the move was refused, ``refused`` then saying why."""

    run: Experiment
    source: Path
    target: Path | None
    refused: str | None


class GcCandidate(NamedTuple):
    """A run :func:`gc_candidates` proposes to remove: why (``"crashed"``: not finished and
    nothing written for longer than the crash limit; ``"traceback"``: not finished and
    ``stderr.log`` ends in a Python traceback; ``"empty"``: no scores) and the bytes of
    its directory tree."""

    run: Experiment
    reason: str
    bytes: int


# --------------------------------------------------------------------------- ages and activity


def parse_age(text: str) -> float:
    """Return the seconds of an age like ``"7d"``, ``"12h"``, ``"90m"``, ``"30s"`` or ``"2w"``.

    Raises:
        ValueError: ``text`` is not a number followed by one of the units s, m, h, d, w.
    """
    match = _AGE.match(str(text))
    if match is None:
        raise ValueError(
            f"an age is a number and a unit (s, m, h, d or w), like 7d, 12h or 90m; not {text!r}"
        )
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]


def _finished_on_disk(run_dir: str) -> bool:
    """True when the run's ``hermes.info`` on disk records an ``end_time`` (read now)."""
    try:
        info = rundir.read_info(run_dir)
    except (OSError, RunFormatError):
        return False
    return rundir.parse_time(info.get(rundir.END_TIME_KEY, "")) is not None


def running_reason(run_dir: PathLike, now: float | None = None, window: float = SETTLE_SECONDS) -> str | None:
    """Why the run at ``run_dir`` counts as still being written, or ``None`` when it does not.

    A run is running when it is not finished (no ``end_time`` in ``hermes.info``, read
    from disk) and a regular file directly in its directory changed less than ``window``
    seconds ago. The answer names the age: ``"written 12 s ago and not finished"``.
    """
    path = os.fspath(run_dir)
    moment = time.time() if now is None else now
    newest = _measure(path, deep=False)[2]
    if newest is None or moment - newest >= window:
        return None
    if _finished_on_disk(path):
        return None
    return f"written {max(0.0, moment - newest):.0f} s ago and not finished"


def running(run: Experiment, now: float | None = None) -> bool:
    """True when ``run`` is still being written: not finished and a file of its directory
    changed within the settle window (:data:`pyhermes.index.rules.SETTLE_SECONDS`).
    ``now`` is a :func:`time.time` value (default: now). Never raises."""
    return running_reason(run.path_to_experiment, now) is not None


# --------------------------------------------------------------------------- moving


def _inside(path: str, folder: str) -> bool:
    """True when the (real) ``path`` is strictly inside the (real) ``folder``."""
    return path != folder and path.startswith(folder.rstrip(os.sep) + os.sep)


class _Mover:
    """Moves run directories from one real folder into another, keeping relative paths."""

    def __init__(self, root: Path, source_top: str, target_top: str, *, check_running: bool,
                 window: float) -> None:
        self.root_real = os.path.realpath(root)
        self.source_top = source_top  # a real path: the live tree (root) or root/.archive
        self.target_top = target_top  # a real path or a path to create: root/.archive, root/.trash, root
        self.check_running = check_running
        self.window = window
        self._real_parents: dict[str, str] = {}
        self._made: set[str] = set()

    def _real_parent(self, folder: str) -> str:
        real = self._real_parents.get(folder)
        if real is None:
            real = self._real_parents[folder] = os.path.realpath(folder)
        return real

    def move(self, experiment: Experiment, now: float) -> Moved:
        path = experiment.path_to_experiment
        source_text = os.path.join(self._real_parent(os.path.dirname(os.path.abspath(path))), path.name)
        source = Path(source_text)
        if not _inside(source_text, self.source_top):
            return Moved(experiment, source, None, f"not below {self.source_top}")
        rel = os.path.relpath(source_text, self.source_top)
        first = rel.split(os.sep, 1)[0]
        if first in (ARCHIVE_FOLDER, TRASH_FOLDER) and self.source_top == self.root_real:
            return Moved(experiment, source, None, f"already in {first}")
        target_text = os.path.join(self.target_top, rel)
        target = Path(target_text)
        try:
            is_folder = stat.S_ISDIR(os.lstat(source_text).st_mode)
        except FileNotFoundError:
            return Moved(experiment, source, None, _gone(target_text))
        except OSError as exc:
            return Moved(experiment, source, None, f"cannot look at it: {exc.strerror or exc}")
        if not is_folder:
            return Moved(experiment, source, None, "not a run directory (a symbolic link or a file)")
        if self.check_running:
            reason = running_reason(source_text, now, self.window)
            if reason is not None:
                return Moved(experiment, source, None, reason)
        problem = self._prepare(os.path.dirname(target_text)) or _rename_refusal(source_text, target_text)
        return Moved(experiment, source, None if problem else target, problem)

    def _prepare(self, folder: str) -> str | None:
        """Create ``folder`` below the target top (and the top), one part at a time; return a
        refusal when a part is a symbolic link or not a folder (nothing is made through a link)."""
        if folder in self._made:
            return None
        rel = os.path.relpath(folder, self.target_top)
        parts = [] if rel == os.curdir else rel.split(os.sep)
        current = self.target_top
        for path in [current] + [current := os.path.join(current, part) for part in parts]:
            if path in self._made:
                continue
            try:
                os.mkdir(path)
            except FileExistsError:
                pass
            except OSError as exc:
                return f"cannot create {path}: {exc.strerror or exc}"
            if os.path.islink(path) or not os.path.isdir(path):
                return f"{path} is a symbolic link or not a folder; nothing is moved through it"
            self._made.add(path)
        return None


def _rename_refusal(source: str, target: str) -> str | None:
    """Rename ``source`` to ``target`` unless ``target`` exists; ``None`` when done, else why not."""
    try:
        rundir.rename_no_replace(source, target)
    except OSError as exc:
        if not os.path.lexists(source):
            return _gone(target)
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            return f"{target} exists already (not overwritten)"
        return f"cannot move it: {exc.strerror or exc}"
    return None


def _gone(target: str) -> str:
    if os.path.lexists(target):
        return "already moved by another process"
    return "no longer there (moved or removed by another process)"


def _folder_problem(root: Path, name: str) -> str | None:
    """A refusal when ``root/name`` exists but is not a real folder (a link, a file)."""
    folder = root / name
    if folder.is_symlink():
        return f"{folder} is a symbolic link; runs are never moved through it"
    if folder.exists() and not folder.is_dir():
        return f"{folder} is not a folder"
    return None


def _index_for(root: Path, index: Any) -> RunIndex | None:
    """The index to keep in step after moving runs below ``root``: ``index`` when it is an
    open one, ``None`` for ``False`` or when no index serves ``root``, else the one serving it."""
    if index is False:
        return None
    if isinstance(index, RunIndex):
        return index
    from pyhermes.index.store.location import find_index

    if find_index(root.resolve(), index) is None:
        return None
    return Catalog.open_index(root, index)


def _keep_index(root: Path, index: Any, paths: list[Path], forget: bool) -> None:
    """Drop ``paths`` from (``forget``) or store them in the index serving ``root``, in one call.

    A failure only warns: the run directories are moved, and the next sync of the folder
    (whose listing changed) brings the index in step.
    """
    if not paths:
        return
    try:
        catalog = _index_for(root, index)
        if catalog is None:
            return
        if forget:
            catalog.forget_runs(paths)
        else:
            catalog.store_runs(paths)
    except Exception as exc:  # noqa: BLE001 - the disk is the truth; the next sync catches up
        warnings.warn(
            f"{len(paths)} run(s) were moved but the index was not updated ({exc}); "
            f"the next sync of {root} brings it in step",
            stacklevel=3,
        )


def _move_all(root: PathLike, runs: Iterable[Experiment], source_top: str, target_name: str | None,
              *, check_running: bool, window: float) -> list[Moved]:
    top = Path(root)
    if not top.is_dir():
        raise FileNotFoundError(f"no such directory: {top}")
    root_real = os.path.realpath(top)
    target_top = root_real if target_name is None else os.path.join(root_real, target_name)
    mover = _Mover(top, source_top, target_top, check_running=check_running, window=window)
    now = time.time()
    return [mover.move(experiment, now) for experiment in runs]


def archive_runs(root: PathLike, runs: Iterable[Experiment], *, index: Any = None) -> list[Moved]:
    """Move each run ``ROOT/<rel>`` to ``ROOT/.archive/<rel>`` (one rename each) and drop the
    moved runs from the index serving ``root``.

    ``runs`` are runs below ``root`` (e.g. ``Catalog.find(...)``). A run still being written
    (:func:`running`), outside ``root``, already moved by another process, or whose
    target exists is not moved: its :class:`Moved` says why. ``index``: an open
    :class:`~pyhermes.storage.Catalog` to update, a path or URL, ``None`` for the index
    serving ``root`` (if any), or ``False`` to leave every index alone.

    Returns:
        One :class:`Moved` per run, in the order given.

    Raises:
        FileNotFoundError: ``root`` is not a directory.
    """
    return _move_out(root, runs, ARCHIVE_FOLDER, index)


def _move_out(root: PathLike, runs: Iterable[Experiment], folder: str, index: Any) -> list[Moved]:
    moved = _move_all(root, runs, os.path.realpath(root), folder, check_running=True, window=SETTLE_SECONDS)
    _keep_index(Path(root), index, [item.source for item in moved if item.target is not None], forget=True)
    return moved


def trash_runs(root: PathLike, runs: Iterable[Experiment], *, index: Any = None) -> list[Moved]:
    """As :func:`archive_runs`, into ``ROOT/.trash/<rel>`` (:func:`purge_trash` deletes them)."""
    return _move_out(root, runs, TRASH_FOLDER, index)


def unarchive_runs(root: PathLike, runs: Iterable[Experiment], *, index: Any = None) -> list[Moved]:
    """Move each archived run ``ROOT/.archive/<rel>`` back to ``ROOT/<rel>`` (one rename each)
    and store the moved runs in the index serving ``root`` (one call for all).

    ``runs`` are runs below ``ROOT/.archive`` (:func:`archived_runs`). A run whose
    place in the live tree is taken, or that another process moved first, is not moved:
    its :class:`Moved` says why. ``index`` as for :func:`archive_runs`.

    Returns:
        One :class:`Moved` per run, in the order given.

    Raises:
        FileNotFoundError: ``root`` is not a directory.
    """
    top = Path(root)
    archive_real = os.path.join(os.path.realpath(top), ARCHIVE_FOLDER)
    moved = _move_all(root, runs, archive_real, None, check_running=False, window=SETTLE_SECONDS)
    _keep_index(top, index, [item.target for item in moved if item.target is not None], forget=False)
    return moved


def archived_runs(root: PathLike, where: Filter | str | None = None) -> ExperimentList[Experiment]:
    """Return the archived runs below ``root`` (the tree of ``ROOT/.archive``, read from disk)
    matching ``where``, ordered by path.

    Raises:
        FileNotFoundError: ``root`` is not a directory.
        QueryError: a malformed expression.
    """
    condition = as_condition(where)  # a bad expression fails before the disk is read
    runs = Experiment.load_all(root, archived=True)
    if where is None:
        return runs
    return runs.where(condition)


# --------------------------------------------------------------------------- garbage collection


def _measure(folder: str, deep: bool = True) -> tuple[int, int, float | None]:
    """(run directories, bytes of regular files) in the tree of ``folder`` (links are not
    followed; only ``folder`` itself unless ``deep``), and the newest mtime (seconds) of the
    regular files directly in ``folder`` (``None``: none, or it cannot be listed)."""
    runs = total = 0
    newest: float | None = None
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            entries = os.scandir(current)
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if deep:
                            pending.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        status = entry.stat(follow_symlinks=False)
                        total += status.st_size
                        runs += entry.name == rundir.INFO_FILE
                        if current == folder and (newest is None or status.st_mtime > newest):
                            newest = status.st_mtime
                except OSError:
                    continue
    return runs, total, newest


def run_status(run: Experiment, now: float | None = None, window: float = SETTLE_SECONDS) -> tuple[str, str]:
    """Return (status, why) of ``run`` by the rule of :func:`gc_candidates`, read from disk:
    ``"crashed"`` when ``stderr.log`` ends in a traceback, or it is not finished and no file was
    written for ``window`` seconds; else ``"finished"`` or ``"unfinished"``. Never raises."""
    run_dir = str(run.path_to_experiment)
    if rundir.ends_in_traceback(run_dir, only_if_written=True):
        return "crashed", "stderr.log ends in a traceback"
    if _finished_on_disk(run_dir):
        return "finished", "hermes.info records its end_time"
    newest = _measure(run_dir, deep=False)[2]
    idle = float("inf") if newest is None else (time.time() if now is None else now) - newest
    if idle >= window:
        return "crashed", f"not finished, and no file written for {_age(idle)}"
    return "unfinished", f"not finished; a file was written {_age(idle)} ago"


def _age(seconds: float) -> str:
    """``seconds`` in its largest whole unit: ``"3 h"``, ``"12 min"``, ``"40 s"``."""
    units = ((86400.0, "d"), (3600.0, "h"), (60.0, "min"), (1.0, "s"))
    size, unit = next((size, unit) for size, unit in units if seconds >= size or unit == "s")
    return "an unknown time" if seconds == float("inf") else f"{max(0.0, seconds) / size:.0f} {unit}"


def _disk_empty(run: Experiment) -> bool:
    """True when the run's scores file on disk holds no score (missing, or no number)."""
    try:
        size = os.lstat(run.scores_file).st_size
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if size == 0:
        return True
    try:
        return len(rundir.read_scores(run.scores_file)) == 0
    except (OSError, RunFormatError):
        return False


def _open_catalog(root: Path, index: Any) -> RunIndex:
    if isinstance(index, RunIndex):
        return index
    return Catalog.open(root, index=index)


def gc_candidates(
    root: PathLike,
    where: Filter | str | None = None,
    older_than: float | str | None = None,
    *,
    index: Any = None,
    crash_after: float | None = None,
) -> list[GcCandidate]:
    """Return the runs below ``root`` that garbage collection would remove, ordered by path.

    A candidate is crashed (not finished and no file written for ``crash_after`` seconds,
    default the settle window), a traceback (``stderr.log`` ends in a Python traceback,
    finished or not: a job run under ``with Experiment.create(...)`` records its
    exception there, then its end) or empty (no scores); a run still being written
    (:func:`running`) never is. ``where`` narrows the runs (filter or expression text); ``older_than``
    (seconds, or an age like ``"7d"``) keeps runs that started longer ago. The index
    answers first (unfinished runs and runs without scores, one query); only those runs
    are then looked at on disk (activity, ``hermes.info``, the end of ``stderr.log``,
    sizes). ``index``: an open :class:`~pyhermes.storage.Catalog`, else a path or URL
    of the index to open and quick-sync (``None``: the index serving ``root``).

    Raises:
        FileNotFoundError: ``root`` is not a directory.
        QueryError: a malformed expression.
        ValueError: a malformed age.
    """
    top = Path(root)
    if not top.is_dir():
        raise FileNotFoundError(f"no such directory: {top}")
    condition = as_condition(where)
    seconds = parse_age(older_than) if isinstance(older_than, str) else older_than
    catalog = _open_catalog(top, index)
    settle = float(getattr(catalog, "settle_seconds", SETTLE_SECONDS))
    crash_limit = settle if crash_after is None else float(crash_after)
    scope = under(relative(catalog.root, top.resolve()), True)
    wanted: Filter = scope & condition & ((run_field.finished == False) | (score.count == 0))  # noqa: E712
    if seconds is not None:
        wanted = wanted & (run_field.start_time < datetime.now() - timedelta(seconds=seconds))
    if not isinstance(catalog, Catalog):  # pragma: no cover - a bare RunIndex builds no runs
        raise TypeError("gc_candidates needs a Catalog")
    prefix = str(catalog.root).rstrip(os.sep) + os.sep
    facts = {
        prefix + disk_name(path): (bool(finished), count)
        for path, finished, count in catalog.select_rows(["path", "finished", "score_count"], wanted, None, None, 0)
    }
    # The other runs (finished, with scores) are candidates only by a traceback at the end
    # of their stderr.log: one stat each; only a non-empty log is read.
    others = scope & condition & (run_field.finished == True) & (score.count > 0)  # noqa: E712
    if seconds is not None:
        others = others & (run_field.start_time < datetime.now() - timedelta(seconds=seconds))
    crashed_late = {
        run_id: path for run_id, path in catalog.select_rows(["id", "path"], others, None, None, 0)
        if rundir.ends_in_traceback(prefix + disk_name(path), only_if_written=True)
    }
    if crashed_late:
        wanted = wanted | catalog.ids_in(crashed_late)
        facts.update({prefix + disk_name(path): (True, None) for path in crashed_late.values()})
    now = time.time()
    found: list[GcCandidate] = []
    for experiment in catalog.find(wanted, order_by="path"):
        run_dir = str(experiment.path_to_experiment)
        _, size, newest = _measure(run_dir)
        if newest is None and not os.path.isdir(run_dir):
            continue  # gone since the index saw it
        finished, count = facts.get(run_dir, (False, None))
        finished = finished or _finished_on_disk(run_dir)
        idle = float("inf") if newest is None else now - newest
        if not finished and idle < settle:
            continue  # still being written: never a candidate
        reason = None
        if rundir.ends_in_traceback(run_dir):
            reason = "traceback"
        elif not finished and idle >= crash_limit:
            reason = "crashed"
        if reason is None and count == 0 and _disk_empty(experiment):
            reason = "empty"
        if reason is not None:
            found.append(GcCandidate(experiment, reason, size))
    return found


def _trash_folder(root: PathLike) -> str | None:
    """The real ``ROOT/.trash`` (``None`` when there is none).

    Raises:
        FileNotFoundError: ``root`` is not a directory.
        HermesError: ``ROOT/.trash`` is a symbolic link or not a folder.
    """
    top = Path(root)
    if not top.is_dir():
        raise FileNotFoundError(f"no such directory: {top}")
    problem = _folder_problem(top, TRASH_FOLDER)
    if problem is not None:
        raise HermesError(f"not touching the trash: {problem}")
    trash = os.path.join(os.path.realpath(top), TRASH_FOLDER)
    return trash if os.path.isdir(trash) and os.path.realpath(trash) == trash else None


def trash_size(root: PathLike) -> tuple[int, int]:
    """Return (run directories, bytes) that ``ROOT/.trash`` holds. Raises as :func:`purge_trash`."""
    trash = _trash_folder(root)
    return (0, 0) if trash is None else _measure(trash)[:2]


def purge_trash(root: PathLike) -> tuple[int, int]:
    """Delete everything in ``ROOT/.trash`` for good; return (runs removed, bytes freed).

    Only what is inside ``ROOT/.trash`` is removed: a ``.trash`` that is a symbolic link
    is refused; links inside it are removed, never followed. What another process removes
    meanwhile is skipped.

    Raises:
        FileNotFoundError: ``root`` is not a directory.
        HermesError: ``ROOT/.trash`` is a symbolic link or not a folder.
    """
    trash = _trash_folder(root)
    runs = freed = 0
    try:
        names = sorted(os.listdir(trash)) if trash is not None else []
    except FileNotFoundError:
        names = []
    for name in names:
        entry = os.path.join(trash, name)  # type: ignore[arg-type]  # names only when there is a trash
        try:
            if os.path.isdir(entry) and not os.path.islink(entry):
                count, size, _ = _measure(entry)
                shutil.rmtree(entry, onerror=_gone_meanwhile)
            else:
                count, size = 0, os.lstat(entry).st_size if os.path.isfile(entry) else 0
                os.unlink(entry)
        except FileNotFoundError:
            continue  # removed by another process
        runs += count
        freed += size
    return runs, freed


def _gone_meanwhile(function: Any, path: str, exc_info: Any) -> None:
    """``shutil.rmtree``'s error handler: what another process removed first is fine."""
    if not isinstance(exc_info[1], FileNotFoundError):
        raise exc_info[1]
