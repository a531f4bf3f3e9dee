#!/usr/bin/env python
"""Generate a deterministic, realistic corpus of legacy hermes runs.

    python scripts/make_corpus.py OUT_DIR --runs N [--seed S] [--scores 1000]
                                  [--script train_dqn] [--experiment sweep]

As a module, the one generator of the tests and the benchmarks (``scripts/`` is not a
package: ``tests/conftest.py`` and ``scripts/bench.py`` put it on ``sys.path``)::

    from make_corpus import make_corpus

    make_corpus(out_dir, 300, seed=0, scores_per_run=1000)   # the run directories, in order

Writes N run directories under ``OUT_DIR/experiments/<script>/<experiment>/`` in the
legacy layout (see ``legacy-format.md``).  It is an independent writer of that layout
(standard library and numpy only; pyhermes is not imported), for benchmarks and tests
of pyhermes' readers.  The same arguments always give byte-identical files: every
random choice comes from ``numpy.random.default_rng(seed)`` and every time from a
fixed base date.  It refuses to write into an experiment folder that is not empty.

What the corpus looks like:

* DQN runs over a grid of ``-lr`` (5 values) x ``-gamma`` (3) x ``-bs`` (3) x
  ``-hidden`` (``64 64``, ``128 128``, ``256``) x ``--doubledqn`` (on/off): the 270
  combinations are visited in a shuffled order, once per ``-seed`` (0, 1, ...), so
  about half the runs have ``--doubledqn``.  All have the positional ``train``; about
  30% have the epsilon options ``-es 1.0 -ee 0.05 -ed 0.995``.  exec_arguments lists
  positionals, then flags, then options, like the runner; about 3% of the files carry
  a stray trailing space and a blank last line.
* Runs come in "execution files" (batches of 1-32 jobs, job index = position in the
  batch) started over ~6 months from 2023-09-01; jobs of a batch start seconds apart;
  all start times are distinct (to the microsecond).  Six commits, used in time order
  (sometimes an older one).  A batch shares its ``-c`` comments: empty for half the
  batches, else a plain text or a text with ``:`` and ``,``.  About 30% of the batches
  copy ``dqn.py`` into each run (``-cb``).
* Scores: ``--scores`` values per run, one ``%.4f`` per line: a saturating learning
  curve from about -180 to a final level set by the hyperparameters (best: lr 0.001,
  gamma 0.99, bs 64, hidden ``128 128``, double DQN) plus a per-seed offset and noise
  that shrinks over training.  About 10% of the files start with a header line.
* 2% of the runs (rounded) crashed: hermes.info holds ``commit_hash`` only, the scores
  stop early (half of them end in a partial line without newline) and stderr.log holds
  a traceback.  Finished runs have ``start_time`` (the identifier time plus a launch
  delay under 0.2 s), ``end_time`` (= start_time + execution_time),
  ``execution_time`` and ``comments``.
"""

import argparse
import itertools
import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

TIME_FORMAT = "%Y_%m_%d_%H%M%S%f"
BASE_DATE = datetime(2023, 9, 1, 8, 0, 0)
SPAN_SECONDS = 182 * 24 * 3600  # ~6 months

LRS = ("0.0001", "0.0005", "0.001", "0.005", "0.01")
GAMMAS = ("0.9", "0.99", "0.999")
BATCH_SIZES = ("32", "64", "128")
HIDDENS = ("64 64", "128 128", "256")
EPSILON_ARGS = ("-es 1.0", "-ee 0.05", "-ed 0.995")

# Final-level contributions of each hyperparameter value (same order as above).
LR_EFFECT = (-90.0, -35.0, 0.0, -25.0, -110.0)
LR_TAU = (0.45, 0.3, 0.2, 0.12, 0.08)  # curve time constant, as a fraction of the run
GAMMA_EFFECT = (-60.0, 0.0, -20.0)
BS_EFFECT = (-15.0, 0.0, -10.0)
HIDDEN_EFFECT = (-25.0, 10.0, 0.0)
HIDDEN_COST = (1.0, 1.6, 1.3)  # relative execution time
DOUBLE_EFFECT = 20.0

N_COMMITS = 6
CRASH_RATE = 0.02
HEADER_RATE = 0.10
EPSILON_RATE = 0.30
STRAY_SPACE_RATE = 0.03
COPY_RATE = 0.30
MAX_BATCH = 32

HEADERS = ("episode_return", "score", "# returns per episode")
PLAIN_COMMENTS = ("baseline", "lr sweep", "rerun after fix,more seeds")
COLON_COMMENTS = ("sweep: lr, see notes", "ablation: no target net", "note: bs, gamma: retry")
DQN_PY = "import torch\n\n\nclass Network(torch.nn.Module):\n    pass\n"
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "{script}.py", line 87, in <module>\n'
    "    loss.backward()\n"
    "RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB\n"
)


def _fmt(moment: datetime) -> str:
    return moment.strftime(TIME_FORMAT)


def _experiment_dir(out_dir: Path, script: str, experiment: str) -> Path:
    return Path(out_dir) / "experiments" / script / experiment


def _check_empty(exp_dir: Path) -> None:
    if exp_dir.exists() and any(exp_dir.iterdir()):
        raise FileExistsError(
            f"{exp_dir} is not empty; refusing to write a corpus into it (remove it first)"
        )


def _write_new(path: str, text: str) -> None:
    """Create ``path`` (it must not exist) holding ``text`` as UTF-8; no fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        data = memoryview(text.encode())
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def _start_times(rng: np.random.Generator, n: int) -> tuple[list[datetime], list[int], list[int]]:
    """Start time, job index and batch number of each run, in run order."""
    sizes: list[int] = []
    while sum(sizes) < n:
        sizes.append(int(rng.integers(1, MAX_BATCH + 1)))
    if sizes:
        sizes[-1] -= sum(sizes) - n
    batch_offsets = np.sort(rng.uniform(0, SPAN_SECONDS, size=len(sizes)))
    starts: list[datetime] = []
    job_idx: list[int] = []
    batch_of: list[int] = []
    seen: set[datetime] = set()
    for b, (size, offset) in enumerate(zip(sizes, batch_offsets, strict=True)):
        gaps = np.cumsum(rng.uniform(0.01, 3.0, size=size))
        micros = rng.integers(0, 1_000_000, size=size)
        for j in range(size):
            moment = BASE_DATE + timedelta(
                seconds=int(offset + gaps[j]), microseconds=int(micros[j])
            )
            while moment in seen:  # distinct start times, whatever the draw
                moment += timedelta(microseconds=1)
            seen.add(moment)
            starts.append(moment)
            job_idx.append(j)
            batch_of.append(b)
    return starts, job_idx, batch_of


def _curve(rng: np.random.Generator, combo: tuple[int, ...], n: int) -> np.ndarray:
    lr, gamma, bs, hidden, double = combo
    final = (
        200.0
        + LR_EFFECT[lr]
        + GAMMA_EFFECT[gamma]
        + BS_EFFECT[bs]
        + HIDDEN_EFFECT[hidden]
        + DOUBLE_EFFECT * double
        + rng.normal(0.0, 12.0)
    )
    start = -180.0 + rng.normal(0.0, 20.0)
    tau = max(n * LR_TAU[lr], 1.0)
    t = np.arange(n, dtype=float)
    progress = 1.0 - np.exp(-t / tau)
    sigma = 45.0 * (0.35 + 0.65 * np.exp(-t / (2.0 * tau)))
    return start + (final - start) * progress + sigma * rng.standard_normal(n)


def make_corpus(
    out_dir: Path | str,
    runs: int,
    seed: int = 0,
    scores_per_run: int = 1000,
    script: str = "train_dqn",
    experiment: str = "sweep",
) -> list[Path]:
    """Write ``runs`` legacy runs under ``out_dir/experiments/<script>/<experiment>/``.

    Deterministic: the same arguments give byte-identical files (``out_dir`` itself
    appears in no file).  Returns the run directories in generation order.  Raises
    ``FileExistsError`` if the experiment folder exists and is not empty.
    """
    if runs < 0 or scores_per_run < 1:
        raise ValueError("runs must be >= 0 and scores_per_run >= 1")
    exp_dir = _experiment_dir(Path(out_dir), script, experiment)
    _check_empty(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    exp_str = str(exp_dir)

    rng = np.random.default_rng(seed)
    commits = [rng.bytes(20).hex() for _ in range(N_COMMITS)]
    combos = list(itertools.product(range(5), range(3), range(3), range(3), range(2)))
    plan: list[tuple[tuple[int, ...], int]] = []
    for round_ in range(-(-runs // len(combos))):
        plan += [(combos[i], round_) for i in rng.permutation(len(combos))]

    starts, job_idx, batch_of = _start_times(rng, runs)
    n_batches = batch_of[-1] + 1 if runs else 0
    batch_commit = []
    for b in range(n_batches):
        current = min(int(b * N_COMMITS / max(n_batches, 1)), N_COMMITS - 1)
        older = int(rng.integers(0, current + 1))
        batch_commit.append(commits[older] if rng.random() < 0.1 else commits[current])
    batch_comment = []
    for _ in range(n_batches):
        kind = rng.random()
        pool = PLAIN_COMMENTS if kind < 0.75 else COLON_COMMENTS
        choice = pool[int(rng.integers(0, len(pool)))]
        batch_comment.append("" if kind < 0.5 else choice)
    batch_copies = rng.random(n_batches) < COPY_RATE

    crashed = np.zeros(runs, dtype=bool)
    crashed[rng.choice(runs, size=round(runs * CRASH_RATE), replace=False)] = True
    has_header = rng.random(runs) < HEADER_RATE
    has_eps = rng.random(runs) < EPSILON_RATE
    stray = rng.random(runs) < STRAY_SPACE_RATE
    launch_delay = rng.uniform(0.001, 0.2, size=runs)

    full_format = "%.4f\n" * scores_per_run
    paths: list[Path] = []
    for i in range(runs):
        combo, run_seed = plan[i]
        lr, gamma, bs, hidden, double = combo
        b = batch_of[i]
        commit = batch_commit[b]
        start = starts[i]
        identifier = f"{_fmt(start)}_{job_idx[i]}_{commit[-5:]}"
        run_dir = os.path.join(exp_str, identifier)
        os.mkdir(run_dir)

        positionals = ["train"]
        flags = ["--doubledqn"] if double else []
        options = [
            f"-lr {LRS[lr]}",
            f"-gamma {GAMMAS[gamma]}",
            f"-bs {BATCH_SIZES[bs]}",
            f"-hidden {HIDDENS[hidden]}",
            f"-seed {run_seed}",
        ]
        if has_eps[i]:
            options += EPSILON_ARGS
        args = positionals + flags + options
        exec_text = "".join(a + "\n" for a in args)
        if stray[i]:
            exec_text = exec_text.replace("\n", " \n", 1) + "\n"

        values = _curve(rng, combo, scores_per_run)
        comments = batch_comment[b]
        hermes_opts = ",".join(
            ([f"-c {comments}"] if comments else []) + (["-cb dqn.py"] if batch_copies[b] else [])
        )
        reexec = (
            "PRE\npath_to_experiments:/data/hermes\nSTD-H\nSTD-E\nEXEC\n"
            f"[[python, {script}.py, {', '.join(args)}],[{hermes_opts}]]"
        )
        info = f"commit_hash:{commit}\n"
        header = HEADERS[i % len(HEADERS)] + "\n" if has_header[i] else ""
        if crashed[i]:
            kept = int(rng.integers(1, scores_per_run)) if scores_per_run > 1 else 0
            scores = header + ("%.4f\n" * kept) % tuple(values[:kept].tolist())
            if rng.random() < 0.5:
                scores += f"{values[kept]:.4f}"[:4] if kept < scores_per_run else ""
            stdout = f"episode {kept} return {values[kept - 1]:.2f}\n" if kept else ""
            stderr = TRACEBACK.format(script=script)
        else:
            scores = header + full_format % tuple(values.tolist())
            cost = (1.0 + 0.4 * bs) * HIDDEN_COST[hidden] * scores_per_run
            execution_time = float(cost * (1.5 + rng.random()))
            info_start = start + timedelta(seconds=float(launch_delay[i]))
            end = info_start + timedelta(seconds=execution_time)
            info += (
                f"start_time:{_fmt(info_start)}\nend_time:{_fmt(end)}\n"
                f"execution_time:{execution_time!s}\ncomments:{comments}\n"
            )
            stdout = (
                f"Training DQN, seed {run_seed}\n"
                f"episode {scores_per_run} return {values[-1]:.2f}\ndone\n"
            )
            stderr = ""

        files = [
            ("hermes.info", info),
            ("exec_arguments", exec_text),
            ("re_execution.hermes", reexec),
            ("stdout.log", stdout),
            ("stderr.log", stderr),
            (f"{identifier}.scores", scores),
        ]
        if batch_copies[b]:
            files.append(("dqn.py", DQN_PY))
        for name, text in files:
            _write_new(os.path.join(run_dir, name), text)
        paths.append(exp_dir / identifier)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write a deterministic corpus of legacy hermes runs "
        "under OUT_DIR/experiments/<script>/<experiment>/."
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", type=Path)
    parser.add_argument("--runs", type=int, required=True, help="number of runs to write")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--scores", type=int, default=1000, help="scores per run (default 1000)")
    parser.add_argument("--script", default="train_dqn", help="script name (default train_dqn)")
    parser.add_argument("--experiment", default="sweep", help="experiment name (default sweep)")
    args = parser.parse_args(argv)
    if args.runs < 0 or args.scores < 1:
        parser.error("--runs must be >= 0 and --scores >= 1")

    t0 = time.perf_counter()
    try:
        paths = make_corpus(
            args.out_dir,
            args.runs,
            seed=args.seed,
            scores_per_run=args.scores,
            script=args.script,
            experiment=args.experiment,
        )
    except FileExistsError as exc:
        print(f"make_corpus: error: {exc}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - t0
    exp_dir = _experiment_dir(args.out_dir, args.script, args.experiment)
    print(f"wrote {len(paths)} runs to {exp_dir} in {seconds:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
