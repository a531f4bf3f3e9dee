"""pyhermes.curation: archive, unarchive, garbage collection and the trash, on real trees.

Every round trip runs on both index backends (the ``backend`` fixture) and checks
that the index after each step equals a rebuild from disk
(:func:`assert_index_is_a_rebuild`). Runs are written by the independent legacy
writer (``tests/legacy.py``) and aged an hour, so that none counts as running
unless a test makes it so; live writers are real child processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from legacy import write_run

from pyhermes import Catalog, Experiment, curation
from pyhermes.errors import HermesError, UnknownKeyError
from pyhermes.index.maintenance import rebuild

SWEEP = Path("experiments") / "train" / "sweep"
START = datetime(2024, 1, 1, 12)
TRACEBACK = 'Traceback (most recent call last):\n  File "train.py", line 3, in <module>\nRuntimeError: boom\n'


def age(root: Path, seconds: float = 3600.0) -> None:
    """Set the mtime of everything below ``root`` (but the index) ``seconds`` back."""
    when = time.time() - seconds
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if name != ".hermes"]
        for name in (*filenames, *dirnames):
            os.utime(os.path.join(dirpath, name), (when, when), follow_symlinks=False)


def make_tree(root: Path, runs: int = 6) -> list[Path]:
    """``runs`` finished runs with scores and ``-lr 0.1`` ... in ``root/experiments/train/sweep``, aged."""
    made = [
        write_run(root / SWEEP, start=START + timedelta(hours=n), scores=[1.0, float(n)],
                  exec_args=["train", f"-lr 0.{n + 1}"] + (["--doubledqn"] if n % 2 else []))
        for n in range(runs)
    ]
    age(root)
    return made


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file below ``root`` but the index, by relative path."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if name != ".hermes"]
        for name in filenames:
            path = os.path.join(dirpath, name)
            status = os.lstat(path)
            found[os.path.relpath(path, root)] = (status.st_size, status.st_mtime_ns)
    return found


def index_state(catalog: Any) -> dict[str, list[tuple[Any, ...]]]:
    """What the index holds about the runs, by path (no ids, no read times)."""
    def rows(sql: str) -> list[tuple[Any, ...]]:
        return catalog.sql(sql).rows

    by_path = "JOIN hermes_run r ON r.id = x.run_id ORDER BY r.path"
    return {
        "runs": rows(
            "SELECT path, parent, identifier, finished, start_time, end_time, comments, score_count, "
            "score_final_mean, info_size, info_mtime_ns, args_size, args_mtime_ns, scores_size, "
            "scores_mtime_ns FROM hermes_run ORDER BY path"
        ),
        "args": rows(f"SELECT r.path, x.position, x.raw FROM hermes_arg x {by_path}, x.position"),
        "info": rows(f"SELECT r.path, x.key, x.value FROM hermes_info x {by_path}, x.key"),
        "tags": rows(f"SELECT r.path, x.tag FROM hermes_tag x {by_path}, x.tag"),
        "notes": rows(f"SELECT r.path, x.position, x.text FROM hermes_note x {by_path}, x.position"),
        "problems": rows("SELECT path FROM hermes_problem ORDER BY path"),
    }


def assert_index_is_a_rebuild(root: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Assert that the index serving ``root`` holds what a rebuild from disk holds; return it."""
    catalog = Catalog.open(root, sync="none")
    before = index_state(catalog)
    _, fresh = rebuild(catalog)
    assert index_state(fresh) == before
    return before


def identifiers(items: Any) -> list[str]:
    """The sorted identifiers of runs, run directories or candidates."""
    names = []
    for item in items:
        if isinstance(item, Path):
            names.append(item.name)
        else:
            names.append(item.identifier if hasattr(item, "identifier") else item.run.identifier)
    return sorted(names)


# --------------------------------------------------------------------------- ages and activity


def test_parse_age() -> None:
    assert curation.parse_age("7d") == 7 * 86400
    assert curation.parse_age("12h") == 12 * 3600
    assert curation.parse_age(" 90 m ") == 5400
    assert curation.parse_age("1.5w") == 1.5 * 604800
    assert curation.parse_age("30S") == 30
    for bad in ("7", "d", "7x", "-1d", "7 days", ""):
        with pytest.raises(ValueError, match="a number and a unit"):
            curation.parse_age(bad)


def test_running_needs_a_recent_file_and_no_end_time(tmp_path: Path) -> None:
    finished = write_run(tmp_path, start=START, scores=[1.0])
    unfinished = write_run(tmp_path, start=START + timedelta(hours=1), scores=[1.0], finished=False)
    # Just written: the unfinished run is running, the finished one is not.
    assert curation.running(Experiment.load(unfinished))
    assert not curation.running(Experiment.load(finished))
    reason = curation.running_reason(unfinished)
    assert reason is not None and reason.endswith("s ago and not finished") and reason.startswith("written ")
    age(tmp_path)
    assert not curation.running(Experiment.load(unfinished))
    assert curation.running_reason(unfinished) is None


# --------------------------------------------------------------------------- archive


def test_archive_and_unarchive_round_trip(tmp_path: Path, backend: str) -> None:
    root = tmp_path / "root"
    runs = make_tree(root)
    original = tree(root)
    catalog = Catalog.open(root)
    chosen = catalog.find("-lr > 0.3", order_by="path")
    assert len(chosen) == 3
    moved = curation.archive_runs(root, chosen, index=catalog)
    assert [item.refused for item in moved] == [None] * 3
    for item in moved:
        rel = item.source.relative_to(root.resolve())
        assert item.target == root.resolve() / ".archive" / rel
        assert item.target.is_dir() and not item.source.exists()
    # Gone from the live views, there in the archive; the index is what a rebuild gives.
    assert identifiers(Experiment.load_all(root, recursive=True)) == identifiers(runs[:3])
    assert Catalog.open(root).count() == 3
    assert identifiers(curation.archived_runs(root)) == identifiers(runs[3:])
    assert identifiers(curation.archived_runs(root, "--doubledqn")) == identifiers([runs[3], runs[5]])
    assert identifiers(Experiment.load_all(root, archived=True)) == identifiers(runs[3:])
    state = assert_index_is_a_rebuild(root)
    assert len(state["runs"]) == 3
    # Back again: the same files in the same places, the index as before.
    back = curation.unarchive_runs(root, curation.archived_runs(root))
    assert [item.refused for item in back] == [None] * 3
    assert curation.archived_runs(root) == []
    assert tree(root) == original
    assert len(assert_index_is_a_rebuild(root)["runs"]) == 6
    assert Catalog.open(root, sync="none").count() == 6


def test_archive_without_an_index_and_with_index_false(tmp_path: Path) -> None:
    runs = make_tree(tmp_path, 2)
    moved = curation.archive_runs(tmp_path, [Experiment.load(runs[0])])
    assert moved[0].target is not None and not (tmp_path / ".hermes").exists()  # none made
    Catalog.open(tmp_path)
    moved = curation.archive_runs(tmp_path, [Experiment.load(runs[1])], index=False)
    assert moved[0].target is not None
    assert Catalog.open(tmp_path, sync="none").count() == 1  # left alone: the next sync catches up
    assert Catalog.open(tmp_path).count() == 0


def test_archive_refuses_a_running_run_and_moves_the_others(tmp_path: Path) -> None:
    runs = make_tree(tmp_path, 2)
    live = write_run(tmp_path / SWEEP, start=START + timedelta(days=1), scores=[1.0], finished=False)
    catalog = Catalog.open(tmp_path)
    moved = curation.archive_runs(tmp_path, catalog.find(), index=catalog)
    refused = {item.run.identifier: item.refused for item in moved if item.refused}
    assert list(refused) == [live.name]
    assert refused[live.name].startswith("written ") and refused[live.name].endswith("s ago and not finished")
    assert live.is_dir() and not all(run.exists() for run in runs)
    assert identifiers(Catalog.open(tmp_path).find()) == [live.name]


def test_archive_never_overwrites_and_reports_runs_moved_meanwhile(tmp_path: Path) -> None:
    runs = make_tree(tmp_path, 3)
    taken = tmp_path / ".archive" / SWEEP / runs[0].name
    taken.mkdir(parents=True)  # an empty folder: a plain rename would replace it
    experiments = [Experiment.load(run) for run in runs]
    moved = curation.archive_runs(tmp_path, experiments)
    assert moved[0].target is None and "exists already" in (moved[0].refused or "")
    assert runs[0].is_dir() and list(taken.iterdir()) == []
    assert [item.refused for item in moved[1:]] == [None, None]
    # The same runs again, as a second process would: reported, not raised.
    again = curation.archive_runs(tmp_path, experiments[1:])
    assert [item.refused for item in again] == ["already moved by another process"] * 2


def test_no_move_leads_through_a_symlink_or_out_of_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    runs = make_tree(root, 2)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / ".archive").symlink_to(outside)
    moved = curation.archive_runs(root, [Experiment.load(run) for run in runs])
    assert all(item.target is None and "symbolic link" in (item.refused or "") for item in moved)
    assert list(outside.iterdir()) == [] and all(run.is_dir() for run in runs)
    (root / ".archive").unlink()
    # A run outside ROOT is refused; a folder inside .archive that is a link is not walked through.
    other = write_run(tmp_path / "elsewhere", start=START, scores=[1.0])
    age(tmp_path)
    assert "not below" in (curation.archive_runs(root, [Experiment.load(other)])[0].refused or "")
    (root / ".archive").mkdir()
    (root / ".archive" / "experiments").symlink_to(outside)
    moved = curation.archive_runs(root, [Experiment.load(runs[0])])
    assert "symbolic link" in (moved[0].refused or "") and list(outside.iterdir()) == []


def test_unarchive_refuses_a_taken_place(tmp_path: Path) -> None:
    runs = make_tree(tmp_path, 2)
    curation.archive_runs(tmp_path, [Experiment.load(run) for run in runs])
    runs[0].mkdir()  # someone made a folder where the run was
    back = curation.unarchive_runs(tmp_path, curation.archived_runs(tmp_path))
    assert "exists already" in (back[0].refused or "") and back[1].refused is None
    assert identifiers(curation.archived_runs(tmp_path)) == [runs[0].name]


ARCHIVER = """
import json, sys, time
from pathlib import Path
from pyhermes import Experiment
from pyhermes.curation import archive_runs
root, start, names = Path(sys.argv[1]), float(sys.argv[2]), set(sys.argv[3].split(","))
runs = [run for run in Experiment.load_all(root, recursive=True, index=False) if run.identifier in names]
while time.time() < start:
    time.sleep(0.001)
moved = archive_runs(root, runs)
print(json.dumps([[item.run.identifier, item.target is not None, item.refused] for item in moved]))
"""


def test_two_processes_archiving_overlapping_sets(tmp_path: Path, backend: str) -> None:
    runs = make_tree(tmp_path, 40)
    Catalog.open(tmp_path)
    names = [run.name for run in runs]
    start = time.time() + 1.5
    children = [
        subprocess.Popen([sys.executable, "-c", ARCHIVER, str(tmp_path), str(start), ",".join(part)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        for part in (names[:30], names[10:])
    ]
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert "Traceback" not in err
        results.append(json.loads(out))
    moved_by = {name: [] for name in names}
    for result in results:
        for name, moved, refused in result:
            if moved:
                moved_by[name].append(1)
            else:
                assert refused in ("already moved by another process",
                                   "no longer there (moved or removed by another process)")
    assert all(len(times) == 1 for times in moved_by.values())  # each run moved exactly once
    for run in runs:
        archived = tmp_path / ".archive" / SWEEP / run.name
        assert archived.is_dir() != run.exists()
        assert archived.is_dir() and (archived / "hermes.info").is_file()
    assert Catalog.open(tmp_path).count() == 0
    assert assert_index_is_a_rebuild(tmp_path)["runs"] == []


# --------------------------------------------------------------------------- garbage collection


def gc_tree(root: Path) -> dict[str, Path]:
    """One run of each kind below ``root``, aged an hour (then a live one, written now)."""
    runs = {
        "good": write_run(root / SWEEP, start=START, scores=[1.0, 2.0]),
        "crashed": write_run(root / SWEEP, start=START + timedelta(days=1), scores=[1.0], finished=False),
        "traceback": write_run(root / SWEEP, start=START + timedelta(days=2), scores=[1.0], finished=False,
                               stderr="warming up\n" + TRACEBACK + "\n"),
        "empty": write_run(root / SWEEP, start=START + timedelta(days=3), scores=None),
        "header_only": write_run(root / SWEEP, start=START + timedelta(days=4), scores=[], header="score"),
        "finished_traceback": write_run(root / SWEEP, start=START + timedelta(days=5), scores=[1.0],
                                        stderr=TRACEBACK),
        "noise": write_run(root / SWEEP, start=START + timedelta(days=6), scores=[1.0], finished=False,
                           stderr="Traceback (most recent call last):\nbut then it went on\n"),
    }
    age(root)
    runs["live"] = write_run(root / SWEEP, start=datetime.now(), scores=None, finished=False)
    return runs


def dir_bytes(run: Path) -> int:
    return sum(path.stat().st_size for path in run.rglob("*") if path.is_file())


def test_gc_candidates(tmp_path: Path, backend: str) -> None:
    runs = gc_tree(tmp_path)
    before = tree(tmp_path)
    found = {candidate.run.identifier: candidate for candidate in curation.gc_candidates(tmp_path)}
    kinds = {name: found[run.name].reason for name, run in runs.items() if run.name in found}
    assert kinds == {"crashed": "crashed", "traceback": "traceback", "empty": "empty",
                     "header_only": "empty", "noise": "crashed",
                     "finished_traceback": "traceback"}  # ended by Experiment's with-block after a crash
    for name in kinds:
        assert found[runs[name].name].bytes == dir_bytes(runs[name]) > 0
    assert tree(tmp_path) == before  # listing changes nothing
    # A crash limit longer than the silence: only the traceback and the empty runs.
    later = curation.gc_candidates(tmp_path, crash_after=curation.parse_age("2h"))
    assert sorted(c.reason for c in later) == ["empty", "empty", "traceback", "traceback"]
    # --where and --older-than narrow the runs.
    assert identifiers(curation.gc_candidates(tmp_path, "finished")) == identifiers(
        [runs["empty"], runs["header_only"], runs["finished_traceback"]])
    with pytest.raises(UnknownKeyError, match="--no-such-flag"):
        curation.gc_candidates(tmp_path, "--no-such-flag")
    cutoff = datetime.now() - (START + timedelta(days=2, hours=12))
    dated = curation.gc_candidates(tmp_path, older_than=cutoff.total_seconds())
    assert identifiers(dated) == sorted([runs["crashed"].name, runs["traceback"].name])
    assert identifiers(curation.gc_candidates(tmp_path, older_than="1s")) == identifiers(found.values())


def test_trash_and_purge_round_trip(tmp_path: Path, backend: str) -> None:
    runs = gc_tree(tmp_path)
    catalog = Catalog.open(tmp_path)
    candidates = curation.gc_candidates(tmp_path, index=catalog)
    others = {path: value for path, value in tree(tmp_path).items()
              if not any(path.startswith(str(SWEEP / c.run.identifier)) for c in candidates)}
    moved = curation.trash_runs(tmp_path, [c.run for c in candidates], index=catalog)
    assert [item.refused for item in moved] == [None] * len(candidates)
    assert all(item.target is not None and ".trash" in item.target.parts for item in moved)
    state = assert_index_is_a_rebuild(tmp_path)
    assert sorted(Path(row[0]).name for row in state["runs"]) == sorted(
        runs[name].name for name in ("good", "live"))
    assert curation.gc_candidates(tmp_path) == []
    assert curation.trash_size(tmp_path) == (len(candidates), sum(c.bytes for c in candidates))
    assert curation.purge_trash(tmp_path) == (len(candidates), sum(c.bytes for c in candidates))
    assert list((tmp_path / ".trash").iterdir()) == []
    assert tree(tmp_path) == others  # nothing else touched
    assert curation.purge_trash(tmp_path) == (0, 0)
    assert_index_is_a_rebuild(tmp_path)


def test_purge_never_leaves_the_trash(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("precious")
    (root / ".trash").symlink_to(outside)
    with pytest.raises(HermesError, match="symbolic link"):
        curation.purge_trash(root)
    with pytest.raises(HermesError, match="symbolic link"):
        curation.trash_size(root)
    (root / ".trash").unlink()
    (root / ".trash" / "sub").mkdir(parents=True)
    (root / ".trash" / "link").symlink_to(outside)
    (root / ".trash" / "sub" / "link").symlink_to(outside / "keep.txt")
    (root / ".trash" / "sub" / "file").write_text("12345")
    assert curation.purge_trash(root) == (0, 5)
    assert (outside / "keep.txt").read_text() == "precious"
    assert list((root / ".trash").iterdir()) == []
    assert curation.purge_trash(root) == (0, 0)
    with pytest.raises(FileNotFoundError):
        curation.purge_trash(tmp_path / "missing")


WRITER = """
import sys, time
path = sys.argv[1]
print("ready", flush=True)
while True:
    with open(path, "a") as handle:
        handle.write("1.0\\n")
    time.sleep(0.2)
"""


@contextmanager
def live_writer(scores: Path) -> Iterator[None]:
    """A child process appending to ``scores`` every 0.2 s, running until the block ends;
    the block starts once the file was written within the last second."""
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(scores)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        deadline = time.time() + 10
        while not scores.exists() or time.time() - scores.stat().st_mtime > 1:
            assert time.time() < deadline
            time.sleep(0.05)
        yield
    finally:
        writer.kill()
        writer.wait()


def test_gc_never_touches_a_run_a_live_writer_appends_to(tmp_path: Path, backend: str) -> None:
    run = write_run(tmp_path / SWEEP, start=START, scores=None, finished=False)
    age(tmp_path, 7200)
    catalog = Catalog.open(tmp_path)  # the index sees an old, unfinished, empty run
    with live_writer(run / f"{run.name}.scores"):
        for _ in range(3):
            assert curation.gc_candidates(tmp_path, index=catalog) == []
            moved = curation.trash_runs(tmp_path, catalog.find(), index=catalog)
            assert moved[0].target is None and "not finished" in (moved[0].refused or "")
            moved = curation.archive_runs(tmp_path, catalog.find(), index=catalog)
            assert moved[0].target is None
            time.sleep(0.3)
        assert run.is_dir() and not (tmp_path / ".trash").exists()
    assert catalog.count() == 1
