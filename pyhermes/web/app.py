"""The Flask application of ``hermes serve``: the route table, and :func:`create_app` that wires it.

Every URL the app answers is in :func:`routes`, mapped to one view function; every
error to its handler in :func:`error_handlers`. The views live one module per page
or API group and take nothing from here:

* ``views_runs``: ``/`` (to ``/runs``), the Runs page, ``/api/runs``, ``/api/count``;
* ``views_run``: the Run page, ``/api/run/<path>``, its ``.result`` series, a window of
  lines of one of its logs (``/api/run/<path>/log/<name>``) and its files as downloads
  (``/api/run/<path>/file/<name>``);
* ``views_compare``: the Compare page; ``views_curves``: ``/api/curves``;
* ``views_params``: the Params page (the hyperparameter view) and ``/api/params``;
* ``views_sql``: the SQL page and ``/api/sql``; ``views_status``: the background sync;
* ``views_curation``: the writes of ``hermes serve --writable`` (``POST /api/runs/tags``,
  ``/notes``, ``/archive``), refused with a 403 unless the server is writable and the
  request comes from its own page with its token;
* ``views_static``: the style sheet, the script, plotly.js and the icon (also at
  ``/favicon.ico``); ``views_errors``: the
  error answers and the check of the ``Host`` header.

A view reads its arguments with :mod:`~pyhermes.web.params`, the catalogue with
:mod:`~pyhermes.web.data` (through the served :class:`HermesApp`,
:func:`pyhermes.web.state.served`), and answers with :mod:`~pyhermes.web.pages` (HTML)
or :mod:`~pyhermes.web.responses` (JSON, CSV). The README's "hermes serve" section
documents the parameters. The state of a view lives in its URL's query string, so
every view can be bookmarked.

The views import Flask: they are imported when the table is built, so this module
(and ``import pyhermes.web``) works without Flask until an app is made.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pyhermes._optional import require
from pyhermes.errors import HermesError
from pyhermes.web.state import (
    DEFAULT_SQL_TIMEOUT,
    EXTENSION,
    LOOPBACK,
    MAX_COMPARE,
    SQL_MAX_ROWS,
    SQL_TIMEOUT_CONFIG,
    HermesApp,
    NotFound,
    PathRefused,
    WriteRefused,
)

if TYPE_CHECKING:
    from flask import Blueprint, Flask

__all__ = [
    "HermesApp",
    "create_app",
    "serve",
    "routes",
    "error_handlers",
    "blueprint",
    "Route",
    "PathRefused",
    "NotFound",
    "WriteRefused",
    "MAX_COMPARE",
    "SQL_MAX_ROWS",
]


#: The largest request body accepted (a write naming many runs), in bytes; larger is a 413.
MAX_BODY = 4 * 1024 * 1024


class Route(NamedTuple):
    """One line of the route table: a URL rule, its endpoint name, its view and HTTP methods."""

    rule: str
    endpoint: str
    view: Callable[..., Any]
    methods: tuple[str, ...] = ("GET",)


def routes() -> list[Route]:
    """Return the route table: every URL of ``hermes serve``, in the order the rules are added.

    Raises:
        ImportError: Flask is not installed (the views import it).
    """
    from pyhermes.web import (
        views_compare,
        views_curation,
        views_curves,
        views_params,
        views_run,
        views_runs,
        views_sql,
        views_static,
        views_status,
    )

    return [
        # Pages (HTML).
        Route("/", "home", views_runs.home),
        Route("/runs", "runs", views_runs.runs_page),
        Route("/run/<path:path>", "run", views_run.run_page),
        Route("/compare", "compare", views_compare.compare_page),
        Route("/params", "params", views_params.params_page),
        Route("/sql", "sql", views_sql.sql_page),
        Route("/static/<name>", "static_file", views_static.static_file),
        Route("/favicon.ico", "favicon", views_static.favicon),
        # The JSON API (CSV with format=csv).
        Route("/api/runs", "api_runs", views_runs.api_runs),
        Route("/api/count", "api_count", views_runs.api_count),
        Route("/api/run/<path:path>", "api_run", views_run.api_run),
        Route("/api/run/<path:path>/result/<name>", "api_result", views_run.api_result),
        Route("/api/run/<path:path>/log/<name>", "api_log", views_run.api_log),
        Route("/api/run/<path:path>/file/<name>", "api_file", views_run.api_file),
        Route("/api/curves", "api_curves", views_curves.api_curves),
        Route("/api/params", "api_params", views_params.api_params),
        Route("/api/sql", "api_sql", views_sql.api_sql),
        Route("/api/status", "api_status", views_status.api_status),
        Route("/api/refresh", "api_refresh", views_status.api_refresh, ("POST",)),
        # Curation writes (hermes serve --writable): POST only, same origin, with the token.
        Route("/api/runs/tags", "api_tags", views_curation.api_tags, ("POST",)),
        Route("/api/runs/notes", "api_notes", views_curation.api_notes, ("POST",)),
        Route("/api/runs/archive", "api_archive", views_curation.api_archive, ("POST",)),
    ]


def error_handlers() -> list[tuple[type[Exception] | int, Callable[[Exception], Any]]]:
    """Return (exception class or HTTP status, handler) of every error the app answers itself.

    Flask picks the handler of the nearest class of an exception: bad input (400, or
    503 for an unavailable index), a refused run path (400), a missing run or file
    (404), a URL no route serves (404).

    Raises:
        ImportError: Flask is not installed (the handlers import it).
    """
    from werkzeug.exceptions import HTTPException

    from pyhermes.web import views_errors

    return [
        (HermesError, views_errors.bad_input),
        (ValueError, views_errors.bad_input),
        (PathRefused, views_errors.refused),
        (NotFound, views_errors.not_found),
        (WriteRefused, views_errors.forbidden),
        (404, views_errors.no_route),
        (HTTPException, views_errors.http_error),
    ]


def blueprint() -> Blueprint:
    """Return a new Flask blueprint holding every route of :func:`routes`.

    Raises:
        MissingDependencyError: Flask is not installed.
    """
    flask = require("flask")
    hermes = flask.Blueprint("hermes", __name__)
    for route in routes():
        hermes.add_url_rule(route.rule, route.endpoint, route.view, methods=list(route.methods))
    return hermes


def create_app(
    root: str | os.PathLike[str] = ".",
    index: str | None = None,
    sync: str = "quick",
    *,
    host: str = "127.0.0.1",
    writable: bool = False,
    sql_timeout: float = DEFAULT_SQL_TIMEOUT,
) -> Flask:
    """Return the Flask app serving the runs below ``root``; a first sync starts in the background.

    The served :class:`HermesApp` is ``app.extensions["hermes"]``. ``host`` is the
    address the app is served on: on a loopback address, requests naming another
    host (``Host:`` header) are refused, so that a web page elsewhere cannot reach
    the app by DNS rebinding. With ``writable`` the pages can tag, note and archive
    runs (see :mod:`pyhermes.web.views_curation`); read-only is the default. ``sql_timeout``
    (seconds) stops a statement of the SQL page and ``/api/sql`` that runs longer.

    Raises:
        MissingDependencyError: Flask is not installed (``pip install "pyhermes[web]"``).
        FileNotFoundError, CatalogError: see :class:`HermesApp`.
    """
    flask = require("flask")
    state = HermesApp(root, index=index, sync=sync, writable=writable)
    app = flask.Flask("pyhermes.web", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.config[SQL_TIMEOUT_CONFIG] = float(sql_timeout)
    app.extensions[EXTENSION] = state
    app.register_blueprint(blueprint())
    for error, handler in error_handlers():
        app.register_error_handler(error, handler)
    if host in LOOPBACK:
        from pyhermes.web.views_errors import refuse_other_hosts

        app.before_request(refuse_other_hosts)
    # Until the tree is indexed once, pages say so instead of counting (pyhermes.web.startup).
    from pyhermes.web.startup import hold_until_indexed

    app.before_request(hold_until_indexed)
    if writable:
        from pyhermes.web.views_errors import no_framing

        app.after_request(no_framing)
    if sync != "none":
        state.refresh()
    return app


def serve(
    root: str | os.PathLike[str] = ".",
    index: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8765,
    open_browser: bool = False,
    sync: str = "quick",
    writable: bool = False,
    sql_timeout: float = DEFAULT_SQL_TIMEOUT,
) -> None:
    """Serve the runs below ``root`` at ``http://host:port/`` until interrupted; return then.

    Binding to an address other than loopback exposes every page and the SQL box to
    whoever can reach it, without any login: a warning says so (and, with
    ``writable``, that they can tag, note and archive runs).

    Raises:
        MissingDependencyError, FileNotFoundError, CatalogError: as :func:`create_app`.
        OSError: the port is taken.
    """
    from werkzeug.serving import make_server

    app = create_app(
        root, index=index, sync=sync, host=host, writable=writable, sql_timeout=sql_timeout
    )
    server = make_server(host, port, app, threaded=True)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{server.server_port}/runs"
    print(f"hermes serve: the runs below {Path(root).resolve()} at {url} (Ctrl-C stops)", flush=True)
    if host not in LOOPBACK:
        print(
            f"hermes serve: warning: listening on {host}: anyone who can reach this address "
            "can browse every run, read its logs and query the index, with no login",
            flush=True,
        )
        if writable:
            print(
                f"hermes serve: warning: --writable on {host}: they can also tag, note "
                "and archive runs",
                flush=True,
            )
    elif writable:
        print("hermes serve: writable: the pages can tag, note and archive runs", flush=True)
    if open_browser:
        import webbrowser

        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    try:
        server.serve_forever()
    finally:
        server.server_close()
