"""``hermes ls``: the runs below ROOT that match a filter, as a table, CSV or JSON."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pyhermes import present
from pyhermes.cli.common import (
    EXIT_CODES_QUERY,
    EXIT_INPUT,
    EXIT_OK,
    TABLE_FORMATS,
    add_catalog_arguments,
    add_root_argument,
    non_negative_int,
    write_rows,
)
from pyhermes.errors import QueryError


def register(command: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    """Add the ``ls`` command to the ``hermes`` parser (``command`` makes a subparser)."""
    ls = command(
        "ls",
        "list the runs below ROOT that match a filter",
        """\
examples:
  hermes ls /data/runs
  hermes ls --where="--doubledqn and -lr < 0.01 and final_mean > 200" --sort=-final_mean
  hermes ls --where="commit_hash startswith ab12" --limit 5 --format json
  hermes ls --columns=identifier,final_mean,-lr,-gamma --format csv > runs.csv

Columns: run fields (identifier, path, script_name, experiment_name, job_idx,
commit_hash, comments, start_time, end_time, execution_time, finished), score
summaries (count, first, last, min, max, mean, std, argmax, final_mean,
best_window_mean), args (all arguments as one text), info.KEY (a hermes.info
value) and exec-arg keys (-lr, --doubledqn, or a positional like train).
Default (the same as the runs page of hermes serve): identifier, start_time,
finished, script_name, experiment_name, one column per exec-arg key of the runs
shown, count, final_mean, best_window_mean and max. Sort keys: a field, a summary or an exec-arg key; -final_mean or
final_mean:desc sorts descending (default: start_time). The column tags gives a
run's tags (hermes tag), comma-separated.

With --archived, the runs archived below ROOT (in ROOT/.archive, by hermes
archive) are listed instead: read from disk, filtered and sorted in memory, with
the same columns; --index and --sync do not apply.

"""
        + EXIT_CODES_QUERY,
    )
    add_root_argument(ls)
    ls.add_argument(
        "--where", metavar="EXPR", default=None, help="filter expression; write --where=EXPR"
    )
    ls.add_argument(
        "--sort", metavar="KEY[,KEY]", default="start_time", help="sort keys (default start_time)"
    )
    ls.add_argument(
        "--limit", metavar="N", type=non_negative_int, default=None, help="at most N runs"
    )
    ls.add_argument(
        "--columns", metavar="COL,...", default=None, help="columns to show, comma-separated"
    )
    ls.add_argument(
        "--archived", action="store_true", help="list the runs archived in ROOT/.archive instead"
    )
    add_catalog_arguments(ls, TABLE_FORMATS)
    ls.set_defaults(handler=_cmd_ls, input_code=EXIT_INPUT)


def _cmd_ls(args: argparse.Namespace) -> int:
    """``hermes ls``: print the matching runs; return 0.

    The table is the one the runs page shows (:meth:`pyhermes.Catalog.table`).

    Raises QueryError for a bad expression, sort key or column, FileNotFoundError
    for a missing ROOT.
    """
    from pyhermes.index.query.grammar import as_filter
    from pyhermes.storage import Catalog

    condition = as_filter(args.where)
    sort_keys = present.sort_keys(args.sort, default="start_time")
    try:
        columns = present.check_columns(args.columns)
    except QueryError as error:
        raise QueryError(f"--columns: {error}") from None
    if args.archived:
        names, rows = _archived_table(args.root, condition, columns, sort_keys, args.limit)
        write_rows(names, rows, args.format)
        return EXIT_OK
    catalog = Catalog.open(args.root, index=args.index, sync=args.sync)
    table = catalog.table(condition, columns, sort_keys, args.limit)
    write_rows(table.columns, table.rows, args.format)
    return EXIT_OK


def _archived_table(
    root: str, condition: Any, columns: list[str] | None, sort_keys: list[str], limit: int | None
) -> tuple[list[str], list[list[Any]]]:
    """The columns and rows of the archived runs below ``root`` matching ``condition``, in
    the order of ``sort_keys``, the first ``limit`` (the columns of a hand-built list,
    :func:`pyhermes.present.list_table`, when ``columns`` is ``None``).

    Raises FileNotFoundError for a missing ROOT.
    """
    from pyhermes.curation import archived_runs

    runs = _sorted(list(archived_runs(root, condition)), sort_keys)
    shown = runs if limit is None else runs[:limit]
    if columns is None:
        table = present.list_table(shown, len(shown))
        return table.columns, table.rows
    getters = [present.column_getter(name) for name in columns]
    return columns, [[getter(run) for getter in getters] for run in shown]


def _sorted(runs: list[Any], sort_keys: list[str]) -> list[Any]:
    """``runs`` in the order of ``sort_keys``, as SQL orders them: runs without a value last
    in either direction, numbers before texts."""
    from pyhermes.index.query.select import parse_sort_key

    for key in reversed(sort_keys):
        name, descending = parse_sort_key(key)
        getter = present.column_getter(name)
        keyed = [(_sort_value(getter(run)), run) for run in runs]
        with_value = [item for item in keyed if item[0] is not None]
        with_value.sort(key=lambda item: item[0], reverse=descending)
        with_value.sort(key=lambda item: item[0][0])  # numbers, then times, then texts
        runs = [run for _, run in with_value] + [run for value, run in keyed if value is None]
    return runs


def _sort_value(value: Any) -> tuple[int, Any] | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    if isinstance(value, (bool, int, float)):
        return (0, float(value))
    if isinstance(value, datetime):
        return (1, value)
    return (2, str(value))
