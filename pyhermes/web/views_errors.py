"""How ``hermes serve`` answers what went wrong: the error handlers and the check of the ``Host`` header.

Under ``/api/`` an error is JSON, ``{"error": message}`` (plus ``position`` for bad
input); elsewhere it is the error page. Bad input (a :class:`~pyhermes.errors.HermesError`
or ``ValueError``) is a 400, except an unavailable index (a ``CatalogError`` that is
no ``ValueError``), a 503; a refused path a 400; a missing run, file or page a 404; a
refused write (read-only server, another origin, no token) a 403; any other HTTP error
(a method not allowed, a body too large) its own status.
"""

from __future__ import annotations

from flask import Response, request
from werkzeug.exceptions import HTTPException

from pyhermes.errors import CatalogError
from pyhermes.web import pages, params
from pyhermes.web.responses import json_response
from pyhermes.web.state import served

__all__ = [
    "bad_input",
    "refused",
    "not_found",
    "no_route",
    "forbidden",
    "http_error",
    "refuse_other_hosts",
    "no_framing",
]


def _answer(message: str, status: int, **extra: object) -> Response | tuple[str, int]:
    """Return ``message`` with ``status``: JSON under ``/api/`` (with ``extra`` keys), else the error page."""
    if params.is_api(request.path):
        return json_response({"error": message, **extra}, status)
    return pages.error_page(served(), message, status), status


def bad_input(exc: Exception) -> Response | tuple[str, int]:
    """Return the answer to bad input (400, or 503 when the index is unavailable), with its position."""
    status = 503 if isinstance(exc, CatalogError) and not isinstance(exc, ValueError) else 400
    return _answer(str(exc) or type(exc).__name__, status, position=getattr(exc, "position", None))


def refused(exc: Exception) -> Response | tuple[str, int]:
    """Return the answer to a run path that could leave the catalogue root: a 400."""
    return _answer(str(exc), 400)


def not_found(exc: Exception) -> Response | tuple[str, int]:
    """Return the answer to a missing run or file: a 404."""
    return _answer(str(exc), 404)


def no_route(exc: Exception) -> Response | tuple[str, int]:
    """Return the answer to a URL that no route serves: a 404."""
    return _answer(f"no such page: {request.path}", 404)


def forbidden(exc: Exception) -> Response | tuple[str, int]:
    """Return the answer to a refused write (read-only server, another origin, no token): a 403."""
    return _answer(str(exc), 403)


def http_error(exc: Exception) -> Response | tuple[str, int]:
    """Return the answer to an HTTP error Flask raised itself (405, 413...): JSON under ``/api/``,
    else the error page, with its own status.

    Its headers (the ``Allow`` of a 405) are kept.
    """
    if not isinstance(exc, HTTPException):
        return _answer(str(exc) or type(exc).__name__, 500)
    status = exc.code or 500
    if params.is_api(request.path):
        answer = json_response({"error": exc.description or exc.name}, status)
    else:
        answer = Response(
            pages.error_page(served(), exc.description or exc.name, status),
            status,
            mimetype="text/html",
        )
    for name, value in exc.get_response().headers.items():
        if name.lower() == "allow":
            answer.headers[name] = value
    return answer


def no_framing(response: Response) -> Response:
    """After every request of a writable app: forbid other sites to frame its pages (clickjacking)."""
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    return response


def refuse_other_hosts() -> Response | None:
    """Before every request of an app on loopback: return a 400 if ``Host:`` names another host.

    That refuses DNS rebinding (a web page elsewhere reaching the local app through a
    name of its own); ``None`` lets the request through.
    """
    if not params.is_local_host(request.host):
        return json_response({"error": f"refused: unknown host {request.host!r}"}, 400)
    return None
