"""The command line: ``hermes`` (``ls``, ``show``, ``sql``, ``plot``, ``reindex``) and ``hermes-reindex``.

A thin layer over :class:`pyhermes.index.catalog.Catalog`: argparse, output
formatting (aligned table, CSV, JSON), and errors turned into one message on
stderr (``hermes: error: ...``) with a non-zero exit status, never a traceback
for bad input::

    hermes-reindex [ROOT] [--index PATH_OR_URL] [--reread] [--rebuild] [--check [--deep]]
                   [--json | --quiet]
    hermes ls   [ROOT] [--where=EXPR] [--sort=KEY[,KEY]] [--limit N] [--columns=COL,...]
                [--format table|csv|json]
    hermes show RUN [--root ROOT] [--format text|json]
    hermes sql  [ROOT] "SELECT ..." [--format table|csv|json]
    hermes plot [ROOT] [--where=EXPR] [--group-by=KEY[,KEY]] [--window N]
                [--band std|ci95|none] -o FILE.png
    hermes reindex ...   (the options of hermes-reindex)

Every command takes ``--index PATH_OR_URL`` (default: ``$HERMES_INDEX``, else the
rule of the README); ``ls``, ``show``, ``sql`` and ``plot`` take ``--sync
quick|full|none`` (default ``quick``). Expressions and keys often begin with a
dash (``--doubledqn``, ``-lr``); write them ``--where=EXPR`` / ``--sort=-final_mean``
/ ``--group-by=-lr``. ``--where EXPR`` (a separate argument) works too: a value
after ``--where``, ``--sort``, ``--group-by`` or ``--columns`` is taken as that
option's value even when it begins with a dash.

Exit status of ``hermes-reindex`` and ``hermes reindex``:

* 0 -- done (``--check``: the index is up to date and every run can be read;
  runs read with warnings -- odd bytes, lines without ``:`` -- are listed but
  are no failure);
* 1 -- ``--check`` found the index stale or a run that cannot be read;
* 2 -- usage error (unknown option, bad option value);
* 3 -- runtime error: missing or unreadable ROOT, index written by a newer
  pyhermes, database unreachable, invalid index URL.

Exit status of ``hermes ls|show|sql|plot``:

* 0 -- done;
* 1 -- bad input: malformed expression, unknown column or sort key, no or several
  runs matching RUN, a writing SQL statement, missing ROOT, missing optional
  dependency;
* 2 -- usage error;
* 3 -- runtime error about the index itself (index of a newer pyhermes, database
  unreachable, invalid index URL, I/O error).

Any command interrupted with Ctrl-C exits with 130; a closed output pipe
(``hermes ls | head``) ends the command quietly with 141.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import csv
import json
import math
import os
import shutil
import sqlite3
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyhermes.errors import (
    CatalogError,
    HermesError,
    MissingDependencyError,
    QueryError,
    ReadOnlyQueryError,
)

if TYPE_CHECKING:
    from pyhermes.index.catalog import Catalog
    from pyhermes.index.engine import IndexLocation
    from pyhermes.index.sync import SyncReport
    from pyhermes.storage import Experiment

__all__ = ["hermes_main", "reindex_main", "EXIT_OK", "EXIT_STALE", "EXIT_USAGE", "EXIT_RUNTIME"]

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

#: Longest cell of a table, in characters; longer values are shortened with an ellipsis.
MAX_CELL = 40
#: A table fitted to a narrow terminal never shrinks a column below this width.
MIN_CELL = 6
#: Lines of ``stderr.log`` shown by ``hermes show``.
STDERR_TAIL_LINES = 10

#: Options whose values are expressions or keys that may begin with a dash.
_DASH_VALUE_OPTIONS = ("--where", "--sort", "--group-by", "--columns")

_DEFAULT_LS_COLUMNS = ("identifier", "start_time", "finished", "final_mean")

def _show_fields() -> tuple[str, ...]:
    from pyhermes.index.query import RUN_FIELDS

    return tuple(RUN_FIELDS)


_EXIT_CODES_REINDEX = """\
exit status:
  0  done (--check: the index is up to date and every run can be read; runs
     read with warnings, e.g. odd bytes or lines without ':', are listed only)
  1  --check found the index stale or a run that cannot be read
  2  usage error
  3  runtime error (missing ROOT, index of a newer pyhermes, database unreachable)
  130  interrupted"""

_EXIT_CODES_QUERY = """\
exit status:
  0  done
  1  bad input (malformed expression, unknown column, no or several matching runs,
     writing SQL statement, missing ROOT)
  2  usage error
  3  runtime error (index of a newer pyhermes, database unreachable)
  130  interrupted
(hermes reindex exits like hermes-reindex: see hermes reindex --help)"""

_REINDEX_EXAMPLES = """\
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

# --------------------------------------------------------------------------- entry points


def reindex_main(argv: Sequence[str] | None = None) -> int:
    """Run ``hermes-reindex`` with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    Never raises for bad input or runtime errors: they are printed on stderr and
    mapped to the exit status documented in the module docstring.
    """
    parser = argparse.ArgumentParser(
        prog="hermes-reindex",
        description="Bring the index of the runs below ROOT in step with the disk "
        "(a full sync: every run is checked).",
        epilog=_REINDEX_EXAMPLES.format(prog="hermes-reindex") + _EXIT_CODES_REINDEX,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    _add_reindex_arguments(parser)
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args
    return _guarded("hermes-reindex", lambda: _cmd_reindex(args), EXIT_RUNTIME, quiet=args.quiet)


def hermes_main(argv: Sequence[str] | None = None) -> int:
    """Run ``hermes`` with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    Never raises for bad input or runtime errors: they are printed on stderr and
    mapped to the exit status documented in the module docstring.
    """
    parser = _hermes_parser()
    args = _parse(parser, argv)
    if isinstance(args, int):
        return args
    return _guarded(
        "hermes", lambda: args.handler(args), args.input_code, quiet=getattr(args, "quiet", False)
    )


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace | int:
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


# --------------------------------------------------------------------------- errors


def _guarded(prog: str, command: Callable[[], int], input_code: int, *, quiet: bool = False) -> int:
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
            _error(prog, f"database error: {_first_line(str(getattr(exc, 'orig', None) or exc))}")
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


def _first_line(text: str) -> str:
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


# --------------------------------------------------------------------------- parsers


def _add_index_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--index",
        metavar="PATH_OR_URL",
        default=None,
        help="the index: a SQLite file or an SQLAlchemy URL "
        "(default: $HERMES_INDEX, else ROOT/.hermes/index.sqlite or the nearest one above)",
    )


def _add_sync_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sync",
        choices=("quick", "full", "none"),
        default="quick",
        help="bring the index in step with the disk first: quick (default) checks new, removed "
        "and unsettled runs; full checks every run; none uses the index as it is",
    )


def _add_format_argument(
    parser: argparse.ArgumentParser, choices: Sequence[str] = ("table", "csv", "json")
) -> None:
    parser.add_argument(
        "--format",
        choices=tuple(choices),
        default=choices[0],
        help=f"output format (default {choices[0]}); csv and json give full values",
    )


def _add_reindex_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "root",
        nargs="?",
        default=".",
        metavar="ROOT",
        help="folder whose runs to index (default .)",
    )
    _add_index_argument(parser)
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


def _hermes_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hermes",
        description="Query the catalogue of hermes experiment runs.",
        epilog="""\
examples:
  hermes reindex /data/runs
  hermes ls /data/runs --where="--doubledqn and -lr < 0.01" --sort=-final_mean --limit 10
  hermes show 2024_03_01_0915
  hermes sql /data/runs "SELECT identifier, final_mean FROM runs ORDER BY final_mean DESC"
  hermes plot /data/runs --where=--doubledqn --group-by=-lr -o curves.png

Run 'hermes COMMAND --help' for the options of a command.

"""
        + _EXIT_CODES_QUERY,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    from pyhermes import __version__

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
Default: identifier, start_time, finished, final_mean and one column per
exec-arg key. Sort keys: a field, a summary or an exec-arg key; -final_mean or
final_mean:desc sorts descending (default: start_time).

"""
        + _EXIT_CODES_QUERY,
    )
    ls.add_argument(
        "root", nargs="?", default=".", metavar="ROOT", help="folder of the runs (default .)"
    )
    ls.add_argument(
        "--where", metavar="EXPR", default=None, help="filter expression; write --where=EXPR"
    )
    ls.add_argument(
        "--sort", metavar="KEY[,KEY]", default="start_time", help="sort keys (default start_time)"
    )
    ls.add_argument(
        "--limit", metavar="N", type=_non_negative_int, default=None, help="at most N runs"
    )
    ls.add_argument(
        "--columns", metavar="COL,...", default=None, help="columns to show, comma-separated"
    )
    _add_format_argument(ls)
    _add_index_argument(ls)
    _add_sync_argument(ls)
    ls.set_defaults(handler=_cmd_ls, input_code=EXIT_INPUT)

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
        + _EXIT_CODES_QUERY,
    )
    show.add_argument("run", metavar="RUN", help="run directory or identifier prefix")
    show.add_argument("--root", default=None, metavar="ROOT", help="folder of the runs (default .)")
    _add_format_argument(show, ("text", "json"))
    _add_index_argument(show)
    _add_sync_argument(show)
    show.set_defaults(handler=_cmd_show, input_code=EXIT_INPUT)

    sql = command(
        "sql",
        "run one read-only SQL statement on the index",
        """\
examples:
  hermes sql "SELECT identifier, final_mean FROM runs ORDER BY final_mean DESC LIMIT 5"
  hermes sql /data/runs "SELECT key, COUNT(*) FROM run_args GROUP BY key" --format csv
  hermes sql "SELECT r.identifier, a.num AS lr FROM runs r JOIN run_args a
              ON a.run_id = r.id WHERE a.key = '-lr'" --format json

Stable views: runs, run_args (run_id, position, key, value, num, raw) and
run_info (run_id, key, value). The statement sees the whole index, not only
the runs below ROOT. Statements that would write are refused (exit 1).

"""
        + _EXIT_CODES_QUERY,
    )
    sql.add_argument(
        "root", nargs="?", default=".", metavar="ROOT", help="folder of the runs (default .)"
    )
    sql.add_argument("query", metavar="SQL", help="one SELECT / WITH / VALUES / EXPLAIN statement")
    _add_format_argument(sql)
    _add_index_argument(sql)
    _add_sync_argument(sql)
    sql.set_defaults(handler=_cmd_sql, input_code=EXIT_INPUT)

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
        + _EXIT_CODES_QUERY,
    )
    plot.add_argument(
        "root", nargs="?", default=".", metavar="ROOT", help="folder of the runs (default .)"
    )
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
        type=_positive_int,
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
    _add_index_argument(plot)
    _add_sync_argument(plot)
    plot.set_defaults(handler=_cmd_plot, input_code=EXIT_INPUT)

    serve = command(
        "serve",
        "browse, filter, rank and compare the runs below ROOT in a local web page",
        """\
examples:
  hermes serve /data/runs                    then open http://127.0.0.1:8765/
  hermes serve /data/runs --port 9000 --open
  hermes serve --host 0.0.0.0 /data/runs     reachable from other machines: no login!

The index is kept in step with the disk by a quick sync at start and on the
page's "refresh" button, in the background. Needs: pip install "pyhermes[web]".

"""
        + _EXIT_CODES_QUERY,
    )
    serve.add_argument(
        "root", nargs="?", default=".", metavar="ROOT", help="folder of the runs (default .)"
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only); another address "
        "lets anyone who reaches it browse the runs and query the index, with no login",
    )
    serve.add_argument(
        "--port", type=_non_negative_int, default=8765, help="port (default 8765; 0: any free one)"
    )
    serve.add_argument("--open", action="store_true", help="open the page in a web browser")
    _add_index_argument(serve)
    _add_sync_argument(serve)
    serve.set_defaults(handler=_cmd_serve, input_code=EXIT_INPUT)

    reindex = command(
        "reindex",
        "bring the index of the runs below ROOT in step with the disk",
        _REINDEX_EXAMPLES.format(prog="hermes reindex") + _EXIT_CODES_REINDEX,
    )
    _add_reindex_arguments(reindex)
    reindex.set_defaults(handler=_cmd_reindex, input_code=EXIT_RUNTIME)
    return parser


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, not {value}")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, not {value}")
    return value


# --------------------------------------------------------------------------- hermes ls


def _cmd_ls(args: argparse.Namespace) -> int:
    """``hermes ls``: print the matching runs; return 0.

    Raises QueryError for a bad expression, sort key or column, FileNotFoundError
    for a missing ROOT.
    """
    from pyhermes.index.catalog import Catalog
    from pyhermes.index.query import as_filter, sort_columns

    condition = as_filter(args.where)
    sort_keys = _split_list(args.sort)
    sort_columns(sort_keys)
    requested = _split_list(args.columns) if args.columns is not None else None
    if requested is not None and not requested:
        raise QueryError("--columns names no column")
    for name in requested or ():
        _column_getter(name, None)
    catalog = Catalog.open(args.root, index=args.index, sync=args.sync)
    experiments = catalog.find(condition, order_by=sort_keys, limit=args.limit)
    if requested is None:
        names = list(_DEFAULT_LS_COLUMNS)
        getters = [_column_getter(name, catalog) for name in names]
        for experiment in experiments:
            for key in experiment.exec_args_dict:
                if key not in names:
                    names.append(key)
                    getters.append(_arg_getter(key))
    else:
        names = requested
        getters = [_column_getter(name, catalog) for name in names]
    rows = [[getter(experiment) for getter in getters] for experiment in experiments]
    _write_rows(names, rows, args.format)
    return EXIT_OK


def _split_list(text: str | None) -> list[str]:
    if text is None:
        return []
    return [part.strip() for part in text.split(",") if part.strip()]


def _column_getter(name: str, catalog: Catalog | None) -> Callable[[Experiment], Any]:
    """Return the function reading column ``name`` of a run.

    A word that is no field (``train``) is an exec-arg key when some run of the
    index has it; without ``catalog`` that is not decided yet and the word is
    accepted (call again once the index is open).

    Raises:
        QueryError: ``name`` is no column.
    """
    from pyhermes.index.models import SUMMARY_COLUMNS
    from pyhermes.index.query import RUN_FIELDS, run_value

    if name == "args":
        return lambda experiment: " ".join(experiment.exec_arg_lines)
    if name.startswith("info.") and len(name) > len("info."):
        key = name[len("info.") :]
        return lambda experiment: experiment.info_dict.get(key)
    base = name
    for prefix, names in (("score.", SUMMARY_COLUMNS), ("run.", RUN_FIELDS)):
        if name.startswith(prefix) and name[len(prefix) :] in names:
            base = name[len(prefix) :]
    if base in SUMMARY_COLUMNS:
        return lambda experiment: getattr(experiment.score_summary, base)
    if base in RUN_FIELDS:
        return lambda experiment: run_value(experiment, base)
    if len(name.split()) == 1 and name == name.strip():
        if name.startswith("-") and name.strip("-"):
            return _arg_getter(name)
        if catalog is None or _has_arg_key(catalog, name):
            return _arg_getter(name)
    raise QueryError(
        f"unknown column {name!r}; expected a run field ({', '.join(RUN_FIELDS)}), "
        f"a score summary ({', '.join(SUMMARY_COLUMNS)}), args, info.KEY, "
        "or an exec-arg key like -lr"
    )


def _arg_getter(key: str) -> Callable[[Experiment], Any]:
    """Return the function reading the exec-arg ``key`` of a run (flags give True)."""
    return lambda experiment: experiment.exec_args_dict.get(key)


def _has_arg_key(catalog: Catalog | None, key: str) -> bool:
    if catalog is None:
        return False
    result = catalog.sql("SELECT 1 FROM run_args WHERE key = :key LIMIT 1", {"key": key})
    return bool(result.rows)




# --------------------------------------------------------------------------- output


def _write_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> None:
    """Print ``rows`` under ``columns`` as an aligned table, CSV or a JSON array of objects."""
    out = sys.stdout
    if fmt == "json":
        records = [
            {column: _json_value(value) for column, value in zip(columns, row, strict=False)}
            for row in rows
        ]
        out.write(json.dumps(records, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_text_value(value, compact=False) for value in row])
    else:
        out.write(
            format_table(columns, [[_text_value(v, compact=True) for v in row] for row in rows])
        )
    out.flush()


def format_table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], width: int | None = None
) -> str:
    """Return ``rows`` of text under ``columns`` as left-aligned columns two spaces apart.

    A header line and a line of dashes come first. Cells longer than
    :data:`MAX_CELL` are shortened with an ellipsis; with ``width`` (the terminal
    width; ``None`` when stdout is not a terminal) the widest columns shrink
    further, down to :data:`MIN_CELL`, to fit it.
    """
    if width is None and _isatty(sys.stdout):
        width = shutil.get_terminal_size().columns
    cells = [[_one_line(text) for text in row] for row in rows]
    widths = [len(name) for name in columns]
    for row in cells:
        for position, text in enumerate(row):
            widths[position] = max(widths[position], len(text))
    widths = [min(value, MAX_CELL) for value in widths]
    if width is not None:
        while sum(widths) + 2 * (len(widths) - 1) > width:
            widest = max(range(len(widths)), key=lambda i: widths[i]) if widths else 0
            if not widths or widths[widest] <= MIN_CELL:
                break
            widths[widest] -= 1
    ellipsis = _ellipsis()

    def line(texts: Sequence[str]) -> str:
        parts = [
            _shorten(text, size, ellipsis).ljust(size)
            for text, size in zip(texts, widths, strict=False)
        ]
        return "  ".join(parts).rstrip() + "\n"

    output = [line(list(columns)), line(["-" * size for size in widths])]
    output.extend(line(row) for row in cells)
    return "".join(output)


def _one_line(text: str) -> str:
    return "".join(" " if char in "\n\r\t\v\f" else char for char in text)


def _shorten(text: str, size: int, ellipsis: str) -> str:
    if len(text) <= size:
        return text
    if size <= len(ellipsis):
        return text[:size]
    return text[: size - len(ellipsis)] + ellipsis


def _ellipsis() -> str:
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "…".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "~"
    return "…"


def _text_value(value: Any, *, compact: bool) -> str:
    """Return ``value`` as text: compact for tables (6 significant digits), else in full."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}" if compact else repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds") if compact else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return " ".join(_text_value(item, compact=compact) for item in value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


def _json_value(value: Any) -> Any:
    """Return ``value`` as JSON data: times as ISO text, non-finite floats as null."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return _json_value(float(value))
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


def _print_json(data: Any) -> None:
    sys.stdout.write(
        json.dumps(_json_value(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    )
    sys.stdout.flush()


# --------------------------------------------------------------------------- hermes show


def _cmd_show(args: argparse.Namespace) -> int:
    """``hermes show``: print one run; return 0.

    Raises QueryError when no run or several runs match, FileNotFoundError for a missing ROOT.
    """
    from pyhermes.index.catalog import Catalog

    candidate = Path(args.run)
    if args.root is not None:
        root: Path = Path(args.root)
    elif candidate.is_dir():
        root = candidate.resolve().parent
    else:
        root = Path(".")
    catalog = Catalog.open(root, index=args.index, sync=args.sync)
    experiment = catalog.get(args.run)
    from pyhermes.index.query import run_value

    fields = {name: run_value(experiment, name) for name in _show_fields()}
    summary = experiment.score_summary.as_dict()
    files = _list_files(experiment.path_to_experiment)
    tail = _tail(experiment.path_to_experiment / "stderr.log", STDERR_TAIL_LINES)
    if args.format == "json":
        _print_json(
            {
                **fields,
                "info": experiment.info_dict,
                "args": experiment.exec_arg_lines,
                "args_dict": experiment.exec_args_dict,
                "scores": summary,
                "files": [{"name": name, "size": size} for name, size in files],
                "stderr_tail": tail,
            }
        )
        return EXIT_OK
    lines: list[str] = []
    label = max(len(name) for name in fields)
    for name, value in fields.items():
        lines.append(f"{name.ljust(label)}  {_text_value(value, compact=False)}")
    lines.append("")
    lines.append("info (hermes.info):")
    lines.extend(f"  {key}: {value}" for key, value in experiment.info_dict.items())
    lines.append("")
    lines.append("args (exec_arguments):")
    lines.extend(f"  {line}" for line in experiment.exec_arg_lines)
    if not experiment.exec_arg_lines:
        lines.append("  (none)")
    lines.append("")
    lines.append("scores:")
    width = max(len(name) for name in summary)
    for name, value in summary.items():
        lines.append(f"  {name.ljust(width)}  {_text_value(value, compact=False) or '-'}")
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


def _list_files(folder: Path) -> list[tuple[str, int | None]]:
    """Return (name, size in bytes) of the entries of ``folder``, sorted; size ``None`` for folders."""
    entries: list[tuple[str, int | None]] = []
    with os.scandir(folder) as listing:
        for entry in listing:
            try:
                if entry.is_dir(follow_symlinks=False):
                    entries.append((entry.name + "/", None))
                else:
                    entries.append((entry.name, entry.stat(follow_symlinks=False).st_size))
            except OSError:
                entries.append((entry.name, None))
    return sorted(entries)


def _tail(path: Path, count: int, limit: int = 64 * 1024) -> list[str] | None:
    """Return the last ``count`` lines of the text file ``path`` (``None`` if it does not exist)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            data = handle.read()
    except (FileNotFoundError, IsADirectoryError):
        return None
    from pyhermes.rundir import decode_text

    lines = decode_text(data, path, notes=[]).splitlines()  # the decoding rule, quietly
    if size > limit and lines:
        lines = lines[1:]  # the first line read is probably cut
    return list(collections.deque(lines, maxlen=count))


# --------------------------------------------------------------------------- hermes sql


def _cmd_sql(args: argparse.Namespace) -> int:
    """``hermes sql``: print the answer of one read-only statement; return 0.

    Raises ReadOnlyQueryError for a writing statement, QueryError for one the database rejects.
    """
    from pyhermes.index.catalog import Catalog

    catalog = Catalog.open(args.root, index=args.index, sync=args.sync)
    result = catalog.sql(args.query)
    _write_rows(result.columns, result.rows, args.format)
    return EXIT_OK


# --------------------------------------------------------------------------- hermes plot


def _cmd_plot(args: argparse.Namespace) -> int:
    """``hermes plot``: write the learning curves of the matching runs to a file; return 0.

    Raises QueryError for a bad expression or when no run matches, ValueError for a
    bad group key or runs without scores, MissingDependencyError without matplotlib.
    """
    from pyhermes._optional import pyplot, require
    from pyhermes.index.catalog import Catalog
    from pyhermes.index.query import as_filter

    condition = as_filter(args.where)
    group_by = _split_list(args.group_by) or None
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


# --------------------------------------------------------------------------- hermes serve


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
    )
    return EXIT_OK


# --------------------------------------------------------------------------- reindex


def _cmd_reindex(args: argparse.Namespace) -> int:
    """``hermes-reindex`` / ``hermes reindex``: sync, rebuild or check; return the exit status.

    Raises FileNotFoundError for a missing ROOT and what :meth:`Catalog.open` raises.
    """
    from pyhermes.index.catalog import Catalog

    root = Path(args.root)
    if not root.is_dir():
        raise FileNotFoundError(f"no such directory: {root}")
    if args.check:
        return _check(root, args)
    catalog = Catalog.open_index(root, args.index)  # reindex builds the index if there is none
    with _progress_bar(enabled=not args.quiet and not args.json) as progress:
        if args.rebuild:
            report, catalog = _rebuild(catalog, progress)
            synced = catalog.root
        else:
            report = catalog.sync(
                root, mode="full", reread=args.reread, progress=progress, warn=False
            )
            synced = root.resolve()
    if args.json:
        summary = report.as_dict()
        summary.update(
            root=str(synced), index=_describe_location(catalog.location), rebuilt=bool(args.rebuild)
        )
        _print_json(summary)
    elif not args.quiet:
        verb = "rebuilt the index of" if args.rebuild else "synced"
        print(f"{verb} {synced} (index {_describe_location(catalog.location)})")
        print(_summary_line(report))
        if report.problem_paths:
            print(f"{len(report.problem_paths)} run(s) could not be read and are not in the index:")
            for path, reason in sorted(report.problem_paths.items()):
                print(f"  {path}: {_first_line(reason)}")
        _print_warnings(report.warning_paths)
    return EXIT_OK


def _summary_line(report: SyncReport) -> str:
    return (
        f"added {report.added}, updated {report.updated}, removed {report.removed}, "
        f"unchanged {report.unchanged}, problems {report.problems}, "
        f"warnings {len(report.warning_paths)} in {report.seconds:.2f} s"
    )


def _describe_location(location: IndexLocation | None) -> str:
    if location is None:
        return "?"
    if location.file is not None:
        return str(location.file)
    from sqlalchemy.engine import make_url

    return make_url(location.url).render_as_string(hide_password=True)


@contextlib.contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """Yield a progress callback drawing a tqdm bar on stderr, or ``None``.

    There is a bar only when ``enabled``, stderr is a terminal and tqdm is installed.
    """
    if not enabled or not _isatty(sys.stderr):
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


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _rebuild(
    catalog: Catalog, progress: Callable[[int], None] | None
) -> tuple[SyncReport, Catalog]:
    """Fill a new index with the runs it serves; swap it in; return (report, catalog).

    A ``.hermes`` or cache index serves its whole root, so every run below the
    root is read. An explicit file or database (``--index``, ``HERMES_INDEX``)
    stores absolute paths and may serve many trees: only the ROOT given is read,
    and other trees come back when they are next loaded.

    A SQLite file index is built as ``<file>.rebuild-<pid>`` beside the old file and
    renamed over it (its ``-wal``/``-shm`` are removed first), so readers see the
    old index or the new one, never a half-built one. Another database has its
    hermes tables dropped and recreated (:func:`pyhermes.index.engine.rebuild_index`)
    before the sync, in one go.
    """
    from pyhermes.index import engine as engine_mod
    from pyhermes.index.catalog import Catalog

    location = catalog.location
    root = catalog.root
    settle = catalog.settle_seconds
    if location is not None and location.root is None:
        scope = catalog._folder or root
    else:
        scope = root
    if location is None:
        raise CatalogError("this catalog was not opened on an index location; cannot rebuild it")
    if location.file is None:
        engine = engine_mod.rebuild_index(location)
        fresh = Catalog(engine, engine_mod.index_root(engine, location, root), location)
        fresh.settle_seconds = settle
        report = fresh.sync(scope, mode="full", progress=progress, warn=False)
        return report, fresh

    from pyhermes.index.schema import _file_lock

    old = location.file
    temporary = old.with_name(f"{old.name}.rebuild-{os.getpid()}")
    _remove_sqlite_file(temporary)
    try:
        temporary_location = engine_mod.resolve_index(root, temporary)
        engine = engine_mod.open_engine(temporary_location)
        if location.root is None:
            # The old index keeps its root in hermes_meta: so does the new one.
            engine_mod.index_root(engine, temporary_location, root)
        # Otherwise the root comes from where the file lives (.hermes/index.sqlite, cache):
        # the temporary name does not tell it, and nothing is stored, as in the old file.
        fresh = Catalog(engine, root, temporary_location)
        fresh.settle_seconds = settle
        report = fresh.sync(scope, mode="full", progress=progress, warn=False)
        engine_mod.dispose_engines()
        _checkpoint(temporary)
        with _file_lock(location.lock_path):
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{old}{suffix}")
            os.replace(temporary, old)
    except BaseException:
        engine_mod.dispose_engines()
        _remove_sqlite_file(temporary)
        raise
    finally:
        with contextlib.suppress(OSError):
            os.unlink(f"{temporary}.lock")
    _remove_sqlite_file(temporary)  # leftovers of the temporary's -wal/-shm, if any
    engine = engine_mod.open_engine(location)
    return report, Catalog(engine, root, location)


def _checkpoint(file: Path) -> None:
    """Move the WAL of the SQLite ``file`` into the file itself, so the file stands alone."""
    connection = sqlite3.connect(file)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def _remove_sqlite_file(file: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{file}{suffix}")


# --------------------------------------------------------------------------- reindex --check


def _check(root: Path, args: argparse.Namespace) -> int:
    """Compare the runs below ``root`` with the index, changing neither; return 0 or 1.

    Lists runs on disk but not indexed, indexed but gone, changed on disk since
    they were read (file sizes and mtimes), and runs that cannot be read (as
    recorded by the last sync, and as found now). With ``--reread`` every run on
    disk is read again to check it can be.
    """
    from pyhermes.index.catalog import Catalog
    from pyhermes.index.check import compute_drift
    from pyhermes.index.engine import find_index, index_root, open_engine
    from pyhermes.index.sync import relative

    started = time.perf_counter()
    folder = root.resolve()
    location = find_index(folder, args.index)
    if getattr(args, "deep", False):
        damage = _deep_check(location)
        if damage:
            return _report_damage(location, damage, args)
    stored: dict[str, tuple[Any, ...]] = {}
    recorded: list[tuple[str, str]] = []
    recorded_warnings: list[tuple[str, list[str]]] = []
    root_of_index = folder
    if location is not None:
        engine = open_engine(location)
        root_of_index = index_root(engine, location, folder, store=False)
        catalog = Catalog(engine, Path(root_of_index), location)
        result = catalog.sql(
            "SELECT path, info_size, info_mtime_ns, args_size, args_mtime_ns, "
            "scores_size, scores_mtime_ns FROM hermes_run"
        )
        stored = {row[0]: tuple(row[1:]) for row in result.rows}
        recorded = catalog.problems()
        recorded_warnings = catalog.run_warnings()
    scope = relative(Path(root_of_index), folder)
    drift = compute_drift(
        Path(root_of_index), scope, stored, recorded, recorded_warnings, reread=args.reread
    )
    drift["seconds"] = round(time.perf_counter() - started, 4)
    stale = bool(drift["not_indexed"] or drift["gone"] or drift["changed"])
    drift["stale"] = stale
    drift["root"] = str(folder)
    drift["index"] = _describe_location(location)
    if args.json:
        _print_json(drift)
    elif not args.quiet:
        _print_drift(drift)
    return EXIT_STALE if stale or drift["problems"] else EXIT_OK


def _deep_check(location: IndexLocation | None) -> list[str]:
    """``--deep``: the findings of SQLite's ``integrity_check`` on the index file (none: sound)."""
    if location is None or location.file is None:
        return []  # no index yet, or a server database that checks its own pages
    from pyhermes.index.engine import integrity_check

    return integrity_check(location.file)


def _report_damage(location: IndexLocation | None, damage: list[str], args: argparse.Namespace) -> int:
    """Print what ``--deep`` found wrong with the index file; return the exit status (1)."""
    where = _describe_location(location)
    if args.json:
        _print_json({"index": where, "damaged": True, "integrity_check": damage})
    elif not args.quiet:
        print(f"the index {where} is damaged (PRAGMA integrity_check):")
        for finding in damage[:20]:
            print(f"  {finding}")
        print("it is rebuilt from the run directories with: hermes-reindex --rebuild")
    return EXIT_STALE


def _print_warnings(warning_paths: Mapping[str, Sequence[str]]) -> None:
    """List the runs read with warnings (they load; this is no failure), a few notes each."""
    if not warning_paths:
        return
    print(f"{len(warning_paths)} run(s) load with warnings (odd bytes or lines; no failure):")
    from pyhermes.index.sync import disk_name

    for path, notes in warning_paths.items():
        print(f"  {disk_name(path)}:")
        for note in notes[:3]:
            print(f"    {note}")
        if len(notes) > 3:
            print(f"    ... and {len(notes) - 3} more")


def _print_drift(drift: dict[str, Any]) -> None:
    from pyhermes.index.sync import disk_name

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
