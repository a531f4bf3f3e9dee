"""Typed queries: filters, ordering, counting, read-only SQL and frames, checked against an
independent in-memory computation over a generated corpus."""

from __future__ import annotations

import math
import operator
import re
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from pyhermes import (
    Catalog,
    Experiment,
    QueryError,
    ReadOnlyQueryError,
    arg,
    flag,
    info,
    rundir,
    score,
)
from pyhermes.errors import UnknownKeyError
from pyhermes.index.query.filters import run

REPO = Path(__file__).resolve().parents[1]
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
       "!=": operator.ne}


@pytest.fixture(scope="module")
def corpus(read_only_corpus: Path) -> Path:
    """The session's generated corpus (300 runs, seed 11, 120 scores), read only."""
    return read_only_corpus


@pytest.fixture(scope="module")
def catalog(corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    from pyhermes.index.store.engine import dispose_engines

    # The index lives outside the shared corpus.
    catalog = Catalog.open(corpus, index=tmp_path_factory.mktemp("query-index") / "index.sqlite")
    yield catalog
    dispose_engines()


@pytest.fixture(scope="module")
def truth(corpus: Path) -> dict[str, dict[str, Any]]:
    """What the test itself reads from the files, without the index or pyhermes' summaries."""
    facts = {}
    for run_dir in sorted(p for p in corpus.iterdir() if (p / "hermes.info").is_file()):
        info_lines = (run_dir / "hermes.info").read_text().splitlines()
        info_map = dict(line.split(":", 1) for line in info_lines if ":" in line)
        args: dict[str, list[tuple[str | None, float | None]]] = {}
        for line in (run_dir / "exec_arguments").read_text().splitlines():
            words = line.split()
            if not words:
                continue
            text = " ".join(words[1:]) or None
            number = None
            if len(words) == 2:
                try:
                    number = float(words[1])
                except ValueError:
                    number = None
            args.setdefault(words[0], []).append((text, number))
        scores = []
        scores_file = run_dir / f"{run_dir.name}.scores"
        if scores_file.exists():
            for line in scores_file.read_text().splitlines():
                try:
                    scores.append(float(line))
                except ValueError:
                    continue
        values = np.array(scores)
        start = info_map.get("start_time") or run_dir.name[:23]
        facts[run_dir.name] = {
            "args": args,
            "info": info_map,
            "finished": "end_time" in info_map,
            "start_time": datetime.strptime(start, "%Y_%m_%d_%H%M%S%f"),
            "final_mean": float(np.nanmean(values[-100:])) if values.size else None,
            "max": float(np.nanmax(values)) if values.size else None,
            "count": int(values.size),
        }
    return facts


# --------------------------------------------------------------------------- random filters
# A filter is a tuple tree; the test renders it as Python objects and as text, and evaluates it.

NUM_KEYS = ["-lr", "-gamma", "-bs", "-seed"]
NUM_VALUES = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.9, 0.99, 0.999, 32, 64, 128, 0, 3, 7, 1e-05]


def leaves():
    return st.one_of(
        st.tuples(st.just("flag"), st.sampled_from(["--doubledqn", "train", "-es", "--missing"])),
        st.tuples(st.just("cmp"), st.sampled_from(NUM_KEYS), st.sampled_from(list(OPS)),
                  st.sampled_from(NUM_VALUES)),
        st.tuples(st.just("in"), st.sampled_from(NUM_KEYS),
                  st.lists(st.sampled_from(NUM_VALUES), min_size=1, max_size=3)),
        st.tuples(st.just("text"), st.just("-hidden"), st.sampled_from(["==", "!="]),
                  st.sampled_from(["64 64", "128 128", "256"])),
        st.tuples(st.just("score"), st.sampled_from(["final_mean", "max", "count"]),
                  st.sampled_from(list(OPS)), st.sampled_from([0, 50, 100, 150, 200, 120])),
        st.tuples(st.just("finished"), st.booleans()),
        st.tuples(st.just("since"), st.sampled_from(["2023-01-01", "2023-09-01", "2024-01-15"])),
    )


filters = st.recursive(
    leaves(),
    lambda inner: st.one_of(
        st.tuples(st.just("not"), inner),
        st.tuples(st.sampled_from(["and", "or"]), inner, inner),
    ),
    max_leaves=6,
)


def as_object(tree):
    kind = tree[0]
    if kind == "flag":
        return flag(tree[1])
    if kind in ("cmp", "text"):
        return {"<": arg(tree[1]).__lt__, "<=": arg(tree[1]).__le__, ">": arg(tree[1]).__gt__,
                ">=": arg(tree[1]).__ge__, "==": arg(tree[1]).__eq__,
                "!=": arg(tree[1]).__ne__}[tree[2]](tree[3])
    if kind == "in":
        return arg(tree[1]).isin(tree[2])
    if kind == "score":
        field = getattr(score, tree[1])
        return {"<": field.__lt__, "<=": field.__le__, ">": field.__gt__, ">=": field.__ge__,
                "==": field.__eq__, "!=": field.__ne__}[tree[2]](tree[3])
    if kind == "finished":
        return run.finished == tree[1]
    if kind == "since":
        return run.start_time >= tree[1]
    if kind == "not":
        return ~as_object(tree[1])
    left, right = as_object(tree[1]), as_object(tree[2])
    return (left & right) if kind == "and" else (left | right)


def as_text(tree) -> str:
    kind = tree[0]
    if kind == "flag":
        return tree[1]
    if kind == "cmp":
        return f"{tree[1]} {tree[2]} {tree[3]!r}"
    if kind == "text":
        return f'{tree[1]} {tree[2]} "{tree[3]}"'
    if kind == "in":
        return f"{tree[1]} in ({', '.join(repr(v) for v in tree[2])})"
    if kind == "score":
        return f"{tree[1]} {tree[2]} {tree[3]}"
    if kind == "finished":
        return "finished" if tree[1] else "finished = false"
    if kind == "since":
        return f"start_time >= {tree[1]}"
    if kind == "not":
        return f"not ({as_text(tree[1])})"
    return f"({as_text(tree[1])}) {tree[0]} ({as_text(tree[2])})"


def holds(tree, fact) -> bool:
    kind = tree[0]
    if kind == "flag":
        return tree[1] in fact["args"]
    if kind == "cmp":
        return any(n is not None and OPS[tree[2]](n, tree[3]) for _, n in fact["args"].get(tree[1], []))
    if kind == "text":
        return any(t is not None and OPS[tree[2]](t, tree[3]) for t, _ in fact["args"].get(tree[1], []))
    if kind == "in":
        return any(n is not None and n in tree[2] for _, n in fact["args"].get(tree[1], []))
    if kind == "score":
        value = fact[tree[1]]
        return value is not None and not math.isnan(value) and OPS[tree[2]](value, tree[3])
    if kind == "finished":
        return fact["finished"] == tree[1]
    if kind == "since":
        return fact["start_time"] >= datetime.fromisoformat(tree[1])
    if kind == "not":
        return not holds(tree[1], fact)
    if kind == "and":
        return holds(tree[1], fact) and holds(tree[2], fact)
    return holds(tree[1], fact) or holds(tree[2], fact)


def names(runs) -> list[str]:
    return sorted(r.identifier for r in runs)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=filters)
def test_random_filters_agree_with_an_independent_evaluation(catalog, truth, tree):
    expected = sorted(name for name, fact in truth.items() if holds(tree, fact))
    assert names(catalog.find(as_object(tree))) == expected
    if "--missing" in as_text(tree):  # text naming a key no run has is an error, an object is not
        with pytest.raises(UnknownKeyError, match="no run has `--missing`"):
            catalog.find(as_text(tree))
        with pytest.raises(UnknownKeyError, match="no run has `--missing`"):
            catalog.count(as_text(tree))
        return
    assert names(catalog.find(as_text(tree))) == expected
    assert catalog.count(as_text(tree)) == len(expected)


def test_in_memory_lists_agree(catalog, corpus, truth):
    plain = Experiment.load_all(corpus, index=False)
    for text in ["--doubledqn and -lr < 0.01 and final_mean > 100", "not -es or -bs in (32, 64)",
                 '-hidden = "64 64" and finished']:
        assert names(plain.where(text)) == names(catalog.find(text))


def test_indexed_where_chains_stay_sql(catalog):
    runs = catalog.find()
    narrowed = runs.where(flag("--doubledqn")).where(arg("-lr") <= 0.001)
    assert narrowed._indexed()
    assert names(narrowed) == names(catalog.find("--doubledqn and -lr <= 0.001"))
    assert narrowed.filter_by_exec_args("train") == narrowed.where("train")


def test_order_limit_offset(catalog, truth):
    ordered = catalog.find("finished", order_by="-final_mean")
    values = [truth[r.identifier]["final_mean"] for r in ordered]
    assert values == sorted(values, reverse=True)
    assert catalog.find("finished", order_by="-final_mean", limit=5) == ordered[:5]
    assert catalog.find("finished", order_by="-final_mean", limit=5, offset=5) == ordered[5:10]
    by_lr = catalog.find(order_by=["-lr", "final_mean:desc"])
    lrs = [truth[r.identifier]["args"]["-lr"][0][1] for r in by_lr]
    assert lrs == sorted(lrs)
    ascending = catalog.find(order_by="final_mean")
    tail = [truth[r.identifier]["final_mean"] for r in ascending]
    present = [v for v in tail if v is not None]
    assert tail[: len(present)] == sorted(present) and all(v is None for v in tail[len(present):])
    with pytest.raises(QueryError, match="unknown sort key"):
        catalog.find(order_by="bogus key")


def test_info_filters(catalog, truth):
    some = next(iter(truth.values()))
    prefix = some["info"]["commit_hash"][:6]
    expected = sorted(n for n, f in truth.items() if f["info"]["commit_hash"].startswith(prefix))
    assert names(catalog.find(run.commit_hash.startswith(prefix))) == expected
    assert names(catalog.find(f"commit_hash startswith {prefix}")) == expected
    assert names(catalog.find(info("commit_hash").startswith(prefix))) == expected
    with_colon = sorted(n for n, f in truth.items() if ":" in f["info"].get("comments", ""))
    assert names(catalog.find(run.comments.contains(":"))) == with_colon
    assert names(catalog.find(info("comments").contains(":"))) == with_colon


def test_sql_is_read_only(catalog):
    index_file = catalog.location.file
    before = sqlite3.connect(index_file).execute("SELECT COUNT(*) FROM hermes_run").fetchone()
    rows = catalog.sql("SELECT COUNT(*) AS n FROM runs WHERE final_mean > :x", {"x": 0})
    assert rows.columns == ["n"] and rows.rows[0][0] > 0
    for statement in ["DELETE FROM hermes_run", "DROP TABLE hermes_run",
                      "UPDATE hermes_run SET comments = 'x'", "SELECT 1; DELETE FROM hermes_run",
                      "INSERT INTO hermes_meta VALUES ('a', 'b')", "PRAGMA query_only = OFF",
                      "ATTACH DATABASE ':memory:' AS other", "VACUUM"]:
        with pytest.raises(ReadOnlyQueryError):
            catalog.sql(statement)
    after = sqlite3.connect(index_file).execute("SELECT COUNT(*) FROM hermes_run").fetchone()
    assert before == after
    with pytest.raises(QueryError, match="no such table"):
        catalog.sql("SELECT * FROM nope")
    assert catalog.sql("SELECT 'DELETE FROM x' AS text").rows == [("DELETE FROM x",)]


def test_frame_is_one_query_without_file_reads(catalog, truth, monkeypatch):
    pytest.importorskip("pandas")
    runs = catalog.find("--doubledqn")
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    def no_reads(*args, **kwargs):
        raise AssertionError("read a file")

    monkeypatch.setattr(rundir, "read_info", no_reads)
    monkeypatch.setattr(rundir, "read_exec_args", no_reads)
    monkeypatch.setattr(rundir, "read_scores", no_reads)
    monkeypatch.setattr(rundir, "iter_scores", no_reads)
    event.listen(catalog.engine, "before_cursor_execute", count)
    try:
        frame = runs.to_frame()
    finally:
        event.remove(catalog.engine, "before_cursor_execute", count)
    # One query of the runs, one of their arguments (pivoted by numpy), and the change token.
    assert sum(sql.startswith("SELECT hermes_run.id") for sql in statements) == 1
    assert sum(sql.startswith("SELECT") and " FROM hermes_arg WHERE run_id IN" in sql for sql in statements) == 1
    assert len(statements) <= 3
    assert len(frame) == len(runs)
    for column in ["identifier", "path", "start_time", "end_time", "commit_hash", "comments",
                   "final_mean", "max", "count", "-lr", "--doubledqn", "experiments"]:
        assert column in frame.columns
    first = frame.iloc[0]
    fact = truth[first["identifier"]]
    assert first["-lr"] == fact["args"]["-lr"][0][1] and isinstance(first["-lr"], float)
    assert frame["--doubledqn"].tolist() == [True] * len(runs)
    assert first["experiments"] is runs[0]
    assert first["final_mean"] == pytest.approx(fact["final_mean"])


def test_path_is_not_a_filter_and_sort_keys_are_checked(catalog):
    with pytest.raises(QueryError, match="path"):
        catalog.find("path contains sweep")
    with pytest.raises(QueryError, match="path"):
        run.path.startswith("x")
    with pytest.raises(QueryError, match="unknown sort key"):
        catalog.find(order_by="final_means")
    assert catalog.find(order_by="path")  # sorting by path is fine


def test_nan_option_values_agree(tmp_path):
    from legacy import write_run

    write_run(tmp_path / "e", start=datetime(2024, 1, 1), exec_args=["-es nan", "-lr 0.1"])
    write_run(tmp_path / "e", start=datetime(2024, 1, 2), exec_args=["-es 0.5", "-lr 0.1"])
    indexed = Experiment.load_all(tmp_path / "e")
    plain = Experiment.load_all(tmp_path / "e", index=False)
    for condition in (arg("-es") != 0.5, arg("-es") == 0.5, arg("-es") == "nan", flag("-es")):
        assert names(indexed.where(condition)) == names(plain.where(condition))
    assert len(indexed.where(arg("-es") != 0.5)) == 0
    pytest.importorskip("pandas")
    values = indexed.to_frame()["-es"].tolist()
    assert math.isnan(values[0]) and values[1] == 0.5


def test_read_only_sql_allows_reads_that_look_like_writes(catalog):
    assert catalog.sql("SELECT replace('a', 'a', 'b') AS \"set\"").rows == [("b",)]
    with pytest.raises(ReadOnlyQueryError):
        catalog.sql("WITH x AS (SELECT 1) DELETE FROM hermes_run")


@pytest.mark.parametrize("window", [7, 1000])
def test_a_few_runs_in_one_column_order_agree_with_the_whole_order(catalog, corpus, monkeypatch, window):
    from pyhermes.index.query import select

    monkeypatch.setattr(select, "WINDOW_RUNS", window)
    texts = ["", "--doubledqn", "--doubledqn and -lr <= 0.001", "-lr == 0.1234", "final_mean > 100"]
    for text in texts:
        expected_all = names(catalog.find(text))
        for key in ["-start_time", "start_time", "-final_mean", "final_mean"]:
            whole = catalog.find(text, order_by=key)
            assert names(whole) == expected_all
            for limit, offset in [(1, 0), (10, 0), (3, 4)]:
                assert catalog.find(text, order_by=key, limit=limit, offset=offset) == whole[
                    offset : offset + limit
                ], (text, key, limit, offset)
        eager = Experiment.load_all(corpus, index=False)
        matching = eager.where(text) if text else eager
        assert names(matching) == expected_all
        if matching:
            assert catalog.find(text).latest().start_time == max(r.start_time for r in matching)


@pytest.mark.sqlite_only  # SQLite's planner and its index hint; the index is an SQLite file
def test_a_window_walk_ends_at_the_window_not_at_the_filters_own_bound(tmp_path, monkeypatch):
    """A filter with its own bound on the order's column (``final_mean > -1000``, true of
    every run) must not end the walk of the window in its place: SQLite keeps one lower
    bound for a range, and walking to the filter's bound would probe every run. Counted in
    SQLite's virtual-machine steps (a progress handler), not in time."""
    from legacy import write_run

    from pyhermes.index.query import select
    from pyhermes.index.query.grammar import as_filter

    root = tmp_path / "sweep"
    for job in range(400):
        write_run(
            root, start=datetime(2024, 1, 1, job // 60, job % 60), job_idx=job,
            exec_args=[f"-seed {job}"], scores=[float(job)] * 3,
        )
    Catalog.open(root, index=tmp_path / "index.sqlite")
    connection = sqlite3.connect(tmp_path / "index.sqlite")
    steps = 0

    def count_step() -> int:
        nonlocal steps
        steps += 1
        return 0

    connection.set_progress_handler(count_step, 10)

    def walk(text: str, within: float) -> tuple[list[int], int]:
        nonlocal steps
        steps = 0
        sql, params = select.select_runs(
            ["id"], as_filter(text), ["-final_mean"], 3, 0, within=within, dialect="sqlite"
        )
        return [row[0] for row in connection.execute(sql, params)], steps

    monkeypatch.setattr(select, "WINDOW_RUNS", 10)
    (tenth,), = connection.execute(select.window_bound(["-final_mean"]))
    assert tenth == 389.0
    # No run of the top ten has a -seed below 5: the walk of the window finds none.
    alone, steps_alone = walk("-seed < 5", tenth)
    with_bound, steps_with_bound = walk("-seed < 5 and final_mean > -1000", tenth)
    assert alone == with_bound == []
    everything_walked, steps_everything = walk("-seed < 5 and final_mean > -1000", -1000.0)
    assert len(everything_walked) == 3
    assert steps_with_bound < 2 * steps_alone + 20
    assert steps_everything > 10 * steps_with_bound


# Each run's exec args, and where it sorts by -lr: ("numbers", number, text),
# ("texts", None, text) or ("rest", None, None), by the first -lr of the run.
LR_SORT_RUNS = [
    (["-lr 0.01", "--doubledqn"], ("numbers", 0.01, "0.01")),
    (["-lr 0.001"], ("numbers", 0.001, "0.001")),
    (["-lr 1e-3", "--doubledqn"], ("numbers", 0.001, "1e-3")),  # the same number, another text
    (["-lr 0.001", "--doubledqn"], ("numbers", 0.001, "0.001")),  # a tie: the run id decides
    (["-lr 5"], ("numbers", 5.0, "5")),
    (["-lr -2", "--doubledqn"], ("numbers", -2.0, "-2")),
    (["-lr 0.5", "-lr 0.0001"], ("numbers", 0.5, "0.5")),  # only the first -lr counts
    (["-lr high", "--doubledqn"], ("texts", None, "high")),
    (["-lr low"], ("texts", None, "low")),
    (["-lr high"], ("texts", None, "high")),
    (["-lr 1 2"], ("texts", None, "1 2")),  # two values: a text
    (["-lr", "--doubledqn"], ("rest", None, None)),  # a flag: no value
    (["-lr", "-lr 3"], ("rest", None, None)),  # the first -lr has no value
    (["--gamma 0.9"], ("rest", None, None)),
    (["--gamma 0.9", "--doubledqn"], ("rest", None, None)),
]


def test_pages_sorted_by_one_arg_key_follow_the_whole_order(tmp_path):
    """A page sorted by one exec-arg key is read part by part from the argument index
    (numbers, texts, the rest): every page, in both directions and under a filter,
    is the slice of the order that the rules give and that one ORDER BY gives."""
    from legacy import write_run

    from pyhermes.index.query.grammar import as_filter
    from pyhermes.index.query.select import select_runs

    root = tmp_path / "sweep"
    for job, (exec_args, _) in enumerate(LR_SORT_RUNS):
        write_run(root, start=datetime(2024, 1, 1, 0, job), job_idx=job, exec_args=exec_args)
    catalog = Catalog.open(root)
    assert catalog.count() == len(LR_SORT_RUNS)
    id_of = dict(catalog.sql("SELECT job_idx, id FROM runs").rows)
    doubledqn = {job for job, (exec_args, _) in enumerate(LR_SORT_RUNS) if "--doubledqn" in exec_args}

    for text, jobs in (("", set(range(len(LR_SORT_RUNS)))), ("--doubledqn", doubledqn)):
        for descending in (False, True):
            # Descending reverses the order inside each part, not the order of the parts.
            by_rules = [
                job
                for part in ("numbers", "texts", "rest")
                for job in sorted(
                    (job for job in jobs if LR_SORT_RUNS[job][1][0] == part),
                    key=lambda job: (*LR_SORT_RUNS[job][1][1:], id_of[job]) if part == "numbers"
                    else (LR_SORT_RUNS[job][1][2], id_of[job]) if part == "texts"
                    else (id_of[job],),
                    reverse=descending,
                )
            ]
            expected = [id_of[job] for job in by_rules]
            order = "-lr:desc" if descending else "-lr"
            whole = catalog.run_ids(text, order_by=order)
            assert whole == expected, (text, order)
            sql, params = select_runs(["id"], as_filter(text or None), order)
            assert [row[0] for row in catalog.reader.rows(sql, params)] == expected
            for limit in (1, 2, 3, 5, 50):
                for offset in range(len(expected) + 2):
                    page = expected[offset : offset + limit]
                    # Walked part by part, or sorted by one ORDER BY: which one depends on
                    # how many runs match; both must give the page.
                    assert catalog.run_ids(text, order_by=order, limit=limit, offset=offset) == (
                        page
                    ), (text, order, limit, offset)
                    walked = catalog._walk_by_arg(
                        ["id"], as_filter(text or None), "-lr", descending, limit, offset
                    )
                    assert [row[0] for row in walked] == page, (text, order, limit, offset)
            assert catalog.run_ids(text, order_by=order, offset=4) == expected[4:]



@pytest.mark.sqlite_only
def test_sqlite_plans_seek_a_runs_arguments_and_walk_the_sort_index(catalog):
    """The plans the arg indexes of revision 0003 exist for: a probe "does this run have
    that argument" seeks by run (not a scan of every run with the key), and a page
    sorted by one key walks the (key, num, value, run_id) index without sorting."""
    from pyhermes.index.query.select import select_runs, select_runs_by_arg

    def plan(sql: str, params: dict[str, Any]) -> str:
        return "\n".join(row[-1] for row in catalog.reader.rows("EXPLAIN QUERY PLAN " + sql, params))

    probe = flag("--doubledqn") & (arg("-lr") < 0.01) & (arg("-gamma") == "high")
    steps = plan(*select_runs(["id"], probe, limit=5))
    assert steps.count("ix_hermes_arg_run_key_num_value (run_id=? AND key=?") == 3, steps
    assert "ix_hermes_arg_key_num_value_run" not in steps, steps

    for part in ("numbers", "texts"):
        steps = plan(*select_runs_by_arg(["id"], probe, "-lr", True, part, 50))
        assert re.search(r"SEARCH sort_arg USING (COVERING )?INDEX ix_hermes_arg_key_num_value_run \(key=\?", steps), steps
        assert "TEMP B-TREE" not in steps, steps


@pytest.mark.sqlite_only
def test_conditions_that_hold_for_every_run_leave_no_trace_in_the_sql(catalog):
    """``everything`` (the scope of a catalog opened on its root, an empty filter) adds
    nothing to a condition: SQLite planned "1 = 1 AND 1 = 1" ORDER BY another column as
    a walk of the final_mean index with a table lookup per run (7x slower)."""
    from pyhermes.index.query.filters import And, Params, everything
    from pyhermes.index.query.grammar import as_filter
    from pyhermes.index.query.select import select_runs

    lr = arg("-lr") < 0.01
    assert (lr & everything) is lr
    assert (everything & lr) is lr
    for condition in (And((everything, everything)), everything & as_filter(""), lr & everything):
        sql, _ = select_runs(["id", "path"], condition, "max:desc", 50)
        steps = [row[-1] for row in catalog.reader.rows("EXPLAIN QUERY PLAN " + sql, _)]
        assert "score_final_mean" not in " ".join(steps), (condition, steps)
    assert And((everything, everything)).sql(Params()) == "1 = 1"
    assert And((everything, lr, everything)).sql(Params()) == "(" + lr.sql(Params()) + ")"


@pytest.mark.sqlite_only
def test_sqlite_reads_a_folders_runs_in_path_order_from_the_index(catalog):
    """The list load_all returns (one folder's runs, by path) walks the (parent, path)
    index of revision 0004: no table read, no sort (SQLite sorted 100,000 runs before)."""
    from pyhermes.index.query.filters import under
    from pyhermes.index.query.select import select_runs

    [parent] = {run.path_to_experiment.parent for run in catalog.find()}
    sql, params = select_runs(["id"], under(catalog._rel(parent), False), ["path"])
    steps = "\n".join(row[-1] for row in catalog.reader.rows("EXPLAIN QUERY PLAN " + sql, params))
    assert "USING COVERING INDEX ix_hermes_run_parent_path (parent=?)" in steps, steps
    assert "TEMP B-TREE" not in steps, steps
