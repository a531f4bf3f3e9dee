"""The views of one run: the Run page ``/run/<path>``, ``GET /api/run/<path>`` and its ``.result`` series.

``<path>`` is the run's folder relative to the catalogue root; a path that could
leave the root is refused (400) and a folder that is no indexed run is not found
(404), by :meth:`pyhermes.web.state.HermesApp.run`.
"""

from __future__ import annotations

from flask import Response, request

from pyhermes import present
from pyhermes.errors import UntrustedFileError
from pyhermes.web import data, pages_run, params
from pyhermes.web.responses import csv_response, json_response
from pyhermes.web.state import served

__all__ = ["run_page", "api_run", "api_result"]


def run_page(path: str) -> str:
    """``GET /run/<path>``: return the Run page (what ``hermes show`` prints, tags and notes, curves, files).

    Raises:
        PathRefused: ``path`` could leave the catalogue root (a 400).
        NotFound: no indexed run there (a 404).
    """
    state = served()
    experiment = state.run(path)
    tags, notes = data.run_curation(experiment)
    return pages_run.run_page(state, path, present.run_details(experiment), tags, notes)


def api_run(path: str) -> Response:
    """``GET /api/run/<path>``: return the run as ``hermes show --format json``, or one of its tables.

    Without ``table`` the answer is every detail plus ``url_path``; with
    ``table=fields|info|args|scores|files`` it is that table as a list of records
    (JSON) or as ``<identifier>-<table>.csv`` (``format=csv``).

    Raises:
        PathRefused, NotFound: as :func:`run_page`.
        ValueError: an unknown ``table``, or a bad ``format`` (a 400).
    """
    experiment = served().run(path)
    details = present.run_details(experiment)
    details["url_path"] = path
    table = request.args.get("table")
    if table is None:
        return json_response(details)
    columns, rows = data.run_table(details, table)
    if params.wants_csv(request.args):
        return csv_response(columns, rows, f"{experiment.identifier}-{table}.csv")
    return json_response([dict(zip(columns, row, strict=True)) for row in rows])


def api_result(path: str, name: str) -> Response:
    """``GET /api/run/<path>/result/<name>``: return the scalar series of a ``.result`` file.

    The answer is ``{file, series: {key: {x, y}}, other_keys}``, each series
    downsampled to ``max_points``; a file that only a trusted load would read is a 400.

    Raises:
        PathRefused, NotFound: as :func:`run_page`; NotFound also for no such result file.
        QueryError: a bad ``max_points`` (a 400).
    """
    experiment = served().run(path)
    try:
        result = data.result_file(experiment, name)
    except UntrustedFileError as exc:
        return json_response({"error": str(exc)}, 400)
    max_points = params.int_arg(request.args, "max_points", present.MAX_POINTS)
    return json_response(data.result_series(result, max_points))
