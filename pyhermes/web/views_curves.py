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

    The runs are ``runs=ID,...`` or the filter ``where`` (at most
    :data:`~pyhermes.web.state.MAX_COMPARE`, the first by ``sort``); the answer is
    ``{window, band, group_by, runs, matched, truncated, skipped, lines}``.

    Raises:
        QueryError: a bad filter, sort key, band, window, ``min_runs``, ``max_points``
            or format (a 400).
        ValueError: a bad group key, or none of the runs has scores (a 400).
    """
    options = params.curves_options(request.args)
    chosen = params.selection(request.args)
    curves = data.curves(served().catalog, chosen, options)
    if params.wants_csv(request.args):
        return csv_response(present.CURVE_COLUMNS, present.curve_rows(curves), "curves.csv")
    return json_response(curves)
