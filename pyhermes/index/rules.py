"""The rules of a sync that need no SQLAlchemy: stored names, signatures, settling, listings.

:mod:`pyhermes.index.sync.syncer` (which writes, through SQLAlchemy) and
:mod:`pyhermes.index.sync.unchanged` (which tells, with the standard library only,
that a quick sync would do nothing) share them; the names are re-exported by
``sync``.
"""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path
from typing import Any

from pyhermes import rundir

#: A folder changed this close to its listing is listed again (timestamps are coarse).
RACY_SECONDS = 2.0
#: Default settle window: a run finished this recently is still checked on every sync.
SETTLE_SECONDS = 60.0
SYNC_MODES = ("quick", "full", "none")
#: Longest info key, exec-arg key and name the index columns hold (``VARCHAR(255)``).
KEY_LENGTH = 255

Signature = tuple[Any, ...]


# --------------------------------------------------------------------------- names

#: The escape character of stored names: a Unicode noncharacter, "for internal use".
NAME_ESCAPE = "\ufdd0"
_TO_ESCAPE = re.compile("[\ufdd0\ud800-\udfff]")
_ESCAPED = re.compile("\ufdd0(\ufdd0|u[0-9a-f]{4}|[0-9a-f]{2})")


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    if char == NAME_ESCAPE:
        return NAME_ESCAPE * 2
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # one undecodable byte, as os.fsdecode gives it
        return f"{NAME_ESCAPE}{code - 0xDC00:02x}"
    return f"{NAME_ESCAPE}u{code:04x}"


def _unescape_one(match: re.Match[str]) -> str:
    code = match.group(1)
    if code == NAME_ESCAPE:
        return NAME_ESCAPE
    if code[0] == "u":
        return chr(int(code[1:], 16))
    return chr(0xDC00 + int(code, 16))


def stored_name(name: str) -> str:
    """Return the text the index stores for a file name or path read from the disk.

    Valid UTF-8 names are stored as they are; an undecodable byte (a lone
    surrogate from :func:`os.fsdecode`) becomes ``U+FDD0`` and two hex digits,
    and ``U+FDD0`` itself is doubled. :func:`disk_name` reverses it exactly.
    """
    if name.isascii():
        return name
    return _TO_ESCAPE.sub(_escape_one, name)


def disk_name(stored: str) -> str:
    """Return the name on disk (as :func:`os.fsdecode` gives it) of a name stored by :func:`stored_name`."""
    if NAME_ESCAPE not in stored:
        return stored
    return _ESCAPED.sub(_unescape_one, stored)


def printable(text: str) -> str:
    """Return ``text`` with lone surrogates shown as ``\\xNN`` escapes (safe to encode as UTF-8)."""
    if text.isascii():
        return text
    return os.fsencode(text).decode("utf-8", "backslashreplace") if _has_surrogate(text) else text


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)


def seconds_from_env(variable: str, default: float) -> float:
    """The seconds the environment ``variable`` gives, or ``default`` when it is unset,
    not a number or negative."""
    value = os.environ.get(variable, "")
    try:
        seconds = float(value) if value else default
    except ValueError:
        return default
    return seconds if seconds >= 0 else default


def signature(run_dir: str) -> Signature:
    """(size, mtime_ns) of ``hermes.info``, ``exec_arguments``, the scores file, ``hermes.tags``
    and ``hermes.notes``, flattened, in the order of :data:`SIGNATURE_COLUMNS`.

    A missing file gives ``(None, None)``; a file that cannot be looked at (a
    symlink loop, no permission...) gives ``(-1, -errno)``, so the run is read
    again and its problem recorded. This runs once per run in a full sync, so it
    does little but the five ``stat`` calls. The first six values are those of
    the signature before revision 0005 (:data:`SCORES_SIGNATURE` names the scores').
    """
    prefix = run_dir + os.sep
    return (
        *_size_and_mtime(prefix + rundir.INFO_FILE),
        *_size_and_mtime(prefix + rundir.EXEC_ARGS_FILE),
        *_size_and_mtime(prefix + run_dir.rpartition(os.sep)[2] + rundir.SCORES_SUFFIX),
        *_size_and_mtime(prefix + rundir.TAGS_FILE),
        *_size_and_mtime(prefix + rundir.NOTES_FILE),
    )


def curation_signature(run_dir: str) -> Signature:
    """The values of :data:`CURATION_COLUMNS`: (size, mtime_ns) of ``hermes.tags`` and
    ``hermes.notes`` (as in :func:`signature`)."""
    prefix = run_dir + os.sep
    return (*_size_and_mtime(prefix + rundir.TAGS_FILE), *_size_and_mtime(prefix + rundir.NOTES_FILE))


def _size_and_mtime(path: str) -> tuple[int | None, int | None]:
    try:
        status = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None, None
    except OSError as exc:
        return -1, -(exc.errno or errno.EIO)
    except ValueError:  # a name the system cannot take (an embedded NUL)
        return -1, -errno.EINVAL
    return status.st_size, status.st_mtime_ns


#: An unfinished run whose stderr.log ends in a traceback and that nothing wrote for this long
#: (seconds) has crashed: it settles (see :func:`is_settled`).
CRASH_SETTLE_SECONDS = 3600.0

# Rows of Syncer._known_runs: (id, path, parent, settled, finished, *signature).
SIGNATURE_START = 5
SIGNATURE_COLUMNS = (
    "info_size",
    "info_mtime_ns",
    "args_size",
    "args_mtime_ns",
    "scores_size",
    "scores_mtime_ns",
    "tags_size",
    "tags_mtime_ns",
    "notes_size",
    "notes_mtime_ns",
)
#: The positions of the scores file's (size, mtime_ns) in a signature.
SCORES_SIGNATURE = slice(4, 6)
#: The signature columns of the curation files (the last four of :data:`SIGNATURE_COLUMNS`).
CURATION_COLUMNS = SIGNATURE_COLUMNS[6:]


def is_settled(
    finished: bool, sig: Signature, now: float, settle_seconds: float, run_dir: str | None = None
) -> bool:
    """True when a run with signature ``sig`` is settled (see the sync contract): finished and
    nothing written for ``settle_seconds``; or, not finished, crashed long ago: nothing written
    for :data:`CRASH_SETTLE_SECONDS` and its ``stderr.log`` (in ``run_dir``) ends in a traceback,
    so no job writes it any more (a quick sync would otherwise look at its files forever)."""
    mtimes = [value for value in sig[1::2] if value is not None]
    idle = now - (max(mtimes) / 1e9 if mtimes else 0.0)
    if finished:
        return idle >= settle_seconds
    return run_dir is not None and idle >= CRASH_SETTLE_SECONDS and rundir.ends_in_traceback(run_dir, True)


def posix_parent(rel_path: str) -> str:
    """The parent of a POSIX relative path (``""`` for a top-level entry)."""
    head, _, _ = rel_path.rpartition("/")
    return head


def posix_join(folder: str, name: str) -> str:
    """The stored path of ``name`` in the stored folder ``folder`` (``""`` is the root)."""
    return f"{folder}/{name}" if folder else name


def relative(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` as a stored POSIX string (``""`` for the root itself)."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    return "" if rel == "." else stored_name(Path(rel).as_posix())


# --------------------------------------------------------------------------- folder listings


def encode_subfolders(names: list[str]) -> str:
    """The ``hermes_folder.subfolders`` text of a listing: a JSON array of stored names."""
    return json.dumps(names, ensure_ascii=False)


def decode_subfolders(text: str) -> list[str] | None:
    """The names of :func:`encode_subfolders`; ``None`` for text in another form (list again)."""
    if not text.startswith("["):
        return [] if text == "" else None
    try:
        names = json.loads(text)
    except ValueError:
        return None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        return None
    return names
