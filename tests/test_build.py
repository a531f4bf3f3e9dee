"""The parallel read of a first build: the same index as one process builds, progress live."""

from __future__ import annotations

import gc
import shutil
import sqlite3
from pathlib import Path

import pytest
from legacy import make_corpus

from pyhermes import Catalog, Experiment
from pyhermes.index import build
from pyhermes.index import sync as sync_module


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
    monkeypatch.setattr(build, "PARALLEL_FROM", 10)
    monkeypatch.setattr(build, "CHUNK_RUNS", 7)
    monkeypatch.setattr(build, "CHUNKS_IN_FLIGHT", 1)
    monkeypatch.setenv("HERMES_BUILD_WORKERS", "2")
    submitted: list[int] = []

    class CountingPool(build.ProcessPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            submitted.append(len(args[1]))
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(build, "ProcessPoolExecutor", CountingPool)
    monkeypatch.setattr(sync_module, "SLICE_RUNS", 20)  # written in slices
    parallel = tmp_path / "parallel.sqlite"
    seen: list[int] = []
    catalog = Catalog.open_index(corpus, parallel)
    report = catalog.sync(corpus, recursive=False, progress=seen.append, warn=False)
    assert report.added == 61 and [p.rpartition("/")[2] for p in report.warning_paths] == ["2024_01_01_000000000000_0_bad00"]
    assert seen == list(range(1, 62))  # progress for every run, in order
    assert submitted == [7] * 8 + [5]  # 61 runs in chunks of 7, read by the pool's workers
    assert _contents(corpus, parallel) == _contents(corpus, serial)
    assert _schema(parallel) == _schema(serial)
    assert gc.isenabled()  # the build pauses the cyclic collector, and only while it writes


def test_a_build_stopped_midway_collects_again(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(sync_module, "SLICE_RUNS", 20)

    def stopped(self, engine, batch, new):
        assert not gc.isenabled()
        raise KeyboardInterrupt("stopped")

    monkeypatch.setattr(sync_module.Syncer, "_write_slice", stopped)
    with pytest.raises(KeyboardInterrupt):
        Experiment.load_all(corpus, index=tmp_path / "stopped.sqlite")
    assert gc.isenabled()


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
    monkeypatch.setattr(build, "AHEAD_FROM", 6)
    monkeypatch.setattr(build, "AHEAD_CHUNK", 4)
    monkeypatch.setenv("HERMES_BUILD_WORKERS", "3")
    pools: list[int] = []

    class CountingPool(build.ProcessPoolExecutor):
        def __init__(self, max_workers, **kwargs):
            pools.append(max_workers)
            super().__init__(max_workers, **kwargs)

    monkeypatch.setattr(build, "ProcessPoolExecutor", CountingPool)
    seen: list[int] = []
    catalog = Catalog.open_index(corpus, index)
    report = catalog.sync(corpus, recursive=False, mode="full", progress=seen.append, warn=False)
    assert pools == [2]  # one worker per core but the one that goes on looking
    assert report.updated == len(changed) and seen == list(range(1, len(changed) + 1))
    touched = Catalog.open(corpus, index=index, sync="none").find("--touched")
    assert sorted(run.identifier for run in touched) == [run.name for run in changed]
    # The same index as a sync reading them in this process.
    again = tmp_path / "again.sqlite"
    monkeypatch.setattr(build, "ProcessPoolExecutor", None)  # a pool would fail
    monkeypatch.setattr(build, "AHEAD_FROM", 10_000)
    with pytest.warns(UserWarning, match="read with warnings"):
        Experiment.load_all(corpus, index=again)
    assert _contents(corpus, index) == _contents(corpus, again)


def test_few_runs_are_read_in_this_process(corpus, monkeypatch):
    from pyhermes.index.reading import ReadFailure, read_runs

    monkeypatch.setenv("HERMES_BUILD_WORKERS", "2")
    monkeypatch.setattr(build, "ProcessPoolExecutor", None)  # a pool would fail
    names = [path.name for path in sorted(corpus.iterdir()) if (path / "hermes.info").exists()]
    outcomes = read_runs(str(corpus), names[:5], 60.0)
    assert [path for path, _ in outcomes] == names[:5]
    assert not any(isinstance(record, ReadFailure) for _, record in outcomes)
    assert build.parallel_workers(5) == 0 and build.parallel_workers(build.PARALLEL_FROM) == 2

