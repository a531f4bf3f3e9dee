"""The views of the background sync: ``GET /api/status`` and ``POST /api/refresh``."""

from __future__ import annotations

from flask import Response

from pyhermes.web.responses import json_response
from pyhermes.web.startup import progress_message
from pyhermes.web.state import served

__all__ = ["api_status", "api_refresh"]


def api_status() -> Response:
    """``GET /api/status``: return the state of the sync (:meth:`HermesApp.status`): ``running``,
    ``ready`` (the tree was indexed once: pages count runs), ``indexing`` (a sync runs that pages wait for: a first build),
    its progress ``phase``, ``done``, ``total`` and ``message`` ("indexing: 2,300 of 6,000 runs
    read"), the last ``report``, ``error``, ``finished_at`` and ``root``. Never held back while
    the index is built."""
    status = served().status()
    return json_response({**status, "message": progress_message(status)})


def api_refresh() -> Response:
    """``POST /api/refresh``: start a sync unless one runs; return ``{started, ...}`` and the status."""
    state = served()
    started = state.refresh()
    return json_response({"started": started, **state.status()})
