"""What the views of ``hermes serve`` read from the catalogue: every data access of the web app.

Plain functions over a :class:`~pyhermes.storage.Catalog` (or a run) and the parsed
arguments of :mod:`pyhermes.web.params`; they return library objects or plain data
and know nothing of requests, HTML or HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyhermes import present
from pyhermes.web.state import MAX_COMPARE, NotFound

if TYPE_CHECKING:
    from pyhermes.result import Result
    from pyhermes.storage import Catalog, Experiment
    from pyhermes.web.params import CurvesOptions, RunsView, Selection

__all__ = [
    "page_of_runs",
    "match_count",
    "every_match",
    "selected_runs",
    "curves",
    "default_group_by",
    "runs_to_add",
    "sql_answer",
    "result_file",
    "result_series",
    "run_table",
    "RUN_TABLES",
    "page_tags",
    "run_curation",
]

#: The tables of a run's details (:func:`run_table`), in the order of the Run page.
RUN_TABLES = ("fields", "info", "args", "scores", "files")


def page_of_runs(
    catalog: Catalog, view: RunsView, identifiers: Sequence[str] | None = None, *,
    count_wait: float | None = None,
) -> present.RunsPage:
    """Return the page of runs that ``view`` shows (only those of ``identifiers`` when given);
    ``count_wait``: how long it waits for its count (see :func:`pyhermes.present.runs_page`).

    Raises:
        QueryError: a malformed filter, an unknown column or sort key (see
            :func:`pyhermes.present.runs_page`).
    """
    return present.runs_page(
        catalog,
        where=view["where"],
        sort=view["sort"] or None,
        columns=view["columns"],
        page=view["page"],
        per_page=view["per_page"],
        identifiers=identifiers,
        count_wait=count_wait,
    )


def match_count(catalog: Catalog, view: RunsView, identifiers: Sequence[str] | None = None) -> int:
    """Return how many runs match ``view`` (the count a Runs page left to follow).

    Raises:
        QueryError: as :func:`page_of_runs`.
    """
    return present.count_of(catalog, view["where"], identifiers)


def every_match(
    catalog: Catalog, view: RunsView, identifiers: Sequence[str] | None = None
) -> tuple[list[str], Iterator[tuple[str, list[Any]]]]:
    """Return the columns and an iterator of (path, row) of every run matching ``view``
    (see :func:`pyhermes.present.export_pages`: read page by page as it is consumed).

    Raises:
        QueryError: as :func:`page_of_runs`.
    """
    return present.export_pages(
        catalog, view["where"], view["sort"] or None, view["columns"], identifiers=identifiers
    )


def selected_runs(catalog: Catalog, chosen: Selection) -> tuple[list[Experiment], int]:
    """Return the runs of a compare (at most :data:`~pyhermes.web.state.MAX_COMPARE`) and the match count.

    Raises:
        QueryError: a malformed filter or an unknown sort key.
    """
    return present.selection(catalog, chosen.where, chosen.identifiers, chosen.sort, MAX_COMPARE)


def curves(
    catalog: Catalog, chosen: Selection, options: CurvesOptions, *, full: bool = False
) -> dict[str, Any]:
    """Return the curves of the selected runs as JSON data (the answer of ``/api/curves``).

    Every run of the selection is read when grouped; one line per run draws at most
    :data:`~pyhermes.web.state.MAX_COMPARE` of them, a sample seeded by the query (see
    :func:`pyhermes.present.compare.compare_curves`). ``full`` keeps every point (CSV).

    Raises:
        QueryError: a malformed filter or an unknown sort key.
        ValueError: a bad window, band or group key, or no run with scores.
    """
    from pyhermes.present.compare import compare_curves

    return compare_curves(
        catalog, chosen.where, chosen.identifiers, chosen.sort, options, full=full,
        max_lines=MAX_COMPARE,
    )


def default_group_by(catalog: Catalog, chosen: Selection) -> str:
    """Return the grouping a compare of ``chosen`` starts with: the keys that differ between
    its runs except seeds, comma-separated (see :func:`pyhermes.present.compare.default_group_keys`).

    Raises:
        QueryError: a malformed filter.
    """
    from pyhermes.present.compare import default_group_keys

    return ",".join(default_group_keys(catalog, chosen.where, chosen.identifiers))


def runs_to_add(catalog: Catalog, text: str) -> tuple[list[str], int]:
    """Return the identifiers of the runs ``text`` names (identifiers, prefixes or a filter; at
    most :data:`~pyhermes.web.state.MAX_COMPARE`) and how many it names in all.

    Raises:
        QueryError: an ambiguous prefix, or text that is neither identifiers nor a filter.
    """
    from pyhermes.present.compare import runs_to_add as named_runs

    return named_runs(catalog, text, MAX_COMPARE)


def sql_answer(catalog: Catalog, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Return (columns, rows) of one read-only statement over the index's views.

    Raises:
        QueryError: a malformed statement.
        CatalogError: a statement that would write (``ReadOnlyQueryError``), or the
            database failed.
    """
    result = catalog.sql(query)
    return result.columns, result.rows


def result_file(experiment: Experiment, name: str) -> Result:
    """Return the ``.result`` file ``name`` of a run, loaded.

    Raises:
        NotFound: the run has no such result file.
        UntrustedFileError: the file holds objects only a trusted load would build.
    """
    from pyhermes import rundir
    from pyhermes.result import Result

    if name not in rundir.list_files(experiment.path_to_experiment, rundir.RESULT_SUFFIX):
        raise NotFound(f"run {experiment.identifier} has no result file {name!r}")
    return Result.load(experiment.file(name))


def result_series(result: Result, max_points: int) -> dict[str, Any]:
    """Return the scalar series of a Result (its 1-D numeric values) downsampled, and the other keys.

    Returns:
        ``{"file", "series": {key: {"x", "y"}}, "other_keys"}``, at most
        ``max_points`` (and :data:`pyhermes.present.MAX_POINTS`) points per series.
    """
    import numpy as np

    series: dict[str, Any] = {}
    others: list[str] = []
    for key, value in result.items():
        try:
            values = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            values = None
        if values is None or values.ndim != 1 or not values.size:
            others.append(str(key))
            continue
        positions = present.downsample(len(values), min(max_points, present.MAX_POINTS))
        series[str(key)] = {
            "x": positions.tolist(),
            "y": [present.json_value(float(item)) for item in values[positions]],
        }
    return {"file": result.file_name, "series": series, "other_keys": others}


def run_table(details: Mapping[str, Any], table: str) -> tuple[list[str], list[list[Any]]]:
    """Return (columns, rows) of one table of the Run page: fields, info, args, scores or files.

    Raises:
        ValueError: ``table`` is none of those.
    """
    if table == "fields":
        skip = {"info", "args", "args_dict", "scores", "files", "stdout_tail", "stderr_tail",
                "pth_files", "result_files", "url_path", "tags", "notes"}
        return ["field", "value"], [[key, value] for key, value in details.items() if key not in skip]
    if table == "info":
        return ["key", "value"], [[key, value] for key, value in details["info"].items()]
    if table == "args":
        return ["argument"], [[line] for line in details["args"]]
    if table == "scores":
        return ["summary", "value"], [[key, value] for key, value in details["scores"].items()]
    if table == "files":
        return ["name", "size"], [[item["name"], item["size"]] for item in details["files"]]
    raise ValueError(f"table must be one of {', '.join(RUN_TABLES)}, not {table!r}")


def page_tags(catalog: Catalog, page: present.RunsPage) -> list[list[str]]:
    """Return the tags of each run of ``page``, row by row (sorted; ``[]`` for none).

    Read from the runs' ``hermes.tags`` (one small file a run, absent for most), the
    truth the index caches: each tag is its own chip, whatever characters it holds (the
    ``tags`` column joins them with ``", "``). A file that cannot be read gives no tags.
    """
    from pyhermes import rundir
    from pyhermes.errors import RunFormatError

    root = Path(catalog.root)
    tags: list[list[str]] = []
    for path in page.paths:
        try:
            tags.append(rundir.read_tags(root.joinpath(*path.split("/")), notes=[]))
        except (OSError, RunFormatError):
            tags.append([])
    return tags


def run_curation(experiment: Experiment) -> tuple[list[str], list[Any]]:
    """Return the tags of a run and its notes, newest first (the reverse of the order written).

    Raises:
        OSError, RunFormatError: the run's ``hermes.tags`` or ``hermes.notes`` cannot be read.
    """
    return list(experiment.tags), list(reversed(experiment.notes))
