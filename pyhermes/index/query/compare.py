"""The reads of a compare of learning curves: every matched run, its arguments, and which args vary.

A compare reads every run a filter matches (no cap): the runs themselves come from
:meth:`RunQueries.run_rows`; this module adds the two reads made for all of them at
once: the argument lines of the matched runs (:func:`arg_lines`, one query) and, per
exec-arg key, how many distinct values and how many runs have it among the matched
runs (:func:`arg_spread`, one aggregate), which tells the args that differ between
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyhermes.index.query.filters import Filter, everything, under
from pyhermes.index.query.select import select_runs
from pyhermes.index.rules import relative

if TYPE_CHECKING:
    from pyhermes.index.query.runs import RunQueries

__all__ = ["KeySpread", "scoped", "arg_lines", "arg_spread", "arg_values"]


@dataclass(frozen=True)
class KeySpread:
    """How an exec-arg key spreads over the matched runs.

    ``values``: how many distinct values it has (a flag's is one); ``runs``: how
    many of the matched runs have it.
    """

    key: str
    values: int
    runs: int


def scoped(queries: RunQueries, condition: Filter) -> Filter:
    """Return ``condition`` limited to the runs below the folder the index was opened on."""
    if queries.folder is None:
        return condition
    return under(relative(queries.root, queries.folder), True) & condition


def _matched_ids(condition: Filter) -> tuple[str, dict[str, object]]:
    return select_runs(["id"], condition)


def arg_lines(queries: RunQueries, condition: Filter = everything) -> dict[int, list[str]]:
    """Return the argument lines (in file order) of every run matching ``condition``, by run id.

    One query, whatever the number of runs; a run without arguments is absent.
    """
    matched, params = _matched_ids(condition)
    sql = (
        f"SELECT run_id, raw FROM hermes_arg WHERE run_id IN ({matched}) "
        "ORDER BY run_id, position"
    )
    lines: dict[int, list[str]] = {}
    for run_id, raw in queries.reader.rows(sql, params):
        lines.setdefault(run_id, []).append(raw)
    return lines


def arg_spread(queries: RunQueries, condition: Filter = everything) -> tuple[int, list[KeySpread]]:
    """Return how many runs match ``condition`` and how each exec-arg key spreads over them.

    A key differs between the runs when it has more than one value, or when some
    runs lack it (``runs`` below the count). Keys are in the order of the index
    (alphabetical). Two aggregate queries.
    """
    matched, params = _matched_ids(condition)
    (total,), = queries.reader.rows(f"SELECT COUNT(*) FROM ({matched}) AS matched", params)
    sql = (
        "SELECT key, COUNT(DISTINCT COALESCE(value, '')), COUNT(DISTINCT run_id) "
        f"FROM hermes_arg WHERE run_id IN ({matched}) GROUP BY key ORDER BY key"
    )
    spread = [
        KeySpread(key, int(values), int(runs)) for key, values, runs in queries.reader.rows(sql, params)
    ]
    return int(total), spread


def arg_values(queries: RunQueries, condition: Filter, keys: list[str]) -> dict[int, dict[str, str | None]]:
    """Return, per run matching ``condition`` that has any of ``keys``, its stored value text of each
    (``None`` for a flag; a repeated key's values joined by a newline). One query."""
    from pyhermes.index.query.filters import Params

    if not keys:
        return {}
    matched, params = _matched_ids(condition)
    named = Params("k")
    wanted = ", ".join(named.bind(key) for key in keys)
    sql = (
        f"SELECT run_id, key, value FROM hermes_arg WHERE key IN ({wanted}) "
        f"AND run_id IN ({matched}) ORDER BY run_id, position"
    )
    values: dict[int, dict[str, str | None]] = {}
    for run_id, key, value in queries.reader.rows(sql, {**params, **named.values}):
        found = values.setdefault(run_id, {})
        found[key] = value if key not in found else f"{found[key]}\n{value}"
    return values
