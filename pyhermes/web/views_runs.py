"""The views of the runs table: ``/`` (to ``/runs``), the Runs page ``/runs`` and ``GET /api/runs``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from flask import Response, redirect, request

from pyhermes.errors import QueryError
from pyhermes.web import data, pages, params
from pyhermes.web.responses import csv_response, json_download, json_response
from pyhermes.web.state import served

if TYPE_CHECKING:
    from werkzeug.wrappers import Response as Redirect

__all__ = ["home", "runs_page", "api_runs"]


#: How long (seconds) the Runs page waits for its match count before it answers without it
#: (the page then fetches it from ``/api/count``): the rows of a page come first.
COUNT_WAIT = 0.1


def home() -> Redirect:
    """``GET /``: return a redirect (302) to the Runs page."""
    return redirect("/runs")


def runs_page() -> str | tuple[str, int]:
    """``GET /runs``: return the Runs page of the view in the query string.

    A bad filter, sort key or column is shown above the table (with its caret) with a
    400; the table then shows every run, so that the page keeps its layout. A page past
    the end is the last page. Each run's tags are chips; on a writable server the page
    can tag, note and archive.

    Raises:
        QueryError: a bad ``page`` or ``per_page`` (answered with the error page, 400).
    """
    state = served()
    view = params.runs_view(request.args)
    try:
        page = data.page_of_runs(state.catalog, view, count_wait=COUNT_WAIT)
    except QueryError as exc:
        every_run: params.RunsView = {**view, "where": "", "sort": "", "columns": None, "page": 1}
        try:
            fallback = data.page_of_runs(state.catalog, every_run)
        except QueryError:
            return pages.runs_page(state, view, None, str(exc)), 400
        tags = data.page_tags(state.catalog, fallback)
        return pages.runs_page(state, view, fallback, str(exc), tags, fallback=True), 400
    return pages.runs_page(state, view, page, None, data.page_tags(state.catalog, page))


def api_runs() -> Response:
    """``GET /api/runs``: return a page of runs as JSON or CSV, or every match with ``all=1``.

    ``runs=ID,...`` (or repeated ``run=``) keeps those runs only. With ``all=1`` the
    answer is a streamed download (``runs.csv``, or ``runs.json``: one record per run).

    Raises:
        QueryError: a bad filter, sort key, column, page, page size or format (a 400).
    """
    state = served()
    view = params.runs_view(request.args)
    identifiers = params.args_list(request.args, "run", "runs")
    as_csv = params.wants_csv(request.args)
    if not params.flag_arg(request.args, "all"):
        page = data.page_of_runs(state.catalog, view, identifiers)
        if as_csv:
            return csv_response(page.columns, page.rows, "runs.csv")
        return json_response(page.as_dict())
    columns, rows = data.every_match(state.catalog, view, identifiers)
    if as_csv:
        return csv_response(columns, (row for _, row in rows), "runs.csv")
    records: Iterator[dict[str, Any]] = (
        {"path": path, **dict(zip(columns, row, strict=True))} for path, row in rows
    )
    return json_download(records, "runs.json")


def api_count() -> Response:
    """``GET /api/count``: return ``{"total": N}``, how many runs match the ``where`` of the
    query string (and ``runs=``): the count a Runs page left to follow, remembered until the
    index changes.

    Raises:
        QueryError: a bad filter (a 400).
    """
    state = served()
    view = params.runs_view(request.args)
    identifiers = params.args_list(request.args, "run", "runs")
    return json_response({"total": data.match_count(state.catalog, view, identifiers)})
