"""The entry points: ``hermes`` (its parser gathers the command modules) and ``hermes-reindex``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pyhermes.cli import archive, gc, ls, plot, reindex, serve, show, sql, tag
from pyhermes.cli.common import (
    EXIT_CODES_QUERY,
    EXIT_CODES_REINDEX,
    EXIT_RUNTIME,
    guarded,
    parse_arguments,
)
from pyhermes.cli.reindex import REINDEX_EXAMPLES, add_reindex_arguments, cmd_reindex

#: The modules of the ``hermes`` commands, in the order of ``hermes --help``.
COMMANDS = (ls, show, sql, plot, serve, reindex, tag, archive, gc)


def reindex_main(argv: Sequence[str] | None = None) -> int:
    """Run ``hermes-reindex`` with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    Never raises for bad input or runtime errors: they are printed on stderr and
    mapped to the exit status documented in the module docstring.
    """
    parser = argparse.ArgumentParser(
        prog="hermes-reindex",
        description="Bring the index of the runs below ROOT in step with the disk "
        "(a full sync: every run is checked).",
        epilog=REINDEX_EXAMPLES.format(prog="hermes-reindex") + EXIT_CODES_REINDEX,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    add_reindex_arguments(parser)
    args = parse_arguments(parser, argv)
    if isinstance(args, int):
        return args
    return guarded("hermes-reindex", lambda: cmd_reindex(args), EXIT_RUNTIME, quiet=args.quiet)


def hermes_main(argv: Sequence[str] | None = None) -> int:
    """Run ``hermes`` with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    Never raises for bad input or runtime errors: they are printed on stderr and
    mapped to the exit status documented in the module docstring.
    """
    parser = _hermes_parser()
    args = parse_arguments(parser, argv)
    if isinstance(args, int):
        return args
    return guarded(
        "hermes", lambda: args.handler(args), args.input_code, quiet=getattr(args, "quiet", False)
    )



def _hermes_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hermes",
        description="Query and curate the catalogue of hermes experiment runs.",
        epilog="""\
examples:
  hermes reindex /data/runs
  hermes ls /data/runs --where="--doubledqn and -lr < 0.01" --sort=-final_mean --limit 10
  hermes show 2024_03_01_0915
  hermes sql /data/runs "SELECT identifier, final_mean FROM runs ORDER BY final_mean DESC"
  hermes plot /data/runs --where=--doubledqn --group-by=-lr -o curves.png
  hermes tag /data/runs --where="--doubledqn and final_mean > 200" --add paper
  hermes archive /data/runs --where="tag = superseded"
  hermes gc /data/runs --older-than 7d

Run 'hermes COMMAND --help' for the options of a command.

"""
        + EXIT_CODES_QUERY,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    from pyhermes._version import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, epilog: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help_text,
            description=help_text[0].upper() + help_text[1:] + ".",
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )

    for module in COMMANDS:
        module.register(command)
    return parser
