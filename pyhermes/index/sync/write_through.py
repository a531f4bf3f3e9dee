"""The write-throughs: one run stored in the index as soon as it is written, or dropped once erased.

:meth:`pyhermes.Experiment.create`, ``finish`` and ``store_comments`` store the run
they wrote (:func:`store_runs`); ``erase`` drops it (:func:`forget_run`), so the
index answers for it before the next sync. Each owns one short transaction,
retried like a sync's (:func:`~pyhermes.index.sync.transaction.run_in_transaction`),
and its writes are keyed by the run's path
(:func:`~pyhermes.index.sync.writes.store_read`): they commute with syncs and
other write-throughs of the same runs.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, delete, select

from pyhermes.index.rules import SETTLE_SECONDS
from pyhermes.index.store.models import arg_table, info_table, run_table
from pyhermes.index.sync.run_reading import read_runs
from pyhermes.index.sync.transaction import bump_change_token, run_in_transaction
from pyhermes.index.sync.writes import store_read

__all__ = ["store_runs", "forget_run"]


def store_runs(engine: Engine, root: Path, paths: list[str], settle_seconds: float = SETTLE_SECONDS) -> None:
    """Read the runs at ``paths`` (stored paths relative to ``root``) and store them in the index
    of ``engine``, in one transaction (retried, see :func:`run_in_transaction`): the
    write-through of runs just written. Keyed by path, it commutes with syncs and other
    write-throughs of the same runs.

    Raises:
        IndexBusyError: the index stayed locked past the limit.
    """
    results = read_runs(str(root), paths, settle_seconds)

    def work(conn: Connection) -> None:
        store_read(conn, results)
        bump_change_token(conn)

    run_in_transaction(engine, work, "write-through")


def forget_run(engine: Engine, path: str) -> None:
    """Drop the run stored at ``path`` (relative to the index root) from the index of ``engine``,
    with its args and info, in one transaction (retried, see :func:`run_in_transaction`).

    Raises:
        IndexBusyError: the index stayed locked past the limit.
    """

    def work(conn: Connection) -> None:
        run_id = conn.execute(select(run_table.c.id).where(run_table.c.path == path)).scalar()
        if run_id is not None:
            conn.execute(delete(arg_table).where(arg_table.c.run_id == run_id))
            conn.execute(delete(info_table).where(info_table.c.run_id == run_id))
            conn.execute(delete(run_table).where(run_table.c.id == run_id))
        bump_change_token(conn)

    run_in_transaction(engine, work, "removal")
