"""Parsing ``hermes.info`` and ``exec_arguments``, and the values of arguments.

Owns the format of the two text files of a run (lines split on ``\n`` only,
``key:value`` info lines, one argument per line) and how an argument's value
texts convert to numbers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from pyhermes.rundir._names import EXEC_ARGS_FILE, INFO_FILE, PathLike
from pyhermes.rundir._text import note, read_text

_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(
    r"^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)$", re.IGNORECASE
)


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
            note(notes, f"{source}:{number}: line without ':' skipped: {line[:80]!r}")
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


def _lines(text: str) -> list[str]:
    """Split at ``\n`` only, dropping a ``\r`` before it (other line breaks are content)."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
