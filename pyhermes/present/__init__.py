"""How runs and values are shown: what the terminal, the web pages, JSON and notebooks show.

Everything here works on library objects (:class:`pyhermes.Catalog`,
:class:`~pyhermes.storage.Experiment`) and returns plain data or text; the CLI,
the web app (:mod:`pyhermes.web`) and the notebook views are thin layers over it:

* values (:mod:`~pyhermes.present.values`): :func:`text_value` (tables and CSV),
  :func:`json_value` (JSON);
* tables of runs (:mod:`~pyhermes.present.runs`): :func:`runs_page` (filter, sort,
  paging; never reads all rows), :func:`export_pages`, :func:`selection`,
  :func:`list_table`, all through the one runs-table path of the index;
* one run (:mod:`~pyhermes.present.details`): :func:`run_details` (what ``hermes show`` prints);
* learning curves as data (:mod:`~pyhermes.present.curve_data`): :func:`curves_data`
  (grouped by :mod:`pyhermes.curves`' rules, downsampled for drawing), :func:`curve_rows`;
* rendering (:mod:`~pyhermes.present.render`): :func:`format_table` (terminal),
  :func:`html_table` (web and notebooks), :func:`experiments_html`,
  :func:`experiment_html`, :func:`sql_html` (notebook views).

Only the standard library is imported at first; numpy and the index when used.
"""

from __future__ import annotations

from pyhermes.present.curve_data import (
    CURVE_COLUMNS,
    MAX_POINTS,
    curve_rows,
    curves_data,
    downsample,
)
from pyhermes.present.details import TAIL_LINES, list_files, run_details, tail
from pyhermes.present.render import (
    MAX_CELL,
    MIN_CELL,
    experiment_html,
    experiments_html,
    format_table,
    html_table,
    sql_html,
)
from pyhermes.present.runs import (
    MAX_PER_PAGE,
    RunsPage,
    check_columns,
    column_getter,
    count_of,
    export_pages,
    forget_counts,
    list_table,
    runs_page,
    selection,
    sort_keys,
)
from pyhermes.present.values import is_number, json_value, split_list, text_value

__all__ = [
    "CURVE_COLUMNS", "MAX_CELL", "MAX_PER_PAGE", "MAX_POINTS", "MIN_CELL", "TAIL_LINES",
    "RunsPage", "check_columns", "column_getter", "curve_rows", "curves_data", "downsample",
    "experiment_html", "experiments_html", "export_pages", "count_of", "forget_counts", "format_table", "html_table",
    "is_number", "json_value", "list_files", "list_table", "run_details", "runs_page",
    "selection", "sort_keys", "split_list", "sql_html", "tail", "text_value",
]
