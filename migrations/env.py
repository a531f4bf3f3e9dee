"""Alembic environment of the pyhermes index.

Two ways in:

* from code (:func:`pyhermes.index.store.schema.ensure_schema`): an open SQLAlchemy
  connection is passed in ``config.attributes["connection"]``; the caller owns
  its transaction and commits it after the upgrade;
* from the ``alembic`` command line, with the top-level ``alembic.ini``: the
  database is ``sqlalchemy.url`` of that file, or ``-x url=...``.

``render_as_batch`` is on for SQLite (whose ALTER TABLE is limited), and column
types are compared by autogenerate.
"""

from __future__ import annotations

import logging.config
from typing import Any

from alembic import context
from sqlalchemy import engine_from_config, pool
from sqlalchemy.engine import Connection

from pyhermes.index.store.models import Base

config = context.config

# Logging is configured only when the command line read an ini file; code that
# migrates (ensure_schema) keeps its own logging untouched.
if config.config_file_name is not None and config.attributes.get("connection") is None:
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata

#: The views the migrations create; autogenerate must not mistake them for tables.
_VIEWS = frozenset({"runs", "run_args", "run_info", "run_tags", "run_notes"})


def _include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Return False for the stable views, which autogenerate must leave alone."""
    return not (type_ == "table" and name in _VIEWS)


def _options(dialect_name: str) -> dict[str, Any]:
    """Return the ``context.configure`` options shared by every mode."""
    return {
        "target_metadata": target_metadata,
        "render_as_batch": dialect_name == "sqlite",
        "compare_type": True,
        "include_object": _include_object,
    }


def _url() -> str:
    """Return the database URL of a command-line run: ``-x url=...`` or ``sqlalchemy.url``."""
    url = context.get_x_argument(as_dictionary=True).get("url")
    return url or config.get_main_option("sqlalchemy.url") or ""


def run_migrations_offline() -> None:
    """Emit the SQL of the migrations to the script output (``alembic upgrade --sql``)."""
    url = _url()
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_options(url.split(":", 1)[0].split("+", 1)[0]),
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_with(connection: Connection) -> None:
    """Run the migrations on ``connection``."""
    context.configure(connection=connection, **_options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the passed-in connection, or on a new one to the configured URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    section = dict(config.get_section(config.config_ini_section) or {})
    section["sqlalchemy.url"] = _url()
    engine = engine_from_config(section, prefix="sqlalchemy.", poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            _run_with(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
