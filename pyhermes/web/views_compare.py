"""The view of the Compare page, ``/compare``: the chosen runs' curves overlaid, and their table.

The runs are ``runs=ID,...`` (or repeated ``run=``) or the filter ``where`` (empty:
every run); the chart itself is drawn in the browser from ``/api/curves``
(:mod:`pyhermes.web.views_curves`).
"""

from __future__ import annotations

from flask import request

from pyhermes.errors import QueryError
from pyhermes.web import data, pages_compare, params
from pyhermes.web.state import served

__all__ = ["compare_page"]


def compare_page() -> str | tuple[str, int]:
    """``GET /compare``: return the Compare page; without any choice, the page that asks for one.

    A bad filter, sort key or column is shown in the page with a 400.

    Raises:
        QueryError: a bad band, window, ``min_runs`` or ``max_points`` (the error page, 400).
    """
    state = served()
    options = params.curves_options(request.args)
    identifiers = params.args_list(request.args, "run", "runs")
    view = params.compare_view(request.args)
    if not identifiers and "where" not in request.args:  # nothing chosen yet
        return pages_compare.compare_page(state, request.args, options, None, None, None)
    try:
        page = data.page_of_runs(state.catalog, view, identifiers or None)
    except QueryError as exc:
        return pages_compare.compare_page(state, request.args, options, identifiers, None, str(exc)), 400
    tags = data.page_tags(state.catalog, page)
    return pages_compare.compare_page(state, request.args, options, identifiers, page, None, tags)
