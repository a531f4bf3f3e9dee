"""Curating a run: its tags (``hermes.tags``) and its notes (``hermes.notes``).

Owns the two files pyhermes adds to a run directory; the original hermes loader
ignores files it does not know, so a tagged or noted run still loads with it.

* ``hermes.tags``: one tag a line, UTF-8, sorted and unique, replaced whole by
  write-then-rename (:func:`atomic_write`), so a reader sees the old file or the
  new one. A change is read-modify-write, serialized per run by ``flock`` on a
  descriptor of the run directory itself (no lock file is created).
* ``hermes.notes``: one JSON object a line, ``{"time": "<ISO 8601 local time,
  seconds>", "text": "<note>"}``, appended with one ``write`` on an ``O_APPEND``
  descriptor, so concurrent appenders never interleave.

A malformed line of a hand-edited file is skipped with a note, never an exception.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import unicodedata
from collections.abc import Collection, Iterable, Iterator
from datetime import datetime
from typing import NamedTuple

from pyhermes.errors import InvalidTagError, RunFormatError
from pyhermes.rundir._listing import has_info_file
from pyhermes.rundir._names import PathLike
from pyhermes.rundir._text import note, read_text
from pyhermes.rundir._write import atomic_write

TAGS_FILE = "hermes.tags"
NOTES_FILE = "hermes.notes"
#: Longest tag, in characters (after stripping surrounding whitespace).
MAX_TAG_LENGTH = 200
#: Largest line one note may take in ``hermes.notes`` (UTF-8 bytes, newline included).
MAX_NOTE_BYTES = 64 * 1024

#: Unicode categories a tag may not hold: control characters (newline, tab, NUL...),
#: lone surrogates (not UTF-8) and the line and paragraph separators.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
#: What a note read from a file may hold but no database stores: NUL and lone surrogates.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


class Note(NamedTuple):
    """One note of a run: when it was written (local time, seconds; ``None`` when the
    file does not say) and its text (may hold newlines)."""

    time: datetime | None
    text: str


# --------------------------------------------------------------------------- tags


def check_tag(tag: str) -> str:
    """Return ``tag`` stripped of surrounding whitespace, if it is a valid tag.

    A valid tag is, once stripped, 1 to :data:`MAX_TAG_LENGTH` characters with no
    control character (newline, tab, NUL...), line separator, ``/`` or ``\\``.

    Raises:
        InvalidTagError: it is not a valid tag; the message names the tag and the rule.
        TypeError: ``tag`` is not a ``str``.
    """
    if not isinstance(tag, str):
        raise TypeError(f"a tag is a str, not {type(tag).__name__}: {tag!r}")
    stripped = tag.strip()
    if not stripped:
        raise InvalidTagError(f"invalid tag {tag!r}: a tag must not be empty or blank", tag)
    if len(stripped) > MAX_TAG_LENGTH:
        rule = f"a tag has at most {MAX_TAG_LENGTH} characters, not {len(stripped)}"
        raise InvalidTagError(f"invalid tag {stripped[:40]!r}...: {rule}", tag)
    for char in stripped:
        if char in "/\\" or unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            what = repr(char) if char in "/\\" else f"a control character or line break ({char!r})"
            raise InvalidTagError(f"invalid tag {tag!r}: a tag must not hold {what}", tag)
    return stripped


def read_tags(run_dir: PathLike, notes: list[str] | None = None) -> list[str]:
    """Return the tags of ``run_dir`` (its ``hermes.tags``), sorted and unique.

    A run without the file has no tags (``[]``). Lines end at ``\\n``; surrounding
    whitespace is stripped, blank lines skipped. Irregular bytes are decoded by the
    decoding rule, and a line that is not a valid tag (:func:`check_tag`) is skipped,
    each with a note in ``notes`` (a :class:`~pyhermes.errors.RunFormatWarning` when
    ``notes`` is ``None``) naming the file and line.

    Raises:
        RunFormatError: the file is not a regular file, or is too large.
        OSError: it exists but cannot be read.
    """
    path = os.path.join(run_dir, TAGS_FILE)
    try:
        text = read_text(path, notes)
    except FileNotFoundError:
        return []
    tags: set[str] = set()
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            try:
                tags.add(check_tag(line))
            except InvalidTagError as exc:
                note(notes, f"{path}:{number}: line skipped: {exc}")
    return sorted(tags)


def _tag_set(tags: str | Iterable[str]) -> set[str]:
    """The checked tags of ``tags`` (one ``str`` is one tag)."""
    return {check_tag(tags)} if isinstance(tags, str) else {check_tag(tag) for tag in tags}


class TagRewrite(NamedTuple):
    """What :func:`rewrite_tags` did to one run: its tags ``before`` and ``after``, each
    sorted; when its ``hermes.tags`` changed, ``changed_at`` (:func:`time.time` just after
    the change, taken while the run was still locked: no other change of the file came
    between) and the ``size`` and ``mtime_ns`` of the file written (``None`` when the last
    tag was removed, and the file with it). All three are ``None`` when nothing changed."""

    before: list[str]
    after: list[str]
    changed_at: float | None
    size: int | None
    mtime_ns: int | None


def change_tags(
    run_dir: PathLike,
    add: str | Iterable[str] = (),
    remove: str | Iterable[str] = (),
    notes: list[str] | None = None,
    *,
    durable: bool = True,
) -> tuple[list[str], list[str]]:
    """Add the tags ``add`` to the run ``run_dir`` and take the tags ``remove`` away.

    Every tag is checked (:func:`check_tag`) before anything is read or written; one
    ``str`` stands for one tag. Under an exclusive ``flock`` on the run directory
    (so concurrent changes of one run, from any process, are serialized and lose no
    tag), the file is read, and written again (write-then-rename) only when the set
    of tags changes; the last tag removed removes the file. Removing a tag the run
    does not have does nothing. Lines of the old file that were skipped (with a note
    in ``notes``, see :func:`read_tags`) are dropped when the file is written. The new
    file and the directory (the rename) are flushed to disk (``fsync``) before the lock
    is released; with ``durable`` false they are not: the caller, changing many runs,
    flushes them all at once (:func:`~pyhermes.rundir.flush_to_disk`).

    Returns:
        (the tags before, the tags after), each sorted.

    Raises:
        InvalidTagError: a tag is not valid (nothing is written).
        ValueError: a tag is both added and removed (nothing is written).
        RunFormatError: ``run_dir`` holds no ``hermes.info`` (it is not a run), or its
            ``hermes.tags`` is not a regular file or is too large.
        FileNotFoundError, NotADirectoryError: ``run_dir`` is not a directory.
        OSError: the directory cannot be locked, or the file read or written.
    """
    added, removed = _tag_set(add), _tag_set(remove)
    both = added & removed
    if both:
        raise ValueError(f"tags both added and removed: {', '.join(sorted(both))}")
    rewrite = rewrite_tags(run_dir, added, removed, notes, durable=durable)
    return rewrite.before, rewrite.after


def rewrite_tags(
    run_dir: PathLike,
    added: Collection[str],
    removed: Collection[str],
    notes: list[str] | None = None,
    *,
    durable: bool = True,
) -> TagRewrite:
    """:func:`change_tags` for tags already checked (:func:`check_tag`, none both in ``added``
    and ``removed``), telling what it wrote: the step a caller changing many runs repeats.

    Returns:
        The :class:`TagRewrite` of the run.

    Raises:
        As :func:`change_tags` (a tag is not checked again).
    """
    with _locked_run(run_dir) as directory:
        before = read_tags(run_dir, notes)
        after = sorted(set(before).difference(removed).union(added))
        if after == before:
            return TagRewrite(before, after, None, None, None)
        path = os.path.join(run_dir, TAGS_FILE)
        size = mtime_ns = None
        if after:
            written = atomic_write(path, "".join(tag + "\n" for tag in after), durable=durable)
            size, mtime_ns = written.st_size, written.st_mtime_ns
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if durable and directory is not None:
            os.fsync(directory)  # the rename (or the removal) itself
        return TagRewrite(before, after, time.time(), size, mtime_ns)


@contextlib.contextmanager
def _locked_run(run_dir: PathLike) -> Iterator[int | None]:
    """Hold an exclusive ``flock`` on a descriptor of the run directory ``run_dir``; give
    that descriptor (to ``fsync`` the directory with).

    Without ``fcntl`` (not POSIX) nothing is locked and ``None`` is given. Raises as
    :func:`change_tags`.
    """
    _require_run(run_dir)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield None
        return
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(run_dir, flags)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


def _require_run(run_dir: PathLike) -> None:
    """Raise unless ``run_dir`` is a directory holding ``hermes.info``."""
    if not os.path.isdir(run_dir):
        if os.path.lexists(run_dir):
            raise NotADirectoryError(f"{os.fspath(run_dir)}: not a directory")
        raise FileNotFoundError(f"{os.fspath(run_dir)}: no such run directory")
    if not has_info_file(run_dir):
        message = f"{os.fspath(run_dir)}: not a run directory (no hermes.info); nothing written"
        raise RunFormatError(message, run_dir)


# --------------------------------------------------------------------------- notes


def _local_seconds(moment: datetime) -> datetime:
    """``moment`` as a naive local time, to the second (an aware time is converted)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone().replace(tzinfo=None)
    return moment.replace(microsecond=0)


def append_note(run_dir: PathLike, text: str, when: datetime | None = None) -> Note:
    """Append a note to the run ``run_dir`` (its ``hermes.notes``, created when missing).

    ``text`` is stored stripped of surrounding whitespace and may hold newlines.
    ``when`` (default: now) is stored as local time to the second; an aware
    datetime is converted to local time. The line goes out in one ``write`` on an
    ``O_APPEND`` descriptor, so notes appended at once by several processes never mix.

    Returns:
        The note as :func:`read_notes` will read it back.

    Raises:
        ValueError: ``text`` is blank, holds a NUL or a lone surrogate, or the note
            would take more than :data:`MAX_NOTE_BYTES` (nothing is written).
        TypeError: ``text`` is not a ``str``.
        RunFormatError: ``run_dir`` holds no ``hermes.info`` (it is not a run).
        FileNotFoundError, NotADirectoryError: ``run_dir`` is not a directory.
        OSError: the file cannot be opened or written.
    """
    if not isinstance(text, str):
        raise TypeError(f"a note is a str, not {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise ValueError("a note must not be empty or blank")
    if "\0" in stripped:
        raise ValueError("a note must not hold a NUL character")
    moment = _local_seconds(when if when is not None else datetime.now())
    line = {"time": moment.isoformat(timespec="seconds"), "text": stripped}
    try:
        payload = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a note must be valid Unicode text (it holds a lone surrogate)") from None
    if len(payload) > MAX_NOTE_BYTES:
        raise ValueError(f"a note takes at most {MAX_NOTE_BYTES} bytes, not {len(payload)}")
    _require_run(run_dir)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(os.path.join(run_dir, NOTES_FILE), flags, 0o644)
    try:
        written = os.write(fd, payload)
    finally:
        os.close(fd)
    if written != len(payload):  # pragma: no cover - a full disk
        raise OSError(f"{os.fspath(run_dir)}: note cut short ({written} of {len(payload)} bytes)")
    return Note(moment, stripped)


def _note_time(value: object) -> datetime | None:
    """The time of a note line: an ISO 8601 text as a naive local time, else ``None``."""
    if not isinstance(value, str):
        return None
    try:
        return _local_seconds(datetime.fromisoformat(value.strip()))
    except ValueError:
        return None


def read_notes(run_dir: PathLike, notes: list[str] | None = None) -> list[Note]:
    """Return the notes of ``run_dir`` (its ``hermes.notes``), in the order they were written.

    A run without the file has no notes (``[]``). Each non-blank line is a JSON
    object with a non-blank ``text`` string (other keys are ignored). What is
    irregular goes to ``notes`` (else a :class:`~pyhermes.errors.RunFormatWarning`
    each), naming the file and line: bytes decoded by the decoding rule; a line that
    is not such an object, skipped; a ``time`` missing or not ISO 8601 (``time`` is
    ``None``); a NUL or lone surrogate (a ``\\u`` escape) in a text, read as U+FFFD
    (no database stores them).

    Raises:
        RunFormatError: the file is not a regular file, or is too large.
        OSError: it exists but cannot be read.
    """
    path = os.path.join(run_dir, NOTES_FILE)
    try:
        text = read_text(path, notes)
    except FileNotFoundError:
        return []
    found: list[Note] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            entry = json.loads(line)
        except ValueError:
            note(notes, f"{where}: line skipped: not JSON: {line[:80]!r}")
            continue
        body = entry.get("text") if isinstance(entry, dict) else None
        if not isinstance(body, str) or not body.strip():
            note(notes, f'{where}: line skipped: not an object with a "text": {line[:80]!r}')
            continue
        if _UNSTORABLE.search(body):
            note(notes, f"{where}: NUL or lone surrogate character(s) in the note read as U+FFFD")
            body = _UNSTORABLE.sub("\ufffd", body)
        moment = _note_time(entry.get("time"))
        if moment is None:
            note(notes, f'{where}: note without a readable "time": {str(entry.get("time"))[:40]!r}')
        found.append(Note(moment, body))
    return found
