"""Many writers, hostile trees, huge files, kills and corruption (see docs/reliability.md).

Every test here runs on a SQLite index and on a real PostgreSQL database (the
``backend`` parameter, tests/conftest.py) unless marked ``sqlite_only``.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from make_corpus import make_corpus
from sqlalchemy import create_engine

from pyhermes import Experiment
from pyhermes.cli import hermes_main, reindex_main
from pyhermes.errors import IndexBusyError, RunFormatError
from pyhermes.index.rules import disk_name, stored_name
from pyhermes.index.run_index import RunFormatProblemsWarning
from pyhermes.index.store import engine as engine_mod
from pyhermes.index.store.engine import (
    BrokenIndexWarning,
    NetworkFilesystemWarning,
    dispose_engines,
    filesystem_type,
    integrity_check,
)
from pyhermes.rundir import RunFormatWarning
from pyhermes.storage import Catalog
from pyhermes.summary import summarize

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


# --------------------------------------------------------------------------- hostile trees

GOOD_INFO = b"commit_hash:abcde\nstart_time:2024_01_01_120000000000\nend_time:2024_01_01_130000000000\n"


def tree_hash(root: Path) -> str:
    """A hash of every name, kind, size and content below ``root`` (links not followed, FIFOs not opened).

    Index folders (``.hermes``) are left out: they are the one thing a sync writes.
    """
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(os.fsencode(root)):
        dirs.sort()
        if b".hermes" in dirs:
            dirs.remove(b".hermes")
        for name in sorted(dirs + files):
            path = os.path.join(folder, name)
            status = os.lstat(path)
            digest.update(path + b"\0" + str(stat.S_IFMT(status.st_mode)).encode())
            if stat.S_ISLNK(status.st_mode):
                digest.update(os.readlink(path))
            elif stat.S_ISREG(status.st_mode):
                digest.update(str(status.st_size).encode())
                with open(path, "rb") as handle:
                    digest.update(handle.read())
    return digest.hexdigest()


def _make_run(folder: Path, name: str | bytes, *, info: bytes | None = GOOD_INFO,
              args: bytes | None = b"--lr 0.1\n", scores: bytes | None = b"1\n2\n3\n") -> Path:
    run = Path(os.fsdecode(os.path.join(os.fsencode(folder), os.fsencode(name))))
    run.mkdir(parents=True)
    if info is not None:
        (run / "hermes.info").write_bytes(info)
    if args is not None:
        (run / "exec_arguments").write_bytes(args)
    if scores is not None:
        (run / f"{run.name}.scores").write_bytes(scores)
    return run


def _load_within(seconds: float, *args, **kwargs):
    """``Experiment.load_all(*args, **kwargs)`` in a thread; fail if it does not end in ``seconds``."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                outcome["runs"] = Experiment.load_all(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"load_all did not finish within {seconds} s"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["runs"]


def _hostile_tree(folder: Path) -> tuple[set[str], set[str], set[str]]:
    """Build runs with every kind of bad file.

    Returns the names of (good runs, runs that load with warnings, runs that are
    problems). A scores file that cannot be read, and odd bytes, are warnings (the
    run loads without a score summary); a ``hermes.info`` or ``exec_arguments``
    that is not a readable regular file makes the run a problem.
    """
    good = {"2024_01_01_120000000000_0_abcde", "-dash", "tab\tname", "bad\udcffname",
            "escape\ufdd0name", "bigline"}
    for name in sorted(good):
        _make_run(folder, name)
    (folder / "bigline" / "bigline.scores").write_bytes(b"1\n" + b"7" * (1 << 20) + b"\n")
    _make_run(folder / "new\nline", "2024_01_02_120000000000_0_abcde")
    (folder / "sub").mkdir()  # a folder, not a run
    warned: set[str] = set()
    bad: set[str] = set()

    def broken(name: str, **files: bytes | None) -> Path:
        bad.add(name)
        return _make_run(folder, name, **files)

    def odd(name: str, **files: bytes | None) -> Path:
        warned.add(name)
        return _make_run(folder, name, **files)

    os.mkfifo(odd("fifo_scores", scores=None) / "fifo_scores.scores")
    os.mkfifo(broken("fifo_args", args=None) / "exec_arguments")
    os.mkfifo(broken("fifo_info", info=None) / "hermes.info")
    os.symlink("/dev/zero", odd("zero_scores", scores=None) / "zero_scores.scores")
    os.symlink("/dev/null", broken("null_args", args=None) / "exec_arguments")
    (odd("dir_scores", scores=None) / "dir_scores.scores").mkdir()
    (broken("dir_info", info=None) / "hermes.info").mkdir()
    sock_run = broken("sock_args", args=None)
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(sock_run / "exec_arguments"))
    finally:
        server.close()
    dangling = broken("dangling_args", args=None)
    os.symlink(dangling / "nowhere", dangling / "exec_arguments")
    os.symlink("loop_scores.scores", odd("loop_scores", scores=None) / "loop_scores.scores")
    os.symlink("hermes.info", broken("loop_info", info=None) / "hermes.info")
    os.symlink("/etc/hostname", broken("outside_info", info=None) / "hermes.info")
    broken("huge_info", info=GOOD_INFO + b"x" * (17 << 20))
    broken("long_key", info=GOOD_INFO + b"k" * 300 + b":v\n")
    odd("random_info", info=GOOD_INFO + b"\xff\xfe" + bytes(range(1, 256)) + b"\n")
    odd("nul_info", info=b"commit_hash:ab\x00cd\n")
    odd("words_scores", scores=b"1\n2\nnot a number\n3\n")
    odd("long_line_scores", scores=b"1\n" + b"x" * (5 << 20) + b"\n")
    return good, warned, bad


def test_a_sync_finishes_on_a_hostile_tree_and_changes_nothing(tmp_path: Path, backend: str) -> None:
    folder = tmp_path / "exp"
    good, warned, bad = _hostile_tree(folder)
    before = tree_hash(tmp_path)
    runs = _load_within(60, folder)
    loaded = {run.identifier for run in runs}
    assert loaded == good | warned
    nested = _load_within(60, folder, recursive=True)
    assert "2024_01_02_120000000000_0_abcde" in {run.identifier for run in nested}
    catalog = Catalog.open(folder, sync="none")
    problems = {disk_name(path).rpartition("/")[2] for path, _ in catalog.problems()}
    assert problems == bad
    noted = {disk_name(path).rpartition("/")[2] for path, _ in catalog.run_warnings()}
    assert noted == warned
    assert all(run.score_summary.count in (0, None) for run in runs if run.identifier.endswith("_scores"))
    weird = next(run for run in runs if run.identifier == "bad\udcffname")
    assert weird.path_to_experiment.is_dir() and weird.exec_args == {"--lr 0.1"}
    assert weird.score_summary.count == 3
    # A full sync, a re-read and --check go through the same tree without an exception.
    assert {run.identifier for run in _load_within(60, folder, sync="full")} == loaded
    code = reindex_main([str(folder), "--reread", "--quiet"])
    assert code == 0
    assert reindex_main([str(folder), "--check", "--quiet"]) == 1  # the bad runs are listed
    assert tree_hash(tmp_path) == before


def test_names_in_any_bytes_show_in_hermes_ls(tmp_path: Path, backend: str, capfdbinary) -> None:
    folder = tmp_path / "exp"
    _make_run(folder, b"caf\xe9-latin1")
    _make_run(folder, "line\nbreak")
    assert {run.identifier for run in Experiment.load_all(folder)} == {"caf\udce9-latin1", "line\nbreak"}
    capfdbinary.readouterr()
    assert hermes_main(["ls", str(folder), "--sync=none", "--format=csv", "--columns=identifier"]) == 0
    out = capfdbinary.readouterr().out
    assert b"caf\xe9-latin1" in out and b"line\nbreak" in out


def test_stored_names_round_trip() -> None:
    for name in ["plain", "caf\udce9", "\ufdd0", "\ufdd0ff", "a\ufdd0\ufdd0b", "\ud800x", "é/ü"]:
        assert disk_name(stored_name(name)) == name
        stored_name(name).encode("utf-8")  # storable as UTF-8 text
    assert stored_name("é/ü") == "é/ü"


def test_a_quick_sync_visits_folders_with_newlines_in_their_names(tmp_path: Path, backend: str) -> None:
    root = tmp_path / "lab"
    odd = root / "two\nlines" / "and\ttab"
    _make_run(odd, "2024_01_01_120000000000_0_abcde")
    assert len(Experiment.load_all(root, recursive=True)) == 1
    hour_ago = time.time() - 3600
    for folder in (root, root / "two\nlines", odd):
        os.utime(folder, (hour_ago, hour_ago))
    Experiment.load_all(root, recursive=True)  # the listings are now trusted
    _make_run(odd, "2024_01_02_120000000000_0_abcde")
    identifiers = {run.identifier for run in Experiment.load_all(root, recursive=True)}
    assert identifiers == {"2024_01_01_120000000000_0_abcde", "2024_01_02_120000000000_0_abcde"}


@pytest.mark.parametrize("which", ["hermes.info", "scores"])
def test_a_symlink_loop_in_an_indexed_run(tmp_path: Path, backend: str, which: str) -> None:
    folder = tmp_path / "exp"
    run = _make_run(folder, "2024_01_01_120000000000_0_abcde")
    _make_run(folder, "2024_01_02_120000000000_0_abcde")
    assert len(Experiment.load_all(folder)) == 2
    target = run / ("hermes.info" if which == "hermes.info" else f"{run.name}.scores")
    target.unlink()
    os.symlink(target.name, target)
    catalog = Catalog.open(folder, sync="none")
    for sync in ("quick", "full"):
        if which == "hermes.info":  # the run cannot be read: a problem
            with pytest.warns(RunFormatProblemsWarning):
                runs = Experiment.load_all(folder, sync=sync)
            assert [r.identifier for r in runs] == ["2024_01_02_120000000000_0_abcde"]
        else:  # its scores cannot be read: it loads, without a score summary, with a warning
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                runs = Experiment.load_all(folder, sync=sync)
            # Warned when read (the first sync); the next one finds nothing changed.
            assert [issubclass(w.category, RunFormatWarning) for w in caught] == (
                [True] if sync == "quick" else []
            )
            assert len(runs) == 2 and runs[0].score_summary.count in (0, None)
    if which == "hermes.info":
        assert reindex_main([str(folder), "--check", "--quiet"]) == 1
        reasons = dict(catalog.problems()).values()
    else:
        assert reindex_main([str(folder), "--check", "--quiet"]) == 0  # warnings alone
        reasons = [" ".join(notes) for _, notes in catalog.run_warnings()]
    assert any("Too many levels of symbolic links" in reason for reason in reasons)


def test_files_swapped_for_fifos_while_syncs_run(tmp_path: Path, backend: str) -> None:
    folder = tmp_path / "exp"
    runs = [_make_run(folder, f"2024_01_0{day}_120000000000_0_abcde") for day in range(1, 6)]
    stop = threading.Event()

    def swap() -> None:
        flip = 0
        while not stop.is_set():
            for run in runs[:3]:
                for name in ("exec_arguments", f"{run.name}.scores"):
                    path = run / name
                    spare = run / f".{name}.swap"
                    if flip:
                        os.mkfifo(spare)
                    else:
                        spare.write_bytes(b"1\n" if name.endswith("scores") else b"--lr 0.1\n")
                    os.replace(spare, path)
            flip ^= 1

    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    try:
        for _ in range(15):
            loaded = _load_within(60, folder, sync="full")
            assert {run.name for run in runs[3:]} <= {run.identifier for run in loaded}
    finally:
        stop.set()
        swapper.join(10)
    assert not swapper.is_alive()
    for run in runs[:3]:  # leave regular files: every run loads again
        (run / "exec_arguments").unlink()
        (run / "exec_arguments").write_bytes(b"--lr 0.1\n")
        (run / f"{run.name}.scores").unlink()
        (run / f"{run.name}.scores").write_bytes(b"1\n")
    assert len(_load_within(60, folder, sync="full")) == 5


# --------------------------------------------------------------------------- fuzzing

_KINDS = ("missing", "good", "bytes", "fifo", "dir", "loop", "dangling", "outside", "nul", "long")


def _place(path: Path, kind: str, payload: bytes, good: bytes) -> None:
    if kind == "good":
        path.write_bytes(good)
    elif kind == "bytes":
        path.write_bytes(payload)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir()
    elif kind == "loop":
        os.symlink(path.name, path)
    elif kind == "dangling":
        os.symlink(path.with_name("gone"), path)
    elif kind == "outside":
        os.symlink("/etc/hostname", path)
    elif kind == "nul":
        path.write_bytes(good[:5] + b"\0" + good[5:])
    elif kind == "long":
        path.write_bytes(good + b"9" * (1 << 20) + b"\n")


_run_spec = st.tuples(
    st.binary(min_size=1, max_size=10).map(lambda raw: raw.replace(b"/", b"_").replace(b"\0", b"_")),
    st.sampled_from(_KINDS), st.sampled_from(_KINDS), st.sampled_from(_KINDS),
    st.binary(max_size=64),
)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=st.lists(_run_spec, min_size=1, max_size=4))
def test_fuzzed_runs_never_break_a_sync(tmp_path: Path, backend: str, specs) -> None:
    folder = Path(tempfile.mkdtemp(dir=tmp_path)) / "exp"
    folder.mkdir()
    run_dirs = []
    for number, (name, info_kind, args_kind, scores_kind, payload) in enumerate(specs):
        run = folder / os.fsdecode(b"%d_" % number + name)
        run.mkdir()
        run_dirs.append(run)
        _place(run / "hermes.info", info_kind, payload, GOOD_INFO)
        _place(run / "exec_arguments", args_kind, payload, b"--lr 0.1\n--flag\n")
        _place(run / f"{run.name}.scores", scores_kind, payload, b"header\n1\n2.5\nnan\n")
    before = tree_hash(folder)
    indexed = _load_within(60, folder)
    # Good runs carry the values a plain scan of the disk reads.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = {run.identifier: run for run in Experiment.load_all(folder, index=False)}
    loaded = {run.identifier for run in indexed}
    assert loaded <= set(plain)  # a plain scan does not read scores: it may load more
    for run in indexed:
        twin = plain[run.identifier]
        assert run.info_dict == twin.info_dict and run.exec_args == twin.exec_args
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RunFormatWarning)  # odd bytes: noted in the index
                expected = twin.score_summary
        except (RunFormatError, OSError):  # an unreadable scores file: loaded, not summarised
            assert run.score_summary is None or not run.score_summary.count
        else:
            assert run.score_summary == expected
    # Every other run directory with a hermes.info is listed as a problem.
    catalog = Catalog.open(folder, sync="none")
    scope = catalog._rel(folder) + "/"  # one PostgreSQL database serves every example
    problems = {
        disk_name(path).rpartition("/")[2]
        for path, _ in catalog.problems()
        if path.startswith(scope) or scope == "/"
    }
    with_info = {run.name for run in run_dirs if os.path.lexists(run / "hermes.info")}
    assert with_info == loaded | problems and not loaded & problems
    assert tree_hash(folder) == before


# --------------------------------------------------------------------------- a busy index


def test_a_locked_index_is_retried_then_named(tmp_path: Path, backend: str, monkeypatch) -> None:
    monkeypatch.setenv("HERMES_BUSY_LIMIT", "2")
    folder = tmp_path / "exp"
    _make_run(folder, "2024_01_01_120000000000_0_abcde")
    assert len(Experiment.load_all(folder)) == 1
    _make_run(folder, "2024_01_02_120000000000_0_abcde")
    catalog = Catalog.open(folder, sync="none")
    if backend == "sqlite":
        holder = subprocess.Popen(
            [sys.executable, "-c", "import sqlite3, sys, time\n"
             "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
             "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(120)",
             str(catalog.location.file)],
            stdout=subprocess.PIPE,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
            with pytest.raises(IndexBusyError, match=rf"stayed busy for 2 s.*process {holder.pid}"):
                Experiment.load_all(folder)
        finally:
            holder.kill()
            holder.wait()
    else:
        engine = create_engine(catalog.engine.url)
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("LOCK TABLE hermes_run IN ACCESS EXCLUSIVE MODE")
                with pytest.raises(IndexBusyError, match=r"stayed busy for 2 s.*session \d+"):
                    Experiment.load_all(folder)
                conn.rollback()
        finally:
            engine.dispose()
    assert len(Experiment.load_all(folder)) == 2  # free again: the sync goes through


# --------------------------------------------------------------------------- kills and corruption


@pytest.mark.parametrize("slice_runs", [None, 60], ids=["one-transaction", "in-slices"])
def test_a_sync_killed_at_random_moments(tmp_path: Path, backend: str, slice_runs: int | None) -> None:
    make_corpus(tmp_path, 400, scores_per_run=200, script="s", experiment="e")
    folder = tmp_path / "experiments" / "s" / "e"
    # In slices: the runs are written 60 at a time, each slice in its own transaction;
    # the sync says when it wrote one, and is killed soon after (between slices or in one).
    # In one transaction: the sync says when it starts writing and when it has written
    # everything (then waits before the commit), and is killed in its writes or before
    # the commit.
    setup = (
        "import time\nfrom pyhermes.index.sync import syncer as sync\nstore = sync.Syncer.store\n"
        "def announced(self, *args, **kwargs):\n    print('writing', flush=True)\n"
        "    store(self, *args, **kwargs)\n    print('written', flush=True)\n    time.sleep(5)\n"
        "sync.Syncer.store = announced\n"
    ) if slice_runs is None else (
        f"from pyhermes.index.sync import syncer as sync\nsync.SLICE_RUNS = {slice_runs}\n"
        "write = sync.Syncer._write_slice\n"
        "def announced(self, *args):\n    write(self, *args)\n    print('slice', flush=True)\n"
        "sync.Syncer._write_slice = announced\n"
    )
    script = (
        f"import sys\nfrom pyhermes import Experiment\n{setup}"
        "Experiment.load_all(sys.argv[1], sync='full')\nprint('done', flush=True)\n"
    )
    chooser = random.Random(9)
    kills = 0
    for _ in range(6):
        # Every run to read again: each sync writes (in slices, or in one transaction).
        for run in sorted(folder.iterdir()):
            if run.name != ".hermes":
                os.utime(run / "hermes.info")
        process = subprocess.Popen([sys.executable, "-c", script, str(folder)], stdout=subprocess.PIPE)
        assert process.stdout is not None
        if slice_runs is None:
            process.stdout.readline()  # "writing"
            if chooser.random() < 0.5:
                process.stdout.readline()  # "written": killed before the commit
            time.sleep(chooser.uniform(0.0, 0.05))
        else:
            process.stdout.readline()  # the first slice is written
            time.sleep(chooser.uniform(0.0, 0.3))
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += process.returncode == -signal.SIGKILL
        # Half of the kills land on a re-read of every run.
        if chooser.random() < 0.5:
            for run in sorted(folder.iterdir())[:50]:
                if run.name != ".hermes":
                    os.utime(run / "hermes.info")
    assert kills >= 1  # at least one sync was killed mid-way
    with warnings.catch_warnings():
        warnings.simplefilter("error", BrokenIndexWarning)
        indexed = Experiment.load_all(folder, sync="full")
    plain = Experiment.load_all(folder, index=False)
    assert [(r.identifier, r.info_dict, r.score_summary) for r in indexed] == [
        (r.identifier, r.info_dict, r.score_summary) for r in plain
    ]
    if backend == "sqlite":
        assert integrity_check(Catalog.open(folder, sync="none").location.file) == []


@pytest.mark.sqlite_only  # corrupts the SQLite file
def test_a_corrupt_page_is_found_set_aside_and_rebuilt(tmp_path: Path, capsys) -> None:
    make_corpus(tmp_path, 300, scores_per_run=20, script="s", experiment="e")
    folder = tmp_path / "experiments" / "s" / "e"
    assert len(Experiment.load_all(folder)) == 300
    file = Catalog.open(folder, sync="none").location.file
    dispose_engines()
    connection = sqlite3.connect(file)
    page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    root_page = connection.execute(
        "SELECT rootpage FROM sqlite_master WHERE name = 'hermes_arg'"
    ).fetchone()[0]
    connection.close()
    assert not os.path.exists(f"{file}-wal") or os.path.getsize(f"{file}-wal") == 0
    with open(file, "r+b") as handle:  # garbage over the b-tree page of the exec args
        handle.seek((root_page - 1) * page_size)
        handle.write(b"\x0d\xff\xff\xff" * 64)
    damaged = hashlib.sha256(file.read_bytes()).hexdigest()
    # --check --deep finds it, and changes nothing.
    assert reindex_main([str(folder), "--check", "--deep"]) == 1
    assert "damaged" in capsys.readouterr().out
    assert hashlib.sha256(file.read_bytes()).hexdigest() == damaged
    # The next open in a process notices it, sets it aside and rebuilds from disk.
    # (quick_check reports the page, or fails on it, by where the b-tree lies in the file.)
    with pytest.warns(BrokenIndexWarning, match="quick_check|not a readable SQLite database"):
        runs = Experiment.load_all(folder)
    assert len(runs) == 300 and len(runs.filter_by_exec_args("--doubledqn")) == len(
        Experiment.load_all(folder, index=False).filter_by_exec_args("--doubledqn")
    )
    assert list(file.parent.glob("index.sqlite.broken-*"))
    assert integrity_check(file) == []
    assert reindex_main([str(folder), "--check", "--deep", "--quiet"]) == 0


# --------------------------------------------------------------------------- network filesystems


def test_mount_tables_are_parsed() -> None:
    mountinfo = (
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        "40 22 0:45 / /data/lab\\040runs rw,relatime shared:20 - nfs4 srv:/lab rw,vers=4.2\n"
        "41 40 0:46 / /data/lab\\040runs/local rw - tmpfs tmpfs rw\n"
    )
    mounts = "srv:/x /mnt/cifs cifs rw 0 0\n/dev/sda1 / ext4 rw 0 0\n"
    from pyhermes.index.store.sqlitefile import _parse_mount_table

    assert _parse_mount_table(mountinfo) == [
        ("/", "ext4"), ("/data/lab runs", "nfs4"), ("/data/lab runs/local", "tmpfs")
    ]
    assert _parse_mount_table(mounts) == [("/mnt/cifs", "cifs"), ("/", "ext4")]
    assert filesystem_type(Path(__file__)) is not None  # this machine's table is read


@pytest.mark.sqlite_only  # the SQLite journal
def test_no_wal_and_one_warning_on_a_network_filesystem(tmp_path: Path, monkeypatch) -> None:
    table = tmp_path / "mountinfo"
    real = os.path.realpath(tmp_path)
    table.write_text(
        "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
        f"40 22 0:45 / {real}/lab rw - nfs4 srv:/lab rw\n"
    )
    from pyhermes.index.store import sqlitefile

    monkeypatch.setattr(sqlitefile, "MOUNT_TABLES", (str(table),))
    folder = tmp_path / "lab" / "exp"
    _make_run(folder, "2024_01_01_120000000000_0_abcde")
    local = tmp_path / "local"
    _make_run(local, "2024_01_01_120000000000_0_abcde")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            assert len(Experiment.load_all(folder)) == 1
            dispose_engines()
        assert len(Experiment.load_all(local)) == 1
    network = [w for w in caught if issubclass(w.category, NetworkFilesystemWarning)]
    assert len(network) == 1 and "PostgreSQL" in str(network[0].message)
    for where, mode in ((folder, "delete"), (local, "wal")):
        engine = Catalog.open(where, sync="none").engine
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == mode


# --------------------------------------------------------------------------- huge scores files


@pytest.mark.sqlite_only  # no index involved
def test_a_ten_million_line_scores_file_in_bounded_memory(tmp_path: Path) -> None:
    block = "".join(f"{value:.5f}\n" for value in np.sin(np.arange(1000)) * 50)
    path = tmp_path / "huge.scores"
    path.write_bytes(b"reward\n" + block.encode() * 10_000)
    assert path.stat().st_size > 80_000_000
    script = (
        "import json, sys\n"
        "from pyhermes import rundir\nfrom pyhermes.summary import summarize_chunks\n"
        "def high_water():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'):\n"
        "            return int(line.split()[1]) * 1024\n"
        "before = high_water()\n"
        "summary = summarize_chunks(rundir.iter_scores(sys.argv[1]))\n"
        "print(json.dumps({'grown': high_water() - before, 'summary': summary.as_dict()}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    assert measured["grown"] < 200 * 1024 * 1024, measured["grown"]
    values = np.tile(np.array(block.split(), dtype=np.float64), 10_000)
    expected = summarize(values).as_dict()
    got = measured["summary"]
    for name in ("count", "first", "last", "min", "max", "argmax", "final_mean", "best_window_mean"):
        assert got[name] == expected[name], name
    for name in ("mean", "std"):
        assert got[name] == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name


@pytest.mark.sqlite_only  # the SQLite file's check
def test_quick_check_runs_only_for_a_state_no_pyhermes_writer_recorded(tmp_path: Path, monkeypatch) -> None:
    """A pyhermes commit records the state it leaves (so does closing the last connection,
    which checkpoints): the next process does not check the whole file again. A write by
    another program leaves a state nobody recorded: the next opener checks it."""
    folder = tmp_path / "exp"
    run = _make_run(folder, "2024_01_01_120000000000_0_abcde")
    hour_ago = time.time() - 3600
    for path in (*run.iterdir(), run):
        os.utime(path, (hour_ago, hour_ago))
    assert len(Experiment.load_all(folder)) == 1
    os.utime(folder, (hour_ago, hour_ago))  # a settled tree: a quick sync writes nothing
    assert len(Experiment.load_all(folder)) == 1
    dispose_engines()
    checks: list[str] = []
    real = engine_mod.quick_check

    def counted(engine):
        checks.append(str(engine.url))
        return real(engine)

    monkeypatch.setattr(engine_mod, "quick_check", counted)
    assert len(Experiment.load_all(folder)) == 1  # the state the last close recorded: no check
    dispose_engines()
    assert checks == []
    _make_run(folder, "2024_01_02_120000000000_0_abcde")
    assert len(Experiment.load_all(folder)) == 2  # this sync writes the file, and records it
    dispose_engines()
    assert len(Experiment.load_all(folder)) == 2
    dispose_engines()
    assert checks == []
    index = folder / ".hermes" / "index.sqlite"
    other = sqlite3.connect(index)  # another program writes, checkpoints and closes
    other.execute("UPDATE hermes_run SET comments = 'by hand'")
    other.commit()
    other.close()
    assert len(Experiment.load_all(folder)) == 2  # a state nobody recorded: checked
    dispose_engines()
    assert len(checks) == 1
    assert len(Experiment.load_all(folder)) == 2  # found sound and recorded: not again
    assert len(checks) == 1


UNPRIVILEGED_UID = 65534  # nobody


def _as_unprivileged(argv: list[str]) -> list[str]:
    """``argv`` run as an unprivileged user: root reads any file whatever its mode."""
    if os.geteuid() != 0:
        return argv
    return ["setpriv", f"--reuid={UNPRIVILEGED_UID}", f"--regid={UNPRIVILEGED_UID}",
            "--clear-groups", *argv]


@pytest.mark.sqlite_only  # reading files; the unprivileged user reaches no PostgreSQL role
def test_files_that_cannot_be_read_are_a_problem_or_a_warning() -> None:
    """A mode-000 hermes.info or exec_arguments makes its run a problem, a scores file a warning."""
    base = Path(tempfile.mkdtemp(prefix="hermes-noperm-"))
    try:
        base.chmod(0o755)
        folder = base / "exp"
        _make_run(folder, "2024_01_01_120000000000_0_abcde")
        unreadable = {
            "noperm_info": "hermes.info",
            "noperm_args": "exec_arguments",
            "noperm_scores": "noperm_scores.scores",
        }
        for name, file in unreadable.items():
            (_make_run(folder, name) / file).chmod(0)
        index_dir = base / "index"
        index_dir.mkdir()
        if os.geteuid() == 0:
            os.chown(index_dir, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
        before = tree_hash(base / "exp")
        code = ("import sys; from pyhermes.cli import reindex_main; "
                "sys.exit(reindex_main(sys.argv[1:]))")
        probe = subprocess.run(_as_unprivileged([sys.executable, "-c", "import pyhermes"]),
                               capture_output=True, text=True)
        if probe.returncode != 0:
            pytest.skip(f"cannot run this Python as an unprivileged user: {probe.stderr[-300:]}")
        index = str(index_dir / "index.sqlite")
        done = subprocess.run(
            _as_unprivileged([sys.executable, "-c", code, str(folder), "--index", index, "--json"]),
            capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["added"] == 2 and report["problems"] == 2 and report["warnings"] == 1
        assert {Path(p).name for p in report["problem_paths"]} == {"noperm_info", "noperm_args"}
        assert {Path(p).name for p in report["warning_paths"]} == {"noperm_scores"}
        check = subprocess.run(
            _as_unprivileged([sys.executable, "-c", code, str(folder), "--index", index,
                              "--check", "--json"]),
            capture_output=True, text=True, timeout=120,
        )
        assert check.returncode == 1, check.stderr  # unreadable runs are problems
        assert json.loads(check.stdout)["problems"] == 2
        assert tree_hash(base / "exp") == before
    finally:
        for path in base.rglob("*"):
            if not path.is_symlink():
                path.chmod(0o700)
        subprocess.run(["rm", "-rf", str(base)], check=False)
