"""``hermes sql``: one read-only SQL statement on the index."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from pyhermes.cli.common import (
    EXIT_CODES_QUERY,
    EXIT_INPUT,
    EXIT_OK,
    TABLE_FORMATS,
    add_catalog_arguments,
    add_root_argument,
    positive_int,
    write_rows,
)
from pyhermes.cli.serve import DEFAULT_SQL_TIMEOUT, positive_seconds


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
the runs below ROOT. Statements that would write are refused (exit 1), and
one running longer than --timeout is stopped (exit 1).

"""
        + EXIT_CODES_QUERY,
    )
    add_root_argument(sql)
    sql.add_argument("query", metavar="SQL", help="one SELECT / WITH / VALUES / EXPLAIN statement")
    sql.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_SQL_TIMEOUT,
        metavar="SECONDS",
        help=f"stop the statement after this long (default {DEFAULT_SQL_TIMEOUT:g})",
    )
    sql.add_argument(
        "--max-rows",
        type=positive_int,
        default=None,
        metavar="N",
        help="print at most the first N rows (default: every row); a note on stderr says when "
        "there were more",
    )
    add_catalog_arguments(sql, TABLE_FORMATS)
    sql.set_defaults(handler=_cmd_sql, input_code=EXIT_INPUT)


def _cmd_sql(args: argparse.Namespace) -> int:
    """``hermes sql``: print the answer of one read-only statement; return 0.

    Raises ReadOnlyQueryError for a writing statement, QueryError for one the database rejects.
    """
    from pyhermes.storage import Catalog

    catalog = Catalog.open(args.root, index=args.index, sync=args.sync)
    result = catalog.sql(args.query, timeout=args.timeout, limit=args.max_rows)
    write_rows(result.columns, result.rows, args.format)
    if result.truncated:
        print(f"hermes sql: the first {len(result.rows):,} rows; the statement has more", file=sys.stderr)
    return EXIT_OK

