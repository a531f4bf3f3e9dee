"""The view of the Compare page, ``/compare``: the chosen runs' curves overlaid, and their tables.

The runs are ``runs=ID,...`` (or repeated ``run=``) or the filter ``where`` (empty:
every run); the chart itself is drawn in the browser from ``/api/curves``
(:mod:`pyhermes.web.views_curves`). A compare of a filter is grouped, unless the URL
says otherwise, by the args that differ between the matched runs except seeds
(:func:`pyhermes.web.data.default_group_by`). ``add=TEXT`` adds the runs it names
(identifiers, prefixes or a filter) to the ``runs=`` list and redirects to that list.
"""

from __future__ import annotations

from flask import Response, redirect, request

from pyhermes.errors import QueryError
from pyhermes.present.compare import ALL_RUNS
from pyhermes.web import data, pages_compare, params
from pyhermes.web.pages import query_string
from pyhermes.web.state import served

__all__ = ["compare_page", "COMPARE_TABLE_SORT"]

#: The order of the runs table of a compare when the URL does not say: best final mean
#: first (the page then orders the rows line by line, best line first, like the legend).
COMPARE_TABLE_SORT = "final_mean:desc"


def compare_page() -> str | tuple[str, int] | Response:
    """``GET /compare``: return the Compare page; without any choice, the page that asks for one.

    A bad filter, sort key, column or run to add is shown in the page with a 400.

    Raises:
        QueryError: a bad band, window, ``min_runs`` or ``max_points`` (the error page, 400).
    """
    state = served()
    options = params.curves_options(request.args)
    identifiers = params.args_list(request.args, "run", "runs")
    view = params.compare_view(request.args)
    view["sort"] = view["sort"] or COMPARE_TABLE_SORT
    added = params.text_arg(request.args, "add").strip()
    if added:
        try:
            new, named = data.runs_to_add(state.catalog, added)
        except QueryError as exc:
            return pages_compare.compare_page(
                state, request.args, options, identifiers, None, f"add {added!r}: {exc}", view=view
            ), 400
        merged = list(dict.fromkeys([*(identifiers or []), *new]))
        keep = {key: request.args.get(key) for key in ("sort", "columns", "window", "band", "group_by")}
        return redirect("/compare" + query_string({"runs": merged, **keep}))
    if not identifiers and "where" not in request.args:  # nothing chosen yet
        return pages_compare.compare_page(state, request.args, options, None, None, None, view=view)
    try:
        if not identifiers and "group_by" not in request.args:
            options["group_by"] = data.default_group_by(state.catalog, params.selection(request.args)) or ALL_RUNS
        page = data.page_of_runs(state.catalog, view, identifiers or None)
    except QueryError as exc:
        return pages_compare.compare_page(
            state, request.args, options, identifiers, None, str(exc), view=view
        ), 400
    tags = data.page_tags(state.catalog, page)
    return pages_compare.compare_page(
        state, request.args, options, identifiers, page, None, tags, view=view
    )
