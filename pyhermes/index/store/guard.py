"""Guarding a SQLite index file that many processes use at once.

Only SQLite ever opens the index file, its ``-wal``, ``-shm`` or ``-journal``:
closing *any* descriptor of a file drops every POSIX lock the process holds on
it, SQLite's included, and another process may then checkpoint and delete the
WAL under live connections (section 2.2 of SQLite's "How To Corrupt An SQLite
Database File"). pyhermes only ``stat``\\ s those files. What pyhermes itself
reads and writes lives beside them:

* ``<index>.lock``, a file pyhermes ``flock``\\ s (never SQLite's files).
  Exclusively, while a schema is created or migrated, while a damaged file is
  moved aside, and around every commit and every closing of this process's
  last connection; shared, while a new connection opens the file (so that no
  connection opens a file that is being moved aside).
* ``<index>.checked``, the state of the file (device, inode, size, mtime) last
  known sound. A process that opens the index runs ``PRAGMA quick_check`` only
  when the file's state differs from it. Every pyhermes commit records the state
  it leaves (under the lock, so no commit of another process falls between its
  commit and its record), provided the file was in the recorded state before it:
  a writer knows its own writes. Closing the last connection (which checkpoints
  the WAL into the file) records likewise. What changes the file otherwise (a
  program other than pyhermes writing it, a disk fault, a copy over it) leaves a
  state nobody recorded, and the next opener checks it.

The state is the main file's alone: SQLite's WAL recovery makes a writer that
died mid-transaction harmless, and writers append to the WAL all day.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = [
    "COMMIT_LOCK_WAIT",
    "OPEN_LOCK_WAIT",
    "GuardedConnection",
    "abandon",
    "connect",
    "connection_opened",
    "note_connection",
    "close_recorded",
    "file_state",
    "forget_checked",
    "identity",
    "index_lock",
    "lock_path",
    "needs_check",
    "record_state",
    "recorded_state",
    "remember_checked",
    "says_damaged",
]

#: How long a commit waits for the lock before it commits without recording (seconds).
COMMIT_LOCK_WAIT = 5.0
#: How long a new connection waits for a file being moved aside or migrated (seconds).
OPEN_LOCK_WAIT = 60.0


def says_damaged(error: BaseException) -> bool:
    """True when a :mod:`sqlite3` error says the file is not a (sound) database.

    Operational errors (locked, cannot open, I/O, read-only) are not damage:
    setting a file aside for them would lose a good index.
    """
    if type(error) is not sqlite3.DatabaseError:
        return False
    name = getattr(error, "sqlite_errorname", None)
    return name is None or name in ("SQLITE_NOTADB", "SQLITE_CORRUPT")


_CONNECTION_OPENED = False


def note_connection() -> None:
    """Note that this process opened a database connection (see :func:`connection_opened`)."""
    global _CONNECTION_OPENED
    _CONNECTION_OPENED = True


def connection_opened() -> bool:
    """True once this process has opened a database connection: a child it forks would
    inherit that connection's descriptors (worker pools then start by ``forkserver``)."""
    return _CONNECTION_OPENED


def lock_path(file: Path) -> Path:
    """The lock file beside the SQLite ``file``: ``<file>.lock``."""
    return file.with_name(file.name + ".lock")


def _checked_path(file: Path) -> Path:
    return file.with_name(file.name + ".checked")


@contextlib.contextmanager
def index_lock(path: Path | None, *, shared: bool = False, wait: float | None = None) -> Iterator[bool]:
    """Hold a ``flock`` on the lock file ``path`` for the block; yield whether it is held.

    Exclusive unless ``shared``. ``wait`` bounds the wait in seconds (``None``:
    wait as long as it takes); past it the block runs without the lock (yields
    False), as it does without ``path``, without ``fcntl`` or when the lock file
    cannot be created (a read-only folder): SQLite's own locks still keep the
    data sound, only the extras of this module are skipped.
    """
    if path is None:
        yield False
        return
    held_here = _held_here()
    if held_here.get(path):
        # This thread holds it exclusively already (e.g. a migration opening connections).
        yield True
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield False
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError:
        yield False
        return
    try:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        held = _acquire(fd, mode, wait)
        if held and not shared:
            held_here[path] = True
        try:
            yield held
        finally:
            if held:
                held_here.pop(path, None)
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


_THREAD = threading.local()


def _held_here() -> dict[Path, bool]:
    """The lock files this thread holds exclusively (a flock of another descriptor of the same
    file would wait for this thread itself)."""
    held = getattr(_THREAD, "held", None)
    if held is None:
        held = _THREAD.held = {}
    return held


def _acquire(fd: int, mode: int, wait: float | None) -> bool:
    import fcntl

    if wait is None:
        fcntl.flock(fd, mode)
        return True
    deadline = time.monotonic() + wait
    pause = 0.001
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


def identity(file: Path | None) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of ``file``, or ``None`` if it is absent (a ``stat``, nothing opened)."""
    if file is None:
        return None
    try:
        status = os.stat(file)
    except OSError:
        return None
    return (status.st_dev, status.st_ino)


def file_state(file: Path) -> str:
    """The state of the SQLite ``file`` itself: ``dev:inode:size:mtime_ns`` (``-`` when absent)."""
    try:
        status = os.stat(file)
    except OSError:
        return "-"
    return f"{status.st_dev}:{status.st_ino}:{status.st_size}:{status.st_mtime_ns}"


def recorded_state(file: Path) -> str | None:
    """The state last recorded as sound (see :func:`record_state`), or ``None``."""
    try:
        return _checked_path(file).read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def record_state(file: Path, state: str | None = None) -> None:
    """Record ``state`` (default: the file's state now) as sound, atomically; never raises.

    Callers hold the exclusive lock, except right after a check that found the file sound.
    """
    state = file_state(file) if state is None else state
    if state == "-":
        return
    target = _checked_path(file)
    temporary = target.with_name(f"{target.name}.{os.getpid()}")
    try:
        temporary.write_text(state + "\n", encoding="ascii")
        os.replace(temporary, target)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def forget_checked(file: Path) -> None:
    """Drop the record of a sound state: the next opener checks the file."""
    with contextlib.suppress(OSError):
        os.unlink(_checked_path(file))


def needs_check(file: Path) -> bool:
    """True when the file's state is not the one recorded as sound.

    A state that differs is looked at again under the lock (a commit of another
    process may be between its commit and its record) before it counts.
    """
    if recorded_state(file) == file_state(file):
        return False
    with index_lock(lock_path(file), wait=COMMIT_LOCK_WAIT):
        return recorded_state(file) != file_state(file)


def remember_checked(file: Path, state: str) -> None:
    """Record ``state``, the file's state when a check found it sound, unless the file moved on.

    If other processes committed meanwhile (the file is no longer in ``state``),
    their records stand.
    """
    with index_lock(lock_path(file), wait=COMMIT_LOCK_WAIT) as held:
        if held and file_state(file) == state:
            record_state(file, state)


@contextlib.contextmanager
def _recording(file: Path, wait: float) -> Iterator[None]:
    """Run the block (a commit, a close) under the lock; if the file was in its recorded state
    before, record the state the block leaves."""
    with index_lock(lock_path(file), wait=wait) as held:
        sound = held and recorded_state(file) == file_state(file)
        yield
        if sound:
            record_state(file)


class GuardedConnection(sqlite3.Connection):
    """A :mod:`sqlite3` connection whose commits record the state they leave (see the module).

    Made by :func:`connect`; SQLAlchemy's engines on SQLite index files use it
    as their DBAPI connection.
    """

    hermes_file: Path | None = None
    hermes_abandoned = False

    def close(self) -> None:
        """Close the connection, unless it was abandoned (see :func:`abandon`)."""
        if not self.hermes_abandoned:
            super().close()

    def commit(self) -> None:
        """Commit under the index's lock, recording the state left when the file was sound before."""
        if self.hermes_file is None or not self.in_transaction:
            super().commit()
            return
        with _recording(self.hermes_file, COMMIT_LOCK_WAIT):
            super().commit()


def connect(file: Path, pragmas: Sequence[str] = (), *, read_only: bool = False) -> GuardedConnection:
    """Open a connection to the SQLite ``file`` and run ``pragmas`` on it; return it.

    The file is opened under the shared lock, so never while another process
    moves it aside or creates it. ``read_only`` connections are in autocommit with
    ``PRAGMA query_only=ON``. Raises :class:`sqlite3.Error` from SQLite.
    """
    note_connection()
    with index_lock(lock_path(file), shared=True, wait=OPEN_LOCK_WAIT):
        connection = sqlite3.connect(
            os.fspath(file),
            timeout=30.0,
            isolation_level=None if read_only else "",
            check_same_thread=False,
            factory=GuardedConnection,
        )
        connection.hermes_file = file
        try:
            for pragma in (*pragmas, "PRAGMA query_only=ON") if read_only else pragmas:
                connection.execute(pragma)
        except BaseException:
            connection.close()
            raise
    return connection


def close_recorded(file: Path, close: Sequence[sqlite3.Connection | object]) -> None:
    """Close connections to ``file`` under the lock, recording the state their closing leaves.

    The last connection to a WAL-mode file that closes checkpoints the WAL into
    the file; recorded, that change costs the next opener no check. Each item
    is a :class:`sqlite3.Connection` or anything with a ``close()`` (an engine's
    ``dispose`` is wrapped by the caller). Never raises for a connection that is
    already closed.
    """
    with _recording(file, COMMIT_LOCK_WAIT):
        for item in close:
            with contextlib.suppress(sqlite3.ProgrammingError):
                item.close()  # type: ignore[attr-defined]


#: Connections to a file that was replaced under them (see :func:`abandon`).
_ABANDONED: list[sqlite3.Connection] = []


def abandon(connection: sqlite3.Connection) -> None:
    """Never close ``connection``, a connection to a file that was replaced (renamed) under it.

    Closed, the last connection to the old file would checkpoint it and then delete
    ``<name>-wal`` and ``<name>-shm`` *by name*: the new file's. Kept open until the
    process ends (the kernel then drops its descriptors, and SQLite deletes nothing).
    """
    if isinstance(connection, GuardedConnection):
        connection.hermes_abandoned = True
    import ctypes

    # One reference more than anyone holds: not even the interpreter's shutdown frees it.
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(connection))
    _ABANDONED.append(connection)
