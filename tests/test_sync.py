"""The sync contract of the index, and index-backed queries, on real SQLite files in tmp dirs."""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from legacy import write_run
from make_corpus import make_corpus

from pyhermes import CatalogError, Experiment, ReadOnlyQueryError, rundir
from pyhermes.index.rules import relative
from pyhermes.index.run_index import RunFormatProblemsWarning
from pyhermes.storage import Catalog

REPO = Path(__file__).resolve().parents[1]

HOUR_AGO = time.time() - 3600


def age(path: Path, when: float = HOUR_AGO) -> None:
    """Set the mtime of ``path`` and everything below it to ``when`` (an old, settled run)."""
    for dirpath, _dirnames, filenames in os.walk(path):
        for name in filenames:
            os.utime(os.path.join(dirpath, name), (when, when))
        os.utime(dirpath, (when, when))


def ids(runs) -> list[str]:
    return sorted(run.identifier for run in runs)


def _run(folder: Path, day: int, **kwargs) -> Path:
    kwargs.setdefault("scores", [float(day), float(day) + 1])
    kwargs.setdefault("exec_args", ["train", f"-lr 0.00{day % 9 + 1}"])
    return write_run(folder, start=datetime(2024, 1, day, 12), **kwargs)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    experiment = tmp_path / "experiments" / "train" / "sweep"
    for day in range(1, 6):
        _run(experiment, day)
    age(tmp_path)
    return experiment


@pytest.mark.sqlite_only  # checks the SQLite file or its place
def test_first_load_creates_the_index_beside_the_runs(folder):
    runs = Experiment.load_all(folder)
    assert len(runs) == 5
    assert (folder / ".hermes" / "index.sqlite").is_file()
    assert runs._indexed()
    assert Experiment.load_all(folder) == runs


def test_added_and_removed_runs_are_always_seen(folder):
    Experiment.load_all(folder)
    new = _run(folder, 7)
    assert new.name in ids(Experiment.load_all(folder))
    gone = sorted(p for p in folder.iterdir() if p.name != ".hermes")[0]
    shutil.rmtree(gone)
    runs = Experiment.load_all(folder)
    assert gone.name not in ids(runs) and len(runs) == 5


def test_removed_runs_leave_the_index_never_the_disk(folder):
    Experiment.load_all(folder)
    hidden = folder.parent / "elsewhere"
    victim = sorted(p for p in folder.iterdir() if p.name != ".hermes")[0]
    victim.rename(hidden)
    Experiment.load_all(folder)
    assert (hidden / "hermes.info").is_file()


def test_unfinished_runs_are_rechecked_on_every_sync(folder):
    running = _run(folder, 8, finished=False)
    age(running)
    runs = Experiment.load_all(folder)
    assert not [r for r in runs if r.identifier == running.name][0].is_finished
    rundir.append_info(running, "start_time", "2024_01_08_120000000000")
    rundir.append_info(running, "end_time", "2024_01_08_130000000000")
    run = [r for r in Experiment.load_all(folder) if r.identifier == running.name][0]
    assert run.is_finished and run.end_time == datetime(2024, 1, 8, 13)


def test_recently_finished_runs_are_rechecked_until_settled(folder):
    fresh = _run(folder, 9)  # files written just now: inside the settle window
    Experiment.load_all(folder)
    (fresh / "exec_arguments").write_text("train\n-lr 0.5\n")
    run = [r for r in Experiment.load_all(folder) if r.identifier == fresh.name][0]
    assert run.exec_args == {"train", "-lr 0.5"}


def test_settled_runs_are_trusted_by_quick_and_rechecked_by_full(folder):
    Experiment.load_all(folder)
    settled = sorted(p for p in folder.iterdir() if p.name != ".hermes")[0]
    (settled / "exec_arguments").write_text("train\n-lr 0.9\n")
    age(settled / "exec_arguments", HOUR_AGO + 5)
    quick = [r for r in Experiment.load_all(folder) if r.identifier == settled.name][0]
    assert "-lr 0.9" not in quick.exec_args
    full = [r for r in Experiment.load_all(folder, sync="full") if r.identifier == settled.name][0]
    assert "-lr 0.9" in full.exec_args
    assert [r for r in Experiment.load_all(folder) if r.identifier == settled.name][0].exec_args == {
        "train", "-lr 0.9"}


def test_quick_sync_makes_no_call_into_settled_runs(folder, monkeypatch):
    Experiment.load_all(folder)
    age(folder)
    Experiment.load_all(folder)  # lists the folder again: its mtime changed
    touched: list[str] = []
    real_stat, real_scandir = os.stat, os.scandir
    run_dirs = [str(p) for p in folder.iterdir() if p.name != ".hermes"]

    def inside_a_run(path) -> bool:
        text = os.fspath(path) if not isinstance(path, int) else ""
        return any(text.startswith(run_dir) for run_dir in run_dirs)

    def stat(path, *args, **kwargs):
        if inside_a_run(path):
            touched.append(f"stat {path}")
        return real_stat(path, *args, **kwargs)

    def scandir(path="."):
        if inside_a_run(path) or os.fspath(path) == str(folder):
            touched.append(f"scandir {path}")
        return real_scandir(path)

    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "scandir", scandir)
    runs = Experiment.load_all(folder)
    runs.filter_by_exec_args("train").latest()
    assert len(runs) == 5
    assert touched == []


TRACEBACK = 'Traceback (most recent call last):\n  File "train.py", line 3, in <module>\nRuntimeError: CUDA out of memory\n'


def test_a_run_that_crashed_long_ago_settles_and_a_quiet_unfinished_one_does_not(tmp_path, monkeypatch):
    """Not finished, stderr.log ending in a traceback and nothing written for an hour: its job is
    gone, and a quick sync stops looking at its files. A run as quiet without a traceback (a job
    may still write) and a crash of minutes ago are still looked at on every quick sync."""
    folder = tmp_path / "experiments" / "train" / "sweep"
    crashed = _run(folder, 1, finished=False, stderr=TRACEBACK)
    quiet = _run(folder, 2, finished=False, stderr="epoch 3\n")
    recent = _run(folder, 3, finished=False, stderr=TRACEBACK)
    age(folder, time.time() - 7200)
    age(recent, time.time() - 120)
    Experiment.load_all(folder)
    looked_at: list[str] = []
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        text = os.fspath(path) if not isinstance(path, int) else ""
        looked_at.extend(run.name for run in (crashed, quiet, recent) if text.startswith(str(run) + os.sep))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    runs = Experiment.load_all(folder)
    assert len(runs) == 3 and all(run.end_time is None for run in runs)
    assert crashed.name not in looked_at
    assert quiet.name in looked_at and recent.name in looked_at
    monkeypatch.setattr(os, "stat", real_stat)
    # A full sync still looks at every run: a crashed run written again is read again.
    (crashed / f"{crashed.name}.scores").write_text("1.0\n2.0\n3.0\n")
    again = [run for run in Experiment.load_all(folder, sync="full") if run.identifier == crashed.name]
    assert again[0].score_summary.count == 3


@pytest.mark.sqlite_only  # checks the SQLite file or its place
def test_a_change_in_the_same_timestamp_tick_is_not_missed(folder):
    Experiment.load_all(folder)
    mtime = os.stat(folder).st_mtime_ns
    new = _run(folder, 10)
    os.utime(folder, ns=(mtime, mtime))  # the folder's mtime did not move
    age(new)
    assert new.name in ids(Experiment.load_all(folder))


def test_sync_none_answers_from_the_index_without_the_disk(folder):
    Experiment.load_all(folder)
    victim = sorted(p for p in folder.iterdir() if p.name != ".hermes")[0]
    shutil.rmtree(victim)
    assert victim.name in ids(Experiment.load_all(folder, sync="none"))
    assert victim.name not in ids(Experiment.load_all(folder))
    with pytest.raises(ValueError, match="sync"):
        Experiment.load_all(folder, sync="sometimes")


def test_attributes_come_from_the_index(folder, monkeypatch):
    expected = {r.identifier: (r.info_dict, r.exec_args, r.score_summary)
                for r in Experiment.load_all(folder, index=False)}
    Experiment.load_all(folder)

    def no_reads(*args, **kwargs):
        raise AssertionError("read a file")

    monkeypatch.setattr(rundir, "read_info", no_reads)
    monkeypatch.setattr(rundir, "read_exec_args", no_reads)
    monkeypatch.setattr(rundir, "read_scores", no_reads)
    monkeypatch.setattr(rundir, "iter_scores", no_reads)
    runs = Experiment.load_all(folder)
    for run in runs:
        info, args, summary = expected[run.identifier]
        assert run.info_dict == info and run.exec_args == args and run.score_summary == summary
        assert run.start_time == datetime.strptime(info["start_time"], rundir.TIME_FORMAT)
    monkeypatch.undo()
    np.testing.assert_array_equal(runs[0].scores(), [1.0, 2.0])  # file-backed: reads the disk


def _make_unreadable(run: Path) -> None:
    """Replace the run's ``hermes.info`` by a directory: the run cannot be read at all."""
    (run / "hermes.info").unlink()
    (run / "hermes.info").mkdir()


def test_problems_are_recorded_and_the_other_runs_load(folder):
    bad = _run(folder, 11)
    other = _run(folder, 12)
    assert len(Experiment.load_all(folder)) == 7
    _make_unreadable(bad)
    _make_unreadable(other)
    with pytest.warns(RunFormatProblemsWarning, match="2 run") as caught:
        runs = Experiment.load_all(folder, sync="full")
    assert len([w for w in caught if issubclass(w.category, RunFormatProblemsWarning)]) == 1
    assert "hermes-reindex --check" in str(caught[0].message)
    assert len(runs) == 5
    catalog = Catalog.open(folder, sync="none")
    problems = dict(catalog.problems())
    assert set(problems) == {relative(catalog.root, bad), relative(catalog.root, other)}
    assert "a directory, not a regular file" in problems[relative(catalog.root, bad)]
    (bad / "hermes.info").rmdir()
    (bad / "hermes.info").write_text("commit_hash:abc\n")
    shutil.rmtree(other)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runs = Experiment.load_all(folder)
    assert bad.name in ids(runs)
    assert catalog.problems() == []


def test_odd_bytes_are_warnings_and_the_run_loads(folder):
    latin = _run(folder, 11, info_text=b"commit_hash:abc\nhost:n\xe9ode-7\n")
    nul = _run(folder, 12, exec_args_text="train\n-lr 0.1\x00\n")
    with pytest.warns(rundir.RunFormatWarning, match="2 run.*read with warnings") as caught:
        runs = Experiment.load_all(folder)
    assert "hermes-reindex --check" in str(caught[0].message)
    assert len(runs) == 7 and {latin.name, nul.name} <= set(ids(runs))
    catalog = Catalog.open(folder, sync="none")
    assert catalog.problems() == []
    noted = dict(catalog.run_warnings())
    assert set(noted) == {relative(catalog.root, latin), relative(catalog.root, nul)}
    assert "hermes.info:2" in noted[relative(catalog.root, latin)][0]
    assert "exec_arguments:2" in noted[relative(catalog.root, nul)][0]
    [indexed] = [run for run in runs if run.identifier == latin.name]
    assert indexed.info_dict["host"] == "n\u00e9ode-7"
    with pytest.warns(rundir.RunFormatWarning, match="hermes.info:2"):
        assert Experiment.load(latin).info_dict == indexed.info_dict
    [indexed_nul] = [run for run in runs if run.identifier == nul.name]
    assert indexed_nul.exec_args == {"train", "-lr 0.1\ufffd"}
    # once fixed, the warning goes away with the next read of the run
    (latin / "hermes.info").write_text("commit_hash:abc\nhost:node-7\n")
    shutil.rmtree(nul)
    Experiment.load_all(folder)
    assert catalog.run_warnings() == []


def test_a_colonless_info_line_is_skipped_as_by_the_file_api(folder):
    run = _run(folder, 12, info_text="commit_hash:abc\nno colon here\n")
    with pytest.warns(rundir.RunFormatWarning, match="hermes.info:2"):
        runs = Experiment.load_all(folder)
    assert run.name in ids(runs)
    with pytest.warns(rundir.RunFormatWarning, match="hermes.info:2"):
        assert ids(runs) == ids(Experiment.load_all(folder, index=False))


def test_a_run_that_becomes_unreadable_leaves_the_answer(folder):
    before = Experiment.load_all(folder)
    victim = before[0].path_to_experiment
    _make_unreadable(victim)
    with pytest.warns(RunFormatProblemsWarning):
        after = Experiment.load_all(folder, sync="full")
    assert victim.name not in ids(after) and len(after) == len(before) - 1


def test_deleting_a_whole_subfolder_is_seen_by_a_quick_recursive_sync(tmp_path):
    tree = tmp_path / "tree"
    for experiment in ("a", "b"):
        for day in (1, 2):
            _run(tree / "experiments" / "s" / experiment, day)
    age(tree)
    assert len(Experiment.load_all(tree, recursive=True)) == 4
    shutil.rmtree(tree / "experiments" / "s" / "b")
    runs = Experiment.load_all(tree, recursive=True)
    assert len(runs) == 2 and all(run.path_to_experiment.exists() for run in runs)
    (tree / "experiments" / "s" / "a").rename(tree / "experiments" / "s" / "c")
    runs = Experiment.load_all(tree, recursive=True)
    assert {run.experiment_name for run in runs} == {"c"} and len(runs) == 2


def test_an_old_list_answers_for_its_own_runs(folder):
    runs = Experiment.load_all(folder)
    newer = _run(folder, 20)
    Experiment.load_all(folder)  # the index now holds a newer run than any in `runs`
    assert runs.latest().identifier != newer.name
    assert runs.latest() is max(runs, key=lambda run: run.start_time)
    assert [r.identifier for r in runs.top(2)] == [
        r.identifier for r in sorted(runs, key=lambda r: -r.score_summary.final_mean)[:2]]
    assert len(runs.filter_by_exec_args("train")) == len(runs)


@pytest.mark.sqlite_only  # checks the SQLite file or its place
def test_sync_none_needs_an_index(tmp_path):
    _run(tmp_path / "e", 1)
    with pytest.raises(CatalogError, match="hermes-reindex"):
        Experiment.load_all(tmp_path / "e", sync="none")
    assert not (tmp_path / "e" / ".hermes").exists()


def test_an_index_never_goes_into_a_run_directory(folder, tmp_path):
    run_dir = sorted(p for p in folder.iterdir() if p.name != ".hermes")[0]
    assert Experiment.load_all(run_dir) == []
    assert not (run_dir / ".hermes").exists()


def test_one_explicit_index_serves_two_trees(tmp_path):
    index = tmp_path / "shared.sqlite"
    first = tmp_path / "one" / "e"
    second = tmp_path / "two" / "e"
    _run(first, 1)
    _run(second, 2)
    assert len(Experiment.load_all(first, index=index)) == 1
    assert len(Experiment.load_all(second, index=index)) == 1
    catalog = Catalog.open(tmp_path, index=index, sync="none")
    paths = [row[0] for row in catalog.sql("SELECT path FROM runs").rows]
    assert len(paths) == 2 and not any(".." in path for path in paths)
    assert catalog.count() == 2
    assert len(Experiment.load_all(tmp_path, index=index, recursive=True)) == 2
    assert catalog.count() == 2  # the same runs, not copies under other paths


def test_bad_scores_file_is_a_warning_and_leaves_no_summary(folder):
    bad = _run(folder, 13, scores="1\nnot a number\n2\n")
    with pytest.warns(rundir.RunFormatWarning, match="read with warnings"):
        runs = Experiment.load_all(folder)
    assert bad.name in ids(runs)
    catalog = Catalog.open(folder, sync="none")
    [notes] = [notes for path, notes in catalog.run_warnings() if path.endswith(bad.name)]
    assert "scores:2" in notes[0] and "not summarized" in notes[0]
    [(count, final_mean)] = catalog.sql(
        "SELECT count, final_mean FROM runs WHERE identifier = :id", {"id": bad.name}
    ).rows
    assert count is None and final_mean is None  # unknown, not zero
    assert bad.name not in ids(runs.sort_by_score()[:5])  # ranked after the runs with scores


def test_write_through_of_created_runs(folder):
    Experiment.load_all(folder)
    experiments_dir = folder.parents[2]
    run = Experiment.create(experiments_dir, "train", "sweep", ["train", "-lr 0.3"],
                            commit_hash="abcdef0")
    [running] = [r for r in Experiment.load_all(folder, sync="none") if r.identifier == run.identifier]
    assert not running.is_finished and running.exec_args == {"train", "-lr 0.3"}
    run.append_scores(5.0, 6.0)
    run.finish()
    indexed = Experiment.load_all(folder, sync="none")
    [again] = [r for r in indexed if r.identifier == run.identifier]
    assert again.is_finished and again.score_summary.count == 2


def test_created_runs_without_an_index_create_none(tmp_path):
    Experiment.create(tmp_path, "s", "e", ["a"], commit_hash="abc").finish()
    assert not list(tmp_path.rglob(".hermes"))


@pytest.mark.sqlite_only  # checks the SQLite file or its place
def test_a_tree_moved_with_its_index_keeps_working(folder, tmp_path):
    before = ids(Experiment.load_all(folder))
    moved = tmp_path / "moved"
    shutil.move(str(folder), moved)
    runs = Experiment.load_all(moved, sync="none")
    assert ids(runs) == before
    assert all(run.path_to_experiment.parent == moved for run in runs)
    assert runs[0].scores().size == 2


def test_sort_and_top(folder):
    runs = Experiment.load_all(folder)
    by_hand = sorted(runs, key=lambda r: r.score_summary.final_mean, reverse=True)
    assert runs.sort_by_score() == by_hand
    assert runs.sort_by_score("max", descending=False) == by_hand[::-1]
    assert runs.top(2) == by_hand[:2]
    plain = Experiment.load_all(folder, index=False)
    assert plain.top(2) == by_hand[:2]
    with pytest.raises(ValueError, match="final_mean"):
        runs.sort_by_score("nope")


def test_runs_without_scores_sort_last(folder):
    empty = _run(folder, 14, scores=None)
    runs = Experiment.load_all(folder)
    assert runs.sort_by_score()[-1].identifier == empty.name
    assert runs.sort_by_score(descending=False)[-1].identifier == empty.name
    assert [r for r in runs if r.identifier == empty.name][0].score_summary.final_mean is None


def test_changed_lists_fall_back_to_memory(folder):
    runs = Experiment.load_all(folder)
    runs.pop()
    assert not runs._indexed()
    assert len(runs.filter_by_exec_args("train")) == 4


def test_score_summary_values(tmp_path):
    values = [float(v) for v in range(250)] + [float("nan")]
    run = write_run(tmp_path / "e", start=datetime(2024, 2, 1), scores=values)
    [indexed] = Experiment.load_all(tmp_path / "e")
    summary = indexed.score_summary
    assert summary.count == 251 and summary.first == 0 and summary.last == 249
    assert summary.max == 249 and summary.argmax == 249 and summary.min == 0
    assert summary.mean == pytest.approx(124.5)
    assert summary.std == pytest.approx(np.std(np.arange(250)))
    assert summary.final_mean == pytest.approx(np.mean(np.arange(151, 250)))
    assert summary.best_window_mean == pytest.approx(np.mean(np.arange(151, 250)))  # NaN ignored
    assert Experiment.load(run).score_summary == summary


@pytest.fixture(scope="module")
def corpus(read_only_corpus: Path) -> Path:
    """The session's generated corpus, read only (indexes of these tests live outside it)."""
    return read_only_corpus


@pytest.fixture(scope="module")
def corpus_lists(corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    from pyhermes.index.store.engine import dispose_engines

    index = tmp_path_factory.mktemp("hypothesis-index") / "index.sqlite"
    indexed = Experiment.load_all(corpus, index=index)
    plain = Experiment.load_all(corpus, index=False)
    yield indexed, plain
    dispose_engines()


def _all_args(plain) -> list[str]:
    return sorted(set().union(*(run.exec_args for run in plain)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_indexed_and_in_memory_filters_agree(corpus_lists, data):
    indexed, plain = corpus_lists
    args = data.draw(st.lists(st.sampled_from(_all_args(plain)), max_size=3, unique=True))
    sql = indexed.filter_by_exec_args(*args)
    memory = plain.filter_by_exec_args(*args)
    assert ids(sql) == ids(memory)
    assert sql._indexed()
    if memory:
        assert sql.latest().identifier == memory.latest().identifier
    else:
        with pytest.raises(ValueError):
            sql.latest()
    assert [r.identifier for r in sql.top(5)] == [r.identifier for r in memory.top(5)]


def test_index_at_postgres(corpus, pg_url):
    url = pg_url
    indexed = Experiment.load_all(corpus, index=url)
    plain = Experiment.load_all(corpus, index=False)
    assert ids(indexed) == ids(plain)
    for args in (["--doubledqn"], ["--doubledqn", "-lr 0.001"], ["train"]):
        assert ids(indexed.filter_by_exec_args(*args)) == ids(plain.filter_by_exec_args(*args))
    assert indexed.latest().identifier == plain.latest().identifier
    assert [r.identifier for r in indexed.top(5)] == [r.identifier for r in plain.top(5)]
    if importlib.util.find_spec("pandas") is not None:  # the frame's two queries on PostgreSQL
        frame = Experiment.load_all(corpus, index=url).to_frame()
        assert frame["identifier"].tolist() == ids(plain)
        assert frame["--doubledqn"].tolist() == [
            True if "--doubledqn" in run.exec_args else None for run in plain
        ]
        assert frame["final_mean"].tolist() == pytest.approx(
            [run.score_summary.final_mean for run in plain], nan_ok=True
        )
    catalog = Catalog.open(corpus, index=url, sync="none")
    assert catalog.sql("SELECT COUNT(*) FROM runs").rows == [(len(plain),)]
    assert catalog.count("--doubledqn and -lr < 0.01") == len(
        plain.where("--doubledqn and -lr < 0.01"))
    with pytest.raises(ReadOnlyQueryError):
        catalog.sql("DELETE FROM hermes_run")
    assert catalog.count() == len(plain)


def test_latest_ignores_runs_without_start_after_runs_with(tmp_path):
    folder = tmp_path / "e"
    write_run(folder, start=datetime(2024, 1, 1), scores=[1.0])
    odd = folder / "not_an_identifier"
    odd.mkdir()
    (odd / "hermes.info").write_text("commit_hash:abc\n")
    runs = Experiment.load_all(folder)
    assert len(runs) == 2
    assert runs.latest().start_time == datetime(2024, 1, 1)
    assert [r for r in runs if r.identifier == odd.name][0].start_time is None
    assert Experiment.load_all(folder, index=False).latest().start_time == datetime(2024, 1, 1)


def _load_in_a_process(folder: str) -> int:
    return len(Experiment.load_all(folder))


def test_processes_syncing_one_fresh_index_at_once(tmp_path):
    import multiprocessing

    make_corpus(tmp_path, 150, scores_per_run=20, script="s", experiment="e")
    folder = tmp_path / "experiments" / "s" / "e"
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        counts = pool.map(_load_in_a_process, [str(folder)] * 6)
    assert counts == [150] * 6
    assert len(Experiment.load_all(folder, sync="none")) == 150


def test_a_sync_with_many_runs_to_read_writes_them_in_slices(tmp_path, monkeypatch):
    from sqlalchemy import text

    from pyhermes.index.sync import syncer

    monkeypatch.setattr(syncer, "SLICE_RUNS", 8)
    folder = tmp_path / "experiments" / "s" / "e"
    folder.mkdir(parents=True)
    catalog = Catalog.open(folder)  # an empty index
    for day in range(1, 31):
        _run(folder, day)

    def stored() -> tuple[int, str | None]:
        with catalog.engine.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM hermes_run")).scalar_one()
            token = conn.execute(
                text("SELECT value FROM hermes_meta WHERE key = 'change_token'")
            ).scalar()
        return count, token

    seen: list[tuple[int, int]] = []
    tokens: set[str | None] = set()

    def progress(done: int) -> None:
        count, token = stored()
        seen.append((done, count))
        tokens.add(token)

    report = catalog.sync(progress=progress)
    assert report.added == 30
    # Another connection sees each slice of 8 runs as soon as it is written.
    assert seen == [(done, done // 8 * 8) for done in range(1, 31)]
    assert len(tokens - {None}) == 3  # each slice written told readers of the change
    assert stored()[0] == 30

    # A second sync with runs added and removed ends where a one-transaction sync would.
    runs = sorted(path for path in folder.iterdir() if path.is_dir() and not path.name.startswith("."))
    shutil.rmtree(runs[0])
    for day in range(1, 13):
        write_run(folder, start=datetime(2024, 2, day, 12), exec_args=["train", f"-lr 0.1{day}"])
    report = catalog.sync()
    assert (report.added, report.removed, report.updated) == (12, 1, 0)
    assert stored()[0] == 41
    indexed = Experiment.load_all(folder, sync="none")
    assert len(indexed) == 41 and runs[0].name not in ids(indexed)
    monkeypatch.setattr(syncer, "SLICE_RUNS", 1000)
    assert catalog.sync(mode="full", reread=True).updated == 41
    assert ids(Experiment.load_all(folder, sync="none")) == ids(indexed)


@pytest.mark.sqlite_only  # checks the SQLite file itself
def test_a_sync_that_finds_nothing_changed_leaves_the_index_file_as_it_was(folder, tmp_path):
    """No write, so the file state (device, inode, size, mtime) is the one recorded as sound,
    and the next fresh process does not check it again."""
    from pyhermes.index.store.engine import dispose_engines
    from pyhermes.index.store.guard import file_state as _file_state
    from pyhermes.index.store.sql_reader import close_readers

    def close() -> None:
        dispose_engines()
        close_readers()

    Experiment.load_all(folder)
    close()
    age(tmp_path)  # the folder changed when .hermes was made in it
    Experiment.load_all(folder, sync="full")  # lists it again, an hour after its change
    close()
    index = folder / ".hermes" / "index.sqlite"
    before = _file_state(index)
    for mode in ("full", "quick", "full"):
        assert len(Experiment.load_all(folder, sync=mode)) == 5
        close()
        assert _file_state(index) == before, mode
    _run(folder, 9)  # a change is written
    assert len(Experiment.load_all(folder, sync="full")) == 6
    close()
    assert _file_state(index) != before


def test_a_run_read_again_keeps_the_columns_that_follow_from_its_path(folder):
    """Its update sets neither parent nor identifier, so SQLite leaves the indexes on them
    alone (a full sync after 1% of 100,000 runs changed wrote 36 MiB before, 20 MiB after)."""
    from sqlalchemy import event

    catalog = Catalog.open(folder, sync="quick")
    updates: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO hermes_run") and "DO UPDATE SET" in statement:
            updates.append(statement.split("DO UPDATE SET", 1)[1])

    run = min(path for path in folder.iterdir() if (path / "hermes.info").is_file())
    (run / "exec_arguments").write_text("train\n-lr 0.5\n")
    event.listen(catalog.engine, "before_cursor_execute", seen)
    try:
        report = catalog.sync(folder, mode="full")
    finally:
        event.remove(catalog.engine, "before_cursor_execute", seen)
    assert report.updated == 1 and len(updates) == 1
    assigned = {part.split("=")[0].strip() for part in updates[0].split(" WHERE ")[0].split(",")}
    assert {"read_at", "args_mtime_ns", "score_final_mean", "settled"} <= assigned
    assert not assigned & {"parent", "identifier", "path"}
    # The layout names come from where the tree is now (it may have moved with its index).
    assert {"script_name", "experiment_name"} <= assigned
    [again] = catalog.find("-lr == 0.5")
    assert again.identifier == run.name


def test_a_tree_moved_with_its_index_gets_its_layout_names_from_its_new_place(tmp_path):
    before = tmp_path / "scratch" / "train" / "sweep"
    _run(before, 1)
    age(tmp_path)
    catalog = Catalog.open(before.parent, sync="full")
    assert catalog.count("script_name == 'train'") == 0  # not under experiments/ yet
    after = tmp_path / "experiments" / "train"
    after.parent.mkdir()
    (tmp_path / "scratch" / "train").rename(after)
    moved = Catalog.open(after, sync="none")
    moved.sync(after, mode="full", reread=True)
    assert moved.count("script_name == 'train' and experiment_name == 'sweep'") == 1
