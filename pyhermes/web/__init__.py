"""``hermes serve``: a local web application over the catalogue.

Pages (server-rendered HTML): Runs (``/runs``), Run (``/run/<path>``), Compare
(``/compare``) and SQL (``/sql``); a JSON API under ``/api/...`` that the pages
use for their charts and downloads, and, when the server is writable
(``create_app(..., writable=True)``, ``hermes serve --writable``), for tagging, noting
and archiving runs. Build the app with :func:`create_app`, serve
it with :func:`serve`. Flask is an optional dependency (the ``web`` extra); the
charts are drawn in the browser by plotly.js, served from the ``plotly`` package.

The modules, each importing only those listed before it: ``state`` (the served
catalogue and its limits), ``examples`` (the SQL examples), ``params`` (the query
string of a request, parsed), ``data`` (every read of the catalogue), ``writes``
(the curation writes of ``hermes serve --writable``: tags, notes, archive), ``pages``
(HTML), ``responses`` (JSON and CSV), the views ``views_*`` (one module per page or
API group; modules of this package, since ``pyproject.toml`` names every package a
wheel holds), and ``app`` (the route table, :func:`create_app` and :func:`serve`).

Front end only: every answer comes from :mod:`pyhermes.present` and
:class:`pyhermes.Catalog`, the same calls as the CLI and the
notebook views.
"""

from __future__ import annotations

from pyhermes.web.app import HermesApp, create_app, serve

__all__ = ["HermesApp", "create_app", "serve"]
