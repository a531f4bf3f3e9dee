"""Tags and notes through the library and the index: ``Experiment.tags``/``notes``,
``add_tags``/``remove_tags``/``add_note`` on a run and on a list, their write-through, the
``tags`` column, ``hermes show``, and the sync of hand edits.

After each change the index must equal an index rebuilt from the run directories (a
new SQLite file built by ``Catalog.open(folder, index=...)``): the files are the truth.
Tests taking the ``backend`` fixture run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from test_curation_format import _legacy_load_all

from pyhermes import (
    Catalog,
    Experiment,
    ExperimentList,
    InvalidTagError,
    TagChange,
    present,
    rundir,
)
from pyhermes.cli import hermes_main
from pyhermes.errors import RunFormatError
from pyhermes.index.store.sql_reader import to_datetime

CURATION_COLUMNS = "tags_size, tags_mtime_ns, notes_size, notes_mtime_ns"


def _make_runs(root: Path, count: int, finished: bool = True) -> list[Experiment]:
    runs = []
    for number in range(count):
        run = Experiment.create(root, "train", "sweep", [f"--g {number % 4}", f"--seed {number}"], job_idx=number)
        run.append_scores(1.0, float(number))
        if finished:
            run.finish()
        runs.append(run)
    return runs


def _curation_of(catalog: Catalog) -> dict[str, Any]:
    """The tags, notes and curation signature of every run of ``catalog``, by path."""
    tags = catalog.sql("SELECT r.path, t.tag FROM run_tags t JOIN hermes_run r ON r.id = t.run_id").rows
    notes = catalog.sql(
        'SELECT r.path, n.position, n."time", n."text" FROM hermes_note n JOIN hermes_run r ON r.id = n.run_id'
    ).rows
    signatures = catalog.sql(f"SELECT path, {CURATION_COLUMNS} FROM hermes_run").rows

    def name(path: str) -> str:  # the run's own name: indexes of other roots store other paths
        return path.rpartition("/")[2]

    return {
        "tags": sorted((name(path), tag) for path, tag in tags),
        "notes": sorted((name(path), position, to_datetime(moment), text) for path, position, moment, text in notes),
        "signatures": sorted((name(path), *values) for path, *values in signatures),
    }


def _assert_index_is_the_disk(root: Path, tmp_path: Path, name: str = "fresh") -> None:
    """The index serving ``root`` (synced quickly) holds what a rebuild from disk holds."""
    served = Catalog.open(root)
    fresh = Catalog.open(root, index=tmp_path / f"{name}-{time.monotonic_ns()}.sqlite")
    assert _curation_of(served) == _curation_of(fresh)


def _tags_on_disk(root: Path) -> dict[str, list[str]]:
    return {run.name: rundir.read_tags(run) for run in rundir.iter_run_dirs(root, recursive=True)}


# --------------------------------------------------------------------------- round trips


def test_tag_untag_note_round_trip(backend: str, tmp_path: Path) -> None:
    root = tmp_path / "lab"
    runs = _make_runs(root, 6)
    listed = Experiment.load_all(root, recursive=True)
    assert [run.tags for run in listed] == [[]] * 6 and [run.notes for run in listed] == [[]] * 6
    paper = listed.where("--g < 2")
    changes = paper.add_tags("paper", " best ")  # stripped
    assert all(isinstance(change, TagChange) and change.changed for change in changes)
    assert [change.after for change in changes] == [("best", "paper")] * 4
    assert [change.run.identifier for change in changes] == [run.identifier for run in runs if run.exec_args_dict["--g"] < 2]
    # The bound list answers at once: the change token moved, the runs did not.
    assert len(listed.where("tag = paper")) == 4
    assert {run.identifier for run in listed.where("tag = best")} == {c.run.identifier for c in changes}
    assert len(Experiment.load_all(root, recursive=True, sync="none").where("tag = paper")) == 4
    _assert_index_is_the_disk(root, tmp_path)

    again = paper.add_tags("paper")
    assert not any(change.changed for change in again)
    removed = Experiment.load_all(root, recursive=True).where("tag = best").remove_tags("best", "absent")
    assert [change.before for change in removed] == [("best", "paper")] * 4
    assert [change.after for change in removed] == [("paper",)] * 4
    assert all(tags in ([], ["paper"]) for tags in _tags_on_disk(root).values())
    _assert_index_is_the_disk(root, tmp_path)

    single = Experiment.load_all(root, recursive=True)[0]
    change = single.remove_tags("paper")
    assert change.changed and single.tags == [] and not (single.path_to_experiment / rundir.TAGS_FILE).exists()
    note = single.add_note("diverged at step 3\nsee the logs")
    assert note.text == "diverged at step 3\nsee the logs" and isinstance(note.time, datetime)
    single.add_note("second")
    assert [n.text for n in single.notes] == ["diverged at step 3\nsee the logs", "second"]
    fresh = Experiment.load_all(root, recursive=True, sync="none")
    assert [n.text for n in fresh[0].notes] == [n.text for n in single.notes]  # from the index
    assert len(fresh.where('note ~ "DIVERGED"')) == 1
    _assert_index_is_the_disk(root, tmp_path)


def test_runs_loaded_from_disk_write_through_to_the_index(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    _make_runs(root, 3)
    Catalog.open(root)
    disk = Experiment.load_all(root, recursive=True, index=False)
    disk.add_tags("checked")
    disk[1].add_note("looked at it")
    catalog = Catalog.open(root, sync="none")
    assert catalog.count("tag = checked") == 3 and catalog.count('note ~ "looked"') == 1
    _assert_index_is_the_disk(root, tmp_path)


def test_tags_and_notes_of_a_run_without_an_index(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    run = _make_runs(root, 1)[0]
    loaded = Experiment.load(run.path_to_experiment)
    assert loaded.add_tags("a", "b").after == ("a", "b")
    loaded.add_note("n")
    assert not (root / ".hermes").exists()  # no index made for it
    again = Experiment.load(run.path_to_experiment)
    assert again.tags == ["a", "b"] and [n.text for n in again.notes] == ["n"]


def test_a_bad_tag_writes_nothing_anywhere(backend: str, tmp_path: Path) -> None:
    root = tmp_path / "lab"
    _make_runs(root, 4)
    runs = Experiment.load_all(root, recursive=True)
    runs[0].add_tags("kept")
    before_disk = {path: path.read_bytes() for path in root.rglob("*") if path.is_file() and ".hermes" not in path.parts}
    catalog = Catalog.open(root)
    before_index, token = _curation_of(catalog), catalog.change_token()
    for bad in ("", "   ", "a/b", "a\\b", "line\nbreak", "x" * 201):
        with pytest.raises(InvalidTagError):
            runs.add_tags("fine", bad)
        with pytest.raises(InvalidTagError):
            runs.remove_tags(bad)
        with pytest.raises(InvalidTagError):
            runs[1].add_tags(bad)
    with pytest.raises(ValueError):
        runs[1].add_note("   ")
    after_disk = {path: path.read_bytes() for path in root.rglob("*") if path.is_file() and ".hermes" not in path.parts}
    assert after_disk == before_disk
    catalog = Catalog.open(root, sync="none")
    assert _curation_of(catalog) == before_index and catalog.change_token() == token


# --------------------------------------------------------------------------- the sync


def test_a_hand_edit_is_picked_up_by_a_full_sync(backend: str, tmp_path: Path) -> None:
    root = tmp_path / "lab"
    runs = _make_runs(root, 3)
    catalog = Catalog.open(root)
    catalog.settle_seconds = 0.0
    catalog.sync(mode="full")  # every run settled: a quick sync no longer looks at them
    run_dir = runs[1].path_to_experiment
    (run_dir / rundir.TAGS_FILE).write_text("by-hand\nsecond\n")
    (run_dir / rundir.NOTES_FILE).write_text('{"time": "2024-05-01T10:00:00", "text": "typed in"}\n')
    report = Catalog.open(root, sync="full").sync(mode="full")
    assert report.problems == 0
    catalog = Catalog.open(root, sync="none")
    assert catalog.count("tag = by-hand") == 1 and catalog.count('note ~ "TYPED"') == 1
    loaded = Experiment.load_all(root, recursive=True, sync="none").where("tag = second")
    assert [run.notes for run in loaded] == [[rundir.Note(datetime(2024, 5, 1, 10), "typed in")]]
    _assert_index_is_the_disk(root, tmp_path)
    (run_dir / rundir.TAGS_FILE).unlink()
    Catalog.open(root, sync="full")
    assert Catalog.open(root, sync="none").count("tag = by-hand") == 0


def test_bad_curation_files_are_run_warnings_not_problems(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    run = _make_runs(root, 1)[0]
    (run.path_to_experiment / rundir.TAGS_FILE).write_text("ok\nbad/tag\n")
    (run.path_to_experiment / rundir.NOTES_FILE).write_text("not json\n")
    with pytest.warns(rundir.RunFormatWarning):
        catalog = Catalog.open(root, sync="full")
    assert catalog.problems() == [] and catalog.count("tag = ok") == 1
    assert any("hermes.tags" in note for _, notes in catalog.run_warnings() for note in notes)


# --------------------------------------------------------------------------- showing them


def test_tags_column_details_show_and_notebook(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "lab"
    _make_runs(root, 2)
    runs = Experiment.load_all(root, recursive=True)
    runs[0].add_tags("paper", "b")
    runs[0].add_note("<b>bold</b> claim")
    catalog = Catalog.open(root)
    table = catalog.table(columns=["identifier", "tags"], order_by="identifier")
    assert [row[1] for row in table.rows] == ["b, paper", ""]
    details = present.run_details(Experiment.load_all(root, recursive=True)[0])
    assert details["tags"] == ["b", "paper"]
    assert [note["text"] for note in details["notes"]] == ["<b>bold</b> claim"]
    assert datetime.fromisoformat(details["notes"][0]["time"])
    html = present.experiment_html(runs[0])
    assert "b, paper" in html and "&lt;b&gt;bold&lt;/b&gt; claim" in html
    assert hermes_main(["show", str(runs[0].path_to_experiment)]) == 0
    out = capsys.readouterr().out
    assert "tags (hermes.tags): b, paper" in out and "<b>bold</b> claim" in out
    assert hermes_main(["show", str(runs[0].path_to_experiment), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["tags"] == ["b", "paper"]
    assert hermes_main(["ls", str(root), "--columns", "identifier,tags", "--format", "json"]) == 0
    assert [row["tags"] for row in json.loads(capsys.readouterr().out)] == ["b, paper", ""]


def test_the_legacy_scan_loads_tagged_and_noted_runs(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    _make_runs(root, 3)
    folder = root / "experiments" / "train" / "sweep"
    plain = _legacy_load_all(folder)
    runs = Experiment.load_all(root, recursive=True)
    runs.add_tags("paper")
    for run in runs:
        run.add_note("noted\nover two lines")
    assert _legacy_load_all(folder) == plain


# --------------------------------------------------------------------------- archive support


def test_forget_and_store_runs_and_the_archive_folder(backend: str, tmp_path: Path) -> None:
    root = tmp_path / "lab"
    runs = _make_runs(root, 4)
    runs[0].add_tags("gone")
    catalog = Catalog.open(root)
    moved = runs[0].path_to_experiment
    target = root / ".archive" / moved.relative_to(root)
    target.parent.mkdir(parents=True)
    os.rename(moved, target)
    assert catalog.forget_runs([moved, root / "no-such-run"]) == 1
    assert catalog.count() == 3 and catalog.count("tag = gone") == 0
    assert len(Experiment.load_all(root, recursive=True, sync="full")) == 3  # .archive is not listed
    archived = Experiment.load_all(root, archived=True)
    assert [run.identifier for run in archived] == [moved.name] and archived[0].tags == ["gone"]
    os.rename(target, moved)
    catalog.store_runs([moved])
    assert catalog.count() == 4 and catalog.count("tag = gone") == 1
    assert len(Experiment.load_all(tmp_path / "lab", archived=True)) == 0
    _assert_index_is_the_disk(root, tmp_path)


# --------------------------------------------------------------------------- concurrency


def _append_scores(run_dir: str, seconds: float) -> None:
    run = Experiment.load(run_dir)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run.append_scores(1.0, 2.0, 3.0)


def test_tagging_a_run_whose_scores_are_being_appended(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    run = _make_runs(root, 1, finished=False)[0]
    Catalog.open(root)
    writer = multiprocessing.get_context("spawn").Process(
        target=_append_scores, args=(str(run.path_to_experiment), 2.0)
    )
    writer.start()
    try:
        for number in range(30):
            run.add_tags(f"t{number % 5}")
            if number % 3 == 0:
                run.remove_tags("t0")
            run.add_note(f"note {number}")
    finally:
        writer.join(30)
    assert writer.exitcode == 0
    assert rundir.read_tags(run.path_to_experiment) == ["t1", "t2", "t3", "t4"]
    assert len(rundir.read_notes(run.path_to_experiment)) == 30
    scores = run.scores()
    assert (len(scores) - 2) % 3 == 0 and len(scores) > 2  # every append whole (2 written at creation)
    Catalog.open(root, sync="full")
    _assert_index_is_the_disk(root, tmp_path)


def _tagger(root: str, number: int, out: str) -> None:
    """Tag the runs ``--g >= number`` (overlapping sets) three times over; record what was added."""
    from pyhermes.index.sync import write_through

    write_through.RUNS_PER_TAG_WRITER = 2  # several writer threads, even for these few runs
    added: dict[str, list[str]] = {}
    for round_ in range(3):
        tag = f"p{number}r{round_}"
        for change in Experiment.load_all(root, recursive=True).where(f"--g >= {number}").add_tags(tag, "common"):
            added.setdefault(str(change.run.path_to_experiment), []).extend([tag, "common"])
    Path(out).write_text(json.dumps(added))


def _creator(root: str, number: int) -> None:
    for index in range(6):
        run = Experiment.create(root, "train", "sweep", [f"--g {index % 4}", f"--c {number}"], job_idx=100 + number * 10 + index)
        run.append_scores(1.0, 2.0)
        run.finish()


def test_concurrent_taggers_and_creators_lose_no_tag(backend: str, tmp_path: Path) -> None:
    root = tmp_path / "lab"
    _make_runs(root, 16)
    Experiment.load_all(root, recursive=True)  # the index exists: every process writes through
    context = multiprocessing.get_context("spawn")
    outs = [tmp_path / f"tagger{number}.json" for number in range(4)]
    processes = [context.Process(target=_tagger, args=(str(root), number, str(outs[number]))) for number in range(4)]
    processes += [context.Process(target=_creator, args=(str(root), number)) for number in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [process.exitcode for process in processes] == [0] * 6
    expected: dict[str, set[str]] = {}
    for out in outs:
        for path, tags in json.loads(out.read_text()).items():
            expected.setdefault(Path(path).name, set()).update(tags)
    on_disk = _tags_on_disk(root)
    assert len(on_disk) == 28
    assert {name: set(tags) for name, tags in on_disk.items() if tags} == expected
    catalog = Catalog.open(root, sync="full")
    indexed: dict[str, set[str]] = {}
    for path, tag in catalog.sql("SELECT r.path, t.tag FROM run_tags t JOIN hermes_run r ON r.id = t.run_id").rows:
        indexed.setdefault(path.rpartition("/")[2], set()).add(tag)
    assert indexed == expected
    _assert_index_is_the_disk(root, tmp_path)


def test_a_list_tags_every_run_once_even_when_one_fails(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    _make_runs(root, 3)
    runs: ExperimentList[Experiment] = Experiment.load_all(root, recursive=True)
    list(runs)
    victim = runs[1].path_to_experiment
    (victim / rundir.INFO_FILE).rename(victim / "moved.info")
    with pytest.raises(RunFormatError):
        runs.add_tags("x")
    assert rundir.read_tags(runs[0].path_to_experiment) == ["x"] == rundir.read_tags(runs[2].path_to_experiment)
    assert Catalog.open(root, sync="none").count("tag = x") == 2


def test_many_runs_are_tagged_by_threads_and_read_for_the_index_as_a_sync_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyhermes.index.sync import write_through

    monkeypatch.setattr(write_through, "RUNS_PER_TAG_WRITER", 1)  # 7 runs: 4 threads
    root = tmp_path / "lab"
    run_dirs = [os.fspath(run.path_to_experiment) for run in _make_runs(root, 7)]
    rundir.change_tags(run_dirs[2], add=["old"])
    victim = Path(run_dirs[4])
    (victim / rundir.INFO_FILE).rename(victim / "moved.info")
    flushed: list[list[str]] = []
    real_flush = rundir.flush_to_disk
    monkeypatch.setattr(rundir, "flush_to_disk", lambda paths: (flushed.append(list(paths)), real_flush(paths)))
    outcomes = write_through.change_tags_on_disk(run_dirs, ["new", "old"], ["gone"])
    assert flushed == [run_dirs]  # once, after every change
    assert isinstance(outcomes[4], RunFormatError)
    for at, (run_dir, outcome) in enumerate(zip(run_dirs, outcomes, strict=True)):
        if at == 4:
            continue
        assert not isinstance(outcome, Exception)
        before, after, read = outcome
        assert (before, after) == ((["old"], ["new", "old"]) if at == 2 else ([], ["new", "old"]))
        read_at, signature, tags, notes = read
        fresh = write_through.read_curation_now(run_dir, ("tags",))
        assert read_at <= fresh[0] and signature[:2] == fresh[1][:2] and (tags, notes) == (fresh[2], fresh[3]) == (
            [("new",), ("old",)], [])
    assert write_through.change_tags_on_disk(run_dirs[:2], ["new"], [])[0] == (["new", "old"], ["new", "old"], None)
