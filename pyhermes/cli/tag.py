"""``hermes tag`` and ``hermes note``: add or remove tags of runs, add a note to a run.

Thin over :meth:`pyhermes.ExperimentList.add_tags` / ``remove_tags`` and
:meth:`pyhermes.Experiment.add_note`: the tags go to each run's ``hermes.tags``,
the note to its ``hermes.notes``, then to the index.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pyhermes import present
from pyhermes.cli.common import (
    EXIT_CODES_CURATE,
    EXIT_INPUT,
    EXIT_OK,
    CommandUsageError,
    add_catalog_arguments,
    print_json,
    write_rows,
)


def register(command: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    """Add the ``tag`` and ``note`` commands (``command`` makes a subparser)."""
    tag = command(
        "tag",
        "add or remove tags of the runs matching a filter, or of the runs named",
        """\
examples:
  hermes tag /data/runs --where="--doubledqn and final_mean > 200" --add paper
  hermes tag /data/runs --where="not finished" --add crashed --remove paper
  hermes tag 2024_03_01_0915 2024_03_02_1130 --add best
  hermes ls /data/runs --where="tag = paper" --columns=identifier,tags,final_mean

Tags are kept in each run directory, in hermes.tags (one tag a line, rewritten
whole by write-then-rename), and copied into the index. A tag is one line of at
most 200 characters without a path separator; a bad tag is an error and nothing
is written. With --where the positional argument is ROOT (default .); without,
the positionals are runs (a run directory or an identifier prefix, as for
hermes show), optionally after ROOT.

"""
        + EXIT_CODES_CURATE,
    )
    tag.add_argument("targets", nargs="*", metavar="[ROOT] RUN", help="ROOT with --where; else runs")
    tag.add_argument("--where", metavar="EXPR", default=None, help="filter expression; write --where=EXPR")
    tag.add_argument("--root", default=None, metavar="ROOT", help="folder of the runs (default .)")
    tag.add_argument("--add", action="append", default=[], metavar="TAG", help="tag to add (repeatable)")
    tag.add_argument("--remove", action="append", default=[], metavar="TAG", help="tag to remove (repeatable)")
    add_catalog_arguments(tag, ("table", "json"))
    tag.set_defaults(handler=_cmd_tag, input_code=EXIT_INPUT)

    note = command(
        "note",
        "add a note to one run",
        """\
examples:
  hermes note 2024_03_01_0915 "diverged after 2M steps: lr too high"
  hermes note experiments/train_dqn/sweep/2024_03_01_091501123456_0_1a0f9 "rerun with seed 3"
  hermes ls /data/runs --where='note ~ "diverged"'

The note is appended, with the time, to the run's hermes.notes (one write; the
notes before stay as they are) and copied into the index; hermes show lists a
run's notes. RUN is a run directory or an identifier prefix, as for hermes show.

"""
        + EXIT_CODES_CURATE,
    )
    note.add_argument("run", metavar="RUN", help="run directory or identifier prefix")
    note.add_argument("text", metavar="TEXT", help="the note")
    note.add_argument("--root", default=None, metavar="ROOT", help="folder of the runs (default .)")
    add_catalog_arguments(note, ("table", "json"))
    note.set_defaults(handler=_cmd_note, input_code=EXIT_INPUT)


def run_root(runs: Sequence[str], root: str | None) -> Path:
    """The folder whose index resolves ``runs``: ``root`` when given; else the common parent
    of the runs when they are all directories (as ``hermes show`` does for one); else ``.``."""
    if root is not None:
        return Path(root)
    if runs and all(Path(run).is_dir() for run in runs):
        return Path(os.path.commonpath([str(Path(run).resolve().parent) for run in runs]))
    return Path(".")


def _targets(args: argparse.Namespace) -> tuple[Path, list[str]]:
    """(ROOT, runs named) of ``hermes tag``'s positionals; see the command's help."""
    targets = list(args.targets)
    if args.where is not None:
        if len(targets) > 1 or (targets and args.root is not None):
            raise CommandUsageError("with --where, give at most one ROOT and no runs")
        return Path(targets[0] if targets else args.root or "."), []
    if not targets:
        raise CommandUsageError("name the runs to tag, or give --where EXPR")
    from pyhermes import rundir

    first = Path(targets[0])
    if args.root is None and len(targets) > 1 and first.is_dir() and not rundir.is_run_dir(first):
        return first, targets[1:]
    if len(targets) == 1 and first.is_dir() and not rundir.is_run_dir(first):
        raise CommandUsageError(f"{first} is a folder, not a run: give --where EXPR to tag runs below it")
    return run_root(targets, args.root), targets


def _cmd_tag(args: argparse.Namespace) -> int:
    """``hermes tag``: add then remove tags of the runs; print each run's tags; return 0.

    Raises InvalidTagError for a bad tag (nothing written), QueryError for a bad
    expression or a RUN matching no run or several, CommandUsageError for a bad
    combination of arguments.
    """
    from pyhermes import rundir
    from pyhermes.index.query.grammar import as_filter
    from pyhermes.storage import Catalog, ExperimentList

    if not args.add and not args.remove:
        raise CommandUsageError("give --add TAG or --remove TAG (each may repeat)")
    for tag in (*args.add, *args.remove):
        rundir.check_tag(tag)  # every tag checked before anything is read or written
    condition = as_filter(args.where) if args.where is not None else None
    root, named = _targets(args)
    catalog = Catalog.open(root, index=args.index, sync=args.sync)
    if condition is not None:
        runs: Any = catalog.find(condition, order_by="path")
    else:
        found = {}
        for name in named:
            run = catalog.get(name)
            found[str(run.path_to_experiment)] = run
        runs = ExperimentList(found.values())
    before: dict[str, tuple[str, ...]] = {}
    after: dict[str, tuple[str, ...]] = {}
    order: list[Any] = []
    for changes in (runs.add_tags(*args.add) if args.add else [],
                    runs.remove_tags(*args.remove) if args.remove else []):
        for change in changes:
            key = str(change.run.path_to_experiment)
            if key not in before:
                before[key] = tuple(change.before)
                order.append(change.run)
            after[key] = tuple(change.after)
    records = [
        {
            "identifier": run.identifier,
            "path": str(run.path_to_experiment),
            "before": list(before[str(run.path_to_experiment)]),
            "after": list(after[str(run.path_to_experiment)]),
            "changed": before[str(run.path_to_experiment)] != after[str(run.path_to_experiment)],
        }
        for run in order
    ]
    if args.format == "json":
        print_json({"runs": records, "changed": sum(record["changed"] for record in records)})
        return EXIT_OK
    rows = [
        [record["identifier"], ", ".join(record["after"]), _change_text(record["before"], record["after"])]
        for record in records
    ]
    if rows:
        write_rows(["identifier", "tags", "change"], rows, "table")
    changed = sum(record["changed"] for record in records)
    print(f"{len(records)} run{'' if len(records) == 1 else 's'} matched, {changed} changed")
    return EXIT_OK


def _change_text(before: Sequence[str], after: Sequence[str]) -> str:
    added = [f"+{tag}" for tag in after if tag not in before]
    removed = [f"-{tag}" for tag in before if tag not in after]
    return " ".join(added + removed) or "unchanged"


def _cmd_note(args: argparse.Namespace) -> int:
    """``hermes note``: append a note to one run; print it; return 0.

    Raises QueryError when RUN matches no run or several, ValueError for an empty or
    too long note (as :func:`pyhermes.rundir.append_note` raises).
    """
    from pyhermes.storage import Catalog

    catalog = Catalog.open(run_root([args.run], args.root), index=args.index, sync=args.sync)
    run = catalog.get(args.run)
    note = run.add_note(args.text)
    record = {
        "identifier": run.identifier,
        "path": str(run.path_to_experiment),
        "time": present.json_value(note.time),
        "text": note.text,
    }
    if args.format == "json":
        print_json(record)
    else:
        print(f"noted {run.identifier} ({present.text_value(note.time, compact=False)}): {note.text}")
    return EXIT_OK
