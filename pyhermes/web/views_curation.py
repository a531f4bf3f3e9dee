"""The curation writes of ``hermes serve --writable``: ``POST /api/runs/tags``,
``POST /api/runs/notes`` and ``POST /api/runs/archive``.

Each takes a JSON object naming runs by identifier (``{"runs": [...], ...}``) and
answers JSON: what was done per run and the runs refused with their reason
(:mod:`pyhermes.web.writes`). Before anything is read or written, a write is refused
with a 403 (:class:`~pyhermes.web.state.WriteRefused`) when

* the server is read-only (the default; ``hermes serve --writable`` makes it writable);
* the request does not come from a page of this server: its ``Origin`` header (or,
  without one, its ``Referer``) is not the server's own origin;
* it lacks the per-server token (the ``X-Hermes-Token`` header), or the token is
  wrong; the pages carry it in ``<meta name="hermes-token">``.

So another web site open in the same browser cannot write (it can neither send the
origin nor read the token). Bad input is a 400 with the library's message (a bad tag:
the rule it breaks). GET never writes: these URLs answer it with a 405.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request

from pyhermes.web import params, writes
from pyhermes.web.responses import json_response
from pyhermes.web.state import TOKEN_HEADER, HermesApp, WriteRefused, served

__all__ = ["api_tags", "api_notes", "api_archive", "checked_write"]


def checked_write() -> HermesApp:
    """Return the served app if the current request may write; raise otherwise.

    Raises:
        WriteRefused: the server is read-only, the request comes from another origin
            (or says none), or its token is missing or wrong (a 403).
    """
    state = served()
    if not state.writable:
        raise WriteRefused(
            "refused: this server is read-only; start it with hermes serve --writable "
            "to tag, note or archive runs"
        )
    if not params.same_origin(
        request.headers.get("Origin"), request.headers.get("Referer"), request.host_url
    ):
        raise WriteRefused(
            "refused: the request does not come from a page of this server "
            "(its Origin or Referer header is another site's, or missing)"
        )
    if not state.token_matches(request.headers.get(TOKEN_HEADER)):
        raise WriteRefused(
            f"refused: the {TOKEN_HEADER} header is missing or wrong "
            "(reload the page: the server makes a new token at each start)"
        )
    return state


def _body() -> dict[str, Any]:
    """The JSON object of the request (``QueryError``, a 400, when there is none)."""
    body = request.get_json(silent=True) if request.is_json else None
    return dict(params.write_body(body))


def api_tags() -> Response:
    """``POST /api/runs/tags``: add and remove tags of runs, ``{"runs": [ID...], "add": [...], "remove": [...]}``.

    Returns ``{"runs": [{identifier, path, before, after, changed}], "refused": [...]}``.

    Raises:
        WriteRefused: see :func:`checked_write` (a 403).
        InvalidTagError, QueryError: a bad tag or body (a 400; nothing written).
    """
    state = checked_write()
    body = _body()
    identifiers = params.body_runs(body)
    add, remove = params.body_tags(body)
    return json_response(writes.change_tags(state, identifiers, add, remove))


def api_notes() -> Response:
    """``POST /api/runs/notes``: add a note to each run, ``{"runs": [ID...], "text": "..."}``.

    Returns ``{"runs": [{identifier, path, time, text}], "refused": [...]}``.

    Raises:
        WriteRefused: see :func:`checked_write` (a 403).
        QueryError, ValueError: a bad body or note text (a 400; nothing written).
    """
    state = checked_write()
    body = _body()
    identifiers = params.body_runs(body)
    text = params.body_text(body)
    return json_response(writes.add_notes(state, identifiers, text))


def api_archive() -> Response:
    """``POST /api/runs/archive``: move runs to ``ROOT/.archive/``, ``{"runs": [ID...]}``.

    Returns ``{"runs": [{identifier, path, target}], "refused": [{identifier, path, reason}]}``;
    a run still being written is refused.

    Raises:
        WriteRefused: see :func:`checked_write` (a 403).
        QueryError: a bad body (a 400; nothing moved).
    """
    state = checked_write()
    identifiers = params.body_runs(_body())
    return json_response(writes.archive(state, identifiers))
