"""initial schema: the hermes_ tables, their indexes and the stable views

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Generation 1. This file is frozen in time: it imports nothing from pyhermes and
carries its own copy of the view SQL, so later changes to the models or to
pyhermes.index.store.schema cannot change what it does.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The schema generation this revision writes into hermes_meta.
GENERATION = 1

# The stable views for ad-hoc SQL. Dialect-neutral: the column names that are
# SQL keywords are double-quoted, which SQLite and PostgreSQL both accept.
RUNS_VIEW = """
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

RUN_ARGS_VIEW = """
CREATE VIEW run_args AS
SELECT run_id, "position", "key", "value", num, raw
FROM hermes_arg
"""

RUN_INFO_VIEW = """
CREATE VIEW run_info AS
SELECT run_id, "key", "value"
FROM hermes_info
"""


def upgrade() -> None:
    """Create the tables, indexes and views, and record generation 1."""
    op.create_table(
        "hermes_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("parent", sa.Text(), nullable=False),
        sa.Column("identifier", sa.String(length=255), nullable=False),
        sa.Column("script_name", sa.String(length=255), nullable=True),
        sa.Column("experiment_name", sa.String(length=255), nullable=True),
        sa.Column("job_idx", sa.Integer(), nullable=True),
        sa.Column("commit_hash", sa.Text(), nullable=True),
        sa.Column("start_time", sa.DateTime(), nullable=True),
        sa.Column("end_time", sa.DateTime(), nullable=True),
        sa.Column("execution_time", sa.Float(), nullable=True),
        sa.Column("comments", sa.Text(), nullable=True),
        sa.Column("finished", sa.Boolean(), nullable=False),
        sa.Column("score_count", sa.Integer(), nullable=True),
        sa.Column("score_first", sa.Float(), nullable=True),
        sa.Column("score_last", sa.Float(), nullable=True),
        sa.Column("score_min", sa.Float(), nullable=True),
        sa.Column("score_max", sa.Float(), nullable=True),
        sa.Column("score_mean", sa.Float(), nullable=True),
        sa.Column("score_std", sa.Float(), nullable=True),
        sa.Column("score_argmax", sa.Integer(), nullable=True),
        sa.Column("score_final_mean", sa.Float(), nullable=True),
        sa.Column("score_best_window_mean", sa.Float(), nullable=True),
        sa.Column("info_size", sa.BigInteger(), nullable=True),
        sa.Column("info_mtime_ns", sa.BigInteger(), nullable=True),
        sa.Column("args_size", sa.BigInteger(), nullable=True),
        sa.Column("args_mtime_ns", sa.BigInteger(), nullable=True),
        sa.Column("scores_size", sa.BigInteger(), nullable=True),
        sa.Column("scores_mtime_ns", sa.BigInteger(), nullable=True),
        sa.Column("read_at", sa.Float(), nullable=False),
        sa.Column("settled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hermes_run"),
        sa.UniqueConstraint("path", name="uq_hermes_run_path"),
    )
    op.create_index("ix_hermes_run_parent", "hermes_run", ["parent"])
    op.create_index("ix_hermes_run_identifier", "hermes_run", ["identifier"])
    op.create_index("ix_hermes_run_start_time", "hermes_run", ["start_time"])
    op.create_index("ix_hermes_run_score_final_mean", "hermes_run", ["score_final_mean"])
    op.create_index("ix_hermes_run_settled", "hermes_run", ["settled"])

    op.create_table(
        "hermes_arg",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("num", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["hermes_run.id"],
            name="fk_hermes_arg_run_id_hermes_run",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "position", name="pk_hermes_arg"),
    )
    op.create_index("ix_hermes_arg_raw_run", "hermes_arg", ["raw", "run_id"])
    op.create_index("ix_hermes_arg_key_num", "hermes_arg", ["key", "num"])
    op.create_index("ix_hermes_arg_key_value", "hermes_arg", ["key", "value"])

    op.create_table(
        "hermes_info",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["hermes_run.id"],
            name="fk_hermes_info_run_id_hermes_run",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "key", name="pk_hermes_info"),
    )
    op.create_index("ix_hermes_info_key_value", "hermes_info", ["key", "value"])

    op.create_table(
        "hermes_problem",
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("seen_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("path", name="pk_hermes_problem"),
    )

    op.create_table(
        "hermes_folder",
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("listed_at", sa.Float(), nullable=False),
        sa.Column("subfolders", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("path", name="pk_hermes_folder"),
    )

    meta = op.create_table(
        "hermes_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_hermes_meta"),
    )
    op.bulk_insert(meta, [{"key": "schema_generation", "value": str(GENERATION)}])

    op.execute(RUNS_VIEW)
    op.execute(RUN_ARGS_VIEW)
    op.execute(RUN_INFO_VIEW)


def downgrade() -> None:
    """Drop the views, indexes and tables (the data is a cache, rebuilt from disk)."""
    op.execute("DROP VIEW run_info")
    op.execute("DROP VIEW run_args")
    op.execute("DROP VIEW runs")

    op.drop_table("hermes_meta")
    op.drop_table("hermes_folder")
    op.drop_table("hermes_problem")

    op.drop_index("ix_hermes_info_key_value", table_name="hermes_info")
    op.drop_table("hermes_info")

    op.drop_index("ix_hermes_arg_key_value", table_name="hermes_arg")
    op.drop_index("ix_hermes_arg_key_num", table_name="hermes_arg")
    op.drop_index("ix_hermes_arg_raw_run", table_name="hermes_arg")
    op.drop_table("hermes_arg")

    op.drop_index("ix_hermes_run_settled", table_name="hermes_run")
    op.drop_index("ix_hermes_run_score_final_mean", table_name="hermes_run")
    op.drop_index("ix_hermes_run_start_time", table_name="hermes_run")
    op.drop_index("ix_hermes_run_identifier", table_name="hermes_run")
    op.drop_index("ix_hermes_run_parent", table_name="hermes_run")
    op.drop_table("hermes_run")
