"""The MLflow side of ``scripts/bench.py --peers mlflow`` (runs in MLflow's own virtualenv).

    python mlflow_peer.py log FOLDER DB        # log every run of a corpus folder once
    python mlflow_peer.py query DB WHAT REPEAT  # time one question; prints JSON seconds

MLflow is never a pyhermes dependency: ``bench.py`` creates a virtualenv for it
in its cache folder and calls this script with that interpreter. Runs are
logged as a user would: one MLflow run per run directory, its exec args as
params (``-lr 0.001`` -> ``lr=0.001``, a flag -> ``doubledqn=True``), its
start and end times, every score as a step of the metric ``score`` and the
mean of the last 100 as the metric ``final_mean``; the store is SQLite.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from datetime import datetime

EXPERIMENT = "sweep"
TIME_FORMAT = "%Y_%m_%d_%H%M%S%f"
#: The questions of the benchmark, in MLflow's filter language.
FILTER = "params.lr = '0.001' and params.doubledqn = 'True'"
TYPED = "metrics.final_mean > -50 and params.gamma = '0.99'"


def _tracking(db: str) -> str:
    return f"sqlite:///{os.path.abspath(db)}"


def _millis(text: str | None) -> int | None:
    if not text:
        return None
    return int(datetime.strptime(text.strip(), TIME_FORMAT).timestamp() * 1000)


def log(folder: str, db: str) -> None:
    """Log every run directory of ``folder`` into the MLflow store ``db``; print runs/s."""
    import numpy as np
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(_tracking(db))
    experiment_id = client.create_experiment(EXPERIMENT)
    names = sorted(os.listdir(folder))
    started = time.perf_counter()
    count = 0
    for name in names:
        run_dir = os.path.join(folder, name)
        if not os.path.isfile(os.path.join(run_dir, "hermes.info")):
            continue
        info = {}
        with open(os.path.join(run_dir, "hermes.info")) as handle:
            for line in handle.read().splitlines():
                key, _, value = line.partition(":")
                info[key] = value
        params = {}
        with open(os.path.join(run_dir, "exec_arguments")) as handle:
            for line in handle:
                words = line.split()
                if not words:
                    continue
                key = words[0].lstrip("-") or words[0]
                params[key] = " ".join(words[1:]) if len(words) > 1 else "True"
        scores = []
        scores_file = os.path.join(run_dir, f"{name}.scores")
        if os.path.isfile(scores_file):
            with open(scores_file) as handle:
                for line in handle:
                    try:
                        scores.append(float(line))
                    except ValueError:
                        continue
        # A crashed run has no start_time: its identifier's time, as pyhermes reads it.
        start = _millis(info.get("start_time")) or _millis(name[:23])
        run = client.create_run(experiment_id, start_time=start, run_name=name)
        run_id = run.info.run_id
        metrics = [Metric("score", value, start, step) for step, value in enumerate(scores)]
        if scores:
            metrics.append(Metric("final_mean", float(np.mean(scores[-100:])), start, 0))
        param_list = [Param(key, value) for key, value in params.items()]
        for first in range(0, max(len(metrics), 1), 1000):
            client.log_batch(run_id, metrics=metrics[first : first + 1000],
                             params=param_list if first == 0 else [])
        end = _millis(info.get("end_time"))
        client.set_terminated(run_id, "FINISHED" if end else "FAILED", end_time=end)
        count += 1
    seconds = time.perf_counter() - started
    print(json.dumps({"runs": count, "seconds": seconds}))


def _all(client, experiment_id: str, filter_string: str = "") -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string, max_results=50000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def query(db: str, what: str, repeat: int) -> None:
    """Time ``what`` (median of ``repeat``, seconds, printed as JSON)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(_tracking(db))
    mlflow.set_tracking_uri(_tracking(db))
    experiment_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    questions = {
        "latest": lambda: client.search_runs(
            [experiment_id], FILTER, order_by=["attributes.start_time DESC"], max_results=1
        )[0],
        "matches": lambda: _all(client, experiment_id, FILTER),
        "typed": lambda: _all(client, experiment_id, TYPED),
        "top10": lambda: client.search_runs(
            [experiment_id], order_by=["metrics.final_mean DESC"], max_results=10
        ),
        "frame": lambda: mlflow.search_runs([experiment_id], max_results=1_000_000),
    }
    question = questions[what]
    samples = []
    answer = None
    for _ in range(repeat):
        started = time.perf_counter()
        answer = question()
        samples.append(time.perf_counter() - started)
    size = len(answer) if hasattr(answer, "__len__") else 1
    print(json.dumps({"seconds": statistics.median(samples), "size": size}))


FRESH = """
import sys, time
started = time.perf_counter()
from mlflow.tracking import MlflowClient
client = MlflowClient(sys.argv[1])
experiment_id = client.get_experiment_by_name(sys.argv[2]).experiment_id
run = client.search_runs([experiment_id], sys.argv[3], order_by=["attributes.start_time DESC"],
                         max_results=1)[0]
print(time.perf_counter() - started, run.info.run_name)
"""


def fresh(db: str) -> None:
    """Run the fresh-process question in a new interpreter; print its wall seconds and answer (JSON)."""
    import subprocess

    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", FRESH, _tracking(db), EXPERIMENT, FILTER],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    print(json.dumps({"seconds": time.perf_counter() - started, "answer": out[1]}))


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    if command == "log":
        log(rest[0], rest[1])
    elif command == "query":
        query(rest[0], rest[1], int(rest[2]))
    elif command == "fresh":
        fresh(rest[0])
    else:
        sys.exit(f"unknown command {command}")
