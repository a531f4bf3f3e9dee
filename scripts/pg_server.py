"""A throwaway PostgreSQL server, and new empty databases on it (for the tests and the benchmark).

As a module (``scripts/`` is not a package: put it on ``sys.path``)::

    from pg_server import drop_database, new_database, postgres_server

    with postgres_server(fsync=True) as server_url:   # the benchmark: the server's own defaults
        url = new_database(server_url)                 # HERMES_INDEX=<url> for every process
        ...
        drop_database(server_url, url)

The server is started from the PostgreSQL binaries (``initdb``, ``pg_ctl``: on
``PATH``, else the newest ``/usr/lib/postgresql/*/bin``), never as a system
service; it listens only on a unix socket in a new temporary folder, trusts
local connections, and is stopped and its files deleted when the ``with`` block
ends. Nothing here needs pytest: :class:`PostgresUnavailable` says why a server
cannot be started (``tests/pg.py`` turns it into a skip, or a failure under
``CI=true``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PostgresUnavailable", "drop_database", "new_database", "pg_bindir", "postgres_server",
           "unavailable"]


class PostgresUnavailable(RuntimeError):
    """No throwaway server can be started here: the binaries, or (as root) the ``postgres`` user, are missing."""


def pg_bindir() -> Path | None:
    """Return the folder of ``initdb`` and ``pg_ctl``, or None when not installed."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def unavailable() -> str | None:
    """Why :func:`postgres_server` cannot start a server here, or None when it can."""
    if pg_bindir() is None:
        return "PostgreSQL server not installed (initdb, pg_ctl): apt-get install postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run initdb as"
    return None


@contextlib.contextmanager
def postgres_server(fsync: bool = False) -> Iterator[str]:
    """Start a throwaway PostgreSQL server; yield its URL; stop it and delete its files.

    The server listens only on a unix socket in a new temporary folder (no TCP:
    ``listen_addresses=''``) and trusts local connections. The URL
    (``postgresql://postgres@/postgres?host=<socket folder>``) names the
    ``postgres`` database of superuser ``postgres``. As root, the server runs as
    the ``postgres`` user (``initdb`` refuses root).

    With ``fsync=False`` (the tests) the server runs with ``fsync=off`` and
    ``full_page_writes=off``, and ``initdb`` does not sync its files. With
    ``fsync=True`` (a benchmark) every setting is the server's default; only the
    authentication, the socket folder and ``listen_addresses`` are set.

    Raises:
        PostgresUnavailable: see :func:`unavailable`.
        RuntimeError: ``initdb`` or ``pg_ctl`` failed (their output and the server log in the message).
    """
    reason = unavailable()
    if reason is not None:
        raise PostgresUnavailable(reason)
    bindir = pg_bindir()
    assert bindir is not None
    run_as: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="hermes-pg-"))
    try:
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(base, user.pw_uid, user.pw_gid)
            runuser = shutil.which("runuser")
            run_as = [runuser, "-u", "postgres", "--"] if runuser else ["su", "postgres", "-c"]
        data = base / "data"

        def run(*args: str) -> None:
            cmd = [*run_as, " ".join(args)] if run_as[:1] == ["su"] else [*run_as, *args]
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=base, timeout=120)
            if done.returncode != 0:
                log = (base / "log").read_text() if (base / "log").exists() else ""
                raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}{log}")

        run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
            *([] if fsync else ["--no-sync"]))
        options = f"-k {base} -c listen_addresses=''"
        if not fsync:
            options += " -c fsync=off -c full_page_writes=off"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-o", options, "start")
        try:
            yield f"postgresql://postgres@/postgres?host={base}"
        finally:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _admin_sql(server_url: str, statement: str) -> None:
    """Run one statement that cannot run in a transaction (CREATE/DROP DATABASE) on the server."""
    from sqlalchemy import create_engine

    admin = create_engine(
        server_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(statement)
    finally:
        admin.dispose()


def new_database(server_url: str) -> str:
    """Create a new, empty database on the server of ``server_url``; return its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    _admin_sql(server_url, f"CREATE DATABASE {name}")
    return server_url.replace("/postgres?", f"/{name}?")


def drop_database(server_url: str, url: str) -> None:
    """Drop the database of ``url`` (made by :func:`new_database`), closing its sessions."""
    from sqlalchemy.engine import make_url

    _admin_sql(server_url, f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)")
