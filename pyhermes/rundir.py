"""Reading and writing the files of a legacy hermes run directory.

This is the only module that knows the file names and formats of a run
(see the README's "On-disk format" section). It parses bytes into plain Python
values and writes files so that each is complete or absent; it knows nothing
about the index.

Layout: ``<root>/experiments/<script_name>/<experiment_name>/<identifier>/`` where
``identifier`` is ``<start %Y_%m_%d_%H%M%S%f>_<job index>_<last 5 of commit>``.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import os
import re
import stat
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Union

from pyhermes.errors import RunFormatError, RunFormatWarning

if TYPE_CHECKING:  # numpy is imported by the functions that read scores
    import numpy as np

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
_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(
    r"^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)$", re.IGNORECASE
)



# --------------------------------------------------------------------------- times


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


# --------------------------------------------------------------------------- reading


#: The codec error handler of the decoding rule for file objects (log files opened
#: in text mode): a byte that is not UTF-8 reads as its Latin-1 character.
TEXT_ERRORS = "pyhermes-latin1"
#: The one fallback of the decoding rule: it maps every byte to a character.
FALLBACK_ENCODING = "latin-1"
_BOM = b"\xef\xbb\xbf"


def _latin1_fallback(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return exc.object[exc.start : exc.end].decode(FALLBACK_ENCODING), exc.end


codecs.register_error(TEXT_ERRORS, _latin1_fallback)


def open_log(path: PathLike, mode: str) -> IO[Any]:
    """Open a log file of a run with ``mode``; in a text mode as UTF-8 with :data:`TEXT_ERRORS`."""
    if "b" in mode:
        return open(path, mode)
    return open(path, mode, encoding="utf-8", errors=TEXT_ERRORS)


def _note(notes: list[str] | None, message: str) -> None:
    """Record ``message`` in ``notes`` when given, else warn it as a :class:`RunFormatWarning`."""
    if notes is not None:
        notes.append(message)
    else:
        warnings.warn(message, RunFormatWarning, stacklevel=3)


def decode_text(raw: bytes, source: PathLike, notes: list[str] | None = None) -> str:
    """Decode the bytes of a run's text file by the decoding rule (README, "Text decoding").

    - NUL bytes at the very end of the file (left by a crash) are dropped, with a note.
    - A UTF-8 byte-order mark at the start is dropped (it is not content).
    - Lines (split at ``\n``) are UTF-8. A line that is not valid UTF-8, or holds a
      NUL byte, is decoded as Latin-1, which maps every byte to one character
      (``n\xe9ode-7`` reads as ``néode-7``), except that a NUL becomes U+FFFD (no
      database stores NUL in text); with a note naming ``source`` and the line.

    Notes are appended to ``notes`` when given, else warned as :class:`RunFormatWarning`.
    Never raises: every byte string decodes.
    """
    if raw.endswith(b"\0"):
        kept = raw.rstrip(b"\0")
        _note(notes, f"{source}: {len(raw) - len(kept)} NUL byte(s) at the end ignored")
        raw = kept
    if raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    if b"\0" not in raw:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
    decoded: list[str] = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            text = line.decode("utf-8")
            if "\0" not in text:
                decoded.append(text)
                continue
            why = "holds a NUL byte"
        except UnicodeDecodeError as exc:
            why = f"is not UTF-8 (byte {line[exc.start : exc.start + 1]!r})"
        text = line.decode(FALLBACK_ENCODING).replace("\0", "\ufffd")
        decoded.append(text)
        shown = text[:-1] if text.endswith("\r") else text
        _note(notes, f"{source}:{number}: line {why}, read as Latin-1: {shown[:80]!r}")
    return "\n".join(decoded)


def read_text(path: PathLike, notes: list[str] | None = None) -> str:
    """Return the text of ``path`` decoded by :func:`decode_text` (notes go to ``notes``).

    Only a regular file of at most :data:`MAX_TEXT_BYTES` is read (see :func:`read_bytes`).

    Raises:
        FileNotFoundError: the file does not exist.
        RunFormatError: it is not a regular file, or is too large.
        OSError: the file cannot be read.
    """
    return decode_text(read_bytes(path, MAX_TEXT_BYTES), path, notes)


# --------------------------------------------------------------------------- opening files

#: Largest ``hermes.info`` or ``exec_arguments`` read (bytes): a bigger one is a problem of its run.
MAX_TEXT_BYTES = 16 * 1024 * 1024
#: Longest line of a scores file (bytes): a longer one cannot be a number.
MAX_SCORE_LINE_BYTES = 64 * 1024
#: Bytes a scores file is read in, when summarised chunk by chunk.
SCORE_CHUNK_BYTES = 4 * 1024 * 1024

_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    for test, name in _FILE_KINDS:
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: PathLike) -> tuple[int, os.stat_result]:
    """Open ``path`` for reading if it is a regular file; return (descriptor, its ``fstat``).

    A symlink is followed only to a regular file in the same directory (a run's
    files never lead out of the run directory). The file is looked at
    (``lstat``/``stat``) before it is opened, so a FIFO, socket or device is
    never opened; it is opened with ``O_NONBLOCK`` and checked again with
    ``fstat``, so one swapped in meanwhile never blocks. The caller closes the
    descriptor.

    Raises:
        FileNotFoundError: there is no such file (a dangling symlink is a RunFormatError).
        RunFormatError: it is a directory, FIFO, socket, device, dangling symlink or a
            symlink out of its directory.
        OSError: it cannot be looked at or opened (a symlink loop, no permission...).
    """
    name = os.fspath(path)
    status = os.lstat(name)
    if stat.S_ISLNK(status.st_mode):
        try:
            status = os.stat(name)
        except FileNotFoundError:
            raise RunFormatError(f"{name}: a dangling symbolic link", name) from None
        folder = os.path.realpath(os.path.dirname(os.path.abspath(name)))
        if os.path.dirname(os.path.realpath(name)) != folder:
            raise RunFormatError(
                f"{name}: a symbolic link out of its directory; not followed", name
            )
    if not stat.S_ISREG(status.st_mode):
        raise RunFormatError(f"{name}: {_kind(status.st_mode)}, not a regular file", name)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(name, flags | getattr(os, "O_CLOEXEC", 0))
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise RunFormatError(f"{name}: {_kind(status.st_mode)}, not a regular file", name)
    except BaseException:
        os.close(fd)
        raise
    return fd, status


def read_bytes(path: PathLike, limit: int | None = None) -> bytes:
    """Return the bytes of the regular file ``path`` (see :func:`open_regular`).

    Raises:
        RunFormatError: it is not a regular file, or holds more than ``limit`` bytes.
        FileNotFoundError, OSError: as :func:`open_regular`, or a read fails.
    """
    fd, status = open_regular(path)
    try:
        if limit is not None and status.st_size > limit:
            raise _too_large(path, limit)
        parts = []
        size = 0
        while True:
            part = os.read(fd, 1 << 20)
            if not part:
                break
            size += len(part)
            if limit is not None and size > limit:
                raise _too_large(path, limit)
            parts.append(part)
        return b"".join(parts)
    finally:
        os.close(fd)


def _too_large(path: PathLike, limit: int) -> RunFormatError:
    return RunFormatError(f"{os.fspath(path)}: larger than {limit} bytes; not read", path)


def has_info_file(run_dir: PathLike) -> bool:
    """True when ``run_dir`` holds an entry named ``hermes.info``, of any kind; never raises.

    A ``hermes.info`` that is not a readable regular file (a FIFO, a symlink
    loop...) still marks a run: a broken one, reported when it is read.
    """
    try:
        return os.path.lexists(os.path.join(run_dir, INFO_FILE))
    except (OSError, ValueError):
        return False


def parse_info(text: str, source: PathLike = INFO_FILE, notes: list[str] | None = None) -> dict[str, str]:
    """Parse ``hermes.info`` text into a dict.

    Each line is split on its *first* colon, so values may contain colons; line
    endings are stripped and blank lines skipped. A non-blank line without a colon
    is skipped with a note (see :func:`decode_text`) naming ``source`` and the line
    number. A key that repeats keeps its last value (the file is appended to). Lines
    end at ``\n`` only (a ``\r`` before it is dropped): other Unicode line breaks
    are content.
    """
    info: dict[str, str] = {}
    for number, line in enumerate(_lines(text), start=1):
        if not line.strip():
            continue
        key, colon, value = line.partition(":")
        if not colon:
            _note(notes, f"{source}:{number}: line without ':' skipped: {line[:80]!r}")
            continue
        info[key.strip()] = value
    return info


def read_info(run_dir: PathLike, notes: list[str] | None = None) -> dict[str, str]:
    """Read and parse the ``hermes.info`` of ``run_dir`` (see :func:`parse_info`).

    Irregular bytes and lines are decoded or skipped by the decoding rule, each with
    a note in ``notes`` (a :class:`RunFormatWarning` when ``notes`` is ``None``).

    Raises:
        FileNotFoundError: there is no ``hermes.info``.
        OSError: it cannot be read (e.g. it is a directory, or not readable).
    """
    path = os.path.join(run_dir, INFO_FILE)
    return parse_info(read_text(path, notes), path, notes)


def parse_exec_args(text: str) -> list[str]:
    """Return the arguments of an ``exec_arguments`` text, one per line, in file order.

    Lines are stripped, inner runs of spaces folded to one, blank lines dropped.
    """
    return [" ".join(line.split()) for line in _lines(text) if line.strip()]


def read_exec_args(run_dir: PathLike, notes: list[str] | None = None) -> list[str]:
    """Read the ``exec_arguments`` of ``run_dir`` (see :func:`parse_exec_args`).

    A run without the file has no arguments (an empty list). Irregular bytes are
    decoded by :func:`decode_text`, with notes in ``notes`` (else warnings).

    Raises:
        OSError: the file exists but cannot be read.
    """
    path = os.path.join(run_dir, EXEC_ARGS_FILE)
    try:
        return parse_exec_args(read_text(path, notes))
    except FileNotFoundError:
        return []


def convert_value(text: str) -> int | float | str:
    """Convert one option value: an integer literal to ``int``, a float literal to ``float``, else ``str``."""
    if _INT_RE.match(text):
        return int(text)
    if _FLOAT_RE.match(text):
        return float(text)
    return text


def numeric_value(texts: list[str]) -> float | None:
    """The number an option's values stand for: one value that is a number (not NaN), else None.

    This is what the index stores and compares numerically; NaN is left out because
    databases do not agree on it (SQLite stores it as NULL).
    """
    if len(texts) != 1:
        return None
    value = convert_value(texts[0])
    if isinstance(value, (int, float)) and value == value:
        return float(value)
    return None


def split_arg(arg: str) -> tuple[str, list[str]]:
    """Split one argument line into its key and its value texts (empty for flags and positionals)."""
    key, *values = arg.split()
    return key, values


def exec_args_dict(args: Iterable[str]) -> dict[str, Any]:
    """Map argument lines to a dict, in order.

    Flags and positionals map to ``True``; an option with one value to that value
    converted by :func:`convert_value`; with several values to a list of converted
    values; a key that repeats to the list of its values, in file order.
    """
    result: dict[str, Any] = {}
    repeated: set[str] = set()
    for arg in args:
        key, texts = split_arg(arg)
        value: Any
        if not texts:
            value = True
        elif len(texts) == 1:
            value = convert_value(texts[0])
        else:
            value = [convert_value(text) for text in texts]
        if key not in result:
            result[key] = value
        elif key in repeated:
            result[key].append(value)
        else:
            result[key] = [result[key], value]
            repeated.add(key)
    return result


_CONTENT_LINE = re.compile(r"^[^\S\n]*\S", re.MULTILINE)


def _lines(text: str) -> list[str]:
    """Split at ``\n`` only, dropping a ``\r`` before it (other line breaks are content)."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_scores(
    raw: bytes, source: PathLike = "scores", notes: list[str] | None = None, *, line_offset: int = 0
) -> np.ndarray:
    """Parse the bytes of a ``.scores`` file into a float64 array.

    The bytes are decoded by :func:`decode_text` (notes in ``notes``, else
    warnings). A non-numeric first line (a header) is skipped, blank lines are
    skipped, ``nan``/``inf`` parse, and an unterminated last line that does not
    parse (a run still writing) is ignored. ``line_offset`` > 0 parses a later
    part of a file (whole lines, after ``line_offset`` lines): no header there,
    and messages count lines from the file's start.

    Raises:
        RunFormatError: a line other than those is not a number; the message names
            ``source`` and the line number.
    """
    import numpy as np

    fast = _parse_plain_scores(np, raw)  # the common file, before any decoding
    if fast is not None:
        return fast
    text = decode_text(raw, source, notes)
    first_line_end = text.find("\n")
    first_line = text if first_line_end < 0 else text[:first_line_end]
    offset_lines = line_offset
    first_words = first_line.split() if not line_offset else []
    if first_words and not all(_is_number(word) for word in first_words):
        if first_line_end < 0:
            return np.empty(0, dtype=np.float64)
        text = text[first_line_end + 1 :]
        offset_lines = 1
    if text and not text.endswith("\n"):
        last_start = text.rfind("\n") + 1
        if not _is_number(text[last_start:].strip() or "0"):
            text = text[:last_start]
    fast = _parse_plain_scores(np, text.encode("ascii")) if text.isascii() else None
    if fast is not None:
        return fast
    lines = text.split("\n")
    if lines and not lines[-1]:
        lines.pop()
    try:  # one number on every line, parsed by numpy without a Python loop
        return np.array(lines, dtype=np.float64)
    except ValueError:
        pass  # blank lines, or a line that is not one number: the careful path below
    tokens = text.split()
    if len(tokens) == len(_CONTENT_LINE.findall(text)):  # one value per non-blank line
        try:
            return np.array(tokens, dtype=np.float64)
        except ValueError:
            pass
    for number, line in enumerate(text.split("\n"), start=1 + offset_lines):
        if line.strip() and (len(line.split()) != 1 or not _is_number(line.strip())):
            raise RunFormatError(
                f"{source}:{number}: not a number: {line[:80]!r}", source
            ) from None
    raise RunFormatError(f"{source}: cannot parse scores", source)  # pragma: no cover


# Digits, signs, exponents, nan/inf spellings and newlines only: no spaces, tabs or blank lines.
_PLAIN_SCORES = re.compile(rb"[0-9.eE+\-naifntyNAIFTY\n]*")
#: The bytes of the most common scores files (a subset of what _PLAIN_SCORES allows).
_DIGIT_BYTES = b"0123456789.+-\n"


def _parse_plain_scores(np: Any, data: bytes) -> np.ndarray | None:
    """The scores of a file holding one number per line and nothing else, parsed in C; else None.

    Without spaces, tabs or blank lines every line holds at most one value, so the
    file is plain exactly when numpy reads as many values as there are lines.
    Such bytes are ASCII: their text is themselves, whatever the decoding rule.
    """
    if not data or data[0] == 0x0A or b"\n\n" in data:
        return None
    if data.translate(None, _DIGIT_BYTES) and _PLAIN_SCORES.fullmatch(data) is None:
        return None  # only what is not digits, signs and points needs the pattern
    lines = data.count(b"\n") + (not data.endswith(b"\n"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            values = np.fromstring(data, dtype=np.float64, sep=" ")
        except (ValueError, DeprecationWarning):
            return None
    return values if values.size == lines else None


def read_scores(path: PathLike, notes: list[str] | None = None) -> np.ndarray:
    """Read a ``.scores`` file (see :func:`parse_scores`); a missing file gives an empty array.

    Raises:
        RunFormatError: the file holds a line that is not a number, or is not a regular file.
        OSError: the file cannot be read.
    """
    try:
        raw = read_bytes(path)
    except FileNotFoundError:
        import numpy as np

        return np.empty(0, dtype=np.float64)
    return parse_scores(raw, path, notes)


def iter_scores(
    path: PathLike, notes: list[str] | None = None, chunk_bytes: int = SCORE_CHUNK_BYTES
) -> Iterator[np.ndarray]:
    """Yield the scores of a ``.scores`` file as float64 arrays, reading ``chunk_bytes`` at a time.

    The values are those of :func:`read_scores`, in order, in as many arrays as
    it takes: memory stays bounded whatever the file's size. A missing file
    yields nothing. Decoding notes go to ``notes`` (see :func:`decode_text`).

    Raises:
        RunFormatError: as :func:`read_scores`, or a line longer than
            :data:`MAX_SCORE_LINE_BYTES`.
        OSError: the file cannot be read.
    """
    try:
        fd, _ = open_regular(path)
    except FileNotFoundError:
        return
    try:
        lines_before = 0
        pending = b""
        while True:
            block = os.read(fd, chunk_bytes)
            if not block:
                break
            data = pending + block
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                if len(data) > MAX_SCORE_LINE_BYTES:
                    raise RunFormatError(
                        f"{os.fspath(path)}:{lines_before + 1}: a line longer than "
                        f"{MAX_SCORE_LINE_BYTES} bytes is not a score",
                        path,
                    )
                pending = data
                continue
            pending = data[cut:]
            yield parse_scores(data[:cut], path, notes, line_offset=lines_before)
            lines_before += data.count(b"\n", 0, cut)
        if pending or lines_before == 0:
            yield parse_scores(pending, path, notes, line_offset=lines_before)
    except OSError as exc:
        if exc.errno == errno.EAGAIN:  # a FIFO swapped in between the checks
            raise RunFormatError(f"{os.fspath(path)}: not a regular file", path) from None
        raise
    finally:
        os.close(fd)


def scores_path(run_dir: PathLike, identifier: str) -> Path:
    """Return the path of the run's scores file, ``<run_dir>/<identifier>.scores``."""
    return Path(run_dir) / f"{identifier}{SCORES_SUFFIX}"


def is_run_dir(path: PathLike) -> bool:
    """True when ``path`` is a real directory (not a symlink) holding a ``hermes.info`` file."""
    path = Path(path)
    try:
        return not path.is_symlink() and path.is_dir() and (path / INFO_FILE).is_file()
    except OSError:
        return False


#: Folders a scan never descends into: the index's own, and git's.
SKIPPED_FOLDERS = frozenset({".hermes", ".git"})


def list_folder(
    folder: PathLike, is_run: Callable[[str], bool] | None = None
) -> tuple[list[str], list[str]]:
    """Return (run names, other subfolder names) of one folder, each sorted.

    A run is a real subdirectory (never a symlink) holding ``hermes.info`` (see
    :func:`has_info_file`);
    ``is_run(name)`` may vouch for a name without that check (a run the caller
    already knows). Other subfolders leave out :data:`SKIPPED_FOLDERS`. An
    unreadable folder lists as empty.
    """
    runs: list[str] = []
    others: list[str] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return runs, others
    for entry in entries:
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
        except OSError:
            continue
        if (is_run is not None and is_run(entry.name)) or has_info_file(entry.path):
            runs.append(entry.name)
        elif entry.name not in SKIPPED_FOLDERS:
            others.append(entry.name)
    return runs, others


def iter_run_dirs(root: PathLike, recursive: bool = False) -> Iterator[Path]:
    """Yield the run directories below ``root``, sorted by name within each folder.

    Without ``recursive`` only the direct subdirectories of ``root`` are looked at
    (the documented ``load_all``). With it, the whole tree is walked; a run's own
    subfolders are not searched. Directory symlinks are never followed, so a run is
    never listed twice and a link loop never hangs the scan. Unreadable folders are
    skipped.
    """
    pending = [Path(root)]
    while pending:
        folder = pending.pop()
        runs, others = list_folder(folder)
        yield from (folder / name for name in runs)
        if recursive:
            pending.extend(folder / name for name in reversed(others))


def layout_names(run_dir: PathLike) -> tuple[str | None, str | None]:
    """Return (script name, experiment name) of a run from its place in the layout.

    ``<...>/experiments/<script>/<experiment>/<identifier>``; ``None`` for a part
    the path does not have.
    """
    parts = os.path.normpath(os.path.abspath(run_dir)).split(os.sep)
    if len(parts) >= 4 and parts[-4] == "experiments":
        return parts[-3], parts[-2]
    return None, None


def safe_child(run_dir: PathLike, name: PathLike) -> Path:
    """Return ``run_dir/name`` for a plain file name.

    Raises:
        ValueError: ``name`` is empty, absolute, ``.``/``..`` or contains a path
            separator, so it would not name a file directly inside the run directory.
    """
    text = os.fspath(name)
    if (
        not text
        or text in {".", ".."}
        or "/" in text
        or (os.sep != "/" and os.sep in text)
        or (os.altsep is not None and os.altsep in text)
        or "\0" in text
        or os.path.isabs(text)
    ):
        raise ValueError(
            f"{text!r} is not a plain file name inside the run directory {run_dir} "
            "(no '..', absolute paths or separators)"
        )
    return Path(run_dir) / text


def list_files(run_dir: PathLike, suffix: str = "") -> list[str]:
    """Return the names of the regular files in ``run_dir`` ending with ``suffix``, sorted."""
    with os.scandir(run_dir) as entries:
        return sorted(
            entry.name
            for entry in entries
            if entry.name.endswith(suffix) and entry.is_file(follow_symlinks=False)
        )


# --------------------------------------------------------------------------- writing


def atomic_write(path: PathLike, data: bytes | str) -> None:
    """Write ``data`` to ``path`` so that the file is either complete or absent.

    The data goes to a temporary file in the same folder, is flushed to disk, and
    replaces ``path`` with :func:`os.replace`.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def append_line(path: PathLike, line: str) -> None:
    """Append ``line`` plus a newline to ``path`` with one ``write`` call (O_APPEND)."""
    if "\n" in line or "\r" in line:
        raise ValueError(f"a line to append must not contain a line break: {line!r}")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def append_info(run_dir: PathLike, key: str, value: object) -> None:
    """Append ``key:value`` to the run's ``hermes.info``, as the legacy runner did."""
    if ":" in key:
        raise ValueError(f"an info key must not contain ':': {key!r}")
    append_line(Path(run_dir) / INFO_FILE, f"{key}:{value}")


def current_commit_hash(directory: PathLike | None = None) -> str:
    """Return ``git rev-parse HEAD`` of ``directory`` (default: the current one), else ``00000``."""
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return DEFAULT_COMMIT
    commit = completed.stdout.strip()
    if completed.returncode != 0 or not re.fullmatch(r"[0-9a-f]{5,64}", commit):
        return DEFAULT_COMMIT
    return commit


def format_exec_args(exec_args: Iterable[str]) -> str:
    """Return the ``exec_arguments`` text of ``exec_args``: one argument per line."""
    lines = []
    for arg in exec_args:
        if "\n" in arg or "\r" in arg or not arg.strip():
            raise ValueError(f"an exec argument must be one non-blank line: {arg!r}")
        lines.append(arg.strip() + "\n")
    return "".join(lines)


def create_run_dir(
    experiments_dir: PathLike,
    script_name: str,
    experiment_name: str,
    exec_args: Iterable[str],
    job_idx: int,
    commit_hash: str,
    start: datetime,
) -> tuple[Path, str, datetime]:
    """Create a new run directory in the legacy layout and its creation-time files.

    ``experiments_dir`` is the ``<path_to_experiments>`` folder; the run goes to
    ``experiments/<script_name>/<experiment_name>/<identifier>``. Creation is
    exclusive: when the identifier is taken (two runs in the same microsecond), the
    start time moves on by a microsecond until a free name is found, so no
    directory is ever shared or overwritten.

    Returns:
        (run directory, identifier, the start time used in the identifier).

    Raises:
        ValueError: a name is empty or not a plain file name, or an argument is not one line.
    """
    if not re.fullmatch(r"[0-9A-Za-z]+", commit_hash):
        raise ValueError(f"a commit hash is letters and digits, not {commit_hash!r}")
    for label, name in (("script_name", script_name), ("experiment_name", experiment_name)):
        safe_child(experiments_dir, name)
        if not name.strip():
            raise ValueError(f"{label} must not be blank")
    script_name = script_name.strip()
    if script_name.endswith(".py"):
        script_name = script_name[:-3]
    args_text = format_exec_args(exec_args)
    parent = Path(experiments_dir) / "experiments" / script_name / experiment_name
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        identifier = make_identifier(start, job_idx, commit_hash)
        run_dir = parent / identifier
        try:
            run_dir.mkdir()
            break
        except FileExistsError:
            start = start + timedelta(microseconds=1)
    atomic_write(run_dir / INFO_FILE, f"{COMMIT_HASH_KEY}:{commit_hash}\n")
    atomic_write(run_dir / EXEC_ARGS_FILE, args_text)
    atomic_write(run_dir / RE_EXECUTION_FILE, _re_execution_text(script_name, args_text))
    for log_name in (STDOUT_FILE, STDERR_FILE):
        (run_dir / log_name).touch(exist_ok=False)
    return run_dir, identifier, start


def _re_execution_text(script_name: str, args_text: str) -> str:
    args = " ".join(line for line in args_text.splitlines())
    return f"# re-execution file written by pyhermes\n{script_name}.py {args}\n"


def write_finish(run_dir: PathLike, start: datetime, end: datetime, comments: str | None) -> None:
    """Append ``start_time``, ``end_time``, ``execution_time`` and ``comments`` as the runner did."""
    append_info(run_dir, START_TIME_KEY, format_time(start))
    append_info(run_dir, END_TIME_KEY, format_time(end))
    append_info(run_dir, EXECUTION_TIME_KEY, str((end - start).total_seconds()))
    if comments is not None:
        append_info(run_dir, COMMENTS_KEY, comments)


def numpy_safe_globals() -> list[Any]:
    """The numpy globals that pickled numeric and bool arrays and numpy scalars refer to.

    ``torch.save`` of a numpy array pickles ``_reconstruct(ndarray, shape, dtype)``
    plus its raw bytes, a dtype as ``dtype(code)`` whose state is then set (which
    needs its class, e.g. ``numpy.dtypes.Float64DType``), and a numpy scalar as
    ``scalar(dtype, bytes)``. These build only arrays, dtypes and scalars from
    data, never run other code. numpy 1.x wrote the functions under
    ``numpy.core.multiarray``, numpy 2.x under ``numpy._core.multiarray``: both
    names are listed, bound to the functions of the numpy installed now. Only the
    bool, integer, float and complex dtype classes are listed.
    """
    import numpy as np

    reconstruct = np.empty(0).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    allowed: list[Any] = [(np.ndarray, "numpy.ndarray"), (np.dtype, "numpy.dtype")]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed += [(reconstruct, f"{module}._reconstruct"), (scalar, f"{module}.scalar")]
    codes = "?" + np.typecodes["AllInteger"] + np.typecodes["AllFloat"]
    dtype_classes = {type(np.dtype(code)) for code in codes} - {np.dtype}
    allowed += sorted(dtype_classes, key=lambda cls: cls.__name__)
    return allowed


_ALLOWED_LOCK = threading.Lock()
_ALLOWED_LOADS = 0
_ALLOWED_CONTEXT: Any = None


@contextlib.contextmanager
def _numpy_globals_allowed(torch: Any) -> Iterator[None]:
    """Allow-list :func:`numpy_safe_globals` while at least one safe load of this process runs.

    torch keeps that allow-list in one list for the process: one thread leaving
    ``safe_globals`` would take the globals from another thread still loading. So
    the first load in adds them and the last one out removes them.
    """
    global _ALLOWED_LOADS, _ALLOWED_CONTEXT
    with _ALLOWED_LOCK:
        if _ALLOWED_LOADS == 0:
            _ALLOWED_CONTEXT = torch.serialization.safe_globals(numpy_safe_globals())
            _ALLOWED_CONTEXT.__enter__()
        _ALLOWED_LOADS += 1
    try:
        yield
    finally:
        with _ALLOWED_LOCK:
            _ALLOWED_LOADS -= 1
            if _ALLOWED_LOADS == 0:
                _ALLOWED_CONTEXT.__exit__(None, None, None)
                _ALLOWED_CONTEXT = None


def load_torch(path: PathLike, *, map_location: Any = "cpu", trusted: bool = False) -> Any:
    """Load a torch file (``.pth``/``.result``) with ``weights_only=True`` unless ``trusted``.

    Besides tensors and plain Python data, the safe load accepts numpy arrays,
    dtypes and numpy scalars (legacy ``.result`` files hold them): exactly the
    globals of :func:`numpy_safe_globals` are allow-listed with
    ``torch.serialization.safe_globals`` while a safe load of pyhermes runs (in any
    thread of the process).

    Raises:
        FileNotFoundError: the file does not exist.
        UntrustedFileError: the file needs any other global, which ``weights_only``
            refuses; nothing in it was executed. Pass ``trusted=True`` only for files
            you wrote yourself.
        MissingDependencyError: torch is not installed.
    """
    import pickle

    from pyhermes._optional import require
    from pyhermes.errors import UntrustedFileError

    torch = require("torch")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if trusted:
        return torch.load(path, map_location=map_location, weights_only=False)
    try:
        with _numpy_globals_allowed(torch):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UntrustedFileError(
            f"{path} cannot be loaded safely (weights_only=True refused it: {_refusal(exc)}). "
            "If you trust this file, load it with trusted=True."
        ) from None


_REFUSED_GLOBAL = re.compile(
    r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)|but got <class '([^']+)'>"
)


def _refusal(exc: BaseException) -> str:
    """The global that torch's weights-only unpickler refused, else the first line of its error."""
    text = str(exc)
    match = _REFUSED_GLOBAL.search(text)
    if match is not None:
        return f"it needs {match.group(1) or match.group(2)}, which is not allow-listed"
    return text.splitlines()[0] if text else type(exc).__name__
