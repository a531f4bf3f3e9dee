"""Many writers, hostile trees, huge files, kills and corruption (see docs/reliability.md).

Every test here runs on a SQLite index and on a real PostgreSQL database (the
``backend`` parameter, tests/conftest.py) unless marked ``sqlite_only``.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from pathlib import Path

import pytest

from pyhermes import Experiment

pytestmark = pytest.mark.slow

WORKERS = 8
RUNS_PER_WORKER = 100


def _create_and_load(job: tuple[str, int, int]) -> tuple[list[str], list[str], int]:
    """Create ``count`` runs, loading the experiment folder after each; return what went wrong."""
    root, worker, count = job
    folder = Path(root) / "experiments" / "s" / "e"
    errors: list[str] = []
    loads = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for number in range(count):
            try:
                with Experiment.create(
                    root, "s", "e", [f"--worker {worker}", f"--number {number}"],
                    job_idx=worker, commit_hash="abcde",
                ):
                    pass
                loads += len(Experiment.load_all(folder)) > 0
            except Exception as exc:  # noqa: BLE001 - the test reports every one
                errors.append(f"{type(exc).__name__}: {exc}")
    lost = [str(warning.message) for warning in caught if "not indexed" in str(warning.message)]
    return errors, lost, loads


def test_processes_creating_and_loading_runs_at_once(tmp_path: Path, backend: str) -> None:
    root = tmp_path / "lab"
    folder = root / "experiments" / "s" / "e"
    folder.mkdir(parents=True)
    assert len(Experiment.load_all(root, recursive=True)) == 0  # the index exists: write-through
    jobs = [(str(root), worker, RUNS_PER_WORKER) for worker in range(WORKERS)]
    with multiprocessing.get_context("spawn").Pool(WORKERS) as pool:
        outcomes = pool.map(_create_and_load, jobs)
    errors = [error for outcome in outcomes for error in outcome[0]]
    lost = [warning for outcome in outcomes for warning in outcome[1]]
    assert errors == [] and lost == []
    assert sum(outcome[2] for outcome in outcomes) == WORKERS * RUNS_PER_WORKER
    # The index, used as it is (no sync), equals the disk: every run once, with its values.
    indexed = Experiment.load_all(folder, sync="none")
    on_disk = Experiment.load_all(folder, index=False)
    assert len(on_disk) == WORKERS * RUNS_PER_WORKER
    assert [run.identifier for run in indexed] == [run.identifier for run in on_disk]
    assert [(run.info_dict, run.exec_args) for run in indexed] == [
        (run.info_dict, run.exec_args) for run in on_disk
    ]
    assert all(run.info_dict.get("end_time") for run in indexed)
    assert len({run.identifier for run in indexed}) == len(indexed)
    assert os.listdir(folder) and len(
        [name for name in os.listdir(folder) if name != ".hermes"]
    ) == WORKERS * RUNS_PER_WORKER
