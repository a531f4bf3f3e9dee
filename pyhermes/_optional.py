"""Imports of optional dependencies, with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from pyhermes.errors import MissingDependencyError

_EXTRA_OF = {
    "torch": "torch",
    "pandas": "pandas",
    "matplotlib": "plot",
    "matplotlib.pyplot": "plot",
    "psycopg": "postgres",
    "tqdm": "progress",
    "flask": "web",
    "plotly": "web",
    "werkzeug": "web",
}


def require(module: str) -> ModuleType:
    """Import and return ``module``.

    Raises:
        MissingDependencyError: the module is not installed; the message names the
            pyhermes extra that provides it, e.g. ``pip install "pyhermes[pandas]"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = _EXTRA_OF.get(module, module.split(".")[0])
        raise MissingDependencyError(
            f"{module} is needed for this and is not installed: "
            f'pip install "pyhermes[{extra}]"'
        ) from exc


def pyplot() -> ModuleType:
    """Return ``matplotlib.pyplot``, selecting the headless Agg backend when no display is set."""
    import os

    matplotlib = require("matplotlib")
    if "matplotlib.pyplot" not in __import__("sys").modules and not os.environ.get("DISPLAY"):
        matplotlib.use("Agg")
    return require("matplotlib.pyplot")
