"""A pandas DataFrame of runs straight from SQL: columns, not objects.

The runs come from one SELECT, their arguments from a second; numpy pivots the
arguments into one column per key. No Python code runs per run: values are
converted once per distinct text.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyhermes import rundir
from pyhermes.index.query.filters import Filter, Params
from pyhermes.index.query.select import select_runs, sort_columns
from pyhermes.index.rules import disk_name
from pyhermes.index.store.layout import SUMMARY_COLUMNS
from pyhermes.index.store.sql_reader import Reader

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
    reader: Reader, root: Path, scope: Filter, order_by: Sequence[str] | str | None, limit: int | None = None
) -> Any:
    """Return the frame of the runs matching ``scope`` in the index ``reader`` reads, whose run
    paths are relative to ``root`` (see :meth:`pyhermes.index.query.runs.RunQueries.frame`).

    Two SELECTs, run at the same time: the runs (in order), and the arguments of
    the same runs. One joined query repeats every run column on each argument row
    and was 4-5x slower to fetch (71 ms against 15 ms for 1,000 runs of 7 arguments).

    Raises:
        MissingDependencyError: pandas is not installed.
    """
    from pyhermes._optional import require

    pd = require("pandas")
    import numpy as np

    summaries = [f"hermes_run.{column} AS {name}" for name, column in SUMMARY_COLUMNS.items()]
    runs_sql, runs_params = select_runs(["id", *FRAME_FIELDS, *summaries], scope, order_by or [], limit)
    params = Params()
    chosen = f"SELECT hermes_run.id FROM hermes_run WHERE {scope.sql(params)}"
    if limit is not None:
        chosen += " ORDER BY " + ", ".join(sort_columns(order_by or [], params)) + f" LIMIT {int(limit)}"
    # The arguments as one row of four lists (comma-separated ids and positions,
    # JSON arrays of keys and values), parsed in C by numpy and json: one row per
    # argument made ~8 Python objects each (74,000 arguments at 10,000 runs,
    # most of the time of a frame); grouping in SQL cost more than it saved.
    # The database aggregates them while this thread fetches the runs.
    aggregates = _AGGREGATES[reader.dialect]
    lists = ", ".join(aggregate.format(column) for aggregate, column in zip(aggregates, _ARG_COLUMNS, strict=True))
    rows, (arg_lists,) = reader.rows_together(
        [(runs_sql, runs_params), (f"SELECT {lists} FROM hermes_arg WHERE run_id IN ({chosen})", params.values)]
    )
    names = ["run_id", *FRAME_FIELDS, *SUMMARY_COLUMNS]
    columns: list[Any] = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    named = dict(zip(names, columns, strict=True))
    data: dict[str, Any] = {name: list(named[name]) for name in FRAME_FIELDS}
    prefix = str(root).rstrip("/") + "/"
    data["path"] = [prefix + disk_name(path) for path in data["path"]]
    data["identifier"] = [disk_name(name) for name in data["identifier"]]
    for name in ("start_time", "end_time"):
        data[name] = pd.to_datetime(pd.Series(data[name], dtype=object), format="ISO8601")
    data["finished"] = [bool(value) for value in data["finished"]]
    data["execution_time"] = _numbers(np, data["execution_time"], _REAL)
    run_ids = np.array(named["run_id"], dtype=np.int64)
    keys, table = _arg_table(pd, np, run_ids, arg_lists)
    reserved = {*FRAME_FIELDS, *SUMMARY_COLUMNS, "experiments", "run_id"}
    for position, key in enumerate(keys):
        # An exec-arg key that is also a column name (a positional "path") gets a prefix.
        data[f"arg:{key}" if key in reserved else key] = table[:, position].tolist()
    for name in SUMMARY_COLUMNS:
        data[name] = _numbers(np, list(named[name]), _SUMMARY_KINDS.get(name, _REAL))
    data["run_id"] = run_ids
    return pd.DataFrame(data, index=range(len(rows)))


_REAL, _INTEGER = "real", "integer"
#: The summary fields stored as integers (the others are real numbers).
_SUMMARY_KINDS = {"count": _INTEGER, "argmax": _INTEGER}


def _numbers(np: Any, values: list[Any], kind: str) -> Any:
    """A numeric column as pandas would infer it from ``values`` (numbers of ``kind`` and
    ``None``), built by numpy in one call: float64 with NaN for ``None``, int64 for
    integers without ``None``; the list itself when every value is ``None``."""
    missing = values.count(None)
    if missing == len(values):
        return values
    if kind == _INTEGER and not missing:
        return np.array(values, dtype=np.int64)
    return np.array(values, dtype=np.float64)


#: The ``hermes_arg`` columns a frame reads, and the aggregate of each, per dialect:
#: integers as comma-separated text, texts as a JSON array (all in the same row order).
_ARG_COLUMNS = ("run_id", "position", "key", "value")
_AGGREGATES = {
    "sqlite": ("group_concat({}, ',')", "group_concat({}, ',')", "json_group_array({})", "json_group_array({})"),
    "postgresql": (
        "string_agg(CAST({} AS TEXT), ',')", "string_agg(CAST({} AS TEXT), ',')", "json_agg({})", "json_agg({})",
    ),
}


def _arg_table(pd: Any, np: Any, run_ids: Any, arg_lists: tuple[Any, ...]) -> tuple[list[str], Any]:
    """(keys in first-seen order over the frame's rows, object array runs x keys).

    ``arg_lists`` are the run ids and positions (comma-separated text) and the
    keys and values (JSON arrays, or lists already decoded) of the arguments, in
    one order; all ``None`` without arguments. ``None`` where a run lacks a key; a
    key repeated within a run gives the list of its values, in their order.
    """
    import json

    runs = len(run_ids)
    run_text, position_text, key_list, value_list = arg_lists
    if not run_text or not runs:
        return [], np.full((runs, 0), None, dtype=object)
    arg_run = np.fromstring(run_text, dtype=np.int64, sep=",")
    arg_position = np.fromstring(position_text, dtype=np.int64, sep=",")
    arg_key = np.array(json.loads(key_list) if isinstance(key_list, str) else key_list, dtype=object)
    arg_value = np.empty(len(arg_run), dtype=object)
    arg_value[:] = json.loads(value_list) if isinstance(value_list, str) else value_list
    ids = run_ids
    by_id = np.argsort(ids, kind="stable")
    sorted_ids = ids[by_id]
    found = np.minimum(np.searchsorted(sorted_ids, arg_run), len(ids) - 1)
    known = sorted_ids[found] == arg_run  # a run stored between the two SELECTs is left out
    if not known.all():
        arg_run, arg_position, arg_key, arg_value, found = (
            arg_run[known], arg_position[known], arg_key[known], arg_value[known], found[known]
        )
    rows = by_id[found]
    # Frame row by frame row, arguments in their order: keys in the order first seen.
    order = np.lexsort((arg_position, rows))
    key_codes, key_names = pd.factorize(arg_key[order])
    keys = list(key_names)
    value_codes, distinct = pd.factorize(arg_value[order], use_na_sentinel=False)
    converted = np.empty(len(distinct), dtype=object)
    # A flag's value is NULL, which factorize hands back as NaN: anything but text is a flag.
    converted[:] = [_cell(text if isinstance(text, str) else None) for text in distinct]
    cells = converted[value_codes]
    rows = rows[order]
    table = np.full((runs, len(keys)), None, dtype=object)
    table[rows, key_codes] = cells
    # A key repeated within a run: its (row, key) pairs meet once sorted (stable: in order).
    by_pair = np.argsort(rows * len(keys) + key_codes, kind="stable")
    pairs = (rows * len(keys) + key_codes)[by_pair]
    repeated = np.flatnonzero(pairs[1:] == pairs[:-1])
    if repeated.size:
        groups: dict[int, Repeated] = {}
        for at in np.unique(np.r_[repeated, repeated + 1]):
            groups.setdefault(int(pairs[at]), Repeated()).append(cells[by_pair[at]])
        for pair, values in groups.items():
            table[pair // len(keys), pair % len(keys)] = list(values)
    return keys, table
