"""Parsing and reading ``.scores`` files into float64 arrays, whole or chunk by chunk.

Owns the scores format (an optional header, one number per line, an
unterminated last line of a run still writing) and its limits. numpy is
imported only by the functions that read scores.
"""

from __future__ import annotations

import errno
import os
import re
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pyhermes.errors import RunFormatError
from pyhermes.rundir._names import PathLike
from pyhermes.rundir._text import decode_text, open_regular, read_bytes

if TYPE_CHECKING:  # numpy is imported by the functions that read scores
    import numpy as np

#: Longest line of a scores file (bytes): a longer one cannot be a number.
MAX_SCORE_LINE_BYTES = 64 * 1024
#: Bytes a scores file is read in, when summarised chunk by chunk.
SCORE_CHUNK_BYTES = 4 * 1024 * 1024

_CONTENT_LINE = re.compile(r"^[^\S\n]*\S", re.MULTILINE)


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
