"""Opening, reading and decoding the bytes of a run's files, with limits.

Owns the decoding rule (README, "Text decoding") and its codec error handler,
the size limit of text files, and opening only regular files (never a FIFO,
socket or device, never a symlink out of the run directory).
"""

from __future__ import annotations

import codecs
import os
import stat
import warnings
from typing import IO, Any

from pyhermes.errors import RunFormatError, RunFormatWarning
from pyhermes.rundir._names import PathLike

#: The codec error handler of the decoding rule for file objects (log files opened
#: in text mode): a byte that is not UTF-8 reads as its Latin-1 character.
TEXT_ERRORS = "pyhermes-latin1"
#: The one fallback of the decoding rule: it maps every byte to a character.
FALLBACK_ENCODING = "latin-1"
_BOM = b"\xef\xbb\xbf"
#: Largest ``hermes.info`` or ``exec_arguments`` read (bytes): a bigger one is a problem of its run.
MAX_TEXT_BYTES = 16 * 1024 * 1024


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


def note(notes: list[str] | None, message: str) -> None:
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
        note(notes, f"{source}: {len(raw) - len(kept)} NUL byte(s) at the end ignored")
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
        note(notes, f"{source}:{number}: line {why}, read as Latin-1: {shown[:80]!r}")
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
