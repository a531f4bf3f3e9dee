"""The view of the static files, ``/static/<name>``: the style sheet, the script and plotly.js;
and ``/favicon.ico``, the icon (``favicon.svg``) for browsers that ask there.

Only these files are served: the style sheets, scripts and images of this package's
``static/`` folder (never cached), and ``plotly.min.js`` from inside the installed
``plotly`` package (cached for a day), so the pages load nothing from the internet.
"""

from __future__ import annotations

from pathlib import Path

from flask import Response, send_from_directory

from pyhermes._optional import require
from pyhermes.web.state import NotFound

__all__ = ["static_file", "favicon", "STATIC", "OWN_FILES", "FAVICON"]

#: The folder of the package's own static files.
STATIC = Path(__file__).resolve().parent / "static"
#: The kinds of file served from :data:`STATIC`.
OWN_SUFFIXES = (".css", ".js", ".svg")
#: The files served from :data:`STATIC` (read when the module is imported).
OWN_FILES = tuple(sorted(p.name for p in STATIC.iterdir() if p.suffix in OWN_SUFFIXES))
#: The icon of the pages (``<link rel="icon">``), also answered at ``/favicon.ico``.
FAVICON = "favicon.svg"
#: plotly.js, served from the ``plotly`` package.
PLOTLY = "plotly.min.js"


def static_file(name: str) -> Response:
    """``GET /static/<name>``: return one of the static files.

    Raises:
        NotFound: no such file is served (a 404).
        MissingDependencyError: ``plotly.min.js`` is asked and plotly is not installed.
    """
    if name == PLOTLY:
        plotly = require("plotly")
        folder = Path(plotly.__file__).resolve().parent / "package_data"
        return send_from_directory(folder, name, max_age=86400)
    if name not in OWN_FILES:
        raise NotFound(f"no such file: {name}")
    return send_from_directory(STATIC, name, max_age=0)


def favicon() -> Response:
    """``GET /favicon.ico``: return the icon of the pages (an SVG, cached for a day), so a
    browser asking there gets it instead of a 404."""
    return send_from_directory(STATIC, FAVICON, max_age=86400, mimetype="image/svg+xml")
