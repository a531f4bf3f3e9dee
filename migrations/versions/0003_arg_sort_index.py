"""arg indexes: one in the order of a sort by an exec-arg key, one per run

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

Generation 3. ``ix_hermes_arg_key_num`` (key, num) becomes
``ix_hermes_arg_key_num_value_run`` (key, num, value, run_id): the order in
which a page of runs sorted by one exec-arg key is read (numbers by number,
then texts, the run id breaking ties), so that page 1 of 100,000 runs sorted by
``-lr`` walks the index and stops after the page instead of sorting every run.
Filters on ``key`` and ``num`` use it as they used the old index.

``ix_hermes_arg_run_key_num_value`` (run_id, key, num, value) answers "does
this run have that argument" from the index alone. Without it SQLite would
answer that question, asked once per run by a query for the first few matches,
by scanning the new index for every run having the key (it covers run_id too).

No rows change.

This file is frozen in time: it imports nothing from pyhermes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The schema generation this revision writes into hermes_meta (previous one + 1).
GENERATION = 3
PREVIOUS_GENERATION = 2

_meta = sa.table("hermes_meta", sa.column("key", sa.String), sa.column("value", sa.Text))


def _set_generation(value: int) -> None:
    op.execute(
        _meta.update()
        .where(_meta.c.key == "schema_generation")
        .values(value=str(value))
    )


def upgrade() -> None:
    """Replace the (key, num) index of hermes_arg by (key, num, value, run_id); add
    (run_id, key, num, value)."""
    op.drop_index("ix_hermes_arg_key_num", table_name="hermes_arg")
    op.create_index(
        "ix_hermes_arg_key_num_value_run", "hermes_arg", ["key", "num", "value", "run_id"]
    )
    op.create_index(
        "ix_hermes_arg_run_key_num_value", "hermes_arg", ["run_id", "key", "num", "value"]
    )
    _set_generation(GENERATION)


def downgrade() -> None:
    """Put the (key, num) index of revision 0001 back, as the only one of the two."""
    op.drop_index("ix_hermes_arg_run_key_num_value", table_name="hermes_arg")
    op.drop_index("ix_hermes_arg_key_num_value_run", table_name="hermes_arg")
    op.create_index("ix_hermes_arg_key_num", "hermes_arg", ["key", "num"])
    _set_generation(PREVIOUS_GENERATION)
