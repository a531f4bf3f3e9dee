"""``to_frame()`` of an indexed list: exec-arg columns pivoted from the aggregated arguments."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from legacy import write_run

from pyhermes import Experiment
from pyhermes.index.store.sql_reader import SqliteReader

pd = pytest.importorskip("pandas")

#: Each run's exec_arguments lines and the frame cells they give (a missing key: no entry).
RUNS: list[tuple[list[str], dict[str, Any]]] = [
    (
        ["train", "--flag", "-name a,b", '-json ["x", "y"]', "-u café", "-multi 1 2", "-r 1", "-r 2"],
        {"train": True, "--flag": True, "-name": "a,b", "-json": '["x", "y"]', "-u": "café",
         "-multi": "1 2", "-r": [1, 2]},
    ),
    (
        ["train", "-lr 0.5", "path 3", "-r 7", "-u café"],
        {"train": True, "-lr": 0.5, "arg:path": 3.0, "-r": 7, "-u": "café"},
    ),
    ([], {}),
    (
        ["-r 3", "-name 'quoted' \\ back", "-lr nan", "-r x", "-r 3"],
        {"-r": [3, "x", 3], "-name": "'quoted' \\ back", "-lr": math.nan},
    ),
]
ARG_COLUMNS = ["train", "--flag", "-name", "-json", "-u", "-multi", "-r", "-lr", "arg:path"]


def _same(cell: Any, expected: Any) -> bool:
    if hasattr(cell, "item"):  # a numpy scalar of a numeric column
        cell = cell.item()
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(cell, float) and math.isnan(cell)
    if isinstance(expected, list):
        return isinstance(cell, list) and [type(v) for v in cell] == [type(v) for v in expected] and cell == expected
    return type(cell) is type(expected) and cell == expected


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for day, (lines, _) in enumerate(RUNS, start=1):
        write_run(tmp_path / "e", start=datetime(2024, 1, day), exec_args=lines, scores=[1.0, 2.0, float(day)])
    return tmp_path / "e"


def test_frame_of_odd_arguments(folder):
    runs = Experiment.load_all(folder)
    frame = runs.to_frame()
    assert list(frame["identifier"]) == [run.identifier for run in runs]
    # Keys in the order first seen, frame row by frame row; run columns before, summaries after.
    assert [column for column in frame.columns if column in ARG_COLUMNS] == ARG_COLUMNS
    for row, (_, expected) in enumerate(RUNS):
        for column in ARG_COLUMNS:
            cell = frame[column].iloc[row]
            if column in expected:
                assert _same(cell, expected[column]), (row, column, cell)
            else:
                assert cell is None or (isinstance(cell, float) and math.isnan(cell)), (row, column, cell)
    assert frame["max"].tolist() == [2.0, 2.0, 3.0, 4.0]
    assert frame["count"].tolist() == [3, 3, 3, 3] and frame["count"].dtype == "int64"
    assert frame["finished"].tolist() == [True] * 4
    assert [run.identifier for run in frame["experiments"]] == list(frame["identifier"])
    # A part of the list: the same cells for its runs.
    part = runs.filter_by_exec_args("-u café").to_frame()
    assert list(part["identifier"]) == list(frame["identifier"][:2])
    assert part["-r"].iloc[0] == [1, 2] and part["-lr"].iloc[1] == 0.5


def test_frame_without_arguments_or_runs(tmp_path):
    write_run(tmp_path / "e", start=datetime(2024, 1, 1), exec_args=[])
    frame = Experiment.load_all(tmp_path / "e").to_frame()
    assert len(frame) == 1 and "train" not in frame.columns
    assert Experiment.load_all(tmp_path / "e").filter_by_exec_args("--nothing").to_frame().empty


def test_argument_of_a_run_not_in_the_runs_is_left_out():
    import numpy as np

    from pyhermes.index.query.frame import _arg_table

    # Run 9 was stored between the two SELECTs: its argument has no row in the frame.
    keys, table = _arg_table(pd, np, np.array([4, 2], dtype=np.int64), ("2,9,4", "0,0,0", '["-a","-a","-b"]', '["1","5",null]'))
    assert keys == ["-b", "-a"]  # first seen in the first row (run 4)
    assert table.tolist() == [[True, None], [None, 1]]


def test_rows_together_runs_every_query_and_raises_the_first_error(tmp_path):
    import sqlite3

    file = tmp_path / "x.sqlite"
    with sqlite3.connect(file) as connection:
        connection.execute("CREATE TABLE t (n INTEGER)")
        connection.executemany("INSERT INTO t VALUES (?)", [(1,), (2,), (3,)])
    reader = SqliteReader(file)
    first, second = reader.rows_together(
        [("SELECT n FROM t ORDER BY n", None), ("SELECT sum(n) FROM t WHERE n > :low", {"low": 1})]
    )
    assert first == [(1,), (2,), (3,)] and second == [(5,)]
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        reader.rows_together([("SELECT n FROM t", None), ("SELECT n FROM missing", None)])
    reader.close()
