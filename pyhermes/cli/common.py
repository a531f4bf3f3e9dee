"""What every command shares: exit statuses, argument helpers, error handling, output.

Values are formatted by :mod:`pyhermes.present` (the same code as the web pages
and the notebook views); this module only adds the terminal: its width, its
encoding, stdout and stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from pyhermes import present
from pyhermes.errors import CatalogError, HermesError, ReadOnlyQueryError

#: Exit status: success.
EXIT_OK = 0
#: Exit status: ``--check`` found drift or problems; for ``hermes``: bad input.
EXIT_STALE = 1
EXIT_INPUT = 1
#: Exit status: usage error (argparse).
EXIT_USAGE = 2
#: Exit status: runtime error (index, database, unreadable root).
EXIT_RUNTIME = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

#: Options whose values are expressions or keys that may begin with a dash.
_DASH_VALUE_OPTIONS = ("--where", "--sort", "--group-by", "--columns")

EXIT_CODES_REINDEX = """\
exit status:
  0  done (--check: the index is up to date and every run can be read; runs
     read with warnings, e.g. odd bytes or lines without ':', are listed only)
  1  --check found the index stale or a run that cannot be read
  2  usage error
  3  runtime error (missing ROOT, index of a newer pyhermes, database unreachable)
  130  interrupted"""

EXIT_CODES_CURATE = """\
exit status:
  0  done (runs refused because they are still being written, or moved by another
     process first, are listed in the output; the others were moved)
  1  bad input (malformed expression, bad tag, no or several runs matching RUN, missing ROOT)
  2  usage error, also: a command that moves runs was not confirmed because stdin is
     not a terminal and --yes was not given
  3  runtime error (index of a newer pyhermes, database unreachable, I/O error)
  130  interrupted"""

EXIT_CODES_QUERY = """\
exit status:
  0  done
  1  bad input (malformed expression, unknown column, no or several matching runs,
     writing SQL statement, missing ROOT)
  2  usage error
  3  runtime error (index of a newer pyhermes, database unreachable)
  130  interrupted
(hermes reindex exits like hermes-reindex: see hermes reindex --help)"""


class CommandUsageError(Exception):
    """A command line argparse accepts but the command cannot run as given (exit status 2)."""


def confirm(action: str, yes: bool) -> bool:
    """Return True when ``action`` (``"move 4 runs to /data/.archive"``) may go ahead: ``yes``
    (``--yes``), or the user answered ``y`` when asked (on stderr; stdin must be a terminal).

    Raises:
        CommandUsageError: stdin is not a terminal and ``yes`` is false: nothing may be
            done unasked, and nobody can be asked.
    """
    if yes:
        return True
    if not isatty(sys.stdin):
        raise CommandUsageError(
            f"refusing to {action} unasked: stdin is not a terminal, so nobody can be asked; "
            "add --yes to go ahead"
        )
    sys.stderr.write(f"{action[:1].upper()}{action[1:]}? [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def human_bytes(size: int) -> str:
    """``size`` bytes in the largest binary unit that keeps it at least 1 (``3.2 MiB``)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def parse_arguments(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace | int:
    """Parse ``argv``; return the namespace, or the exit status when argparse exited (help, usage)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        return parser.parse_args(join_dash_values(arguments))
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return EXIT_OK
        return code if isinstance(code, int) else EXIT_USAGE


def join_dash_values(argv: Sequence[str]) -> list[str]:
    """Return ``argv`` with ``--where -x`` (and ``--sort``, ``--group-by``, ``--columns``) joined.

    argparse takes an argument beginning with a dash for an option, so
    ``--where "--doubledqn and -lr < 0.01"`` would fail; this turns such a pair
    into the single argument ``--where=--doubledqn and -lr < 0.01``. Arguments
    after a lone ``--`` are left alone.
    """
    result: list[str] = []
    index = 0
    while index < len(argv):
        item = argv[index]
        if item == "--":
            result.extend(argv[index:])
            break
        following = argv[index + 1] if index + 1 < len(argv) else None
        if item in _DASH_VALUE_OPTIONS and following is not None and following.startswith("-"):
            result.append(f"{item}={following}")
            index += 2
            continue
        result.append(item)
        index += 1
    return result


def guarded(prog: str, command: Callable[[], int], input_code: int, *, quiet: bool = False) -> int:
    """Run ``command``; return its exit status, or the status of the error it raised.

    Errors become ``<prog>: error: <message>`` on stderr. Warnings of pyhermes
    (``UserWarning`` subclasses) are shown as ``<prog>: warning: <message>``
    unless ``quiet``; other warnings (numeric noise, deprecations) are dropped.
    """
    caught: list[warnings.WarningMessage] = []
    _print_any_name()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            return command()
    except KeyboardInterrupt:
        _error(prog, "interrupted")
        return EXIT_INTERRUPTED
    except CommandUsageError as exc:
        _error(prog, str(exc))
        return EXIT_USAGE
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except ReadOnlyQueryError as exc:
        _error(prog, str(exc))
        return input_code
    except CatalogError as exc:
        _error(prog, str(exc))
        return EXIT_RUNTIME
    except (HermesError, FileNotFoundError, NotADirectoryError, ValueError) as exc:
        _error(prog, _describe(exc))
        return input_code
    except OSError as exc:
        _error(prog, _describe(exc))
        return EXIT_RUNTIME
    except Exception as exc:
        from sqlalchemy.exc import SQLAlchemyError

        if isinstance(exc, SQLAlchemyError):
            _error(prog, f"database error: {first_line(str(getattr(exc, 'orig', None) or exc))}")
            return EXIT_RUNTIME
        raise
    finally:
        if not quiet:
            _show_warnings(prog, caught)


def _describe(exc: BaseException) -> str:
    """Return the message of ``exc`` for the user (OS errors as ``<reason>: <file>``)."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.strerror}: {exc.filename}"
    text = str(exc)
    return text if text else type(exc).__name__


def first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else text


def _error(prog: str, message: str) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr)


def _show_warnings(prog: str, caught: Sequence[warnings.WarningMessage]) -> None:
    seen: set[str] = set()
    for warning in caught:
        if not issubclass(warning.category, UserWarning):
            continue
        message = str(warning.message)
        if message not in seen:
            seen.add(message)
            print(f"{prog}: warning: {message}", file=sys.stderr)


def _print_any_name() -> None:
    """Let stdout and stderr print file names that are not valid UTF-8, as the bytes they are."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="surrogateescape")


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so that the interpreter's flush is quiet."""
    with contextlib.suppress(Exception):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


#: The output formats of a command printing a table.
TABLE_FORMATS = ("table", "csv", "json")


def add_root_argument(parser: argparse.ArgumentParser) -> None:
    """Add the optional positional ROOT of a command over a folder of runs (default ``.``)."""
    parser.add_argument(
        "root", nargs="?", default=".", metavar="ROOT", help="folder of the runs (default .)"
    )


def add_catalog_arguments(parser: argparse.ArgumentParser, formats: Sequence[str] | None = None) -> None:
    """Add the options every command reading the catalogue ends with: ``--format`` (one of
    ``formats``, the first the default; none when ``None``), ``--index`` and ``--sync``."""
    if formats is not None:
        add_format_argument(parser, formats)
    add_index_argument(parser)
    add_sync_argument(parser)


def add_index_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--index",
        metavar="PATH_OR_URL",
        default=None,
        help="the index: a SQLite file or an SQLAlchemy URL "
        "(default: $HERMES_INDEX, else ROOT/.hermes/index.sqlite or the nearest one above)",
    )


def add_sync_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sync",
        choices=("quick", "full", "none"),
        default="quick",
        help="bring the index in step with the disk first: quick (default) checks new, removed "
        "and unsettled runs; full checks every run; none uses the index as it is",
    )


def add_format_argument(parser: argparse.ArgumentParser, choices: Sequence[str] = TABLE_FORMATS) -> None:
    parser.add_argument(
        "--format",
        choices=tuple(choices),
        default=choices[0],
        help=f"output format (default {choices[0]}); csv and json give full values",
    )


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, not {value}")
    return value


def positive_int(text: str) -> int:
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, not {value}")
    return value


def write_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> None:
    """Print ``rows`` under ``columns`` as an aligned table, CSV or a JSON array of objects."""
    out = sys.stdout
    if fmt == "json":
        records = [
            {column: present.json_value(value) for column, value in zip(columns, row, strict=False)}
            for row in rows
        ]
        out.write(json.dumps(records, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([present.text_value(value, compact=False) for value in row])
    else:
        out.write(
            format_table(columns, [[present.text_value(v, compact=True) for v in row] for row in rows])
        )
    out.flush()


def format_table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], width: int | None = None
) -> str:
    """Return ``rows`` of text under ``columns`` as an aligned table (:func:`pyhermes.present.format_table`).

    ``width`` defaults to the terminal's width when stdout is a terminal; the
    ellipsis is ``…`` when stdout can encode it, else ``~``.
    """
    if width is None and isatty(sys.stdout):
        width = shutil.get_terminal_size().columns
    return present.format_table(columns, rows, width, _ellipsis())


def _ellipsis() -> str:
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "…".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "~"
    return "…"


def print_json(data: Any) -> None:
    sys.stdout.write(
        json.dumps(present.json_value(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    )
    sys.stdout.flush()


def isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False

