"""Tests of the guard of a SQLite index shared by many processes (pyhermes.index.store.guard,
pyhermes.index.store.sqlitefile): recorded states, damage confirmed under the lock and handled
in place, replaced files noticed, reading workers that hold no database descriptor,
and the write-through switch. Real SQLite files in tmp_path, real processes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
from sqlalchemy import text

from pyhermes import Experiment
from pyhermes.index.run_index import WRITE_THROUGH_VAR, writes_through
from pyhermes.index.store import engine as engine_mod
from pyhermes.index.store import guard
from pyhermes.index.store.engine import (
    BrokenIndexWarning,
    dispose_engines,
    open_engine,
    resolve_index,
)
from pyhermes.index.store.sqlitefile import BROKEN_KEPT, damage_confirmed, set_aside

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.sqlite_only


def _location(file: Path):
    return resolve_index(file.parent, index=file)


def _broken(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if ".broken-" in p.name and not p.name.endswith(("-wal", "-shm")))


def test_a_commit_records_the_state_it_leaves(tmp_path: Path) -> None:
    file = tmp_path / "i.sqlite"
    engine = open_engine(_location(file))
    assert not guard.needs_check(file)  # a new index is recorded as sound
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO hermes_meta (key, value) VALUES ('x', 'y')"))
    assert guard.recorded_state(file) == guard.file_state(file)
    dispose_engines()  # the last close checkpoints the WAL into the file: recorded too
    assert guard.recorded_state(file) == guard.file_state(file)
    assert not guard.needs_check(file)


def test_a_write_by_another_program_is_not_recorded_and_is_not_blessed_by_ours(tmp_path: Path) -> None:
    file = tmp_path / "i.sqlite"
    open_engine(_location(file))
    dispose_engines()
    other = sqlite3.connect(file)
    other.execute("INSERT INTO hermes_meta (key, value) VALUES ('by', 'hand')")
    other.commit()
    other.close()  # checkpoints: the file itself changed
    assert guard.needs_check(file)
    connection = guard.connect(file, ("PRAGMA busy_timeout=1000",))
    connection.execute("INSERT INTO hermes_meta (key, value) VALUES ('after', 'it')")
    connection.commit()  # the file was not in its recorded state before: nothing recorded
    assert guard.needs_check(file)
    guard.close_recorded(file, [connection])
    assert guard.needs_check(file)


def test_a_damage_that_does_not_repeat_moves_nothing(tmp_path: Path) -> None:
    file = tmp_path / "i.sqlite"
    open_engine(_location(file))
    dispose_engines()
    assert damage_confirmed(file) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert set_aside(file, lambda: damage_confirmed(file), engine_mod._fresh_schema) is None
    assert _broken(tmp_path) == []


def test_damage_is_copied_aside_and_the_file_reset_in_place(tmp_path: Path) -> None:
    file = tmp_path / "i.sqlite"
    engine = open_engine(_location(file))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO hermes_meta (key, value) VALUES ('x', 'y')"))
    inode = file.stat().st_ino
    reader = sqlite3.connect(file)  # another process's connection, open throughout
    with pytest.warns(BrokenIndexWarning, match="set aside"):
        copy = set_aside(file, lambda: "damaged on purpose", engine_mod._fresh_schema)
    assert copy is not None and _broken(tmp_path) == [copy]
    assert file.stat().st_ino == inode  # reset in place: no connection is left on a dead file
    assert reader.execute("SELECT value FROM hermes_meta WHERE key = 'x'").fetchall() == []
    assert sqlite3.connect(copy).execute("SELECT value FROM hermes_meta WHERE key = 'x'").fetchall() == [("y",)]
    with engine.connect() as conn:  # the engine goes on, on the fresh index
        assert conn.execute(text("SELECT COUNT(*) FROM hermes_run")).scalar() == 0
    reader.close()
    assert not guard.needs_check(file)


def test_at_most_two_copies_are_kept(tmp_path: Path) -> None:
    file = tmp_path / "i.sqlite"
    open_engine(_location(file))
    copies = []
    for _ in range(BROKEN_KEPT + 2):
        with pytest.warns(BrokenIndexWarning):
            copies.append(set_aside(file, lambda: "damaged on purpose", engine_mod._fresh_schema))
        time.sleep(0.01)
    assert _broken(tmp_path) == sorted(copies[-BROKEN_KEPT:])


def test_a_replaced_file_is_noticed_and_its_connections_never_closed(tmp_path: Path) -> None:
    """A file renamed over the index (by hand, say): the engine's connections to the old one
    are abandoned (closed, the last one would delete the new file's -wal by name), and the
    next transaction runs on the new file."""
    file = tmp_path / "i.sqlite"
    engine = open_engine(_location(file))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO hermes_meta (key, value) VALUES ('old', '1')"))
    other = tmp_path / "other.sqlite"
    other_engine = open_engine(_location(other))
    with other_engine.begin() as conn:
        conn.execute(text("INSERT INTO hermes_meta (key, value) VALUES ('new', '1')"))
    dispose_engines()
    engine = open_engine(_location(file))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM hermes_meta WHERE key = 'old'")).scalar() == "1"
    for suffix in ("-wal", "-shm"):
        Path(f"{file}{suffix}").unlink(missing_ok=True)
    os.replace(other, file)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM hermes_meta WHERE key = 'new'")).scalar() == "1"
    assert guard._ABANDONED, "the connection to the replaced file was closed"


def test_workers_started_after_a_connection_hold_no_database_descriptor(tmp_path: Path) -> None:
    """Once a process has opened a connection, reading workers come from a forkserver and
    inherit none of its descriptors; each of them dies with its parent."""
    script = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        from pyhermes.index.sync import parallel
        from pyhermes.index.store import guard
        from pyhermes.index.store.engine import open_engine, resolve_index
        file = Path({str(tmp_path / 'i.sqlite')!r})
        open_engine(resolve_index(file.parent, index=file))
        assert guard.connection_opened()
        pool = parallel._pool(2)
        pids = list(pool.submit(os.getpid).result() for _ in range(4))
        for pid in set(pids) - {{os.getpid()}}:
            links = [os.readlink(f"/proc/{{pid}}/fd/" + fd) for fd in os.listdir(f"/proc/{{pid}}/fd")]
            held = [link for link in links if "i.sqlite" in link]
            assert not held, held
        print(pool._mp_context.get_start_method())
        pool.shutdown()
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "forkserver"


def test_write_through_is_off_by_default_on_a_network_filesystem(tmp_path: Path, monkeypatch) -> None:
    from pyhermes.index.store import sqlitefile

    table = tmp_path / "mountinfo"
    real = os.path.realpath(tmp_path)
    table.write_text(f"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n40 22 0:45 / {real}/lab rw - nfs4 srv:/lab rw\n")
    monkeypatch.setattr(sqlitefile, "MOUNT_TABLES", (str(table),))
    monkeypatch.delenv(WRITE_THROUGH_VAR, raising=False)
    local, network = _location(tmp_path / "local" / "i.sqlite"), _location(tmp_path / "lab" / "i.sqlite")
    assert writes_through(local) and not writes_through(network)
    monkeypatch.setenv(WRITE_THROUGH_VAR, "1")
    assert writes_through(network)
    monkeypatch.setenv(WRITE_THROUGH_VAR, "off")
    assert not writes_through(local)


def test_with_write_through_off_a_new_run_waits_for_the_next_sync(tmp_path: Path, monkeypatch) -> None:
    tmp_path.joinpath("runs").mkdir()
    assert len(Experiment.load_all(tmp_path, recursive=True)) == 0  # the index exists
    monkeypatch.setenv(WRITE_THROUGH_VAR, "0")
    run = Experiment.create(tmp_path / "runs", "train", "sweep", ["-lr", "0.1"])
    run.finish()
    folder = run.path_to_experiment.parent
    assert len(Experiment.load_all(folder, sync="none")) == 0
    assert len(Experiment.load_all(folder)) == 1
    monkeypatch.setenv(WRITE_THROUGH_VAR, "1")
    Experiment.create(tmp_path / "runs", "train", "sweep", ["-lr", "0.2"]).finish()
    assert len(Experiment.load_all(folder, sync="none")) == 2


def _fresh_process(code: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120, env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr
    return done.stdout.strip()


def test_a_live_lab_costs_a_fresh_process_no_database_write(tmp_path: Path) -> None:
    """Runs a job stored itself (write-through) and running jobs read moments ago: a fresh
    process's quick check finds nothing to sync, and so imports no SQLAlchemy."""
    with Experiment.create(tmp_path, "train", "sweep", ["-lr", "0.1"]) as first:
        first.append_scores(1.0, 2.0)
    folder = first.path_to_experiment.parent
    Experiment.load_all(folder)
    dispose_engines()
    running = Experiment.create(tmp_path, "train", "sweep", ["-lr", "0.2"])  # stored by write-through
    with Experiment.create(tmp_path, "train", "sweep", ["-lr", "0.3"]):  # a new run, finished
        pass
    dispose_engines()
    code = f"""
        import sys
        from pyhermes import Experiment
        print(len(Experiment.load_all({str(folder)!r})), "sqlalchemy" in sys.modules)
    """
    assert _fresh_process(code) == "3 False"
    scores = running.path_to_experiment / f"{running.identifier}.scores"
    with open(scores, "a") as handle:  # the running job writes a line, as the original hermes did
        handle.write("1.5\n")
    assert _fresh_process(code) == "3 False"  # read moments ago: not read again yet
    assert _fresh_process(code, HERMES_LIVE_REFRESH="0") == "3 True"  # changed: read again


def test_a_run_whose_job_is_storing_it_is_waited_for_not_synced(tmp_path: Path, monkeypatch) -> None:
    """A quick check that meets a run written moments ago looks again a few ms later: the
    job's write-through has stored it by then. A run nobody stores is still found."""
    import shutil
    import threading

    from pyhermes.index.run_index import RunIndex
    from pyhermes.index.store.location import resolve_index
    from pyhermes.index.store.sql_reader import open_sqlite_reader
    from pyhermes.index.sync import unchanged
    from pyhermes.index.sync.unchanged import nothing_to_sync

    monkeypatch.setattr(unchanged, "WRITER_PAUSES", (0.5, 1.0, 2.0))  # ample on a busy machine
    first = Experiment.create(tmp_path, "train", "sweep", ["-lr 0.1"])
    first.finish()
    folder = first.path_to_experiment.parent
    Experiment.load_all(folder)
    dispose_engines()
    location = resolve_index(folder)
    reader, root = open_sqlite_reader(location)
    assert nothing_to_sync(reader, root, "", False)

    being_stored = folder / "2099_01_01_000000000000_0_store"
    shutil.copytree(first.path_to_experiment, being_stored)
    catalog = RunIndex(open_engine(location), root, location)
    threading.Timer(0.005, catalog.upsert, args=(being_stored,)).start()
    assert nothing_to_sync(reader, root, "", False)  # stored while it looked again

    shutil.copytree(first.path_to_experiment, folder / "2099_01_02_000000000000_0_nobody")
    assert not nothing_to_sync(reader, root, "", False)


def test_a_folder_listed_again_by_the_quick_check_is_stored_for_the_next_process(tmp_path: Path) -> None:
    """A run a job stored itself changes its folder: the next quick check lists the folder,
    finds what the index holds, and stores that listing; the check after it lists nothing."""
    import time

    from pyhermes.index.store.location import resolve_index
    from pyhermes.index.store.sql_reader import open_sqlite_reader
    from pyhermes.index.sync.unchanged import nothing_to_sync
    from pyhermes.storage import Catalog

    Experiment.create(tmp_path, "train", "sweep", ["-lr 0.1"]).finish()
    folder = next((tmp_path / "experiments" / "train").iterdir())
    Experiment.load_all(folder)
    time.sleep(2.1)  # past the racy window of a listing
    Experiment.create(tmp_path, "train", "sweep", ["-lr 0.2"]).finish()  # written through
    dispose_engines()
    time.sleep(2.1)
    reader, root = open_sqlite_reader(resolve_index(folder))
    relisted: list = []
    assert nothing_to_sync(reader, root, "", False, relisted) and [path for path, *_ in relisted] == [""]
    Catalog.open(folder)  # the quick check stores the listing
    dispose_engines()
    again: list = []
    assert nothing_to_sync(reader, root, "", False, again) and again == []
