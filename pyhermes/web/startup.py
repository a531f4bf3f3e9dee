"""An honest start: while the index does not yet hold the served tree, no page counts runs.

Pages are held (:attr:`pyhermes.web.state.HermesApp.held`) until a sync of the served
tree has completed once (:attr:`~pyhermes.web.state.HermesApp.ready`: false during the
first build of a new index, after a build killed midway, after an index was rebuilt
for a new schema, and while a failed first build waits for a retry), and while a sync
reads so many runs that it writes them slice by slice (more than
:data:`~pyhermes.web.state.HOLD_FROM`: thousands of runs appeared at once), whose
counts between slices would be partial. Meanwhile :func:`hold_until_indexed`, run
before every request, answers in place of the view:

* every page: a 503 "indexing" page with the progress ("indexing: 2,300 of 6,000
  runs read"), which reloads itself (``status.js`` polls ``/api/status``; without
  scripts a ``<meta http-equiv="refresh">``) and turns into the page asked for
  once the index is ready;
* every ``/api/`` data endpoint: a JSON 503, ``{"error", "indexing", "phase",
  "done", "total"}``, with a ``Retry-After`` header.

``/static/``, ``/api/status``, ``/api/refresh`` (to retry a failed build) and the
favicon keep answering, and so do URLs that no route serves (their 404 or 405).
Any other sync of an index that is ready (a refresh, a periodic sync) holds nothing back:
pages answer from the index as it was, and the header shows the sync's progress.
"""

from __future__ import annotations

import html
from typing import Any

from flask import Response, request

from pyhermes.web import pages, params
from pyhermes.web.responses import json_response
from pyhermes.web.state import served

__all__ = ["hold_until_indexed", "progress_message", "indexing_page", "RETRY_AFTER", "ALWAYS_OPEN"]

#: Seconds a client is told to wait before it asks again (``Retry-After``).
RETRY_AFTER = 2
#: Paths answered while the index is being built (besides every path under ``/static/``).
ALWAYS_OPEN = ("/api/status", "/api/refresh", "/favicon.ico")

e = html.escape


def progress_message(status: dict[str, Any]) -> str:
    """Return one line saying how far the sync is (from :meth:`HermesApp.status`): while the
    index is built ``"indexing: 2,300 of 6,000 runs read"``, during a sync of a ready index
    ``"syncing: ..."``, that the first build failed, or ``""`` when no sync runs."""
    if not status["running"]:
        if status["ready"]:
            return ""
        return f"indexing failed: {status['error']}" if status["error"] else "indexing: starting"
    word = "indexing" if status["indexing"] else "syncing"
    phase, done, total = status["phase"], status["done"], status["total"]
    if phase == "reading" and total is not None:
        return f"{word}: {done:,} of {total:,} runs read"
    if phase == "writing":
        return f"{word}: {total or 0:,} runs read; writing the index"
    if phase == "listing":
        return f"{word}: listing the run folders"
    return f"{word}: starting"


def indexing_page(status: dict[str, Any]) -> str:
    """Return the body of the page shown in place of every page while the index is built."""
    message = progress_message(status)
    failed = bool(status["error"]) and not status["running"]
    total = status["total"] or 0
    bar = (
        f'<progress id="indexing-bar" max="{total}" value="{status["done"]}"></progress>'
        if total and not failed
        else '<progress id="indexing-bar"></progress>'
    )
    if failed:
        hint = (
            "The first build of the index stopped on an error. Press <b>refresh</b> above to "
            "try again; this page turns into the page asked for when the build is done."
        )
    else:
        hint = (
            "The index of this folder is being built. No page counts runs until it is done; "
            "this page turns into the page asked for by itself."
        )
    return (
        f'<section id="indexing" data-root="{e(str(status["root"]))}">'
        f"<h1>Indexing the runs</h1>"
        f'<p id="indexing-progress" class="{"error" if failed else ""}">{e(message)}</p>'
        f"{bar}<p>{hint}</p>"
        # Without scripts (status.js reloads the page) the browser asks again by itself.
        f'<noscript><meta http-equiv="refresh" content="{RETRY_AFTER}"></noscript>'
        "</section>"
    )


def hold_until_indexed() -> Response | tuple[str, int, dict[str, str]] | None:
    """Before every request: while pages are held (the index is not ready), return the 503 of the
    module's notes in place of the view; ``None`` lets the request through."""
    state = served()
    if not state.held:
        return None
    path = request.path
    if path.startswith("/static/") or path in ALWAYS_OPEN or request.routing_exception is not None:
        return None
    status = state.status()
    headers = {"Retry-After": str(RETRY_AFTER), "Cache-Control": "no-store"}
    if params.is_api(path):
        answer = json_response(
            {
                "error": progress_message(status),
                "indexing": True,
                "phase": status["phase"],
                "done": status["done"],
                "total": status["total"],
            },
            503,
        )
        answer.headers.update(headers)
        return answer
    return pages.layout(state, "indexing", "", indexing_page(status)), 503, headers
