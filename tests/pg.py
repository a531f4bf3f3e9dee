"""A throwaway PostgreSQL server for the tests, and new empty databases on it.

A thin wrapper over ``scripts/pg_server.py`` (shared with the benchmark): the
tests' server runs with ``fsync=off``. Under ``CI=true`` a missing server is a
failure, not a skip: the PostgreSQL half of the suite must run there.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.append(str(SCRIPTS))

import pg_server  # noqa: E402
from pg_server import drop_database, new_database  # noqa: E402

__all__ = ["drop_database", "new_database", "postgres_server"]

_pg_bindir = pg_server.pg_bindir
_admin_sql = pg_server._admin_sql


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true needs the PostgreSQL tests to run: {reason}")
    pytest.skip(reason)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throwaway PostgreSQL server with ``fsync=off``; yield its URL; stop it and delete its files.

    See :func:`pg_server.postgres_server`. Calls ``pytest.skip`` when the server
    binaries or, as root, the ``postgres`` user are missing -- ``pytest.fail``
    under ``CI=true``, where the PostgreSQL tests must run.
    """
    reason = pg_server.unavailable()
    if reason is not None:
        _unavailable(reason)
    with pg_server.postgres_server(fsync=False) as url:
        yield url
