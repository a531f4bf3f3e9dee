"""The documented hermes "Storage and Retrieval" API: Experiment, ExperimentList, ExperimentFrame, Catalog.

This module is where users import them from (``from pyhermes.storage import
Experiment``, as the original hermes documents; ``pyhermes`` re-exports the same
objects), and the classes name it as their ``__module__``, so reprs and pickles
say ``pyhermes.storage``. They are defined in three modules, imported one way:

- :mod:`pyhermes.experiment`: :class:`Experiment`, one run directory;
- :mod:`pyhermes.runlist`: :class:`ExperimentList` (bound to the index or built
  by hand) and :class:`ExperimentFrame`;
- :mod:`pyhermes.catalog`: :class:`Catalog`, the index answering with runs, and
  the loader behind :meth:`Experiment.load_all`, installed when it is imported
  (here).

Nothing heavy is imported: numpy, pandas, torch and SQLAlchemy load when a
method needs them.
"""

from __future__ import annotations

from pyhermes.catalog import Catalog
from pyhermes.experiment import Experiment
from pyhermes.runlist import ExperimentFrame, ExperimentList

__all__ = ["Experiment", "ExperimentList", "ExperimentFrame", "Catalog"]
