"""pyhermes.index.sync.unchanged: telling, with sqlite3 alone, that a quick sync would change nothing.

Each test indexes a small tree into a real SQLite file outside it, then asks
:func:`nothing_to_sync` through a standard-library reader of that file after
changing (or not changing) the tree.
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from legacy import format_time, write_run

from pyhermes import Catalog
from pyhermes.index.rules import RACY_SECONDS
from pyhermes.index.store.sql_reader import SqliteReader
from pyhermes.index.sync import unchanged as unchanged_module
from pyhermes.index.sync.unchanged import (
    LIVE_REFRESH_VAR,
    listing_still_valid,
    live_refresh_seconds,
    nothing_to_sync,
)

START = datetime(2024, 1, 1, 12)


def _age(root: Path) -> None:
    """Every file and folder below ``root`` an hour old: runs that settled long ago."""
    when = time.time() - 3600
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            os.utime(os.path.join(dirpath, name), (when, when))
        os.utime(dirpath, (when, when))


class Indexed:
    """A tree of runs, indexed in a SQLite file outside it, and a sqlite3 reader of that file."""

    def __init__(self, tmp_path: Path, unfinished: bool = False, broken: bool = False) -> None:
        self.tree = tmp_path / "tree"
        self.sweep = self.tree / "experiments" / "train" / "sweep"
        self.base = self.tree / "experiments" / "eval" / "base"
        self.runs = [write_run(self.sweep, start=START + timedelta(days=day), scores=[1.0, 2.0])
                     for day in range(3)]
        write_run(self.base, start=START, scores=[5.0])
        self.live = None
        if unfinished:
            self.live = write_run(self.sweep, start=START + timedelta(days=9), scores=[1.0], finished=False)
        if broken:
            info = self.runs[0] / "hermes.info"
            info.unlink()
            info.mkdir()  # cannot be read: a problem record
        _age(self.tree)
        self.index = tmp_path / "index" / "index.sqlite"
        self.catalog = Catalog.open(self.tree, index=self.index)
        self.reader = SqliteReader(self.index)

    def quiet(self, folder: Path | None = None, recursive: bool = True) -> bool:
        """What nothing_to_sync says of ``folder`` (default: the whole tree)."""
        rel = self.catalog._rel(folder or self.tree)
        return nothing_to_sync(self.reader, self.catalog.root, rel, recursive)


@pytest.fixture
def indexed(tmp_path: Path):
    made: list[Indexed] = []

    def make(**kwargs) -> Indexed:
        made.append(Indexed(tmp_path, **kwargs))
        return made[-1]

    yield make
    for one in made:
        one.reader.close()


# --------------------------------------------------------------------------- folder listings


def test_listing_still_valid():
    listed_mtime = 1_700_000_000 * 10**9
    listed_at = listed_mtime / 1e9 + 60  # listed a minute after the folder last changed
    assert listing_still_valid(listed_mtime, listed_at, listed_mtime) is True
    assert listing_still_valid(listed_mtime, listed_at, listed_mtime + 1) is False  # changed since
    assert listing_still_valid(listed_mtime, listed_at, None) is False  # gone, or cannot be looked at
    # Changed within RACY_SECONDS of the listing: a later change in the same tick would not show.
    assert listing_still_valid(listed_mtime, listed_mtime / 1e9 + RACY_SECONDS, listed_mtime) is False
    assert listing_still_valid(listed_mtime, listed_mtime / 1e9 + RACY_SECONDS + 0.01, listed_mtime) is True


def test_live_refresh_seconds(monkeypatch):
    monkeypatch.delenv(LIVE_REFRESH_VAR, raising=False)
    assert live_refresh_seconds() == 5.0
    monkeypatch.setenv(LIVE_REFRESH_VAR, "0")
    assert live_refresh_seconds() == 0.0
    monkeypatch.setenv(LIVE_REFRESH_VAR, "-3")
    assert live_refresh_seconds() == 5.0


# --------------------------------------------------------------------------- a settled tree


def test_a_settled_tree_needs_no_sync(indexed):
    lab = indexed()
    assert lab.quiet() is True
    assert lab.quiet(lab.sweep, recursive=False) is True
    assert lab.quiet(lab.tree / "experiments", recursive=True) is True


def test_a_settled_run_that_changed_is_trusted_by_a_quick_sync(indexed):
    lab = indexed()
    with open(lab.runs[1] / f"{lab.runs[1].name}.scores", "a") as scores:
        scores.write("3.0\n")
    assert lab.quiet() is True  # only a full sync looks at settled runs


def test_a_new_run_needs_a_sync(indexed):
    lab = indexed()
    write_run(lab.sweep, start=START + timedelta(days=5))
    assert lab.quiet() is False
    assert lab.quiet(lab.sweep, recursive=False) is False
    assert lab.quiet(lab.base, recursive=False) is True  # another folder: unchanged


def test_a_run_in_a_new_folder_needs_a_sync(indexed):
    lab = indexed()
    write_run(lab.tree / "experiments" / "eval" / "other", start=START)
    assert lab.quiet() is False
    assert lab.quiet(lab.sweep, recursive=False) is True


def test_a_removed_run_needs_a_sync(indexed):
    lab = indexed()
    shutil.rmtree(lab.runs[2])
    assert lab.quiet() is False


def test_a_folder_that_changed_but_holds_the_same_runs_needs_none(indexed):
    lab = indexed()
    (lab.sweep / "notes.txt").write_text("lr sweep\n")  # the folder's mtime moves on
    assert lab.quiet() is True
    (lab.sweep / "plots").mkdir()  # a new subfolder: the listing the index holds is out of date
    assert lab.quiet() is False


def test_a_folder_the_index_never_listed_needs_a_sync(indexed):
    lab = indexed()
    elsewhere = lab.tree / "experiments" / "new"
    elsewhere.mkdir()
    assert lab.quiet(elsewhere, recursive=False) is False


def test_a_run_that_could_not_be_read_is_tried_again(indexed):
    with pytest.warns(UserWarning, match="could not be read"):
        lab = indexed(broken=True)
    assert lab.catalog.problems() and lab.quiet() is False
    assert lab.quiet(lab.sweep, recursive=False) is False
    assert lab.quiet(lab.base, recursive=False) is True  # the problem is elsewhere


# --------------------------------------------------------------------------- an unfinished run


def test_an_untouched_unfinished_run_needs_no_sync(indexed):
    lab = indexed(unfinished=True)
    assert lab.quiet() is True


def test_a_new_scores_line_of_an_unfinished_run_waits_for_the_live_refresh(indexed, monkeypatch):
    lab = indexed(unfinished=True)
    with open(lab.live / f"{lab.live.name}.scores", "a") as scores:
        scores.write("2.0\n")
    monkeypatch.setenv(LIVE_REFRESH_VAR, "600")  # read moments ago: its scores may wait
    assert lab.quiet() is True
    monkeypatch.setenv(LIVE_REFRESH_VAR, "0")  # never wait: the grown scores are read at once
    assert lab.quiet() is False
    assert lab.quiet(lab.base, recursive=False) is True  # not in that folder


def test_the_end_of_an_unfinished_run_is_read_at_once(indexed, monkeypatch):
    lab = indexed(unfinished=True)
    monkeypatch.setenv(LIVE_REFRESH_VAR, "600")
    end = START + timedelta(days=9, hours=1)
    with open(lab.live / "hermes.info", "a") as info:
        info.write(f"start_time:{format_time(START + timedelta(days=9))}\nend_time:{format_time(end)}\n")
    assert lab.quiet() is False


def test_a_quick_check_marks_settled_the_runs_whose_flag_alone_is_behind(tmp_path, monkeypatch):
    """An index built moments after its runs ended holds them unsettled; once they are old
    enough, the quick check that finds nothing to sync marks them settled (only if each row
    still holds the signature it checked), so later checks no longer look at their files."""
    tree = tmp_path / "tree"
    runs = [write_run(tree / "sweep", start=START + timedelta(days=day), scores=[1.0, 2.0]) for day in range(3)]
    live = write_run(tree / "sweep", start=START + timedelta(days=5), scores=[1.0], finished=False)
    catalog = Catalog.open(tree, index=tmp_path / "index.sqlite")  # written just now: unsettled
    reader = SqliteReader(tmp_path / "index.sqlite")

    def settled() -> dict[str, bool]:
        return {path.rsplit("/", 1)[1]: bool(flag) for path, flag in reader.rows("SELECT path, settled FROM hermes_run")}

    try:
        assert not any(settled().values())
        catalog.refresh(tree, recursive=True, mode="quick")  # within the settle window: nothing to mark
        assert not any(settled().values())
        changed: list[tuple[str, tuple]] = []
        rel = catalog._rel(tree)
        assert nothing_to_sync(reader, catalog.root, rel, True, None, changed, 0.0) is True
        assert sorted(path.rsplit("/", 1)[1] for path, _ in changed) == sorted(run.name for run in runs)
        with open(runs[0] / f"{runs[0].name}.scores", "a") as scores:  # a sync stores a newer reading
            scores.write("3.0\n")
        catalog.sync(tree, mode="full")
        from pyhermes.index.sync import quick_marks

        quick_marks.mark_settled(reader, lambda: catalog.engine, changed)  # runs[0]'s row no longer holds what was checked
        assert settled() == {runs[0].name: False, runs[1].name: True, runs[2].name: True, live.name: False}
        catalog.settle_seconds = 0.0  # as if the window had passed since runs[0] changed
        catalog.refresh(tree, recursive=True, mode="quick")  # one run behind: a sweep's trickle, no write
        assert settled()[runs[0].name] is False
        monkeypatch.setattr(unchanged_module, "SETTLE_MARKS_FROM", 1)  # as if thousands were behind
        catalog.refresh(tree, recursive=True, mode="quick")
        assert settled() == {runs[0].name: True, runs[1].name: True, runs[2].name: True, live.name: False}
    finally:
        reader.close()
