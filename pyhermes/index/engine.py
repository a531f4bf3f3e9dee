"""Where the index lives, and opening it.

:func:`resolve_index` decides which database serves a folder of runs,
:func:`open_engine` opens it (creating or migrating its schema, and setting a
broken SQLite file aside), and :func:`index_root` tells the folder that the
run paths stored in it are relative to.

Where the index lives, in order:

1. the ``index`` argument: a value containing ``://`` is an SQLAlchemy URL,
   anything else the path of a SQLite file;
2. the environment variable ``HERMES_INDEX``, read the same way;
3. the nearest existing ``.hermes/index.sqlite`` in the folder or its ancestors;
4. a new ``<folder>/.hermes/index.sqlite``;
5. when that place cannot be written (read-only folder, or a read-only index
   found in step 3), a per-user cache file
   ``$XDG_CACHE_HOME/pyhermes/<key>.sqlite`` (default ``~/.cache/pyhermes``),
   keyed by the root folder, so that reading read-only data never fails for
   want of a writable index.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sqlite3
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pyhermes.errors import CatalogError
from pyhermes.index.schema import (
    SchemaUnknownError,
    _file_lock,
    _needs_upgrade,
    _where,
    ensure_schema,
)
from pyhermes.rundir import INFO_FILE

# SQLAlchemy is imported by the functions that open an engine: finding an index
# (resolve_index, find_index) needs only the standard library, so the read path
# of pyhermes.index.reader never imports it.
if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.exc import DatabaseError

__all__ = [
    "ENV_VAR",
    "INDEX_DIRNAME",
    "INDEX_FILENAME",
    "BrokenIndexWarning",
    "NetworkFilesystemWarning",
    "filesystem_type",
    "on_network_filesystem",
    "quick_check",
    "integrity_check",
    "IndexLocation",
    "resolve_index",
    "find_index",
    "cache_dir",
    "open_engine",
    "rebuild_index",
    "dispose_engines",
    "index_root",
]

#: Environment variable naming the index (a file path or an SQLAlchemy URL).
ENV_VAR = "HERMES_INDEX"
#: The folder, beside the runs, that holds the default index.
INDEX_DIRNAME = ".hermes"
#: The file name of the default index inside :data:`INDEX_DIRNAME`.
INDEX_FILENAME = "index.sqlite"

#: How long a sync or write-through keeps retrying a locked or conflicting index (seconds).
DEFAULT_BUSY_LIMIT = 60.0
#: Environment variable overriding :data:`DEFAULT_BUSY_LIMIT`.
BUSY_LIMIT_VAR = "HERMES_BUSY_LIMIT"


def busy_limit() -> float:
    """Return how long (seconds) to keep retrying a locked index: ``$HERMES_BUSY_LIMIT`` or 60."""
    value = os.environ.get(BUSY_LIMIT_VAR, "")
    try:
        limit = float(value) if value else DEFAULT_BUSY_LIMIT
    except ValueError:
        return DEFAULT_BUSY_LIMIT
    return limit if limit >= 0 else DEFAULT_BUSY_LIMIT


def _lock_wait_ms() -> int:
    """How long one statement waits for a lock (ms): half the busy limit, at most 30 s."""
    return max(int(min(busy_limit() / 2, 30.0) * 1000), 1)


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


_SQLITE_MAGIC = b"SQLite format 3\x00"


class BrokenIndexWarning(UserWarning):
    """A SQLite index could not be used; it was moved aside and is rebuilt from disk."""


class NetworkFilesystemWarning(UserWarning):
    """A SQLite index is on a network filesystem: no WAL there; PostgreSQL is the better index."""


@dataclass(frozen=True)
class IndexLocation:
    """Where an index lives.

    ``url`` is the SQLAlchemy URL; ``file`` the SQLite file (``None`` for other
    databases and in-memory SQLite); ``root`` the folder that stored run paths
    are relative to, or ``None`` when the caller decides (an explicit file or
    URL; :func:`index_root` then keeps it in ``hermes_meta``).
    """

    url: str
    file: Path | None
    root: Path | None

    @property
    def lock_path(self) -> Path | None:
        """Return the lock file beside the SQLite file (``<file>.lock``), or ``None``."""
        return None if self.file is None else self.file.with_name(self.file.name + ".lock")


# --------------------------------------------------------------------------- resolving


def _sqlite_url(file: Path) -> str:
    """Return the SQLAlchemy URL of the SQLite file ``file``.

    The same text as ``URL.create("sqlite", database=...).render_as_string()``,
    without importing SQLAlchemy.
    """
    return "sqlite:///" + quote(str(file), safe=" +/")


def _normalize_url(url: str) -> str:
    """Return ``url`` with ``postgresql://`` (or ``postgres://``) using the psycopg 3 driver.

    Raises :class:`CatalogError` when ``url`` is not an SQLAlchemy URL.
    """
    from sqlalchemy.engine import make_url

    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy.exc.ArgumentError and friends
        raise CatalogError(f"{url!r} is not a valid SQLAlchemy database URL: {exc}") from exc
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _root_of(file: Path) -> Path | None:
    """Return ``<X>`` for a file ``<X>/.hermes/index.sqlite``, else ``None``."""
    if file.name == INDEX_FILENAME and file.parent.name == INDEX_DIRNAME:
        return file.parent.parent
    return None


def _explicit(index: str | os.PathLike[str]) -> IndexLocation:
    """Return the location named by an ``index`` argument or ``HERMES_INDEX`` value."""
    value = os.fspath(index)
    if "://" in value:
        from sqlalchemy.engine import make_url

        url = _normalize_url(value)
        parsed = make_url(url)
        file: Path | None = None
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            if not parsed.database.startswith("file:"):
                file = Path(parsed.database).expanduser().absolute()
        return IndexLocation(url=url, file=file, root=None if file is None else _root_of(file))
    file = Path(value).expanduser().absolute()
    return IndexLocation(url=_sqlite_url(file), file=file, root=_root_of(file))


def _is_writable(folder: Path) -> bool:
    """Return True when a file can be created in ``folder``.

    Checks ``os.access`` and then really creates (and removes) a file, since
    ``os.access`` says yes to root on a read-only folder that is, e.g., on a
    read-only mount.
    """
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        fd, name = tempfile.mkstemp(prefix=".hermes-write-test-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return True


def _file_is_writable(file: Path) -> bool:
    """Return True when the existing SQLite ``file`` and its folder can be written."""
    if not os.access(file, os.R_OK | os.W_OK):
        return False
    try:
        fd = os.open(file, os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    # WAL mode creates -wal and -shm files, and the lock file lives there too.
    return _is_writable(file.parent)


def cache_dir() -> Path:
    """Return the per-user cache folder of indexes: ``$XDG_CACHE_HOME/pyhermes``.

    ``XDG_CACHE_HOME`` defaults to ``~/.cache`` (and is ignored unless absolute,
    as the XDG specification says). The folder is not created here.
    """
    base = os.environ.get("XDG_CACHE_HOME", "")
    base_path = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return base_path / "pyhermes"


def _cache_location(root: Path) -> IndexLocation:
    """Return the per-user cache index keyed by ``root``, creating the cache folder.

    Raises :class:`CatalogError` when the cache folder cannot be written either.
    """
    root = root.absolute()
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CatalogError(
            f"No writable place for the index of {root}: the folder is read-only and the "
            f"per-user cache {folder} cannot be created ({exc}). Pass index=... or set "
            f"{ENV_VAR} to a writable file or a database URL."
        ) from exc
    if not _is_writable(folder):
        raise CatalogError(
            f"No writable place for the index of {root}: the folder is read-only and so is "
            f"the per-user cache {folder}. Pass index=... or set {ENV_VAR} to a writable "
            "file or a database URL."
        )
    return _cache_file(root)


def _cache_file(root: Path) -> IndexLocation:
    """The per-user cache index keyed by ``root`` (nothing is created)."""
    root = root.absolute()
    key = hashlib.sha256(str(root).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    file = cache_dir() / f"{key}.sqlite"
    return IndexLocation(url=_sqlite_url(file), file=file, root=root)


def find_index(path: Path, index: str | os.PathLike[str] | None = None) -> IndexLocation | None:
    """Return the existing index serving ``path`` by the rule of :func:`resolve_index`, else None.

    Creates nothing and writes no probe file (for read-only tools such as
    ``hermes-reindex --check``). A database URL is returned as it is.

    Raises:
        CatalogError: the URL is not valid.
    """
    explicit = index if index is not None and os.fspath(index) != "" else os.environ.get(ENV_VAR, "")
    if explicit:
        location = _explicit(explicit)
        return location if location.file is None or location.file.is_file() else None
    path = Path(path).expanduser().absolute()
    for folder in (path, *path.parents):
        candidate = folder / INDEX_DIRNAME / INDEX_FILENAME
        if candidate.is_file():
            if os.access(candidate, os.R_OK | os.W_OK) and os.access(folder / INDEX_DIRNAME, os.W_OK):
                return IndexLocation(url=_sqlite_url(candidate), file=candidate, root=folder)
            path = folder
            break
    cached = _cache_file(path)
    return cached if cached.file is not None and cached.file.is_file() else None


def resolve_index(path: Path, index: str | os.PathLike[str] | None = None) -> IndexLocation:
    """Return where the index serving the runs under ``path`` lives.

    The rule, first match wins: the ``index`` argument; ``$HERMES_INDEX``; the
    nearest existing ``.hermes/index.sqlite`` in ``path`` or its ancestors; a
    new ``path/.hermes/index.sqlite`` (the ``.hermes`` folder is created here,
    the file by :func:`open_engine`); the per-user cache (see :func:`cache_dir`)
    when that place is not writable. A value containing ``://`` is an
    SQLAlchemy URL (``postgresql://`` is given the psycopg 3 driver), anything
    else a SQLite file path.

    Raises :class:`CatalogError` for an invalid URL, or when neither the folder
    nor the per-user cache can be written.
    """
    if index is not None and os.fspath(index) != "":
        return _explicit(index)
    env = os.environ.get(ENV_VAR, "")
    if env:
        return _explicit(env)

    path = Path(path).expanduser().absolute()
    for folder in (path, *path.parents):
        candidate = folder / INDEX_DIRNAME / INDEX_FILENAME
        if candidate.is_file():
            if _file_is_writable(candidate):
                return IndexLocation(url=_sqlite_url(candidate), file=candidate, root=folder)
            # A read-only shared index: this user keeps a cache of the same tree.
            return _cache_location(folder)

    if (path / INFO_FILE).is_file():
        # A run directory is never written into by an index: this one lives in the cache.
        return _cache_location(path)
    hermes_dir = path / INDEX_DIRNAME
    target = hermes_dir if hermes_dir.is_dir() else path
    if _is_writable(target):
        try:
            hermes_dir.mkdir(exist_ok=True)
        except OSError:
            return _cache_location(path)
        file = hermes_dir / INDEX_FILENAME
        return IndexLocation(url=_sqlite_url(file), file=file, root=path)
    return _cache_location(path)


# --------------------------------------------------------------------------- opening


@dataclass
class _Cached:
    engine: Engine
    identity: tuple[int, int] | None  # (st_dev, st_ino) of the SQLite file when opened


_ENGINES: dict[str, _Cached] = {}
_ENGINES_LOCK = threading.RLock()


def _identity(file: Path | None) -> tuple[int, int] | None:
    """Return ``(st_dev, st_ino)`` of ``file``, or ``None`` if it is absent or not a file."""
    if file is None:
        return None
    try:
        st = file.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


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


def _sqlite_pragmas(file: Path | None) -> tuple[str, ...]:
    """The connection pragmas of a SQLite index: WAL, unless ``file`` is on a network filesystem.

    There, one :class:`NetworkFilesystemWarning` per file and process says so.
    """
    pragmas = tuple(
        f"PRAGMA busy_timeout={_lock_wait_ms()}" if "busy_timeout" in p else p for p in _SQLITE_PRAGMAS
    )
    if file is None or not on_network_filesystem(file.parent):
        return pragmas
    if str(file) not in _WARNED_NETWORK:
        _WARNED_NETWORK.add(str(file))
        warnings.warn(
            f"the index {file} is on a network filesystem ({filesystem_type(file.parent)}): "
            "SQLite runs it without WAL there, and several machines writing it at once is "
            f"slow and fragile. For a lab, point {ENV_VAR} at one PostgreSQL database "
            "(see the README, 'One index for a lab').",
            NetworkFilesystemWarning,
            stacklevel=5,
        )
    return tuple(_NETWORK_JOURNAL if "journal_mode" in p else p for p in pragmas)


def _create_sqlite_engine(location: IndexLocation) -> Engine:
    """Return a new engine on the SQLite database of ``location``, with the pragmas set."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import URL

    if location.file is not None:
        url: URL | str = URL.create("sqlite+pysqlite", database=str(location.file))
    else:
        url = location.url
    engine = create_engine(url)
    pragmas = _sqlite_pragmas(location.file)

    def set_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(pragma)
        finally:
            cursor.close()

    event.listen(engine, "connect", set_pragmas)
    return engine


def quick_check(engine: Engine) -> str | None:
    """Run SQLite's ``PRAGMA quick_check`` on ``engine``; return ``None`` if sound, else what it found.

    Raises :class:`sqlalchemy.exc.DatabaseError` when the file cannot even be read.
    """
    with engine.connect() as conn:
        found = [str(row[0]) for row in conn.exec_driver_sql("PRAGMA quick_check(5)")]
    return None if found == ["ok"] else "; ".join(found)


def _checked_path(file: Path) -> Path:
    return file.with_name(file.name + ".checked")


def _file_state(file: Path) -> str:
    """(inode, size, mtime) of the SQLite file and of its ``-wal``: any write changes it."""
    parts = []
    for path in (file, Path(f"{file}-wal")):
        try:
            status = os.stat(path)
        except OSError:
            parts.append("-")
            continue
        parts.append(f"{status.st_ino}:{status.st_size}:{status.st_mtime_ns}")
    return " ".join(parts)


def _checked_state(file: Path) -> str | None:
    """The file state last found sound by ``quick_check`` (see :func:`_remember_checked`)."""
    try:
        return _checked_path(file).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _remember_checked(file: Path, state: str) -> None:
    """Note that ``quick_check`` found the file sound in ``state``: an unchanged file is not
    checked again by the next process (a fresh process opening a large index stays fast)."""
    with contextlib.suppress(OSError):
        _checked_path(file).write_text(state + "\n", encoding="ascii")


def integrity_check(file: Path, limit: int = 100) -> list[str]:
    """Run SQLite's full ``PRAGMA integrity_check`` on ``file``, read-only; return its findings.

    An empty list means the file is sound. Nothing is written, nothing moved.
    A file that is not a database at all gives one finding saying so.
    """
    uri = f"file:{quote(str(file))}?mode=ro"
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


def _create_engine(location: IndexLocation) -> Engine:
    """Return a new engine for ``location`` (not yet checked or migrated)."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import make_url

    if make_url(location.url).get_backend_name() == "sqlite":
        return _create_sqlite_engine(location)
    engine = create_engine(location.url, pool_pre_ping=True)
    if engine.dialect.name == "postgresql":
        wait = _lock_wait_ms()

        def set_lock_timeout(dbapi_connection: Any, connection_record: Any) -> None:
            # A statement waiting for a lock gives up after this, and the transaction is retried.
            autocommit = dbapi_connection.autocommit
            dbapi_connection.autocommit = True
            try:
                with dbapi_connection.cursor() as cursor:
                    cursor.execute(f"SET lock_timeout = {wait}")
            finally:
                dbapi_connection.autocommit = autocommit

        event.listen(engine, "connect", set_lock_timeout)
    return engine


def _is_corrupt(exc: DatabaseError) -> bool:
    """Return True when ``exc`` says the SQLite file is not a (sound) database.

    Operational errors (locked, cannot open, I/O, read-only) are not corruption:
    moving a file aside for them would lose a good index.
    """
    orig = exc.orig
    if type(orig) is not sqlite3.DatabaseError:
        return False
    name = getattr(orig, "sqlite_errorname", None)
    return name is None or name in ("SQLITE_NOTADB", "SQLITE_CORRUPT")


def _has_foreign_header(file: Path) -> bool:
    """Return True when ``file`` exists, is not empty, and does not start as SQLite files do."""
    try:
        with open(file, "rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except OSError:
        return False
    return head != b"" and head != _SQLITE_MAGIC


def _move_aside(file: Path) -> Path:
    """Rename ``file`` and its ``-wal``/``-shm`` to ``<name>.broken-<YYYYmmdd-HHMMSS>``.

    Returns the new path of the main file. Never deletes anything; a numeric
    suffix avoids overwriting an earlier broken copy.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = file.with_name(f"{file.name}.broken-{stamp}")
    n = 1
    while any(Path(f"{target}{s}").exists() for s in ("", "-wal", "-shm")):
        target = file.with_name(f"{file.name}.broken-{stamp}-{n}")
        n += 1
    for suffix in ("-wal", "-shm"):
        side = Path(f"{file}{suffix}")
        if side.exists():
            os.replace(side, Path(f"{target}{suffix}"))
    os.replace(file, target)
    return target


def _open_sqlite_file(location: IndexLocation) -> Engine:
    """Return a migrated engine on the SQLite file of ``location``.

    A file that is not a database, or whose schema is unknown, is moved aside
    with a :class:`BrokenIndexWarning` and replaced by a fresh index.
    Raises :class:`IndexVersionError` for an index of a newer pyhermes.
    """
    from sqlalchemy.exc import DatabaseError

    assert location.file is not None
    file = location.file
    seen = _identity(file)
    if _has_foreign_header(file):
        # Checked before SQLite opens it: SQLite would delete a -wal beside it.
        return _replace_broken(location, seen, "it is not a SQLite database")
    engine = _create_sqlite_engine(location)
    try:
        # Once per file and process (engines are cached), unless this very state of
        # the file was checked before: a damaged file is not served.
        state = _file_state(file)
        damage = None
        if seen is not None and state != _checked_state(file):
            damage = quick_check(engine)
        if damage is None:
            ensure_schema(engine, location.lock_path)
            if seen is not None and state != _checked_state(file):
                _remember_checked(file, state)
            return engine
        engine.dispose()
        reason = f"PRAGMA quick_check found it damaged ({damage})"
    except DatabaseError as exc:
        engine.dispose()
        if not _is_corrupt(exc):
            raise
        reason = f"it is not a readable SQLite database ({exc.orig})"
    except SchemaUnknownError as exc:
        engine.dispose()
        # Another process may have been creating the schema (SQLite commits DDL as it
        # runs, before the revision row): judge again once that process is done.
        return _replace_broken(location, seen, str(exc), still_broken=_schema_unknown)
    except BaseException:
        engine.dispose()
        raise
    return _replace_broken(location, seen, reason)


def _schema_unknown(location: IndexLocation) -> bool:
    """Return True when the SQLite file of ``location`` still holds a schema pyhermes does not know.

    Called under the index's file lock, so no other pyhermes is migrating it.
    """
    engine = _create_sqlite_engine(location)
    try:
        with engine.connect() as conn:
            _needs_upgrade(conn, _where(engine))
        return False
    except SchemaUnknownError:
        return True
    finally:
        engine.dispose()


def _replace_broken(
    location: IndexLocation,
    seen: tuple[int, int] | None,
    reason: str,
    still_broken: Callable[[IndexLocation], bool] | None = None,
) -> Engine:
    """Move the broken SQLite file of ``location`` aside, warn, and return a fresh index.

    ``seen`` is the identity of the file found broken: if another process has
    already replaced it, the new file is left alone; so is a file that
    ``still_broken`` (asked under the lock, when given) no longer finds broken.
    Raises like :func:`open_engine`.
    """
    assert location.file is not None
    file = location.file
    with _file_lock(location.lock_path):
        # Another process may have set it aside (and made a fresh one) meanwhile.
        moved = None
        if seen is not None and _identity(file) == seen:
            if still_broken is None or still_broken(location):
                moved = _move_aside(file)
    if moved is not None:
        warnings.warn(
            f"The index {file} could not be used: {reason.rstrip('.')}. It was moved to {moved}, and a "
            "fresh index is created; it is rebuilt from the run directories on disk.",
            BrokenIndexWarning,
            stacklevel=4,
        )
    engine = _create_sqlite_engine(location)
    try:
        ensure_schema(engine, location.lock_path)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _open_other(location: IndexLocation) -> Engine:
    """Return a migrated engine on a non-file database (PostgreSQL, in-memory SQLite...).

    Raises :class:`CatalogError` for an unknown schema (never touched: it may be
    shared), and :class:`IndexVersionError` for an index of a newer pyhermes.
    """
    engine = _create_engine(location)
    try:
        ensure_schema(engine, None)
    except SchemaUnknownError as exc:
        engine.dispose()
        raise CatalogError(
            f"{exc} pyhermes does not change a database it does not recognise. Fix: point "
            f"the index at another database (index=... or {ENV_VAR}), or drop the hermes "
            "tables and views there (hermes-reindex --rebuild) to rebuild the cache."
        ) from exc
    except BaseException:
        engine.dispose()
        raise
    return engine


def open_engine(location: IndexLocation) -> Engine:
    """Return the SQLAlchemy engine of the index at ``location``, its schema at head.

    Engines are cached per URL within the process; a cached SQLite engine is
    reused while its file is the same file (same inode). SQLite connections use
    WAL (a rollback journal, with one :class:`NetworkFilesystemWarning`, on a
    network filesystem), ``foreign_keys=ON``, ``busy_timeout=30000`` and
    ``synchronous=NORMAL``. The first open of a SQLite file in a process runs
    ``PRAGMA quick_check``, unless the file (and its ``-wal``) is unchanged since a
    check found it sound (noted in ``<file>.checked``). A SQLite file that is corrupt (by its header, an
    error reading it, or the check) or has an unknown schema is moved aside to
    ``<name>.broken-<YYYYmmdd-HHMMSS>`` (with its ``-wal``/``-shm``) with a
    :class:`BrokenIndexWarning`, and a fresh index is created.

    Raises :class:`IndexVersionError` for an index written by a newer pyhermes,
    :class:`CatalogError` for a non-SQLite database with an unknown schema, and
    :class:`sqlalchemy.exc.SQLAlchemyError` when the database cannot be reached.
    """
    with _ENGINES_LOCK:
        cached = _ENGINES.get(location.url)
        if cached is not None:
            if location.file is None or (
                cached.identity is not None and _identity(location.file) == cached.identity
            ):
                return cached.engine
            del _ENGINES[location.url]
            cached.engine.dispose()
        if location.file is not None:
            location.file.parent.mkdir(parents=True, exist_ok=True)
            engine = _open_sqlite_file(location)
        else:
            engine = _open_other(location)
        _ENGINES[location.url] = _Cached(engine, _identity(location.file))
        return engine


def dispose_engines() -> None:
    """Dispose of every cached engine and empty the cache; return None (for tests and tools).

    The standard-library readers of :mod:`pyhermes.index.reader` are closed too.
    """
    from pyhermes.index.reader import close_readers

    with _ENGINES_LOCK:
        cached = list(_ENGINES.values())
        _ENGINES.clear()
    for entry in cached:
        entry.engine.dispose()
    close_readers()


def _forget_engines_after_fork() -> None:
    """In a forked child, drop the parent's engines without closing its connections."""
    global _ENGINES_LOCK
    _ENGINES_LOCK = threading.RLock()  # another thread of the parent may have held it
    for entry in _ENGINES.values():
        # Keep the parent's pool alive: dropped, its idle connections would be freed,
        # and sqlite3 closes a connection it frees. A child closing the last connection
        # it knows of to a WAL-mode file checkpoints and deletes the parent's -wal
        # (the parent then reads "disk I/O error").
        _INHERITED_POOLS.append(entry.engine.pool)
        entry.engine.dispose(close=False)
    _ENGINES.clear()


#: In a forked child, the pools of the parent's engines (never used, never closed).
_INHERITED_POOLS: list[Any] = []


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_engines_after_fork)


def _drop_hermes_objects(engine: Engine) -> None:
    """Drop the stable views, the ``hermes_`` tables and ``alembic_version`` of a database."""
    from sqlalchemy import inspect, text

    with engine.begin() as conn:
        insp = inspect(conn)
        cascade = " CASCADE" if engine.dialect.name == "postgresql" else ""
        views = set(insp.get_view_names())
        for view in ("run_info", "run_args", "runs"):
            if view in views:
                conn.execute(text(f"DROP VIEW {view}{cascade}"))
        tables = [t for t in insp.get_table_names() if t.startswith("hermes_")]
        # Children before their parent (SQLite has no DROP ... CASCADE).
        tables.sort(key=lambda t: t == "hermes_run")
        if insp.has_table("alembic_version"):
            tables.append("alembic_version")
        for table in tables:
            conn.execute(text(f'DROP TABLE "{table}"{cascade}'))


def rebuild_index(location: IndexLocation) -> Engine:
    """Return an engine on a fresh, empty index at ``location``, whatever was there.

    For ``hermes-reindex --rebuild``: a SQLite file is moved aside to
    ``<name>.broken-<YYYYmmdd-HHMMSS>`` (never deleted); in another database
    the views, the ``hermes_`` tables and ``alembic_version`` are dropped. The
    index must then be filled again from the run directories. Raises
    :class:`sqlalchemy.exc.SQLAlchemyError` when the database cannot be reached.
    """
    with _ENGINES_LOCK:
        cached = _ENGINES.pop(location.url, None)
        if cached is not None:
            cached.engine.dispose()
        if location.file is not None:
            with _file_lock(location.lock_path):
                if location.file.exists():
                    _move_aside(location.file)
        else:
            engine = _create_engine(location)
            try:
                _drop_hermes_objects(engine)
            finally:
                engine.dispose()
    return open_engine(location)


def index_root(
    engine: Engine, location: IndexLocation, fallback: Path, *, store: bool = True
) -> Path:
    """Return the folder that run paths in the index are relative to.

    That is ``location.root`` when set; else the ``root`` stored in
    ``hermes_meta``; else the filesystem root of ``fallback`` (``/``), which is
    then stored there for later openers (unless ``store`` is false: read-only callers). Raises :class:`sqlalchemy.exc.SQLAlchemyError`
    when the index cannot be read or written.
    """
    if location.root is not None:
        return location.root
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    # One explicit index file or database may serve many trees: its run paths are
    # stored relative to the filesystem root, i.e. absolute, and never hold "..".
    select = text("""SELECT "value" FROM hermes_meta WHERE "key" = 'root'""")
    with engine.connect() as conn:
        stored = conn.execute(select).scalar()
    if stored is not None:
        return Path(stored)
    root = Path(Path(fallback).expanduser().resolve().anchor)
    if not store:
        return root
    try:
        with engine.begin() as conn:
            conn.execute(
                text("""INSERT INTO hermes_meta ("key", "value") VALUES ('root', :value)"""),
                {"value": str(root)},
            )
    except IntegrityError:
        # Another opener stored its root first: that one wins.
        with engine.connect() as conn:
            stored = conn.execute(select).scalar()
        if stored is not None:
            return Path(stored)
        raise
    return root
