"""A few runs in the order of one indexed run column, found by walking that column's index.

``hermes ls --where ... --sort -final_mean --limit 10`` and ``top(10)`` want the
first few matches in the order of one indexed column. Sorting every match costs
what the matches cost (~190,000 runs of a million for a broad filter: 0.4 s);
walking the column's index from the top and probing each run costs what the
runs before the last wanted match cost. :func:`first_in_order` walks a window of
:data:`~pyhermes.index.query.select.WINDOW_RUNS` runs first and, when the window
held too few matches (the best runs may all fail the filter), a window
:data:`WINDOW_GROWTH` times wider, while the walk is expected to cost less than
the sort: a window is walked only while it is no wider than the matches
estimated from the newest :data:`SAMPLE_RUNS` runs (a walked run costs about
what a sorted match costs). A filter that matches no sampled run is sorted after
the first window, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyhermes.index.query import select
from pyhermes.index.query.filters import Filter

if TYPE_CHECKING:
    from pyhermes.index.store.sql_reader import Reader

__all__ = ["first_in_order", "WINDOW_GROWTH", "SAMPLE_RUNS"]

#: How much wider each window is than the one before.
WINDOW_GROWTH = 8
#: The newest runs whose matches estimate how many runs match in all.
SAMPLE_RUNS = 2000


def first_in_order(
    reader: Reader,
    columns: Sequence[str],
    where: Filter,
    order_by: Sequence[str] | str | None,
    limit: int,
    offset: int,
) -> list[tuple[Any, ...]] | None:
    """The page of ``limit`` matches of ``where`` from ``offset`` in the order ``order_by``,
    found by walking windows of the order's column (see the module).

    Returns the rows, or ``None`` when ``order_by`` is not one indexed run column, or
    when the windows worth walking held fewer than ``offset + limit`` matches: the
    caller sorts the matches then.
    """
    window = select.WINDOW_RUNS
    widest: float | None = None
    while True:
        bound_sql = select.window_bound(order_by, window)
        bound = reader.rows(bound_sql) if bound_sql is not None else []
        if not bound:  # not one indexed column, or the window holds every run
            return None
        sql, params = select.select_runs(
            columns, where, order_by, limit, offset, within=bound[0][0], dialect=reader.dialect
        )
        rows = reader.rows(sql, params)
        if len(rows) == limit:
            return rows
        window *= WINDOW_GROWTH
        if widest is None:
            widest = estimated_matches(reader, where)
        if window > widest:
            return None


def estimated_matches(reader: Reader, where: Filter) -> float:
    """How many runs match ``where``, judged from the newest :data:`SAMPLE_RUNS` runs
    (see :func:`~pyhermes.index.query.select.count_in_sample`): their share of matches
    times the span of the runs' ids (holes left by runs gone make it an overestimate)."""
    sql, params = select.count_in_sample(where, SAMPLE_RUNS, reader.dialect)
    (sampled, matched, span), = reader.rows(sql, params)
    return int(matched) * int(span or 0) / sampled if sampled else 0.0
