"""The text decoding rule: odd bytes, NULs and odd lines never hide a run.

Unit tests of :func:`pyhermes.rundir.decode_text`, then a corpus of runs with
every irregularity the legacy format shows, loaded through the file API, the
index (SQLite and PostgreSQL), ``hermes ls``, ``to_frame()``, the SQL views and
``hermes-reindex --check``: every run loads, with the same values everywhere.
"""

from __future__ import annotations

import json
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from legacy import write_run

from pyhermes import Experiment, rundir
from pyhermes.cli import hermes_main, reindex_main
from pyhermes.rundir import RunFormatWarning, decode_text
from pyhermes.storage import Catalog

# --------------------------------------------------------------------------- the rule


def test_utf8_is_read_as_is_without_notes() -> None:
    notes: list[str] = []
    assert decode_text("héllo\nwörld\r\n".encode(), "f", notes) == "héllo\nwörld\r\n"
    assert notes == []


def test_a_non_utf8_line_falls_back_to_latin1_alone() -> None:
    notes: list[str] = []
    raw = "ok: é\n".encode() + b"host:n\xe9ode-7\n" + "next: ü\n".encode()
    assert decode_text(raw, "dir/hermes.info", notes) == "ok: é\nhost:néode-7\nnext: ü\n"
    [note] = notes
    assert note.startswith("dir/hermes.info:2: line is not UTF-8 (byte b'\\xe9')")
    assert "'host:néode-7'" in note


def test_trailing_nuls_are_dropped_and_inner_nuls_follow_the_fallback() -> None:
    notes: list[str] = []
    assert decode_text(b"a:1\nb:2\n" + b"\0" * 4096, "f", notes) == "a:1\nb:2\n"
    assert notes == ["f: 4096 NUL byte(s) at the end ignored"]
    notes.clear()
    assert decode_text(b"a:x\0y\nb:\xff\n\0\0", "f", notes) == "a:x\ufffdy\nb:\xff\n"
    assert [note.split(": ")[0] for note in notes] == ["f", "f:1", "f:2"]
    assert "holds a NUL byte" in notes[1]


def test_bom_and_empty_files() -> None:
    notes: list[str] = []
    assert decode_text(b"\xef\xbb\xbfa:1\n", "f", notes) == "a:1\n"
    assert decode_text(b"", "f", notes) == "" and notes == []
    assert decode_text(b"\0\0", "f", notes) == "" and len(notes) == 1


def test_without_a_notes_list_each_note_is_a_warning() -> None:
    with pytest.warns(RunFormatWarning, match=r"^f:1: line is not UTF-8"):
        assert decode_text(b"caf\xe9", "f") == "café"


@given(st.binary(max_size=200))
def test_every_byte_string_decodes_and_keeps_its_lines(raw: bytes) -> None:
    notes: list[str] = []
    text = decode_text(raw, "f", notes)
    assert "\0" not in text  # storable in any database
    kept = raw.rstrip(b"\0")
    if kept.startswith(b"\xef\xbb\xbf"):
        kept = kept[3:]
    assert text.count("\n") == kept.count(b"\n")  # no line is lost or split
    try:
        clean = kept.decode("utf-8")
    except UnicodeDecodeError:
        clean = None
    if clean is not None and "\0" not in clean:
        assert text == clean
    else:
        assert notes


@given(st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\0")))
def test_utf8_text_round_trips(text: str) -> None:
    notes: list[str] = []
    raw = text.encode()
    expected = text[1:] if text.startswith("\ufeff") else text
    assert decode_text(raw, "f", notes) == expected and notes == []


# --------------------------------------------------------------------------- a corpus


def _odd_corpus(root: Path) -> tuple[Path, dict[str, dict[str, Any]]]:
    """Runs with every irregularity; return the folder and, per identifier, the expected values."""
    folder = root / "experiments" / "train" / "sweep"
    expected: dict[str, dict[str, Any]] = {}

    def add(day: int, info: bytes, arg_bytes: bytes, scores: bytes | None, **values: Any) -> None:
        run = write_run(folder, start=datetime(2024, 2, day, 12), info_text=info,
                        exec_args_text=arg_bytes)
        if scores is not None:
            (run / f"{run.name}.scores").write_bytes(scores)
        expected[run.name] = values

    add(1, b"commit_hash:abc\nhost:n\xe9ode-7\nstart_time:2024_02_01_120000000000\n"
           b"end_time:2024_02_01_130000000000\ncomments:lr \x93sweep\x94, see notes\n",
        b"train\n-lr 0.001\n", b"1.0\n2.0\n",
        host="néode-7", comments="lr \x93sweep\x94, see notes", args={"train", "-lr 0.001"},
        count=2, finished=True)
    add(2, b"commit_hash:abc\nstart_time:2024_02_02_120000000000\n",
        b"train\n-name caf\xe9\n-lr 0.01\n", b"3.0\n",
        args={"train", "-name café", "-lr 0.01"}, count=1, finished=False)
    add(3, b"commit_hash:abc\nend_time:2024_02_03_130000000000\n" + b"\0" * 512,
        b"train\n-lr 0.1\n" + b"\0" * 64, b"4.0\n5.0\n" + b"\0" * 128,
        args={"train", "-lr 0.1"}, count=2, finished=True)
    add(4, b"commit_hash:abc\nthis line has no colon\n\nhost:gpu\x001\n",
        b"train\n", b"episode return\n1.5\n2.5\n3.5e", host="gpu\ufffd1",
        args={"train"}, count=2, finished=False)
    add(5, "commit_hash:abc\r\nhost:ünïcode\r\n".encode(), b"train\r\n-seed 3\r\n", None,
        host="ünïcode", args={"train", "-seed 3"}, count=0, finished=False)
    return folder, expected


def _check_runs(runs: Any, expected: dict[str, dict[str, Any]]) -> None:
    assert sorted(run.identifier for run in runs) == sorted(expected)
    for run in runs:
        want = expected[run.identifier]
        assert run.exec_args == want["args"]
        assert run.is_finished == want["finished"]
        assert run.commit_hash == "abc"
        for key in ("host", "comments"):
            if key in want:
                assert run.info_dict[key] == want[key]
        assert run.score_summary.count == want["count"]


def test_an_odd_corpus_loads_every_run_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, expected = _odd_corpus(tmp_path)

    # The file API: every run, with a warning naming each odd file and line.
    with pytest.warns(RunFormatWarning) as caught:
        for run_dir in sorted(expected):
            Experiment.load(folder / run_dir).scores()
    messages = [str(w.message) for w in caught]
    assert any("hermes.info:2: line is not UTF-8" in m for m in messages)
    assert any("exec_arguments:2: line is not UTF-8" in m for m in messages)
    assert any("NUL byte(s) at the end ignored" in m for m in messages)
    assert any("hermes.info:2: line without ':' skipped" in m for m in messages)
    # A scan without an index: every run, and one warning for the odd ones.
    with pytest.warns(RunFormatWarning) as caught:
        plain = Experiment.load_all(folder, index=False)
        _check_runs(plain, expected)
    assert "4 run(s)" in str(caught[0].message) and "read with warnings" in str(caught[0].message)

    # The index: the same runs and values, one warning for the sync.
    with pytest.warns(RunFormatWarning, match="4 run.*read with warnings"):
        indexed = Experiment.load_all(folder)
    assert indexed._indexed()
    _check_runs(indexed, expected)
    for mine, theirs in zip(sorted(indexed, key=str), sorted(plain, key=str), strict=True):
        assert mine.info_dict == theirs.info_dict and mine.exec_args == theirs.exec_args
    assert len(indexed.filter_by_exec_args("-name café")) == 1
    assert indexed.latest().start_time == datetime(2024, 2, 5, 12)
    with pytest.warns(RunFormatWarning) as caught:
        run = Experiment.load(folder / sorted(expected)[3])
    assert sorted(str(w.message).split("hermes.info:")[1][:20] for w in caught) == [
        "2: line without ':' ", "4: line holds a NUL "]
    np.testing.assert_array_equal(run.scores(), [1.5, 2.5])  # header, partial line

    frame = indexed.to_frame()
    assert len(frame) == 5 and sorted(frame["identifier"]) == sorted(expected)
    assert list(frame["-name"].dropna()) == ["café"]

    catalog = Catalog.open(folder, sync="none")
    assert catalog.problems() == []
    assert len(catalog.run_warnings()) == 4
    rows = catalog.sql("SELECT value FROM run_info WHERE key = 'host' ORDER BY value").rows
    assert [row[0] for row in rows] == sorted(["néode-7", "gpu\ufffd1", "ünïcode"])
    rows = catalog.sql("SELECT raw FROM run_args WHERE key = '-name'").rows
    assert rows == [("-name café",)]
    assert catalog.sql("SELECT COUNT(*) FROM runs").rows == [(5,)]
    noted = catalog.sql(  # the query of docs/schema.md
        "SELECT path, warnings FROM hermes_run WHERE warnings IS NOT NULL ORDER BY path").rows
    assert [(path, notes.split("\n")) for path, notes in noted] == catalog.run_warnings()

    # The commands: hermes ls lists every run; --check is clean (exit 0) and lists the warnings.
    capsys.readouterr()
    assert hermes_main(["ls", str(folder), "--format=json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(row["identifier"] for row in listed) == sorted(expected)
    odd_stderr = folder / sorted(expected)[0] / "stderr.log"
    odd_stderr.write_bytes(b"Traceback\nValueError: caf\xe9\n")
    assert hermes_main(["show", sorted(expected)[0], "--root", str(folder), "--format=json"]) == 0
    assert json.loads(capsys.readouterr().out)["stderr_tail"] == ["Traceback", "ValueError: café"]
    assert reindex_main([str(folder), "--check"]) == 0
    out = capsys.readouterr().out
    assert "4 run(s) load with warnings" in out and "cannot be read" not in out
    assert reindex_main([str(folder), "--check", "--reread", "--json"]) == 0
    drift = json.loads(capsys.readouterr().out)
    assert drift["problems"] == 0 and drift["warnings"] == 4 and not drift["stale"]


def test_an_odd_corpus_in_postgresql(tmp_path: Path, pg_url: str) -> None:
    folder, expected = _odd_corpus(tmp_path)
    url = pg_url
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunFormatWarning)
        indexed = Experiment.load_all(folder, index=url)
        _check_runs(indexed, expected)
        catalog = Catalog.open(folder, index=url, sync="none")
        assert catalog.problems() == [] and len(catalog.run_warnings()) == 4
        rows = catalog.sql("SELECT value FROM run_info WHERE key = 'host'").rows
        assert sorted(row[0] for row in rows) == sorted(["néode-7", "gpu\ufffd1", "ünïcode"])


def test_read_info_of_the_file_api_matches_the_index(tmp_path: Path) -> None:
    folder, _ = _odd_corpus(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunFormatWarning)
        indexed = {run.identifier: run.info_dict for run in Experiment.load_all(folder)}
        for identifier, info in indexed.items():
            assert rundir.read_info(folder / identifier) == info
            assert Experiment.read_info(folder / identifier) == info
