"""pyhermes: a catalogue of machine-learning experiment runs.

Run directories written by the hermes runner stay the source of truth; an SQL
index (SQLite by default) of their info, arguments, times and score summaries
answers queries. Public names are listed in ``__all__`` and imported lazily, so
``import pyhermes`` loads neither SQLAlchemy nor torch, pandas or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pyhermes._version import __version__

__all__ = [
    "Experiment",
    "ExperimentList",
    "ExperimentFrame",
    "Catalog",
    "TagChange",
    "Note",
    "ScoreSummary",
    "arg",
    "flag",
    "info",
    "score",
    "tag",
    "note",
    "HermesError",
    "MissingDependencyError",
    "RunFormatError",
    "UntrustedFileError",
    "CatalogError",
    "IndexVersionError",
    "IndexBusyError",
    "IndexDamagedError",
    "ReadOnlyQueryError",
    "QueryError",
    "InvalidTagError",
    "__version__",
]

_LOCATION = {
    "Experiment": "pyhermes.storage",
    "ExperimentList": "pyhermes.storage",
    "ExperimentFrame": "pyhermes.storage",
    "Catalog": "pyhermes.storage",
    "TagChange": "pyhermes.experiment",
    "Note": "pyhermes.rundir",
    "ScoreSummary": "pyhermes.summary",
    "arg": "pyhermes.index.query.arg_filters",
    "flag": "pyhermes.index.query.arg_filters",
    "info": "pyhermes.index.query.arg_filters",
    "score": "pyhermes.index.query.filters",
    "tag": "pyhermes.index.query.curation_filters",
    "note": "pyhermes.index.query.curation_filters",
    "HermesError": "pyhermes.errors",
    "MissingDependencyError": "pyhermes.errors",
    "RunFormatError": "pyhermes.errors",
    "UntrustedFileError": "pyhermes.errors",
    "CatalogError": "pyhermes.errors",
    "IndexVersionError": "pyhermes.errors",
    "IndexBusyError": "pyhermes.errors",
    "IndexDamagedError": "pyhermes.errors",
    "ReadOnlyQueryError": "pyhermes.errors",
    "QueryError": "pyhermes.errors",
    "InvalidTagError": "pyhermes.errors",
}

if TYPE_CHECKING:
    from pyhermes.errors import (
        CatalogError,
        HermesError,
        IndexBusyError,
        IndexDamagedError,
        IndexVersionError,
        InvalidTagError,
        MissingDependencyError,
        QueryError,
        ReadOnlyQueryError,
        RunFormatError,
        UntrustedFileError,
    )
    from pyhermes.experiment import TagChange
    from pyhermes.index.query.arg_filters import arg, flag, info
    from pyhermes.index.query.curation_filters import note, tag
    from pyhermes.index.query.filters import score
    from pyhermes.rundir import Note
    from pyhermes.storage import Catalog, Experiment, ExperimentFrame, ExperimentList
    from pyhermes.summary import ScoreSummary


def __getattr__(name: str) -> Any:
    module = _LOCATION.get(name)
    if module is None:
        raise AttributeError(f"module 'pyhermes' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    if module in ("pyhermes.storage", "pyhermes.experiment"):
        # The notebook views of runs, lists and SQL results (a front end over present).
        from pyhermes import notebook  # noqa: F401
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
