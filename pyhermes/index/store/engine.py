"""Opening the index: :func:`open_engine` opens the database that
:func:`~pyhermes.index.store.location.resolve_index` chose (creating or migrating its
schema, and handling a damaged SQLite file), and :func:`index_root` tells the
folder that the run paths stored in it are relative to.

The names of :mod:`pyhermes.index.store.location` (where the index lives) are
importable from here too.
"""

from __future__ import annotations

import atexit
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyhermes.errors import CatalogError
from pyhermes.index.rules import seconds_from_env
from pyhermes.index.store import guard
from pyhermes.index.store.location import (
    ENV_VAR,
    INDEX_DIRNAME,
    INDEX_FILENAME,
    IndexLocation,
    cache_dir,
    find_index,
    resolve_index,
    sqlite_url,
)
from pyhermes.index.store.schema import (
    VIEW_COLUMNS,
    SchemaUnknownError,
    ensure_schema,
    location_text,
    needs_upgrade,
)
from pyhermes.index.store.sqlitefile import (
    BrokenIndexWarning,
    NetworkFilesystemWarning,
    abandon_engine,
    create_sqlite_engine,
    damage_confirmed,
    filesystem_type,
    integrity_check,
    on_network_filesystem,
    quick_check,
    set_aside,
)

# SQLAlchemy is imported by the functions that open an engine: importing this module
# costs only the standard library.
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

#: How long a sync or write-through keeps retrying a locked or conflicting index (seconds).
DEFAULT_BUSY_LIMIT = 60.0
#: Environment variable overriding :data:`DEFAULT_BUSY_LIMIT`.
BUSY_LIMIT_VAR = "HERMES_BUSY_LIMIT"


def busy_limit() -> float:
    """Return how long (seconds) to keep retrying a locked index: ``$HERMES_BUSY_LIMIT`` or 60."""
    return seconds_from_env(BUSY_LIMIT_VAR, DEFAULT_BUSY_LIMIT)


def _lock_wait_ms() -> int:
    """How long one statement waits for a lock (ms): half the busy limit, at most 30 s."""
    return max(int(min(busy_limit() / 2, 30.0) * 1000), 1)


# --------------------------------------------------------------------------- opening


@dataclass
class _Cached:
    engine: Engine
    identity: tuple[int, int] | None  # (st_dev, st_ino) of the SQLite file when opened
    file: Path | None


_ENGINES: dict[str, _Cached] = {}
_ENGINES_LOCK = threading.RLock()


_identity = guard.identity


def _create_sqlite_engine(location: IndexLocation) -> Engine:
    """Return a new engine on the SQLite database of ``location``, with the pragmas set."""
    return create_sqlite_engine(location.file, location.url, _lock_wait_ms())


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
            guard.note_connection()
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
    """Return True when the SQLAlchemy error ``exc`` says the SQLite file is not a (sound) database."""
    return exc.orig is not None and guard.says_damaged(exc.orig)


def _fresh_schema(file: Path) -> None:
    """Create a new index at head in the SQLite ``file`` (for :func:`set_aside`)."""
    engine = create_sqlite_engine(file, sqlite_url(file), _lock_wait_ms())
    try:
        ensure_schema(engine, None)
    finally:
        engine.dispose()


def _open_sqlite_file(location: IndexLocation) -> Engine:
    """Return a migrated engine on the SQLite file of ``location``.

    A file found damaged (by ``quick_check`` when it is not in its recorded sound
    state, or by an error reading it) or holding a schema pyhermes does not know
    is handled by :func:`set_aside` (confirmed under the lock, a copy kept, reset
    in place with a :class:`BrokenIndexWarning`). Raises :class:`IndexVersionError`
    for an index of a newer pyhermes.
    """
    from sqlalchemy.exc import DatabaseError

    assert location.file is not None
    file = location.file
    existed = file.exists()
    engine = _create_sqlite_engine(location)
    try:
        state = guard.file_state(file)
        checking = existed and guard.needs_check(file)
        damage = quick_check(engine) if checking else None
        if damage is None:
            ensure_schema(engine, location.lock_path)
            if checking or not existed:
                guard.remember_checked(file, state if checking else guard.file_state(file))
            return engine
        confirm = lambda: damage_confirmed(file)  # noqa: E731
    except DatabaseError as exc:
        if not _is_corrupt(exc):
            engine.dispose()
            raise
        confirm = lambda: damage_confirmed(file)  # noqa: E731
    except SchemaUnknownError as exc:
        # Another process may have been creating the schema (SQLite commits DDL as it
        # runs, before the revision row): judged again under the lock.
        message = str(exc)
        confirm = lambda: message if _schema_unknown(location) else None  # noqa: E731
    except BaseException:
        engine.dispose()
        raise
    set_aside(file, confirm, _fresh_schema)
    try:
        ensure_schema(engine, location.lock_path)
    except BaseException:
        engine.dispose()
        raise
    return engine


def recover_from_damage(engine: Engine, error: BaseException) -> bool:
    """Handle ``error``, raised in a transaction of ``engine``, if it says the SQLite file is damaged.

    The damage is confirmed under the lock on a fresh connection; confirmed, a
    copy is set aside and the file reset in place (:func:`set_aside`, with a
    :class:`BrokenIndexWarning`). Returns True when the transaction may run again
    (after the reset, or because the damage did not repeat), False for any other error.
    """
    from sqlalchemy.exc import DBAPIError

    orig = error.orig if isinstance(error, DBAPIError) else error
    if engine.dialect.name != "sqlite" or not guard.says_damaged(orig) or not engine.url.database:
        return False
    file = Path(engine.url.database)
    set_aside(file, lambda: damage_confirmed(file), _fresh_schema)
    return True


def _schema_unknown(location: IndexLocation) -> bool:
    """Return True when the SQLite file of ``location`` still holds a schema pyhermes does not know.

    Called under the index's file lock, so no other pyhermes is migrating it.
    """
    engine = _create_sqlite_engine(location)
    try:
        with engine.connect() as conn:
            needs_upgrade(conn, location_text(engine))
        return False
    except SchemaUnknownError:
        return True
    finally:
        engine.dispose()


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
    ``PRAGMA quick_check`` when the file is not in the state last recorded as
    sound (``<file>.checked``, see :mod:`pyhermes.index.store.guard`). A SQLite file
    found damaged (by an error reading it or the check) or holding an unknown
    schema is handled by :func:`~pyhermes.index.store.sqlitefile.set_aside`: a copy kept
    as ``<name>.broken-<YYYYmmdd-HHMMSS>``, the file reset in place to a fresh
    index, a :class:`BrokenIndexWarning`.

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
            abandon_engine(cached.engine)  # its file was replaced: never close its connections
        if location.file is not None:
            location.file.parent.mkdir(parents=True, exist_ok=True)
            engine = _open_sqlite_file(location)
        else:
            engine = _open_other(location)
        _ENGINES[location.url] = _Cached(engine, _identity(location.file), location.file)
        return engine


class _Disposer:
    """An engine's ``dispose`` as a ``close()``, for :func:`~pyhermes.index.store.guard.close_recorded`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def close(self) -> None:
        self.engine.dispose()


def dispose_engines() -> None:
    """Dispose of every cached engine and empty the cache; return None.

    The standard-library readers of :mod:`pyhermes.index.store.sql_reader` are closed too.
    A SQLite file's last connections close under its lock, and the state their
    closing leaves (SQLite checkpoints the WAL then) is recorded as sound when the
    file was in its recorded state before: the next process need not check it.
    Runs at the exit of every process that opened an engine.
    """
    from pyhermes.index.store.sql_reader import close_readers

    with _ENGINES_LOCK:
        cached = list(_ENGINES.items())
        _ENGINES.clear()
    readers = close_readers(now=False)
    files: dict[Path, list[Any]] = {}
    for _url, entry in cached:
        file = entry.file
        if file is None:
            entry.engine.dispose()
        else:
            files.setdefault(file, []).append(_Disposer(entry.engine))
    for file, reader in readers:
        files.setdefault(file, []).append(reader)
    for file, closers in files.items():
        guard.close_recorded(file, closers)


atexit.register(dispose_engines)


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
        for view in reversed(VIEW_COLUMNS):
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

    For a database, the views, the ``hermes_`` tables and ``alembic_version``
    are dropped. A SQLite file is copied aside to ``<name>.broken-<time>`` and
    reset in place (:func:`set_aside`, unconfirmed and without a warning; ``hermes-reindex
    --rebuild`` builds a new file beside the old one instead, see
    :func:`pyhermes.index.maintenance.rebuild`). The index must then be filled again
    from the run directories. Raises :class:`sqlalchemy.exc.SQLAlchemyError` when
    the database cannot be reached.
    """
    with _ENGINES_LOCK:
        cached = _ENGINES.pop(location.url, None)
        if cached is not None:
            cached.engine.dispose()
        if location.file is not None:
            set_aside(location.file, lambda: "a rebuild was asked for", _fresh_schema, warn=False)
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
