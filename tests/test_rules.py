"""pyhermes.index.rules: stored names, signatures, stored paths, listings, settings from the environment."""

from __future__ import annotations

import errno
import os
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from legacy import write_run

from pyhermes.index.rules import (
    NAME_ESCAPE,
    decode_subfolders,
    disk_name,
    encode_subfolders,
    posix_join,
    posix_parent,
    printable,
    relative,
    seconds_from_env,
    signature,
    stored_name,
)

# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("2024_03_01_154501123456_0_ab12c", "2024_03_01_154501123456_0_ab12c"),
        ("néode-7 ✓", "néode-7 ✓"),  # valid UTF-8 is stored as it is
        (os.fsdecode(b"run-\xe9\xff"), f"run-{NAME_ESCAPE}e9{NAME_ESCAPE}ff"),  # undecodable bytes
        (f"a{NAME_ESCAPE}b", f"a{NAME_ESCAPE}{NAME_ESCAPE}b"),  # the escape itself is doubled
        (f"x{NAME_ESCAPE}e9", f"x{NAME_ESCAPE}{NAME_ESCAPE}e9"),  # ... so this is no byte
        ("\ud800lone", f"{NAME_ESCAPE}ud800lone"),  # a surrogate that is no escaped byte
    ],
)
def test_stored_name_and_disk_name(name, stored):
    assert stored_name(name) == stored
    assert disk_name(stored) == name
    stored.encode("utf-8")  # any database takes it


@given(st.binary(min_size=1, max_size=40).filter(lambda raw: b"/" not in raw and b"\0" not in raw))
def test_every_file_name_on_disk_round_trips(raw):
    name = os.fsdecode(raw)
    stored = stored_name(name)
    stored.encode("utf-8")
    assert disk_name(stored) == name
    assert os.fsencode(disk_name(stored)) == raw


@given(st.text(alphabet=st.sampled_from([NAME_ESCAPE, "u", "e", "9", "f", "a", "é", "\udce9", "\ud800"]),
               max_size=12))
def test_escapes_never_mix_with_text_that_looks_like_them(name):
    assert disk_name(stored_name(name)) == name


def test_stored_names_name_real_files(tmp_path):
    raw = b"run-\xff\xfe-" + NAME_ESCAPE.encode() + b"ff"
    os.mkdir(os.path.join(os.fsencode(tmp_path), raw))
    [listed] = os.listdir(tmp_path)
    stored = stored_name(listed)
    assert stored != listed  # escaped: the undecodable bytes are text now
    assert os.path.isdir(os.path.join(tmp_path, disk_name(stored)))
    assert relative(tmp_path, tmp_path / listed) == stored


def test_printable_shows_undecodable_bytes():
    assert printable("plain") == "plain"
    assert printable("néode") == "néode"
    assert printable(os.fsdecode(b"a\xffb")) == "a\\xffb"
    printable(os.fsdecode(b"\xe9\xff")).encode("utf-8")


# --------------------------------------------------------------------------- paths


def test_posix_join_and_parent():
    assert posix_join("", "run") == "run"
    assert posix_join("experiments/s", "run") == "experiments/s/run"
    assert posix_parent("experiments/s/run") == "experiments/s"
    assert posix_parent("run") == ""
    assert posix_parent(posix_join("a/b", "c")) == "a/b"


def test_relative(tmp_path):
    assert relative(tmp_path, tmp_path) == ""
    assert relative(tmp_path, tmp_path / "experiments" / "s" / "e") == "experiments/s/e"
    assert relative(tmp_path / "a", tmp_path / "b" / "c") == "../b/c"
    assert relative(tmp_path, tmp_path / "x" / ".." / "y") == "y"  # normalised, not resolved on disk


# --------------------------------------------------------------------------- signatures


def _stat(path: Path) -> tuple[int, int]:
    status = os.stat(path)
    return status.st_size, status.st_mtime_ns


def test_signature_is_size_and_mtime_of_the_three_files(tmp_path):
    run = write_run(tmp_path, start=datetime(2024, 1, 1), scores=[1.0, 2.0])
    scores = run / f"{run.name}.scores"
    expected = (*_stat(run / "hermes.info"), *_stat(run / "exec_arguments"), *_stat(scores),
                None, None, None, None)  # no hermes.tags, no hermes.notes
    assert signature(str(run)) == expected
    with open(scores, "a") as handle:
        handle.write("3.0\n")
    os.utime(scores, ns=(1, expected[5] + 1_000_000))
    changed = signature(str(run))
    assert changed[:4] == expected[:4] and changed[4] == expected[4] + 4 and changed[5] == expected[5] + 1_000_000


def test_signature_of_missing_and_unreadable_files(tmp_path):
    run = write_run(tmp_path, start=datetime(2024, 1, 1))  # no scores file
    assert signature(str(run))[4:6] == (None, None)
    (run / "exec_arguments").unlink()
    assert signature(str(run))[2:6] == (None, None, None, None)
    info = run / "hermes.info"
    info.unlink()
    info.symlink_to("hermes.info")  # a symlink loop: cannot be looked at
    assert signature(str(run))[:2] == (-1, -errno.ELOOP)
    assert signature(str(tmp_path / "gone")) == (None,) * 10


# --------------------------------------------------------------------------- listings and values


def test_subfolder_listings_round_trip():
    names = ["a", "néode", f"x{NAME_ESCAPE}ff", 'with "quotes"']
    assert decode_subfolders(encode_subfolders(names)) == names
    assert decode_subfolders(encode_subfolders([])) == []
    assert decode_subfolders("") == []
    for text in ("a,b", "[1, 2]", '["a", null]', "[not json", '{"a": 1}'):
        assert decode_subfolders(text) is None, text  # another form: the folder is listed again


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, 5.0), ("", 5.0), ("2.5", 2.5), ("0", 0.0), ("12", 12.0), ("-1", 5.0), ("soon", 5.0), ("nan", 5.0)],
)
def test_seconds_from_env(monkeypatch, value, seconds):
    if value is None:
        monkeypatch.delenv("HERMES_TEST_SECONDS", raising=False)
    else:
        monkeypatch.setenv("HERMES_TEST_SECONDS", value)
    assert seconds_from_env("HERMES_TEST_SECONDS", 5.0) == seconds
