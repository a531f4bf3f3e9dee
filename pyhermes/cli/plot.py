"""``hermes plot``: the grouped learning curves of the matching runs, to an image file."""

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
    add_root_argument,
    positive_int,
)
from pyhermes.errors import QueryError


def register(command: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    """Add the ``plot`` command to the ``hermes`` parser (``command`` makes a subparser)."""
    plot = command(
        "plot",
        "plot smoothed learning curves, one line per group of runs",
        """\
examples:
  hermes plot /data/runs --where=--doubledqn --group-by=-lr -o lr.png
  hermes plot --where="-gamma = 0.99" --group-by=-lr,--doubledqn --window 50 -o curves.png
  hermes plot --group-by=-bs --band ci95 -o bs.pdf

Each line is the mean of its group's smoothed scores (moving average over
--window episodes), with a band of one standard deviation (std) or a 95%
confidence interval (ci95). The file format follows the file name (png, pdf, svg).

"""
        + EXIT_CODES_QUERY,
    )
    add_root_argument(plot)
    plot.add_argument(
        "--where", metavar="EXPR", default=None, help="filter expression; write --where=EXPR"
    )
    plot.add_argument(
        "--group-by",
        metavar="KEY[,KEY]",
        default=None,
        help="exec-arg keys to group by; write --group-by=-lr",
    )
    plot.add_argument(
        "--window",
        metavar="N",
        type=positive_int,
        default=100,
        help="smoothing window (default 100)",
    )
    plot.add_argument(
        "--band",
        choices=("std", "ci95", "none"),
        default="std",
        help="band around each line (default std)",
    )
    plot.add_argument("-o", "--output", metavar="FILE", required=True, help="image file to write")
    add_catalog_arguments(plot)
    plot.set_defaults(handler=_cmd_plot, input_code=EXIT_INPUT)


def _cmd_plot(args: argparse.Namespace) -> int:
    """``hermes plot``: write the learning curves of the matching runs to a file; return 0.

    Raises QueryError for a bad expression or when no run matches, ValueError for a
    bad group key or runs without scores, MissingDependencyError without matplotlib.
    """
    from pyhermes._optional import pyplot, require
    from pyhermes.index.query.grammar import as_filter
    from pyhermes.storage import Catalog

    condition = as_filter(args.where)
    group_by = present.split_list(args.group_by) or None
    output = Path(args.output)
    matplotlib = require("matplotlib")
    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")  # a file is written: never open a window
    catalog = Catalog.open(args.root, index=args.index, sync=args.sync)
    experiments = catalog.find(condition)
    if not experiments:
        wanted = f" matches {args.where!r}" if args.where else ""
        raise QueryError(f"no run below {args.root}{wanted}")
    figure = experiments.plot_scores(
        group_by=group_by,
        window=args.window,
        band=None if args.band == "none" else args.band,
        path=output,
    )
    pyplot().close(figure)
    print(f"wrote {output} ({len(experiments)} runs)")
    return EXIT_OK

