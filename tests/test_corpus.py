"""Tests of the independent legacy writers: scripts/make_corpus.py and tests/legacy.py."""

import math
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import legacy
import make_corpus as make_corpus_module
import pytest
from make_corpus import make_corpus

REPO = Path(__file__).resolve().parent.parent

IDENT_RE = re.compile(r"^(\d{4}_\d{2}_\d{2}_\d{12})_(\d+)_([0-9a-f]{5})$")
FINISHED_KEYS = ["commit_hash", "start_time", "end_time", "execution_time", "comments"]
N_RUNS = 300


def snapshot(root: Path) -> dict[str, bytes]:
    """{relative path: bytes} of every file under root."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def info_lines(run: Path) -> list[str]:
    text = (run / "hermes.info").read_text(encoding="utf-8")
    assert text.endswith("\n")
    return text[:-1].split("\n")


def info_dict(run: Path) -> dict[str, str]:
    return dict(line.split(":", 1) for line in info_lines(run))


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def score_lines(path: Path) -> tuple[list[str], bool]:
    """(lines without header, whether the file ends with a newline)."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    complete = text.endswith("\n")
    if complete:
        lines = lines[:-1]
    if lines and not is_number(lines[0]):
        lines = lines[1:]
    return lines, complete


def arg_lines(run: Path) -> list[str]:
    raw = (run / "exec_arguments").read_text(encoding="utf-8").split("\n")
    return [line.strip() for line in raw if line.strip()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    t0 = time.perf_counter()
    runs = make_corpus(out, N_RUNS, seed=0)
    elapsed = time.perf_counter() - t0
    return out, runs, elapsed


# --------------------------------------------------------------------------- make_corpus


def test_corpus_is_deterministic(tmp_path):
    a = make_corpus(tmp_path / "a", 60, seed=7, scores_per_run=50)
    b = make_corpus(tmp_path / "b", 60, seed=7, scores_per_run=50)
    assert [p.name for p in a] == [p.name for p in b]
    snap_a, snap_b = snapshot(tmp_path / "a"), snapshot(tmp_path / "b")
    assert len(snap_a) >= 6 * 60
    assert snap_a == snap_b
    make_corpus(tmp_path / "c", 60, seed=8, scores_per_run=50)
    assert snapshot(tmp_path / "c") != snap_a


def test_corpus_layout(corpus):
    out, runs, _ = corpus
    exp_dir = out / "experiments" / "train_dqn" / "sweep"
    assert sorted(p.name for p in exp_dir.iterdir()) == sorted(p.name for p in runs)
    starts = []
    for run in runs:
        assert run.parent == exp_dir
        m = IDENT_RE.match(run.name)
        assert m, run.name
        start = datetime.strptime(m.group(1), legacy.TIME_FORMAT)
        starts.append(start)
        lines = info_lines(run)
        key, commit = lines[0].split(":", 1)
        assert key == "commit_hash"
        assert re.fullmatch(r"[0-9a-f]{40}", commit)
        assert commit[-5:] == m.group(3)
        names = {p.name for p in run.iterdir()}
        assert {
            "hermes.info",
            "exec_arguments",
            "re_execution.hermes",
            "stdout.log",
            "stderr.log",
            f"{run.name}.scores",
        } <= names
        if len(lines) > 1:
            info = dict(line.split(":", 1) for line in lines)
            assert [line.split(":", 1)[0] for line in lines] == FINISHED_KEYS
            info_start = datetime.strptime(info["start_time"], legacy.TIME_FORMAT)
            end = datetime.strptime(info["end_time"], legacy.TIME_FORMAT)
            assert timedelta(0) <= info_start - start < timedelta(seconds=1)
            duration = float(info["execution_time"])
            assert abs((end - info_start).total_seconds() - duration) < 1e-5
    assert len(set(starts)) == len(starts)
    assert timedelta(days=60) < max(starts) - min(starts) < timedelta(days=190)
    assert len({s.microsecond for s in starts}) > len(starts) * 0.9


def test_corpus_crashed_runs(corpus):
    _, runs, _ = corpus
    crashed = [r for r in runs if len(info_lines(r)) == 1]
    assert len(crashed) == round(N_RUNS * 0.02)
    for run in crashed:
        commit = info_lines(run)[0].split(":", 1)[1]
        assert (run / "hermes.info").read_text() == f"commit_hash:{commit}\n"
        lines, complete = score_lines(run / f"{run.name}.scores")
        assert len(lines) < 1000
        assert "Traceback" in (run / "stderr.log").read_text()


def test_corpus_scores_and_args(corpus):
    _, runs, _ = corpus
    finished = [r for r in runs if len(info_lines(r)) > 1]
    headers = 0
    for run in finished:
        path = run / f"{run.name}.scores"
        if not is_number(path.read_text().split("\n", 1)[0]):
            headers += 1
        lines, complete = score_lines(path)
        assert complete
        assert len(lines) == 1000
        assert all(is_number(line) for line in lines)
    assert 0 < headers < len(finished) * 0.3

    args = [arg_lines(r) for r in runs]
    double = sum("--doubledqn" in a for a in args)
    assert 0.4 < double / len(runs) < 0.6
    assert all(a[0] == "train" for a in args)
    assert all(sum(x.startswith("-lr ") for x in a) == 1 for a in args)
    assert {x for a in args for x in a if x.startswith("-hidden ")} == {
        "-hidden 64 64",
        "-hidden 128 128",
        "-hidden 256",
    }
    eps = sum("-es 1.0" in a for a in args)
    assert 0 < eps < len(runs)
    comments = [info_dict(r)["comments"] for r in finished]
    assert "" in comments
    assert any(":" in c for c in comments)
    commits = {info_lines(r)[0] for r in runs}
    assert 2 <= len(commits) <= 6
    jobs = {IDENT_RE.match(r.name).group(2) for r in runs}
    assert len(jobs) > 5


def test_corpus_ranking_is_meaningful(corpus):
    _, runs, _ = corpus
    final_by_lr: dict[str, list[float]] = {}
    for run in runs:
        if len(info_lines(run)) == 1:
            continue
        lines, _ = score_lines(run / f"{run.name}.scores")
        final = sum(float(x) for x in lines[-100:]) / 100
        lr = next(a for a in arg_lines(run) if a.startswith("-lr ")).split()[1]
        final_by_lr.setdefault(lr, []).append(final)
    mean = {lr: sum(v) / len(v) for lr, v in final_by_lr.items()}
    assert mean["0.001"] > mean["0.0005"] > mean["0.0001"]
    assert mean["0.001"] > mean["0.01"] + 50


def test_corpus_refuses_non_empty_folder(tmp_path, capsys):
    make_corpus(tmp_path, 3, scores_per_run=5)
    with pytest.raises(FileExistsError):
        make_corpus(tmp_path, 3, scores_per_run=5)
    assert make_corpus_module.main([str(tmp_path), "--runs", "3"]) == 1
    assert "refusing" in capsys.readouterr().err
    # another experiment name in the same tree is fine
    assert (
        make_corpus_module.main(
            [str(tmp_path), "--runs", "2", "--scores", "5", "--experiment", "other"]
        )
        == 0
    )
    assert len(list((tmp_path / "experiments" / "train_dqn" / "other").iterdir())) == 2


def test_corpus_cli(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "make_corpus.py"),
            str(tmp_path),
            "--runs",
            "4",
            "--scores",
            "10",
            "--script",
            "eval",
            "--experiment",
            "baseline",
            "--seed",
            "3",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.startswith("wrote 4 runs")
    assert len(proc.stdout.strip().splitlines()) == 1
    runs = list((tmp_path / "experiments" / "eval" / "baseline").iterdir())
    assert len(runs) == 4


def test_the_tests_and_the_command_share_one_generator(tmp_path):
    """Tests import scripts/make_corpus.py by name (scripts/ is on sys.path), the module the
    command runs; legacy.make_corpus hands over to it."""
    assert Path(make_corpus_module.__file__).resolve() == REPO / "scripts" / "make_corpus.py"
    assert sys.modules["make_corpus"] is make_corpus_module
    made = legacy.make_corpus(tmp_path / "a", 5, seed=4, scores_per_run=7)
    assert [p.name for p in made] == [p.name for p in make_corpus(tmp_path / "b", 5, seed=4, scores_per_run=7)]
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")


# --------------------------------------------------------------------------- legacy.write_run


def test_make_identifier():
    start = datetime(2024, 3, 1, 15, 45, 1, 123456)
    assert legacy.make_identifier(start, 3, "ffffab12c") == "2024_03_01_154501123456_3_ab12c"
    assert (
        legacy.make_identifier(datetime(2024, 1, 2), 0, "00000")
        == "2024_01_02_000000000000_0_00000"
    )


def test_write_run_finished(tmp_path):
    start = datetime(2024, 5, 6, 7, 8, 9, 10)
    run = legacy.write_run(
        tmp_path / "exp",
        start=start,
        job_idx=2,
        scores=[1, 2.5, float("nan")],
        comments="a: b, c",
        execution_time=3.25,
        header="ret",
    )
    assert run.name == "2024_05_06_070809000010_2_34567"
    assert info_lines(run) == [
        f"commit_hash:{legacy.DEFAULT_COMMIT}",
        "start_time:2024_05_06_070809000010",
        "end_time:2024_05_06_070812250010",
        "execution_time:3.25",
        "comments:a: b, c",
    ]
    assert (run / "exec_arguments").read_text() == "".join(
        a + "\n" for a in legacy.DEFAULT_EXEC_ARGS
    )
    assert (run / f"{run.name}.scores").read_text() == "ret\n1.0\n2.5\nnan\n"
    assert (run / "stdout.log").read_bytes() == b""
    assert (run / "re_execution.hermes").read_text().startswith("PRE\n")


def test_write_run_raw_overrides(tmp_path):
    start = datetime(2024, 5, 6)
    run = legacy.write_run(
        tmp_path,
        start=start,
        finished=False,
        scores="1.0\n2.0\n",
        partial_last_line="3.",
        info_text=b"commit_hash:abc\xff\n",
        exec_args_text=b"-lr 0.1\r\n\r\n",
        extra_files={"model_weights.txt": "w", "sub/x.bin": b"\x00"},
        extra_info_lines=["gpu:0"],
    )
    assert (run / "hermes.info").read_bytes() == b"commit_hash:abc\xff\n"
    assert (run / "exec_arguments").read_bytes() == b"-lr 0.1\r\n\r\n"
    assert (run / f"{run.name}.scores").read_bytes() == b"1.0\n2.0\n3."
    assert (run / "sub" / "x.bin").read_bytes() == b"\x00"
    crashed = legacy.write_run(
        tmp_path, start=start, job_idx=1, finished=False, extra_info_lines=["gpu:0"]
    )
    assert (crashed / "hermes.info").read_text() == f"commit_hash:{legacy.DEFAULT_COMMIT}\ngpu:0\n"
    assert not list(crashed.glob("*.scores"))
    with pytest.raises(FileExistsError):
        legacy.write_run(tmp_path, start=start, job_idx=1)


# --------------------------------------------------------------------------- build_quirky_tree


@pytest.fixture
def tree(tmp_path):
    return legacy.build_quirky_tree(tmp_path)


def test_quirky_tree_descriptions_match_files(tree):
    for role, run in tree["runs"].items():
        path = run["path"]
        assert path.is_dir() and not path.is_symlink(), role
        assert path.name == run["identifier"]
        assert path.name == legacy.make_identifier(run["start"], run["job_idx"], run["commit_hash"])
        assert info_lines(path) == run["info_lines"], role
        assert arg_lines(path) == run["arg_lines"], role
        scores_files = list(path.glob("*.scores"))
        if run["scores"] is None:
            assert scores_files == [], role
            continue
        assert [p.name for p in scores_files] == [f"{path.name}.scores"]
        lines, complete = score_lines(scores_files[0])
        if run["partial_last_line"] is not None:
            assert not complete and lines[-1] == run["partial_last_line"]
            lines = lines[:-1]
        parsed = [float(x) for x in lines]
        expected = run["scores"]
        assert len(parsed) == len(expected), role
        for got, want in zip(parsed, expected, strict=True):
            assert got == want or (math.isnan(got) and math.isnan(want)), role
        if run["finished"]:
            info = info_dict(path)
            assert datetime.strptime(info["start_time"], legacy.TIME_FORMAT) == run["start_time"]
            assert datetime.strptime(info["end_time"], legacy.TIME_FORMAT) == run["end_time"]
            assert float(info["execution_time"]) == run["execution_time"]
            assert info["comments"] == run["comments"]


def test_quirky_tree_roles(tree):
    runs = tree["runs"]
    sweep_roles = {
        "normal",
        "crashed",
        "in_progress",
        "comments_with_colons",
        "header_scores",
        "nan_inf_scores",
        "blank_lines_exec_args",
        "multi_value",
        "repeated_key",
        "no_scores",
        "empty_comments",
        "no_git",
    }
    assert sweep_roles <= set(runs)
    assert sorted(runs[r]["identifier"] for r in sweep_roles) == tree["sweep_runs"]

    crashed = runs["crashed"]["path"]
    assert info_lines(crashed) == [f"commit_hash:{runs['crashed']['commit_hash']}"]
    assert "Traceback" in (crashed / "stderr.log").read_text()

    in_progress = runs["in_progress"]["path"]
    assert len(info_lines(in_progress)) == 1
    text = (in_progress / f"{in_progress.name}.scores").read_text()
    assert text.endswith("\n13.2") and not text.endswith("\n")

    assert info_lines(runs["comments_with_colons"]["path"])[-1] == "comments:sweep: lr, see notes"
    assert info_lines(runs["empty_comments"]["path"])[-1] == "comments:"

    header_run = runs["header_scores"]["path"]
    first = (header_run / f"{header_run.name}.scores").read_text().split("\n")[0]
    assert first == "episode_return" and not is_number(first)

    nan_run = runs["nan_inf_scores"]["path"]
    assert (nan_run / f"{nan_run.name}.scores").read_text() == "1.0\nnan\ninf\n-inf\n2.5\n"

    raw = (runs["blank_lines_exec_args"]["path"] / "exec_arguments").read_text().split("\n")
    assert "" in raw[:-1]  # blank lines inside the file
    assert any(line.strip() == "" and line for line in raw)  # whitespace-only line
    assert any(line != line.strip() and line.strip() for line in raw)  # stray spaces

    assert "-hidden 64 64" in arg_lines(runs["multi_value"]["path"])
    assert runs["multi_value"]["args"]["-hidden"] == [64, 64]
    tags = [a for a in arg_lines(runs["repeated_key"]["path"]) if a.startswith("-tag ")]
    assert tags == ["-tag a", "-tag b"]
    assert not list(runs["no_scores"]["path"].glob("*.scores"))
    assert runs["no_git"]["identifier"].endswith("_00000")
    assert info_lines(runs["no_git"]["path"])[0] == "commit_hash:00000"
    assert runs["normal"]["args"]["-seed"] == 3.0
    assert (runs["normal"]["path"] / "dqn.py").is_file()


def test_quirky_tree_latest(tree):
    runs = tree["runs"]
    assert tree["latest_role"] == "crashed"
    assert tree["latest"] == runs["crashed"]["identifier"] == max(tree["sweep_runs"])
    assert tree["oldest"] == runs["normal"]["identifier"] == min(tree["sweep_runs"])
    newest = max(runs.values(), key=lambda r: r["start"])
    assert newest["identifier"] == tree["latest"]
    assert not runs["crashed"]["finished"] and runs["crashed"]["start_time"] is None
    outside = tree["outside_run"]
    assert outside.name > tree["latest"]  # the trap behind the `external` link


def test_quirky_tree_non_runs(tree):
    sweep = tree["sweep_dir"]
    nr = tree["non_runs"]
    assert nr["notes"].is_file() and nr["notes"].parent == sweep
    assert nr["plots"].is_dir() and not (nr["plots"] / "hermes.info").exists()
    assert nr["latest_link"].is_symlink()
    assert nr["latest_link"].resolve() == tree["runs"]["crashed"]["path"].resolve()
    assert nr["external_link"].is_symlink()
    assert nr["external_link"].resolve() == tree["outside_run"].resolve()
    assert (nr["external_link"] / "hermes.info").is_file()
    assert tree["experiments_dir"].resolve() not in nr["external_link"].resolve().parents
    assert nr["loop_link"].is_symlink() and nr["loop_link"].resolve() == sweep.resolve()
    assert nr["dangling_link"].is_symlink() and not nr["dangling_link"].exists()
    assert nr["script_readme"].is_file()

    direct = sorted(
        p.name
        for p in sweep.iterdir()
        if p.is_dir() and not p.is_symlink() and (p / "hermes.info").is_file()
    )
    assert direct == tree["sweep_runs"]
    # the symlinks would add runs if followed
    assert (sweep / "latest" / "hermes.info").is_file()
    assert (sweep / "loop" / tree["latest"] / "hermes.info").is_file()


def test_quirky_tree_recursive_layout(tree):
    found = sorted(
        Path(dirpath)
        for dirpath, _dirs, files in os.walk(tree["experiments_dir"])  # no symlink following
        if "hermes.info" in files
    )
    assert found == tree["all_runs"]
    assert len(tree["other_runs"]) == 2 and len(tree["baseline_runs"]) == 1
    assert all(
        p.parent == tree["other_dir"] for p in tree["all_runs"] if p.name in tree["other_runs"]
    )
    assert (tree["experiments_dir"] / "eval" / "baseline" / tree["baseline_runs"][0]).is_dir()
    assert len(tree["all_runs"]) == len(tree["runs"]) == 15
