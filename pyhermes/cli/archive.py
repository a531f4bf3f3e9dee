"""``hermes archive`` and ``hermes unarchive``: move matching runs to ``ROOT/.archive/`` and back.

Thin over :func:`pyhermes.curation.archive_runs` and
:func:`~pyhermes.curation.unarchive_runs`; :func:`print_moves` also prints what
``hermes gc --yes`` moved.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pyhermes.cli.common import (
    EXIT_CODES_CURATE,
    EXIT_INPUT,
    EXIT_OK,
    add_catalog_arguments,
    add_root_argument,
    confirm,
    print_json,
    write_rows,
)


def register(command: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    """Add the ``archive`` and ``unarchive`` commands (``command`` makes a subparser)."""
    archive = command(
        "archive",
        "move the runs matching a filter to ROOT/.archive/",
        """\
examples:
  hermes archive /data/runs --where="tag = superseded"
  hermes archive /data/runs --where="start_time < 2024-01-01 and not tag = paper" --yes

Each matching run directory ROOT/<path> is moved to ROOT/.archive/<path> with
one rename (nothing is copied; a run is always complete in one place), and
dropped from the index: hermes ls and load_all no longer show it; hermes ls
--archived does, and hermes unarchive moves it back. A run still being written
(not finished, a file changed within the last 60 s) is refused, as is a run
whose place in the archive is taken. On a terminal it asks first unless --yes;
without a terminal it needs --yes.

"""
        + EXIT_CODES_CURATE,
    )
    unarchive = command(
        "unarchive",
        "move archived runs matching a filter from ROOT/.archive/ back to ROOT",
        """\
examples:
  hermes unarchive /data/runs --where="tag = paper"
  hermes unarchive /data/runs --where="--doubledqn" --yes

Each archived run ROOT/.archive/<path> matching the filter (read from disk) is
moved back to ROOT/<path> with one rename and stored in the index again. A run
whose place in ROOT is taken is refused. On a terminal it asks first unless
--yes; without a terminal it needs --yes.

"""
        + EXIT_CODES_CURATE,
    )
    for parser, handler in ((archive, _cmd_archive), (unarchive, _cmd_unarchive)):
        add_root_argument(parser)
        parser.add_argument(
            "--where", metavar="EXPR", required=True, help="filter expression; write --where=EXPR"
        )
        parser.add_argument("--yes", action="store_true", help="do not ask first")
        add_catalog_arguments(parser, ("table", "json"))
        parser.set_defaults(handler=handler, input_code=EXIT_INPUT)


def _cmd_archive(args: argparse.Namespace) -> int:
    """``hermes archive``: move the matching runs to ROOT/.archive; return 0.

    Raises QueryError for a bad expression, FileNotFoundError for a missing ROOT,
    CommandUsageError when it may not ask and ``--yes`` is missing.
    """
    from pyhermes.catalog import ARCHIVE_FOLDER
    from pyhermes.curation import archive_runs
    from pyhermes.index.query.grammar import as_filter
    from pyhermes.storage import Catalog

    condition = as_filter(args.where)
    catalog = Catalog.open(args.root, index=args.index, sync=args.sync)
    runs = list(catalog.find(condition, order_by="path"))
    target = Path(os.path.realpath(args.root)) / ARCHIVE_FOLDER
    if not runs:
        return _nothing(args, "no run matches")
    if not confirm(f"move {_runs(len(runs))} to {target}", args.yes):
        return _nothing(args, "nothing moved")
    moved = archive_runs(args.root, runs, index=catalog)
    print_moves(args.root, moved, args.format, "archived", target)
    return EXIT_OK


def _cmd_unarchive(args: argparse.Namespace) -> int:
    """``hermes unarchive``: move the matching archived runs back; return 0.

    Raises as :func:`_cmd_archive`.
    """
    from pyhermes.curation import archived_runs, unarchive_runs
    from pyhermes.index.query.grammar import as_filter
    from pyhermes.storage import Catalog

    condition = as_filter(args.where)
    root = Path(args.root)
    if not root.is_dir():
        raise FileNotFoundError(f"no such directory: {root}")
    runs = list(archived_runs(root, condition))
    target = Path(os.path.realpath(root))
    if not runs:
        return _nothing(args, "no archived run matches")
    if not confirm(f"move {_runs(len(runs))} from {target / '.archive'} back to {target}", args.yes):
        return _nothing(args, "nothing moved")
    catalog = Catalog.open(root, index=args.index, sync=args.sync)
    moved = unarchive_runs(root, runs, index=catalog)
    print_moves(root, moved, args.format, "unarchived", target)
    return EXIT_OK


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def _nothing(args: argparse.Namespace, message: str) -> int:
    if args.format == "json":
        print_json({"moved": 0, "refused": 0, "runs": [], "message": message})
    else:
        print(message)
    return EXIT_OK


def moved_records(root: str | os.PathLike[str], moved: Sequence[Any]) -> list[dict[str, Any]]:
    """One record per :class:`~pyhermes.curation.Moved`: identifier, absolute source and
    target (``None`` when refused), the refusal, and the paths relative to ``root``."""
    top = os.path.realpath(root)
    return [
        {
            "identifier": item.run.identifier,
            "source": str(item.source),
            "target": None if item.target is None else str(item.target),
            "refused": item.refused,
            "from": os.path.relpath(item.source, top),
            "to": None if item.target is None else os.path.relpath(item.target, top),
        }
        for item in moved
    ]


def print_moves(
    root: str | os.PathLike[str], moved: Sequence[Any], fmt: str, verb: str, target: Path
) -> None:
    """Print what moved where (and what was refused, and why) as a table or JSON."""
    records = moved_records(root, moved)
    done = sum(1 for record in records if record["target"] is not None)
    refused = len(records) - done
    if fmt == "json":
        print_json({"moved": done, "refused": refused, "target": str(target), "runs": records})
        return
    rows = [
        [record["identifier"], os.path.dirname(record["from"]),
         "moved" if record["to"] else f"refused: {record['refused']}"]
        for record in records
    ]
    write_rows(["identifier", "folder", "status"], rows, "table")
    message = f"{verb} {_runs(done)} (to {target})"
    if refused:
        message += f"; refused {refused}"
    print(message)
    sys.stdout.flush()
