"""A listed folder merged with the index's runs of it, in path order (pyhermes.index.sync.listing_merge).

A sync that lists a folder streams the index's runs of that folder in path order
beside the sorted listing instead of holding a row per run; these tests check the
merge itself and that the database's order is Python's for every kind of name, on
SQLite and PostgreSQL (a disagreement would show as runs removed and added again).
"""

from __future__ import annotations

import os
import shutil
import sys
from datetime import datetime
from pathlib import Path

import pytest
from legacy import write_run

from pyhermes import Catalog, Experiment
from pyhermes.index.sync.listing_merge import RunChecks, merge_listing

HOUR_AGO = 3600.0
ODD_NAMES = ("Zeta", "alpha", "é-run", "日本", "a.b", "a0", "a-b", "A_b", "z" * 40, "\u00a0space", "émoji-\U0001f600")


def _age(path: Path) -> None:
    import time

    when = time.time() - HOUR_AGO
    for dirpath, _dirnames, filenames in os.walk(path):
        if ".hermes" in dirpath.split(os.sep):
            continue
        for name in filenames:
            os.utime(os.path.join(dirpath, name), (when, when))
        os.utime(dirpath, (when, when))


def _named_runs(folder: Path, names: tuple[str, ...]) -> None:
    for day, name in enumerate(names, start=1):
        run = write_run(folder, start=datetime(2024, 1, day, 12), exec_args=["train", f"-seed {day}"])
        run.rename(folder / name)


class _Checks(RunChecks):
    def __init__(self) -> None:
        super().__init__("/nowhere/", full=True, reread=False, settle_seconds=60.0, now=0.0)
        self.seen: list[str] = []

    def check(self, path, row) -> None:
        self.seen.append(path)


def _row(run_id: int, path: str) -> tuple:
    return (run_id, path, path.rpartition("/")[0], True, True)


def test_merge_tells_known_new_gone_and_other_folders():
    checks = _Checks()
    rows = iter([_row(1, "f/a"), _row(2, "f/b"), _row(3, "f/d"), _row(4, "f/z")])
    forgotten: list[str] = []
    merge = merge_listing(
        "f", [".hermes", "a", "c", "d", "e", "p"], rows,
        is_run=lambda path: path == "f/c", problems={"f/p"}, checks=checks, forget=forgotten.append,
    )
    assert checks.seen == ["f/a", "f/d"]
    assert merge.new == ["f/c", "f/p"] and merge.problems == ["f/p"]
    assert merge.removed == [("f/b", 2), ("f/z", 4)]
    assert merge.others == ["e"]  # .hermes is never a folder of runs
    assert forgotten == ["f/a", "f/b", "f/d", "f/z"]
    assert merge.has("e") and merge.has(".hermes") and not merge.has("b")


def test_rows_out_of_path_order_are_refused():
    rows = iter([_row(1, "f/b"), _row(2, "f/a")])
    with pytest.raises(RuntimeError, match="path order"):
        merge_listing("f", ["c"], rows, is_run=lambda path: False, problems=set(), checks=_Checks())


def test_a_full_sync_of_odd_names_finds_nothing_changed(backend, tmp_path):
    folder = tmp_path / "experiments" / "train" / "sweep"
    names = ODD_NAMES
    _named_runs(folder, names)
    if sys.platform.startswith("linux") and backend == "sqlite":
        os.rename(folder / names[0], os.fsencode(folder) + b"/bad\xffname")
    _age(tmp_path)
    assert len(Experiment.load_all(folder)) == len(names)
    catalog = Catalog.open(folder)
    report = catalog.sync(mode="full", recursive=False)
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 0, len(names))
    shutil.rmtree(folder / "a0")
    write_run(folder, start=datetime(2024, 3, 1, 12), exec_args=["train", "-seed 99"])
    report = catalog.sync(mode="full", recursive=False)
    assert (report.added, report.removed, report.unchanged) == (1, 1, len(names) - 1)
    assert len(Experiment.load_all(folder, sync="full")) == len(names)


def test_a_full_recursive_sync_takes_out_the_runs_of_a_folder_gone_unseen(tmp_path):
    tree = tmp_path / "tree"
    for experiment in ("a", "b"):
        for day in (1, 2, 3):
            write_run(tree / "experiments" / "s" / experiment, start=datetime(2024, 1, day, 12))
    _age(tree)
    assert len(Experiment.load_all(tree, recursive=True)) == 6
    catalog = Catalog.open(tree)
    # Gone with its parent's folder too: no listing of the parent remembers it.
    shutil.rmtree(tree / "experiments" / "s")
    report = catalog.sync(mode="full")
    assert (report.removed, report.unchanged) == (6, 0)
    assert len(Experiment.load_all(tree, recursive=True, sync="full")) == 0


def test_a_quick_sync_of_a_changed_folder_keeps_its_settled_runs(tmp_path):
    folder = tmp_path / "experiments" / "train" / "sweep"
    _named_runs(folder, ODD_NAMES[:5])
    _age(tmp_path)
    assert len(Experiment.load_all(folder)) == 5
    Experiment.load_all(folder, sync="full")
    catalog = Catalog.open(folder)
    write_run(folder, start=datetime(2024, 4, 1, 12))  # the folder changed: a quick sync lists it
    report = catalog.sync(mode="quick", recursive=False)
    assert (report.added, report.removed, report.updated) == (1, 0, 0)
    assert len(Experiment.load_all(folder)) == 6
