"""One run as plain data: what ``hermes show``, the run page and the notebook view of a run show."""

from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyhermes.storage import Experiment

__all__ = ["TAIL_LINES", "run_details", "list_files", "tail"]

#: Lines of a log file shown by :func:`run_details`.
TAIL_LINES = 10


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
