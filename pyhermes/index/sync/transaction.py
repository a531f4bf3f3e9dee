"""Transactions of the index that other writers may race: retried, and named when they wait too long.

Many processes write one index (syncs, write-throughs, ``hermes-reindex``; see
the README, "The sync contract"). Every write runs in :func:`run_in_transaction`:
a transaction that finds the index locked, or loses a deadlock, serialization or
unique-key race (:func:`is_retryable`), is rolled back and run again with
backoff and jitter, for up to :func:`~pyhermes.index.store.engine.busy_limit`
seconds; then :class:`~pyhermes.errors.IndexBusyError` names what holds the
database (:func:`holders`: the processes of this machine with the SQLite file
open, or the PostgreSQL sessions with a transaction open). A transaction that
finds its SQLite file damaged runs again once the damage is handled.

A transaction that changed the runs records it with :func:`bump_change_token`:
lists bound to the index compare that token to know whether their answer still
holds. The writes themselves (keyed upserts, deletes) are
:mod:`pyhermes.index.sync.writes`; the sync that uses both is
:mod:`pyhermes.index.sync.syncer`.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from pyhermes.errors import IndexBusyError
from pyhermes.index.store.engine import BUSY_LIMIT_VAR, busy_limit, recover_from_damage
from pyhermes.index.store.layout import CHANGE_TOKEN_KEY
from pyhermes.index.store.models import meta_table
from pyhermes.index.sync.writes import upsert

__all__ = ["is_retryable", "run_in_transaction", "holders", "bump_change_token"]

T = TypeVar("T")

#: SQLSTATEs of PostgreSQL errors that a retry of the transaction resolves.
_RETRY_SQLSTATES = frozenset({"40001", "40P01", "55P03", "23505"})


def is_retryable(exc: BaseException) -> bool:
    """True for the errors another writer of the index causes: retrying the transaction helps.

    SQLite: "database is locked" / "busy", a unique conflict; PostgreSQL:
    serialization failure, deadlock, lock not available, a unique conflict.
    """
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in _RETRY_SQLSTATES
    name = type(orig).__name__
    if name == "IntegrityError":
        return True
    message = str(orig).lower()
    return name == "OperationalError" and ("locked" in message or "busy" in message)


#: How often one transaction runs again after its SQLite file was found damaged.
_RECOVERIES = 2


def run_in_transaction(engine: Engine, work: Callable[[Connection], T], what: str = "sync") -> T:
    """Run ``work(connection)`` in a transaction of ``engine``; return its result.

    A transaction that finds the SQLite file damaged runs again once the damage
    is handled (:func:`~pyhermes.index.store.engine.recover_from_damage`). A
    transaction that fails for a reason another writer causes (see
    :func:`is_retryable`) is rolled back and run again, after a pause that
    doubles from 50 ms up to 2 s, with jitter, for at most :func:`busy_limit`
    seconds in all.

    Raises:
        IndexBusyError: the index stayed locked or in conflict past the limit; the
            message names what holds it, when that can be found.
        sqlalchemy.exc.SQLAlchemyError: any other database error.
    """
    limit = busy_limit()
    deadline = time.monotonic() + limit
    pause = 0.05
    attempts = 0
    recoveries = 0
    while True:
        attempts += 1
        try:
            with engine.begin() as conn:
                return work(conn)
        except DBAPIError as exc:
            if recoveries < _RECOVERIES and recover_from_damage(engine, exc):
                recoveries += 1  # a damaged file was reset (or the damage did not repeat)
                continue
            if not is_retryable(exc):
                raise
            wait = pause * (0.5 + random.random())
            if time.monotonic() + wait > deadline:
                raise IndexBusyError(
                    f"the index {_describe(engine)} stayed busy for {limit:g} s ({attempts} "
                    f"attempts of this {what}); last error: {str(exc.orig).splitlines()[0]}. "
                    f"{holders(engine)} Raise the limit with {BUSY_LIMIT_VAR}=<seconds>."
                ) from exc
            time.sleep(wait)
            pause = min(pause * 2, 2.0)


def _describe(engine: Engine) -> str:
    if engine.dialect.name == "sqlite":
        return str(engine.url.database)
    return engine.url.render_as_string(hide_password=True)


def holders(engine: Engine) -> str:
    """Return a sentence naming what holds the index: processes with the SQLite file open, or
    the other PostgreSQL sessions in a transaction on the database. Never raises."""
    try:
        if engine.dialect.name == "sqlite":
            found = _sqlite_holders(str(engine.url.database or ""))
        else:
            found = _postgresql_holders(engine)
    except Exception as exc:  # noqa: BLE001 - only a hint in an error message
        return f"(what holds it could not be found: {exc})"
    if not found:
        return "No other holder could be found (it may have finished, or run on another machine)."
    return "Held by: " + "; ".join(found[:10]) + "."


def _sqlite_holders(file: str) -> list[str]:
    """Processes of this machine with ``file`` (or its ``-wal``) open, from ``/proc``."""
    if not file or not os.path.isdir("/proc"):
        return []
    targets = {os.path.realpath(file), os.path.realpath(file) + "-wal"}
    found: list[str] = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target in targets:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as handle:
                        command = handle.read(300).replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    command = "?"
                found.append(f"process {pid} ({command.strip()})")
                break
    return found


def _postgresql_holders(engine: Engine) -> list[str]:
    """Other sessions on the database with a transaction open, oldest first."""
    from sqlalchemy import text

    query = text(
        "SELECT pid, usename, application_name, client_addr, state, "
        "now() - xact_start AS age, left(query, 120) AS query FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND xact_start IS NOT NULL ORDER BY xact_start"
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        f"session {row.pid} of {row.usename}@{row.client_addr or 'local'} "
        f"({row.application_name or 'no name'}, {row.state}, transaction open for {row.age}): "
        f"{row.query!r}"
        for row in rows
    ]


def bump_change_token(connection: Connection) -> None:
    """Record that the runs stored in the index changed (a new random token)."""
    upsert(connection, meta_table, ["key"], [{"key": CHANGE_TOKEN_KEY, "value": uuid.uuid4().hex}])
