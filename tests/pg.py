"""A throwaway PostgreSQL server for the tests, and new empty databases on it.

Under ``CI=true`` a missing server is a failure, not a skip: the PostgreSQL
half of the suite must run there.
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

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true needs the PostgreSQL tests to run: {reason}")
    pytest.skip(reason)


def _pg_bindir() -> Path | None:
    """Return the folder of ``initdb`` and ``pg_ctl``, or None when not installed."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throwaway PostgreSQL server; yield its URL; stop it and delete its files.

    The server listens only on a unix socket in a new temporary folder, trusts
    local connections and runs with ``fsync=off``. The URL
    (``postgresql://postgres@/postgres?host=<socket folder>``) names the
    ``postgres`` database of superuser ``postgres``. As root, the server runs
    as the ``postgres`` user (``initdb`` refuses root). Calls ``pytest.skip``
    when the server binaries or, as root, that user are missing -- ``pytest.fail``
    under ``CI=true``, where the PostgreSQL tests must run.
    """
    bindir = _pg_bindir()
    if bindir is None:
        _unavailable("PostgreSQL server not installed (initdb, pg_ctl): apt-get install postgresql")
    run_as: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="hermes-pg-"))
    try:
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                _unavailable("running as root and there is no 'postgres' user to run initdb as")
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

        run(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = f"-k {base} -c listen_addresses='' -c fsync=off -c full_page_writes=off"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-o",
            options, "start")  # fmt: skip
        try:
            yield f"postgresql://postgres@/postgres?host={base}"
        finally:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)



def _admin_sql(server_url: str, statement: str) -> None:
    """Run one statement that cannot run in a transaction (CREATE/DROP DATABASE) on the server."""
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
    _admin_sql(server_url, f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)")
