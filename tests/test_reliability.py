"""Many writers, hostile trees, huge files, kills and corruption (see docs/reliability.md).

Every test here runs on a SQLite index and on a real PostgreSQL database (the
``backend`` parameter, tests/conftest.py) unless marked ``sqlite_only``.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import socket
import stat
import threading
import time
import warnings
from pathlib import Path

import pytest

from pyhermes import Experiment
from pyhermes.cli import hermes_main, reindex_main
from pyhermes.index.catalog import Catalog, RunFormatProblemsWarning
from pyhermes.index.sync import disk_name, stored_name

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


def _hostile_tree(folder: Path) -> tuple[set[str], set[str]]:
    """Build runs with every kind of bad file; return (names of good runs, names of bad runs)."""
    good = {"2024_01_01_120000000000_0_abcde", "-dash", "tab\tname", "bad\udcffname",
            "escape\ufdd0name", "bigline", "sub"}
    for name in sorted(good - {"sub"}):
        _make_run(folder, name)
    (folder / "bigline" / "bigline.scores").write_bytes(b"1\n" + b"7" * (1 << 20) + b"\n")
    _make_run(folder / "new\nline", "2024_01_02_120000000000_0_abcde")
    (folder / "sub").mkdir()  # a folder, not a run: good means "listed without a problem"
    bad = set()

    def broken(name: str, **files: bytes | None) -> Path:
        bad.add(name)
        return _make_run(folder, name, **files)

    os.mkfifo(broken("fifo_scores", scores=None) / "fifo_scores.scores")
    os.mkfifo(broken("fifo_args", args=None) / "exec_arguments")
    os.mkfifo(broken("fifo_info", info=None) / "hermes.info")
    os.symlink("/dev/zero", broken("zero_scores", scores=None) / "zero_scores.scores")
    os.symlink("/dev/null", broken("null_args", args=None) / "exec_arguments")
    (broken("dir_scores", scores=None) / "dir_scores.scores").mkdir()
    (broken("dir_info", info=None) / "hermes.info").mkdir()
    sock_run = broken("sock_args", args=None)
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(sock_run / "exec_arguments"))
    finally:
        server.close()
    dangling = broken("dangling_args", args=None)
    os.symlink(dangling / "nowhere", dangling / "exec_arguments")
    os.symlink("loop_scores.scores", broken("loop_scores", scores=None) / "loop_scores.scores")
    os.symlink("hermes.info", broken("loop_info", info=None) / "hermes.info")
    os.symlink("/etc/hostname", broken("outside_info", info=None) / "hermes.info")
    broken("random_info", info=b"\xff\xfe" + bytes(range(256)))
    broken("nul_info", info=b"commit_hash:ab\x00cd\n")
    broken("words_scores", scores=b"1\n2\nnot a number\n3\n")
    broken("long_line_scores", scores=b"1\n" + b"x" * (5 << 20) + b"\n")
    return good, bad


def test_a_sync_finishes_on_a_hostile_tree_and_changes_nothing(tmp_path: Path, backend: str) -> None:
    folder = tmp_path / "exp"
    good, bad = _hostile_tree(folder)
    before = tree_hash(tmp_path)
    runs = _load_within(60, folder)
    loaded = {run.identifier for run in runs}
    assert loaded == good - {"sub"}
    nested = _load_within(60, folder, recursive=True)
    assert "2024_01_02_120000000000_0_abcde" in {run.identifier for run in nested}
    catalog = Catalog.open(folder, sync="none")
    problems = {disk_name(path).rpartition("/")[2] for path, _ in catalog.problems()}
    assert problems == bad
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
    for sync in ("quick", "full"):
        with pytest.warns(RunFormatProblemsWarning):
            runs = Experiment.load_all(folder, sync=sync)
        assert [r.identifier for r in runs] == ["2024_01_02_120000000000_0_abcde"]
    assert reindex_main([str(folder), "--check", "--quiet"]) == 1
    problems = dict(Catalog.open(folder, sync="none").problems())
    assert any("Too many levels of symbolic links" in reason for reason in problems.values())


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
