"""The command line: ``hermes`` (``ls``, ``show``, ``sql``, ``plot``, ``serve``, ``reindex``, ``tag``,
``note``, ``archive``, ``unarchive``, ``gc``) and ``hermes-reindex``.

A thin layer over the library (:class:`pyhermes.Catalog`,
:mod:`pyhermes.index.maintenance`, :mod:`pyhermes.present`), one module per
command (:mod:`pyhermes.cli.ls`, ``show``, ``sql``, ``plot``, ``serve``,
``reindex``, ``tag`` (with ``note``), ``archive`` (with ``unarchive``), ``gc``; shared helpers in :mod:`pyhermes.cli.common`, the entry points in
:mod:`pyhermes.cli.main`): argparse, output to the terminal, and errors turned
into one message on stderr (``hermes: error: ...``) with a non-zero exit
status, never a traceback for bad input::

    hermes-reindex [ROOT] [--index PATH_OR_URL] [--reread] [--rebuild] [--check [--deep]]
                   [--json | --quiet]
    hermes ls   [ROOT] [--where=EXPR] [--sort=KEY[,KEY]] [--limit N] [--columns=COL,...]
                [--format table|csv|json]
    hermes show RUN [--root ROOT] [--format text|json]
    hermes sql  [ROOT] "SELECT ..." [--format table|csv|json]
    hermes plot [ROOT] [--where=EXPR] [--group-by=KEY[,KEY]] [--window N]
                [--band std|ci95|none] -o FILE.png
    hermes serve [ROOT] [--host 127.0.0.1] [--port 8765] [--open]
    hermes tag  [ROOT] (--where=EXPR | RUN...) [--add TAG]... [--remove TAG]... [--format table|json]
    hermes note RUN TEXT [--root ROOT] [--format table|json]
    hermes archive   [ROOT] --where=EXPR [--yes] [--format table|json]
    hermes unarchive [ROOT] --where=EXPR [--yes] [--format table|json]
    hermes gc   [ROOT] [--where=EXPR] [--older-than 7d] [--crash-after AGE] [--yes] [--purge]
                [--format table|json]
    hermes reindex ...   (the options of hermes-reindex)

Every command takes ``--index PATH_OR_URL`` (default: ``$HERMES_INDEX``, else the
rule of the README); ``ls``, ``show``, ``sql``, ``plot`` and ``serve`` take ``--sync
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

Exit status of ``hermes ls|show|sql|plot|serve``:

* 0 -- done;
* 1 -- bad input: malformed expression, unknown column or sort key, no or several
  runs matching RUN, a writing SQL statement, missing ROOT, missing optional
  dependency;
* 2 -- usage error;
* 3 -- runtime error about the index itself (index of a newer pyhermes, database
  unreachable, invalid index URL, I/O error).

Exit status of ``hermes tag|note|archive|unarchive|gc``: as for ``ls``, and 2
also when a command that moves or deletes runs (``archive``, ``unarchive``, ``gc
--purge``) was not confirmed because stdin is not a terminal and ``--yes`` was
not given: like a missing required option, the command line is incomplete for a
run without a terminal (1 stays "bad input", 3 "the index").

Any command interrupted with Ctrl-C exits with 130; a closed output pipe
(``hermes ls | head``) ends the command quietly with 141.
"""

from __future__ import annotations

from pyhermes.cli.common import (
    EXIT_OK,
    EXIT_RUNTIME,
    EXIT_STALE,
    EXIT_USAGE,
    format_table,
    join_dash_values,
)
from pyhermes.cli.main import hermes_main, reindex_main

__all__ = [
    "hermes_main",
    "reindex_main",
    "format_table",
    "join_dash_values",
    "EXIT_OK",
    "EXIT_STALE",
    "EXIT_USAGE",
    "EXIT_RUNTIME",
]
