"""One table of runs straight from SQL: the columns asked for, of the runs a filter matches,
in order, one page.

This is the one path by which runs become a table: ``hermes ls``, the runs page
and ``/api/runs`` of ``hermes serve``, their CSV and JSON exports and the
notebook views of a bound list all call :func:`runs_table`. No run object is
built: run fields and score summaries come from one SELECT of ``hermes_run``
(the page, in order), exec args, ``hermes.info`` values and tags from one SELECT each
for the runs of the page, only when a column needs them.

A column is named as in ``hermes ls --columns`` (:func:`resolve_column`): a run
field (``identifier``, ``start_time``, ...), a score summary (``final_mean``, or
``score.final_mean``), ``args`` (all arguments as one text), ``tags`` (the run's
tags joined by ``", "``), ``info.KEY`` or an
exec-arg key (``-lr``, or a positional like ``train``). Values are those of the
same column read from a run object (see
:func:`pyhermes.index.query.filters.run_value`): times as datetimes, ``finished``
a bool, exec args converted as :func:`pyhermes.rundir.exec_args_dict` does.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from pyhermes import rundir
from pyhermes.errors import QueryError
from pyhermes.index.query.filters import RUN_FIELDS, Filter, everything
from pyhermes.index.rules import disk_name
from pyhermes.index.store.layout import SUMMARY_COLUMNS
from pyhermes.index.store.sql_reader import Reader, to_datetime

__all__ = [
    "DEFAULT_LEADING", "DEFAULT_TRAILING", "RunSource", "RunsTable", "Column", "resolve_column",
    "runs_table", "table_pages", "arg_keys", "available_columns", "default_columns",
    "FOLDABLE_FIELDS", "FOLD_SCAN_LIMIT", "same_for_all",
]

#: Default columns of every runs table, before and after the exec-arg keys of its runs: the
#: score summaries right after the identifier (what a sweep is read for), then the
#: hyperparameters, then when and what ran.
DEFAULT_LEADING = ("identifier", "final_mean", "best_window_mean", "max", "count")
DEFAULT_TRAILING = ("finished", "start_time", "script_name", "experiment_name")
#: The run fields a table may fold into one "same for all" line (see :func:`same_for_all`):
#: the names of the run's folder; exec-arg keys fold too.
FOLDABLE_FIELDS = ("script_name", "experiment_name")
#: Up to this many matched runs, a filtered table checks which columns all of them share;
#: beyond, only what every run of the index shares is folded (see :func:`same_for_all`).
FOLD_SCAN_LIMIT = 5_000
_RUN, _ARG = "hermes_run", "hermes_arg"


class RunSource(Protocol):
    """What a runs table reads: an open index (:class:`pyhermes.index.query.runs.RunQueries`)."""

    root: Path
    reader: Reader
    url: str

    def select_rows(
        self, columns: Sequence[str], where: Filter, order_by: Sequence[str] | str | None,
        limit: int | None, offset: int,
    ) -> list[tuple[Any, ...]]: ...

    def details(self, what: str, run_ids: Sequence[int]) -> dict[int, Any]: ...

    def change_token(self) -> str | None: ...


class Column(NamedTuple):
    """A column of a runs table: its ``name`` as asked, its ``kind`` and what it reads.

    ``kind`` is ``"run"`` (``source`` a ``hermes_run`` column), ``"summary"``
    (``source`` a ``hermes_run`` summary column), ``"info"`` (``source`` the
    ``hermes.info`` key), ``"args"``, ``"tags"`` or ``"arg"`` (``source`` the exec-arg key).
    """

    name: str
    kind: str
    source: str


def resolve_column(name: str, keys: Collection[str] | None) -> Column:
    """Return the :class:`Column` ``name`` names.

    A word that is no field is an exec-arg key when it starts with ``-`` or when
    ``keys`` (the exec-arg keys of the index) hold it; with ``keys`` ``None`` that
    is not decided yet and any single word is accepted.

    Raises:
        QueryError: ``name`` is no column.
    """
    if name in ("args", "tags"):
        return Column(name, name, "")
    if name.startswith("info.") and len(name) > len("info."):
        return Column(name, "info", name[len("info.") :])
    base = name
    for prefix, names in (("score.", SUMMARY_COLUMNS), ("run.", RUN_FIELDS)):
        if name.startswith(prefix) and name[len(prefix) :] in names:
            base = name[len(prefix) :]
    if base in SUMMARY_COLUMNS:
        return Column(name, "summary", SUMMARY_COLUMNS[base])
    if base in RUN_FIELDS:
        return Column(name, "run", base)
    if len(name.split()) == 1 and name == name.strip():
        if (name.startswith("-") and name.strip("-")) or keys is None or name in keys:
            return Column(name, "arg", name)
    raise QueryError(
        f"unknown column {name!r}; expected a run field ({', '.join(RUN_FIELDS)}), "
        f"a score summary ({', '.join(SUMMARY_COLUMNS)}), args, tags, info.KEY, "
        "or an exec-arg key like -lr"
    )


@dataclass
class RunsTable:
    """Rows of runs under ``columns``: what :func:`runs_table` returns.

    ``rows`` hold raw values, row by row; ``paths`` are the runs' paths relative to
    the index root (``/``-separated) and ``identifiers`` their identifiers.
    """

    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    identifiers: list[str] = field(default_factory=list)


def _run_value(name: str, value: Any, root_prefix: str) -> Any:
    """A ``hermes_run`` value as the run object gives it (see ``filters.run_value``)."""
    if name in ("start_time", "end_time"):
        return to_datetime(value)
    if name == "finished":
        return bool(value)
    if name == "path":
        return root_prefix + disk_name(value)
    if name == "identifier":
        return disk_name(value)
    if name == "execution_time" and value is not None:
        return float(value)
    return value


def runs_table(
    source: RunSource,
    where: Filter,
    columns: Sequence[str] | None = None,
    order_by: Sequence[str] | str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> RunsTable:
    """Return the ``columns`` of the runs matching ``where``, in ``order_by``, ``limit`` from ``offset``.

    ``columns`` ``None`` means the default columns (:func:`default_columns`): the run
    fields of :data:`DEFAULT_LEADING`, the exec-arg keys the rows have (options
    first), the summaries of :data:`DEFAULT_TRAILING`.

    Raises:
        QueryError: an unknown column or sort key.
    """
    wanted = None if columns is None else [resolve_column(name, arg_keys(source)) for name in columns]
    chosen = wanted or [resolve_column(name, ()) for name in (*DEFAULT_LEADING, *DEFAULT_TRAILING)]
    stored = {column.source for column in chosen if column.kind == "run"}
    if "job_idx" in stored:
        stored.discard("job_idx")
        stored.add("identifier")  # read from the identifier, as a run object does
    summaries = sorted({column.source for column in chosen if column.kind == "summary"})
    selected = ["id", "path", "identifier", *sorted(stored - {"path", "identifier"}), *summaries]
    rows = source.select_rows(selected, where, order_by, limit, offset)
    run_ids = [row[0] for row in rows]
    needs_args = columns is None or any(column.kind in ("arg", "args") for column in chosen)
    args = source.details("args", run_ids) if needs_args else {}
    infos = source.details("info", run_ids) if any(c.kind == "info" for c in chosen) else {}
    tags = source.details("tags", run_ids) if any(c.kind == "tags" for c in chosen) else {}
    parsed = {run_id: rundir.exec_args_dict(lines) for run_id, lines in args.items()}
    if wanted is None:
        present = {key for args_of in parsed.values() for key in args_of}
        keys = [key for key in arg_keys(source) if key in present]
        wanted = [*chosen[: len(DEFAULT_LEADING)], *(Column(k, "arg", k) for k in keys),
                  *chosen[len(DEFAULT_LEADING) :]]
    root_prefix = str(source.root).rstrip("/") + "/"
    at = {name: number for number, name in enumerate(selected)}
    table = RunsTable([column.name for column in wanted])
    for row in rows:
        run_id = row[0]
        values: list[Any] = []
        for column in wanted:
            if column.kind == "run":
                if column.source == "job_idx":
                    values.append(rundir.parse_identifier(disk_name(row[at["identifier"]]))[1])
                else:
                    values.append(_run_value(column.source, row[at[column.source]], root_prefix))
            elif column.kind == "summary":
                value = row[at[column.source]]
                values.append((value or 0) if column.source == SUMMARY_COLUMNS["count"] else value)
            elif column.kind == "info":
                values.append(infos.get(run_id, {}).get(column.source))
            elif column.kind == "args":
                values.append(" ".join(args.get(run_id, [])))
            elif column.kind == "tags":
                values.append(", ".join(tags.get(run_id, [])))
            else:
                values.append(parsed.get(run_id, {}).get(column.source))
        table.rows.append(values)
        table.paths.append(disk_name(row[1]))
        table.identifiers.append(disk_name(row[2]))
    return table


def table_pages(
    source: RunSource,
    where: Filter,
    columns: Sequence[str] | None,
    order_by: Sequence[str] | str | None,
    page_size: int,
) -> Iterator[RunsTable]:
    """Yield :func:`runs_table` page after page of ``page_size`` runs until every match is read.

    The columns are fixed by the first page (the default columns take the exec-arg
    keys of the whole index, so every page has the same columns). An export reads
    this way so that never every row is in memory at once.
    """
    names = list(columns) if columns is not None else default_columns(arg_keys(source))
    offset = 0
    while True:
        page = runs_table(source, where, names, order_by, page_size, offset)
        yield page
        if len(page.rows) < page_size:
            return
        offset += page_size


# Exec-arg keys of an index, by (index url, change token).
_ARG_KEYS: dict[tuple[str, str], list[str]] = {}


def arg_keys(source: RunSource) -> list[str]:
    """Return the exec-arg keys of the runs of the index, options (``-lr``) first, then positionals.

    One query, kept until the index changes (its change token).
    """
    token = source.change_token()
    cache_key = (source.url, token or "")
    if token is not None and cache_key in _ARG_KEYS:
        return _ARG_KEYS[cache_key]
    keys = [row[0] for row in source.reader.rows("SELECT DISTINCT key FROM hermes_arg")]
    keys.sort(key=lambda key: (not key.startswith("-"), key.lstrip("-"), key))
    if token is not None:
        _ARG_KEYS.clear()
        _ARG_KEYS[cache_key] = keys
    return keys


def default_columns(keys: Iterable[str]) -> list[str]:
    """Return the default columns of a runs table holding the exec-arg ``keys``."""
    return [*DEFAULT_LEADING, *keys, *DEFAULT_TRAILING]


def available_columns(keys: Iterable[str]) -> list[str]:
    """Return every column a runs table can show: run fields, exec-arg ``keys``, summaries, args, tags."""
    return [*RUN_FIELDS, *keys, *SUMMARY_COLUMNS, "tags", "args"]


# Which candidate columns every run of an index shares, by (index url, change token).
_SHARED_BY_ALL: dict[tuple[str, str], dict[tuple[str, str], bool]] = {}


def _shared_by_every_run(source: RunSource, candidates: dict[str, Any]) -> set[str]:
    """The names of ``candidates`` whose value every run of the index shares, from its indexes
    alone: the run folder (``parent``, whose names are the script and experiment) by its
    lowest and highest value; an exec-arg key by its count and lowest and highest value.
    Kept until the index changes (its change token)."""
    token = source.change_token()
    cache_key = (source.url, token or "")
    known = _SHARED_BY_ALL.get(cache_key, {}) if token is not None else {}
    if token is not None and cache_key not in _SHARED_BY_ALL:
        _SHARED_BY_ALL.clear()
        _SHARED_BY_ALL[cache_key] = known
    runs: int | None = None
    shared: set[str] = set()
    rows = source.reader.rows_alone  # scans of every run: they keep no other read waiting
    for name, value in candidates.items():
        fact = (name, repr(value))
        if fact not in known:
            if runs is None:
                runs = int(rows(f"SELECT COUNT(*) FROM {_RUN}")[0][0])
            if name in FOLDABLE_FIELDS:
                low = rows(f"SELECT MIN(parent) FROM {_RUN}")[0][0]
                high = rows(f"SELECT MAX(parent) FROM {_RUN}")[0][0]
                known[fact] = runs > 0 and low == high
            else:
                bound = {"key": name}
                lines, valued = rows(
                    f"SELECT COUNT(*), COUNT(value) FROM {_ARG} WHERE key = :key", bound
                )[0]
                low = rows(f"SELECT MIN(value) FROM {_ARG} WHERE key = :key", bound)[0][0]
                high = rows(f"SELECT MAX(value) FROM {_ARG} WHERE key = :key", bound)[0][0]
                known[fact] = runs > 0 and lines == runs and low == high and valued in (0, runs)
        if known[fact]:
            shared.add(name)
    return shared


def same_for_all(
    source: RunSource, where: Filter, candidates: dict[str, Any], total: int, *, whole_index: bool
) -> list[str]:
    """Return the names of ``candidates`` whose value every one of the ``total`` runs matching
    ``where`` shares.

    ``candidates`` maps a column name to the value a page of the runs shows in it, the
    same on every row of that page (a column that differs within a page cannot be
    the same for all). Run fields of :data:`FOLDABLE_FIELDS` and exec-arg keys are
    checked, other columns never returned. ``whole_index`` says that ``where`` holds no
    folder scope (a catalogue opened on the index's root).

    Cheap at any size: what every run of the index shares is read from its indexes
    (:func:`_shared_by_every_run`, kept until the index changes) and holds for any
    filter. The other candidates of a filtered page are checked over the matched runs
    (two aggregates) only up to :data:`FOLD_SCAN_LIMIT` matches. An exec-arg key is the
    same for all when each matched run holds it once (as many lines as runs) with one value.
    """
    from pyhermes.index.query.filters import Params
    from pyhermes.index.query.select import select_runs

    foldable = {
        name: value for name, value in candidates.items()
        if name in FOLDABLE_FIELDS
        or (name not in RUN_FIELDS and name not in SUMMARY_COLUMNS and resolve_column(name, None).kind == "arg"
            and not isinstance(value, (list, tuple)))
    }
    if total < 1 or not foldable:
        return []
    folded = _shared_by_every_run(source, foldable) if whole_index else set()
    rest = [name for name in foldable if name not in folded]
    if rest and (where is not everything or not whole_index) and total <= FOLD_SCAN_LIMIT:
        if any(name in FOLDABLE_FIELDS for name in rest):
            sql, params = select_runs(["MIN(parent)", "MAX(parent)"], where)
            low, high = source.reader.rows(sql, params)[0]
            if low == high:
                folded.update(name for name in rest if name in FOLDABLE_FIELDS)
        keys = [name for name in rest if name not in FOLDABLE_FIELDS]
        if keys:
            bound = Params("key")
            matched, matched_params = select_runs(["id"], where)
            wanted = ", ".join(bound.bind(key) for key in keys)
            sql = (
                f"SELECT key, COUNT(*), MIN(value), MAX(value), COUNT(value) FROM {_ARG} "
                f"WHERE key IN ({wanted}) AND run_id IN ({matched}) GROUP BY key"
            )
            for key, lines, low, high, valued in source.reader.rows(sql, {**bound.values, **matched_params}):
                if lines == total and low == high and valued in (0, total):
                    folded.add(key)
    return [name for name in candidates if name in folded]
