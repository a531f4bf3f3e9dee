"""The files of one run directory as downloads, and windows of lines of its (large) log files.

Owns which entries of a run directory may be handed out (:func:`run_files`,
:func:`open_run_file`: only regular files directly inside it, never through a
symbolic link that leads out of it), the content type each is served with, which
files are logs (:func:`log_names`), and reading a window of lines of a log without
reading the whole file (:func:`read_log_window`).

A log's lines are found through an index of line offsets kept per file (one
checkpoint per :data:`SCAN_CHUNK` bytes): the first window of a file counts its
newlines once, a window later seeks to the checkpoint before it, and a file that
grew (a run still writing) is only scanned from where the last scan stopped.
"""

from __future__ import annotations

import bisect
import mimetypes
import os
import re
import stat
import threading
from collections import OrderedDict
from typing import NamedTuple

from pyhermes.rundir._listing import safe_child
from pyhermes.rundir._names import (
    EXEC_ARGS_FILE,
    INFO_FILE,
    RE_EXECUTION_FILE,
    SCORES_SUFFIX,
    STDERR_FILE,
    STDOUT_FILE,
    PathLike,
)
from pyhermes.rundir._text import decode_text, open_regular

__all__ = [
    "LOG_SUFFIX",
    "MAX_LOG_LINE_BYTES",
    "RunFile",
    "LogWindow",
    "run_files",
    "open_run_file",
    "content_type",
    "log_names",
    "read_log_window",
]

#: The ending of the names of a run's log files (``stdout.log``, ``stderr.log`` and any other).
LOG_SUFFIX = ".log"
#: Bytes of one log line shown; the rest of a longer line is left out (and said so).
MAX_LOG_LINE_BYTES = 8192
#: Bytes read at a time when counting lines; also the spacing of the offset index.
SCAN_CHUNK = 1 << 20
#: Log files whose offset index is kept (the least recently read are forgotten first).
INDEXED_LOGS = 64

_TEXT_NAMES = frozenset({INFO_FILE, EXEC_ARGS_FILE, RE_EXECUTION_FILE, "hermes.tags", "hermes.notes"})
_TEXT_SUFFIXES = (LOG_SUFFIX, SCORES_SUFFIX, ".txt", ".out", ".err")


class RunFile(NamedTuple):
    """One entry of a run directory: its ``name``, ``size`` in bytes (``None`` unless a file),
    and ``kind``: ``"file"`` (a regular file that may be downloaded, maybe through a symbolic
    link to a file beside it), ``"folder"``, ``"link"`` (a symbolic link leading out of the run
    directory, to a folder or nowhere) or ``"special"`` (a FIFO, socket or device)."""

    name: str
    size: int | None
    kind: str

    @property
    def downloadable(self) -> bool:
        """True when :func:`open_run_file` hands this entry out."""
        return self.kind == "file"


class LogWindow(NamedTuple):
    """Lines ``start`` to ``start + len(lines)`` (0-based) of a log of ``total`` lines and
    ``size`` bytes. A last line without newline counts; each line is decoded by the decoding
    rule, its line end dropped, and cut at :data:`MAX_LOG_LINE_BYTES`."""

    start: int
    lines: list[str]
    total: int
    size: int


def _entry_kind(entry: os.DirEntry[str], folder: str) -> tuple[str, int | None]:
    status = entry.stat(follow_symlinks=False)
    if stat.S_ISLNK(status.st_mode):
        try:
            target = os.stat(entry.path)
        except OSError:
            return "link", None
        inside = os.path.dirname(os.path.realpath(entry.path)) == folder
        if inside and stat.S_ISREG(target.st_mode):
            return "file", target.st_size
        return ("folder" if inside and stat.S_ISDIR(target.st_mode) else "link"), None
    if stat.S_ISREG(status.st_mode):
        return "file", status.st_size
    if stat.S_ISDIR(status.st_mode):
        return "folder", None
    return "special", None


def run_files(run_dir: PathLike) -> list[RunFile]:
    """Return the entries directly in ``run_dir``, sorted by name (see :class:`RunFile`).

    An entry that vanishes or cannot be looked at while listing is left out.

    Raises:
        OSError: ``run_dir`` cannot be listed.
    """
    folder = os.path.realpath(run_dir)
    found: list[RunFile] = []
    with os.scandir(run_dir) as entries:
        for entry in entries:
            try:
                kind, size = _entry_kind(entry, folder)
            except OSError:
                continue
            found.append(RunFile(entry.name, size, kind))
    return sorted(found)


def open_run_file(run_dir: PathLike, name: str) -> tuple[int, os.stat_result]:
    """Open the regular file ``name`` directly inside ``run_dir``; return (descriptor, ``fstat``).

    The caller closes the descriptor. A symbolic link is followed only to a regular file
    in the run directory itself.

    Raises:
        ValueError: ``name`` is no plain file name (``..``, a separator, absolute, empty).
        FileNotFoundError: there is no such entry.
        RunFormatError: it is a folder, a FIFO, socket or device, a dangling link or a
            link out of the run directory.
        OSError: it cannot be opened (no permission, a link loop...).
    """
    return open_regular(safe_child(run_dir, name))


def content_type(name: str) -> str:
    """Return the content type a file of a run is served with: UTF-8 text for the run's own
    text files and logs, else by the name's extension, else ``application/octet-stream``."""
    if name in _TEXT_NAMES or name.endswith(_TEXT_SUFFIXES):
        return "text/plain; charset=utf-8"
    guessed, encoding = mimetypes.guess_type(name, strict=False)
    if guessed is None or encoding is not None:  # a .gz is served as the bytes it is
        return "application/octet-stream"
    return guessed


def log_names(run_dir: PathLike) -> list[str]:
    """Return the log files of ``run_dir`` that can be read: ``stdout.log``, ``stderr.log``,
    then the other files ending in ``.log``, sorted. ``[]`` when it cannot be listed."""
    try:
        names = [item.name for item in run_files(run_dir)
                 if item.downloadable and item.name.endswith(LOG_SUFFIX)]
    except OSError:
        return []
    first = [name for name in (STDOUT_FILE, STDERR_FILE) if name in names]
    return first + [name for name in names if name not in first]


class _LineIndex:
    """Where the lines of one log file start: checkpoints (line number, byte offset)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget every checkpoint (the file is counted from its start again)."""
        self.lines = [0]  # line numbers of the checkpoints, ascending
        self.offsets = [0]  # the byte offset where each of those lines starts
        self.scanned = 0  # bytes counted so far: the file up to here holds `newlines` newlines
        self.newlines = 0
        self.head = b""  # the first bytes of the file: a file rewritten since is counted anew

    def update(self, fd: int, size: int) -> None:
        head = os.pread(fd, 64, 0)
        if size < self.scanned or head[: len(self.head)] != self.head:
            self.reset()  # truncated or replaced: count from the start
        self.head = head
        while self.scanned < size:
            chunk = os.pread(fd, min(SCAN_CHUNK, size - self.scanned), self.scanned)
            if not chunk:
                break
            count = chunk.count(b"\n")
            if count:
                self.newlines += count
                self.lines.append(self.newlines)
                self.offsets.append(self.scanned + chunk.rfind(b"\n") + 1)
            self.scanned += len(chunk)

    def total(self, size: int) -> int:
        """Lines of the file: its newlines, and one more when it does not end with one."""
        return self.newlines + (1 if size > self.offsets[-1] else 0)

    def checkpoint(self, line: int) -> tuple[int, int]:
        """The last checkpoint at or before ``line``: (its line number, its byte offset)."""
        position = bisect.bisect_right(self.lines, line) - 1
        return self.lines[position], self.offsets[position]


_indexes: OrderedDict[tuple[int, int], _LineIndex] = OrderedDict()
_indexes_lock = threading.Lock()


def _index_of(status: os.stat_result) -> _LineIndex:
    key = (status.st_dev, status.st_ino)
    with _indexes_lock:
        index = _indexes.pop(key, None) or _LineIndex()
        _indexes[key] = index
        while len(_indexes) > INDEXED_LOGS:
            _indexes.popitem(last=False)
    return index


def _whole_characters(raw: bytes) -> bytes:
    """``raw`` without the UTF-8 character its end cuts in two, if any."""
    for back in range(1, min(4, len(raw)) + 1):
        byte = raw[-back]
        if byte & 0xC0 != 0x80:  # the first byte of the last character
            needed = 4 if byte >= 0xF0 else 3 if byte >= 0xE0 else 2 if byte >= 0xC0 else 1
            return raw[:-back] if back < needed else raw
    return raw


def _shown(raw: bytes, path: PathLike, cut: int) -> str:
    """One line as shown: decoded, line end dropped; after a carriage return only what a
    terminal would show last (a progress bar redrawn in place)."""
    if cut:  # a UTF-8 character cut in two would turn the whole line into Latin-1
        raw = _whole_characters(raw)
    text = decode_text(raw, path, notes=[])
    if text.endswith("\r"):
        text = text[:-1]
    text = text.rpartition("\r")[2]
    return text + (f" … ({cut:,} more bytes)" if cut else "")


def read_log_window(path: PathLike, start: int | None, count: int) -> LogWindow:
    """Return ``count`` lines of the log ``path`` from line ``start`` (0-based), or its last
    ``count`` lines when ``start`` is ``None`` or negative; a ``start`` past the end gives the
    last lines too. Only the part of the file around the window is read (see the module).

    Raises:
        ValueError: ``count`` is below 1.
        FileNotFoundError, RunFormatError, OSError: as :func:`pyhermes.rundir.open_regular`.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    fd, status = open_regular(path)
    try:
        size = status.st_size
        index = _index_of(status)
        with index.lock:
            index.update(fd, size)
            total = index.total(size)
            last_page = start is None or start < 0 or start >= total
            first = max(0, total - count) if last_page else start
            line, offset = index.checkpoint(first)
        lines = _read_lines(fd, path, offset, size, first - line, min(count, total - first))
    finally:
        os.close(fd)
    return LogWindow(first, lines, total, size)


def _read_lines(fd: int, path: PathLike, offset: int, size: int, skip: int, wanted: int) -> list[str]:
    """Read from ``offset`` (a line start) up to ``size``: skip ``skip`` lines, return ``wanted``."""
    lines: list[str] = []
    pending = b""
    cut = 0  # bytes of the current line left out
    position = offset
    while len(lines) < wanted:
        chunk = os.pread(fd, min(SCAN_CHUNK, size - position), position) if position < size else b""
        position += len(chunk)
        if not chunk:
            if pending or cut:
                lines.append(_shown(pending, path, cut))
            break
        begin = 0
        while len(lines) < wanted:
            end = chunk.find(b"\n", begin)
            piece = chunk[begin:] if end < 0 else chunk[begin:end]
            if skip:
                if end >= 0:
                    skip -= 1
            else:
                room = MAX_LOG_LINE_BYTES - len(pending)
                pending += piece[: max(0, room)]
                cut += max(0, len(piece) - max(0, room))
                if end >= 0:
                    lines.append(_shown(pending, path, cut))
                    pending, cut = b"", 0
            if end < 0:
                break
            begin = end + 1
    return lines


#: Bytes read from the end of ``stderr.log`` to look for a traceback.
STDERR_TAIL_BYTES = 16384
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b")


def ends_in_traceback(run_dir: str, only_if_written: bool = False) -> bool:
    """True when the last non-empty lines of the run's ``stderr.log`` are a Python traceback: a
    ``Traceback (most recent call last):`` line, then an exception line last; never raises.
    With ``only_if_written``, an empty or missing log costs one ``stat`` and no open."""
    log = os.path.join(run_dir, STDERR_FILE)
    if only_if_written:
        try:
            if os.stat(log).st_size == 0:
                return False
        except (OSError, ValueError):
            return False
    try:
        descriptor, status = open_regular(log)
    except (OSError, ValueError):
        return False
    try:
        tail = os.pread(descriptor, STDERR_TAIL_BYTES, max(0, status.st_size - STDERR_TAIL_BYTES))
    except OSError:
        return False
    finally:
        os.close(descriptor)
    lines = [line.strip() for line in tail.decode("utf-8", "replace").splitlines() if line.strip()]
    if not lines or not _EXCEPTION_LINE.match(lines[-1]):
        return False
    return any(line.startswith("Traceback (most recent call last):") for line in lines[-200:])
