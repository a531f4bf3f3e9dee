"""The documented Storage and Retrieval API over legacy run directories (real files, tmp dirs)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from datetime import datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from legacy import write_run

from pyhermes import Experiment, ExperimentFrame, ExperimentList, rundir
from pyhermes.errors import MissingDependencyError, RunFormatError, UntrustedFileError

ROLES = [
    "normal", "comments_with_colons", "header_scores", "nan_inf_scores", "blank_lines_exec_args",
    "multi_value", "repeated_key", "no_scores", "empty_comments", "no_git", "in_progress", "crashed",
]


def test_import_is_light():
    code = (
        "import sys, pyhermes; from pyhermes import Experiment, ExperimentList;"
        "import pyhermes.storage, pyhermes.rundir, pyhermes.result, pyhermes.plot;"
        "heavy = [m for m in ('torch', 'pandas', 'matplotlib', 'sqlalchemy', 'alembic')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names():
    import pyhermes

    for name in pyhermes.__all__:
        assert getattr(pyhermes, name) is not None
    with pytest.raises(AttributeError):
        pyhermes.not_a_name  # noqa: B018


@pytest.mark.parametrize("role", ROLES)
def test_load_every_quirk(quirky, role):
    expected = quirky["runs"][role]
    run = Experiment.load(expected["path"])
    assert run.identifier == run.get_identifier() == expected["identifier"]
    assert run.commit_hash == expected["commit_hash"]
    assert run.path_to_experiment == expected["path"]
    if expected["finished"]:
        assert run.start_time == expected["start_time"]
        assert run.end_time == expected["end_time"]
        assert run.execution_time == pytest.approx(expected["execution_time"])
        assert run.comments == expected["comments"]
        assert run.is_finished
    else:
        assert run.start_time == expected["start"]  # from the identifier
        assert run.end_time is None and run.execution_time is None and run.comments is None
        assert not run.is_finished
    assert run.exec_args == set(expected["arg_lines"])
    assert run.exec_args_dict == expected["args"]
    assert run.script_name == "train_dqn" and run.experiment_name == "sweep"
    scores = run.scores()
    assert scores.dtype == np.float64
    if expected["scores"] is None:
        assert scores.size == 0
    else:
        wanted = list(expected["scores"])
        if expected["partial_last_line"]:  # an unterminated last line is kept when it parses
            wanted.append(float(expected["partial_last_line"]))
        np.testing.assert_array_equal(scores, np.array(wanted, dtype=float))


def test_info_dict_splits_on_first_colon(quirky):
    run = Experiment.load(quirky["runs"]["comments_with_colons"]["path"])
    assert run.info_dict["comments"] == "sweep: lr, see notes"
    assert all(not value.endswith("\n") for value in run.info_dict.values())
    assert Experiment.read_info(run.path_to_experiment) == run.info_dict


def test_exec_args_dict_types(quirky):
    args = Experiment.load(quirky["runs"]["normal"]["path"]).exec_args_dict
    assert args["-seed"] == 3 and type(args["-seed"]) is int
    assert args["-lr"] == 0.001 and type(args["-lr"]) is float
    assert args["train"] is True and args["--doubledqn"] is True
    multi = Experiment.load(quirky["runs"]["multi_value"]["path"]).exec_args_dict
    assert multi["-hidden"] == [64, 64] and all(type(v) is int for v in multi["-hidden"])
    assert multi["-betas"] == [0.9, 0.999]
    assert Experiment.load(quirky["runs"]["repeated_key"]["path"]).exec_args_dict["-tag"] == ["a", "b"]


def test_colonless_info_line_warns_with_file_and_line(tmp_path):
    run_dir = write_run(tmp_path, start=datetime(2024, 1, 1), info_text="commit_hash:abc\ngarbage\n")
    with pytest.warns(rundir.RunFormatWarning, match=r"hermes.info:2"):
        info = Experiment.read_info(run_dir)
    assert info == {"commit_hash": "abc"}


def test_wrong_encoding_is_read_by_the_latin1_fallback_and_every_run_loads(tmp_path):
    good = write_run(tmp_path, start=datetime(2024, 1, 1), scores=[1.0])
    odd = write_run(tmp_path, start=datetime(2024, 1, 2), info_text=b"commit_hash:\xff\xfe\n")
    with pytest.warns(rundir.RunFormatWarning, match=r"hermes.info:1: line is not UTF-8"):
        run = Experiment.load(odd)
    assert run.commit_hash == "\u00ff\u00fe"
    for index in (False, None):
        with pytest.warns(rundir.RunFormatWarning):
            runs = Experiment.load_all(tmp_path, index=index)
        assert [run.path_to_experiment for run in runs] == [good, odd]
        assert runs[1].commit_hash == "\u00ff\u00fe"


def test_is_experiment(quirky, tmp_path):
    assert Experiment.is_experiment(quirky["runs"]["normal"]["path"])
    assert not Experiment.is_experiment(tmp_path / "missing")
    assert not Experiment.is_experiment(quirky["non_runs"]["plots"])
    assert not Experiment.is_experiment(quirky["non_runs"]["latest_link"])
    with pytest.raises(FileNotFoundError):
        Experiment.load(tmp_path / "missing")


@pytest.mark.parametrize("index", [False, None])
def test_load_all_direct_subdirectories_only(quirky, index):
    runs = Experiment.load_all(quirky["sweep_dir"], index=index)
    assert sorted(run.identifier for run in runs) == quirky["sweep_runs"]
    assert isinstance(runs, ExperimentList)
    assert Experiment.load_all(quirky["experiments_dir"], index=index) == []


@pytest.mark.parametrize("index", [False, None])
def test_load_all_recursive_never_follows_links(quirky, index):
    runs = Experiment.load_all(quirky["experiments_dir"], recursive=True, index=index)
    paths = sorted(run.path_to_experiment for run in runs)
    assert paths == quirky["all_runs"]
    assert len(set(paths)) == len(paths)


@pytest.mark.parametrize("index", [False, None])
def test_filter_is_a_subset_test_and_latest_is_newest(quirky, index):
    runs = Experiment.load_all(quirky["sweep_dir"], index=index)
    normal = quirky["runs"]["normal"]
    exact = runs.filter_by_exec_args(*normal["arg_lines"])
    assert normal["identifier"] in [run.identifier for run in exact]
    lr = runs.filter_by_exec_args("-lr 0.001")
    expected = sorted(r["identifier"] for r in quirky["runs"].values()
                      if r["path"].parent == quirky["sweep_dir"] and "-lr 0.001" in r["arg_lines"])
    assert sorted(run.identifier for run in lr) == expected
    assert runs.filter_by_exec_args("-lr   0.001") == lr
    assert runs.filter_by_exec_args() == runs
    assert runs.latest().identifier == quirky["latest"]
    assert lr.latest().start_time == max(run.start_time for run in lr)


def test_latest_of_empty_list_and_runs_without_start_time():
    with pytest.raises(ValueError, match="empty"):
        ExperimentList([]).latest()
    a = Experiment("a", "/x/a", None, None)
    b = Experiment("b", "/x/b", None, datetime(2020, 1, 1))
    assert ExperimentList([a, b]).latest() is b
    with pytest.raises(TypeError):
        ExperimentList([1])  # type: ignore[list-item]


def test_scores_parsing_edge_cases(tmp_path):
    cases = {
        "header\n1\n2\n": [1, 2],
        "1\n\n2\n  \n3": [1, 2, 3],
        "1\n2\n3.": [1, 2, 3],
        "1\n2\n-": [1, 2],
        "1\nnan\ninf\n-inf\n": [1, np.nan, np.inf, -np.inf],
        "": [],
        "header only": [],
    }
    for i, (text, expected) in enumerate(cases.items()):
        path = tmp_path / f"{i}.scores"
        path.write_text(text)
        np.testing.assert_array_equal(rundir.read_scores(path), np.array(expected, dtype=float))
    bad = tmp_path / "bad.scores"
    bad.write_text("1\n2\nabc\n4\n")
    with pytest.raises(RunFormatError, match=r"bad.scores:3"):
        rundir.read_scores(bad)
    assert rundir.read_scores(tmp_path / "missing.scores").size == 0


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/b", "..", ".", ""])
def test_paths_never_escape_the_run(quirky, tmp_path, name):
    run = Experiment.load(quirky["runs"]["normal"]["path"])
    source = tmp_path / "source.txt"
    source.write_text("x")
    with pytest.raises(ValueError):
        run.file(name)
    if name:
        with pytest.raises(ValueError):
            run.copy_file(source, name)
        with pytest.raises(ValueError):
            run.move_file(source, name)
    assert source.exists()


def test_copy_and_move(quirky, tmp_path):
    run = Experiment.load(quirky["runs"]["normal"]["path"])
    source = tmp_path / "net.py"
    source.write_text("class Network: ...\n")
    assert run.copy_file(source).read_text() == source.read_text()
    assert run.copy_file(source, "renamed.py").name == "renamed.py"
    moved = run.move_file(source, "moved.py")
    assert moved.exists() and not source.exists()
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        run.copy_file(tmp_path / "missing.txt")
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        run.move_file(tmp_path / "missing.txt")


def test_log_files_close_even_when_the_body_raises(quirky):
    run = Experiment.load(quirky["runs"]["crashed"]["path"])
    with pytest.raises(RuntimeError), run.open_log_files() as (out, err):
        handles = (out, err)
        raise RuntimeError("boom")
    assert all(handle.closed for handle in handles)
    with pytest.raises(RuntimeError), run.open_stderr_file() as err:
        handle = err
        assert "Traceback" in err.read()
        raise RuntimeError("boom")
    assert handle.closed


def test_state_dicts_load_safely(quirky, tmp_path):
    torch = pytest.importorskip("torch")
    run = Experiment.load(quirky["runs"]["normal"]["path"])
    net = torch.nn.Linear(3, 2)
    torch.save(net.state_dict(), run.file("net.pth"))
    assert run.list_pth_files() == ["net.pth"]
    state = run.load_state_dict("net.pth")
    assert torch.equal(state["weight"], net.weight.detach())
    other = torch.nn.Linear(3, 2)
    assert run.load_state_dict("net.pth", other) is other
    assert torch.equal(other.weight, net.weight) and not other.training
    with pytest.raises(FileNotFoundError):
        run.load_state_dict("missing.pth")
    with pytest.raises(ValueError):
        run.load_state_dict("../net.pth")


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_hostile_pickle_never_runs(quirky, tmp_path):
    torch = pytest.importorskip("torch")
    run = Experiment.load(quirky["runs"]["normal"]["path"])
    marker = tmp_path / "pwned"
    torch.save({"x": _Payload(str(marker))}, run.file("evil.pth"))
    assert not marker.exists()  # pickling does not call the payload; unpickling would
    with pytest.raises(UntrustedFileError, match="trusted=True"):
        run.load_state_dict("evil.pth")
    assert not marker.exists()


def test_create_writes_the_legacy_layout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Experiment.create(tmp_path, "train_dqn.py", "sweep", ["train", "-lr 0.001", "-hidden 64 64"],
                           job_idx=2, comments=["first: try", "b"], index=False) as run:
        run.append_scores(1.0, 2.5)
        run.append_scores(3.0)
        assert not run.is_finished
    assert run.path_to_experiment.parent == tmp_path / "experiments" / "train_dqn" / "sweep"
    assert run.identifier.endswith("_2_00000")  # no git repository here
    lines = (run.path_to_experiment / "hermes.info").read_text().splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [
        "commit_hash", "start_time", "end_time", "execution_time", "comments"]
    assert lines[-1] == "comments:first: try,b"
    loaded = Experiment.load(run.path_to_experiment)
    assert loaded.is_finished and loaded.start_time == run.start_time
    assert loaded.identifier.startswith(rundir.format_time(loaded.start_time))
    assert loaded.exec_args_dict == {"train": True, "-lr": 0.001, "-hidden": [64, 64]}
    np.testing.assert_array_equal(loaded.scores(), [1.0, 2.5, 3.0])
    for name in ("stdout.log", "stderr.log", "re_execution.hermes", "exec_arguments"):
        assert (run.path_to_experiment / name).is_file()
    assert not [p for p in run.path_to_experiment.iterdir() if p.name.endswith(".tmp")]
    loaded.store_comments("later")
    assert Experiment.load(run.path_to_experiment).comments == "first: try,b,later"


def test_create_uses_git_commit(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "x"], cwd=repo, check=True, env=env)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                          check=True).stdout.strip()
    monkeypatch.chdir(repo)
    run = Experiment.create(tmp_path / "out", "s", "e", index=False)
    assert run.commit_hash == head and run.identifier.endswith(head[-5:])


def test_context_manager_finishes_a_failing_run(tmp_path):
    with pytest.raises(KeyError), Experiment.create(tmp_path, "s", "e", commit_hash="abcdef",
                                                     index=False) as run:
        raise KeyError("diverged")
    loaded = Experiment.load(run.path_to_experiment)
    assert loaded.is_finished
    assert "diverged" in (run.path_to_experiment / "stderr.log").read_text()
    with pytest.raises(RuntimeError, match="already finished"):
        run.finish()


def test_same_microsecond_never_shares_a_directory(tmp_path):
    start = datetime(2024, 5, 1, 12, 0, 0, 5)
    first = rundir.create_run_dir(tmp_path, "s", "e", ["a"], 0, "abcdef", start)
    second = rundir.create_run_dir(tmp_path, "s", "e", ["b"], 0, "abcdef", start)
    assert first[0] != second[0]
    assert (first[0] / "exec_arguments").read_text() == "a\n"
    assert (second[0] / "exec_arguments").read_text() == "b\n"


@pytest.mark.parametrize("bad", [["two\nlines"], ["  "]])
def test_create_rejects_bad_arguments(tmp_path, bad):
    with pytest.raises(ValueError):
        Experiment.create(tmp_path, "s", "e", bad, commit_hash="abc", index=False)
    with pytest.raises(ValueError):
        Experiment.create(tmp_path, "../s", "e", commit_hash="abc", index=False)


def test_experiment_frame(quirky):
    pytest.importorskip("pandas")
    runs = Experiment.load_all(quirky["other_dir"], index=False)
    for frame in (ExperimentFrame(runs), runs.to_frame()):
        assert list(frame["experiments"]) == list(runs)
        assert set(frame.columns) == {"experiments", "train", "-lr", "-bs"}
        assert sorted(frame["-bs"]) == [32, 128]


def test_missing_extra_names_the_extra(quirky, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "pyhermes\[pandas\]"'):
        ExperimentFrame([])


def test_erase_deletes_the_run_and_its_index_row(quirky):
    runs = Experiment.load_all(quirky["other_dir"])
    victim = runs[0]
    victim.erase()
    assert not victim.path_to_experiment.exists()
    assert [run.identifier for run in Experiment.load_all(quirky["other_dir"])] == [runs[1].identifier]


_arg_key = st.from_regex(r"-{1,2}[a-z][a-z_]{0,6}", fullmatch=True)
_value = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.from_regex(r"[a-z][a-z0-9_.]{0,8}", fullmatch=True),
)


def _expected_value(text: str):
    """The documented conversion, written independently: int literal, else float, else str."""
    if text.lstrip("+-").isdigit() and text.count("-") + text.count("+") <= 1 and text[-1].isdigit():
        return int(text)
    try:
        return float(text) if "_" not in text else text
    except ValueError:
        return text


@given(st.lists(st.tuples(_arg_key, st.lists(_value, max_size=3)), max_size=8))
def test_exec_args_dict_property(entries):
    lines = [" ".join([key, *values]) for key, values in entries]
    parsed = rundir.exec_args_dict(lines)
    assert list(parsed) == list(dict.fromkeys(key for key, _ in entries))
    for key in parsed:
        occurrences = [values for k, values in entries if k == key]
        expected = [
            True if not values else
            _expected_value(values[0]) if len(values) == 1 else
            [_expected_value(v) for v in values]
            for values in occurrences
        ]
        wanted = expected[0] if len(expected) == 1 else expected
        assert parsed[key] == wanted
        assert type(parsed[key]) is type(wanted)
        if isinstance(wanted, list):
            assert [type(v) for v in parsed[key]] == [type(v) for v in wanted]


def test_no_warnings_on_clean_tree(quirky):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Experiment.load_all(quirky["sweep_dir"])


def test_bom_crlf_and_tabs(tmp_path):
    run_dir = write_run(
        tmp_path, start=datetime(2024, 1, 3), scores=[1.0],
        info_text=b"\xef\xbb\xbfcommit_hash:abc12\r\nstart_time:2024_01_03_000000000000\r\n"
                  b"end_time:2024_01_03_010000000000\r\ncomments:a: b\r\n",
        exec_args_text="train\r\n-lr\t0.01\r\n-hidden  64\t64\r\n",
    )
    run = Experiment.load(run_dir)
    assert run.commit_hash == "abc12" and run.comments == "a: b"
    assert run.end_time == datetime(2024, 1, 3, 1)
    assert run.exec_args == {"train", "-lr 0.01", "-hidden 64 64"}
    assert run.exec_args_dict == {"train": True, "-lr": 0.01, "-hidden": [64, 64]}
    [indexed] = Experiment.load_all(tmp_path)
    assert indexed.commit_hash == "abc12" and indexed.exec_args == run.exec_args


def test_scores_lines_hold_one_value(tmp_path):
    for text, line in (("3\n1 2\n", 2), ("1 2\n3\n", 1)):
        path = tmp_path / "x.scores"
        path.write_text(text)
        with pytest.raises(RunFormatError, match=rf"x.scores:{line}"):
            rundir.read_scores(path)


_score_line = st.sampled_from(
    ["1", "-2.5", "+3", "1e5", "-.5", "7.", "nan", "-inf", "Infinity", "NaN", "1 2", "", " 4",
     "0x10", "1_0", "e", "--1", "1e", "٣", "4\t", "12345678901234567890"]
)


@given(st.lists(_score_line, min_size=1, max_size=12), st.booleans())
def test_the_fast_scores_parse_agrees_with_numbers_line_by_line(lines, final_newline):
    """Where the fast path answers, it gives what numpy gives for each line on its own."""
    from pyhermes.rundir import _scores

    text = "\n".join(lines) + ("\n" if final_newline else "")
    fast = _scores._parse_plain_scores(np, text.encode())
    if fast is None:
        return
    expected = np.array([float(line) for line in text.split("\n")[: fast.size]], dtype=np.float64)
    assert len(text.rstrip("\n").split("\n")) == fast.size
    np.testing.assert_array_equal(fast, expected)


def test_only_newlines_end_info_lines(tmp_path):
    run_dir = write_run(tmp_path, start=datetime(2024, 1, 4),
                        info_text="commit_hash:abc\ncomments:a\x85b\u2028c\x0cd\n")
    assert Experiment.load(run_dir).comments == "a\x85b\u2028c\x0cd"


def test_an_explicit_symlink_loads_its_target(quirky):
    run = Experiment.load(quirky["non_runs"]["latest_link"])
    assert run.identifier == quirky["latest"]
    assert not Experiment.is_experiment(quirky["non_runs"]["latest_link"])


def test_layout_names_need_the_layout(tmp_path):
    flat = write_run(tmp_path / "flat", start=datetime(2024, 1, 5))
    run = Experiment.load(flat)
    assert run.script_name is None and run.experiment_name is None


def test_commit_hash_must_be_plain(tmp_path):
    for bad in ("abc\ndef", "ab/cd", ""):
        with pytest.raises(ValueError, match="commit hash"):
            Experiment.create(tmp_path, "s", "e", commit_hash=bad, index=False)


def test_finishing_a_loaded_run_keeps_its_comments(tmp_path):
    run_dir = write_run(tmp_path, start=datetime(2024, 1, 6), finished=False)
    run = Experiment.load(run_dir)
    run.store_comments("keep me")
    run.finish()
    assert Experiment.load(run_dir).comments == "keep me"
