"""The view of the learning curves as data, ``GET /api/curves``: what every chart draws."""

from __future__ import annotations

from flask import Response, request

from pyhermes import present
from pyhermes.web import data, params
from pyhermes.web.responses import csv_response, json_response
from pyhermes.web.state import served

__all__ = ["api_curves"]


def api_curves() -> Response:
    """``GET /api/curves``: return the curves of the chosen runs as JSON, or as ``curves.csv``.

    The runs are ``runs=ID,...`` or the filter ``where``: grouped (``group_by``), every
    matching run is read; one line per run draws at most
    :data:`~pyhermes.web.state.MAX_COMPARE` of them (a sample seeded by the query). The
    answer is ``{window, band, group_by, runs, matched, truncated, sampled, skipped,
    unreadable, differing, lines, members}``, downsampled to at most ~2 MB; the CSV
    holds every episode of every line drawn (not downsampled).

    Raises:
        QueryError: a bad filter, sort key, band, window, ``min_runs``, ``max_points``
            or format (a 400).
        ValueError: a bad group key, or none of the runs has scores (a 400).
    """
    options = params.curves_options(request.args)
    chosen = params.selection(request.args)
    csv = params.wants_csv(request.args)
    curves = data.curves(served().catalog, chosen, options, full=csv)
    if csv:
        return csv_response(present.CURVE_COLUMNS, present.curve_rows(curves), "curves.csv")
    return json_response(curves)
