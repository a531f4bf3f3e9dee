"""pyhermes.present: values as text and JSON, columns of a runs table, tables, pages and curves.

Runs are written by tests/legacy.py; indexes are real SQLite files in the test's
temporary folder.
"""

from __future__ import annotations

import json
import math
import warnings
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from legacy import write_run

from pyhermes import Catalog, Experiment, ExperimentList, QueryError, present
from pyhermes.index.query.filters import everything
from pyhermes.index.query.grammar import as_filter
from pyhermes.index.query.table import (
    DEFAULT_LEADING,
    DEFAULT_TRAILING,
    arg_keys,
    available_columns,
    default_columns,
)
from pyhermes.present import (
    MAX_CELL,
    MAX_PER_PAGE,
    MIN_CELL,
    column_getter,
    curves_data,
    downsample,
    format_table,
    html_table,
    json_value,
    list_files,
    run_details,
    runs_page,
    split_list,
    sql_html,
    tail,
    text_value,
)
from pyhermes.present.values import column_decimals, fixed_value

START = datetime(2024, 3, 1, 15, 45, 1, 123456)


def _runs(folder: Path) -> list[Path]:
    """Three finished runs (two with scores, one without) under ``folder``."""
    return [
        write_run(folder, start=START, job_idx=0, comments="sweep: lr",
                  exec_args=["train", "--doubledqn", "-lr 0.001", "-hidden 64 64"],
                  scores=[1.0, 2.0, 3.0, 4.0], stdout="".join(f"line {i}\n" for i in range(15))),
        write_run(folder, start=START + timedelta(hours=1), job_idx=1,
                  exec_args=["train", "-lr 0.01"], scores=[10.0, 20.0]),
        write_run(folder, start=START + timedelta(hours=2), job_idx=2,
                  exec_args=["evaluate", "-lr 0.01"]),
    ]


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    folder = tmp_path / "tree" / "experiments" / "train" / "sweep"
    _runs(folder)
    return folder


@pytest.fixture
def catalog(sweep: Path, tmp_path: Path):
    return Catalog.open(sweep, index=tmp_path / "index" / "index.sqlite")


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("value", "compact", "full"),
    [
        (None, "", ""),
        (True, "true", "true"),
        (False, "false", "false"),
        (7, "7", "7"),
        (0.123456789, "0.123457", "0.123456789"),
        (1e-7, "1e-07", "1e-07"),
        (float("nan"), "nan", "nan"),
        (START, "2024-03-01 15:45:01", "2024-03-01T15:45:01.123456"),
        (date(2024, 3, 1), "2024-03-01", "2024-03-01"),
        ([64, 64], "64 64", "64 64"),
        ((0.5, "a", True), "0.5 a true", "0.5 a true"),
        (b"\x00\xff", "00ff", "00ff"),
        (Decimal("1.50"), "1.50", "1.50"),
        ("text, as it is", "text, as it is", "text, as it is"),
    ],
)
def test_text_value(value, compact, full):
    assert text_value(value, compact=True) == compact
    assert text_value(value, compact=False) == full


def test_text_value_of_numpy_numbers_in_tables():
    assert text_value(np.float64(2.5), compact=True) == "2.5"
    assert text_value([np.float64(0.1234567), np.float64(1.0)], compact=True) == "0.123457 1"


def test_json_value_gives_data_json_accepts_without_nan():
    value = {
        1: float("nan"),
        "inf": float("-inf"),
        "float": 1.5,
        "decimal": Decimal("2.25"),
        "bad decimal": Decimal("NaN"),
        "when": START,
        "day": date(2024, 3, 1),
        "tuple": (1, float("inf"), "x"),
        "bytes": b"\xab\x01",
        "numpy int": np.int64(3),
        "numpy array": np.array([1.0, np.nan]),
        "numpy bool": np.bool_(True),
        "path": Path("/runs/a"),
        "flags": [True, None],
    }
    data = json_value(value)
    assert data == {
        "1": None,
        "inf": None,
        "float": 1.5,
        "decimal": 2.25,
        "bad decimal": None,
        "when": "2024-03-01T15:45:01.123456",
        "day": "2024-03-01",
        "tuple": [1, None, "x"],
        "bytes": "ab01",
        "numpy int": 3,
        "numpy array": [1.0, None],
        "numpy bool": True,
        "path": "/runs/a",
        "flags": [True, None],
    }
    assert type(data["numpy int"]) is int and type(data["numpy bool"]) is bool
    json.dumps(data, allow_nan=False)  # strict JSON: no NaN or Infinity left


@pytest.mark.parametrize(
    ("text", "parts"),
    [(None, []), ("", []), (" , ,", []), ("a", ["a"]), (" -lr, final_mean:desc ,,x ", ["-lr", "final_mean:desc", "x"])],
)
def test_split_list(text, parts):
    assert split_list(text) == parts


# --------------------------------------------------------------------------- columns


def test_column_getter_reads_fields_summaries_args_and_info(sweep):
    first = Experiment.load(sorted(sweep.iterdir())[0])
    expected = {
        "identifier": first.identifier,
        "run.identifier": first.identifier,
        "path": str(first.path_to_experiment),
        "script_name": "train",
        "experiment_name": "sweep",
        "job_idx": 0,
        "finished": True,
        "start_time": START,
        "comments": "sweep: lr",
        "count": 4,
        "final_mean": 2.5,
        "score.max": 4.0,
        "args": "train --doubledqn -lr 0.001 -hidden 64 64",
        "info.comments": "sweep: lr",
        "info.no_such_key": None,
        "-lr": 0.001,
        "-hidden": [64, 64],
        "--doubledqn": True,
        "train": True,
        "-absent": None,
    }
    for name, value in expected.items():
        assert column_getter(name)(first) == value, name


def test_column_getter_without_an_index_accepts_any_word_but_no_text(sweep):
    run = Experiment.load(sorted(sweep.iterdir())[0])
    assert column_getter("bogus")(run) is None  # maybe a positional: not decided yet
    for name in ("two words", " -lr", ""):
        with pytest.raises(QueryError, match="unknown column"):
            column_getter(name)


def test_a_table_knows_the_exec_arg_keys_of_its_index(catalog):
    table = catalog.table(as_filter("evaluate"), ["evaluate", "train", "-never-seen"], None, None)
    assert table.rows == [[True, None, None]]  # train: a key of other runs; an option is always a column
    for name in ("bogus", "score.bogus"):
        with pytest.raises(QueryError, match="unknown column"):
            catalog.table(everything, [name], None, None)


def test_arg_keys_put_options_first_and_follow_the_index(catalog, sweep):
    assert arg_keys(catalog) == ["--doubledqn", "-hidden", "-lr", "evaluate", "train"]
    write_run(sweep, start=START + timedelta(days=1), exec_args=["-alpha 1", "zeta"])
    catalog.refresh(sweep, recursive=True, mode="quick")
    assert arg_keys(catalog) == ["-alpha", "--doubledqn", "-hidden", "-lr", "evaluate", "train", "zeta"]


def test_default_and_available_columns():
    assert default_columns(["-lr", "train"]) == [*DEFAULT_LEADING, "-lr", "train", *DEFAULT_TRAILING]
    available = available_columns(["-lr"])
    assert available[-1] == "args" and "-lr" in available and "final_mean" in available
    assert {"identifier", "start_time", "finished"} <= set(available)


# --------------------------------------------------------------------------- a page of runs


def test_runs_page_filters_sorts_and_pages(catalog):
    page = runs_page(catalog, where="-lr = 0.01", columns="identifier, -lr, count", per_page=1)
    assert page.total == 2 and page.pages == 2 and page.per_page == 1
    assert page.sort == ["start_time:desc"]  # newest first by default
    newest, older = (runs_page(catalog, where="-lr = 0.01", columns="job_idx", per_page=1, page=p)
                     for p in (1, 2))
    assert newest.rows == [[2]] and older.rows == [[1]]
    assert page.columns == ["identifier", "-lr", "count"]
    assert page.rows[0][1:] == [0.01, 0] and page.identifiers == [page.rows[0][0]]  # no scores
    assert page.paths[0].endswith("/" + page.identifiers[0]) and not page.paths[0].startswith("/")
    data = page.as_dict()
    assert data["total"] == 2 and data["runs"][0]["values"] == {
        "identifier": page.identifiers[0], "-lr": 0.01, "count": 0,
    }
    json.dumps(data, allow_nan=False)
    by_count = runs_page(catalog, sort="-count", columns=["count"])
    assert by_count.rows == [[4], [2], [0]]
    assert runs_page(catalog, per_page=10_000).per_page == MAX_PER_PAGE
    first = runs_page(catalog, per_page=2)
    assert runs_page(catalog, page=0, per_page=2).page == runs_page(catalog, page=-7, per_page=2).page == 1
    for past_the_end in (3, 999_999, 9223372036854775808, 10**40):  # clamped to the last page
        last = runs_page(catalog, page=past_the_end, per_page=2)
        assert (last.page, last.pages, last.total) == (2, 2, 3)
        assert len(last.rows) == 1 and last.identifiers[0] not in first.identifiers
    with pytest.raises(QueryError):
        runs_page(catalog, per_page=0)
    with pytest.raises(QueryError):
        runs_page(catalog, columns="bogus")


def test_run_details_lists_files_and_tails_logs(sweep):
    run = Experiment.load(sorted(sweep.iterdir())[0])
    (run.path_to_experiment / "weights.pth").write_bytes(b"12345")
    (run.path_to_experiment / "plots").mkdir()
    details = run_details(run, tail_lines=3)
    assert details["identifier"] == run.identifier and details["job_idx"] == 0
    assert details["args"] == ["train", "--doubledqn", "-lr 0.001", "-hidden 64 64"]
    assert details["args_dict"]["-hidden"] == [64, 64]
    assert details["info"]["comments"] == "sweep: lr"
    assert details["scores"]["count"] == 4 and details["scores"]["max"] == 4.0
    assert details["stdout_tail"] == ["line 12", "line 13", "line 14"]
    assert details["stderr_tail"] == []
    assert details["pth_files"] == ["weights.pth"]
    assert {"name": "weights.pth", "size": 5} in details["files"]
    assert {"name": "plots/", "size": None} in details["files"]


def test_list_files(tmp_path):
    (tmp_path / "b.txt").write_bytes(b"abc")
    (tmp_path / "a").mkdir()
    (tmp_path / "empty").write_bytes(b"")
    assert list_files(tmp_path) == [("a/", None), ("b.txt", 3), ("empty", 0)]


def test_tail(tmp_path):
    log = tmp_path / "stdout.log"
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(30)) + b"caf\xe9")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the decoding rule, quietly
        assert tail(log, 3) == ["line 28", "line 29", "café"]
        assert tail(log, 100)[0] == "line 0"
        # Only the last `limit` bytes are read; the first line read is cut, so dropped.
        assert tail(log, 100, limit=18) == ["line 29", "café"]  # not "ne 28"
    assert tail(tmp_path / "missing.log", 3) is None
    assert tail(tmp_path, 3) is None  # a folder


# --------------------------------------------------------------------------- curves


def test_downsample_keeps_everything_up_to_the_limit():
    assert downsample(0).tolist() == []
    assert downsample(5, 5).tolist() == [0, 1, 2, 3, 4]
    points = downsample(10_001, 2000)
    assert len(points) == 2000 and points[0] == 0 and points[-1] == 10_000
    assert np.all(np.diff(points) > 0)


@given(length=st.integers(0, 100_000), max_points=st.integers(2, 5000))
def test_downsample_spreads_at_most_max_points(length, max_points):
    points = downsample(length, max_points)
    assert len(points) == min(length, max_points)
    assert np.all(np.diff(points) > 0) and (length == 0 or (points[0] == 0 and points[-1] == length - 1))
    if length > max_points:
        gaps = np.diff(points)
        assert gaps.max() - gaps.min() <= 1  # evenly spread


def test_curves_data_one_line_per_run(sweep):
    runs = ExperimentList(Experiment.load(path) for path in sorted(sweep.iterdir()))
    data = curves_data(runs, window=2, band="std", raw=True, max_points=3)
    assert data["runs"] == 3 and data["skipped"] == 1 and data["group_by"] == []
    first = data["lines"][0]
    assert first["label"] == runs[0].identifier and first["n"] == 1
    assert first["x"] == [0, 2, 3]  # 4 scores, at most 3 points: first and last kept
    assert first["y"] == pytest.approx([1.0, 2.5, 3.5])  # trailing means over 2 values
    assert first["low"] == pytest.approx([1.0, 2.0, 3.0]) and first["high"] == pytest.approx([1.0, 3.0, 4.0])
    assert first["raw"] == [1.0, 3.0, 4.0]
    assert curves_data(runs, window=2, band=None)["lines"][0]["low"] is None
    json.dumps(data, allow_nan=False)


def test_curves_data_groups_and_refusals(sweep, tmp_path):
    runs = ExperimentList(Experiment.load(path) for path in sorted(sweep.iterdir()))
    data = curves_data(runs, group_by="-lr", window=1, band=None)
    assert [line["label"] for line in data["lines"]] == ["-lr 0.001 (n=1)", "-lr 0.01 (n=1)"]
    assert data["lines"][1]["y"] == [10.0, 20.0] and data["skipped"] == 1
    with pytest.raises(ValueError, match="band"):
        curves_data(runs, band="iqr")
    with pytest.raises(ValueError, match="window"):
        curves_data(runs, window=0)
    with pytest.raises(ValueError, match="no scores to plot"):
        curves_data(runs[2:])


# --------------------------------------------------------------------------- terminal


def test_format_table_aligns_columns_two_spaces_apart():
    text = format_table(["a", "bb"], [["1", "x"], ["22", "yyy"]])
    assert text == "a   bb\n--  ---\n1   x\n22  yyy\n"
    assert format_table(["a"], []) == "a\n-\n"


def test_format_table_shortens_long_cells_and_flattens_lines():
    long = "x" * 100
    lines = format_table(["name", "n"], [[long, "1"], ["two\nlines\tand tab", "2"]]).splitlines()
    assert lines[2] == "x" * (MAX_CELL - 1) + "…  1"
    assert lines[3].startswith("two lines and tab ")
    dots = format_table(["name"], [[long]], ellipsis="...").splitlines()[2]
    assert dots == "x" * (MAX_CELL - 3) + "..."


def test_format_table_fits_a_narrow_terminal_down_to_the_smallest_cell():
    rows = [["a" * 30, "b" * 30, "c" * 5]]
    lines = format_table(["first", "second", "third"], rows, width=50).splitlines()
    assert all(len(line) <= 50 for line in lines)
    assert lines[2].startswith("a" * 19 + "…  ")  # the widest columns shrank
    tiny = format_table(["first", "second"], [["a" * 30, "b" * 30]], width=5).splitlines()
    assert tiny[1] == "-" * MIN_CELL + "  " + "-" * MIN_CELL  # never below MIN_CELL


# --------------------------------------------------------------------------- HTML


def test_html_table_escapes_every_text_and_marks_numbers():
    html = html_table(["<name>", "n"], [["<script>x</script>", 3], [None, 1.5], [True, "4"]],
                      table_id='a"b')
    assert html.startswith('<table class="hermes-table" id="a&quot;b"><thead><tr><th>&lt;name&gt;</th>')
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert '<td class="num">3</td>' in html and '<td class="num">1.5</td>' in html
    assert "<td>true</td>" in html and "<td></td>" in html  # booleans are no numbers; None empty
    assert '<td>4</td>' in html  # a text of digits is text
    assert html.count("<tr>") == 4 and html.endswith("</tbody></table>")


def test_html_table_header_and_cell_hooks():
    html = html_table(
        ["a", "b"], [[1, 2]],
        header=lambda name: f"<i>{name}</i>",
        cell=lambda row, column, value: f"<b>{value}</b>" if column == 1 else None,
    )
    assert "<th><i>a</i></th><th><i>b</i></th>" in html
    assert '<td class="num">1</td><td class="num"><b>2</b></td>' in html


def test_html_table_aligns_the_floats_of_a_column_and_marks_column_classes():
    rows = [["a", 224.41563, 0.001, 64, float("nan")], ["b", 22.4, 0.0001, 128, 1.5], ["c", None, None, None, None]]
    html = html_table(["id", "score", "lr", "bs", "odd"], rows, align_numbers=True,
                      column_classes=["frozen", "", "", "", ""])
    assert '<th class="frozen">id</th>' in html and '<td class="frozen">a</td>' in html
    for text in ("224.42", "22.40", "0.0010", "0.0001", ">64<", ">128<", ">nan<", ">1.5<"):
        assert text in html, text
    assert '<td class="num">22.40</td>' in html
    plain = html_table(["score"], [[224.41563], [22.4]])
    assert ">224.416<" in plain and ">22.4<" in plain  # each value compact by default


@pytest.mark.parametrize(
    "values,decimals",
    [([224.41563, 22.4], 2), ([0.001, 0.0001], 4), ([0.99, 0.995, 1], 3), ([64, 128], None),
     ([1e-9, 2.0], None), ([1e16, 2.5], None), ([None, "x", True], None), ([0.0, 0.5], 1), ([3.0], 0)],
)
def test_column_decimals_keep_the_significant_digits_of_the_largest(values, decimals):
    assert column_decimals(values) == decimals
    if decimals is not None:
        texts = [fixed_value(value, decimals) for value in values]
        assert all(float(text) == pytest.approx(value, abs=10**-decimals) for text, value in zip(texts, values, strict=True))
        assert len({len(text.partition(".")[2]) for text in texts}) == 1


def test_sql_html_counts_rows_and_shows_the_first():
    assert "1 row<" in sql_html(["x"], [(1,)])
    few = sql_html(["x"], [(i,) for i in range(3)])
    assert "3 rows<" in few and few.count("<tr>") == 4
    many = sql_html(["x"], [(i,) for i in range(1234)], limit=50)
    assert "1,234 rows; the first 50 shown" in many and many.count("<tr>") == 51


def test_experiments_html_shows_the_runs_arg_keys(sweep):
    runs = ExperimentList(Experiment.load(path) for path in sorted(sweep.iterdir()))
    html = present.experiments_html(*present.list_table(runs, 2)[:3])
    header = html.split("</thead>", 1)[0]
    for column in ("identifier", "-hidden", "-lr", "--doubledqn", "train", "final_mean"):
        assert f"<th>{column}</th>" in header
    assert "<th>evaluate</th>" not in header  # only the keys of the runs shown
    assert "3 runs; the first 2 shown, 1 more" in html
    assert "1 run<" in present.experiments_html(*present.list_table(runs[:1], 2)[:3])


def test_json_of_every_value_a_table_can_hold_is_finite():
    values = [None, True, 1, 1.5, math.inf, START, [1, 2], b"x", Decimal("1")]
    assert json.loads(json.dumps([json_value(value) for value in values], allow_nan=False))[4] is None
