"""``hermes serve``: the web pages of :mod:`pyhermes.web`."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from pyhermes.cli.common import (
    EXIT_CODES_QUERY,
    EXIT_INPUT,
    EXIT_OK,
    add_catalog_arguments,
    add_root_argument,
    non_negative_int,
)

#: The default time limit of a SQL statement, in seconds (``hermes serve --sql-timeout``,
#: ``hermes sql --timeout``); the web app's own default is the same.
DEFAULT_SQL_TIMEOUT = 10.0


def positive_seconds(text: str) -> float:
    """Return ``text`` as a number of seconds above 0 (an argparse type).

    Raises:
        argparse.ArgumentTypeError: no number, or not above 0.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


def register(command: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    """Add the ``serve`` command to the ``hermes`` parser (``command`` makes a subparser)."""
    serve = command(
        "serve",
        "browse, filter, rank and compare the runs below ROOT in a local web page",
        """\
examples:
  hermes serve /data/runs                    then open http://127.0.0.1:8765/
  hermes serve /data/runs --port 9000 --open
  hermes serve --host 0.0.0.0 /data/runs     reachable from other machines: no login!
  hermes serve --writable /data/runs         the pages can also tag, note and archive runs

The index is kept in step with the disk by a quick sync at start and on the
page's "refresh" button, in the background. Needs: pip install "pyhermes[web]".

"""
        + EXIT_CODES_QUERY,
    )
    add_root_argument(serve)
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only); another address "
        "lets anyone who reaches it browse the runs and query the index, with no login",
    )
    serve.add_argument(
        "--port", type=non_negative_int, default=8765, help="port (default 8765; 0: any free one)"
    )
    serve.add_argument("--open", action="store_true", help="open the page in a web browser")
    serve.add_argument(
        "--writable",
        action="store_true",
        help="let the pages tag, note and archive the runs selected in the runs table "
        "(default: read-only; writes need the page's own origin and its per-server token)",
    )
    serve.add_argument(
        "--sql-timeout",
        type=positive_seconds,
        default=DEFAULT_SQL_TIMEOUT,
        metavar="SECONDS",
        help=f"stop a statement of the SQL page and /api/sql after this long "
        f"(default {DEFAULT_SQL_TIMEOUT:g})",
    )
    add_catalog_arguments(serve)
    serve.set_defaults(handler=_cmd_serve, input_code=EXIT_INPUT)


def _cmd_serve(args: argparse.Namespace) -> int:
    """``hermes serve``: serve the web pages until interrupted; return 0.

    Raises MissingDependencyError without Flask, FileNotFoundError for a missing ROOT,
    OSError when the port is taken.
    """
    from pyhermes._optional import require

    require("flask")
    require("plotly")
    from pyhermes.web import serve

    serve(
        args.root,
        index=args.index,
        host=args.host,
        port=args.port,
        open_browser=args.open,
        sync=args.sync,
        writable=args.writable,
        sql_timeout=args.sql_timeout,
    )
    return EXIT_OK

