"""The parallel read of a first build: the same index as one process builds, progress live."""

from __future__ import annotations

from pathlib import Path

import pytest
from legacy import make_corpus

from pyhermes import Catalog, Experiment
from pyhermes.index import build


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
    parallel = tmp_path / "parallel.sqlite"
    seen: list[int] = []
    catalog = Catalog.open_index(corpus, parallel)
    report = catalog.sync(corpus, recursive=False, progress=seen.append, warn=False)
    assert report.added == 61 and [p.rpartition("/")[2] for p in report.warning_paths] == ["2024_01_01_000000000000_0_bad00"]
    assert seen == list(range(1, 62))  # progress for every run, in order
    assert submitted == [7] * 8 + [5]  # 61 runs in chunks of 7, read by the pool's workers
    assert _contents(corpus, parallel) == _contents(corpus, serial)


def test_few_runs_are_read_in_this_process(corpus, monkeypatch):
    from pyhermes.index.sync import ReadFailure, read_runs

    monkeypatch.setenv("HERMES_BUILD_WORKERS", "2")
    monkeypatch.setattr(build, "ProcessPoolExecutor", None)  # a pool would fail
    names = [path.name for path in sorted(corpus.iterdir()) if (path / "hermes.info").exists()]
    outcomes = read_runs(str(corpus), names[:5], 60.0)
    assert [path for path, _ in outcomes] == names[:5]
    assert not any(isinstance(record, ReadFailure) for _, record in outcomes)
    assert build.parallel_workers(5) == 0 and build.parallel_workers(build.PARALLEL_FROM) == 2
