"""The one runs-table path: every column read from SQL equals the same column read from
the run objects, and ``hermes ls``, the runs page, its export and the notebook view
of a bound list all show that table (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from pyhermes import Catalog, Experiment, QueryError, present
from pyhermes.cli.main import hermes_main
from pyhermes.index.query.filters import RUN_FIELDS, everything
from pyhermes.index.query.grammar import as_filter
from pyhermes.index.query.table import (
    DEFAULT_LEADING,
    DEFAULT_TRAILING,
    FOLDABLE_FIELDS,
    arg_keys,
    available_columns,
    default_columns,
)
from pyhermes.index.store.layout import SUMMARY_COLUMNS


@pytest.fixture
def index(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The index of the test: a new PostgreSQL database, or a SQLite file outside the corpus."""
    return request.node.pg_index if backend == "postgresql" else str(tmp_path / "index.sqlite")


@pytest.fixture
def catalog(read_only_corpus: Path, index: str):
    from pyhermes.index.store.engine import dispose_engines

    with warnings.catch_warnings():  # the corpus holds runs read with warnings
        warnings.simplefilter("ignore")
        catalog = Catalog.open(read_only_corpus, index=index)
    yield catalog
    dispose_engines()


def _objects(folder: Path) -> dict[str, Experiment]:
    """The runs of ``folder`` read from disk (no index), by path."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = Experiment.load_all(folder, index=False)
    return {str(run.path_to_experiment): run for run in runs}


def test_every_column_from_sql_equals_the_run_objects(catalog, read_only_corpus):
    keys = arg_keys(catalog)
    assert keys and keys == sorted(keys, key=lambda key: (not key.startswith("-"), key.lstrip("-"), key))
    columns = [
        *RUN_FIELDS, "run.identifier", *SUMMARY_COLUMNS, "score.final_mean", "args", "tags",
        "info.comments", "info.commit_hash", "info.no_such_key", *keys, "-never-seen",
    ]
    table = catalog.table(everything, columns, ["path"], None)
    objects = _objects(read_only_corpus)
    assert table.columns == columns and len(table.rows) == len(objects) > 100
    for path, row in zip(table.paths, table.rows, strict=True):
        run = objects[str(catalog.root / path)]
        expected = [present.column_getter(name)(run) for name in columns]
        assert row == expected, path
        assert table.identifiers[table.paths.index(path)] == run.identifier


def test_default_columns_hold_the_keys_of_the_rows_shown(catalog):
    keys = arg_keys(catalog)
    table = catalog.table(everything, None, ["-final_mean"], 5)
    shown = table.columns[len(DEFAULT_LEADING) : len(table.columns) - len(DEFAULT_TRAILING)]
    assert table.columns[: len(DEFAULT_LEADING)] == list(DEFAULT_LEADING)
    assert table.columns[len(table.columns) - len(DEFAULT_TRAILING) :] == list(DEFAULT_TRAILING)
    assert shown == [key for key in keys if any(row[table.columns.index(key)] is not None for row in table.rows)]
    assert default_columns(["-lr"]) == [*DEFAULT_LEADING, "-lr", *DEFAULT_TRAILING]
    assert available_columns(["-lr"])[-1] == "args"
    # The score summaries come right after the identifier (what a sweep is ranked by).
    assert table.columns[:5] == ["identifier", "final_mean", "best_window_mean", "max", "count"]


@pytest.mark.parametrize("where", [None, "--doubledqn", "-lr < 0.001 and finished", "final_mean > 1e9"])
def test_same_for_all_names_the_columns_every_matched_run_shares(catalog, where):
    names = default_columns(arg_keys(catalog))
    whole = catalog.table(as_filter(where) if where else everything, names, None, None)
    foldable = [name for name in names if name in FOLDABLE_FIELDS or name not in {*DEFAULT_LEADING, *DEFAULT_TRAILING}]
    candidates, expected = {}, []
    for name in foldable:
        values = [row[whole.columns.index(name)] for row in whole.rows]
        if not values or values[0] is None or isinstance(values[0], list):
            continue
        candidates[name] = values[0]
        if all(value == values[0] for value in values):
            expected.append(name)
    if where == "final_mean > 1e9":
        assert not whole.rows and not candidates
        candidates = {"script_name": "train_dqn", "-lr": 0.001}  # none matched: none shared
    assert catalog.same_for_all(where, candidates) == expected
    if whole.rows:  # some candidates shared, some not
        assert "script_name" in expected and set(candidates) - set(expected)

    # The runs page finds them from its own rows, checked in SQL against every match.
    page = present.runs_page(catalog, where=where, per_page=3)
    shown = {name: page.rows[0][page.columns.index(name)] for name in page.same_for_all}
    assert page.same_for_all == shown
    assert set(page.same_for_all) == ({name for name in expected if name in page.columns}
                                      if page.total >= 2 else set())
    assert present.runs_page(catalog, where=where, columns=["identifier", "script_name"]).same_for_all == {}


def test_beyond_the_scan_limit_only_what_every_run_shares_folds(tmp_path, monkeypatch):
    from legacy import make_corpus

    from pyhermes.index.query import table

    make_corpus(tmp_path / "runs", 30, seed=2, scores_per_run=5)
    whole = Catalog.open(tmp_path / "runs")  # the index of the tree itself: its root is the folder
    candidates = {"script_name": "train_dqn", "--doubledqn": True, "-bs": 64}
    assert whole.same_for_all(None, candidates) == ["script_name"]
    assert whole.same_for_all("--doubledqn and -bs = 64", candidates) == ["script_name", "--doubledqn", "-bs"]
    monkeypatch.setattr(table, "FOLD_SCAN_LIMIT", 1)
    # Only what every run of the index shares, read from its indexes.
    assert whole.same_for_all("--doubledqn and -bs = 64", candidates) == ["script_name"]


def test_ls_the_runs_page_the_export_and_the_notebook_show_one_table(catalog, read_only_corpus, capsys, index):
    where, sort = "final_mean > 0", "-final_mean"
    table = catalog.table(as_filter(where), None, [sort], 7)
    page = present.runs_page(catalog, where=where, sort=sort, per_page=7)
    assert (page.columns, page.rows, page.paths) == (table.columns, table.rows, table.paths)
    assert page.total == catalog.count(where)

    code = hermes_main(["ls", str(read_only_corpus), f"--where={where}", f"--sort={sort}", "--limit", "7",
                        "--format", "json", "--index", index])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert [list(record) for record in printed] == [table.columns] * 7
    assert [list(record.values()) for record in printed] == [
        [present.json_value(value) for value in row] for row in table.rows
    ]

    names, rows = present.export_pages(catalog, where, sort, None)
    every = list(rows)
    assert names == default_columns(arg_keys(catalog)) and len(every) == page.total
    whole = catalog.table(as_filter(where), names, [sort], None)
    assert every == list(zip(whole.paths, whole.rows, strict=True))

    bound = Experiment.load_all(read_only_corpus, index=index)
    assert bound.where(where).sort_by_score().bound_table(3) is not None  # read through the table path
    columns, shown, total, newest_first = present.list_table(bound.where(where).sort_by_score(), 3)
    objects = present.list_table(list(bound.where(where).sort_by_score()), 3)
    assert total == page.total and (columns, shown, total) == objects[:3]
    assert not newest_first and not objects.newest_first  # a sorted list keeps its order


@pytest.mark.sqlite_only
def test_arg_keys_are_one_query_per_index_state(catalog):
    asked: list[str] = []
    reader = catalog.reader
    rows = reader.rows

    def counting(sql: str, params: Any = None) -> Any:
        asked.append(sql)
        return rows(sql, params)

    reader.rows = counting  # type: ignore[method-assign]
    try:
        for _ in range(3):
            catalog.table(everything, ["identifier", "train", "-lr"], ["path"], 10)
            present.runs_page(catalog, columns="identifier,train")
    finally:
        del reader.rows
    assert sum("DISTINCT key" in sql for sql in asked) <= 1


@pytest.mark.sqlite_only
def test_an_unknown_column_is_a_clear_error(catalog):
    for name in ("bogus", "score.bogus", "two words", ""):
        with pytest.raises(QueryError, match="unknown column"):
            catalog.table(everything, [name], None, 1)
    with pytest.raises(QueryError, match="no column named"):
        present.check_columns("")


@pytest.mark.sqlite_only
def test_a_selection_of_thousands_of_identifiers_is_one_in_list(catalog):
    from pyhermes.index.query.filters import run

    names = catalog.table(everything, ["identifier"], ["path"]).identifiers
    chosen = run.identifier.isin([*names[:50], *(f"no_such_run_{n}" for n in range(5000))])
    assert catalog.count(chosen) == 50  # a chain of 5,050 ORs overflows SQLite's expression tree
    assert catalog.table(chosen, ["identifier"], ["path"]).identifiers == names[:50]
