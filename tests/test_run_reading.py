"""pyhermes.index.sync.run_reading: one run directory into the record the index stores, and the listing of new runs."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from legacy import write_run

from pyhermes.errors import RunFormatError
from pyhermes.index.rules import KEY_LENGTH, NAME_ESCAPE, SIGNATURE_COLUMNS, signature, stored_name
from pyhermes.index.store.layout import SUMMARY_COLUMNS
from pyhermes.index.sync.run_reading import (
    ReadFailure,
    RunRecord,
    list_new_runs,
    problem_reason,
    read_run,
    read_runs,
    with_progress,
)

START = datetime(2024, 3, 1, 9, 15, 1, 123456)
COMMIT = "9f3c2e1b7a6d5c4b3a29180716f5e4d3c2b1a0f9"


def _sweep(root: Path) -> Path:
    return root / "experiments" / "train_dqn" / "sweep"


def _rel(root: Path, run: Path) -> str:
    return run.relative_to(root).as_posix()


def _age(run: Path, seconds: float = 3600.0) -> None:
    when = time.time() - seconds
    for entry in run.iterdir():
        os.utime(entry, (when, when))


def test_read_run_of_a_finished_run(tmp_path):
    run = write_run(
        _sweep(tmp_path), start=START, job_idx=2, commit_hash=COMMIT, comments="lr sweep: 0.001, see notes",
        exec_args=["train", "--doubledqn", "-lr 0.001", "-hidden 64 64", "-tag a"],
        scores=[-1.0, 2.0, float("nan"), 5.0], execution_time=90.5,
    )
    record = read_run(str(run), _rel(tmp_path, run))
    assert isinstance(record, RunRecord)
    row = record.row
    assert row["path"] == f"experiments/train_dqn/sweep/{run.name}"
    assert row["parent"] == "experiments/train_dqn/sweep"
    assert row["identifier"] == run.name
    assert (row["script_name"], row["experiment_name"]) == ("train_dqn", "sweep")
    assert row["job_idx"] == 2 and row["commit_hash"] == COMMIT
    assert row["start_time"] == START and row["end_time"] == START + timedelta(seconds=90.5)
    assert row["execution_time"] == 90.5 and row["finished"] is True
    assert row["comments"] == "lr sweep: 0.001, see notes"
    assert row["warnings"] is None
    summary = {name: row[column] for name, column in SUMMARY_COLUMNS.items()}
    assert summary["count"] == 4 and summary["first"] == -1.0 and summary["last"] == 5.0
    assert summary["max"] == 5.0 and summary["argmax"] == 3 and summary["min"] == -1.0
    assert summary["mean"] == pytest.approx(2.0)  # NaN ignored
    sig = signature(str(run))
    assert [row[name] for name in SIGNATURE_COLUMNS] == list(sig)
    assert record.args == [
        (0, "train", "train", None, None),
        (1, "--doubledqn", "--doubledqn", None, None),
        (2, "-lr 0.001", "-lr", "0.001", 0.001),
        (3, "-hidden 64 64", "-hidden", "64 64", None),  # two values: text, no number
        (4, "-tag a", "-tag", "a", None),
    ]
    assert dict(record.info) == {
        "commit_hash": COMMIT,
        "start_time": START.strftime("%Y_%m_%d_%H%M%S%f"),
        "end_time": (START + timedelta(seconds=90.5)).strftime("%Y_%m_%d_%H%M%S%f"),
        "execution_time": "90.5",
        "comments": "lr sweep: 0.001, see notes",
    }


def test_a_run_is_settled_once_it_finished_and_its_files_are_old(tmp_path):
    finished = write_run(_sweep(tmp_path), start=START, scores=[1.0])
    unfinished = write_run(_sweep(tmp_path), start=START + timedelta(1), scores=[1.0], finished=False)
    assert read_run(str(finished), "f").row["settled"] is False  # written just now
    assert read_run(str(finished), "f", settle_seconds=0).row["settled"] is True
    _age(finished)
    assert read_run(str(finished), "f").row["settled"] is True
    _age(unfinished)
    row = read_run(str(unfinished), "u", settle_seconds=0).row
    assert row["settled"] is False and row["finished"] is False
    assert row["end_time"] is None and row["execution_time"] is None and row["comments"] is None
    assert row["start_time"] == START + timedelta(1)  # from the identifier: no start_time line
    assert row["path"] == "u" and row["parent"] == ""


def test_irregular_but_readable_files_are_warnings_of_a_recorded_run(tmp_path):
    run = write_run(
        _sweep(tmp_path), start=START,
        info_text=b"commit_hash:abc\ncomments:n\xe9ode\nno colon here\n",
        scores="1.0\nnot a number\n2.0\n",
    )
    record = read_run(str(run), _rel(tmp_path, run))
    notes = record.row["warnings"].split("\n")
    assert any("hermes.info:2" in note and "Latin-1" in note for note in notes), notes
    assert any("hermes.info:3" in note and "without ':'" in note for note in notes), notes
    assert any("(scores not summarized)" in note for note in notes), notes
    assert dict(record.info)["comments"] == "néode"
    assert record.row["score_count"] is None and record.row["score_max"] is None


@pytest.mark.parametrize(
    ("break_it", "error"),
    [
        (lambda run: ((run / "hermes.info").unlink(), (run / "hermes.info").mkdir()), RunFormatError),
        (lambda run: (run / "hermes.info").unlink(), FileNotFoundError),
        (lambda run: ((run / "hermes.info").unlink(), (run / "hermes.info").symlink_to("nowhere")),
         RunFormatError),
        (lambda run: (run / "hermes.info").write_text("k" * (KEY_LENGTH + 1) + ":v\n"), RunFormatError),
        (lambda run: (run / "exec_arguments").write_text("-" + "x" * KEY_LENGTH + " 1\n"), RunFormatError),
    ],
    ids=["info-is-a-folder", "info-missing", "info-dangling-link", "info-key-too-long", "arg-key-too-long"],
)
def test_a_run_with_a_broken_hermes_info_cannot_be_read(tmp_path, break_it, error):
    run = write_run(_sweep(tmp_path), start=START, scores=[1.0])
    break_it(run)
    with pytest.raises(error):
        read_run(str(run), _rel(tmp_path, run))


def test_read_runs_keeps_the_order_and_records_failures(tmp_path):
    good = [write_run(_sweep(tmp_path), start=START + timedelta(minutes=i), scores=[float(i)]) for i in range(3)]
    (good[1] / "hermes.info").unlink()
    (good[1] / "hermes.info").mkdir()
    paths = [_rel(tmp_path, run) for run in good]
    seen: list[int] = []
    results = read_runs(str(tmp_path), paths, progress=seen.append)
    assert [path for path, _ in results] == paths and seen == [1, 2, 3]
    assert isinstance(results[0][1], RunRecord) and results[0][1].row["score_first"] == 0.0
    assert isinstance(results[2][1], RunRecord) and results[2][1].row["score_first"] == 2.0
    failure = results[1][1]
    assert isinstance(failure, ReadFailure) and isinstance(failure.error, RunFormatError)
    assert abs(failure.read_at - time.time()) < 60
    assert problem_reason(failure.error).startswith("RunFormatError: ")
    assert "a directory" in problem_reason(failure.error)


def test_read_runs_reads_undecodable_names(tmp_path):
    sweep = _sweep(tmp_path)
    run = write_run(sweep, start=START, scores=[1.0, 2.0])
    odd = os.path.join(os.fsencode(sweep), b"odd-\xff")
    os.rename(os.fsencode(run), odd)
    stored = stored_name(os.fsdecode(odd)[len(str(tmp_path)) + 1 :])
    assert NAME_ESCAPE in stored
    [(path, record)] = read_runs(str(tmp_path), [stored])
    assert path == stored and isinstance(record, RunRecord)
    assert record.row["identifier"] == f"odd-{NAME_ESCAPE}ff"
    assert record.row["score_count"] == 0  # its scores file is named after the old identifier
    assert record.row["path"].encode("utf-8")  # stored as valid text


def test_problem_reason_is_printable():
    reason = problem_reason(OSError(os.fsdecode(b"cannot read \xff")))
    assert reason == "OSError: cannot read \\xff"
    reason.encode("utf-8")


def test_with_progress_reports_after_each_result():
    calls: list[tuple[str, int]] = []
    results = [("a", 1), ("b", 2)]

    def stream():
        for result in results:
            calls.append(("yield", result[1]))
            yield result

    out = []
    for item in with_progress(stream(), lambda n: calls.append(("progress", n))):
        out.append(item)
    assert out == results
    assert calls == [("yield", 1), ("progress", 1), ("yield", 2), ("progress", 2)]
    assert list(with_progress(iter(results), None)) == results


def test_list_new_runs(tmp_path):
    sweep = _sweep(tmp_path)
    runs = [write_run(sweep, start=START + timedelta(minutes=i)) for i in range(2)]
    nested = write_run(tmp_path / "experiments" / "eval" / "deep" / "er", start=START)
    top = write_run(tmp_path, start=START + timedelta(days=1))
    write_run(runs[0] / "sub", start=START)  # inside a run: never listed
    hidden = write_run(tmp_path / ".hermes", start=START)  # the index's folder: skipped
    (tmp_path / "notes").mkdir()
    (sweep / "link").symlink_to(runs[0], target_is_directory=True)  # links are not followed
    recursive = list_new_runs(str(tmp_path), recursive=True)
    assert recursive == sorted(_rel(tmp_path, run) for run in (*runs, nested, top))
    assert _rel(tmp_path, hidden) not in recursive
    assert list_new_runs(str(tmp_path), recursive=False) == [top.name]
    assert list_new_runs(str(sweep), recursive=False) == sorted(run.name for run in runs)
    assert list_new_runs(str(tmp_path / "notes"), recursive=True) == []
