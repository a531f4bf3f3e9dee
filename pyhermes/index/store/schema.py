"""The schema version of the index, and bringing an index up to it.

The schema is managed by the Alembic migrations shipped as
``pyhermes.migrations`` (the ``migrations/`` folder of the source tree). Each
revision also writes a *generation*, an integer that only grows, into
``hermes_meta.schema_generation``; it tells an index written by a newer
pyhermes (generation above :data:`HEAD_GENERATION`) apart from one whose
revision is merely unknown (a foreign or damaged schema).

Reading the revision of an index needs SQLAlchemy only: Alembic is imported by
the functions that migrate, so opening an index that is already at head does
not import it.

The stable views for ad-hoc SQL, created by the migrations (each revision keeps
its own frozen copy of their SQL), have the columns of :data:`VIEW_COLUMNS`.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pyhermes.errors import CatalogError, IndexVersionError, SchemaUnknownError
from pyhermes.index.store.guard import index_lock

# SQLAlchemy is imported by the functions that use it: the revision constants and
# SchemaUnknownError are read on the standard-library read path (pyhermes.index.store.sql_reader).
if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Engine
    from sqlalchemy.engine import Connection

__all__ = [
    "HEAD_REVISION",
    "HEAD_GENERATION",
    "KNOWN_REVISIONS",
    "VIEW_COLUMNS",
    "SchemaUnknownError",
    "ensure_schema",
    "current_revision",
    "stored_generation",
    "downgrade_to_base",
    "migration_script_heads",
    "migration_script_revisions",
    "alembic_config",
    "upgrade_with_alembic",
    "sqlite_schema_statements",
]

#: The Alembic revision this version of pyhermes reads and writes.
HEAD_REVISION = "0005"

#: The schema generation written by :data:`HEAD_REVISION`.
HEAD_GENERATION = 5

#: Every revision of ``migrations/versions``, oldest first (head last). Kept in
#: step with the scripts by tests/test_migrations.py.
KNOWN_REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004", "0005")

#: The stable views and their columns, in order.
VIEW_COLUMNS: dict[str, tuple[str, ...]] = {
    "runs": (
        "id",
        "path",
        "identifier",
        "script_name",
        "experiment_name",
        "job_idx",
        "commit_hash",
        "start_time",
        "end_time",
        "execution_time",
        "comments",
        "finished",
        "count",
        "first",
        "last",
        "min",
        "max",
        "mean",
        "std",
        "argmax",
        "final_mean",
        "best_window_mean",
    ),
    "run_args": ("run_id", "position", "key", "value", "num", "raw"),
    "run_info": ("run_id", "key", "value"),
    "run_tags": ("run_id", "tag"),
    "run_notes": ("run_id", "time", "text"),
}

#: Key of the PostgreSQL advisory lock held while migrating (any fixed 64-bit number).
PG_LOCK_KEY = 0x6865726D6573  # "hermes"

_VERSION_TABLE = "alembic_version"



def location_text(engine: Engine) -> str:
    """Return the index for messages: the SQLite file, or the URL without its password."""
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        return str(engine.url.database)
    return engine.url.render_as_string(hide_password=True)


def _read_revisions(conn: Connection) -> list[str] | None:
    """Return the rows of ``alembic_version``, or ``None`` when that table does not exist."""
    from sqlalchemy import inspect, text

    if not inspect(conn).has_table(_VERSION_TABLE):
        return None
    return [row[0] for row in conn.execute(text(f"SELECT version_num FROM {_VERSION_TABLE}"))]


def _read_generation(conn: Connection) -> int | None:
    """Return ``hermes_meta.schema_generation`` as an int, or ``None`` if absent or not a number."""
    from sqlalchemy import inspect, text

    if not inspect(conn).has_table("hermes_meta"):
        return None
    value = conn.execute(
        text("SELECT value FROM hermes_meta WHERE key = 'schema_generation'")
    ).scalar()
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


def _has_hermes_objects(conn: Connection) -> bool:
    """Return True when the database holds a ``hermes_`` table or one of the view names."""
    from sqlalchemy import inspect

    insp = inspect(conn)
    names = set(insp.get_table_names()) | set(insp.get_view_names())
    return any(name.startswith("hermes_") or name in VIEW_COLUMNS for name in names)


def needs_upgrade(conn: Connection, where: str) -> bool:
    """Classify the schema seen through ``conn``.

    Returns False when the index is at :data:`HEAD_REVISION`, True when it is
    empty or at an older known revision. Raises :class:`IndexVersionError`
    when its generation is above :data:`HEAD_GENERATION` and
    :class:`SchemaUnknownError` when its schema is otherwise unknown.
    """
    revisions = _read_revisions(conn)
    if revisions == [HEAD_REVISION]:
        return False
    generation = _read_generation(conn)
    found = ", ".join(revisions) if revisions else None
    if generation is not None and generation > HEAD_GENERATION:
        raise IndexVersionError(
            f"The index {where} was written by a newer pyhermes: it has schema revision "
            f"{found!r} (generation {generation}), and this pyhermes expects revision "
            f"{HEAD_REVISION!r} (generation {HEAD_GENERATION}). Fix: upgrade pyhermes "
            "(pip install -U pyhermes), or, to rebuild the cache with this version, run "
            "hermes-reindex --rebuild."
        )
    if not revisions:
        if _has_hermes_objects(conn):
            raise SchemaUnknownError(
                f"The index {where} holds hermes tables but no schema revision; "
                "it cannot be trusted as a pyhermes index.",
                revision=None,
            )
        return True
    if len(revisions) == 1 and revisions[0] in KNOWN_REVISIONS:
        return True
    raise SchemaUnknownError(
        f"The index {where} has schema revision {found!r}, which this pyhermes does not "
        f"know (expected {HEAD_REVISION!r}; generation {generation}).",
        revision=found,
    )


def current_revision(engine: Engine) -> str | None:
    """Return the Alembic revision stored in the database, or ``None`` if there is none.

    Several rows (branches, never made by pyhermes) are returned joined by commas.
    Raises :class:`sqlalchemy.exc.DatabaseError` when the database cannot be read.
    """
    with engine.connect() as conn:
        revisions = _read_revisions(conn)
    return ", ".join(revisions) if revisions else None


def stored_generation(engine: Engine) -> int | None:
    """Return ``hermes_meta.schema_generation``, or ``None`` when absent or not a number."""
    with engine.connect() as conn:
        return _read_generation(conn)


def _script_location() -> str:
    """Return the folder of the ``pyhermes.migrations`` package.

    Found through the import system, so that it works from a wheel and from an
    editable install (where the package lives in the top-level ``migrations/``).
    Raises :class:`CatalogError` when the package is missing.
    """
    spec = importlib.util.find_spec("pyhermes.migrations")
    if spec is None or not spec.submodule_search_locations:
        raise CatalogError("The migrations of pyhermes (pyhermes.migrations) are not installed.")
    return str(Path(next(iter(spec.submodule_search_locations))).resolve())


def alembic_config(connection: Connection | None = None) -> Config:
    """Return an Alembic ``Config`` for the shipped migrations (imports Alembic).

    ``connection``, when given, is passed to ``migrations/env.py`` in
    ``config.attributes["connection"]``; the caller commits its transaction.
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", _script_location())
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@contextlib.contextmanager
def _pg_advisory_lock(engine: Engine) -> Iterator[None]:
    """Hold the PostgreSQL advisory lock :data:`PG_LOCK_KEY` on a dedicated connection."""
    from sqlalchemy import text

    with engine.connect() as lock_conn:
        lock_conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": PG_LOCK_KEY})
        lock_conn.commit()
        try:
            yield
        finally:
            lock_conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PG_LOCK_KEY})
            lock_conn.commit()


def _upgrade_locked(engine: Engine) -> None:
    """Re-check the revision and upgrade to head, in one transaction; the caller holds the lock.

    On SQLite the transaction is ``BEGIN IMMEDIATE``, so the DDL is atomic and
    any other writer waits. Raises like :func:`ensure_schema`.
    """
    where = location_text(engine)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        if not needs_upgrade(conn, where):
            conn.rollback()
            return
        if engine.dialect.name == "sqlite" and _read_revisions(conn) is None:
            _create_sqlite_head(conn)  # a new index: no migration to run
        else:
            from alembic import command

            command.upgrade(alembic_config(conn), "head")
        conn.commit()


def _create_sqlite_head(conn: Connection) -> None:
    """Create the schema at :data:`HEAD_REVISION` in an empty SQLite database, without Alembic.

    The statements of :mod:`pyhermes.index.store.sqlite_head` are what the migrations
    build (tests/test_migrations.py checks it); the caller commits.
    """
    from pyhermes.index.store import sqlite_head

    if sqlite_head.REVISION != HEAD_REVISION:  # pragma: no cover - the tests keep them equal
        raise CatalogError(
            f"pyhermes.index.store.sqlite_head is at revision {sqlite_head.REVISION!r}, not "
            f"{HEAD_REVISION!r}; run: python scripts/sqlite_head.py"
        )
    for statement in sqlite_head.STATEMENTS:
        conn.exec_driver_sql(statement)


def upgrade_with_alembic(engine: Engine) -> None:
    """Run the migrations up to head in one transaction, whatever the database holds; return None.

    For tools and tests (:func:`ensure_schema` is what pyhermes uses); imports
    Alembic and raises what the migrations raise.
    """
    from alembic import command

    with engine.connect() as conn:
        command.upgrade(alembic_config(conn), "head")
        conn.commit()


def _sql_literal(value: object) -> str:
    return "NULL" if value is None else "'" + str(value).replace("'", "''") + "'"


def sqlite_schema_statements(engine: Engine) -> list[str]:
    """Return the statements that recreate the hermes schema of a SQLite database; read only.

    Its tables, indexes and views as SQLite stores them (creation order), then
    ``INSERT`` statements for the rows of ``alembic_version`` and ``hermes_meta``.
    """
    with engine.connect() as conn:
        statements = [
            sql
            for (sql,) in conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL "
                "AND name NOT LIKE 'sqlite%' ORDER BY rowid"
            )
        ]
        for table in (_VERSION_TABLE, "hermes_meta"):
            result = conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY 1")
            columns = ", ".join(f'"{name}"' for name in result.keys())
            statements.extend(
                f"INSERT INTO {table} ({columns}) VALUES ({', '.join(map(_sql_literal, row))})"
                for row in result
            )
    return statements


def ensure_schema(engine: Engine, lock_path: Path | None) -> None:
    """Bring the index behind ``engine`` to :data:`HEAD_REVISION`; return None.

    At head, only ``alembic_version`` is read (Alembic is not imported). An
    empty database or an older known revision is upgraded under a lock: an
    exclusive ``flock`` on ``lock_path`` for SQLite (``<index>.lock`` beside the
    file), ``pg_advisory_lock`` on PostgreSQL; the revision is checked again
    under the lock, so concurrent openers migrate once.

    Raises :class:`IndexVersionError` for an index written by a newer pyhermes
    (generation above :data:`HEAD_GENERATION`), :class:`SchemaUnknownError` for
    an unknown schema that is not newer, and :class:`sqlalchemy.exc.DatabaseError`
    when the database cannot be read (e.g. a file that is not SQLite).
    """
    with engine.connect() as conn:
        needed = needs_upgrade(conn, location_text(engine))
    if not needed:
        return
    if engine.dialect.name == "postgresql":
        with _pg_advisory_lock(engine):
            _upgrade_locked(engine)
    elif engine.dialect.name == "sqlite":
        with index_lock(lock_path):
            _upgrade_locked(engine)
    else:
        _upgrade_locked(engine)


def downgrade_to_base(engine: Engine) -> None:
    """Run every downgrade, leaving only an empty ``alembic_version`` table; return None.

    For tests and tools; imports Alembic. Raises what the migrations raise.
    """
    from alembic import command

    with engine.connect() as conn:
        command.downgrade(alembic_config(conn), "base")
        conn.commit()


def migration_script_revisions() -> list[str]:
    """Return the revisions of the shipped migration scripts, oldest first (imports Alembic)."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    return [script.revision for script in reversed(list(scripts.walk_revisions()))]


def migration_script_heads() -> list[str]:
    """Return the head revisions of the shipped migration scripts (imports Alembic)."""
    from alembic.script import ScriptDirectory

    return list(ScriptDirectory.from_config(alembic_config()).get_heads())
