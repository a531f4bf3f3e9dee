"""A pandas DataFrame of runs from one SQL query: columns, not objects.

One query joins the runs with their arguments (a run with k arguments gives k
rows); pandas keeps one row per run and pivots the arguments into one column
per key. No Python code runs per run: values are converted once per distinct
text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyhermes import rundir
from pyhermes.index.layout import SUMMARY_COLUMNS
from pyhermes.index.query import Filter, Params, sort_columns

if TYPE_CHECKING:
    from pyhermes.index.catalog import Index

__all__ = ["FRAME_FIELDS", "build_frame"]

#: The run columns of a frame, before the exec-arg and score-summary columns.
FRAME_FIELDS = (
    "identifier", "path", "start_time", "end_time", "execution_time", "finished",
    "commit_hash", "comments",
)


class Repeated(list):  # type: ignore[type-arg]
    """The values of an exec-arg key that repeats (told apart from a value that is a list)."""


def _cell(value: str | None) -> Any:  # once per distinct text, not per run
    """A frame cell for an exec arg: ``True`` for a flag, the converted value, or the text."""
    if value is None:
        return True
    return rundir.convert_value(value) if " " not in value else value


def build_frame(
    index: Index, scope: Filter, order_by: Sequence[str] | str | None, limit: int | None = None
) -> Any:
    """Return the frame of the runs of ``index`` matching ``scope`` (see :meth:`Index.frame`).

    Raises:
        MissingDependencyError: pandas is not installed.
    """
    from pyhermes._optional import require

    pd = require("pandas")
    params = Params()
    summaries = [f"hermes_run.{column}" for column in SUMMARY_COLUMNS.values()]
    # The run's rank in the requested order, computed by the database, keeps the
    # join's rows in that order whatever plan it picks.
    order = ", ".join(sort_columns(order_by, params)) if order_by else "hermes_run.id"
    sql = (
        "SELECT ranked.rank, "
        + ", ".join(f"ranked.{name}" for name in ("id", *FRAME_FIELDS, *SUMMARY_COLUMNS))
        + ", hermes_arg.key, hermes_arg.value FROM ("
        + "SELECT hermes_run.id AS id, "
        + ", ".join(f"hermes_run.{name} AS {name}" for name in FRAME_FIELDS)
        + ", "
        + ", ".join(f"{column} AS {name}" for column, name in zip(summaries, SUMMARY_COLUMNS, strict=True))
        + f", ROW_NUMBER() OVER (ORDER BY {order}) AS rank"
        + f" FROM hermes_run WHERE {scope.sql(params)}"
        + (f" ORDER BY {order} LIMIT {int(limit)}" if limit is not None else "")
        + ") AS ranked"
        + " LEFT OUTER JOIN hermes_arg ON hermes_arg.run_id = ranked.id"
        + " ORDER BY ranked.rank, hermes_arg.position"
    )
    rows = index.reader.rows(sql, params.values)
    return _frame_of(pd, rows, str(index.root))


def _frame_of(pd: Any, rows: list[tuple[Any, ...]], root: str) -> Any:
    """The frame of the joined rows (rank, run id, run fields, summaries, arg key, arg value)."""
    import numpy as np

    width = 2 + len(FRAME_FIELDS) + len(SUMMARY_COLUMNS) + 2
    columns = [np.array(column, dtype=object) for column in zip(*rows, strict=True)] if rows else [
        np.empty(0, dtype=object) for _ in range(width)
    ]
    rank = columns[0].astype(np.int64)
    # Rows come ordered by rank: a run's first row is where the rank changes.
    first = np.flatnonzero(np.r_[True, rank[1:] != rank[:-1]]) if rows else np.empty(0, dtype=np.int64)
    named = dict(zip(["rank", "run_id", *FRAME_FIELDS, *SUMMARY_COLUMNS, "key", "value"], columns,
                     strict=True))
    data: dict[str, Any] = {name: named[name][first].tolist() for name in FRAME_FIELDS}
    prefix = root.rstrip("/") + "/"
    data["path"] = [prefix + path for path in data["path"]]
    for name in ("start_time", "end_time"):
        data[name] = pd.to_datetime(pd.Series(data[name], dtype=object), format="ISO8601")
    data["finished"] = [bool(value) for value in data["finished"]]
    keys, table = _arg_table(pd, np, named, rank, len(first), first)
    reserved = {*FRAME_FIELDS, *SUMMARY_COLUMNS, "experiments", "run_id"}
    for position, key in enumerate(keys):
        # An exec-arg key that is also a column name (a positional "path") gets a prefix.
        data[f"arg:{key}" if key in reserved else key] = table[:, position].tolist()
    for name in SUMMARY_COLUMNS:
        data[name] = named[name][first].tolist()
    data["run_id"] = named["run_id"][first].tolist()
    return pd.DataFrame(data, index=range(len(first)))


def _arg_table(pd: Any, np: Any, named: dict[str, Any], rank: Any, runs: int, first: Any) -> Any:
    """(keys in first-seen order, object array runs x keys), ``None`` where a run lacks a key."""
    has_key = np.array([key is not None for key in named["key"]], dtype=bool)
    keys = list(dict.fromkeys(named["key"][has_key].tolist()))
    table = np.full((runs, len(keys)), None, dtype=object)
    if not keys:
        return keys, table
    row_of_rank = np.empty(int(rank.max()) + 1, dtype=np.int64)
    row_of_rank[rank[first]] = np.arange(runs)
    column_of = {key: position for position, key in enumerate(keys)}
    rows = row_of_rank[rank[has_key]]
    cols = np.array([column_of[key] for key in named["key"][has_key].tolist()], dtype=np.int64)
    texts = named["value"][has_key].tolist()
    converted = {text: _cell(text) for text in set(texts)}
    cells = np.empty(len(texts), dtype=object)
    cells[:] = [converted[text] for text in texts]
    # A key repeated within a run gives the list of its values.
    pairs = rows * len(keys) + cols
    order = np.argsort(pairs, kind="stable")
    sorted_pairs = pairs[order]
    repeated = np.flatnonzero(sorted_pairs[1:] == sorted_pairs[:-1])
    table[rows, cols] = cells
    if repeated.size:
        groups: dict[int, Repeated] = {}
        for index in order[np.unique(np.r_[repeated, repeated + 1])]:
            groups.setdefault(int(pairs[index]), Repeated()).append(cells[index])
        for pair, values in groups.items():
            table[pair // len(keys), pair % len(keys)] = list(values)
    return keys, table
