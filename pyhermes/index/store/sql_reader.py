"""Running the read queries of the index: the standard library's sqlite3, or SQLAlchemy.

Every read of pyhermes is SQL text built by :mod:`pyhermes.index.query.filters` over the
tables of :mod:`pyhermes.index.store.layout`, with named parameters. A SQLite index
file that is already at the current schema is read with :mod:`sqlite3` alone
(:class:`SqliteReader`): importing SQLAlchemy costs more than answering a
question from 100,000 runs, and a fresh ``python script.py`` pays it. Other
databases (PostgreSQL), and indexes that must first be created or migrated,
go through SQLAlchemy (:class:`EngineReader`), which runs the same text.

Writes (sync, write-through) always go through SQLAlchemy.
"""

from __future__ import annotations

import atexit
import os
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pyhermes.index.store.guard import says_damaged

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from pyhermes.index.store.location import IndexLocation

__all__ = [
    "Query", "Reader", "SqliteReader", "EngineReader", "close_readers", "open_sqlite_reader", "sqlite_value",
    "to_datetime",
]


class Reader(Protocol):
    """Runs one read-only statement and returns its rows as tuples."""

    dialect: str

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]: ...

    def rows_together(self, queries: Sequence[Query]) -> list[list[tuple[Any, ...]]]: ...

    def rows_alone(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]: ...


#: One read statement and its parameters.
Query = tuple[str, "Mapping[str, Any] | None"]


def _together(first: Callable[[Query], list[tuple[Any, ...]]], others: Callable[[Query], list[tuple[Any, ...]]],
              queries: Sequence[Query]) -> list[list[tuple[Any, ...]]]:
    """The rows of each of ``queries``: the first run by ``first`` in this thread, each other
    by ``others`` in a thread of its own, at the same time (the databases' drivers let other
    threads run while the database works). The first exception raised propagates."""
    results: list[Any] = [None] * len(queries)

    def run(at: int) -> None:
        try:
            results[at] = others(queries[at])
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            results[at] = exc

    threads = [threading.Thread(target=run, args=(at,), daemon=True) for at in range(1, len(queries))]
    for thread in threads:
        thread.start()
    try:
        results[0] = first(queries[0])
    finally:
        for thread in threads:
            thread.join()
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def sqlite_value(value: Any) -> Any:
    """``value`` as SQLite stores it: a datetime as SQLAlchemy writes it, as text."""
    # SQLAlchemy stores DateTime in SQLite as this text; comparisons must use the same.
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _sqlite_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """``params`` with each value as SQLite stores it (see :func:`sqlite_value`)."""
    return {key: sqlite_value(value) for key, value in (params or {}).items()}


def to_datetime(value: Any) -> datetime | None:
    """A database value as a datetime (SQLite hands back ISO text, PostgreSQL datetimes)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _read_only_connection(file: Path) -> sqlite3.Connection:
    """A new read-only connection to the SQLite file, in autocommit: each SELECT sees the
    index as last committed."""
    from pyhermes.index.store.guard import connect

    return connect(file, ("PRAGMA busy_timeout=30000",), read_only=True)


class SqliteReader:
    """Reads a SQLite index file with the standard library (one connection per process)."""

    dialect = "sqlite"

    def __init__(self, file: Path) -> None:
        self.file = file
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._pid = 0
        self._identity: tuple[int, int] | None = None

    def _connect(self) -> sqlite3.Connection:
        status = os.stat(self.file)
        identity = (status.st_dev, status.st_ino)
        if self._connection is not None and self._pid == os.getpid() and self._identity == identity:
            return self._connection
        if self._connection is not None and self._pid == os.getpid():
            from pyhermes.index.store.guard import abandon

            abandon(self._connection)  # its file was replaced: closing it could delete the new -wal
        connection = _read_only_connection(self.file)
        self._connection, self._pid, self._identity = connection, os.getpid(), identity
        return connection

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run ``sql`` with ``params``; return its rows.

        Raises:
            sqlite3.Error: the database refused the statement or cannot be read.
        """
        values = _sqlite_params(params)
        with self._lock:
            try:
                return self._connect().execute(sql, values).fetchall()
            except sqlite3.DatabaseError as exc:
                if not says_damaged(exc):
                    raise
            # Once more on a new connection: a malformed read that does not repeat is a transient.
            connection = None
            try:
                connection = _read_only_connection(self.file)
                return connection.execute(sql, values).fetchall()
            except sqlite3.DatabaseError as exc:
                if not says_damaged(exc):
                    raise
                from pyhermes.errors import IndexDamagedError
                from pyhermes.index.store.guard import forget_checked

                forget_checked(self.file)
                raise IndexDamagedError(
                    f"the index {self.file} is damaged ({exc}). It is a cache: the next load_all "
                    "or hermes-reindex sets a copy aside and rebuilds it from the run directories."
                ) from None
            finally:
                if connection is not None:
                    connection.close()

    def rows_together(self, queries: Sequence[Query]) -> list[list[tuple[Any, ...]]]:
        """Run several statements at once (see :func:`_together`), each but the first on a
        connection of its own; return their rows. Each statement sees the index as last
        committed when it starts, as consecutive calls of :meth:`rows` would.

        Raises:
            sqlite3.Error: the database refused a statement or cannot be read.
        """

        def alone(query: Query) -> list[tuple[Any, ...]]:
            connection = _read_only_connection(self.file)
            try:
                values = _sqlite_params(query[1])
                return connection.execute(query[0], values).fetchall()
            finally:
                connection.close()  # never the last one: this reader's stays open

        with self._lock:
            self._connect()  # open before the others, so that none of theirs is the last to close
        return _together(lambda query: self.rows(*query), alone, queries)

    def rows_alone(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run ``sql`` on a connection of its own (never the last one of this process to close):
        a long read (a count in the background) that keeps no other read of this reader waiting.

        Raises:
            sqlite3.Error: the database refused the statement or cannot be read.
        """
        with self._lock:
            self._connect()
        return self.rows_together([("SELECT 1", None), (sql, params)])[1]

    def close(self) -> None:
        """Close the connection (a later read opens it again), under the index's lock, recording
        the state its closing leaves (see :func:`pyhermes.index.store.guard.close_recorded`)."""
        from pyhermes.index.store.guard import close_recorded

        close_recorded(self.file, [self._detach()])

    def _detach(self) -> _Closer:
        """Forget the connection; return what closes it (nothing for another process's)."""
        with self._lock:
            connection, self._connection = self._connection, None
            mine = connection is not None and self._pid == os.getpid()
        return _Closer(connection if mine else None)


class _Closer:
    """Closes one connection, if any (for :func:`pyhermes.index.store.guard.close_recorded`)."""

    def __init__(self, connection: sqlite3.Connection | None) -> None:
        self.connection = connection

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


class EngineReader:
    """Runs the same SQL text through a SQLAlchemy engine (PostgreSQL, or SQLite via SQLAlchemy)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run ``sql`` with ``params``; return its rows.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the database refused the statement.
        """
        from sqlalchemy import text

        values = dict(params or {})
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                # The SQL is written in sqlite3's named style: the driver runs it as
                # it is, and its rows are taken without building SQLAlchemy rows
                # (a third of the time of a to_frame()).
                values = _sqlite_params(values)
                return conn.exec_driver_sql(sql, values).cursor.fetchall()
            return [tuple(row) for row in conn.execute(text(sql), values).all()]

    def rows_together(self, queries: Sequence[Query]) -> list[list[tuple[Any, ...]]]:
        """Run several statements at once (see :func:`_together`), each on a connection of
        the engine's pool; return their rows.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the database refused a statement.
        """
        return _together(lambda query: self.rows(*query), lambda query: self.rows(*query), queries)

    def rows_alone(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """As :meth:`rows` (each call takes a connection of the engine's pool)."""
        return self.rows(sql, params)


_READERS: dict[Path, SqliteReader] = {}
_READERS_LOCK = threading.Lock()


def close_readers(*, now: bool = True) -> list[tuple[Path, _Closer]]:
    """Close every cached reader's connection (each as :meth:`SqliteReader.close` does).

    With ``now=False`` nothing is closed: the connections are detached and
    returned, per file, for the caller to close together with its own.
    """
    with _READERS_LOCK:
        readers = list(_READERS.values())
    if now:
        for reader in readers:
            reader.close()
        return []
    return [(reader.file, reader._detach()) for reader in readers]


# At exit, the last connections close under the index's lock, and the state they leave is recorded.
atexit.register(close_readers)


def open_sqlite_reader(location: IndexLocation) -> tuple[SqliteReader, Path] | None:
    """Return a reader of the SQLite index at ``location`` and its root folder, when it can serve.

    It can when the file exists, was found sound by ``quick_check`` in its present
    state (:mod:`pyhermes.index.store.engine` notes that beside it), its schema is the
    one this pyhermes writes (:data:`~pyhermes.index.store.schema.HEAD_REVISION`) and
    its root is known. ``None``
    otherwise: the caller opens it through SQLAlchemy, which creates, migrates or
    sets aside a broken file.
    """
    from pyhermes.index.store.guard import needs_check
    from pyhermes.index.store.schema import HEAD_REVISION

    file = location.file
    if file is None or not file.is_file():
        return None
    if needs_check(file):
        return None  # not in a state recorded as sound: SQLAlchemy's opening checks it
    with _READERS_LOCK:
        reader = _READERS.get(file)
        if reader is None:
            reader = _READERS[file] = SqliteReader(file)
    try:
        revisions = [row[0] for row in reader.rows("SELECT version_num FROM alembic_version")]
        if revisions != [HEAD_REVISION]:
            return None
        root = location.root
        if root is None:
            stored = reader.rows("SELECT value FROM hermes_meta WHERE key = 'root'")
            if not stored:
                return None
            root = Path(stored[0][0])
    except sqlite3.Error:
        return None
    return reader, root
