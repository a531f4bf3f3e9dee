"""Index maintenance as a library: check() finds drift without writing; rebuild() swaps in a fresh index."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from legacy import write_run

from pyhermes import Catalog
from pyhermes.index.maintenance import check, describe_location, rebuild


def _tree(root: Path) -> Path:
    sweep = root / "experiments" / "train_dqn" / "sweep"
    for second in range(4):
        write_run(sweep, start=datetime(2024, 1, 1, 12, 0, second), scores=[1.0, 2.0, 3.0])
    return sweep


def test_check_without_an_index_creates_nothing(tmp_path):
    _tree(tmp_path)
    drift = check(tmp_path)
    assert drift["stale"] is True and len(drift["not_indexed"]) == 4
    assert drift["index"] == "?" and not (tmp_path / ".hermes").exists()


def test_check_finds_new_gone_changed_unreadable_and_odd_runs(tmp_path):
    sweep = _tree(tmp_path)
    Catalog.open(tmp_path)  # indexes the four runs
    clean = check(tmp_path)
    assert clean["stale"] is False and clean["unchanged"] == 4 and clean["problems"] == 0

    runs = sorted(sweep.iterdir())
    shutil.rmtree(runs[0])
    with open(runs[1] / f"{runs[1].name}.scores", "a") as scores:
        scores.write("4.0\n")
    (runs[2] / "hermes.info").unlink()
    (runs[2] / "hermes.info").mkdir()  # cannot be read at all: a problem
    odd = write_run(sweep, start=datetime(2024, 2, 1), info_text=b"commit_hash:\xff\xfe\n")
    drift = check(tmp_path)
    rel = "experiments/train_dqn/sweep/"
    assert drift["gone"] == [rel + runs[0].name]
    assert drift["changed"] == [rel + runs[1].name]
    assert list(drift["problem_paths"]) == [rel + runs[2].name] and drift["problems"] == 1
    assert drift["not_indexed"] == [rel + odd.name]  # odd bytes: readable, with warnings
    assert list(drift["warning_paths"]) == [rel + odd.name]
    assert drift["stale"] is True and drift["unchanged"] == 1
    assert drift["index"] == describe_location(Catalog.open(tmp_path, sync="none").location)
    assert Catalog.open(tmp_path, sync="none").count() == 4  # nothing synced: the gone run stays


def test_rebuild_copies_a_fresh_index_over_the_file_in_place(tmp_path):
    import sqlite3

    _tree(tmp_path)
    catalog = Catalog.open(tmp_path)
    index_file = catalog.location.file
    old_inode = index_file.stat().st_ino
    # Another process's connection, open through the rebuild, reads the new index.
    other = sqlite3.connect(index_file)
    other.execute("DELETE FROM hermes_arg")  # a stale index: its args are gone
    other.commit()
    report, fresh = rebuild(catalog)
    assert report.added == 4 and fresh.count() == 4
    # Same file (copied over in place through SQLite): no connection to it is left stale.
    assert fresh.location.file == index_file and index_file.stat().st_ino == old_inode
    assert other.execute("SELECT COUNT(DISTINCT run_id) FROM hermes_arg").fetchone()[0] == 4
    other.close()
    assert not list(index_file.parent.glob("*.rebuild-*"))


def test_deep_check_reports_a_damaged_file(tmp_path):
    import sqlite3

    from pyhermes.index.store.engine import dispose_engines

    _tree(tmp_path)
    index_file = Catalog.open(tmp_path).location.file
    assert check(tmp_path, deep=True)["stale"] is False  # a sound file: the usual answer
    dispose_engines()
    connection = sqlite3.connect(index_file)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    root_page = connection.execute(
        "SELECT rootpage FROM sqlite_master WHERE name = 'hermes_arg'"
    ).fetchone()[0]
    connection.close()
    with open(index_file, "r+b") as handle:  # garbage over the b-tree page of the exec args
        handle.seek((root_page - 1) * page_size)
        handle.write(b"\x0d\xff\xff\xff" * 64)
    damaged = check(tmp_path, deep=True)
    assert damaged["damaged"] is True and damaged["integrity_check"]
    assert damaged["index"] == str(index_file)
