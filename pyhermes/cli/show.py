"""``hermes show``: everything about one run (:func:`pyhermes.present.run_details`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from pyhermes import present
from pyhermes.cli.common import (
    EXIT_CODES_QUERY,
    EXIT_INPUT,
    EXIT_OK,
    add_catalog_arguments,
    print_json,
)

#: Lines of ``stderr.log`` shown by ``hermes show``.
STDERR_TAIL_LINES = 10


def register(command: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    """Add the ``show`` command to the ``hermes`` parser (``command`` makes a subparser)."""
    show = command(
        "show",
        "show everything about one run",
        """\
examples:
  hermes show 2024_03_01_0915              an identifier prefix (unique among the runs)
  hermes show experiments/train_dqn/sweep/2024_03_01_091501123456_0_1a0f9
  hermes show 2024_03_01 --root /data/runs --format json

RUN is a run directory or a prefix of an identifier. Without --root, the runs
below the run directory's parent (for a directory) or the current folder are
searched.

"""
        + EXIT_CODES_QUERY,
    )
    show.add_argument("run", metavar="RUN", help="run directory or identifier prefix")
    show.add_argument("--root", default=None, metavar="ROOT", help="folder of the runs (default .)")
    add_catalog_arguments(show, ("text", "json"))
    show.set_defaults(handler=_cmd_show, input_code=EXIT_INPUT)


def _cmd_show(args: argparse.Namespace) -> int:
    """``hermes show``: print one run; return 0.

    Raises QueryError when no run or several runs match, FileNotFoundError for a missing ROOT.
    """
    from pyhermes.storage import Catalog

    candidate = Path(args.run)
    if args.root is not None:
        root: Path = Path(args.root)
    elif candidate.is_dir():
        root = candidate.resolve().parent
    else:
        root = Path(".")
    catalog = Catalog.open(root, index=args.index, sync=args.sync)
    experiment = catalog.get(args.run)
    from pyhermes.index.query.filters import RUN_FIELDS

    details = present.run_details(experiment, STDERR_TAIL_LINES)
    if args.format == "json":
        print_json(details)
        return EXIT_OK
    fields = {name: details[name] for name in RUN_FIELDS}
    summary = details["scores"]
    files = [(item["name"], item["size"]) for item in details["files"]]
    tail = details["stderr_tail"]
    lines: list[str] = []
    label = max(len(name) for name in fields)
    for name, value in fields.items():
        lines.append(f"{name.ljust(label)}  {present.text_value(value, compact=False)}")
    lines.append("")
    lines.append("info (hermes.info):")
    lines.extend(f"  {key}: {value}" for key, value in experiment.info_dict.items())
    lines.append("")
    lines.append("args (exec_arguments):")
    lines.extend(f"  {line}" for line in experiment.exec_arg_lines)
    if not experiment.exec_arg_lines:
        lines.append("  (none)")
    lines.append("")
    lines.append(f"tags (hermes.tags): {', '.join(details['tags']) or '(none)'}")
    lines.append("notes (hermes.notes):")
    for note in details["notes"]:
        lines.append(f"  [{(note['time'] or '?').replace('T', ' ')}] {note['text'].replace(chr(10), chr(10) + '    ')}")
    if not details["notes"]:
        lines.append("  (none)")
    lines.append("")
    lines.append("scores:")
    width = max(len(name) for name in summary)
    for name, value in summary.items():
        lines.append(f"  {name.ljust(width)}  {present.text_value(value, compact=False) or '-'}")
    lines.append("")
    lines.append("files:")
    size_width = max((len(str(size)) for _, size in files if size is not None), default=1)
    for name, size in files:
        shown = "dir" if size is None else str(size)
        lines.append(f"  {shown.rjust(size_width)}  {name}")
    lines.append("")
    lines.append(f"stderr.log (last {STDERR_TAIL_LINES} lines):")
    if tail is None:
        lines.append("  (no stderr.log)")
    else:
        lines.extend(f"  {line}" for line in tail)
        if not tail:
            lines.append("  (empty)")
    sys.stdout.write("".join(line.rstrip() + "\n" for line in lines))
    sys.stdout.flush()
    return EXIT_OK

