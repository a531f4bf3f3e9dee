"""run tags and notes: the curation files of a run, and their views

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Generation 5. Two tables and their stable views:

* ``hermes_tag`` (run_id, tag): one row per tag of a run (its ``hermes.tags``),
  keyed by (run_id, tag), with the index ``ix_hermes_tag_tag_run`` (tag, run_id)
  that finds the runs having a tag from the index alone; view ``run_tags``
  (run_id, tag);
* ``hermes_note`` (run_id, position, time, text): one row per note of a run (its
  ``hermes.notes``, ``position`` its 0-based order there, ``time`` NULL when the
  file does not say); view ``run_notes`` (run_id, time, text).

Both reference ``hermes_run.id`` ON DELETE CASCADE. No existing row changes: the
tables start empty (no run had these files before this revision).

The two files join a run's signature (what a sync compares to notice a change):
``hermes_run`` gains ``tags_size``, ``tags_mtime_ns``, ``notes_size`` and
``notes_mtime_ns`` (BIGINT, NULL when the file is missing). Existing rows get NULL,
which is what a run without the files has, so nothing is read again for them;
a run that already had the files (written by a newer pyhermes into an older
index) differs and is read again by the next full sync.

This file is frozen in time: it imports nothing from pyhermes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The schema generation this revision writes into hermes_meta (previous one + 1).
GENERATION = 5
PREVIOUS_GENERATION = 4

_meta = sa.table("hermes_meta", sa.column("key", sa.String), sa.column("value", sa.Text))

# The views (copied: this file is frozen in time). Dialect-neutral: the column names
# that are SQL keywords are double-quoted, which SQLite and PostgreSQL both accept.
RUN_TAGS_VIEW = """
CREATE VIEW run_tags AS
SELECT run_id, tag
FROM hermes_tag
"""

RUN_NOTES_VIEW = """
CREATE VIEW run_notes AS
SELECT run_id, "time", "text"
FROM hermes_note
"""


def _set_generation(value: int) -> None:
    op.execute(
        _meta.update()
        .where(_meta.c.key == "schema_generation")
        .values(value=str(value))
    )


#: The signature columns of the two files, added to ``hermes_run``.
_SIGNATURE = ("tags_size", "tags_mtime_ns", "notes_size", "notes_mtime_ns")


def upgrade() -> None:
    """Create ``hermes_tag``, ``hermes_note``, the views ``run_tags``, ``run_notes`` and the
    four signature columns of ``hermes_run``."""
    # Plain ADD COLUMNs (nullable, no default): instant on both databases, whatever the size.
    for name in _SIGNATURE:
        op.add_column("hermes_run", sa.Column(name, sa.BigInteger(), nullable=True))
    op.create_table(
        "hermes_tag",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["hermes_run.id"],
            name="fk_hermes_tag_run_id_hermes_run",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "tag", name="pk_hermes_tag"),
    )
    op.create_index("ix_hermes_tag_tag_run", "hermes_tag", ["tag", "run_id"])

    op.create_table(
        "hermes_note",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("time", sa.DateTime(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["hermes_run.id"],
            name="fk_hermes_note_run_id_hermes_run",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "position", name="pk_hermes_note"),
    )

    op.execute(RUN_TAGS_VIEW)
    op.execute(RUN_NOTES_VIEW)
    _set_generation(GENERATION)


def downgrade() -> None:
    """Drop the views, the two tables (their rows are a cache of the run directories) and the
    four signature columns."""
    op.execute("DROP VIEW run_notes")
    op.execute("DROP VIEW run_tags")
    op.drop_table("hermes_note")
    op.drop_index("ix_hermes_tag_tag_run", table_name="hermes_tag")
    op.drop_table("hermes_tag")
    # Plain DROP COLUMNs (SQLite >= 3.35 drops an unindexed column in place, without
    # rebuilding the table, so the runs' args and info rows are untouched).
    for name in reversed(_SIGNATURE):
        op.drop_column("hermes_run", name)
    _set_generation(PREVIOUS_GENERATION)
