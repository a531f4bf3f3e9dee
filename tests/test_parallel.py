"""The parallel read of a first build: the same index as one process builds, progress live."""

from __future__ import annotations

import gc
import shutil
import sqlite3
from pathlib import Path

import pytest
from make_corpus import make_corpus

from pyhermes import Catalog, Experiment
from pyhermes.index.sync import parallel, syncer


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("build")
    make_corpus(root, 60, seed=3, scores_per_run=40)
    sweep = root / "experiments" / "train_dqn" / "sweep"
    bad = sweep / "2024_01_01_000000000000_0_bad00"
    bad.mkdir()
    (bad / "hermes.info").write_bytes(b"\xff\xfe not text")  # read with a warning (Latin-1)
    return sweep


def _contents(folder: Path, index: Path) -> list[tuple]:
    catalog = Catalog.open(folder, index=index, sync="none")
    frame = catalog.find().to_frame().drop(columns=["experiments"])
    rows = [tuple(map(repr, row)) for row in frame.itertuples(index=False)]
    return rows, catalog.problems(), catalog.run_warnings()


def test_parallel_build_equals_a_serial_one(corpus, tmp_path, monkeypatch):
    serial = tmp_path / "serial.sqlite"
    with pytest.warns(UserWarning, match="read with warnings"):
        Experiment.load_all(corpus, index=serial)
    monkeypatch.setattr(parallel, "PARALLEL_FROM", 10)
    monkeypatch.setattr(parallel, "CHUNK_RUNS", 7)
    monkeypatch.setattr(parallel, "CHUNKS_IN_FLIGHT", 1)
    monkeypatch.setenv("HERMES_BUILD_WORKERS", "2")
    submitted: list[int] = []

    class CountingPool(parallel.ProcessPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            submitted.append(len(args[1]))
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", CountingPool)
    monkeypatch.setattr(syncer, "SLICE_RUNS", 20)  # written in slices
    parallel_index = tmp_path / "parallel.sqlite"
    seen: list[int] = []
    catalog = Catalog.open_index(corpus, parallel_index)
    report = catalog.sync(corpus, recursive=False, progress=seen.append, warn=False)
    assert report.added == 61 and [p.rpartition("/")[2] for p in report.warning_paths] == ["2024_01_01_000000000000_0_bad00"]
    assert seen == list(range(1, 62))  # progress for every run, in order
    assert submitted == [7] * 8 + [5]  # 61 runs in chunks of 7, read by the pool's workers
    assert _contents(corpus, parallel_index) == _contents(corpus, serial)
    assert _schema(parallel_index) == _schema(serial)
    assert gc.isenabled()  # the build pauses the cyclic collector, and only while it writes


def test_a_build_stopped_midway_collects_again(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(syncer, "SLICE_RUNS", 20)

    def stopped(self, engine, batch, new):
        # What lived before the slices is frozen (not walked again); the slices' cycles are collected.
        assert gc.isenabled() and gc.get_freeze_count() > 0
        raise KeyboardInterrupt("stopped")

    monkeypatch.setattr(syncer.Syncer, "_write_slice", stopped)
    with pytest.raises(KeyboardInterrupt):
        Experiment.load_all(corpus, index=tmp_path / "stopped.sqlite")
    assert gc.isenabled() and gc.get_freeze_count() == 0


def _schema(index: Path) -> list[tuple]:
    """The tables, indexes and views of a SQLite index as SQLite stores them, and its meta keys."""
    with sqlite3.connect(index) as connection:
        schema = connection.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
        keys = [key for (key,) in connection.execute("SELECT key FROM hermes_meta ORDER BY key")]
    return [*schema, ("meta keys", keys)]


def test_runs_found_changed_are_read_ahead_by_a_worker(corpus, tmp_path, monkeypatch):
    corpus = Path(shutil.copytree(corpus, tmp_path / "sweep"))  # its runs change
    index = tmp_path / "index.sqlite"
    with pytest.warns(UserWarning, match="read with warnings"):
        Experiment.load_all(corpus, index=index)
    runs = sorted(path for path in corpus.iterdir() if (path / "hermes.info").is_file())
    changed = runs[::3]
    for run in changed:
        (run / "exec_arguments").write_text((run / "exec_arguments").read_text() + "--touched\n")
    monkeypatch.setattr(parallel, "AHEAD_FROM", 6)
    monkeypatch.setattr(parallel, "AHEAD_CHUNK", 4)
    monkeypatch.setenv("HERMES_BUILD_WORKERS", "3")
    pools: list[int] = []

    class CountingPool(parallel.ProcessPoolExecutor):
        def __init__(self, max_workers, **kwargs):
            pools.append(max_workers)
            super().__init__(max_workers, **kwargs)

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", CountingPool)
    seen: list[int] = []
    catalog = Catalog.open_index(corpus, index)
    report = catalog.sync(corpus, recursive=False, mode="full", progress=seen.append, warn=False)
    assert pools == [2]  # one worker per core but the one that goes on looking
    assert report.updated == len(changed) and seen == list(range(1, len(changed) + 1))
    touched = Catalog.open(corpus, index=index, sync="none").find("--touched")
    assert sorted(run.identifier for run in touched) == [run.name for run in changed]
    # The same index as a sync reading them in this process.
    again = tmp_path / "again.sqlite"
    monkeypatch.setattr(parallel, "ProcessPoolExecutor", None)  # a pool would fail
    monkeypatch.setattr(parallel, "AHEAD_FROM", 10_000)
    with pytest.warns(UserWarning, match="read with warnings"):
        Experiment.load_all(corpus, index=again)
    assert _contents(corpus, index) == _contents(corpus, again)


def test_few_runs_are_read_in_this_process(corpus, monkeypatch):
    from pyhermes.index.sync.run_reading import ReadFailure, read_runs

    monkeypatch.setenv("HERMES_BUILD_WORKERS", "2")
    monkeypatch.setattr(parallel, "ProcessPoolExecutor", None)  # a pool would fail
    names = [path.name for path in sorted(corpus.iterdir()) if (path / "hermes.info").exists()]
    outcomes = read_runs(str(corpus), names[:5], 60.0)
    assert [path for path, _ in outcomes] == names[:5]
    assert not any(isinstance(record, ReadFailure) for _, record in outcomes)
    assert parallel.parallel_workers(5) == 0 and parallel.parallel_workers(parallel.PARALLEL_FROM) == 2



def _read_ahead_only(monkeypatch: pytest.MonkeyPatch, events: list[str]) -> None:
    """Small read-ahead settings; the pool and the engine's opening log to ``events``, and
    reading the runs any other way than ahead fails."""
    from pyhermes.index.store import engine

    monkeypatch.setattr(parallel, "AHEAD_FROM", 10)
    monkeypatch.setattr(parallel, "CHUNK_RUNS", 7)
    monkeypatch.setenv("HERMES_BUILD_WORKERS", "2")

    class LoggingPool(parallel.ProcessPoolExecutor):
        def __init__(self, max_workers, **kwargs):
            events.append(f"pool of {max_workers}")
            super().__init__(max_workers, **kwargs)

    def read_again(*args, **kwargs):
        raise AssertionError("the runs were read again")

    opened = engine.open_engine

    def open_engine(location):
        events.append("engine")
        return opened(location)

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", LoggingPool)
    monkeypatch.setattr(engine, "open_engine", open_engine)
    monkeypatch.setattr(syncer, "iter_read_runs", read_again)
    monkeypatch.setattr(syncer, "ReadAhead", read_again)


@pytest.mark.parametrize("slices", [False, True])
def test_a_first_build_reads_the_runs_while_the_index_is_created(corpus, tmp_path, monkeypatch, slices):
    copy = Path(shutil.copytree(corpus, tmp_path / "sweep"))
    serial = tmp_path / "serial.sqlite"
    with pytest.warns(UserWarning, match="read with warnings"):
        Experiment.load_all(copy, index=serial)
    events: list[str] = []
    _read_ahead_only(monkeypatch, events)
    if slices:
        monkeypatch.setattr(syncer, "SLICE_RUNS", 20)
    with pytest.warns(UserWarning, match="read with warnings"):
        runs = Experiment.load_all(copy)
    assert len(runs) == 61
    assert events == ["pool of 2", "engine"]  # reading began before the index was opened
    ahead, alone = _contents(copy, copy / ".hermes" / "index.sqlite"), _contents(copy, serial)
    assert ahead[0] == alone[0]  # the runs, their args, info and scores
    # Problems and warnings (paths are relative to each index's root).
    assert [[(Path(path).name, what) for path, what in found] for found in ahead[1:]] == [
        [(Path(path).name, what) for path, what in found] for found in alone[1:]
    ]


def test_a_first_build_of_a_tree_reads_its_runs_ahead(corpus, tmp_path, monkeypatch):
    tree = Path(shutil.copytree(corpus.parents[2], tmp_path / "tree"))
    events: list[str] = []
    _read_ahead_only(monkeypatch, events)
    seen: list[int] = []
    catalog = Catalog.open_index(tree, syncs_tree=True)  # as hermes-reindex opens it
    report = catalog.sync(tree, mode="full", progress=seen.append, warn=False)
    assert report.added == 61 and seen == list(range(1, 62))
    assert events == ["pool of 2", "engine"]
    assert len(Catalog.open(tree, sync="none").find()) == 61


@pytest.mark.parametrize("change", ["a run added", "another settle time", "a narrower sync"])
def test_runs_read_ahead_are_dropped_when_the_sync_reads_others(corpus, tmp_path, monkeypatch, change):
    copy = Path(shutil.copytree(corpus, tmp_path / "sweep"))
    runs = sorted(path for path in copy.iterdir() if (path / "hermes.info").is_file())
    shutil.copytree(runs[0], copy / "more" / runs[0].name)
    monkeypatch.setattr(parallel, "AHEAD_FROM", 10)
    monkeypatch.setenv("HERMES_BUILD_WORKERS", "2")
    catalog = Catalog.open_index(copy, syncs_tree=False)
    early = catalog._early
    assert early is not None and len(early.items) == 61
    folder, expected = copy, 62
    if change == "a run added":
        shutil.copytree(runs[0], copy / "2030_01_01_000000000000_9_added")
    elif change == "another settle time":
        catalog.settle_seconds, expected = 1e12, 61  # read ahead with 60 s, most runs settle
    else:
        folder, expected = copy / "more", 1  # a subfolder: not what was read ahead
    report = catalog.sync(folder, recursive=False, warn=False)
    assert early._pool is None  # closed, its reads dropped
    assert report.added == expected
    if change == "another settle time":
        settled = Catalog.open(copy, sync="none").sql("SELECT count(*) FROM hermes_run WHERE settled")
        assert settled.rows == [(0,)]  # read again: none has settled


def test_reads_ahead_never_outlive_the_sync_they_were_for(corpus, tmp_path, monkeypatch):
    import sqlite3 as sqlite

    from sqlalchemy.exc import OperationalError

    copy = Path(shutil.copytree(corpus, tmp_path / "sweep"))
    monkeypatch.setattr(parallel, "AHEAD_FROM", 10)
    monkeypatch.setenv("HERMES_BUILD_WORKERS", "2")
    # A bad mode is refused before an index is made (and a pool started) for nothing.
    with pytest.raises(ValueError, match="sync must be one of"):
        Experiment.load_all(copy, sync="Quick")
    assert not (copy / ".hermes" / "index.sqlite").exists()
    # A sync that reads nothing closes them.
    catalog = Catalog.open_index(copy, syncs_tree=False)
    early = catalog._early
    catalog.sync(copy, mode="none")
    assert early._pool is None and catalog._early is None
    # A retried transaction reads again, the reads ahead closed first.
    shutil.rmtree(copy / ".hermes")
    catalog = Catalog.open_index(copy, syncs_tree=False)
    early, runs = catalog._early, syncer.Syncer.run
    attempts: list[bool] = []

    def run_twice(self, *args, **kwargs):
        attempts.append(self._early is not None)
        if len(attempts) == 1:
            raise OperationalError("BEGIN", {}, sqlite.OperationalError("database is locked"))
        assert early._pool is None
        return runs(self, *args, **kwargs)

    monkeypatch.setattr(syncer.Syncer, "run", run_twice)
    report = catalog.sync(copy, recursive=False, warn=False)
    assert attempts == [True, False] and report.added == 61


def test_no_worker_to_be_had_means_no_reading_ahead(corpus, monkeypatch):
    from pyhermes.index.sync.run_reading import read_ahead_for_new_index

    monkeypatch.setattr(parallel, "AHEAD_FROM", 10)
    monkeypatch.setenv("HERMES_BUILD_WORKERS", "2")
    stopped: list[bool] = []

    class NoProcesses(parallel.ProcessPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            raise BlockingIOError("fork: Resource temporarily unavailable")

        def shutdown(self, *args, **kwargs):
            stopped.append(True)
            super().shutdown(*args, **kwargs)

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", NoProcesses)
    assert read_ahead_for_new_index(str(corpus), False) is None
    assert stopped == [True]
