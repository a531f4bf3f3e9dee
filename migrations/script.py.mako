"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Checklist (see migrations/README):
* bump GENERATION below and pyhermes.index.schema.HEAD_GENERATION together;
* set pyhermes.index.schema.HEAD_REVISION to this revision and add it to KNOWN_REVISIONS;
* keep this file frozen in time: copy any SQL it needs (views...), import no
  model from pyhermes; write the downgrade too.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}

#: The schema generation this revision writes into hermes_meta (previous one + 1).
GENERATION = 0  # FIXME: previous generation + 1
PREVIOUS_GENERATION = 0  # FIXME: the generation of down_revision

_meta = sa.table("hermes_meta", sa.column("key", sa.String), sa.column("value", sa.Text))


def _set_generation(value: int) -> None:
    op.execute(
        _meta.update()
        .where(_meta.c.key == "schema_generation")
        .values(value=str(value))
    )


def upgrade() -> None:
    """Upgrade the schema to this revision."""
    ${upgrades if upgrades else "pass"}
    _set_generation(GENERATION)


def downgrade() -> None:
    """Downgrade the schema to the previous revision."""
    ${downgrades if downgrades else "pass"}
    _set_generation(PREVIOUS_GENERATION)
