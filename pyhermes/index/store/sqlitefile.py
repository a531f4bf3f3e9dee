"""A SQLite index file: its connections, its checks, and what is done when it is damaged.

Everything here goes through SQLite (see :mod:`pyhermes.index.store.guard` for why
pyhermes never opens the file, its ``-wal`` or its ``-shm`` itself).

Opening (:func:`open_sqlite_file`): connections use WAL (a rollback journal on a
network filesystem, with one :class:`NetworkFilesystemWarning`), and each one
checks, when the pool hands it out, that the file is still the one it opened
(device and inode); a connection to a file replaced under it is abandoned
(:func:`~pyhermes.index.store.guard.abandon`) and a new one opened. ``PRAGMA
quick_check`` runs only when the file is not in the state last recorded as
sound (:func:`~pyhermes.index.store.guard.needs_check`).

Damage (:func:`set_aside`): taken under the index's lock, confirmed on a fresh
connection (damage that does not repeat is a transient, and nothing is moved),
then the damaged file is copied aside to ``<name>.broken-<YYYYmmdd-HHMMSS>``
through SQLite's backup API and the file itself is reset to a fresh empty index
*in place*, also through SQLite, so that other processes' connections stay
valid. Only a file SQLite cannot read as a database at all is renamed aside
(with its ``-wal`` and ``-shm``). The two newest copies are kept.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pyhermes.errors import BrokenIndexWarning, NetworkFilesystemWarning
from pyhermes.index.store import guard
from pyhermes.index.store.guard import index_lock

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = [
    "BrokenIndexWarning",
    "NetworkFilesystemWarning",
    "NETWORK_FILESYSTEMS",
    "BROKEN_KEPT",
    "filesystem_type",
    "on_network_filesystem",
    "abandon_engine",
    "create_sqlite_engine",
    "quick_check",
    "integrity_check",
    "damage_confirmed",
    "set_aside",
    "overwrite_in_place",
    "rename_aside",
]

#: How many set-aside copies of a damaged index are kept (the newest).
BROKEN_KEPT = 2

_SQLITE_PRAGMAS = (
    # busy_timeout first, so that switching to WAL waits for other openers.
    "PRAGMA busy_timeout=30000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
)
#: On a network filesystem WAL cannot work (its shared memory is per machine): a rollback journal.
_NETWORK_JOURNAL = "PRAGMA journal_mode=DELETE"

#: Filesystem types (as the mount table names them) where SQLite's WAL is unsafe.
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph",
        "glusterfs", "fuse.glusterfs", "fuse.sshfs", "sshfs", "9p", "afs", "ncpfs", "panfs",
        "pvfs2", "orangefs", "davfs", "fuse.davfs2", "fuse.s3fs", "fuse.rclone", "fuse.cephfs",
        "fuse.juicefs", "fuse.gcsfuse", "fuse.beegfs", "wekafs", "virtiofs", "quobyte",
    }
)  # fmt: skip
#: Where the mount table is read from, first found wins.
MOUNT_TABLES = ("/proc/self/mountinfo", "/proc/mounts")




# --------------------------------------------------------------------------- filesystems


def _unescape_mount_field(field: str) -> str:
    """Mount tables write a space in a path as ``\\040`` (octal escapes)."""
    if "\\" not in field:
        return field
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def _parse_mount_table(text: str) -> list[tuple[str, str]]:
    """Return (mount point, filesystem type) of each line of ``/proc/self/mountinfo`` or ``/proc/mounts``."""
    mounts: list[tuple[str, str]] = []
    for line in text.splitlines():
        fields = line.split()
        if " - " in line:  # mountinfo: ... mount-point options [optional...] - fstype source
            before, _, after = line.partition(" - ")
            head, tail = before.split(), after.split()
            if len(head) >= 5 and tail:
                mounts.append((_unescape_mount_field(head[4]), tail[0]))
        elif len(fields) >= 3:  # mounts: source mount-point fstype options dump pass
            mounts.append((_unescape_mount_field(fields[1]), fields[2]))
    return mounts


def filesystem_type(
    path: str | os.PathLike[str], tables: tuple[str, ...] | None = None
) -> str | None:
    """Return the type of the filesystem holding ``path`` (e.g. ``"ext4"``, ``"nfs4"``).

    Read from the first readable mount table of ``tables`` (default
    :data:`MOUNT_TABLES`); the mount whose point is the longest prefix of the
    real path wins. ``None`` when no table can be read (not Linux).
    """
    real = os.path.realpath(os.fspath(path))
    for table in tables if tables is not None else MOUNT_TABLES:
        try:
            with open(table, encoding="utf-8", errors="surrogateescape") as handle:
                mounts = _parse_mount_table(handle.read())
        except OSError:
            continue
        best: tuple[int, str] | None = None
        for point, kind in mounts:
            inside = real == point or real.startswith(point.rstrip("/") + "/")
            if inside and (best is None or len(point) >= best[0]):
                best = (len(point), kind)
        return None if best is None else best[1]
    return None


def on_network_filesystem(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is on a network filesystem (see :data:`NETWORK_FILESYSTEMS`)."""
    kind = filesystem_type(path)
    return kind is not None and (kind in NETWORK_FILESYSTEMS or kind.split(".")[0] in NETWORK_FILESYSTEMS)


_WARNED_NETWORK: set[str] = set()


def sqlite_pragmas(file: Path | None, lock_wait_ms: int) -> tuple[str, ...]:
    """The connection pragmas of a SQLite index: WAL, unless ``file`` is on a network filesystem.

    There, one :class:`NetworkFilesystemWarning` per file and process says so.
    """
    pragmas = tuple(
        f"PRAGMA busy_timeout={lock_wait_ms}" if "busy_timeout" in p else p for p in _SQLITE_PRAGMAS
    )
    if file is None or not on_network_filesystem(file.parent):
        return pragmas
    if str(file) not in _WARNED_NETWORK:
        _WARNED_NETWORK.add(str(file))
        warnings.warn(
            f"the index {file} is on a network filesystem ({filesystem_type(file.parent)}): "
            "SQLite runs it without WAL there, and several machines writing it at once is "
            "slow and fragile. For a lab, point HERMES_INDEX at one PostgreSQL database "
            "(see the README, 'One index for a lab').",
            NetworkFilesystemWarning,
            stacklevel=6,
        )
    return tuple(_NETWORK_JOURNAL if "journal_mode" in p else p for p in pragmas)


# --------------------------------------------------------------------------- engines


def create_sqlite_engine(file: Path | None, url: str, lock_wait_ms: int) -> Engine:
    """Return a new engine on the SQLite database ``file`` (or in-memory ``url``), pragmas set.

    For a file, every DBAPI connection is a :class:`~pyhermes.index.store.guard.GuardedConnection`
    opened by :func:`~pyhermes.index.store.guard.connect`, and the pool checks at each
    checkout that the file is still the one the connection opened.
    """
    from sqlalchemy import create_engine, event
    from sqlalchemy.exc import DisconnectionError

    pragmas = sqlite_pragmas(file, lock_wait_ms)
    if file is None:
        engine = create_engine(url)

        def set_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
            for pragma in pragmas:
                dbapi_connection.execute(pragma)

        event.listen(engine, "connect", set_pragmas)
        return engine

    def connect() -> guard.GuardedConnection:
        connection = guard.connect(file, pragmas)
        connection.hermes_identity = guard.identity(file)  # type: ignore[attr-defined]
        return connection

    engine = create_engine("sqlite+pysqlite:///" + quote(str(file), safe=" +/"), creator=connect)

    def still_the_same_file(dbapi_connection: Any, connection_record: Any, proxy: Any) -> None:
        if guard.identity(file) != dbapi_connection.hermes_identity:
            guard.abandon(dbapi_connection)  # closing it could delete the new file's -wal
            raise DisconnectionError(f"the index file {file} was replaced; reconnecting")

    event.listen(engine, "checkout", still_the_same_file)
    return engine


def abandon_engine(engine: Engine) -> None:
    """Drop ``engine`` without closing its idle connections (their file was replaced: see
    :func:`~pyhermes.index.store.guard.abandon`)."""
    idle = getattr(engine.pool, "_pool", None)
    for record in list(getattr(idle, "queue", ())):
        connection = getattr(record, "dbapi_connection", None)
        if connection is not None:
            guard.abandon(connection)
    engine.dispose(close=False)


# --------------------------------------------------------------------------- checks


def quick_check(engine: Engine) -> str | None:
    """Run SQLite's ``PRAGMA quick_check`` on ``engine``; return ``None`` if sound, else what it found.

    Raises :class:`sqlalchemy.exc.DatabaseError` when the file cannot even be read.
    """
    with engine.connect() as conn:
        found = [str(row[0]) for row in conn.exec_driver_sql("PRAGMA quick_check(5)")]
    return None if found == ["ok"] else "; ".join(found)


def integrity_check(file: Path, limit: int = 100) -> list[str]:
    """Run SQLite's full ``PRAGMA integrity_check`` on ``file``, read-only; return its findings.

    An empty list means the file is sound. Nothing is written, nothing moved.
    A file that is not a database at all gives one finding saying so.
    """
    uri = f"file:{quote(str(file))}?mode=ro"
    guard.note_connection()
    try:
        connection = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        return [f"cannot be opened: {exc}"]
    try:
        connection.execute("PRAGMA busy_timeout=30000")
        rows = [str(row[0]) for row in connection.execute(f"PRAGMA integrity_check({int(limit)})")]
    except sqlite3.DatabaseError as exc:
        return [f"not a readable SQLite database: {exc}"]
    finally:
        connection.close()
    return [] if rows == ["ok"] else rows


def damage_confirmed(file: Path) -> str | None:
    """What a fresh connection finds wrong with ``file`` (``quick_check``), or ``None`` if sound.

    Called under the index's exclusive lock, so that no pyhermes process commits
    meanwhile: a malformed read that this check does not repeat was a transient.
    """
    try:
        connection = guard.connect(file, ("PRAGMA busy_timeout=30000",))
    except sqlite3.Error as exc:
        return f"it is not a readable SQLite database ({exc})" if guard.says_damaged(exc) else None
    try:
        found = [str(row[0]) for row in connection.execute("PRAGMA quick_check(5)")]
    except sqlite3.Error as exc:
        return f"it is not a readable SQLite database ({exc})" if guard.says_damaged(exc) else None
    finally:
        guard.close_recorded(file, [connection])
    return None if found == ["ok"] else f"PRAGMA quick_check found it damaged ({'; '.join(found)})"


# --------------------------------------------------------------------------- damage


def _broken_name(file: Path) -> Path:
    """A new ``<name>.broken-<YYYYmmdd-HHMMSS>[-N]`` beside ``file`` that names nothing yet."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = file.with_name(f"{file.name}.broken-{stamp}")
    n = 1
    while any(Path(f"{target}{suffix}").exists() for suffix in ("", "-wal", "-shm")):
        target = file.with_name(f"{file.name}.broken-{stamp}-{n}")
        n += 1
    return target


def rename_aside(file: Path, target: Path | None = None) -> Path:
    """Rename ``file`` with its ``-wal`` and ``-shm`` (those first) to ``target``, by default a
    new ``<name>.broken-<time>``; return the new name. Only for a file no connection can use."""
    target = _broken_name(file) if target is None else target
    for suffix in ("-wal", "-shm"):
        side = Path(f"{file}{suffix}")
        if side.exists():
            os.replace(side, Path(f"{target}{suffix}"))
    os.replace(file, target)
    _prune_broken(file)
    return target


def _prune_broken(file: Path, keep: int = BROKEN_KEPT) -> None:
    """Delete all but the ``keep`` newest set-aside copies of ``file`` (never ``file`` itself)."""
    prefix = f"{file.name}.broken-"
    copies = sorted(
        (entry for entry in file.parent.iterdir() if entry.name.startswith(prefix)
         and not entry.name.endswith(("-wal", "-shm", "-journal"))),
        key=lambda entry: (entry.stat().st_mtime_ns, entry.name),
    )
    for old in copies[: max(len(copies) - keep, 0)]:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(OSError):
                os.unlink(f"{old}{suffix}")


def overwrite_in_place(source: Path, file: Path) -> None:
    """Make the SQLite ``file`` a copy of the SQLite ``source``, through SQLite's backup API.

    ``file`` keeps its inode, so other processes' connections to it stay valid and
    see the new content at their next transaction, as after any commit. The
    caller holds the index's exclusive lock. Raises :class:`sqlite3.Error`.
    """
    guard.note_connection()
    origin = sqlite3.connect(os.fspath(source))
    try:
        target = guard.connect(file, ("PRAGMA busy_timeout=30000",))
        try:
            origin.backup(target)
        finally:
            guard.close_recorded(file, [target])
    finally:
        origin.close()
    guard.record_state(file)


def set_aside(
    file: Path, confirm: Callable[[], str | None], fresh_schema: Callable[[Path], None], *, warn: bool = True
) -> Path | None:
    """Handle a SQLite index found unusable: confirm, keep a copy, start afresh; return the copy.

    Under the exclusive lock, ``confirm()`` says what is wrong, or ``None`` when
    it no longer is (e.g. :func:`damage_confirmed` on a fresh connection: damage
    that does not repeat was a transient); then ``None`` is returned and nothing
    changes. Otherwise the file is copied to ``<name>.broken-<time>`` and
    reset in place to a fresh index that ``fresh_schema(path)`` creates in a
    temporary file; a file SQLite cannot read at all is renamed aside instead.
    With ``warn``, a :class:`BrokenIndexWarning` names the copy. Raises what
    creating the fresh schema raises.
    """
    with index_lock(guard.lock_path(file)):
        if not file.exists():
            return None
        confirmed = confirm()
        if confirmed is None:
            return None
        target = _broken_name(file)
        try:
            _copy_out(file, target)
            temporary = file.with_name(f"{file.name}.fresh-{os.getpid()}")
            try:
                fresh_schema(temporary)
                overwrite_in_place(temporary, file)
            finally:
                for suffix in ("", "-wal", "-shm", "-journal", ".checked", ".lock"):
                    with contextlib.suppress(OSError):
                        os.unlink(f"{temporary}{suffix}")
        except sqlite3.Error:
            # SQLite cannot read it as a database: no connection can be using it either.
            with contextlib.suppress(OSError):
                os.unlink(target)
            rename_aside(file, target)
            fresh_schema(file)
            guard.record_state(file)
        _prune_broken(file)
    if not warn:
        return target
    warnings.warn(
        f"The index {file} could not be used: {confirmed.rstrip('.')}. A copy was set "
        f"aside as {target}, and the index starts afresh; it is rebuilt from the run directories "
        "on disk.",
        BrokenIndexWarning,
        stacklevel=5,
    )
    return target


def _copy_out(file: Path, target: Path) -> None:
    """Copy the pages of ``file`` (damaged ones too) into a new SQLite file ``target``."""
    origin = guard.connect(file, ("PRAGMA busy_timeout=30000",))
    try:
        copy = sqlite3.connect(os.fspath(target))
        try:
            origin.backup(copy)
        finally:
            copy.close()
    finally:
        guard.close_recorded(file, [origin])
