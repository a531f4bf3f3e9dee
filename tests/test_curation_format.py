"""The curation files of a run directory: ``hermes.tags`` and ``hermes.notes`` (pyhermes.rundir).

Round trips, the tag rule (a bad tag writes nothing), concurrent taggers and
appenders in separate processes, hand-edited files with malformed lines, and
that a tagged and noted run still loads the way the original hermes loader
loaded runs.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import time
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from legacy import write_run

from pyhermes import rundir
from pyhermes.errors import HermesError, InvalidTagError, RunFormatError, RunFormatWarning
from pyhermes.rundir import NOTES_FILE, TAGS_FILE, Note


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """One finished legacy run with scores."""
    return write_run(tmp_path / "experiments" / "train" / "sweep", start=datetime(2024, 3, 1, 15, 45), scores=[1.0, 2.0])


def _state(folder: Path) -> dict[str, tuple[bytes, int]]:
    """(bytes, mtime_ns) of every file in ``folder``: what a write would change."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


# --------------------------------------------------------------------------- the tag rule


@pytest.mark.parametrize(
    ("given", "stored"),
    [("paper", "paper"), ("  best run \n", "best run"), ("x" * 200, "x" * 200), ("été-2024", "été-2024"),
     ("a:b,c=d", "a:b,c=d"), ("🚀", "🚀")],
)
def test_valid_tags_are_stripped(given: str, stored: str) -> None:
    assert rundir.check_tag(given) == stored


BAD_TAGS = [
    ("", "empty"),
    ("   ", "empty"),
    ("a\nb", "control character"),
    ("a\tb", "control character"),
    ("a\0b", "control character"),
    ("a\u2028b", "control character"),
    ("x" * 201, "at most 200 characters"),
    ("a/b", "'/'"),
    ("a\\b", "'\\\\'"),
    ("/", "'/'"),
]


@pytest.mark.parametrize(("tag", "rule"), BAD_TAGS)
def test_bad_tags_are_a_clear_error(tag: str, rule: str) -> None:
    with pytest.raises(InvalidTagError, match="invalid tag") as caught:
        rundir.check_tag(tag)
    assert rule in str(caught.value)
    assert caught.value.tag == tag
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, HermesError)


def test_a_tag_is_a_str() -> None:
    with pytest.raises(TypeError):
        rundir.check_tag(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(("tag", "rule"), BAD_TAGS)
def test_a_bad_tag_writes_nothing(run_dir: Path, tag: str, rule: str) -> None:
    rundir.change_tags(run_dir, add=["kept"])
    before = _state(run_dir)
    with pytest.raises(InvalidTagError):
        rundir.change_tags(run_dir, add=["fine", tag])
    with pytest.raises(InvalidTagError):
        rundir.change_tags(run_dir, remove=[tag])
    assert _state(run_dir) == before  # no change, and no temporary file left
    fresh = write_run(run_dir.parent, start=datetime(2024, 3, 2), job_idx=1)
    with pytest.raises(InvalidTagError):
        rundir.change_tags(fresh, add=tag)
    assert not (fresh / TAGS_FILE).exists()


# --------------------------------------------------------------------------- tags


def test_tags_round_trip(run_dir: Path) -> None:
    assert rundir.read_tags(run_dir) == []
    assert rundir.change_tags(run_dir, add=["paper", "best", " paper "]) == ([], ["best", "paper"])
    assert (run_dir / TAGS_FILE).read_bytes() == b"best\npaper\n"
    assert rundir.read_tags(run_dir) == ["best", "paper"]
    assert rundir.change_tags(run_dir, add="été", remove=["best", "absent"]) == (
        ["best", "paper"],
        ["paper", "été"],
    )
    assert (run_dir / TAGS_FILE).read_text(encoding="utf-8") == "paper\nété\n"
    # The last tag removed removes the file.
    assert rundir.change_tags(run_dir, remove=("paper", "été")) == (["paper", "été"], [])
    assert not (run_dir / TAGS_FILE).exists()
    assert rundir.change_tags(run_dir, remove="paper") == ([], [])


def test_tags_are_written_only_when_the_set_changes(run_dir: Path) -> None:
    # A hand-edited file: unsorted, a duplicate, blank lines, spaces.
    (run_dir / TAGS_FILE).write_bytes(b"zeta\n\n  alpha  \nzeta\r\n")
    before = _state(run_dir)
    assert rundir.change_tags(run_dir, add=["alpha"], remove=["nothing"]) == (
        ["alpha", "zeta"],
        ["alpha", "zeta"],
    )
    assert _state(run_dir) == before
    rundir.change_tags(run_dir, add=["beta"])
    assert (run_dir / TAGS_FILE).read_bytes() == b"alpha\nbeta\nzeta\n"


def test_rewrite_tags_tells_what_it_wrote(run_dir: Path) -> None:
    started = time.time()
    done = rundir.rewrite_tags(run_dir, {"paper", "best"}, set())
    status = (run_dir / TAGS_FILE).stat()
    assert done == rundir.TagRewrite([], ["best", "paper"], done.changed_at, status.st_size, status.st_mtime_ns)
    assert started <= done.changed_at <= time.time()
    assert rundir.rewrite_tags(run_dir, {"paper"}, set()) == (["best", "paper"], ["best", "paper"], None, None, None)
    gone = rundir.rewrite_tags(run_dir, set(), {"best", "paper"}, durable=False)
    assert gone.after == [] and gone.changed_at is not None and gone.size is gone.mtime_ns is None
    assert not (run_dir / TAGS_FILE).exists()


def test_a_write_leaves_no_temporary_file_and_replaces_a_crashed_writers(run_dir: Path) -> None:
    rundir.change_tags(run_dir, add=["first"])
    names = set(os.listdir(run_dir))
    assert not [name for name in names if name.endswith(".tmp")]
    # A writer of this process and thread that crashed between creating and renaming its file.
    stale = _temporary_names(run_dir)
    (run_dir / stale[0]).write_bytes(b"half a file")
    rundir.change_tags(run_dir, add=["second"])
    assert set(os.listdir(run_dir)) == names
    assert rundir.read_tags(run_dir) == ["first", "second"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((run_dir / TAGS_FILE).stat().st_mode) == 0o644 & ~umask  # as any new file


def _temporary_names(run_dir: Path) -> list[str]:
    """The name the tag writer of this thread uses for its temporary file in ``run_dir``."""
    seen: list[str] = []
    real_open = os.open

    def spy(path: object, *args: object, **kwargs: object) -> int:
        if str(path).endswith(".tmp"):
            seen.append(os.path.basename(str(path)))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    os.open = spy  # type: ignore[assignment]
    try:
        rundir.change_tags(run_dir, add=["probe"])
        rundir.change_tags(run_dir, remove=["probe"])
    finally:
        os.open = real_open
    assert seen and all(name.startswith(f".{TAGS_FILE}.") and f"-{os.getpid()}-" in name for name in seen)
    return seen


def test_flush_to_disk_flushes_each_filesystem_once(tmp_path: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyhermes.rundir import _write

    calls: list[int] = []
    monkeypatch.setattr(_write, "_SYNCFS", [lambda fd: calls.append(fd) or 0])
    rundir.flush_to_disk([run_dir, run_dir / rundir.INFO_FILE, tmp_path / "missing", tmp_path])
    assert len(calls) == 1  # one filesystem; a missing path is skipped
    monkeypatch.setattr(_write, "_SYNCFS", [lambda fd: -1])
    with pytest.raises(OSError, match="cannot flush the filesystem"):
        rundir.flush_to_disk([run_dir])
    synced: list[bool] = []
    monkeypatch.setattr(_write, "_SYNCFS", [None])
    monkeypatch.setattr(os, "sync", lambda: synced.append(True))
    rundir.flush_to_disk([run_dir])
    assert synced == [True]


def test_a_tag_both_added_and_removed_is_refused(run_dir: Path) -> None:
    with pytest.raises(ValueError, match="both added and removed: paper"):
        rundir.change_tags(run_dir, add=["paper"], remove=[" paper"])
    assert not (run_dir / TAGS_FILE).exists()


def test_only_a_run_directory_is_tagged(tmp_path: Path, run_dir: Path) -> None:
    with pytest.raises(RunFormatError, match="not a run directory"):
        rundir.change_tags(run_dir.parent, add=["paper"])
    with pytest.raises(RunFormatError, match="not a run directory"):
        rundir.append_note(run_dir.parent, "a note")
    assert sorted(os.listdir(run_dir.parent)) == [run_dir.name]
    with pytest.raises(FileNotFoundError):
        rundir.change_tags(tmp_path / "missing", add=["paper"])
    with pytest.raises(NotADirectoryError):
        rundir.change_tags(run_dir / "hermes.info", add=["paper"])


def test_bad_tag_lines_are_skipped_with_a_note(run_dir: Path) -> None:
    (run_dir / TAGS_FILE).write_bytes(b"good\na/b\n" + b"x" * 201 + b"\ncaf\xe9\n")
    notes: list[str] = []
    assert rundir.read_tags(run_dir, notes) == ["café", "good"]
    assert len(notes) == 3
    assert "hermes.tags:2: line skipped" in notes[1] and "'/'" in notes[1]
    assert "hermes.tags:3: line skipped" in notes[2]
    assert "Latin-1" in notes[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert rundir.read_tags(run_dir) == ["café", "good"]
    assert [str(w.message) for w in caught] == notes
    assert all(issubclass(w.category, RunFormatWarning) for w in caught)
    # Changing the set writes the valid tags only.
    rundir.change_tags(run_dir, add=["new"], notes=[])
    assert rundir.read_tags(run_dir) == ["café", "good", "new"]


def _tag_many(job: tuple[list[str], int, int]) -> None:
    """A worker: ``rounds`` read-modify-write changes of each run of ``runs`` (spawned process)."""
    runs, worker, rounds = job
    for number in range(rounds):
        for run in runs:
            remove = [f"w{worker}-{number - 1}"] if number % 2 else []
            rundir.change_tags(run, add=[f"w{worker}-{number}", "shared"], remove=remove)


def test_concurrent_taggers_lose_no_tag(tmp_path: Path) -> None:
    folder = tmp_path / "experiments" / "s" / "e"
    runs = [str(write_run(folder, start=datetime(2024, 1, 1), job_idx=index)) for index in range(3)]
    rounds = 30
    # Four processes, each on two of the three runs: every run is shared by two or three.
    jobs = [([runs[worker % 3], runs[(worker + 1) % 3]], worker, rounds) for worker in range(4)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_tag_many, jobs)
    for run in runs:
        expected = {"shared"}
        for chosen, worker, _ in jobs:
            if run in chosen:
                # What the worker's own changes leave: an odd round removes the round before.
                kept = {f"w{worker}-{n}" for n in range(rounds)}
                kept -= {f"w{worker}-{n - 1}" for n in range(rounds) if n % 2}
                expected |= kept
        assert rundir.read_tags(run) == sorted(expected)
        assert sorted(os.listdir(run)) == sorted(
            [TAGS_FILE, "hermes.info", "exec_arguments", "re_execution.hermes", "stdout.log",
             "stderr.log"]
        )  # no temporary or lock file left


# --------------------------------------------------------------------------- notes


def test_notes_round_trip(run_dir: Path) -> None:
    assert rundir.read_notes(run_dir) == []
    first = rundir.append_note(run_dir, "  diverged after 2M steps\n", when=datetime(2024, 3, 1, 9, 5, 7, 999))
    assert first == Note(datetime(2024, 3, 1, 9, 5, 7), "diverged after 2M steps")
    second = rundir.append_note(run_dir, 'lr too high?\n  "see" run 3 — ünïcode')
    assert second.time is not None and abs(second.time - datetime.now()) < timedelta(minutes=1)
    assert second.time.microsecond == 0 and second.time.tzinfo is None
    aware = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
    third = rundir.append_note(run_dir, "aware", when=aware)
    assert third.time == aware.astimezone().replace(tzinfo=None)
    assert rundir.read_notes(run_dir) == [first, second, third]
    lines = (run_dir / NOTES_FILE).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    assert json.loads(lines[0]) == {"time": "2024-03-01T09:05:07", "text": "diverged after 2M steps"}
    assert lines[0] == '{"time": "2024-03-01T09:05:07", "text": "diverged after 2M steps"}'
    assert "ünïcode" in lines[1]  # UTF-8, not \\u escapes


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_a_blank_note_is_refused(run_dir: Path, text: str) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        rundir.append_note(run_dir, text)
    assert not (run_dir / NOTES_FILE).exists()


def test_notes_that_no_database_stores_are_refused(run_dir: Path) -> None:
    for text in ("a\0b", "lone \ud800 surrogate", "x" * rundir.MAX_NOTE_BYTES):
        with pytest.raises(ValueError):
            rundir.append_note(run_dir, text)
    assert not (run_dir / NOTES_FILE).exists()


def test_malformed_note_lines_are_skipped_with_a_note(run_dir: Path) -> None:
    good = '{"time": "2024-03-01T10:00:00", "text": "fine"}'
    (run_dir / NOTES_FILE).write_text(
        "\n".join([
            good,
            "{not json",
            '["a", "list"]',
            '{"time": "2024-03-01T10:00:00"}',
            '{"time": "2024-03-01T10:00:00", "text": "   "}',
            '{"time": "yesterday", "text": "no time"}',
            '{"text": "nul \\u0000 and \\ud800", "extra": 1}',
            "",
            '{"time": "2024-03-01T12:00:00+02:00", "text": "aware"}',
            '{"time": "2024-03-01T10:00:00", "text": "half a li',
        ]),
        encoding="utf-8",
    )
    notes: list[str] = []
    found = rundir.read_notes(run_dir, notes)
    aware = datetime(2024, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert found == [
        Note(datetime(2024, 3, 1, 10, 0), "fine"),
        Note(None, "no time"),
        Note(None, "nul \ufffd and \ufffd"),
        Note(aware.astimezone().replace(tzinfo=None), "aware"),
    ]
    skipped = [message for message in notes if "line skipped" in message]
    assert [message.split(": line skipped")[0].rsplit(":", 1)[1] for message in skipped] == [
        "2", "3", "4", "5", "10"
    ]
    assert any("hermes.notes:6" in message and "time" in message for message in notes)
    assert any("hermes.notes:7" in message and "U+FFFD" in message for message in notes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert rundir.read_notes(run_dir) == found
    assert all(issubclass(w.category, RunFormatWarning) for w in caught) and len(caught) == len(notes)


def _append_many(job: tuple[str, int, int]) -> None:
    run, worker, count = job
    for number in range(count):
        rundir.append_note(run, f"worker {worker} note {number}\nsecond line " + "x" * 500)


def test_concurrent_appenders_never_mix_lines(run_dir: Path) -> None:
    count = 50
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_append_many, [(str(run_dir), worker, count) for worker in range(4)])
    notes: list[str] = []
    found = rundir.read_notes(run_dir, notes)
    assert notes == []
    assert len(found) == 4 * count
    for worker in range(4):
        mine = [n.text.split("\n")[0] for n in found if n.text.startswith(f"worker {worker} ")]
        assert mine == [f"worker {worker} note {number}" for number in range(count)]


# --------------------------------------------------------------------------- the original loader


def _legacy_load_all(path: Path) -> list[dict[str, object]]:
    """What the original hermes ``load_all(path)`` read (shared legacy-format facts): the direct
    subdirectories holding ``hermes.info``; their ``key:value`` info lines, argument lines and
    ``<identifier>.scores`` floats. Standard library only; files it does not know are not read."""
    runs = []
    for entry in sorted(path.iterdir()):
        if not (entry.is_dir() and (entry / "hermes.info").is_file()):
            continue
        info = dict(
            line.split(":", 1) for line in (entry / "hermes.info").read_text().splitlines() if line
        )
        args = [line.strip() for line in (entry / "exec_arguments").read_text().splitlines() if line.strip()]
        scores_file = entry / f"{entry.name}.scores"
        scores = [float(line) for line in scores_file.read_text().split()] if scores_file.exists() else []
        runs.append({"identifier": entry.name, "info": info, "args": args, "scores": scores})
    return runs


def _pyhermes_view(folder: Path) -> list[tuple[object, ...]]:
    """What pyhermes's own readers give for the runs of ``folder``."""
    return [
        (run.name, rundir.read_info(run, []), rundir.read_exec_args(run, []),
         rundir.read_scores(rundir.scores_path(run, run.name)).tolist())
        for run in rundir.iter_run_dirs(folder)
    ]


def test_tagged_and_noted_runs_load_with_the_original_loader(run_dir: Path) -> None:
    folder = run_dir.parent
    write_run(folder, start=datetime(2024, 3, 2), job_idx=1, finished=False)
    plain, ours = _legacy_load_all(folder), _pyhermes_view(folder)
    assert len(plain) == 2 and plain[0]["scores"] == [1.0, 2.0]
    for run in rundir.iter_run_dirs(folder):
        rundir.change_tags(run, add=["paper", "best run"])
        rundir.append_note(run, "diverged: lr too high\nsee run 3")
        assert (run / TAGS_FILE).is_file() and (run / NOTES_FILE).is_file()
    assert _legacy_load_all(folder) == plain
    assert _pyhermes_view(folder) == ours
