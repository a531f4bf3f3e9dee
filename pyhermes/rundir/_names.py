"""File names, info keys, time formats and run identifiers of a run directory.

Owns the names every other part of :mod:`pyhermes.rundir` spells files and keys
with, the ``%Y_%m_%d_%H%M%S%f`` timestamps and the identifier
``<start>_<job index>_<last 5 of commit>`` of a run.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Union

PathLike = Union[str, "os.PathLike[str]"]

INFO_FILE = "hermes.info"
EXEC_ARGS_FILE = "exec_arguments"
RE_EXECUTION_FILE = "re_execution.hermes"
STDOUT_FILE = "stdout.log"
STDERR_FILE = "stderr.log"
SCORES_SUFFIX = ".scores"
RESULT_SUFFIX = ".result"
PTH_SUFFIX = ".pth"
TIME_FORMAT = "%Y_%m_%d_%H%M%S%f"
DEFAULT_COMMIT = "00000"

COMMIT_HASH_KEY = "commit_hash"
START_TIME_KEY = "start_time"
END_TIME_KEY = "end_time"
EXECUTION_TIME_KEY = "execution_time"
COMMENTS_KEY = "comments"

# The files whose size and mtime tell the index that a run changed.
TRACKED_FILES = (INFO_FILE, EXEC_ARGS_FILE)

_IDENTIFIER_RE = re.compile(r"^(\d{4}_\d{2}_\d{2}_\d{12})_(\d+)_(.*)$")


_TIME_RE = re.compile(r"(\d{4})_(\d{2})_(\d{2})_(\d{2})(\d{2})(\d{2})(\d{6})")


def parse_time(text: str) -> datetime | None:
    """Parse a ``%Y_%m_%d_%H%M%S%f`` timestamp; return ``None`` when it does not parse."""
    match = _TIME_RE.fullmatch(text.strip())
    if match is None:
        return None
    try:
        return datetime(*map(int, match.groups()))
    except ValueError:
        return None


def format_time(moment: datetime) -> str:
    """Format ``moment`` the way the legacy runner did (``%Y_%m_%d_%H%M%S%f``)."""
    return moment.strftime(TIME_FORMAT)


def parse_identifier(identifier: str) -> tuple[datetime | None, int | None, str | None]:
    """Split an identifier into (start time, job index, commit suffix).

    Returns ``(None, None, None)`` for a name that is not a hermes identifier.
    """
    match = _IDENTIFIER_RE.match(identifier)
    if match is None:
        return None, None, None
    return parse_time(match.group(1)), int(match.group(2)), match.group(3)


def make_identifier(start: datetime, job_idx: int, commit_hash: str) -> str:
    """Return the identifier of a run started at ``start`` as job ``job_idx`` of ``commit_hash``."""
    return f"{format_time(start)}_{job_idx}_{commit_hash[-5:]}"


def scores_path(run_dir: PathLike, identifier: str) -> Path:
    """Return the path of the run's scores file, ``<run_dir>/<identifier>.scores``."""
    return Path(run_dir) / f"{identifier}{SCORES_SUFFIX}"
