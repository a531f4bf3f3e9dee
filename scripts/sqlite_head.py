"""Write pyhermes/index/store/sqlite_head.py: the SQLite schema the migrations build, as statements.

A new SQLite index is created from those statements (no Alembic import, one
transaction); tests/test_migrations.py fails while the file differs from what
the migrations build. Run after adding or changing a migration:

    python scripts/sqlite_head.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from sqlalchemy import create_engine

from pyhermes.index.store import schema

TARGET = Path(__file__).resolve().parents[1] / "pyhermes" / "index" / "store" / "sqlite_head.py"

HEADER = '''"""The SQLite schema at revision {revision}, as the migrations build it (generated: do not edit).

A new SQLite index is created by running :data:`STATEMENTS` in one transaction,
without importing Alembic (a first build then starts ~0.2 s sooner). Written by
``python scripts/sqlite_head.py`` from a database that ``alembic upgrade head``
built; tests/test_migrations.py checks that the two still agree.
"""

from __future__ import annotations

#: The revision these statements create.
REVISION = {revision!r}

#: The statements, in order: tables, indexes and views as SQLite stores them, then the rows
#: of ``alembic_version`` and ``hermes_meta``.
STATEMENTS: tuple[str, ...] = (
'''


def render(statements: list[str]) -> str:
    """The text of the module holding ``statements``."""
    body = "".join(f"    {statement!r},\n" for statement in statements)
    return HEADER.format(revision=schema.HEAD_REVISION) + body + ")\n"


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'head.sqlite'}")
        try:
            schema.upgrade_with_alembic(engine)
            statements = schema.sqlite_schema_statements(engine)
        finally:
            engine.dispose()
    TARGET.write_text(render(statements))
    print(f"wrote {TARGET} ({len(statements)} statements, revision {schema.HEAD_REVISION})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
