"""The writes of a sync, each keyed so that concurrent writers of the same runs commute.

Every write names the rows it decided on: runs are upserted by path (``INSERT
... ON CONFLICT (path) DO UPDATE``, the freshest read winning by ``read_at``,
:func:`store_read`), deleted by the ids read with their paths
(:func:`delete_runs`, :func:`remove_runs`), and marked settled only while they
still hold the signature that was checked (:func:`settle_runs`). A run read
again has its args and info rows rewritten only if they changed
(:func:`replace_children`). On SQLite, :func:`execute_many` hands the rows to the
driver's ``executemany`` (a first build's inserts cost less than SQLAlchemy's
processing of each row).

These functions run inside a transaction the caller owns
(:func:`pyhermes.index.sync.transaction.run_in_transaction`); they decide
nothing: :class:`pyhermes.index.sync.syncer.Syncer` does.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, insert, select, update

from pyhermes.index.rules import SIGNATURE_COLUMNS, Signature
from pyhermes.index.store.models import (
    arg_table,
    folder_table,
    info_table,
    note_table,
    problem_table,
    run_table,
    tag_table,
)
from pyhermes.index.sync.run_reading import (
    ARG_FIELDS,
    INFO_FIELDS,
    NOTE_FIELDS,
    TAG_FIELDS,
    ReadFailure,
    ReadResult,
    RunRecord,
    problem_reason,
)

__all__ = [
    "Stored",
    "store_read",
    "settle_runs",
    "replace_children",
    "remove_runs",
    "delete_runs",
    "upsert",
    "execute_many",
    "chunks",
    "FROM_PATH",
    "CHILD_TABLES",
]


@dataclass
class Stored:
    """What :func:`store_read` wrote: counts and notes for the sync's report, and whether the
    runs of the index changed (the caller then bumps the change token)."""

    added: int = 0
    updated: int = 0
    problems: int = 0
    problem_paths: dict[str, str] = field(default_factory=dict)
    warning_paths: dict[str, list[str]] = field(default_factory=dict)
    changed: bool = False


def store_read(conn: Connection, results: list[ReadResult], new: set[str] | None = None) -> Stored:
    """Write the runs read by :func:`~pyhermes.index.sync.run_reading.read_runs`: records upserted
    by path, failures as problems; return what was written.

    The freshest read wins, whatever the order the writers commit in: a record
    replaces a stored row only if it was read no earlier than that row
    (``read_at``), and a failure removes a stored row only if that row was read
    earlier. ``new`` names the paths the caller did not find in the index (for
    the report's ``added``); the writes do not depend on it.
    """
    stored_runs = Stored()
    records = sorted(
        ((path, outcome) for path, outcome in results if isinstance(outcome, RunRecord)),
        key=lambda result: result[0],
    )
    failures = sorted(
        ((path, outcome) for path, outcome in results if isinstance(outcome, ReadFailure)),
        key=lambda result: result[0],
    )
    for chunk in chunks(records, 1000):
        paths = [path for path, _ in chunk]
        upsert(
            conn, run_table, ["path"], [record.row for _, record in chunk], fresher="read_at",
            kept=FROM_PATH,
        )
        stored = {
            path: (run_id, read_at)
            for path, run_id, read_at in conn.execute(
                select(run_table.c.path, run_table.c.id, run_table.c.read_at).where(
                    run_table.c.path.in_(paths)
                )
            )
        }
        # The rows this write holds (not those a fresher read of another writer keeps).
        mine = [
            (stored[path][0], record)
            for path, record in chunk
            if path in stored and stored[path][1] == record.row["read_at"]
        ]
        replace_children(conn, mine)
        conn.execute(delete(problem_table).where(problem_table.c.path.in_(paths)))
        for path, record in chunk:
            if record.row["warnings"] is not None:
                stored_runs.warning_paths[path] = record.row["warnings"].split("\n")
            if new is not None and path in new:
                stored_runs.added += 1
            else:
                stored_runs.updated += 1
        if mine:
            stored_runs.changed = True
    for chunk in chunks(failures, 500):
        failed = dict(chunk)
        paths = list(failed)
        fresher = {
            path
            for path, read_at in conn.execute(
                select(run_table.c.path, run_table.c.read_at).where(run_table.c.path.in_(paths))
            )
            if read_at > failed[path].read_at
        }
        stale = [path for path in paths if path not in fresher]
        if delete_runs(conn, select(run_table.c.id).where(run_table.c.path.in_(stale))):
            stored_runs.changed = True
        rows = [
            {"path": path, "reason": problem_reason(failure.error), "seen_at": failure.read_at}
            for path, failure in chunk
            if path not in fresher
        ]
        upsert(conn, problem_table, ["path"], rows)
        for row in rows:
            stored_runs.problems += 1
            stored_runs.problem_paths[row["path"]] = row["reason"]
    return stored_runs


def settle_runs(conn: Connection, newly_settled: list[tuple[str, Signature]]) -> None:
    """Mark runs settled, each only if its row still holds the signature that was checked."""
    condition = and_(
        run_table.c.path == bindparam("b_path"),
        *(
            run_table.c[name].is_not_distinct_from(bindparam(f"b_{name}"))
            for name in SIGNATURE_COLUMNS
        ),
    )
    params = [
        {"b_path": path, **{f"b_{name}": value for name, value in zip(SIGNATURE_COLUMNS, sig, strict=True)}}
        for path, sig in sorted(newly_settled)
    ]
    statement = update(run_table).where(condition).values(settled=True)
    for chunk in chunks(params, 1000):
        conn.execute(statement, chunk)


def replace_children(conn: Connection, pairs: list[tuple[int, RunRecord]]) -> None:
    """Store the args, info, tags and notes of the runs ``(run_id, record)``, rewriting only
    what changed.

    A run read again is most often unchanged but for its scores (a job still
    writing, or files touched): its stored args, info, tags and notes rows are compared
    with the new ones and left alone when equal, so a full sync after a few
    runs changed does not rewrite (and dirty the index pages of) their rows.
    """
    ids = [run_id for run_id, _ in pairs]
    for table, fields, order, new_rows in (
        (arg_table, ARG_FIELDS, "position", lambda record: record.args),
        (info_table, INFO_FIELDS, "key", lambda record: sorted(record.info)),
        (tag_table, TAG_FIELDS, "tag", lambda record: sorted(record.tags)),
        (note_table, NOTE_FIELDS, "position", lambda record: record.notes),
    ):
        stored: dict[int, list[tuple[Any, ...]]] = {}
        columns = [table.c.run_id, *(table.c[name] for name in fields)]
        for chunk in chunks(ids, 1000):
            rows = conn.execute(
                select(*columns).where(table.c.run_id.in_(chunk)).order_by(table.c.run_id, table.c[order])
            )
            for run_id, *values in rows:
                stored.setdefault(run_id, []).append(tuple(values))
        for values in stored.values():
            values.sort()  # as Python orders them (a server's collation may order text otherwise)
        stale: list[int] = []
        inserts: list[tuple[Any, ...]] = []
        for run_id, record in pairs:
            wanted = new_rows(record)
            before = stored.get(run_id)
            if before == wanted or (before is None and not wanted):
                continue
            if before is not None:
                stale.append(run_id)
            inserts.extend([(run_id, *row) for row in wanted])
        for chunk in chunks(stale, 500):
            conn.execute(delete(table).where(table.c.run_id.in_(chunk)))
        execute_many(conn, insert(table), ("run_id", *fields), inserts)

# ------------------------------------------------------------------ index reads


def remove_runs(conn: Connection, removed: list[tuple[str, int]], gone_folders: Iterable[str]) -> int:
    """Delete the runs ``removed`` ((path, id) as read: a run stored again meanwhile is not
    touched) and every run and folder listing below the ``gone_folders``; return how many runs."""
    count = 0
    for chunk in chunks(sorted(removed), 500):
        ids = [run_id for _, run_id in chunk]
        gone = select(run_table.c.id).where(
            run_table.c.id.in_(ids), run_table.c.path.in_([p for p, _ in chunk])
        )
        count += delete_runs(conn, gone)
    for folder in sorted(gone_folders):
        below = (run_table.c.parent == folder) | run_table.c.parent.startswith(
            folder + "/", autoescape=True
        )
        count += delete_runs(conn, select(run_table.c.id).where(below))
        conn.execute(
            delete(folder_table).where(
                (folder_table.c.path == folder)
                | folder_table.c.path.startswith(folder + "/", autoescape=True)
            )
        )
    return count


#: The tables of a run's children (rows keyed by ``run_id``), deleted with the run.
CHILD_TABLES = (arg_table, info_table, tag_table, note_table)


def delete_runs(conn: Connection, ids: Any) -> int:
    """Delete the runs whose ids the select ``ids`` gives, with their args, info, tags and
    notes; return how many."""
    id_list = [run_id for (run_id,) in conn.execute(ids)]
    if not id_list:
        return 0
    deleted = 0
    for chunk in chunks(sorted(id_list), 500):
        for table in CHILD_TABLES:
            conn.execute(delete(table).where(table.c.run_id.in_(chunk)))
        deleted += conn.execute(delete(run_table).where(run_table.c.id.in_(chunk))).rowcount or 0
    return deleted


#: The indexed ``hermes_run`` columns that follow from the stored path alone: a run stored
#: again keeps them, so SQLite leaves the indexes on them untouched (a full sync after 1%
#: of 100,000 runs changed wrote 20 MiB instead of 36 MiB). Not the layout names: they
#: come from the absolute path, which changes when a tree moves with its index.
FROM_PATH = ("parent", "identifier")


def upsert(
    conn: Connection,
    table: Any,
    keys: list[str],
    rows: list[dict[str, Any]],
    fresher: str | None = None,
    kept: Sequence[str] = (),
) -> None:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE`` the ``rows`` (all with the same columns).

    With ``fresher``, a stored row is updated only where its ``fresher`` column is
    not greater than the new row's. The ``kept`` columns are inserted, never updated.
    """
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    statement = dialect_insert(table)
    names = [column.name for column in table.columns if column.name in rows[0]]
    columns = [name for name in names if name not in keys and name not in kept]
    if columns:
        statement = statement.on_conflict_do_update(
            index_elements=keys,
            set_={name: statement.excluded[name] for name in columns},
            where=None if fresher is None else table.c[fresher] <= statement.excluded[fresher],
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=keys)
    values = operator.itemgetter(*names)
    execute_many(conn, statement, names, [values(row) for row in rows] if len(names) > 1 else [(row[names[0]],) for row in rows])


def execute_many(
    conn: Connection, statement: Any, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Execute the INSERT ``statement`` once per row of ``rows`` (values of ``columns``, in order).

    On SQLite the statement is compiled once and the rows go to the driver's
    ``executemany`` as tuples, only the columns whose type needs it (datetimes)
    converted: SQLAlchemy's processing of each row's parameters cost more than
    SQLite's insert itself in a first build (~13 us a row). Elsewhere it is
    SQLAlchemy's ``executemany`` (batched multi-row VALUES on PostgreSQL).
    """
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(statement, [dict(zip(columns, row, strict=True)) for row in rows])
        return
    dialect = conn.dialect
    compiled = statement.compile(dialect=dialect, column_keys=list(columns))
    order = [columns.index(name) for name in compiled.positiontup or ()]
    table = statement.table
    converters = [
        (at, process)
        for at, process in (
            (at, dialect.type_descriptor(table.c[columns[source]].type).bind_processor(dialect))
            for at, source in enumerate(order)
        )
        if process is not None
    ]
    if order != list(range(len(columns))) or not isinstance(rows[0], tuple):
        rows = [tuple(row[source] for source in order) for row in rows]
    if converters:  # column by column: map() runs each converter without a Python loop
        columns = list(zip(*rows, strict=True))
        for at, process in converters:
            columns[at] = tuple(map(process, columns[at]))
        rows = list(zip(*columns, strict=True))
    conn.exec_driver_sql(compiled.string, rows)


def chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    """``items`` in consecutive lists of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
