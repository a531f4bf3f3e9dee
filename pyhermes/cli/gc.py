"""``hermes gc``: list crashed and empty runs; with ``--yes`` move them to ``ROOT/.trash/``;
with ``--purge`` delete what is in the trash.

Thin over :func:`pyhermes.curation.gc_candidates`, :func:`~pyhermes.curation.trash_runs`
and :func:`~pyhermes.curation.purge_trash`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyhermes import present
from pyhermes.cli.archive import moved_records
from pyhermes.cli.common import (
    EXIT_CODES_CURATE,
    EXIT_INPUT,
    EXIT_OK,
    add_catalog_arguments,
    add_root_argument,
    confirm,
    human_bytes,
    print_json,
    write_rows,
)


def _age(text: str) -> float:
    from pyhermes.curation import parse_age

    try:
        return parse_age(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def register(command: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    """Add the ``gc`` command to the ``hermes`` parser (``command`` makes a subparser)."""
    gc = command(
        "gc",
        "list crashed and empty runs; move them to ROOT/.trash/ with --yes",
        """\
examples:
  hermes gc /data/runs                         list the candidates; change nothing
  hermes gc /data/runs --older-than 7d --where="not tag = keep"
  hermes gc /data/runs --older-than 7d --yes   move them to /data/runs/.trash/
  hermes gc /data/runs --purge                 delete what is in /data/runs/.trash/

Candidates: runs below ROOT that crashed (not finished and no file written for
--crash-after, default 60s; or stderr.log ends in a Python traceback, finished
or not) or are empty (no scores). A run still being written (not finished, a
file changed within the last 60 s) is never one. The table gives the bytes each
run's directory holds and the total.

What each writes where:
  (default)  nothing: prints the candidates.
  --yes      moves each candidate ROOT/<path> to ROOT/.trash/<path> (one rename; recoverable
             by moving it back) and drops it from the index.
  --purge    deletes everything in ROOT/.trash/ for good (after moving, with --yes). On a
             terminal it asks first unless --yes; without a terminal it needs --yes.

"""
        + EXIT_CODES_CURATE,
    )
    add_root_argument(gc)
    gc.add_argument("--where", metavar="EXPR", default=None, help="only runs matching this filter")
    gc.add_argument(
        "--older-than", metavar="AGE", type=_age, default=None,
        help="only runs started longer ago than AGE: a number and s, m, h, d or w (7d, 12h)",
    )
    gc.add_argument(
        "--crash-after", metavar="AGE", type=_age, default=None,
        help="an unfinished run counts as crashed once no file was written for AGE (default 60s)",
    )
    gc.add_argument("--yes", action="store_true", help="move the candidates to ROOT/.trash/ (do not ask)")
    gc.add_argument("--purge", action="store_true", help="delete what is in ROOT/.trash/ for good")
    add_catalog_arguments(gc, ("table", "json"))
    gc.set_defaults(handler=_cmd_gc, input_code=EXIT_INPUT)


def _cmd_gc(args: argparse.Namespace) -> int:
    """``hermes gc``: print the candidates, move them with ``--yes``, purge with ``--purge``; return 0.

    Raises QueryError for a bad expression, FileNotFoundError for a missing ROOT,
    CommandUsageError for ``--purge`` without ``--yes`` when stdin is not a terminal.
    """
    from pyhermes.curation import TRASH_FOLDER, gc_candidates, purge_trash, trash_runs, trash_size
    from pyhermes.index.query.grammar import as_filter
    from pyhermes.storage import Catalog

    condition = as_filter(args.where)
    root = Path(args.root)
    catalog = Catalog.open(root, index=args.index, sync=args.sync)
    candidates = gc_candidates(
        root, condition, args.older_than, index=catalog, crash_after=args.crash_after
    )
    trash = Path(os.path.realpath(root)) / TRASH_FOLDER
    moved: dict[str, dict[str, Any]] = {}
    if args.yes and candidates:
        done = trash_runs(root, [candidate.run for candidate in candidates], index=catalog)
        moved = {record["source"]: record for record in moved_records(root, done)}
    if args.format == "table":
        _print_candidates(root, candidates, moved, trash, action=args.yes)
    purged: tuple[int, int] | None = None
    if args.purge:
        runs, size = trash_size(root)
        empty = not (runs or size or (trash.is_dir() and any(trash.iterdir())))
        if empty:
            purged = (0, 0)
        elif confirm(f"delete everything in {trash} ({runs} runs, {human_bytes(size)}) for good", args.yes):
            purged = purge_trash(root)
        if args.format == "table":
            _print_purge(purged, trash, empty)
    if args.format == "json":
        print_json(_json(root, candidates, moved, trash, purged))
    return EXIT_OK


def _json(root: Path, candidates: list[Any], moved: dict[str, dict[str, Any]], trash: Path,
          purged: tuple[int, int] | None) -> dict[str, Any]:
    top = os.path.realpath(root)
    records = []
    for candidate in candidates:
        source = str(candidate.run.path_to_experiment)
        record = {
            "identifier": candidate.run.identifier,
            "path": os.path.relpath(source, top),
            "reason": candidate.reason,
            "bytes": candidate.bytes,
            "start_time": present.json_value(candidate.run.start_time),
        }
        move = moved.get(os.path.join(os.path.realpath(os.path.dirname(source)), os.path.basename(source)))
        if move is not None:
            record["target"], record["refused"] = move["target"], move["refused"]
        records.append(record)
    answer: dict[str, Any] = {
        "candidates": records,
        "total_bytes": sum(candidate.bytes for candidate in candidates),
        "trash": str(trash),
        "moved": sum(1 for record in moved.values() if record["target"] is not None),
        "refused": sum(1 for record in moved.values() if record["target"] is None),
    }
    if purged is not None:
        answer["purged"] = {"runs": purged[0], "bytes": purged[1]}
    return answer


def _print_candidates(root: Path, candidates: list[Any], moved: dict[str, dict[str, Any]], trash: Path,
                      *, action: bool) -> None:
    data = _json(root, candidates, moved, trash, None)
    records = data["candidates"]
    columns = ["identifier", "folder", "reason", "start_time", "bytes"]
    if action:
        columns.append("status")
    rows = []
    for record, candidate in zip(records, candidates, strict=True):
        row: list[Any] = [record["identifier"], os.path.dirname(record["path"]), record["reason"],
                          candidate.run.start_time, record["bytes"]]
        if action:
            row.append("moved" if record.get("target") else f"refused: {record.get('refused')}")
        rows.append(row)
    if rows:
        write_rows(columns, rows, "table")
    total = data["total_bytes"]
    summary = f"{len(records)} candidate{'' if len(records) == 1 else 's'}, {total} bytes ({human_bytes(total)})"
    if not action:
        print(f"{summary}; nothing moved (hermes gc --yes moves them to {trash})")
        return
    refused = data["refused"]
    print(f"{summary}; moved {data['moved']} to {trash}" + (f", refused {refused}" if refused else ""))


def _print_purge(purged: tuple[int, int] | None, trash: Path, empty: bool) -> None:
    if empty:
        print(f"nothing to delete: {trash} is empty")
    elif purged is None:
        print(f"nothing deleted from {trash}")
    else:
        print(f"deleted {purged[0]} runs ({purged[1]} bytes, {human_bytes(purged[1])}) from {trash}")
