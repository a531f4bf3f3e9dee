"""What a quick check that found nothing to sync writes back: folder listings and settle flags.

The quick check (:func:`pyhermes.index.sync.unchanged.nothing_to_sync`) only reads. When it
finds that a folder changed since it was listed but holds what the index holds, or that an
unsettled run is unchanged and old enough to settle (as many as
:data:`pyhermes.index.sync.unchanged.SETTLE_MARKS_FROM` at least), only a mark of the index is behind;
storing it spares the next process the same look at the disk. Both writes are only an
optimisation: one that fails (a busy or read-only index) is skipped, and the next check
looks again. On a SQLite index read through the standard library the write goes through
the same guarded connection (no SQLAlchemy is imported); elsewhere through the engine.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pyhermes.index.rules import SIGNATURE_COLUMNS, Signature
from pyhermes.index.store.sql_reader import SqliteReader

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["remember_listings", "mark_settled"]

_LISTING_SQL = "UPDATE hermes_folder SET mtime_ns = :mtime_ns, listed_at = :listed_at WHERE path = :path"


def remember_listings(
    reader: object, engine: Callable[[], Engine], listings: Sequence[tuple[str, int, float]]
) -> None:
    """Store folder listings ``(path, mtime_ns, listed_at)`` the quick check found to hold
    what the index holds, so that the next process trusts them unlisted."""
    rows = [{"path": path, "mtime_ns": mtime_ns, "listed_at": listed_at} for path, mtime_ns, listed_at in listings]
    if isinstance(reader, SqliteReader):
        _sqlite_write(reader, _LISTING_SQL, rows)
        return
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with engine().begin() as conn:
            conn.execute(text(_LISTING_SQL), rows)
    except SQLAlchemyError:
        return


def mark_settled(reader: object, engine: Callable[[], Engine], settling: Sequence[tuple[str, Signature]]) -> None:
    """Mark settled the runs ``(path, signature)`` the quick check found unchanged and old
    enough, each only if its row still holds the signature that was checked (as a sync
    does: a sync that stored a newer reading meanwhile wins)."""
    if isinstance(reader, SqliteReader):
        same = " AND ".join(f"{name} IS :{name}" for name in SIGNATURE_COLUMNS)
        sql = f"UPDATE hermes_run SET settled = 1 WHERE path = :path AND {same}"
        rows = [{"path": path, **dict(zip(SIGNATURE_COLUMNS, sig, strict=True))} for path, sig in settling]
        _sqlite_write(reader, sql, rows)
        return
    from sqlalchemy.exc import SQLAlchemyError

    from pyhermes.index.sync.writes import settle_runs

    try:
        with engine().begin() as conn:
            settle_runs(conn, list(settling))
    except SQLAlchemyError:
        return


def _sqlite_write(reader: SqliteReader, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
    from pyhermes.index.store import guard

    try:
        connection = guard.connect(reader.file, ("PRAGMA busy_timeout=1000",))
    except sqlite3.Error:
        return
    try:
        connection.executemany(sql, rows)
        connection.commit()
    except sqlite3.Error:
        connection.rollback()
    finally:
        guard.close_recorded(reader.file, [connection])
