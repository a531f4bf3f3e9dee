"""Independent writer of legacy hermes run directories, for tests.

This module writes run directories the way the original ``hermes`` runner did
(see ``legacy-format.md``), so that pyhermes' *readers* can be tested against
files that were not produced by pyhermes itself.  It deliberately does not
import pyhermes: only the standard library is used.

Layout written::

    <root>/experiments/<script_name>/<experiment_name>/<identifier>/
        hermes.info            commit_hash:<hash>            (at creation)
                               start_time:<%Y_%m_%d_%H%M%S%f>  (at the end, finished runs only)
                               end_time:<%Y_%m_%d_%H%M%S%f>
                               execution_time:<float seconds>
                               comments:<text, may be empty, may hold ':' and ','>
        exec_arguments         one argument per line
        re_execution.hermes    the one-job execution file (PRE / STD-H / STD-E / EXEC)
        stdout.log, stderr.log
        <identifier>.scores    one float per line (optional)
        ...                    any other files

``identifier`` is ``<start %Y_%m_%d_%H%M%S%f>_<job index>_<last 5 chars of commit>``.

Entry points:

* :func:`make_identifier` -- the identifier of a run.
* :func:`write_run` -- write one run directory (with hooks for malformed content).
* :func:`build_quirky_tree` -- a small tree holding every quirk of the legacy format,
  with a description of what was written.

Usage in a test::

    from legacy import build_quirky_tree, write_run

    def test_something(tmp_path):
        tree = build_quirky_tree(tmp_path)
        sweep = tree["sweep_dir"]              # experiments/train_dqn/sweep
        crashed = tree["runs"]["crashed"]      # {"path": ..., "identifier": ..., ...}
"""

import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

TIME_FORMAT = "%Y_%m_%d_%H%M%S%f"
"""Format of the identifier's time part and of ``start_time`` / ``end_time`` in hermes.info."""

DEFAULT_COMMIT = "0123456789abcdef0123456789abcdef01234567"
"""Commit hash used by :func:`write_run` when none is given (suffix ``01234567`` -> ``34567``)."""

NO_GIT_COMMIT = "00000"
"""What the legacy runner stored as commit hash when no git repository was found."""

DEFAULT_EXEC_ARGS: tuple[str, ...] = ("train", "--doubledqn", "-lr 0.001", "-gamma 0.99")
"""Arguments written by :func:`write_run` when none are given (positionals, flags, options)."""

INFO_FILE = "hermes.info"
EXEC_ARGS_FILE = "exec_arguments"
RE_EXECUTION_FILE = "re_execution.hermes"
STDOUT_FILE = "stdout.log"
STDERR_FILE = "stderr.log"
SCORES_SUFFIX = ".scores"


def format_time(moment: datetime) -> str:
    """Format ``moment`` with :data:`TIME_FORMAT` (microseconds always 6 digits)."""
    return moment.strftime(TIME_FORMAT)


def make_identifier(start: datetime, job_idx: int, commit_hash: str) -> str:
    """Return the legacy identifier ``<start>_<job_idx>_<commit_hash[-5:]>``.

    >>> make_identifier(datetime(2024, 3, 1, 15, 45, 1, 123456), 3, "deadbeefab12c")
    '2024_03_01_154501123456_3_ab12c'
    """
    return f"{format_time(start)}_{job_idx}_{commit_hash[-5:]}"


def format_score(value: float) -> str:
    """Format one score as the legacy scripts did: ``str(float)`` (``nan``, ``inf``, ``-inf``)."""
    return repr(float(value))


def _as_bytes(content: str | bytes) -> bytes:
    return content if isinstance(content, bytes) else content.encode("utf-8")


def _write(path: Path, content: str | bytes) -> None:
    # Bytes, so that no newline translation or encoding choice alters the content.
    path.write_bytes(_as_bytes(content))


def re_execution_text(script_name: str, exec_args: Sequence[str], comments: str = "") -> str:
    """The one-job execution file the runner stored as ``re_execution.hermes``.

    Sections ``PRE`` / ``STD-H`` / ``STD-E`` / ``EXEC``; the job line is the last line
    and, as in the original, has no trailing newline.
    """
    hermes_opts = f"-c {comments}" if comments else ""
    line = ", ".join(["python", f"{script_name}.py", *exec_args])
    return f"PRE\npath_to_experiments:/data/hermes\nSTD-H\nSTD-E\nEXEC\n[[{line}],[{hermes_opts}]]"


def write_run(
    experiment_dir: Path,
    *,
    start: datetime,
    job_idx: int = 0,
    commit_hash: str = DEFAULT_COMMIT,
    exec_args: Sequence[str] = DEFAULT_EXEC_ARGS,
    scores: Sequence[float] | str | None = None,
    finished: bool = True,
    execution_time: float = 12.5,
    comments: str = "",
    header: str | None = None,
    partial_last_line: str | None = None,
    extra_info_lines: Sequence[str] = (),
    info_text: str | bytes | None = None,
    exec_args_text: str | bytes | None = None,
    extra_files: Mapping[str, bytes | str] | None = None,
    stdout: str = "",
    stderr: str = "",
    launch_delay: float = 0.0,
) -> Path:
    """Write one legacy run directory under ``experiment_dir`` and return its path.

    The directory is ``experiment_dir / make_identifier(start, job_idx, commit_hash)``;
    it must not exist yet (``experiment_dir`` and its parents are created as needed).

    Files written:

    ``hermes.info``
        ``commit_hash:<commit_hash>``, then each of ``extra_info_lines`` (verbatim, a
        newline added), then -- only if ``finished`` -- ``start_time:``, ``end_time:``,
        ``execution_time:`` and ``comments:`` in that order.  ``start_time`` is
        ``start + launch_delay`` seconds (the legacy runner took it just after creating
        the directory; default 0 makes it equal to the identifier's time), ``end_time``
        is ``start_time + execution_time`` and ``execution_time`` is ``str(float)``.
        A run that is not ``finished`` (crashed, killed or still running) has the
        ``commit_hash`` line (and extra lines) only.  ``info_text`` replaces the whole
        file (``bytes`` are written as-is, e.g. for a wrong encoding).
    ``exec_arguments``
        ``exec_args`` one per line, each followed by ``\\n``; ``exec_args_text``
        replaces the whole file.
    ``re_execution.hermes``
        see :func:`re_execution_text`.
    ``stdout.log`` / ``stderr.log``
        ``stdout`` / ``stderr`` (empty by default, as created by the runner).
    ``<identifier>.scores``
        written only if ``scores``, ``header`` or ``partial_last_line`` is given:
        ``header`` + ``\\n`` (a non-numeric first line), then the scores -- a sequence
        gives one :func:`format_score` value per line, each ending in ``\\n``; a ``str``
        is written verbatim -- then ``partial_last_line`` with no trailing newline
        (a run still being appended to).
    ``extra_files``
        ``{name: content}`` written last, so they may also replace any file above.
    """
    identifier = make_identifier(start, job_idx, commit_hash)
    run_dir = Path(experiment_dir) / identifier
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir()

    if info_text is None:
        lines = [f"commit_hash:{commit_hash}", *extra_info_lines]
        if finished:
            info_start = start + timedelta(seconds=launch_delay)
            end = info_start + timedelta(seconds=execution_time)
            lines += [
                f"start_time:{format_time(info_start)}",
                f"end_time:{format_time(end)}",
                f"execution_time:{float(execution_time)!s}",
                f"comments:{comments}",
            ]
        info_text = "".join(line + "\n" for line in lines)
    _write(run_dir / INFO_FILE, info_text)

    if exec_args_text is None:
        exec_args_text = "".join(arg + "\n" for arg in exec_args)
    _write(run_dir / EXEC_ARGS_FILE, exec_args_text)

    script_name = run_dir.parent.parent.name or "script"
    _write(run_dir / RE_EXECUTION_FILE, re_execution_text(script_name, exec_args, comments))
    _write(run_dir / STDOUT_FILE, stdout)
    _write(run_dir / STDERR_FILE, stderr)

    if scores is not None or header is not None or partial_last_line is not None:
        parts = []
        if header is not None:
            parts.append(header + "\n")
        if isinstance(scores, str):
            parts.append(scores)
        elif scores is not None:
            parts.append("".join(format_score(v) + "\n" for v in scores))
        if partial_last_line is not None:
            parts.append(partial_last_line)
        _write(run_dir / f"{identifier}{SCORES_SUFFIX}", "".join(parts))

    for name, content in (extra_files or {}).items():
        target = run_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        _write(target, content)
    return run_dir


# --------------------------------------------------------------------------- quirky tree

_COMMIT_A = "9f3c2e1b7a6d5c4b3a29180716f5e4d3c2b1a0f9"  # suffix "1a0f9"
_COMMIT_B = "4e5d6c7b8a9f0e1d2c3b4a5968778695a4b3c2d1"  # suffix "3c2d1"
_NAN = float("nan")
_INF = float("inf")

# Expected parsed arguments follow legacy-format.md's documented exec_args_dict:
# positionals and flags -> True; one value -> float; several values -> list of int,
# else list of float, else list of str; a repeated key -> list of its values.


def _sweep_specs() -> list[dict[str, Any]]:
    """The runs of ``experiments/train_dqn/sweep`` (role, write_run kwargs, expectations)."""
    d = datetime
    normal_start = d(2024, 3, 1, 9, 15, 1, 123456)
    normal_id = make_identifier(normal_start, 0, _COMMIT_A)
    return [
        {
            "role": "normal",
            "start": normal_start,
            "job_idx": 0,
            "commit_hash": _COMMIT_A,
            "exec_args": ["train", "--doubledqn", "-lr 0.001", "-gamma 0.99", "-seed 3"],
            "args": {
                "train": True,
                "--doubledqn": True,
                "-lr": 0.001,
                "-gamma": 0.99,
                "-seed": 3.0,
            },
            "scores": [-120.5, -80.25, 10.0, 150.75],
            "execution_time": 1834.2231869697571,
            "comments": "baseline",
            "stdout": "episode 1 return -120.5\nepisode 4 return 150.75\n",
            "extra_files": {
                "dqn.py": "class Network:\n    pass\n",  # a `-cb` copy
                f"{normal_id}_q_values.txt": "0.1 0.2\n",  # a file fetched by identifier
            },
        },
        {
            "role": "comments_with_colons",
            "start": d(2024, 3, 2, 10, 0, 0, 1),
            "job_idx": 1,
            "commit_hash": _COMMIT_A,
            "exec_args": ["train", "-lr 0.005", "-gamma 0.9"],
            "args": {"train": True, "-lr": 0.005, "-gamma": 0.9},
            "scores": [1.0, 2.0, 3.0],
            "comments": "sweep: lr, see notes",
        },
        {
            "role": "header_scores",
            "start": d(2024, 3, 3, 11, 30, 45, 500000),
            "job_idx": 2,
            "commit_hash": _COMMIT_A,
            "exec_args": ["train", "-lr 0.0001"],
            "args": {"train": True, "-lr": 0.0001},
            "header": "episode_return",
            "scores": [5.5, 6.5, 7.5],
        },
        {
            "role": "nan_inf_scores",
            "start": d(2024, 3, 4, 8, 0, 0, 999999),
            "job_idx": 0,
            "commit_hash": _COMMIT_B,
            "exec_args": ["train", "-lr 0.01"],
            "args": {"train": True, "-lr": 0.01},
            "scores": [1.0, _NAN, _INF, -_INF, 2.5],
        },
        {
            "role": "blank_lines_exec_args",
            "start": d(2024, 3, 5, 14, 2, 3, 40506),
            "job_idx": 3,
            "commit_hash": _COMMIT_B,
            "exec_args": ["train", "--doubledqn", "-lr 0.0005", "-gamma 0.9"],
            "exec_args_text": "  train\n\n--doubledqn   \n   -lr 0.0005  \n\n \n-gamma 0.9\n\n",
            "args": {"train": True, "--doubledqn": True, "-lr": 0.0005, "-gamma": 0.9},
            "scores": [3.0, 4.0],
        },
        {
            "role": "multi_value",
            "start": d(2024, 3, 6, 16, 20, 0, 250000),
            "job_idx": 0,
            "commit_hash": _COMMIT_B,
            "exec_args": ["train", "-lr 0.001", "-hidden 64 64", "-betas 0.9 0.999"],
            "args": {"train": True, "-lr": 0.001, "-hidden": [64, 64], "-betas": [0.9, 0.999]},
            "scores": [0.5, 0.75],
        },
        {
            "role": "repeated_key",
            "start": d(2024, 3, 7, 7, 7, 7, 70707),
            "job_idx": 1,
            "commit_hash": _COMMIT_B,
            "exec_args": ["train", "-tag a", "-tag b", "-lr 0.001"],
            "args": {"train": True, "-tag": ["a", "b"], "-lr": 0.001},
            "scores": [9.0],
        },
        {
            "role": "no_scores",
            "start": d(2024, 3, 8, 12, 0, 0, 123),
            "job_idx": 0,
            "commit_hash": _COMMIT_A,
            "exec_args": ["evaluate", "-lr 0.001"],
            "args": {"evaluate": True, "-lr": 0.001},
            "scores": None,
        },
        {
            "role": "empty_comments",
            "start": d(2024, 3, 9, 13, 14, 15, 161718),
            "job_idx": 2,
            "commit_hash": _COMMIT_A,
            "exec_args": ["train", "-gamma 0.999"],
            "args": {"train": True, "-gamma": 0.999},
            "scores": [1.5, 2.5],
            "comments": "",
        },
        {
            "role": "no_git",
            "start": d(2024, 3, 10, 9, 0, 0, 654321),
            "job_idx": 0,
            "commit_hash": NO_GIT_COMMIT,
            "exec_args": ["train", "-bs 64"],
            "args": {"train": True, "-bs": 64.0},
            "scores": [2.0, 4.0],
        },
        {
            "role": "in_progress",
            "start": d(2024, 3, 11, 18, 30, 0, 5),
            "job_idx": 0,
            "commit_hash": _COMMIT_B,
            "exec_args": ["train", "-lr 0.001", "-seed 4"],
            "args": {"train": True, "-lr": 0.001, "-seed": 4.0},
            "finished": False,
            "scores": [10.0, 11.0, 12.0],
            "partial_last_line": "13.2",
            "stdout": "episode 1 return 10.0\n",
        },
        {
            "role": "crashed",
            "start": d(2024, 3, 12, 23, 59, 59, 999998),
            "job_idx": 1,
            "commit_hash": _COMMIT_B,
            "exec_args": ["train", "-lr 0.01", "-seed 5"],
            "args": {"train": True, "-lr": 0.01, "-seed": 5.0},
            "finished": False,
            "scores": [-50.0, -40.0],
            "stderr": (
                "Traceback (most recent call last):\n"
                '  File "train_dqn.py", line 42, in <module>\n'
                "RuntimeError: CUDA out of memory\n"
            ),
        },
    ]


def _write_spec(experiment_dir: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Write one spec with :func:`write_run`; return its description (see build_quirky_tree)."""
    finished = spec.get("finished", True)
    execution_time = spec.get("execution_time", 12.5)
    comments = spec.get("comments", "")
    kwargs = {
        key: spec[key]
        for key in (
            "header",
            "partial_last_line",
            "exec_args_text",
            "extra_files",
            "stdout",
            "stderr",
        )
        if key in spec
    }
    path = write_run(
        experiment_dir,
        start=spec["start"],
        job_idx=spec["job_idx"],
        commit_hash=spec["commit_hash"],
        exec_args=spec["exec_args"],
        scores=spec["scores"],
        finished=finished,
        execution_time=execution_time,
        comments=comments,
        **kwargs,
    )
    end = spec["start"] + timedelta(seconds=execution_time)
    info_lines = [f"commit_hash:{spec['commit_hash']}"]
    if finished:
        info_lines += [
            f"start_time:{format_time(spec['start'])}",
            f"end_time:{format_time(end)}",
            f"execution_time:{float(execution_time)!s}",
            f"comments:{comments}",
        ]
    return {
        "role": spec["role"],
        "path": path,
        "identifier": path.name,
        "script": experiment_dir.parent.name,
        "experiment": experiment_dir.name,
        "start": spec["start"],
        "job_idx": spec["job_idx"],
        "commit_hash": spec["commit_hash"],
        "finished": finished,
        "start_time": spec["start"] if finished else None,
        "end_time": end if finished else None,
        "execution_time": float(execution_time) if finished else None,
        "comments": comments if finished else None,
        "info_lines": info_lines,
        "arg_lines": list(spec["exec_args"]),
        "args": spec["args"],
        "scores": None if spec["scores"] is None else [float(v) for v in spec["scores"]],
        "header": spec.get("header"),
        "partial_last_line": spec.get("partial_last_line"),
    }


def _simple_spec(
    role: str,
    start: datetime,
    job_idx: int,
    commit: str,
    exec_args: list[str],
    args: dict[str, Any],
    scores: list[float],
) -> dict[str, Any]:
    return {
        "role": role,
        "start": start,
        "job_idx": job_idx,
        "commit_hash": commit,
        "exec_args": exec_args,
        "args": args,
        "scores": scores,
    }


def build_quirky_tree(root: Path) -> dict[str, Any]:
    """Write a legacy tree under ``root`` holding every quirk of the format; describe it.

    Runs (start times are distinct; all are in 2024 and known)::

        <root>/experiments/train_dqn/sweep/        12 runs, one per role:
            normal                 finished; args ``train --doubledqn -lr 0.001 -gamma 0.99
                                   -seed 3``; 4 scores; extra files ``dqn.py`` (a -cb copy)
                                   and ``<identifier>_q_values.txt``; comments ``baseline``
            comments_with_colons   ``comments:sweep: lr, see notes``
            header_scores          scores file starts with the non-numeric line
                                   ``episode_return``
            nan_inf_scores         scores ``1.0 nan inf -inf 2.5``
            blank_lines_exec_args  exec_arguments with leading/trailing spaces, blank and
                                   whitespace-only lines
            multi_value            ``-hidden 64 64`` (ints) and ``-betas 0.9 0.999`` (floats)
            repeated_key           ``-tag a`` and ``-tag b``
            no_scores              finished, but no ``.scores`` file
            empty_comments         last info line is exactly ``comments:``
            no_git                 commit hash ``00000`` (identifier ends in ``_00000``)
            in_progress            unfinished (commit_hash only); scores file ends in the
                                   partial line ``13.2`` without newline
            crashed                unfinished (commit_hash only); stderr holds a traceback;
                                   its identifier time (2024-03-12 23:59:59.999998) is the
                                   newest of the whole tree -> it is the expected latest
                                   run, although hermes.info has no start_time
        <root>/experiments/train_dqn/other/        2 finished runs (Feb 2024)
        <root>/experiments/eval/baseline/          1 finished run (Jan 2024)

    Things that are not runs::

        sweep/notes.txt           stray file
        sweep/plots/              folder without hermes.info (holds curve.png, loss.txt)
        sweep/latest -> <crashed identifier>   relative dir symlink to the newest run
        sweep/external -> <root>/outside/experiments/train_dqn/archived/<id>
                                  absolute symlink to a run of another tree; that run's
                                  start time (2025) is newer than every run of the tree,
                                  so following the link gives a wrong "latest"
        sweep/loop -> .           dir symlink to its own parent folder (a loop)
        sweep/dangling -> gone_run   broken symlink
        experiments/train_dqn/README.md   stray file at script level

    Returns a dict:

    ``root``, ``experiments_dir``, ``sweep_dir``, ``other_dir``, ``baseline_dir``
        paths.
    ``runs``
        ``{role: description}`` for every run of the tree: the 12 sweep roles above plus
        ``other_a``, ``other_b`` and ``baseline``.  A description has ``role``, ``path``,
        ``identifier``, ``script``, ``experiment``, ``start`` (identifier time),
        ``job_idx``, ``commit_hash``, ``finished``, ``start_time`` / ``end_time``
        (datetimes from hermes.info; equal to ``start`` / ``start + execution_time``;
        ``None`` if unfinished), ``execution_time`` (float or ``None``), ``comments``
        (str or ``None`` if unfinished), ``info_lines`` (hermes.info lines without
        newline), ``arg_lines`` (exec_arguments lines, stripped, blanks dropped),
        ``args`` (expected documented ``exec_args_dict``), ``scores`` (the complete
        numeric lines as floats -- header and partial last line excluded, may hold
        nan/inf; ``None`` without scores file), ``header``, ``partial_last_line``.
    ``sweep_runs``, ``other_runs``, ``baseline_runs``, ``all_runs``
        sorted identifiers (``all_runs``: sorted run dir paths of the whole tree).
    ``latest``, ``latest_role``
        identifier / role of the newest run, in sweep and in the whole tree (``crashed``).
    ``oldest``, ``oldest_role``
        identifier / role of the oldest run of sweep (``normal``).
    ``non_runs``
        ``{"notes", "plots", "latest_link", "external_link", "loop_link",
        "dangling_link", "script_readme"}`` -> paths.
    ``outside_run``
        the run directory the ``external`` link points to (not part of the tree).
    """
    root = Path(root)
    experiments = root / "experiments"
    sweep = experiments / "train_dqn" / "sweep"
    other = experiments / "train_dqn" / "other"
    baseline = experiments / "eval" / "baseline"

    runs: dict[str, dict[str, Any]] = {}
    for spec in _sweep_specs():
        runs[spec["role"]] = _write_spec(sweep, spec)

    d = datetime
    other_specs = [
        _simple_spec(
            "other_a",
            d(2024, 2, 10, 10, 0, 0, 111111),
            0,
            _COMMIT_A,
            ["train", "-lr 0.001", "-bs 32"],
            {"train": True, "-lr": 0.001, "-bs": 32.0},
            [1.0, 2.0, 3.0],
        ),
        _simple_spec(
            "other_b",
            d(2024, 2, 11, 10, 0, 0, 222222),
            1,
            _COMMIT_A,
            ["train", "-lr 0.01", "-bs 128"],
            {"train": True, "-lr": 0.01, "-bs": 128.0},
            [4.0, 5.0],
        ),
    ]
    for spec in other_specs:
        runs[spec["role"]] = _write_spec(other, spec)
    runs["baseline"] = _write_spec(
        baseline,
        _simple_spec(
            "baseline",
            d(2024, 1, 15, 8, 30, 0, 333333),
            0,
            _COMMIT_B,
            ["evaluate", "-episodes 100"],
            {"evaluate": True, "-episodes": 100.0},
            [200.0, 210.5],
        ),
    )

    outside_run = write_run(
        root / "outside" / "experiments" / "train_dqn" / "archived",
        start=d(2025, 1, 1, 0, 0, 0, 1),
        commit_hash=_COMMIT_A,
        scores=[1.0],
    )

    # Things that are not runs.
    notes = sweep / "notes.txt"
    notes.write_text("lr sweep: 0.001 looks best\n", encoding="utf-8")
    plots = sweep / "plots"
    plots.mkdir()
    (plots / "curve.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(16))
    (plots / "loss.txt").write_text("0.5\n0.4\n", encoding="utf-8")
    latest_link = sweep / "latest"
    os.symlink(runs["crashed"]["identifier"], latest_link, target_is_directory=True)
    external_link = sweep / "external"
    os.symlink(outside_run.resolve(), external_link, target_is_directory=True)
    loop_link = sweep / "loop"
    os.symlink(".", loop_link, target_is_directory=True)
    dangling_link = sweep / "dangling"
    os.symlink("gone_run", dangling_link, target_is_directory=True)
    script_readme = experiments / "train_dqn" / "README.md"
    script_readme.write_text("# train_dqn experiments\n", encoding="utf-8")

    def ids(exp_dir: Path) -> list[str]:
        return sorted(r["identifier"] for r in runs.values() if r["path"].parent == exp_dir)

    sweep_roles = [spec["role"] for spec in _sweep_specs()]
    latest_role = max(runs, key=lambda role: runs[role]["start"])
    oldest_role = min(sweep_roles, key=lambda role: runs[role]["start"])
    assert latest_role == "crashed" and oldest_role == "normal"
    return {
        "root": root,
        "experiments_dir": experiments,
        "sweep_dir": sweep,
        "other_dir": other,
        "baseline_dir": baseline,
        "runs": runs,
        "sweep_runs": ids(sweep),
        "other_runs": ids(other),
        "baseline_runs": ids(baseline),
        "all_runs": sorted(r["path"] for r in runs.values()),
        "latest": runs[latest_role]["identifier"],
        "latest_role": latest_role,
        "oldest": runs[oldest_role]["identifier"],
        "oldest_role": oldest_role,
        "non_runs": {
            "notes": notes,
            "plots": plots,
            "latest_link": latest_link,
            "external_link": external_link,
            "loop_link": loop_link,
            "dangling_link": dangling_link,
            "script_readme": script_readme,
        },
        "outside_run": outside_run,
    }


def make_corpus(out_dir: Path, runs: int, **kwargs: Any) -> list[Path]:
    """``make_corpus.make_corpus`` (``scripts/make_corpus.py``, on ``sys.path`` by ``tests/conftest.py``).

    Kept for the modules that import it from here; new tests import the generator
    itself (``from make_corpus import make_corpus``). Imported when called, so that
    importing this module needs the standard library only.
    """
    import make_corpus as generator

    return generator.make_corpus(out_dir, runs, **kwargs)


def corpus_fixture(name: str, runs: int, **kwargs: Any) -> Any:
    """A module-scoped pytest fixture returning the folder ``<tmp>/<name>/runs`` holding a
    generated corpus of ``runs`` runs (``kwargs`` go to :func:`make_corpus`)."""
    import pytest

    @pytest.fixture(scope="module")
    def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
        root = tmp_path_factory.mktemp(name) / "runs"
        make_corpus(root, runs, **kwargs)
        return root

    return corpus
