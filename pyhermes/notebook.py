"""Notebook views: the ``_repr_html_`` of runs, lists of runs and SQL results.

A front end, like the CLI and the web app: the library's objects do not know
how they are shown. Importing this module gives :class:`~pyhermes.storage.Experiment`,
:class:`~pyhermes.storage.ExperimentList` and
:class:`~pyhermes.index.query.runs.SqlResult` the HTML view IPython and Jupyter
display (the tables of :mod:`pyhermes.present`, as on the web page).
``pyhermes`` imports it with its first public name, so ``from pyhermes import
Experiment`` is all a notebook needs.
"""

from __future__ import annotations

from typing import Any

from pyhermes.index.query.runs import SqlResult
from pyhermes.storage import Experiment, ExperimentList

__all__ = ["LIST_ROWS", "experiment_html", "experiments_html", "sql_result_html"]

#: Runs shown by the notebook view of a list.
LIST_ROWS = 20


def experiment_html(experiment: Experiment) -> str:
    """The notebook view of a run: its fields, arguments and score summary (the web page's tables)."""
    from pyhermes import present

    return present.experiment_html(experiment)


def experiments_html(experiments: ExperimentList) -> str:
    """The notebook view of a list: a table of the first :data:`LIST_ROWS` runs (the columns of
    the runs page and ``hermes ls``) and a count; a list bound to the index is read through
    the runs-table path (see :func:`pyhermes.present.list_table`)."""
    from pyhermes import present

    table = present.list_table(experiments, LIST_ROWS)
    return present.experiments_html(
        table.columns, table.rows, table.total, newest_first=table.newest_first
    )


def sql_result_html(result: SqlResult) -> str:
    """The notebook view of a query result: a table of the first 50 rows and a count."""
    from pyhermes import present

    return present.sql_html(result.columns, result.rows)


def _install(cls: type, view: Any) -> None:
    cls._repr_html_ = view  # type: ignore[attr-defined]


_install(Experiment, experiment_html)
_install(ExperimentList, experiments_html)
_install(SqlResult, sql_result_html)
