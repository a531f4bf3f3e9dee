"""The curation commands: ``hermes tag``, ``note``, ``archive``, ``unarchive``, ``gc`` and
``hermes ls --archived`` / ``--columns ...,tags``.

The entry point runs in-process (``hermes_main([...])`` with capsys) and, for the
terminal prompt, as a real subprocess whose stdin is a pseudo-terminal. Outputs are
parsed (JSON with ``json.loads``, tables by their columns); the round trips run on
both index backends and check the index against a rebuild from disk after each step.
"""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from legacy import write_run
from test_curation import (
    START,
    SWEEP,
    TRACEBACK,
    age,
    assert_index_is_a_rebuild,
    live_writer,
    make_tree,
    tree,
)

from pyhermes import Experiment
from pyhermes.cli import hermes_main

HERMES = Path(sys.executable).with_name("hermes")


class Terminal(io.StringIO):
    """A stdin that says it is a terminal and answers ``answer``."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without a terminal on stdin (as in CI)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))


def call(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``hermes ARGS`` in-process; return (exit status, stdout, stderr)."""
    capsys.readouterr()
    code = hermes_main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def table(text: str) -> list[dict[str, str]]:
    """The rows of an aligned table (header, dashes, rows; lines after a blank or a non-row dropped)."""
    lines = text.splitlines()
    header, dashes = lines[0], lines[1]
    spans, start = [], 0
    for part in dashes.split("  "):
        spans.append((start, start + len(part)))
        start += len(part) + 2
    names = [header[a:b].strip() for a, b in spans]
    rows = []
    for line in lines[2:]:
        if not line.startswith("20"):  # identifiers start with the year
            break
        rows.append({name: line[a:b].strip() for name, (a, b) in zip(names, spans, strict=True)})
    return rows


def gc_root(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    root = tmp_path / "root"
    runs = {
        "good": write_run(root / SWEEP, start=START, scores=[1.0, 2.0]),
        "crashed": write_run(root / SWEEP, start=START + timedelta(days=1), scores=[1.0], finished=False),
        "traceback": write_run(root / SWEEP, start=START + timedelta(days=2), scores=[1.0, 2.0],
                               finished=False, stderr=TRACEBACK),
        "empty": write_run(root / SWEEP, start=START + timedelta(days=3), scores=None),
    }
    age(root)
    return root, runs


# --------------------------------------------------------------------------- archive, unarchive, ls --archived


def test_archive_unarchive_and_ls_archived(tmp_path: Path, backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    runs = make_tree(root)
    before = tree(root)
    code, out, err = call(capsys, "archive", str(root), "--where=-lr > 0.3")
    assert code == 2 and "stdin is not a terminal" in err and "add --yes" in err
    assert tree(root) == before and not (root / ".archive").exists()

    code, out, _ = call(capsys, "archive", str(root), "--where=-lr > 0.3", "--yes")
    assert code == 0
    rows = table(out)
    assert [row["identifier"] for row in rows] == [run.name for run in runs[3:]]
    assert {row["status"] for row in rows} == {"moved"} and {row["folder"] for row in rows} == {str(SWEEP)}
    assert f"archived 3 runs (to {root.resolve() / '.archive'})" in out
    assert_index_is_a_rebuild(root)

    code, out, _ = call(capsys, "ls", str(root), "--format", "json")
    assert sorted(item["identifier"] for item in json.loads(out)) == [run.name for run in runs[:3]]
    code, out, _ = call(capsys, "ls", str(root), "--archived", "--sort=-lr:desc", "--format", "json")
    assert code == 0 and [item["identifier"] for item in json.loads(out)] == [run.name for run in runs[:2:-1]]
    code, out, _ = call(capsys, "ls", str(root), "--archived", "--where=--doubledqn",
                        "--columns=identifier,-lr,final_mean,tags")
    assert [(row["identifier"], row["-lr"]) for row in table(out)] == [(runs[3].name, "0.4"), (runs[5].name, "0.6")]
    code, out, _ = call(capsys, "ls", str(root), "--archived", "--sort=-final_mean", "--limit", "1", "--format", "csv")
    assert out.splitlines()[1].startswith(runs[5].name)

    code, out, _ = call(capsys, "unarchive", str(root), "--where=-lr < 0.55", "--yes", "--format", "json")
    answer = json.loads(out)
    assert code == 0 and (answer["moved"], answer["refused"]) == (2, 0)
    assert sorted(Path(item["target"]).name for item in answer["runs"]) == [runs[3].name, runs[4].name]
    assert all(item["to"] == str(SWEEP / Path(item["target"]).name) for item in answer["runs"])
    assert_index_is_a_rebuild(root)
    code, out, _ = call(capsys, "unarchive", str(root), "--where=finished", "--yes")
    assert code == 0 and "unarchived 1 run" in out
    assert tree(root) == before
    assert len(assert_index_is_a_rebuild(root)["runs"]) == 6
    code, out, _ = call(capsys, "unarchive", str(root), "--where=finished")
    assert code == 0 and out.strip() == "no archived run matches"


def test_archive_refuses_a_running_run_in_its_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_tree(tmp_path, 1)
    live = write_run(tmp_path / SWEEP, start=START + timedelta(days=1), scores=[1.0], finished=False)
    code, out, _ = call(capsys, "archive", str(tmp_path), "--where=start_time > 2000-01-01", "--yes",
                        "--format", "json")
    answer = json.loads(out)
    assert code == 0 and (answer["moved"], answer["refused"]) == (1, 1)
    refused = [item for item in answer["runs"] if item["refused"]]
    assert refused[0]["identifier"] == live.name and "not finished" in refused[0]["refused"]
    code, out, _ = call(capsys, "archive", str(tmp_path), "--where=not finished", "--yes")
    row = table(out)[0]
    assert row["status"].startswith("refused: written ") and "refused 1" in out and live.is_dir()


def test_confirmation_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    runs = make_tree(tmp_path, 2)
    before = tree(tmp_path)
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    code, out, err = call(capsys, "archive", str(tmp_path), "--where=finished")
    assert code == 0 and out.strip() == "nothing moved"
    assert f"Move 2 runs to {tmp_path.resolve() / '.archive'}? [y/N]" in err
    assert tree(tmp_path) == before
    monkeypatch.setattr(sys, "stdin", Terminal(""))  # end of input: no
    assert call(capsys, "archive", str(tmp_path), "--where=finished")[0] == 0 and tree(tmp_path) == before
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    code, out, err = call(capsys, "archive", str(tmp_path), "--where=finished")
    assert code == 0 and "archived 2 runs" in out and not any(run.exists() for run in runs)
    monkeypatch.setattr(sys, "stdin", Terminal("yes\n"))
    code, out, err = call(capsys, "unarchive", str(tmp_path), "--where=finished")
    assert "back to" in err and all(run.exists() for run in runs)


def test_confirmation_through_a_pseudo_terminal(tmp_path: Path) -> None:
    runs = make_tree(tmp_path, 2)
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [str(HERMES), "archive", str(tmp_path), "--where=finished", "--format", "json"],
        stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    os.close(secondary)
    try:
        os.write(primary, b"y\n")
        out, err = process.communicate(timeout=60)
    finally:
        os.close(primary)
    assert process.returncode == 0, err
    assert "? [y/N]" in err
    assert json.loads(out)["moved"] == 2 and not any(run.exists() for run in runs)


# --------------------------------------------------------------------------- gc


def test_gc_lists_then_trashes_then_purges(tmp_path: Path, backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    root, runs = gc_root(tmp_path)
    before = tree(root)
    code, out, _ = call(capsys, "gc", str(root))
    assert code == 0
    rows = {row["identifier"]: row for row in table(out)}
    assert {rows[run.name]["reason"] for name, run in runs.items() if name != "good"} == {
        "crashed", "traceback", "empty"}
    assert runs["good"].name not in rows
    sizes = {name: sum(p.stat().st_size for p in run.rglob("*") if p.is_file()) for name, run in runs.items()}
    assert int(rows[runs["empty"].name]["bytes"]) == sizes["empty"]
    total = sum(sizes[name] for name in ("crashed", "traceback", "empty"))
    assert f"3 candidates, {total} bytes" in out and "nothing moved" in out
    assert tree(root) == before and not (root / ".trash").exists()  # the listing changed nothing

    code, out, _ = call(capsys, "gc", str(root), "--format", "json", "--older-than", "1d", "--where=not finished")
    answer = json.loads(out)
    assert sorted(item["reason"] for item in answer["candidates"]) == ["crashed", "traceback"]
    assert answer["moved"] == 0 and tree(root) == before

    code, out, _ = call(capsys, "gc", str(root), "--yes", "--format", "json")
    answer = json.loads(out)
    assert code == 0 and answer["moved"] == 3 and answer["total_bytes"] == total
    assert all(Path(item["target"]).is_dir() for item in answer["candidates"])
    assert all(".trash" in Path(item["target"]).parts for item in answer["candidates"])
    assert not runs["empty"].exists() and runs["good"].exists()
    assert len(assert_index_is_a_rebuild(root)["runs"]) == 1

    trashed = tree(root)
    code, _, err = call(capsys, "gc", str(root), "--purge")
    assert code == 2 and "stdin is not a terminal" in err and tree(root) == trashed
    code, out, _ = call(capsys, "gc", str(root), "--purge", "--yes")
    assert code == 0 and f"deleted 3 runs ({total} bytes" in out
    assert list((root / ".trash").iterdir()) == [] and runs["good"].exists()
    code, out, _ = call(capsys, "gc", str(root), "--purge", "--format", "json")
    answer = json.loads(out)
    assert answer["purged"] == {"runs": 0, "bytes": 0} and answer["candidates"] == []
    assert_index_is_a_rebuild(root)


def test_gc_purge_asks_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = gc_root(tmp_path)
    assert call(capsys, "gc", str(root), "--yes")[0] == 0
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    code, out, err = call(capsys, "gc", str(root), "--purge")
    assert code == 0 and "Delete everything in" in err and "(3 runs," in err and "nothing deleted" in out
    assert len(list((root / ".trash").rglob("hermes.info"))) == 3
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    code, out, err = call(capsys, "gc", str(root), "--purge")
    assert code == 0 and "deleted 3 runs" in out and list((root / ".trash").iterdir()) == []


def test_gc_yes_never_moves_a_run_being_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = write_run(tmp_path / SWEEP, start=START, scores=None, finished=False)
    age(tmp_path, 7200)
    assert call(capsys, "ls", str(tmp_path))[0] == 0  # indexed as an old, empty, unfinished run
    with live_writer(run / f"{run.name}.scores"):
        code, out, _ = call(capsys, "gc", str(tmp_path), "--yes", "--sync", "none", "--format", "json")
        assert code == 0 and json.loads(out)["candidates"] == []
        code, out, _ = call(capsys, "gc", str(tmp_path), "--yes", "--format", "json")
        assert code == 0 and json.loads(out)["candidates"] == []
        assert run.is_dir()


# --------------------------------------------------------------------------- tag and note


def test_tag_and_note(tmp_path: Path, backend: str, capsys: pytest.CaptureFixture[str],
                      monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    runs = make_tree(root, 4)
    code, out, _ = call(capsys, "tag", str(root), "--where=--doubledqn", "--add", "paper", "--add", "best")
    assert code == 0
    assert [(row["identifier"], row["tags"], row["change"]) for row in table(out)] == [
        (runs[1].name, "best, paper", "+best +paper"), (runs[3].name, "best, paper", "+best +paper")]
    assert "2 runs matched, 2 changed" in out
    assert (runs[1] / "hermes.tags").read_text().split() == ["best", "paper"]

    code, out, _ = call(capsys, "tag", str(root), runs[1].name[:17], runs[0].name[:17], "--remove", "paper",
                        "--add", "seen", "--format", "json")
    answer = json.loads(out)
    assert code == 0 and answer["changed"] == 2
    assert {item["identifier"]: item["after"] for item in answer["runs"]} == {
        runs[0].name: ["seen"], runs[1].name: ["best", "seen"]}
    monkeypatch.chdir(root)
    code, out, _ = call(capsys, "tag", str(runs[2].relative_to(root)), "--add", "seen")
    assert code == 0 and table(out)[0]["tags"] == "seen"

    code, out, _ = call(capsys, "note", runs[3].name[:17], "diverged after 2M steps", "--root", str(root))
    assert code == 0 and f"noted {runs[3].name}" in out and out.rstrip().endswith("diverged after 2M steps")
    code, out, _ = call(capsys, "note", str(runs[3]), "lr too high", "--format", "json")
    note = json.loads(out)
    assert note["text"] == "lr too high" and datetime.fromisoformat(note["time"])
    assert [n.text for n in Experiment.load(runs[3]).notes] == ["diverged after 2M steps", "lr too high"]

    code, out, _ = call(capsys, "ls", str(root), '--where=note ~ "DIVERGED" or tag = seen',
                        "--columns=identifier,tags", "--format", "json")
    assert json.loads(out) == [
        {"identifier": runs[0].name, "tags": "seen"}, {"identifier": runs[1].name, "tags": "best, seen"},
        {"identifier": runs[2].name, "tags": "seen"}, {"identifier": runs[3].name, "tags": "best, paper"},
    ]
    state = assert_index_is_a_rebuild(root)
    assert len(state["tags"]) == 6 and len(state["notes"]) == 2
    # Archived runs keep their tags and notes, and the filter words work on them too.
    assert call(capsys, "archive", str(root), "--where=tag = best", "--yes")[0] == 0
    code, out, _ = call(capsys, "ls", str(root), "--archived", '--where=note ~ "too high"', "--format", "json")
    assert [item["identifier"] for item in json.loads(out)] == [runs[3].name]
    code, out, _ = call(capsys, "ls", str(root), "--archived", "--columns=identifier,tags", "--format", "json")
    assert json.loads(out)[0] == {"identifier": runs[1].name, "tags": "best, seen"}


def test_tag_errors_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = make_tree(tmp_path, 2)
    for bad in ("a/b", "", "x" * 201, "two\nlines"):
        code, _, err = call(capsys, "tag", str(tmp_path), "--where=finished", "--add", "ok", "--add", bad)
        assert code == 1 and "tag" in err
    assert not any((run / "hermes.tags").exists() for run in runs)
    code, _, err = call(capsys, "tag", str(tmp_path), "--where=finished")
    assert code == 2 and "--add TAG or --remove TAG" in err
    code, _, err = call(capsys, "tag", str(tmp_path), "--add", "x")
    assert code == 2 and "not a run" in err
    code, _, err = call(capsys, "tag", str(tmp_path), "nosuchrun", "--add", "x")
    assert code == 1 and "no run matches 'nosuchrun'" in err
    code, _, err = call(capsys, "tag", "--root", str(tmp_path), "1999", "--add", "x")
    assert code == 1 and "no run matches" in err
    code, _, err = call(capsys, "note", "1999", "text", "--root", str(tmp_path))
    assert code == 1 and "no run matches" in err
    assert not any((run / "hermes.tags").exists() or (run / "hermes.notes").exists() for run in runs)


def test_usage_and_input_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_tree(tmp_path, 1)
    assert call(capsys, "archive", str(tmp_path))[0] == 2  # --where is required
    assert call(capsys, "unarchive", str(tmp_path))[0] == 2
    code, _, err = call(capsys, "archive", str(tmp_path), "--where=-lr >", "--yes")
    assert code == 1 and "hermes: error:" in err
    assert call(capsys, "archive", str(tmp_path / "missing"), "--where=finished", "--yes")[0] == 1
    code, _, err = call(capsys, "gc", str(tmp_path), "--older-than", "7x")
    assert code == 2 and "a number and a unit" in err
    assert call(capsys, "gc", str(tmp_path / "missing"))[0] == 1
    assert call(capsys, "ls", str(tmp_path / "missing"), "--archived")[0] == 1
    code, out, _ = call(capsys, "ls", str(tmp_path), "--archived")
    assert code == 0 and len(out.splitlines()) == 2  # no archive: a table without runs


@pytest.mark.parametrize("command", ["tag", "note", "archive", "unarchive", "gc"])
def test_help_says_what_is_written_where(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call(capsys, command, "--help")
    assert code == 0 and "exit status:" in out and "examples:" in out
    wanted = {"tag": "hermes.tags", "note": "hermes.notes", "archive": "ROOT/.archive",
              "unarchive": "ROOT/.archive", "gc": "ROOT/.trash"}[command]
    assert wanted in out
