"""The main job on sample data: generate runs, index them, rank them, plot the best; name the web page.

Run with ``make demo`` (which installs everything first) or, in an environment
where pyhermes is installed, ``python scripts/demo.py [OUT_DIR]``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(out_dir: str = "demo-output", runs: int = 2000) -> int:
    out = Path(out_dir)
    corpus = out / "corpus"
    if corpus.exists():
        shutil.rmtree(corpus)
    out.mkdir(parents=True, exist_ok=True)
    print(f"1. generating {runs:,} sample runs in {corpus}")
    subprocess.run(
        [sys.executable, str(HERE / "make_corpus.py"), str(corpus), "--runs", str(runs)], check=True
    )
    print("2. indexing them with hermes-reindex")
    beside_python = Path(sys.executable).parent / "hermes-reindex"
    reindex = str(beside_python) if beside_python.exists() else shutil.which("hermes-reindex")
    if reindex is None:
        print("hermes-reindex is not installed: pip install -e .", file=sys.stderr)
        return 1
    subprocess.run([reindex, str(corpus)], check=True)

    from pyhermes import Experiment

    experiments = Experiment.load_all(corpus / "experiments" / "train_dqn" / "sweep")
    print(f"3. loaded {len(experiments)} runs; the ten best by final mean (last 100 episodes):")
    best = experiments.top(10, by="final_mean")
    for rank, run in enumerate(best, start=1):
        args = " ".join(sorted(run.exec_args))
        print(f"   {rank:2d}. {run.score_summary.final_mean:8.2f}  {run.identifier}  {args}")
    ddqn = experiments.filter_by_exec_args("--doubledqn", "-lr 0.001")
    print(f"   --doubledqn with -lr 0.001: {len(ddqn)} runs; latest: {ddqn.latest().identifier}")

    from pyhermes.plot import plot_training_progress_from_experiment

    plot_path = out / "best_run.png"
    plot_training_progress_from_experiment(best[0], path=str(plot_path))
    print(f"4. training plot of the best run saved to {plot_path}")
    beside_python = Path(sys.executable).parent / "hermes"
    hermes = str(beside_python) if beside_python.exists() else "hermes"
    print("5. to browse, filter, rank and compare these runs in your web browser, run:")
    print(f"   {hermes} serve {corpus} --open")
    return 0


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", nargs="?", default="demo-output")
    parser.add_argument("--runs", type=int, default=2000)
    options = parser.parse_args()
    sys.exit(main(options.out_dir, options.runs))
