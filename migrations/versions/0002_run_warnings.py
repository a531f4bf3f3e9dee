"""run warnings: what was irregular in a run that was read all the same

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Generation 2. ``hermes_run.warnings`` holds the notes of the last read of a run
(lines decoded by the Latin-1 fallback, NUL bytes dropped, lines skipped, a
scores file that could not be summarized), one per line, or NULL. A run that
cannot be read at all stays in ``hermes_problem``. Existing rows get NULL until
they are read again (``hermes-reindex --reread``); nothing else changes.

This file is frozen in time: it imports nothing from pyhermes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The schema generation this revision writes into hermes_meta (previous one + 1).
GENERATION = 2
PREVIOUS_GENERATION = 1

_meta = sa.table("hermes_meta", sa.column("key", sa.String), sa.column("value", sa.Text))


def _set_generation(value: int) -> None:
    op.execute(
        _meta.update()
        .where(_meta.c.key == "schema_generation")
        .values(value=str(value))
    )


def upgrade() -> None:
    """Add ``hermes_run.warnings``."""
    with op.batch_alter_table("hermes_run") as batch:
        batch.add_column(sa.Column("warnings", sa.Text(), nullable=True))
    _set_generation(GENERATION)


#: The tables whose rows reference hermes_run (ON DELETE CASCADE).
_CHILDREN = ("hermes_arg", "hermes_info")


def downgrade() -> None:
    """Drop ``hermes_run.warnings``, keeping every run and its args and info."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    # SQLite drops a column by rebuilding the table: the view reading it is dropped
    # and re-created around that (its SQL is that of 0001), and as foreign keys
    # cannot be switched off inside the transaction, dropping the old table would
    # cascade to the child rows: they are kept aside and put back.
    op.execute("DROP VIEW IF EXISTS runs")
    if sqlite:
        for table in _CHILDREN:
            op.execute(f"CREATE TEMPORARY TABLE keep_{table} AS SELECT * FROM {table}")
    with op.batch_alter_table("hermes_run") as batch:
        batch.drop_column("warnings")
    if sqlite:
        for table in _CHILDREN:
            op.execute(f"DELETE FROM {table}")
            op.execute(f"INSERT INTO {table} SELECT * FROM keep_{table}")
            op.execute(f"DROP TABLE keep_{table}")
    op.execute(_RUNS_VIEW)
    _set_generation(PREVIOUS_GENERATION)


# The runs view as revision 0001 created it (copied: this file is frozen in time).
_RUNS_VIEW = """
CREATE VIEW runs AS
SELECT
    id,
    path,
    identifier,
    script_name,
    experiment_name,
    job_idx,
    commit_hash,
    start_time,
    end_time,
    execution_time,
    comments,
    finished,
    score_count AS "count",
    score_first AS "first",
    score_last AS "last",
    score_min AS "min",
    score_max AS "max",
    score_mean AS "mean",
    score_std AS "std",
    score_argmax AS "argmax",
    score_final_mean AS "final_mean",
    score_best_window_mean AS "best_window_mean"
FROM hermes_run
"""
