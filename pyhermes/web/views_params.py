"""The views of the hyperparameter view: the Params page ``/params`` and ``GET /api/params``.

Both take the filter ``where`` (the grammar of the Runs page), the score ``summary``
(``final_mean`` by default) and the arg ``x`` of the scatter; ``max_runs`` draws fewer
runs than :data:`~pyhermes.present.hparams.MAX_RUNS` (never more). The data is
:func:`pyhermes.present.hparams.hparams_view`; the page holds the same data the API
answers, and ``params.js`` draws it.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request

from pyhermes.errors import QueryError
from pyhermes.present import hparams
from pyhermes.web import pages_params, params
from pyhermes.web.responses import json_response
from pyhermes.web.state import served

__all__ = ["params_page", "api_params", "params_view"]


def params_view(args: params.Args) -> dict[str, Any]:
    """Return the view state of the Params page from the query string: ``where``,
    ``summary``, ``x`` (``None`` when not given) and ``max_runs``.

    Raises:
        QueryError: ``max_runs`` is no whole number of at least 1.
    """
    return {
        "where": params.text_arg(args, "where"),
        "summary": params.text_arg(args, "summary") or hparams.DEFAULT_SUMMARY,
        "x": params.text_arg(args, "x") or None,
        "max_runs": min(params.int_arg(args, "max_runs", hparams.MAX_RUNS), hparams.MAX_RUNS),
    }


def _data(view: dict[str, Any]) -> dict[str, Any]:
    return hparams.hparams_view(
        served().catalog, view["where"], view["summary"], view["x"], max_runs=view["max_runs"]
    )


def params_page() -> str | tuple[str, int]:
    """``GET /params``: return the Params page of the view in the query string.

    A bad filter or summary is shown in the page (with its caret) with a 400.

    Raises:
        QueryError: a bad ``max_runs`` (the error page, 400).
    """
    state = served()
    view = params_view(request.args)
    try:
        data = _data(view)
    except QueryError as exc:
        return pages_params.params_page(state, view, None, str(exc)), 400
    return pages_params.params_page(state, view, data, None)


def api_params() -> Response:
    """``GET /api/params``: return the hyperparameter view as JSON (see
    :func:`pyhermes.present.hparams.hparams_view` for its keys).

    Raises:
        QueryError: a bad filter, summary or ``max_runs`` (a 400).
    """
    return json_response(_data(params_view(request.args)))
