"""``hermes-reindex`` and ``hermes reindex``: sync, rebuild or check the index.

The work is done by :class:`pyhermes.Catalog` (sync) and
:mod:`pyhermes.index.maintenance` (check, rebuild); this module parses the
options, draws the progress bar and prints the summary.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyhermes.cli.common import (
    EXIT_CODES_REINDEX,
    EXIT_OK,
    EXIT_RUNTIME,
    EXIT_STALE,
    add_index_argument,
    first_line,
    isatty,
    print_json,
)
from pyhermes.errors import MissingDependencyError

if TYPE_CHECKING:
    from pyhermes.index.sync.syncer import SyncReport


def register(command: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    """Add the ``reindex`` command to the ``hermes`` parser (``command`` makes a subparser)."""
    reindex = command(
        "reindex",
        "bring the index of the runs below ROOT in step with the disk",
        REINDEX_EXAMPLES.format(prog="hermes reindex") + EXIT_CODES_REINDEX,
    )
    add_reindex_arguments(reindex)
    reindex.set_defaults(handler=cmd_reindex, input_code=EXIT_RUNTIME)


REINDEX_EXAMPLES = """\
examples:
  {prog}                       sync every run below the current folder
  {prog} /data/runs --json     sync, print the summary as JSON
  {prog} --reread              re-read every run, even unchanged ones
  {prog} --rebuild             build a fresh index beside the old one, then swap it in
  {prog} --check               compare disk and index, change nothing (exit 1 if stale)
  {prog} --index postgresql://user@host/db /data/runs

The index of ROOT is --index, else $HERMES_INDEX, else the nearest existing
.hermes/index.sqlite in ROOT or above, else a new ROOT/.hermes/index.sqlite.

"""


def add_reindex_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "root",
        nargs="?",
        default=".",
        metavar="ROOT",
        help="folder whose runs to index (default .)",
    )
    add_index_argument(parser)
    parser.add_argument(
        "--reread", action="store_true", help="re-read every run, even unchanged ones"
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--rebuild",
        action="store_true",
        help="build a new index from the disk and swap it in (a SQLite file is replaced "
        "atomically; in another database the hermes tables are dropped and recreated)",
    )
    action.add_argument(
        "--check",
        action="store_true",
        help="change nothing: list runs not indexed, gone from disk, changed on disk, or "
        "unreadable (exit 1 if there are any), and runs loaded with warnings (odd bytes, "
        "lines without ':'; no failure)",
    )
    parser.add_argument(
        "--deep",
        action="store_true",
        help="with --check: also run SQLite's full integrity check of the index file "
        "(read-only; exit 1 if it finds damage)",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    output.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")


def cmd_reindex(args: argparse.Namespace) -> int:
    """``hermes-reindex`` / ``hermes reindex``: sync, rebuild or check; return the exit status.

    Raises FileNotFoundError for a missing ROOT and what :meth:`Catalog.open` raises.
    """
    from pyhermes.index import maintenance
    from pyhermes.storage import Catalog

    root = Path(args.root)
    if not root.is_dir():
        raise FileNotFoundError(f"no such directory: {root}")
    if args.check:
        return _check(root, args)
    # reindex builds the index if there is none (reading the runs meanwhile, unless it rebuilds)
    catalog = Catalog.open_index(root, args.index, syncs_tree=None if args.rebuild else True)
    with _progress_bar(enabled=not args.quiet and not args.json) as progress:
        if args.rebuild:
            report, catalog = maintenance.rebuild(catalog, progress)
            synced = catalog.root
        else:
            report = catalog.sync(
                root, mode="full", reread=args.reread, progress=progress, warn=False
            )
            synced = root.resolve()
    if args.json:
        summary = report.as_dict()
        summary.update(
            root=str(synced), index=maintenance.describe_location(catalog.location), rebuilt=bool(args.rebuild)
        )
        print_json(summary)
    elif not args.quiet:
        verb = "rebuilt the index of" if args.rebuild else "synced"
        print(f"{verb} {synced} (index {maintenance.describe_location(catalog.location)})")
        print(_summary_line(report))
        if report.problem_paths:
            print(f"{len(report.problem_paths)} run(s) could not be read and are not in the index:")
            for path, reason in sorted(report.problem_paths.items()):
                print(f"  {path}: {first_line(reason)}")
        _print_warnings(report.warning_paths)
    return EXIT_OK


def _summary_line(report: SyncReport) -> str:
    return (
        f"added {report.added}, updated {report.updated}, removed {report.removed}, "
        f"unchanged {report.unchanged}, problems {report.problems}, "
        f"warnings {len(report.warning_paths)} in {report.seconds:.2f} s"
    )


@contextlib.contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """Yield a progress callback drawing a tqdm bar on stderr, or ``None``.

    There is a bar only when ``enabled``, stderr is a terminal and tqdm is installed.
    """
    if not enabled or not isatty(sys.stderr):
        yield None
        return
    from pyhermes._optional import require

    try:
        tqdm = require("tqdm")
    except MissingDependencyError:
        yield None
        return
    bar = tqdm.tqdm(
        desc="reading runs", unit=" runs", file=sys.stderr, leave=False, dynamic_ncols=True
    )
    state = {"last": 0}

    def update(done: int) -> None:
        step = done - state["last"] if done >= state["last"] else done
        state["last"] = done
        if step > 0:
            bar.update(step)

    try:
        yield update
    finally:
        bar.close()


def _check(root: Path, args: argparse.Namespace) -> int:
    """``--check``: print the drift between disk and index (changing neither); return 0 or 1."""
    from pyhermes.index import maintenance

    drift = maintenance.check(
        root, args.index, reread=args.reread, deep=getattr(args, "deep", False)
    )
    if drift.get("damaged"):
        return _report_damage(drift, args)
    if args.json:
        print_json(drift)
    elif not args.quiet:
        _print_drift(drift)
    return EXIT_STALE if drift["stale"] or drift["problems"] else EXIT_OK


def _report_damage(damage: dict[str, Any], args: argparse.Namespace) -> int:
    """Print what ``--deep`` found wrong with the index file; return the exit status (1)."""
    if args.json:
        print_json(damage)
    elif not args.quiet:
        print(f"the index {damage['index']} is damaged (PRAGMA integrity_check):")
        for finding in damage["integrity_check"][:20]:
            print(f"  {finding}")
        print("it is rebuilt from the run directories with: hermes-reindex --rebuild")
    return EXIT_STALE


def _print_warnings(warning_paths: Mapping[str, Sequence[str]]) -> None:
    """List the runs read with warnings (they load; this is no failure), a few notes each."""
    if not warning_paths:
        return
    print(f"{len(warning_paths)} run(s) load with warnings (odd bytes or lines; no failure):")
    from pyhermes.index.rules import disk_name

    for path, notes in warning_paths.items():
        print(f"  {disk_name(path)}:")
        for note in notes[:3]:
            print(f"    {note}")
        if len(notes) > 3:
            print(f"    ... and {len(notes) - 3} more")


def _print_drift(drift: dict[str, Any]) -> None:
    from pyhermes.index.rules import disk_name

    print(f"checked {drift['root']} against the index {drift['index']}")
    sections = (
        ("not_indexed", "on disk but not in the index"),
        ("gone", "in the index but gone from disk"),
        ("changed", "changed on disk since indexed"),
    )
    for key, title in sections:
        if drift[key]:
            print(f"{len(drift[key])} run(s) {title}:")
            for path in drift[key]:
                print(f"  {disk_name(path)}")
    if drift["problem_paths"]:
        print(f"{len(drift['problem_paths'])} run(s) cannot be read:")
        for path, reason in drift["problem_paths"].items():
            print(f"  {disk_name(path)}: {reason}")
    _print_warnings(drift["warning_paths"])
    if drift["stale"]:
        print(f"the index is stale: run hermes-reindex {drift['root']}")
    elif drift["problem_paths"]:
        print(
            f"the index is up to date ({drift['unchanged']} runs); fix or remove the unreadable runs"
        )
    else:
        print(f"the index is up to date ({drift['unchanged']} runs)")
