"""How runs and values are shown: one module for the terminal, the web pages, JSON and notebooks.

Everything here works on library objects (:class:`pyhermes.Catalog`,
:class:`~pyhermes.storage.Experiment`) and returns plain data or text; the CLI,
the web app (:mod:`pyhermes.web`) and the notebook reprs are thin layers over it:

* values: :func:`text_value` (tables and CSV), :func:`json_value` (JSON);
* columns of a runs table: :func:`column_getter`, :func:`default_columns`;
* a page of runs: :func:`runs_page` (filter, sort, paging; never loads all rows);
* one run: :func:`run_details` (what ``hermes show`` prints);
* learning curves as data: :func:`curves_data` (grouped by :mod:`pyhermes.curves`' rules,
  downsampled for drawing);
* rendering: :func:`format_table` (terminal), :func:`html_table` (web and notebooks),
  :func:`experiments_html`, :func:`experiment_html`, :func:`sql_html` (notebook views).

Only the standard library and numpy are imported here; the index is imported when used.
"""

from __future__ import annotations

import collections
import html
import math
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyhermes.errors import QueryError

if TYPE_CHECKING:
    from pyhermes.storage import Catalog, Experiment

__all__ = [
    "MAX_CELL",
    "MIN_CELL",
    "MAX_PER_PAGE",
    "MAX_POINTS",
    "DEFAULT_LS_COLUMNS",
    "text_value",
    "json_value",
    "split_list",
    "column_getter",
    "arg_keys",
    "default_columns",
    "available_columns",
    "RunsPage",
    "runs_page",
    "run_details",
    "list_files",
    "tail",
    "downsample",
    "curves_data",
    "format_table",
    "html_table",
    "experiments_html",
    "experiment_html",
    "sql_html",
]

#: Longest cell of a terminal table, in characters; longer values are shortened with an ellipsis.
MAX_CELL = 40
#: A table fitted to a narrow terminal never shrinks a column below this width.
MIN_CELL = 6
#: The most runs one page of :func:`runs_page` holds, whatever is asked.
MAX_PER_PAGE = 500
#: The most points of one line of :func:`curves_data`.
MAX_POINTS = 2000
#: Lines of a log file shown by :func:`run_details`.
TAIL_LINES = 10
#: Columns of ``hermes ls`` before the exec-arg keys.
DEFAULT_LS_COLUMNS = ("identifier", "start_time", "finished", "final_mean")
#: Columns of the web runs table and the notebook tables: before and after the exec-arg keys.
DEFAULT_LEADING = ("identifier", "start_time", "finished", "script_name", "experiment_name")
DEFAULT_TRAILING = ("count", "final_mean", "best_window_mean", "max")


# --------------------------------------------------------------------------- values


def text_value(value: Any, *, compact: bool) -> str:
    """Return ``value`` as text: compact for tables (6 significant digits), else in full.

    ``None`` is the empty text, booleans ``true``/``false``, times ISO 8601, lists
    their items joined by spaces, bytes hexadecimal.
    """
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
        return " ".join(text_value(item, compact=compact) for item in value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


def json_value(value: Any) -> Any:
    """Return ``value`` as JSON data: times as ISO text, non-finite floats as ``None``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return json_value(float(value))
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return json_value(value.tolist())
    return str(value)


def split_list(text: str | None) -> list[str]:
    """Split comma-separated text into its stripped, non-empty parts (``None``: no parts)."""
    if text is None:
        return []
    return [part.strip() for part in text.split(",") if part.strip()]


# --------------------------------------------------------------------------- columns


def column_getter(name: str, catalog: Catalog | None) -> Callable[[Experiment], Any]:
    """Return the function reading column ``name`` of a run.

    Columns are run fields (``identifier``, ``start_time``, ...), score summaries
    (``final_mean``, or ``score.final_mean``), ``args`` (all arguments as one text),
    ``info.KEY`` and exec-arg keys (``-lr``, or a positional like ``train``). A word
    that is no field is an exec-arg key when some run of the index has it; without
    ``catalog`` that is not decided yet and the word is accepted.

    Raises:
        QueryError: ``name`` is no column.
    """
    from pyhermes.index.query.filters import RUN_FIELDS, run_value
    from pyhermes.index.store.layout import SUMMARY_COLUMNS

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


def _has_arg_key(catalog: Catalog, key: str) -> bool:
    result = catalog.sql("SELECT 1 FROM run_args WHERE key = :key LIMIT 1", {"key": key})
    return bool(result.rows)


# Exec-arg keys of an index, by (index url, change token).
_ARG_KEYS: dict[tuple[str, str], list[str]] = {}


def arg_keys(catalog: Catalog) -> list[str]:
    """Return the exec-arg keys of the runs of the index, options (``-lr``) first, then positionals.

    The answer is kept until the index changes.
    """
    token = catalog.change_token()
    cache_key = (catalog.url, token or "")
    if token is not None and cache_key in _ARG_KEYS:
        return _ARG_KEYS[cache_key]
    keys = [row[0] for row in catalog.sql("SELECT DISTINCT key FROM run_args").rows]
    keys.sort(key=lambda key: (not key.startswith("-"), key.lstrip("-"), key))
    if token is not None:
        _ARG_KEYS.clear()
        _ARG_KEYS[cache_key] = keys
    return keys


def default_columns(keys: Iterable[str]) -> list[str]:
    """Return the default columns of a runs table: run fields, the exec-arg ``keys``, summaries."""
    return [*DEFAULT_LEADING, *keys, *DEFAULT_TRAILING]


# --------------------------------------------------------------------------- a page of runs

# Match counts of runs_page, by (index, scope, change token, filter): paging and sorting
# the same filter count once.
_COUNTS: collections.OrderedDict[tuple[Any, ...], int] = collections.OrderedDict()
_COUNTS_SIZE = 64


@dataclass
class RunsPage:
    """One page of a runs table: what :func:`runs_page` returns.

    ``rows`` hold raw values (format them with :func:`text_value` or
    :func:`json_value`); ``paths`` are the runs' paths relative to the index root
    and ``identifiers`` their identifiers, row by row.
    """

    columns: list[str]
    rows: list[list[Any]]
    paths: list[str]
    identifiers: list[str]
    total: int
    page: int
    per_page: int
    where: str
    sort: list[str]
    available: list[str] = field(default_factory=list)

    @property
    def pages(self) -> int:
        """The number of pages (at least 1)."""
        return max(1, -(-self.total // self.per_page))

    def as_dict(self) -> dict[str, Any]:
        """Return the page as JSON data (the answer of ``/api/runs``)."""
        return {
            "where": self.where,
            "sort": self.sort,
            "page": self.page,
            "per_page": self.per_page,
            "pages": self.pages,
            "total": self.total,
            "columns": self.columns,
            "runs": [
                {
                    "path": path,
                    "identifier": identifier,
                    "values": {
                        column: json_value(value)
                        for column, value in zip(self.columns, row, strict=True)
                    },
                }
                for path, identifier, row in zip(self.paths, self.identifiers, self.rows, strict=True)
            ],
        }


def runs_page(
    catalog: Catalog,
    where: str | None = None,
    sort: Sequence[str] | str | None = None,
    columns: Sequence[str] | str | None = None,
    page: int = 1,
    per_page: int = 50,
    *,
    identifiers: Sequence[str] | None = None,
) -> RunsPage:
    """Return one page of the runs of ``catalog`` that match ``where``, sorted by ``sort``.

    Args:
        catalog: the open catalogue (its runs below the folder it was opened on).
        where: an expression of the grammar of ``hermes ls --where`` (empty: every run).
        sort: sort keys (``-final_mean``, ``-lr:desc``, ...); default newest first.
        columns: the columns (see :func:`column_getter`); default :func:`default_columns`.
        page: the page, from 1.
        per_page: runs per page, at most :data:`MAX_PER_PAGE` (larger values are capped).
        identifiers: when given, only the runs with these identifiers.

    Only the runs of the page are loaded (one query for the count, one per kind of value).

    Raises:
        QueryError: a malformed expression (``position`` tells where), an unknown
            column or sort key, a page or page size below 1.
    """
    from pyhermes.index.query.filters import run, sort_columns
    from pyhermes.index.query.grammar import as_filter

    if page < 1 or per_page < 1:
        raise QueryError(f"page and per_page must be at least 1, got {page} and {per_page}")
    per_page = min(per_page, MAX_PER_PAGE)
    condition = as_filter(where or None)
    if identifiers is not None:
        condition = condition & run.identifier.isin(list(identifiers))
    sort_keys = split_list(sort) if isinstance(sort, str) or sort is None else list(sort)
    sort_keys = sort_keys or ["start_time:desc"]
    sort_columns(sort_keys)
    keys = arg_keys(catalog)
    names = split_list(columns) if isinstance(columns, str) or columns is None else list(columns)
    names = names or default_columns(keys)
    getters = [column_getter(name, catalog) for name in names]
    count_key = (
        catalog.url,
        str(catalog.root),
        str(getattr(catalog, "_folder", None)),
        catalog.change_token(),
        where or "",
        tuple(identifiers) if identifiers is not None else None,
    )
    total = _COUNTS.get(count_key) if count_key[3] is not None else None
    if total is None:
        # The count and the page are two scans of a filtered index: run them at once
        # (the database works without holding the GIL).
        with ThreadPoolExecutor(max_workers=1) as pool:
            counting = pool.submit(catalog.count, condition)
            experiments = catalog.find(
                condition, order_by=sort_keys, limit=per_page, offset=(page - 1) * per_page
            )
            total = counting.result()
        if count_key[3] is not None:
            _COUNTS[count_key] = total
            while len(_COUNTS) > _COUNTS_SIZE:
                _COUNTS.popitem(last=False)
    else:
        _COUNTS.move_to_end(count_key)
        experiments = catalog.find(
            condition, order_by=sort_keys, limit=per_page, offset=(page - 1) * per_page
        )
    root = str(catalog.root).rstrip(os.sep) + os.sep
    return RunsPage(
        columns=names,
        rows=[[getter(experiment) for getter in getters] for experiment in experiments],
        paths=[
            str(experiment._path)[len(root) :].replace(os.sep, "/") for experiment in experiments
        ],
        identifiers=[experiment.identifier for experiment in experiments],
        total=total,
        page=page,
        per_page=per_page,
        where=where or "",
        sort=sort_keys,
        available=available_columns(keys),
    )


def available_columns(keys: Iterable[str]) -> list[str]:
    """Return every column a runs table can show: run fields, exec-arg ``keys``, summaries, args."""
    from pyhermes.index.query.filters import RUN_FIELDS
    from pyhermes.index.store.layout import SUMMARY_COLUMNS

    return [*RUN_FIELDS, *keys, *SUMMARY_COLUMNS, "args"]


# --------------------------------------------------------------------------- one run


def run_details(experiment: Experiment, tail_lines: int = TAIL_LINES) -> dict[str, Any]:
    """Return everything about one run, as plain data (``hermes show --format json``).

    Keys: the run fields, ``info``, ``args``, ``args_dict``, ``scores`` (the score
    summary), ``files`` (name and size, ``None`` for a folder), ``stdout_tail``,
    ``stderr_tail`` (the last lines, ``None`` without the file), ``pth_files`` and
    ``result_files`` (names).
    """
    from pyhermes import rundir
    from pyhermes.index.query.filters import RUN_FIELDS, run_value

    folder = experiment.path_to_experiment
    files = list_files(folder)
    return {
        **{name: run_value(experiment, name) for name in RUN_FIELDS},
        "info": experiment.info_dict,
        "args": experiment.exec_arg_lines,
        "args_dict": experiment.exec_args_dict,
        "scores": experiment.score_summary.as_dict(),
        "files": [{"name": name, "size": size} for name, size in files],
        "stdout_tail": tail(folder / rundir.STDOUT_FILE, tail_lines),
        "stderr_tail": tail(folder / rundir.STDERR_FILE, tail_lines),
        "pth_files": [name for name, size in files if name.endswith(rundir.PTH_SUFFIX)],
        "result_files": [name for name, size in files if name.endswith(rundir.RESULT_SUFFIX)],
    }


def list_files(folder: Path) -> list[tuple[str, int | None]]:
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


def tail(path: Path, count: int, limit: int = 64 * 1024) -> list[str] | None:
    """Return the last ``count`` lines of the text file ``path`` (``None`` if it does not exist).

    The bytes are decoded by the rule of :func:`pyhermes.rundir.decode_text`, without warnings.
    """
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            data = handle.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    from pyhermes.rundir import decode_text

    lines = decode_text(data, path, notes=[]).splitlines()  # the decoding rule, quietly
    if size > limit and lines:
        lines = lines[1:]  # the first line read is probably cut
    return list(collections.deque(lines, maxlen=count))


# --------------------------------------------------------------------------- curves


def downsample(length: int, max_points: int = MAX_POINTS) -> Any:
    """Return the indices (a numpy array) of at most ``max_points`` evenly spread points of ``length``.

    The first and last points are always kept.
    """
    import numpy as np

    if length <= max_points:
        return np.arange(length)
    return np.unique(np.linspace(0, length - 1, max(2, max_points)).round().astype(np.intp))


def _series(values: Any, positions: Any) -> list[float | None]:
    return [None if not math.isfinite(value) else value for value in values[positions].tolist()]


def curves_data(
    experiments: Sequence[Experiment],
    group_by: str | Sequence[str] | None = None,
    window: int = 100,
    band: str | None = "std",
    *,
    min_runs: int | None = None,
    max_points: int = MAX_POINTS,
    raw: bool = False,
) -> dict[str, Any]:
    """Return the learning curves of ``experiments`` as JSON data, ready to draw.

    With ``group_by`` the runs are grouped and each group is the mean of its runs'
    smoothed scores with a band, by the rules of :mod:`pyhermes.curves` (the same as
    :meth:`ExperimentList.plot_scores`). Without it, each run is its own line: its
    scores smoothed over ``window`` (the trailing mean) and, for ``band="std"``, a band
    of the trailing standard deviation; ``raw`` adds the run's scores themselves.
    Every series holds at most ``max_points`` points (evenly spread episodes).

    Returns:
        ``{"window", "band", "group_by", "runs", "skipped", "lines": [{"label",
        "n", "x", "y", "low", "high"[, "raw"]}]}``; non-finite values are ``None``.

    Raises:
        ValueError: a bad ``band``, ``window``, ``min_runs`` or group key; no run has
            scores ("no scores to plot ...").
    """
    import numpy as np

    from pyhermes.curves import (
        BANDS,
        band_limits,
        group_label,
        grouped_curves,
        parse_group_by,
    )
    from pyhermes.plot import smoothen

    if band not in BANDS:
        raise ValueError(f"band must be one of 'std', 'ci95' or None, got {band!r}")
    keys = parse_group_by(group_by)
    lines: list[dict[str, Any]] = []
    if keys:
        for values, n, curve in grouped_curves(experiments, keys, window, min_runs):
            positions = downsample(len(curve.mean), max_points)
            limits = band_limits(curve, band)
            lines.append(
                {
                    "label": group_label(keys, values, n),
                    "n": n,
                    "x": positions.tolist(),
                    "y": _series(curve.mean, positions),
                    "low": None if limits is None else _series(limits[0], positions),
                    "high": None if limits is None else _series(limits[1], positions),
                }
            )
        with_scores = sum(line["n"] for line in lines)
    else:
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        for experiment in experiments:
            scores = np.asarray(experiment.scores(), dtype=np.float64)
            if not scores.size:
                continue
            mean, std = smoothen(scores, window)
            positions = downsample(len(mean), max_points)
            line: dict[str, Any] = {
                "label": experiment.identifier,
                "n": 1,
                "x": positions.tolist(),
                "y": _series(mean, positions),
                "low": _series(mean - std, positions) if band == "std" else None,
                "high": _series(mean + std, positions) if band == "std" else None,
            }
            if raw:
                line["raw"] = _series(scores, positions)
            lines.append(line)
        if not lines:
            raise ValueError(
                f"no scores to plot: none of the {len(experiments)} runs given has any scores"
            )
        with_scores = len(lines)
    return {
        "window": window,
        "band": band,
        "group_by": keys,
        "runs": len(experiments),
        "skipped": len(experiments) - with_scores,
        "lines": lines,
    }


# --------------------------------------------------------------------------- terminal


def format_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int | None = None,
    ellipsis: str = "…",
) -> str:
    """Return ``rows`` of text under ``columns`` as left-aligned columns two spaces apart.

    A header line and a line of dashes come first. Cells longer than
    :data:`MAX_CELL` are shortened with ``ellipsis``; with ``width`` (the terminal
    width) the widest columns shrink further, down to :data:`MIN_CELL`, to fit it.
    """
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


# --------------------------------------------------------------------------- HTML

#: Inline style of the tables of notebooks (the web pages have their own style sheet).
_NOTEBOOK_STYLE = (
    "<style>.hermes-table td.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".hermes-table td,.hermes-table th{padding:2px 8px;white-space:nowrap}"
    ".hermes-note{color:#666;font-size:90%}</style>"
)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def html_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    header: Callable[[str], str] | None = None,
    cell: Callable[[int, int, Any], str | None] | None = None,
    table_id: str | None = None,
) -> str:
    """Return an HTML ``<table class="hermes-table">`` of raw values, every text escaped.

    Values are shown with :func:`text_value` (compact); numbers get ``class="num"``.

    Args:
        columns: the column names.
        rows: the rows of raw values.
        header: returns the HTML of a column's header cell content (default: the escaped name).
        cell: returns the HTML of a cell's content for (row, column, value), or ``None``
            for the default rendering.
        table_id: the ``id`` attribute of the table.
    """
    escape = html.escape
    identity = f' id="{escape(table_id)}"' if table_id else ""
    parts = [f'<table class="hermes-table"{identity}>']
    parts.append("<thead><tr>")
    for name in columns:
        parts.append(f"<th>{header(name) if header else escape(name)}</th>")
    parts.append("</tr></thead><tbody>")
    for row_number, row in enumerate(rows):
        parts.append("<tr>")
        for column_number, value in enumerate(row):
            content = cell(row_number, column_number, value) if cell else None
            if content is None:
                content = escape(text_value(value, compact=True))
            attributes = ' class="num"' if _is_number(value) else ""
            parts.append(f"<td{attributes}>{content}</td>")
        parts.append("</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def experiments_html(experiments: Sequence[Experiment], limit: int = 20) -> str:
    """Return a compact HTML table of runs (the notebook view of an ExperimentList).

    The columns are those of the web runs table for the runs shown; only the first
    ``limit`` runs are shown, followed by a note of how many more there are.
    """
    shown = list(experiments[:limit])
    keys: dict[str, None] = {}
    for experiment in shown:
        keys.update(dict.fromkeys(experiment.exec_args_dict))
    ordered = sorted(keys, key=lambda key: (not key.startswith("-"), key.lstrip("-"), key))
    names = default_columns(ordered)
    getters = [column_getter(name, None) for name in names]
    rows = [[getter(experiment) for getter in getters] for experiment in shown]
    note = f"{len(experiments):,} runs" if len(experiments) != 1 else "1 run"
    if len(experiments) > len(shown):
        note += f"; the first {len(shown)} shown, {len(experiments) - len(shown):,} more"
    return (
        _NOTEBOOK_STYLE
        + html_table(names, rows)
        + f'<div class="hermes-note">ExperimentList: {html.escape(note)}</div>'
    )


def experiment_html(experiment: Experiment) -> str:
    """Return an HTML view of one run (the notebook view of an Experiment): fields, args, scores."""
    from pyhermes.index.query.filters import RUN_FIELDS, run_value

    fields = [(name, run_value(experiment, name)) for name in RUN_FIELDS]
    summary = list(experiment.score_summary.as_dict().items())
    args = [(line,) for line in experiment.exec_arg_lines] or [("(none)",)]
    return (
        _NOTEBOOK_STYLE
        + f"<div><b>Experiment {html.escape(experiment.identifier)}</b></div>"
        + '<div style="display:flex;gap:24px;align-items:flex-start">'
        + html_table(["field", "value"], fields)
        + html_table(["argument"], args)
        + html_table(["score", "value"], summary)
        + "</div>"
    )


def sql_html(columns: Sequence[str], rows: Sequence[Sequence[Any]], limit: int = 50) -> str:
    """Return the notebook view of a query result: the first ``limit`` rows and a count."""
    note = f"{len(rows):,} rows" if len(rows) != 1 else "1 row"
    if len(rows) > limit:
        note += f"; the first {limit} shown"
    return (
        _NOTEBOOK_STYLE
        + html_table(columns, rows[:limit])
        + f'<div class="hermes-note">{html.escape(note)}</div>'
    )

