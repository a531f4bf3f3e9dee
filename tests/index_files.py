"""Only SQLite touches an index file: an audit hook that catches any other opener.

Closing any descriptor of a SQLite file drops every POSIX lock the process
holds on it, SQLite's included (section 2.2 of SQLite's "How To Corrupt An
SQLite Database File"). :func:`install` adds a :func:`sys.addaudithook` for the
``open`` event (``open()``, ``io``, ``os.open``, ``Path.read_*``...): opening a
file named like an index (``*.sqlite``, ``*.sqlite3``, ``*.db``) or its
``-wal``, ``-shm`` or ``-journal`` from code of the project (the ``pyhermes``
package or ``scripts/``, anywhere on the call stack) is recorded as a
violation, unless inside :func:`deliberately`. A test's own code may make or
damage such files (that is how the damage tests work). SQLite's own
opens are C calls and raise no such event. ``tests/conftest.py`` installs it
for the whole suite and fails a test that left a violation; child processes
of the live-lab test install it through ``tests/audit_site/sitecustomize.py``.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import traceback
from collections.abc import Iterator

#: A file name of a SQLite index or of one of SQLite's side files.
INDEX_FILE = re.compile(r"\.(sqlite3?|db)(-wal|-shm|-journal)?$")

#: Code whose opens count: the package (from the repository or a wheel) and the scripts.
_PROJECT = re.compile(r"[/\\](pyhermes|scripts)[/\\][^/\\]+$|[/\\]pyhermes[/\\]")

violations: list[str] = []
_allowed = threading.local()
_installed = False


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event != "open" or not args:
        return
    path = args[0]
    if isinstance(path, int) or path is None:
        return
    try:
        name = os.fsdecode(os.fspath(path))  # type: ignore[arg-type]
    except TypeError:
        return
    if INDEX_FILE.search(name) is None or getattr(_allowed, "depth", 0):
        return
    frame = sys._getframe(1)
    while frame is not None and not _PROJECT.search(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        return  # test code making or damaging a file on purpose
    where = "".join(traceback.format_stack(frame, limit=6))
    violations.append(f"{name} opened outside SQLite:\n{where}")


def install() -> None:
    """Add the audit hook to this process (once; an audit hook cannot be removed)."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True


@contextlib.contextmanager
def deliberately() -> Iterator[None]:
    """Let this thread open index files in the block (a test damaging one on purpose)."""
    _allowed.depth = getattr(_allowed, "depth", 0) + 1
    try:
        yield
    finally:
        _allowed.depth -= 1


def take_violations() -> list[str]:
    """Return the violations recorded so far and forget them."""
    found = list(violations)
    del violations[: len(found)]
    return found
