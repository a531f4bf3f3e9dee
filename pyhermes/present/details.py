"""One run as plain data: what ``hermes show``, the run page and the notebook view of a run show."""

from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyhermes.storage import Experiment

__all__ = [
    "TAIL_LINES", "CRASH_LINES", "run_details", "list_files", "tail", "run_health", "human_size",
    "run_downloads",
]

#: Lines of a log file shown by :func:`run_details`.
TAIL_LINES = 10
#: The most lines of ``stderr.log`` :func:`run_health` shows for a crashed run.
CRASH_LINES = 60
_TRACEBACK = "Traceback (most recent call last):"


def run_details(experiment: Experiment, tail_lines: int = TAIL_LINES) -> dict[str, Any]:
    """Return everything about one run, as plain data (``hermes show --format json``).

    Keys: the run fields, ``info``, ``args``, ``args_dict``, ``tags`` (sorted),
    ``notes`` (``{"time": ISO 8601 text or None, "text": ...}``, oldest first),
    ``scores`` (the score summary), ``files`` (name and size, ``None`` for a folder), ``stdout_tail``,
    ``stderr_tail`` (the last lines, ``None`` without the file), ``pth_files`` and
    ``result_files`` (names).
    """
    from pyhermes import rundir
    from pyhermes.index.query.filters import RUN_FIELDS, run_value

    folder = experiment.path_to_experiment
    files = list_files(folder)
    return {
        **{name: run_value(experiment, name) for name in RUN_FIELDS},
        "info": experiment.info_dict,
        "args": experiment.exec_arg_lines,
        "args_dict": experiment.exec_args_dict,
        "tags": experiment.tags,
        "notes": [
            {"time": None if note.time is None else note.time.isoformat(timespec="seconds"), "text": note.text}
            for note in experiment.notes
        ],
        "scores": experiment.score_summary.as_dict(),
        "files": [{"name": name, "size": size} for name, size in files],
        "stdout_tail": tail(folder / rundir.STDOUT_FILE, tail_lines),
        "stderr_tail": tail(folder / rundir.STDERR_FILE, tail_lines),
        "pth_files": [name for name, size in files if name.endswith(rundir.PTH_SUFFIX)],
        "result_files": [name for name, size in files if name.endswith(rundir.RESULT_SUFFIX)],
    }


def list_files(folder: Path) -> list[tuple[str, int | None]]:
    """Return (name, size in bytes) of the entries of ``folder``, sorted; size ``None`` for folders."""
    entries: list[tuple[str, int | None]] = []
    with os.scandir(folder) as listing:
        for entry in listing:
            try:
                if entry.is_dir(follow_symlinks=False):
                    entries.append((entry.name + "/", None))
                else:
                    entries.append((entry.name, entry.stat(follow_symlinks=False).st_size))
            except OSError:
                entries.append((entry.name, None))
    return sorted(entries)


def tail(path: Path, count: int, limit: int = 64 * 1024) -> list[str] | None:
    """Return the last ``count`` lines of the text file ``path`` (``None`` if it does not exist).

    The bytes are decoded by the rule of :func:`pyhermes.rundir.decode_text`, without warnings.
    """
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            data = handle.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    from pyhermes import rundir

    lines = rundir.decode_text(data, path, notes=[]).splitlines()  # the decoding rule, quietly
    if size > limit and lines:
        lines = lines[1:]  # the first line read is probably cut
    return list(collections.deque(lines, maxlen=count))


def run_health(experiment: Experiment, settle: float | None = None, now: float | None = None) -> dict[str, Any]:
    """Return whether the run finished, is still being written or crashed, and what it left in
    ``stderr.log`` when it crashed (the rule of ``hermes gc``: :func:`pyhermes.curation.run_status`).

    Keys: ``status`` (``"finished"``, ``"unfinished"`` or ``"crashed"``), ``status_reason``
    (why, in words) and ``crash_lines``: for a crashed run, the last lines of ``stderr.log``
    from its first ``Traceback`` line among the last :data:`CRASH_LINES` (all of them without
    one); else, or without the file, ``None``. ``settle`` is the settle window in seconds
    (default the index's, :data:`pyhermes.index.rules.SETTLE_SECONDS`); ``now`` a
    :func:`time.time` value. Never raises.
    """
    from pyhermes import rundir
    from pyhermes.curation import run_status
    from pyhermes.index.rules import SETTLE_SECONDS

    status, reason = run_status(experiment, now, SETTLE_SECONDS if settle is None else settle)
    lines = None
    if status == "crashed":
        lines = tail(experiment.path_to_experiment / rundir.STDERR_FILE, CRASH_LINES) or None
        starts = [number for number, line in enumerate(lines or []) if line.startswith(_TRACEBACK)]
        if lines and starts:
            lines = lines[starts[0]:]
    return {"status": status, "status_reason": reason, "crash_lines": lines}


def human_size(size: int | None) -> str:
    """Return ``size`` bytes for people, in decimal units: ``"512 B"``, ``"1.2 kB"``, ``"3.4 MB"``
    (``""`` for ``None``)."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 999.95 or unit == "TB":
            return f"{size:,} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def run_downloads(experiment: Experiment) -> list[dict[str, Any]]:
    """Return the entries of the run's directory for its files table, sorted by name.

    Each is ``{"name", "size"`` (bytes, ``None`` unless a file), ``"human"`` (:func:`human_size`),
    ``"kind"`` (see :class:`pyhermes.rundir.RunFile`), ``"download"`` (whether it is served as a
    download), ``"log"`` (whether the log viewer shows it)``}``. ``[]`` when the directory
    cannot be listed.
    """
    from pyhermes import rundir

    try:
        entries = rundir.run_files(experiment.path_to_experiment)
    except OSError:
        return []
    return [
        {
            "name": entry.name,
            "size": entry.size,
            "human": human_size(entry.size),
            "kind": entry.kind,
            "download": entry.downloadable,
            "log": entry.downloadable and entry.name.endswith(rundir.LOG_SUFFIX),
        }
        for entry in entries
    ]
