"""Benchmark pyhermes against the legacy hermes algorithms, in one process, on one corpus.

Usage::

    python scripts/bench.py [--runs 10000] [--repeat 5] [--corpus DIR] [--write BENCHMARKS.md]

It generates a corpus with ``scripts/make_corpus.py`` (unless ``--corpus`` names
one), sets every file's mtime an hour back (runs that finished long ago, as in a
real archive), and times, as medians of ``--repeat`` rounds:

* the legacy scan: list the experiment folder, read every ``hermes.info``, then
  every ``exec_arguments`` to filter, then pick the latest (the original
  ``load_all`` + ``filter_by_exec_args`` + ``latest``, with its bugs fixed);
* pyhermes: first build of the index; no-change ``load_all`` + filter + latest
  (in this process, and in a fresh process where nothing is cached in memory);
  no-change ``load_all(sync="full")``; a bare loop that stats every run
  directory and the three files the index reads from it (the floor of a full
  sync); top-10 by final mean, against reading every scores file.

Results are ratios against the baseline measured in the same run. Timings on a
shared machine vary; the ratios are what the targets are about.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

WANTED = ("-lr 0.001", "--doubledqn")


def legacy_load_filter_latest(folder: Path) -> Path:
    """The legacy algorithm: scan, read every info, read every exec_arguments, pick the latest."""
    runs = []
    for sub in folder.iterdir():
        if sub.is_dir() and len(list(sub.glob("hermes.info"))) >= 1:
            info = {}
            with open(sub / "hermes.info") as handle:
                for line in handle.read().splitlines():
                    key, _, value = line.partition(":")
                    info[key] = value
            runs.append((sub, info))
    wanted = set(WANTED)
    selected = []
    for sub, info in runs:
        with open(sub / "exec_arguments") as handle:
            args = {line.strip() for line in handle if line.strip()}
        if wanted <= args:
            selected.append((sub, info))

    def start(item: tuple[Path, dict[str, str]]) -> datetime:
        try:
            return datetime.strptime(item[1]["start_time"], "%Y_%m_%d_%H%M%S%f")
        except (KeyError, ValueError):
            return datetime.min

    return max(selected, key=start)[0]


def legacy_top10(folder: Path) -> list[str]:
    """Read every scores file, take the mean of the last 100 values, keep the best ten."""
    means = []
    for sub in folder.iterdir():
        scores_file = sub / f"{sub.name}.scores"
        if not scores_file.is_file():
            continue
        values = []
        with open(scores_file) as handle:
            for line in handle:
                try:
                    values.append(float(line))
                except ValueError:
                    continue
        if values:
            means.append((float(np.nanmean(values[-100:])), sub.name))
    means.sort(reverse=True)
    return [name for _, name in means[:10]]


def stat_floor(folder: Path) -> int:
    """Stat every run directory and the files the index reads from it."""
    count = 0
    for entry in os.scandir(folder):
        if not entry.is_dir(follow_symlinks=False):
            continue
        os.stat(entry.path)
        for name in ("hermes.info", "exec_arguments", f"{entry.name}.scores"):
            try:
                os.stat(os.path.join(entry.path, name))
            except FileNotFoundError:
                pass
        count += 1
    return count


def timed(function: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``repeat`` calls, in seconds."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def age(folder: Path, seconds: float = 3600.0) -> None:
    when = time.time() - seconds
    for dirpath, _dirnames, filenames in os.walk(folder):
        for name in filenames:
            os.utime(os.path.join(dirpath, name), (when, when))
        os.utime(dirpath, (when, when))


FRESH_PROCESS = """
import sys, time
started = time.perf_counter()
from pyhermes import Experiment
runs = Experiment.load_all(sys.argv[1])
runs.filter_by_exec_args(*sys.argv[2:]).latest()
print(time.perf_counter() - started)
"""


def fresh_process(folder: Path) -> float:
    """No-change load_all + filter + latest in a new interpreter (imports included)."""
    out = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(folder), *WANTED],
        capture_output=True, text=True, check=True,
    )
    return float(out.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--build-repeat", type=int, default=3, help="rounds of the first build")
    parser.add_argument("--corpus", type=Path, help="an existing corpus root (else one is generated)")
    parser.add_argument("--write", type=Path, help="write the table into this Markdown file")
    args = parser.parse_args(argv)

    from make_corpus import make_corpus

    from pyhermes import Experiment

    workdir = Path(tempfile.mkdtemp(prefix="hermes-bench-"))
    try:
        root = args.corpus or workdir / "corpus"
        if args.corpus is None:
            started = time.perf_counter()
            make_corpus(root, args.runs)
            print(f"generated {args.runs} runs in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        folder = root / "experiments" / "train_dqn" / "sweep"
        age(folder)
        index = folder / ".hermes"
        runs_count = stat_floor(folder)

        def build() -> None:
            shutil.rmtree(index, ignore_errors=True)
            from pyhermes.index.engine import dispose_engines

            dispose_engines()
            Experiment.load_all(folder)

        def load_filter_latest() -> None:
            Experiment.load_all(folder).filter_by_exec_args(*WANTED).latest()

        results: dict[str, float] = {}
        results["legacy"] = timed(lambda: legacy_load_filter_latest(folder), args.repeat)
        results["build"] = timed(build, args.build_repeat)
        age(folder)  # the build's listing is older than the runs now: settle everything
        Experiment.load_all(folder, sync="full")
        results["quick"] = timed(load_filter_latest, args.repeat)
        results["fresh"] = statistics.median(fresh_process(folder) for _ in range(args.repeat))
        results["full"] = timed(lambda: Experiment.load_all(folder, sync="full"), args.repeat)
        results["floor"] = timed(lambda: stat_floor(folder), args.repeat)
        runs = Experiment.load_all(folder)
        results["top_sql"] = timed(lambda: runs.top(10), args.repeat)
        results["top_legacy"] = timed(lambda: legacy_top10(folder), args.repeat)
        assert [r.identifier for r in runs.top(10)] == legacy_top10(folder), "top-10 disagree"
        assert Path(legacy_load_filter_latest(folder)) == (
            Experiment.load_all(folder).filter_by_exec_args(*WANTED).latest().path_to_experiment
        ), "latest disagree"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    ratio_quick = results["legacy"] / results["quick"]
    ratio_full = results["full"] / results["floor"]
    ratio_top = results["top_legacy"] / results["top_sql"]
    ms = {key: value * 1000 for key, value in results.items()}
    rows = [
        ("legacy scan: load_all + filter_by_exec_args + latest", ms["legacy"], "1x (baseline)", ""),
        ("pyhermes first build of the index", ms["build"], f"{results['build'] / results['legacy']:.1f}x the legacy scan", ""),
        ("pyhermes no-change load_all + filter + latest", ms["quick"], f"{ratio_quick:.0f}x faster than legacy", "≥ 20x: " + ("met" if ratio_quick >= 20 else "NOT met")),
        ("… same, in a fresh process (imports included)", ms["fresh"], f"{results['legacy'] / results['fresh']:.1f}x faster than legacy", ""),
        ("bare stat loop (dir + 3 files per run)", ms["floor"], "1x (floor)", ""),
        ('pyhermes no-change load_all(sync="full")', ms["full"], f"{ratio_full:.2f}x the stat loop", "≤ 1.5x: " + ("met" if ratio_full <= 1.5 else "NOT met")),
        ("read every scores file, top-10 by final mean", ms["top_legacy"], "1x (baseline)", ""),
        ("pyhermes top(10) by final mean (SQL)", ms["top_sql"], f"{ratio_top:.0f}x faster", "≥ 500x: " + ("met" if ratio_top >= 500 else "NOT met")),
    ]
    command = "python scripts/bench.py" + (f" --runs {args.runs}" if args.runs != 10_000 else "")
    lines = [
        f"Corpus: {runs_count} runs, 1,000 scores each; medians of {args.repeat} "
        f"({args.build_repeat} for the build); {time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} cores; command: `{command} --write BENCHMARKS.md`",
        "",
        "| what | median ms | ratio | target |",
        "| --- | ---: | --- | --- |",
        *(f"| {what} | {value:.1f} | {ratio} | {target} |" for what, value, ratio, target in rows),
    ]
    table = "\n".join(lines)
    print(table)
    if args.write:
        _write_table(args.write, table)
    return 0 if ratio_quick >= 20 and ratio_full <= 1.5 and ratio_top >= 500 else 1


BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def _write_table(path: Path, table: str) -> None:
    text = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{table}\n{END}"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
