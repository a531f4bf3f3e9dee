"""``hermes sql``: one read-only SQL statement on the index."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from pyhermes.cli.common import (
    EXIT_CODES_QUERY,
    EXIT_INPUT,
    EXIT_OK,
    add_format_argument,
    add_index_argument,
    add_sync_argument,
    write_rows,
)


def register(command: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    """Add the ``sql`` command to the ``hermes`` parser (``command`` makes a subparser)."""
    sql = command(
        "sql",
        "run one read-only SQL statement on the index",
        """\
examples:
  hermes sql "SELECT identifier, final_mean FROM runs ORDER BY final_mean DESC LIMIT 5"
  hermes sql /data/runs "SELECT key, COUNT(*) FROM run_args GROUP BY key" --format csv
  hermes sql "SELECT r.identifier, a.num AS lr FROM runs r JOIN run_args a
              ON a.run_id = r.id WHERE a.key = '-lr'" --format json

Stable views: runs, run_args (run_id, position, key, value, num, raw) and
run_info (run_id, key, value). The statement sees the whole index, not only
the runs below ROOT. Statements that would write are refused (exit 1).

"""
        + EXIT_CODES_QUERY,
    )
    sql.add_argument(
        "root", nargs="?", default=".", metavar="ROOT", help="folder of the runs (default .)"
    )
    sql.add_argument("query", metavar="SQL", help="one SELECT / WITH / VALUES / EXPLAIN statement")
    add_format_argument(sql)
    add_index_argument(sql)
    add_sync_argument(sql)
    sql.set_defaults(handler=_cmd_sql, input_code=EXIT_INPUT)


def _cmd_sql(args: argparse.Namespace) -> int:
    """``hermes sql``: print the answer of one read-only statement; return 0.

    Raises ReadOnlyQueryError for a writing statement, QueryError for one the database rejects.
    """
    from pyhermes.storage import Catalog

    catalog = Catalog.open(args.root, index=args.index, sync=args.sync)
    result = catalog.sql(args.query)
    write_rows(result.columns, result.rows, args.format)
    return EXIT_OK

