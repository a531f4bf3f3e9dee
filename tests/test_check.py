"""pyhermes.index.sync.check: what ``hermes-reindex --check`` reports, the runs on disk against the index.

The index is a real SQLite file (the default ``.hermes/index.sqlite`` of the tree);
:func:`compute_drift` gets what the index holds, as the check does, and must change
neither the index nor the tree.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from legacy import write_run

from pyhermes import Catalog
from pyhermes.index.rules import SIGNATURE_COLUMNS
from pyhermes.index.sync.check import compute_drift

START = datetime(2024, 1, 1, 12)
SWEEP = "experiments/train/sweep"
BASE = "experiments/eval/base"

CLEAN = {
    "added": 0, "updated": 0, "removed": 0, "problems": 0, "problem_paths": {},
    "warnings": 0, "warning_paths": {}, "not_indexed": [], "gone": [], "changed": [],
}


class Tree:
    """Four runs in ``experiments/train/sweep`` and one in ``experiments/eval/base``, indexed."""

    def __init__(self, root: Path, **extra: Any) -> None:
        self.root = root
        self.runs = [write_run(root / SWEEP, start=START + timedelta(days=day), scores=[1.0, float(day)])
                     for day in range(4)]
        self.base = write_run(root / BASE, start=START, scores=[5.0])
        self.catalog = Catalog.open(root, **extra)

    def rel(self, run: Path) -> str:
        return run.relative_to(self.root).as_posix()

    def index_rows(self) -> list[tuple]:
        return self.catalog.sql("SELECT * FROM hermes_run ORDER BY path").rows

    def drift(self, scope: str = "", *, reread: bool = False) -> dict[str, Any]:
        """:func:`compute_drift` of ``scope`` given what the index holds (as the check reads it)."""
        stored = {
            row[0]: tuple(row[1:])
            for row in self.catalog.sql(f"SELECT path, {', '.join(SIGNATURE_COLUMNS)} FROM hermes_run").rows
        }
        before = self.index_rows()
        drift = compute_drift(self.catalog.root, scope, stored, self.catalog.problems(),
                              self.catalog.run_warnings(), reread=reread)
        assert self.index_rows() == before  # nothing written
        return drift


def _broken(run: Path) -> None:
    """Make ``run`` unreadable: its hermes.info becomes a folder."""
    (run / "hermes.info").unlink()
    (run / "hermes.info").mkdir()


def test_a_clean_tree_has_no_drift(tmp_path):
    tree = Tree(tmp_path)
    assert tree.catalog.root == tmp_path.resolve()
    assert tree.drift() == {**CLEAN, "unchanged": 5}
    assert tree.drift(reread=True) == {**CLEAN, "unchanged": 5}  # every run read again: all fine
    assert tree.drift(SWEEP) == {**CLEAN, "unchanged": 4}
    assert tree.drift(BASE) == {**CLEAN, "unchanged": 1}


def test_drift_names_new_gone_changed_and_unreadable_runs(tmp_path):
    tree = Tree(tmp_path)
    new = write_run(tmp_path / SWEEP, start=START + timedelta(days=9), scores=[1.0])
    shutil.rmtree(tree.runs[0])
    with open(tree.runs[1] / f"{tree.runs[1].name}.scores", "a") as scores:
        scores.write("7.0\n")
    _broken(tree.runs[2])
    drift = tree.drift()
    assert drift["not_indexed"] == [tree.rel(new)] and drift["added"] == 1
    assert drift["gone"] == [tree.rel(tree.runs[0])] and drift["removed"] == 1
    assert drift["changed"] == [tree.rel(tree.runs[1])] and drift["updated"] == 1
    assert list(drift["problem_paths"]) == [tree.rel(tree.runs[2])] and drift["problems"] == 1
    reason = drift["problem_paths"][tree.rel(tree.runs[2])]
    assert reason.startswith("RunFormatError: ") and "a directory" in reason and "\n" not in reason
    assert drift["unchanged"] == 2  # runs[3] and the base run
    assert drift["warnings"] == 0

    # Only what is below the scope counts.
    shutil.rmtree(tree.base)
    assert tree.drift(BASE) == {**CLEAN, "removed": 1, "gone": [tree.rel(tree.base)], "unchanged": 0}
    assert tree.drift(SWEEP)["gone"] == [tree.rel(tree.runs[0])]

    # A full sync does what the check said it would.
    report = tree.catalog.sync(tmp_path, mode="full", warn=False)
    assert (report.added, report.updated) == (1, 1)
    assert set(report.problem_paths) == set(drift["problem_paths"])
    after = tree.drift()
    assert after["not_indexed"] == after["gone"] == after["changed"] == []
    assert list(after["problem_paths"]) == [tree.rel(tree.runs[2])]  # recorded, still on disk


def test_recorded_problems_are_reported_until_the_run_reads_or_goes(tmp_path):
    broken = write_run(tmp_path / SWEEP, start=START + timedelta(days=20))
    _broken(broken)
    with pytest.warns(UserWarning, match="could not be read"):
        tree = Tree(tmp_path)
    path = tree.rel(broken)
    assert [p for p, _ in tree.catalog.problems()] == [path]
    drift = tree.drift()
    assert list(drift["problem_paths"]) == [path] and drift["problems"] == 1
    assert drift["not_indexed"] == [] and drift["unchanged"] == 5

    os.rmdir(broken / "hermes.info")
    (broken / "hermes.info").write_text("commit_hash:abc\n")  # readable again
    drift = tree.drift()
    assert drift["problem_paths"] == {} and drift["not_indexed"] == [path] and drift["added"] == 1

    shutil.rmtree(broken)
    drift = tree.drift()
    assert drift["gone"] == [path] and drift["removed"] == 0  # it never was in the index
    assert drift["problem_paths"] == {} and drift["problems"] == 0


def test_runs_with_warnings_are_listed_apart_and_are_no_problem(tmp_path):
    odd = write_run(tmp_path / SWEEP, start=START + timedelta(days=30), info_text=b"commit_hash:\xff\xfe\n")
    with pytest.warns(UserWarning, match="read with warnings"):
        tree = Tree(tmp_path)
    path = tree.rel(odd)
    drift = tree.drift()  # as indexed
    assert list(drift["warning_paths"]) == [path] and drift["warnings"] == 1
    assert "Latin-1" in drift["warning_paths"][path][0]
    assert drift["problems"] == 0 and drift["unchanged"] == 6
    assert tree.drift(reread=True)["warning_paths"] == drift["warning_paths"]  # as read now
    assert tree.drift(BASE)["warning_paths"] == {}

    later = write_run(tmp_path / SWEEP, start=START + timedelta(days=31), info_text=b"commit_hash:1\nodd line\n")
    drift = tree.drift()
    assert drift["not_indexed"] == [tree.rel(later)]
    assert sorted(drift["warning_paths"]) == sorted([path, tree.rel(later)])
    assert "without ':'" in drift["warning_paths"][tree.rel(later)][0]

    shutil.rmtree(odd)
    assert path not in tree.drift()["warning_paths"]  # gone: no warnings of it


def test_reread_reads_runs_whose_signature_did_not_change(tmp_path):
    tree = Tree(tmp_path)
    info = tree.runs[3] / "hermes.info"
    status = os.stat(info)
    text = info.read_bytes()
    odd = text.replace(b"commit_hash:", b"commit_has\xff:", 1)  # one byte for another
    assert odd != text and len(odd) == len(text)
    info.write_bytes(odd)
    os.utime(info, ns=(status.st_atime_ns, status.st_mtime_ns))  # the signature is as indexed
    assert tree.drift() == {**CLEAN, "unchanged": 5}  # trusted: the files did not change
    reread = tree.drift(reread=True)
    path = tree.rel(tree.runs[3])
    assert list(reread["warning_paths"]) == [path] and "Latin-1" in reread["warning_paths"][path][0]
    assert reread == {**CLEAN, "unchanged": 5, "warnings": 1, "warning_paths": reread["warning_paths"]}


def test_a_hand_edit_of_tags_or_notes_is_drift(tmp_path):
    tree = Tree(tmp_path)
    (tree.runs[0] / "hermes.tags").write_text("paper\n", encoding="utf-8")
    (tree.runs[1] / "hermes.notes").write_text('{"time": null, "text": "diverged"}\n', encoding="utf-8")
    drift = tree.drift()
    assert drift["changed"] == sorted([tree.rel(tree.runs[0]), tree.rel(tree.runs[1])])
    assert drift["updated"] == 2 and drift["unchanged"] == 3
