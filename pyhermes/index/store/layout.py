"""The one definition of the index's tables, as plain data (no SQLAlchemy).

:mod:`pyhermes.index.store.models` builds the SQLAlchemy tables (used to write, and
by the migrations) from :data:`TABLES`; :mod:`pyhermes.index.query.filters` builds
the SQL text of every read from the same names, so a read needs only the
standard library's ``sqlite3`` (see :mod:`pyhermes.index.store.sql_reader`). Paths are
POSIX paths relative to the index root.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Column", "TableSpec", "TABLES", "SUMMARY_COLUMNS", "RUN", "ARG", "INFO", "TAG", "NOTE",
           "PROBLEM", "FOLDER", "META", "CHANGE_TOKEN_KEY", "column_names"]


class Column(NamedTuple):
    """One column: ``kind`` is int, bigint, float, bool, text, string or datetime."""

    name: str
    kind: str
    nullable: bool = True
    primary_key: bool = False
    indexed: bool = False
    unique: bool = False
    references: str | None = None  # "table.column", deleted with it (ON DELETE CASCADE)
    default: str | None = None  # a Python-side default for inserts that leave it out


class TableSpec(NamedTuple):
    name: str
    columns: tuple[Column, ...]
    #: Composite indexes: (name, column names).
    indexes: tuple[tuple[str, tuple[str, ...]], ...] = ()


#: Score-summary fields and the ``hermes_run`` column holding each.
SUMMARY_COLUMNS = {
    "count": "score_count",
    "first": "score_first",
    "last": "score_last",
    "min": "score_min",
    "max": "score_max",
    "mean": "score_mean",
    "std": "score_std",
    "argmax": "score_argmax",
    "final_mean": "score_final_mean",
    "best_window_mean": "score_best_window_mean",
}

_SUMMARY_KINDS = {"count": "int", "argmax": "int"}

RUN = TableSpec(
    "hermes_run",
    (
        Column("id", "int", nullable=False, primary_key=True),
        Column("path", "text", nullable=False, unique=True),
        Column("parent", "text", nullable=False),
        Column("identifier", "string", nullable=False, indexed=True),
        Column("script_name", "string"),
        Column("experiment_name", "string"),
        Column("job_idx", "int"),
        Column("commit_hash", "text"),
        Column("start_time", "datetime", indexed=True),
        Column("end_time", "datetime"),
        Column("execution_time", "float"),
        Column("comments", "text"),
        Column("finished", "bool", nullable=False),
        *(
            Column(column, _SUMMARY_KINDS.get(name, "float"), indexed=name == "final_mean")
            for name, column in SUMMARY_COLUMNS.items()
        ),
        # What sync compares to detect change: sizes and mtimes (ns) of the files read.
        Column("info_size", "bigint"),
        Column("info_mtime_ns", "bigint"),
        Column("args_size", "bigint"),
        Column("args_mtime_ns", "bigint"),
        Column("scores_size", "bigint"),
        Column("scores_mtime_ns", "bigint"),
        Column("read_at", "float", nullable=False),
        Column("settled", "bool", nullable=False, indexed=True),
        # What was irregular in the files when the run was last read, one note per
        # line (see pyhermes.rundir.decode_text), NULL when nothing was.
        Column("warnings", "text"),
        # The signature of the curation files (revision 0005; after the columns above,
        # where ADD COLUMN puts them).
        Column("tags_size", "bigint"),
        Column("tags_mtime_ns", "bigint"),
        Column("notes_size", "bigint"),
        Column("notes_mtime_ns", "bigint"),
    ),
    # A folder's runs in path order from the index alone (load_all's list: no sort).
    (("ix_hermes_run_parent_path", ("parent", "path")),),
)

#: One line of a run's ``exec_arguments``: raw, and parsed into key and value.
ARG = TableSpec(
    "hermes_arg",
    (
        Column("run_id", "int", nullable=False, primary_key=True, references="hermes_run.id"),
        Column("position", "int", nullable=False, primary_key=True),
        Column("raw", "text", nullable=False),
        Column("key", "string", nullable=False),
        Column("value", "text"),
        Column("num", "float"),
    ),
    (
        ("ix_hermes_arg_raw_run", ("raw", "run_id")),
        # The order of a sort by one key (see index.query.select_runs_by_arg).
        ("ix_hermes_arg_key_num_value_run", ("key", "num", "value", "run_id")),
        # "Does this run have that argument", from the index alone: else SQLite probes
        # with the index above, which covers run_id too, scanning every run with the key.
        ("ix_hermes_arg_run_key_num_value", ("run_id", "key", "num", "value")),
        ("ix_hermes_arg_key_value", ("key", "value")),
    ),
)

#: One ``key:value`` of a run's ``hermes.info`` (the last value of a repeated key).
INFO = TableSpec(
    "hermes_info",
    (
        Column("run_id", "int", nullable=False, primary_key=True, references="hermes_run.id"),
        Column("key", "string", nullable=False, primary_key=True),
        Column("value", "text", nullable=False),
    ),
    (("ix_hermes_info_key_value", ("key", "value")),),
)

#: One tag of a run (a line of its ``hermes.tags``).
TAG = TableSpec(
    "hermes_tag",
    (
        Column("run_id", "int", nullable=False, primary_key=True, references="hermes_run.id"),
        Column("tag", "string", nullable=False, primary_key=True),
    ),
    # The runs having a tag, from the index alone (the key answers "the tags of a run").
    (("ix_hermes_tag_tag_run", ("tag", "run_id")),),
)

#: One note of a run (a line of its ``hermes.notes``), ``position`` its 0-based order there.
NOTE = TableSpec(
    "hermes_note",
    (
        Column("run_id", "int", nullable=False, primary_key=True, references="hermes_run.id"),
        Column("position", "int", nullable=False, primary_key=True),
        Column("time", "datetime"),
        Column("text", "text", nullable=False),
    ),
)

#: A run directory that could not be read, with the reason.
PROBLEM = TableSpec(
    "hermes_problem",
    (
        Column("path", "text", nullable=False, primary_key=True),
        Column("reason", "text", nullable=False),
        Column("seen_at", "float", nullable=False),
    ),
)

#: A folder whose listing the index knows (for the quick sync's mtime shortcut).
FOLDER = TableSpec(
    "hermes_folder",
    (
        Column("path", "text", nullable=False, primary_key=True),
        Column("mtime_ns", "bigint", nullable=False),
        Column("listed_at", "float", nullable=False),
        Column("subfolders", "text", nullable=False, default=""),
    ),
)

#: Facts about the index itself: ``schema_generation``, ``root``, ``change_token``.
META = TableSpec(
    "hermes_meta",
    (
        Column("key", "string64", nullable=False, primary_key=True),
        Column("value", "text", nullable=False),
    ),
)

TABLES: tuple[TableSpec, ...] = (RUN, ARG, INFO, TAG, NOTE, PROBLEM, FOLDER, META)

#: The ``hermes_meta`` key of the token that changes whenever the stored runs change.
CHANGE_TOKEN_KEY = "change_token"


def column_names(table: TableSpec) -> tuple[str, ...]:
    """Return the column names of ``table``, in order."""
    return tuple(column.name for column in table.columns)

