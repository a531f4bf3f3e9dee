"""The views of the background sync: ``GET /api/status`` and ``POST /api/refresh``."""

from __future__ import annotations

from flask import Response

from pyhermes.web.responses import json_response
from pyhermes.web.state import served

__all__ = ["api_status", "api_refresh"]


def api_status() -> Response:
    """``GET /api/status``: return the state of the sync, ``{running, report, error, finished_at, root}``."""
    return json_response(served().status())


def api_refresh() -> Response:
    """``POST /api/refresh``: start a sync unless one runs; return ``{started, ...}`` and the status."""
    state = served()
    started = state.refresh()
    return json_response({"started": started, **state.status()})
