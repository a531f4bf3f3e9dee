"""pyhermes.index.store.sql_reader: read queries through the standard library's sqlite3 and through SQLAlchemy.

Every database is a real SQLite file in the test's temporary folder, made by the
test with :mod:`sqlite3` or by pyhermes itself.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from legacy import write_run

from pyhermes import Catalog
from pyhermes.errors import IndexDamagedError
from pyhermes.index.store import guard
from pyhermes.index.store.location import IndexLocation, sqlite_url
from pyhermes.index.store.sql_reader import (
    EngineReader,
    SqliteReader,
    open_sqlite_reader,
    sqlite_value,
    to_datetime,
)

WHEN = datetime(2024, 1, 2, 3, 4, 5)
ROWS = [(1, sqlite_value(WHEN), "one"), (2, "2024-02-01 00:00:00.000000", "two"), (3, None, "three")]


def _database(file: Path, rows=ROWS) -> Path:
    """A SQLite file holding the table ``t (n, at, name)`` (the test's own connection)."""
    with contextlib.closing(sqlite3.connect(file)) as connection:
        connection.execute("CREATE TABLE t (n INTEGER, at TEXT, name TEXT)")
        connection.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
        connection.commit()
    return file


def _insert(file: Path, row: tuple) -> None:
    with contextlib.closing(sqlite3.connect(file)) as connection:
        connection.execute("INSERT INTO t VALUES (?, ?, ?)", row)
        connection.commit()


@pytest.fixture
def reader(tmp_path: Path):
    reader = SqliteReader(_database(tmp_path / "data.sqlite"))
    yield reader
    reader.close()


@pytest.fixture
def engine_reader(tmp_path: Path):
    from sqlalchemy import create_engine

    engine = create_engine(sqlite_url(_database(tmp_path / "engine.sqlite")))
    yield EngineReader(engine)
    engine.dispose()


# --------------------------------------------------------------------------- values


def test_sqlite_value_writes_datetimes_as_sqlalchemy_stores_them():
    assert sqlite_value(datetime(2024, 1, 2, 3, 4, 5, 6)) == "2024-01-02 03:04:05.000006"
    assert sqlite_value(WHEN) == "2024-01-02 03:04:05.000000"  # always six digits
    for value in (None, 1, 2.5, "text", b"raw"):
        assert sqlite_value(value) is value


def test_to_datetime():
    assert to_datetime(None) is None
    assert to_datetime(WHEN) is WHEN
    assert to_datetime("2024-01-02 03:04:05.000000") == WHEN
    assert to_datetime("2024-01-02T03:04:05") == WHEN
    assert to_datetime(sqlite_value(datetime(2024, 1, 2, 3, 4, 5, 6))) == datetime(2024, 1, 2, 3, 4, 5, 6)
    with pytest.raises(ValueError):
        to_datetime("not a time")


# --------------------------------------------------------------------------- the sqlite3 reader


def test_sqlite_reader_rows_with_named_parameters(reader):
    assert reader.dialect == "sqlite"
    assert reader.rows("SELECT n, name FROM t ORDER BY n") == [(1, "one"), (2, "two"), (3, "three")]
    assert reader.rows("SELECT name FROM t WHERE n > :n ORDER BY n", {"n": 1}) == [("two",), ("three",)]
    # A datetime parameter compares with the stored text (six digits of microseconds).
    assert reader.rows("SELECT n FROM t WHERE at = :at", {"at": WHEN}) == [(1,)]
    assert reader.rows("SELECT n FROM t WHERE at > :at ORDER BY n", {"at": WHEN}) == [(2,)]
    assert reader.rows("SELECT n FROM t WHERE n = :n", {"n": 99}) == []


def test_sqlite_reader_never_writes(reader):
    for statement in ("INSERT INTO t VALUES (4, NULL, 'four')", "DELETE FROM t", "DROP TABLE t"):
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.rows(statement)
    with contextlib.closing(sqlite3.connect(reader.file)) as connection:
        assert connection.execute("SELECT COUNT(*) FROM t").fetchone() == (3,)


def test_sqlite_reader_sees_each_commit_of_another_connection(reader):
    assert reader.rows("SELECT COUNT(*) FROM t") == [(3,)]
    _insert(reader.file, (4, None, "four"))
    assert reader.rows("SELECT COUNT(*) FROM t") == [(4,)]


def test_sqlite_reader_refuses_what_the_database_refuses(reader):
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        reader.rows("SELECT * FROM nope")
    assert reader.rows("SELECT COUNT(*) FROM t") == [(3,)]  # still usable


def test_sqlite_reader_follows_a_file_replaced_under_it(reader, tmp_path):
    assert reader.rows("SELECT name FROM t WHERE n = 1") == [("one",)]
    replacement = _database(tmp_path / "new.sqlite", [(1, None, "uno")])
    os.replace(replacement, reader.file)
    assert reader.rows("SELECT name FROM t WHERE n = 1") == [("uno",)]


def test_rows_together_answers_each_query_in_order(reader):
    queries = [
        ("SELECT n FROM t ORDER BY n", None),
        ("SELECT COUNT(*) FROM t WHERE at IS NOT NULL", {}),
        ("SELECT name FROM t WHERE n = :n", {"n": 2}),
        ("SELECT n FROM t WHERE at = :at", {"at": WHEN}),
    ]
    assert reader.rows_together(queries) == [[(1,), (2,), (3,)], [(2,)], [("two",)], [(1,)]]
    assert reader.rows_together(queries[:1]) == [[(1,), (2,), (3,)]]


@pytest.mark.parametrize("bad", [0, 1])
def test_rows_together_raises_the_error_of_any_query(reader, bad):
    queries = [("SELECT n FROM t", None), ("SELECT n FROM t", None)]
    queries[bad] = ("SELECT * FROM nope", None)
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        reader.rows_together(queries)


def test_close_then_read_again(reader):
    reader.rows("SELECT 1")
    assert reader._connection is not None
    reader.close()
    assert reader._connection is None
    reader.close()  # closing twice is harmless
    assert reader.rows("SELECT COUNT(*) FROM t") == [(3,)]  # a later read opens it again
    assert reader._connection is not None


def test_closing_the_last_connection_records_the_state_it_leaves(tmp_path):
    """The last connection to a WAL file checkpoints it into the file when it closes: a state
    nobody else recorded, which the reader records (the file was sound before)."""
    file = _database(tmp_path / "wal.sqlite")
    with contextlib.closing(sqlite3.connect(file)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
    wal_reader = SqliteReader(file)
    assert wal_reader.rows("SELECT COUNT(*) FROM t") == [(3,)]
    with contextlib.closing(sqlite3.connect(file)) as writer:  # not the last: no checkpoint
        writer.execute("INSERT INTO t VALUES (4, NULL, ?)", ("x" * 200_000,))
        writer.commit()
    guard.record_state(file)  # known sound
    before = guard.file_state(file)
    wal_reader.close()
    assert guard.file_state(file) != before  # the WAL went into the file
    assert not guard.needs_check(file)


def test_a_file_that_is_not_a_database_is_damaged(tmp_path):
    file = tmp_path / "broken.sqlite"
    file.write_bytes(b"this is not a database, " * 100)
    checked = file.with_name(file.name + ".checked")
    checked.write_text("1:2:3:4\n")
    broken = SqliteReader(file)
    try:
        with pytest.raises(IndexDamagedError, match="is damaged"):
            broken.rows("SELECT * FROM t")
    finally:
        broken.close()
    assert not checked.exists()  # its next opener checks it


# --------------------------------------------------------------------------- the SQLAlchemy reader


def test_engine_reader_runs_the_same_text(engine_reader, reader):
    assert engine_reader.dialect == "sqlite"
    for sql, params in [
        ("SELECT n, name FROM t ORDER BY n", None),
        ("SELECT name FROM t WHERE n > :n ORDER BY n", {"n": 1}),
        ("SELECT n FROM t WHERE at = :at", {"at": WHEN}),
    ]:
        rows = engine_reader.rows(sql, params)
        assert rows == reader.rows(sql, params) and rows
        assert all(type(row) is tuple for row in rows)


def test_engine_reader_rows_together_and_errors(engine_reader):
    from sqlalchemy.exc import OperationalError

    queries = [("SELECT COUNT(*) FROM t", None), ("SELECT name FROM t WHERE n = :n", {"n": 3})]
    assert engine_reader.rows_together(queries) == [[(3,)], [("three",)]]
    with pytest.raises(OperationalError, match="no such table"):
        engine_reader.rows_together([queries[0], ("SELECT * FROM nope", None)])
    with pytest.raises(OperationalError, match="no such table"):
        engine_reader.rows("SELECT * FROM nope")


# --------------------------------------------------------------------------- serving an index


def test_open_sqlite_reader_serves_an_index_at_the_current_schema(tmp_path):
    from pyhermes.index.store.engine import dispose_engines
    from pyhermes.index.store.schema import HEAD_REVISION

    tree = tmp_path / "tree"
    for day in (1, 2):
        write_run(tree / "experiments" / "s" / "e", start=datetime(2024, 1, day), scores=[1.0])
    location = Catalog.open(tree).location
    dispose_engines()
    served = open_sqlite_reader(location)
    assert served is not None
    sqlite_reader, root = served
    assert isinstance(sqlite_reader, SqliteReader) and root == tree.resolve()
    assert sqlite_reader.rows("SELECT COUNT(*) FROM hermes_run") == [(2,)]
    assert open_sqlite_reader(location)[0] is sqlite_reader  # one reader per file

    missing = tmp_path / "missing.sqlite"
    assert open_sqlite_reader(IndexLocation(sqlite_url(missing), missing, None)) is None
    assert not missing.exists()

    dispose_engines()
    with contextlib.closing(sqlite3.connect(location.file)) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'other'")
        connection.commit()
    guard.record_state(location.file)  # sound, but of another schema: SQLAlchemy migrates it
    assert HEAD_REVISION != "other"
    assert open_sqlite_reader(location) is None


def test_open_sqlite_reader_finds_the_root_of_an_explicit_index(tmp_path):
    from pyhermes.index.store.engine import dispose_engines

    write_run(tmp_path / "tree", start=datetime(2024, 1, 1))
    location = Catalog.open(tmp_path / "tree", index=tmp_path / "explicit.sqlite").location
    assert location.root is None
    dispose_engines()
    served = open_sqlite_reader(location)
    assert served is not None and served[1] == Path(tmp_path.anchor)  # absolute paths stored
