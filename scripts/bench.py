"""Benchmark pyhermes against the legacy hermes algorithm and MLflow, in one run.

Usage::

    python scripts/bench.py [--sizes 1000,10000,100000] [--repeat 5] [--peers mlflow]
                            [--cache DIR] [--write BENCHMARKS.md] [--plot bench.png]
    python scripts/bench.py --quick          # 1,000 runs, no peers, 2 rounds (CI)
    python scripts/bench.py --live [--sizes 10000,100000] [--repeat 5] [--backend sqlite,postgresql]
                            [--write BENCHMARKS.md]

Corpora of each size are generated once with ``scripts/make_corpus.py`` into
the cache folder (default ``$XDG_CACHE_HOME/pyhermes-bench``; 100,000 runs is
~2.7 GB) and reused; every file's mtime is set an hour back (runs that finished
long ago). For each size it times, as medians of ``--repeat`` rounds:

* baselines: the legacy scan (``load_all`` + ``filter_by_exec_args`` +
  ``latest`` as the original did it, bugs fixed); a bare loop that stats every
  run directory and its three files (the floor of a full sync); a bare
  single-core loop that reads the three files and parses the scores with numpy
  (the floor of a build);
* pyhermes: the first build of the index (a fresh process, its peak RSS);
  no-change ``load_all`` quick and full (full also timed inside a fresh process,
  with its peak RSS); the fresh-process script (``python -c``: import,
  ``load_all``, filter two args, ``latest``; its peak RSS); ``hermes ls --where
  ... --limit 10``, without and with ``--sort``, as a whole process; the first
  request of a new ``hermes serve`` (the runs page, a filtered one, page 10,000;
  each from its own server, with the server's RSS after it and a second request
  of the same page); in a warm process: filter + newest 1, all matches as a
  list, a typed query, top-10, ``to_frame()`` of all runs; a full sync after 1%
  of the runs changed;
* with ``--peers mlflow``: the same questions against MLflow's SQLite store.
  MLflow lives in its own virtualenv in the cache folder (created on first use,
  never a pyhermes dependency); each corpus is logged into it once and cached
  (``mlflow-N.db``; logging costs ~40-180 ms per run, so sizes whose store is
  not there yet are logged only up to ``--mlflow-max-log`` runs).

With ``--live`` it times, instead, three questions with nobody else working
(quiet) and during a live lab (``scripts/live_lab.py``: writers creating runs,
unfinished runs appending scores), and the live/quiet ratio of their medians
(see :func:`measure_live`), on the SQLite index of the corpus or, with
``--backend postgresql`` (``sqlite,postgresql`` runs both), on a database of a
throwaway PostgreSQL server it starts itself (``scripts/pg_server.py``, the
server's default settings); ``--write`` then replaces only its own section,
"## Live lab", of the Markdown file.

From 1,000,000 runs on (``SHORT_RUNS_FROM``) a corpus has 100 scores per run, not
1,000; the legacy scan (minutes a round), the read-and-parse floor and the first
build are timed once, the legacy scan as a whole process not at all, and the warm
rows run on a list not read whole, without ``to_frame()`` of all runs. Progress
lines go to stderr.

Every ratio is against a baseline measured in the same run: on a shared machine
the milliseconds move more than the ratios. Timings are never asserted by tests;
``--quick`` runs in CI so that this script keeps working.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

WANTED = ("-lr 0.001", "--doubledqn")
TYPED = "-gamma == 0.99 and final_mean > -50"
LS_WHERE = "--doubledqn and -lr < 0.001 and final_mean > -50"
LS_SORT = "-final_mean"
FOLDER = Path("experiments") / "train_dqn" / "sweep"


# --------------------------------------------------------------------------- baselines


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


def stat_floor(folder: Path) -> int:
    """Stat every run directory and the files the index reads from it."""
    count = 0
    for entry in os.scandir(folder):
        if not entry.is_dir(follow_symlinks=False) or entry.name.startswith("."):
            continue
        os.stat(entry.path)
        for name in ("hermes.info", "exec_arguments", f"{entry.name}.scores"):
            try:
                os.stat(os.path.join(entry.path, name))
            except FileNotFoundError:
                pass
        count += 1
    return count


def read_parse_floor(folder: Path) -> int:
    """One core: read every run's three files and parse its scores with numpy."""
    import numpy as np

    count = 0
    for entry in os.scandir(folder):
        if not entry.is_dir(follow_symlinks=False) or entry.name.startswith("."):
            continue
        with open(os.path.join(entry.path, "hermes.info"), "rb") as handle:
            handle.read()
        with open(os.path.join(entry.path, "exec_arguments"), "rb") as handle:
            handle.read()
        try:
            with open(os.path.join(entry.path, f"{entry.name}.scores"), "rb") as handle:
                lines = handle.read().decode().split("\n")
        except FileNotFoundError:
            lines = []
        try:
            np.array([line for line in lines if line], dtype=np.float64)
        except ValueError:
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


def age_folder(folder: Path, seconds: float = 3600.0) -> None:
    """Set the mtime of ``folder`` itself (not of what it holds) ``seconds`` back."""
    when = time.time() - seconds
    os.utime(folder, (when, when))


def age(folder: Path, seconds: float = 3600.0) -> None:
    when = time.time() - seconds
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [name for name in dirnames if name != ".hermes"]
        for name in filenames:
            os.utime(os.path.join(dirpath, name), (when, when))
        os.utime(dirpath, (when, when))


# --------------------------------------------------------------------------- processes

#: Defines ``peak_kib()`` in a measured process: its own peak RSS in KiB, from ``VmHWM`` (Linux).
#: Not ``ru_maxrss``: Linux carries the peak RSS of the process that ran ``exec`` into it, and
#: subprocess (vfork + exec) makes that this benchmark's own peak (a million runs' legacy scan).
PEAK_RSS = """
import resource
def peak_kib():
    try:
        with open("/proc/self/status") as status:
            return int(status.read().split("VmHWM:")[1].split()[0])
    except (OSError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""

FRESH_PROCESS = PEAK_RSS + """
import sys
from pyhermes import Experiment
runs = Experiment.load_all(sys.argv[1])
best = runs.filter_by_exec_args(*sys.argv[2:]).latest()
print(best.path_to_experiment)
print(peak_kib())
"""

LEGACY_PROCESS = """
import sys
sys.path.insert(0, sys.argv[1])
from bench import legacy_load_filter_latest
from pathlib import Path
print(legacy_load_filter_latest(Path(sys.argv[2])))
"""

FULL_SYNC_PROCESS = PEAK_RSS + """
import sys, time
from pyhermes import Experiment
started = time.perf_counter()
Experiment.load_all(sys.argv[1], sync="full")
seconds = time.perf_counter() - started
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(seconds, peak_kib(), workers)
"""

BUILD_PROCESS = PEAK_RSS + """
import sys, time
from pyhermes import Experiment
started = time.perf_counter()
runs = Experiment.load_all(sys.argv[1])
seconds = time.perf_counter() - started
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(seconds, peak_kib(), workers)
"""


def fresh_process(folder: Path) -> tuple[float, str, int]:
    """No-change load_all + filter + latest in a new interpreter: (wall seconds, answer, its peak RSS in KiB)."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(folder), *WANTED],
        capture_output=True, text=True, check=True,
    ).stdout.split("\n")
    return time.perf_counter() - started, out[0].strip(), int(out[1])


def full_sync_process(folder: Path) -> tuple[float, int, int]:
    """No-change ``load_all(sync="full")`` timed inside a new interpreter: (seconds, peak RSS, of a worker) in KiB."""
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", FULL_SYNC_PROCESS, str(folder)],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    return float(out[0]), int(out[1]), int(out[2])


def legacy_process(folder: Path) -> float:
    """The legacy scan in a new interpreter (wall seconds)."""
    return whole_process([sys.executable, "-c", LEGACY_PROCESS, str(HERE), str(folder)])


def build_process(folder: Path, env: dict[str, str] | None = None) -> tuple[float, int, int]:
    """First build in a new interpreter: (seconds, peak RSS of the writer, of a worker) in KiB.

    The writer's is its own ``VmHWM`` (see :data:`PEAK_RSS`); a worker's, the largest
    ``ru_maxrss`` of the writer's children, forked from it (the pages they share with
    the writer at the fork count in both).

    ``env``: the environment of the process (default: this one's), e.g. with
    ``HERMES_INDEX`` naming an empty database.
    """
    # An index of the folder, or of a folder above it inside the corpus (another tool opened
    # the corpus root), would be found and reused: the build would build nothing.
    for place in (folder, *folder.parents[:3]):
        shutil.rmtree(place / ".hermes", ignore_errors=True)
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", BUILD_PROCESS, str(folder)],
        capture_output=True, text=True, check=True, env=env,
    ).stdout.split()
    return float(out[0]), int(out[1]), int(out[2])


def whole_process(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - started


def hermes_command() -> str:
    return str(Path(sys.executable).with_name("hermes"))


def ls_command(folder: Path, sort: str | None = None) -> list[str]:
    """``hermes ls FOLDER --where=LS_WHERE [--sort=SORT] --limit 10``, as a command line."""
    command = [hermes_command(), "ls", str(folder), f"--where={LS_WHERE}"]
    if sort is not None:
        command.append(f"--sort={sort}")
    return [*command, "--limit", "10"]


#: The runs pages whose first request after ``hermes serve`` starts is timed: key, what (in the table), path.
#: The path is the Runs page's own (``/`` only redirects to it), so one request is timed.
SERVE_PAGES = (
    ("serve_plain", "runs page `/runs`", "/runs"),
    ("serve_filtered", "filtered `/runs?where=...`", "/runs?" + urllib.parse.urlencode({"where": LS_WHERE})),
    ("serve_page", "page 10,000 `/runs?page=10000`", "/runs?page=10000"),
)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str) -> tuple[float, int, str]:
    """GET ``path`` of 127.0.0.1:``port`` on a new connection: (wall seconds, status, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        started = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        return time.perf_counter() - started, response.status, body.decode(errors="replace")
    finally:
        connection.close()


def runs_page_facts(path: str, status: int, body: str) -> tuple[int | None, int, str | None]:
    """The count of matching runs and the page number a runs page shows: (total, page, count
    URL); a page given before its count (it follows from ``/api/count``) has ``None`` and the
    URL it fetches the count from.

    Raises:
        RuntimeError: the answer is not the runs page (another status, the "Indexing
            the runs" page of a server whose index is not ready, no runs table).
    """
    total = re.search(r'id="count" data-total="(\d+)"', body)
    pending = re.search(r'id="count" data-count-url="([^"]+)"', body)
    page = re.search(r"page ([\d,]+) of ", body)
    if status != 200 or "Indexing the runs" in body or 'id="runs"' not in body or not (total or pending) or not page:
        raise RuntimeError(f"hermes serve: GET {path} answered {status}, not the runs page:\n{body[:3000]}")
    number = int(page.group(1).replace(",", ""))
    if total:
        return int(total.group(1)), number, None
    return None, number, html.unescape(pending.group(1))


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """The resident set size (``VmRSS``, or another ``Vm*`` field) of process ``pid`` in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def serve_first_request(folder: Path, path: str) -> dict[str, Any]:
    """Start ``hermes serve FOLDER``, time its first request, of ``path``, and a second one.

    Returns ``first`` and ``cached`` (the seconds of the two GETs, each on a new
    connection), ``start`` (seconds from the start of the process until it accepts
    TCP connections, polled), ``rss_kib`` (the server's VmRSS after the first
    request), ``syncing`` (whether its background sync at start was still running
    after the first request), ``total`` and ``page`` (the count and page number
    the page shows). The server is stopped (Ctrl-C, then killed) once its sync at
    start is done, so that no sync is cut short.

    Raises:
        RuntimeError: the server exits or does not accept connections within 10
            minutes, or an answer is not the runs page (see :func:`runs_page_facts`).
    """
    port = free_port()
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            [hermes_command(), "serve", str(folder), "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )

        def fail(why: str) -> RuntimeError:
            log.seek(0)
            return RuntimeError(f"hermes serve {why}:\n{log.read().decode(errors='replace')[-3000:]}")

        try:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=5).close()
                    break
                except OSError:
                    if process.poll() is not None:
                        raise fail(f"exited ({process.returncode}) before it accepted connections") from None
                    if time.perf_counter() - started > 600:
                        raise fail("accepted no connection in 10 minutes") from None
                    time.sleep(0.01)
            result: dict[str, Any] = {"start": time.perf_counter() - started}
            result["first"], status, body = http_get(port, path)
            result["total"], result["page"], count_url = runs_page_facts(path, status, body)
            result["counted"] = count_url is None
            if count_url is not None:  # the page came before its count: the page fetches it next
                result["count"], status, body = http_get(port, count_url)
                result["total"] = json.loads(body)["total"]
            result["rss_kib"] = rss_kib(process.pid)
            result["syncing"] = json.loads(http_get(port, "/api/status")[2])["running"]
            result["cached"], status, body = http_get(port, path)
            if runs_page_facts(path, status, body)[:2] != (result["total"], result["page"]):
                raise fail(f"answered GET {path} differently the second time")
            while json.loads(http_get(port, "/api/status")[2])["running"]:
                if time.perf_counter() - started > 3600:
                    raise fail("did not finish its sync at start within an hour")
                time.sleep(0.05)
            return result
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


# --------------------------------------------------------------------------- corpora and MLflow


def cache_dir(given: Path | None) -> Path:
    if given is not None:
        return given
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pyhermes-bench"


#: From this many runs on, a corpus has 100 scores per run (1,000,000 runs of 1,000 would be ~60 GB).
SHORT_RUNS_FROM = 1_000_000


def scores_per_run(runs: int) -> int:
    """How many scores each run of a corpus of ``runs`` runs has."""
    return 100 if runs >= SHORT_RUNS_FROM else 1000


def corpus(cache: Path, runs: int) -> Path:
    """The cached corpus of ``runs`` runs (generated on first use)."""
    root = cache / f"corpus-{runs}"
    if not (root / ".complete").exists():
        from make_corpus import make_corpus

        shutil.rmtree(root, ignore_errors=True)
        started = time.perf_counter()
        make_corpus(root, runs, scores_per_run=scores_per_run(runs))
        if runs >= SHORT_RUNS_FROM:
            age(root / FOLDER)  # once: measure() ages only the folder of a big corpus
        (root / ".complete").touch()
        print(f"generated {runs} runs in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return root / FOLDER


def mlflow_python(cache: Path) -> Path:
    """The interpreter of MLflow's own virtualenv (created on first use)."""
    venv = cache / "mlflow-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "mlflow>=3,<4"], check=True)
    return python


def mlflow_store(cache: Path, folder: Path, runs: int, max_log: int) -> tuple[Path, float] | None:
    """The MLflow store of the corpus (logged once) and its logging cost per run, or None."""
    db = cache / f"mlflow-{runs}.db"
    facts = cache / f"mlflow-{runs}.json"
    if not db.exists():
        if runs > max_log:
            return None
        python = mlflow_python(cache)
        partial = db.with_suffix(".db.tmp")
        partial.unlink(missing_ok=True)
        out = subprocess.run(
            [str(python), str(HERE / "mlflow_peer.py"), "log", str(folder), str(partial)],
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]
        facts.write_text(out)
        partial.rename(db)
    logged = json.loads(facts.read_text()) if facts.exists() else None
    per_run = logged["seconds"] / logged["runs"] if logged else float("nan")
    return db, per_run


def mlflow_query(cache: Path, db: Path, what: str, repeat: int) -> dict[str, Any]:
    python = mlflow_python(cache)
    command = [str(python), str(HERE / "mlflow_peer.py")]
    command += ["fresh", str(db)] if what == "fresh" else ["query", str(db), what, str(repeat)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# --------------------------------------------------------------------------- one size


def warm_questions(folder: Path, repeat: int, big: bool, legacy_answer: Path, fresh_answer: Path) -> dict[str, Any]:
    """Time the warm rows: the questions asked again of one ``load_all`` list in this process.

    Below :data:`SHORT_RUNS_FROM` runs (``big`` false) the list is read whole first (a
    warm process) and ``to_frame()`` of all runs is timed; at ``big`` sizes neither
    (each would build an object per run: ``frame`` is NaN). The list is dropped on
    return. Returns the seconds by row, ``matches_count`` and ``warm_read``.

    Raises:
        AssertionError: the fresh process, the list and the legacy scan disagree on the latest match.
    """
    from pyhermes import Experiment

    runs = Experiment.load_all(folder)
    if not big:
        len(runs)  # a warm process: the list was read before
    results: dict[str, Any] = {"warm_read": not big}
    results["warm_latest"] = timed(lambda: runs.filter_by_exec_args(*WANTED).latest(), repeat)
    results["matches"] = timed(lambda: list(runs.filter_by_exec_args(*WANTED)), repeat)
    results["matches_count"] = len(runs.filter_by_exec_args(*WANTED))
    results["typed"] = timed(lambda: list(runs.where(TYPED)), repeat)
    results["top10"] = timed(lambda: list(runs.top(10)), repeat)
    if big:
        results["frame"] = float("nan")
    else:
        import pandas  # noqa: F401 - imported before timing: the frame, not the import, is timed

        results["frame"] = timed(lambda: runs.to_frame(), repeat)
    assert fresh_answer == legacy_answer, "fresh process and legacy disagree"
    assert runs.filter_by_exec_args(*WANTED).latest().path_to_experiment == legacy_answer
    return results


class Progress:
    """Progress lines on stderr, so that a long run can be followed: ``with progress("what"):``.

    Each step prints a line when it starts and one with its seconds (and the seconds
    since the :class:`Progress` was made) when it ends.
    """

    def __init__(self, label: str) -> None:
        self.label, self.started = label, time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, what: str) -> Iterator[None]:
        """Print ``what`` is timed, run the body, print its seconds."""
        begun = time.perf_counter()
        print(f"  [{self.label}] {what} ...", file=sys.stderr, flush=True)
        yield
        now = time.perf_counter()
        print(f"  [{self.label}] {what}: {now - begun:.1f} s (at {now - self.started:.0f} s)",
              file=sys.stderr, flush=True)


def measure(folder: Path, repeat: int, build_repeat: int) -> dict[str, Any]:
    """Time every question on one corpus folder; return seconds (and a few facts).

    From :data:`SHORT_RUNS_FROM` runs on, the legacy scan, the read-and-parse floor
    and the first build are timed once, the legacy scan as a whole process not at
    all (NaN), and the warm rows that would build an object per run (``to_frame()``
    of all runs, reading the whole list first) are skipped (NaN); the other rows get
    ``repeat`` rounds. Nothing that holds every run is kept alive between rows.
    """
    from pyhermes import Experiment
    from pyhermes.index.store.engine import dispose_engines

    nan = float("nan")
    step = Progress(f"{folder.parents[2].name}")
    results: dict[str, Any] = {"runs": stat_floor(folder)}
    big = results["runs"] >= SHORT_RUNS_FROM
    # A big corpus was aged when generated (corpus()); ageing 7,000,000 files again takes minutes.
    with step("setting every mtime an hour back" if not big else "setting the folder's mtime an hour back"):
        age(folder) if not big else age_folder(folder)
    once = 1 if big else repeat
    legacy_answers: list[Path] = []
    with step(f"legacy scan, {once} round(s)"):
        results["legacy"] = timed(lambda: legacy_answers.append(legacy_load_filter_latest(folder)), once)
    legacy_answer = legacy_answers[0]
    if big:
        results["legacy_fresh"] = nan
    else:
        with step("legacy scan as a whole process"):
            results["legacy_fresh"] = statistics.median(legacy_process(folder) for _ in range(repeat))
    with step("stat floor"):
        results["stat_floor"] = timed(lambda: stat_floor(folder), repeat)
    with step("read-and-parse floor"):
        results["parse_floor"] = timed(lambda: read_parse_floor(folder), 1 if big else max(1, repeat // 2))
    with step("first build (fresh process)"):
        builds = [build_process(folder) for _ in range(1 if big else build_repeat)]
    results["build"] = statistics.median(seconds for seconds, _, _ in builds)
    results["build_rss_kib"] = max(own for _, own, _ in builds)
    results["build_worker_rss_kib"] = max(worker for _, _, worker in builds)
    dispose_engines()
    with step("settling the index, ageing the files again, one full sync"):
        Experiment.load_all(folder)  # settles the index beside the aged runs
        age(folder) if not big else age_folder(folder)  # the build changed only the folder
        Experiment.load_all(folder, sync="full")
    with step("no-change load_all + filter + latest, in process"):
        results["quick"] = timed(lambda: Experiment.load_all(folder).filter_by_exec_args(*WANTED).latest(), repeat)
    with step('no-change load_all(sync="full"), in process'):
        results["full"] = timed(lambda: Experiment.load_all(folder, sync="full"), repeat)
    # This process wrote the index (and holds its WAL): the first process after it finds the
    # file changed and checks it (PRAGMA quick_check), once; the row times the ones after.
    dispose_engines()
    with step("fresh process"):
        results["fresh_first"] = fresh_process(folder)[0]
        fresh = [fresh_process(folder) for _ in range(repeat)]
    results["fresh"] = statistics.median(seconds for seconds, _, _ in fresh)
    results["fresh_answer"] = fresh[0][1]
    results["fresh_rss_kib"] = max(rss for _, _, rss in fresh)
    with step('no-change load_all(sync="full") in a fresh process'):
        full = [full_sync_process(folder) for _ in range(repeat)]
    results["full_fresh"] = statistics.median(seconds for seconds, _, _ in full)
    results["full_fresh_rss_kib"] = max(own for _, own, _ in full)
    results["full_fresh_worker_rss_kib"] = max(worker for _, _, worker in full)
    with step("hermes ls, without and with --sort"):
        results["ls"] = statistics.median(whole_process(ls_command(folder)) for _ in range(repeat))
        ls_sorted = ls_command(folder, LS_SORT)
        results["ls_sorted"] = statistics.median(whole_process(ls_sorted) for _ in range(repeat))
    with step("import pyhermes, python -c pass"):
        results["import"] = statistics.median(
            whole_process([sys.executable, "-c", "import pyhermes"]) for _ in range(repeat)
        )
        results["python"] = statistics.median(
            whole_process([sys.executable, "-c", "pass"]) for _ in range(repeat)
        )
    for key, what, path in SERVE_PAGES:
        with step(f"hermes serve: first request of the {what}, {repeat} new server(s)"):
            served = [serve_first_request(folder, path) for _ in range(repeat)]
        results[key] = statistics.median(item["first"] for item in served)
        results[f"{key}_cached"] = statistics.median(item["cached"] for item in served)
        results[f"{key}_start"] = statistics.median(item["start"] for item in served)
        results[f"{key}_rss_kib"] = max(item["rss_kib"] for item in served)
        results[f"{key}_syncing"] = sum(item["syncing"] for item in served)
        results[f"{key}_total"], results[f"{key}_shown"] = served[0]["total"], served[0]["page"]
    with step("warm questions"):
        results.update(warm_questions(folder, repeat, big, legacy_answer, Path(results["fresh_answer"])))
    # A full sync after 1% of the runs changed (their mtimes: the same content is read again).
    changed = sorted(name for name in os.listdir(folder) if not name.startswith("."))[::100]
    when = time.time() - 1800

    def change_and_sync() -> None:
        nonlocal when
        when += 1
        for name in changed:
            os.utime(folder / name / "exec_arguments", (when, when))
        Experiment.load_all(folder, sync="full")

    results["changed_runs"] = len(changed)
    with step(f"full sync after {len(changed)} runs changed"):
        results["changed_sync"] = timed(change_and_sync, repeat)
    return results


# --------------------------------------------------------------------------- live lab

#: The live lab of ``--live``: writers creating a run every 0.3 s each, unfinished runs appending scores.
LAB_WRITERS, LAB_APPENDERS = 4, 20
#: Each row's live median may be at most this many times its quiet median.
LIVE_RATIO = 1.3
#: ``hermes ls`` at 100,000 runs during a live lab: at most this many seconds.
LIVE_LS_LIMIT = 0.3
#: The filter of the timed runs page; ``threshold`` moves by 1e-6 at each request (see :meth:`Server.runs_page`).
WEB_WHERE = "--doubledqn and -lr < 0.001 and final_mean > {threshold}"
LIVE_ROWS = ("fresh", "ls", "web")
LIVE_LABELS = {
    "fresh": "fresh process (whole): import, load_all, filter, latest",
    "ls": f"`hermes ls --where ... --sort={LS_SORT} --limit 10` (whole process)",
    "web": f"`hermes serve`: GET `/runs?where=...&sort={LS_SORT}` (a filter's first view)",
}
LIVE_BEGIN, LIVE_END = "<!-- bench-live:begin -->", "<!-- bench-live:end -->"
LIVE_HEADING = "## Live lab"
#: The index backends of ``--live --backend``, in the order they are measured, and their names in the table.
BACKENDS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


@dataclass
class Tally:
    """What went wrong during one phase (quiet or live) of the live benchmark.

    ``exits`` (non-zero exits, pages not answered 200), ``tracebacks`` (on the stderr
    of a measured process or of the server) and ``lab`` (``LiveLab.problems()``) are
    errors; ``notes`` are the other lines the measured processes printed on stderr
    (shown, not counted).
    """

    exits: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)
    lab: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def errors(self) -> int:
        """The number of errors (exits, tracebacks, lab problems)."""
        return len(self.exits) + len(self.tracebacks) + len(self.lab)

    def stderr(self, what: str, text: str) -> None:
        """Note the tracebacks of ``text`` (one per ``Traceback`` line, named by its last line) and the rest."""
        lines = [line for line in text.splitlines() if line.strip()]
        tracebacks = sum(line.startswith("Traceback") for line in lines)
        if tracebacks:
            self.tracebacks += [f"{what}: {lines[-1].strip()}"] * tracebacks
        else:
            self.notes += [f"{what}: {line.strip()}" for line in lines]

    def lines(self) -> list[str]:
        """Every error, then every note, one per line (repeated lines counted once, with their number)."""
        counted: dict[str, int] = {}
        for kind, items in (("exit", self.exits), ("traceback", self.tracebacks), ("lab", self.lab),
                            ("note", self.notes)):
            for item in items:
                counted[f"{kind}: {item}"] = counted.get(f"{kind}: {item}", 0) + 1
        return [line if n == 1 else f"{line} (x{n})" for line, n in counted.items()]


def live_process(what: str, command: list[str], tally: Tally, env: dict[str, str] | None = None) -> float:
    """Run one measured process (in ``env``): its wall seconds; a non-zero exit and its stderr go to ``tally``."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [""])[-1]
        tally.exits.append(f"{what}: exit {done.returncode}: {last}")
    tally.stderr(what, done.stderr)
    return seconds


class Server:
    """A ``hermes serve FOLDER --port 0`` process, its output in a log file; a context manager.

    The runs page is timed with a GET over loopback HTTP, as a browser asks it, from
    the server ``hermes serve`` starts (its quick sync at start included), rather
    than through bench_web's in-process Flask client: the app would then share this
    process with the benchmark, and bench_web clears a private cache of the app
    before each request, which a separate process rules out (the filter changes at
    each request instead, see :meth:`runs_page`).
    """

    def __init__(self, folder: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.folder, self.log, self.env = folder, log, env
        self.url = ""
        self.requests = 0
        self._read = 0
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        """Start the server; return once it listens and its first (background) sync is done."""
        with open(self.log, "wb") as handle:
            self._process = subprocess.Popen(
                [hermes_command(), "serve", str(self.folder), "--port", "0"],
                stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
            )
        try:
            deadline = time.monotonic() + 120
            while not self.url:
                text = self.log.read_text(errors="replace")
                match = re.search(r" at (http://\S+)/runs ", text)
                if match:
                    self.url = match.group(1)
                elif self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"hermes serve did not start:\n{text[-3000:]}")
                else:
                    time.sleep(0.05)
            self.wait_synced()
        except BaseException:
            self.__exit__()
            raise
        return self

    def wait_synced(self, timeout: float = 1800) -> None:
        """Wait until the server's background sync is done."""
        deadline = time.monotonic() + timeout
        while True:
            with urllib.request.urlopen(f"{self.url}/api/status", timeout=60) as response:
                status = json.loads(response.read())
            if not status["running"] or time.monotonic() > deadline:
                return
            time.sleep(0.1)

    def runs_page(self, tally: Tally) -> float:
        """GET the runs page with a filter and a sort: wall seconds; a status other than 200 goes to ``tally``.

        The server keeps the count of a filter until the index changes: the threshold
        of the filter moves by 1e-6 at each request, so that every request is a
        filter's first view (as in bench_web) and a quiet round does not answer
        from the count a live round could never keep.
        """
        self.requests += 1
        where = WEB_WHERE.format(threshold=f"{-50 - self.requests * 1e-6:.6f}")
        url = f"{self.url}/runs?" + urllib.parse.urlencode({"where": where, "sort": LS_SORT})
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=300) as response:
                response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            error.read()
            status = error.code
        seconds = time.perf_counter() - started
        if status != 200:
            tally.exits.append(f"hermes serve: GET /runs answered {status}")
        return seconds

    def collect(self, tally: Tally) -> None:
        """Note in ``tally`` the tracebacks the server printed since the last call (request logs are skipped)."""
        text = self.log.read_text(errors="replace")
        new, self._read = text[self._read :], len(text)
        lines = [line for line in new.splitlines() if line.strip()]
        for number, line in enumerate(lines):
            if line.startswith("Traceback"):
                after = [item for item in lines[number + 1 :] if not item.startswith((" ", "\t"))]
                tally.tracebacks.append(f"hermes serve: {after[0].strip() if after else line}")

    def __exit__(self, *exc: object) -> None:
        """Stop the server."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def linked_copy(folder: Path, target: Path) -> None:
    """Copy the entries of ``folder`` into ``target`` with ``cp -al`` (hard links), else ``cp -a``.

    Dot entries (the ``.hermes`` index folder above all) are not copied: the copy
    gets its own index, built by a fresh ``load_all``.
    """
    names = sorted(name for name in os.listdir(folder) if not name.startswith("."))
    for flags in ("-al", "-a"):
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        try:
            for start in range(0, len(names), 1000):
                batch = [str(folder / name) for name in names[start : start + 1000]]
                subprocess.run(["cp", flags, "--target-directory", str(target), "--", *batch],
                               check=True, capture_output=True)
            return
        except subprocess.CalledProcessError as error:
            print(f"cp {flags} failed ({error.stderr.decode(errors='replace').strip()[:200]}); "
                  "copying without hard links", file=sys.stderr)
    raise RuntimeError(f"could not copy {folder} to {target}")


def hermes_folders(top: Path, near: list[Path]) -> set[Path]:
    """The existing ``.hermes`` folders of ``top`` and of the folders above ``near``, up to ``top``.

    ``near`` are paths below ``top`` (the measured folder, the runs the lab created).
    """
    folders: set[Path] = set()
    for path in near:
        for parent in (path, *path.parents):
            folders.add(parent / ".hermes")
            if parent == top or top not in parent.parents:
                break
    return {hermes for hermes in folders if hermes.is_dir()}


def moved_aside(top: Path, near: list[Path]) -> set[Path]:
    """The moved-aside indexes (``*.broken-*`` in a ``.hermes`` folder) of ``top`` and of the folders above ``near``.

    Every ``.hermes`` folder from each path of ``near`` up to ``top`` is looked in
    (see :func:`hermes_folders`).
    """
    return {found for hermes in hermes_folders(top, near) for found in hermes.glob("*.broken-*")}


def live_round(folder: Path, server: Server, tally: Tally, env: dict[str, str] | None = None) -> dict[str, float]:
    """Time each live row once: the fresh process, ``hermes ls``, the runs page of the server."""
    fresh = [sys.executable, "-c", FRESH_PROCESS, str(folder), *WANTED]
    return {
        "fresh": live_process("fresh process", fresh, tally, env),
        "ls": live_process("hermes ls", ls_command(folder, LS_SORT), tally, env),
        "web": server.runs_page(tally),
    }


def pg_settings(url: str) -> dict[str, str]:
    """The version and the settings of the PostgreSQL server of ``url`` that a benchmark depends on."""
    from sqlalchemy import create_engine

    names = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "shared_buffers",
             "autovacuum")
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return {name: str(conn.exec_driver_sql(f"SHOW {name}").scalar()) for name in names}
    finally:
        engine.dispose()


def pg_maintenance(url: str) -> dict[str, int]:
    """How many times autovacuum has vacuumed and analyzed the tables of the database of ``url`` so far."""
    from sqlalchemy import create_engine

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT coalesce(sum(autovacuum_count), 0), coalesce(sum(autoanalyze_count), 0) "
                "FROM pg_stat_user_tables"
            ).one()
        return {"autovacuum": int(row[0]), "autoanalyze": int(row[1])}
    finally:
        engine.dispose()


def measure_live(cache: Path, size: int, repeat: int, index_url: str | None = None) -> dict[str, Any]:
    """Time the three live rows on the corpus of ``size`` runs, quiet and during a live lab.

    The index: the SQLite file of the copy (``.hermes/index.sqlite``), or, with
    ``index_url``, that (new, empty) database: every measured process, ``hermes
    serve`` and the lab's processes then run with ``HERMES_INDEX=<index_url>``, and
    the copy's index is built in it the same way. Moved-aside indexes are a SQLite
    matter (``None`` on a database); there, a ``.hermes`` folder appearing in the
    copy (a process that ignored ``HERMES_INDEX``) is reported in ``stray``.

    Where the lab writes: on a copy. The run directories of the cached corpus are
    copied with hard links (``cp -al``; a plain copy where links cannot be made)
    into ``<cache>/live-<size>``, without the index: the copy's index is built
    there by a fresh ``load_all`` (:func:`build_process`). The quiet rounds and the
    live rounds both run on that copy, against the same index and one ``hermes
    serve`` started once on it; the lab (``scripts/live_lab.py``) writes its runs
    into the copy, and the copy is deleted at the end, so the cached corpus and its
    index are never written (only its files' mtimes are set an hour back, shared
    through the links, as :func:`measure` does anyway). The lab's runs are new
    directories with new files, so no linked file is ever appended to.

    Order: one untimed round, then ``repeat`` quiet rounds; then, with the lab
    running, one untimed round and ``repeat`` live rounds. A round times the fresh
    process, ``hermes ls`` and the runs page, in that order. Errors are counted
    per phase (:class:`Tally`), and so are the moved-aside indexes.
    """
    from live_lab import LiveLab

    env = dict(os.environ)
    env.pop("HERMES_INDEX", None)
    if index_url is not None:
        env["HERMES_INDEX"] = index_url
    source = corpus(cache, size)
    work = cache / f"live-{size}"
    folder = work / FOLDER
    started = time.perf_counter()
    try:
        linked_copy(source, folder)
        age(folder)
        try:
            build_process(folder, env)
        except subprocess.CalledProcessError as error:
            raise RuntimeError(f"the index of the copy could not be built:\n{error.stderr[-3000:]}") from None
        results: dict[str, Any] = {"runs": stat_floor(folder), "prepare": time.perf_counter() - started}
        print(f"  copy of {results['runs']} runs indexed in {results['prepare']:.1f} s", file=sys.stderr)
        tallies = {"quiet": Tally(), "live": Tally()}
        samples: dict[str, dict[str, list[float]]] = {phase: {row: [] for row in LIVE_ROWS} for phase in tallies}
        broken: dict[str, set[Path]] = {}
        created: list[Path] = []

        maintenance: list[dict[str, int]] = []

        def rounds(phase: str, server: Server) -> None:
            live_round(folder, server, tallies[phase], env)  # untimed: caches, the first check of the index
            for _ in range(repeat):
                for row, seconds in live_round(folder, server, tallies[phase], env).items():
                    samples[phase][row].append(seconds)

        def note_maintenance() -> None:
            if index_url is not None:
                maintenance.append(pg_maintenance(index_url))

        with Server(folder, work / "serve.log", env) as server:
            note_maintenance()
            rounds("quiet", server)
            server.collect(tallies["quiet"])
            note_maintenance()
            broken["quiet"] = moved_aside(work, [folder])
            lab = LiveLab(folder, writers=LAB_WRITERS, appenders=LAB_APPENDERS, env=env)
            with lab:
                rounds("live", server)
            note_maintenance()
            server.collect(tallies["live"])
        server.collect(tallies["live"])
        tallies["live"].lab.extend(lab.problems())
        created = lab.created()
        broken["live"] = moved_aside(work, [folder, *created]) - broken["quiet"]
        if index_url is not None:
            results["stray"] = sorted(str(path.relative_to(work)) for path in hermes_folders(work, [folder, *created]))
            results["autovacuum"] = {  # what autovacuum did during each phase (ANALYZE changes query plans)
                phase: {key: maintenance[number + 1][key] - maintenance[number][key] for key in maintenance[0]}
                for number, phase in enumerate(("quiet", "live"))
            }
        results.update(
            quiet={row: statistics.median(samples["quiet"][row]) for row in LIVE_ROWS},
            live={row: statistics.median(samples["live"][row]) for row in LIVE_ROWS},
            samples=samples,
            errors={phase: tally.errors() for phase, tally in tallies.items()},
            moved_aside=None if index_url is not None else
            {phase: sorted(str(path.relative_to(work)) for path in found) for phase, found in broken.items()},
            problems={phase: tally.lines() for phase, tally in tallies.items()},
            created=len(created),
            seconds=time.perf_counter() - started,
        )
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def live_rows(size: int, backend: str, r: dict[str, Any]) -> list[tuple[str, ...]]:
    """The rows of the live table for one size and backend: (runs, backend, what, quiet ms, live ms, live/quiet, target)."""
    rows = []
    for key in LIVE_ROWS:
        quiet, live = r["quiet"][key], r["live"][key]
        ratio = live / quiet
        target = f"≤ {LIVE_RATIO}x: " + _check(ratio <= LIVE_RATIO)
        if key == "ls" and size == 100_000:
            target += f"; ≤ {LIVE_LS_LIMIT * 1000:.0f} ms live: " + _check(live <= LIVE_LS_LIMIT)
        rows.append((LIVE_LABELS[key], _ms(quiet), _ms(live), f"{ratio:.2f}x", target))
    errors = r["errors"]
    rows.append(("errors: non-zero exits, tracebacks on stderr, lab problems", str(errors["quiet"]),
                 str(errors["live"]), "", "0: " + _check(errors["quiet"] + errors["live"] == 0)))
    what = "moved-aside indexes (`index.sqlite.broken-*`)"
    if r["moved_aside"] is None:  # a database: nothing is ever moved aside
        rows.append((what, "n/a", "n/a", "", "n/a"))
    else:
        moved = {phase: len(found) for phase, found in r["moved_aside"].items()}
        rows.append((what, str(moved["quiet"]), str(moved["live"]), "",
                     "0: " + _check(moved["quiet"] + moved["live"] == 0)))
    return [(f"{size:,}", BACKENDS[backend], *row) for row in rows]


def live_command(sizes: list[int], repeat: int, backends: list[str]) -> str:
    """The command line of ``--live`` that measures ``sizes`` on ``backends``."""
    return (f"python scripts/bench.py --live --sizes {','.join(map(str, sizes))} --repeat {repeat} "
            f"--backend {','.join(backends)}")


def live_table(sizes: list[int], repeat: int, backends: list[str],
               measured: dict[str, dict[int, dict[str, Any]]], server: dict[str, str] | None = None) -> str:
    """The Markdown of the live benchmark: how it was measured, the table, what the lab wrote.

    ``measured[backend][size]`` is what :func:`measure_live` returned; ``server``, the
    settings of the PostgreSQL server (:func:`pg_settings`) when one was measured.
    """
    lines = [
        f"Live lab (`scripts/live_lab.py`): {LAB_WRITERS} writers each creating a run every 0.3 s and "
        f"{LAB_APPENDERS} unfinished runs appending scores, in a copy of the corpus (hard links, its own index "
        f"built by a fresh `load_all`); per size and backend, {repeat} quiet rounds, then {repeat} rounds with "
        f"the lab running (one untimed round first in each); medians; {time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} cores (shared); command: `{live_command(sizes, repeat, backends)} --write BENCHMARKS.md`",
    ]
    if "sqlite" in backends:
        lines += ["", "SQLite: the copy's own `.hermes/index.sqlite`."]
    if "postgresql" in backends:
        settings = server or {}
        lines += ["", f"PostgreSQL {settings.get('server_version', '')}".rstrip()
                  + ": a throwaway server started by the benchmark (`scripts/pg_server.py`: unix socket in a "
                  "temporary folder, no TCP, trust authentication, every other setting its default: "
                  + ", ".join(f"{name} {settings[name]}" for name in
                              ("fsync", "synchronous_commit", "full_page_writes", "shared_buffers", "autovacuum")
                              if name in settings)
                  + "); a new database per size, named by `HERMES_INDEX` in every measured process, in "
                  "`hermes serve` and in the lab's processes."]
    lines += [
        "",
        "| runs | backend | what | quiet (ms) | live (ms) | live/quiet | target |",
        "| ---: | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for size in sizes:
        for backend in backends:
            lines.extend("| " + " | ".join(row) + " |" for row in live_rows(size, backend, measured[backend][size]))
    lines += ["", "Runs the lab created during the live rounds: "
              + ", ".join(f"{measured[backend][size]['created']} at {size:,} runs ({BACKENDS[backend]})"
                          for size in sizes for backend in backends) + "."]
    return "\n".join(lines)


def main_live(sizes: list[int], repeat: int, cache: Path, write: Path | None,
              backends: list[str] | None = None) -> int:
    """``--live``: measure on each backend, print the table and the problems; write the "## Live lab" section.

    PostgreSQL is measured on one throwaway server (:func:`pg_server.postgres_server`
    with ``fsync=True``: the server's default settings), started once for the whole
    run; each size gets a new database on it, dropped afterwards. A ``HERMES_INDEX``
    of this process's environment is ignored (removed): every backend measures the
    index of the copy.
    """
    backends = backends or ["sqlite"]
    if os.environ.pop("HERMES_INDEX", None):
        print("HERMES_INDEX is ignored: the benchmark measures the index of its own copy", file=sys.stderr)
    measured: dict[str, dict[int, dict[str, Any]]] = {backend: {} for backend in backends}
    server: dict[str, str] | None = None
    with contextlib.ExitStack() as stack:
        server_url = None
        if "postgresql" in backends:
            from pg_server import postgres_server

            server_url = stack.enter_context(postgres_server(fsync=True))
            server = pg_settings(server_url)
            print(f"PostgreSQL {server['server_version']} started: {server_url}", file=sys.stderr)
        for size in sizes:
            for backend in backends:
                print(f"measuring {size} runs on {BACKENDS[backend]}, quiet and live ...", file=sys.stderr)
                if backend == "postgresql":
                    from pg_server import drop_database, new_database

                    assert server_url is not None
                    url = new_database(server_url)
                    try:
                        measured[backend][size] = measure_live(cache, size, repeat, index_url=url)
                    finally:
                        drop_database(server_url, url)
                else:
                    measured[backend][size] = measure_live(cache, size, repeat)
                print(f"  {measured[backend][size]['seconds']:.1f} s", file=sys.stderr)
    table = live_table(sizes, repeat, backends, measured, server)
    print(table)
    for size in sizes:
        for backend in backends:
            r = measured[backend][size]
            name = f"{size:,} runs, {BACKENDS[backend]}"
            for phase in ("quiet", "live"):
                moved = (r["moved_aside"] or {}).get(phase, [])
                if moved or r["problems"][phase]:
                    print(f"\n{name}, {phase}: {r['errors'][phase]} errors, {len(moved)} moved-aside indexes",
                          file=sys.stderr)
                    for line in moved:
                        print(f"  moved aside: {line}", file=sys.stderr)
                    for line in r["problems"][phase][:40]:
                        print(f"  {line}", file=sys.stderr)
            if r.get("stray"):
                print(f"\n{name}: .hermes folders in the copy although HERMES_INDEX named the database:",
                      file=sys.stderr)
                for line in r["stray"]:
                    print(f"  {line}", file=sys.stderr)
            if "autovacuum" in r:
                print(f"{name}: autovacuum during the phases: {r['autovacuum']}", file=sys.stderr)
    if write:
        write_table(write, table, LIVE_BEGIN, LIVE_END, heading=LIVE_HEADING)
    (cache / "last-live-results.json").write_text(json.dumps({"server": server, **measured}, default=str))
    return 0


# --------------------------------------------------------------------------- report


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}" if seconds == seconds else "–"


def _check(value: bool) -> str:
    return "met" if value else "NOT met"


#: Two marginal per-run build costs within this factor of each other count as flat.
FLAT_WITHIN = 1.25


def growth_text(sizes: list[int], measured: dict[int, dict[str, Any]]) -> str:
    """The growth paragraph: per-run build cost across sizes, whole and marginal, and warm queries.

    The whole cost (build time / runs) carries the fixed start-up of a build
    (imports, schema, pool), which weighs most on the smallest corpus; the
    marginal cost (the time one more corpus size adds, per added run) is what
    grows if building does not scale, so "flat" is judged on it. Only the sizes whose
    runs have as many scores as the smallest one's are compared (builds of runs of
    100 scores, from :data:`SHORT_RUNS_FROM` on, are another workload); the others
    are named as left out.
    """
    left_out = [size for size in sizes if scores_per_run(size) != scores_per_run(sizes[0])]
    sizes = [size for size in sizes if size not in left_out]
    if len(sizes) < 2:
        return ""
    first, last = sizes[0], sizes[-1]
    build = {size: measured[size]["build"] for size in sizes}
    runs = {size: measured[size]["runs"] for size in sizes}
    whole = (build[last] / runs[last]) / (build[first] / runs[first])
    text = (f"Growth: the per-run build cost (build time / runs) at {last:,} runs is {whole:.2f}x the "
            f"cost at {first:,}")
    steps = list(zip(sizes, sizes[1:], strict=False))
    marginal = [(build[b] - build[a]) / (runs[b] - runs[a]) for a, b in steps]
    if marginal:
        parts = ", ".join(f"{a:,} to {b:,}: {cost * 1000:.3f} ms" for (a, b), cost in zip(steps, marginal, strict=True))
        spread = max(marginal) / min(marginal) if min(marginal) > 0 else float("inf")
        text += (f"; the marginal cost per added run, {parts} (largest / smallest {spread:.2f}x; "
                 f"target flat, within {FLAT_WITHIN}x: {_check(spread <= FLAT_WITHIN)})")
    text += (f"; warm filter + latest {_ms(measured[first]['warm_latest'])} ms at {first:,}, "
             f"{_ms(measured[last]['warm_latest'])} ms at {last:,}.")
    if left_out:
        text += (f" Left out: {', '.join(f'{size:,}' for size in left_out)} runs, whose runs have "
                 f"{scores_per_run(left_out[0]):,} scores, not {scores_per_run(first):,}.")
    return text


#: The size whose rows carry the targets of issue 19 (a million runs).
MILLION = 1_000_000


def _mb(kib: float) -> str:
    return f"{kib / 1024:.0f} MB"


def rows_for(size: int, r: dict[str, Any], peer: dict[str, Any] | None) -> list[tuple[str, ...]]:
    """The table rows of one corpus size: (size, what, ms, ratio, target).

    A row not timed at this size (NaN, see :func:`measure`) shows "–"; the targets
    are checked at 10,000, 100,000 and :data:`MILLION` runs.
    """
    n = r["runs"]
    million = size == MILLION
    per_run_build = r["build"] / n
    legacy_fresh = r["legacy_fresh"]
    rows = [
        ("legacy scan: load_all + filter_by_exec_args + latest", _ms(r["legacy"]), "1x (baseline)", ""),
        ("… the same legacy scan as a whole process (`python script.py`)", _ms(legacy_fresh),
         "1x (baseline of the fresh-process row)" if legacy_fresh == legacy_fresh else "not timed at this size", ""),
        ("bare stat loop (dir + 3 files per run)", _ms(r["stat_floor"]), "1x (floor)", ""),
        ("bare read-and-parse loop, one core", _ms(r["parse_floor"]),
         f"{n / r['parse_floor']:.0f} runs/s (floor)", ""),
    ]
    build_target = ""
    if size == 10_000:
        build_target = "≥ 4,000 runs/s: " + _check(n / r["build"] >= 4000)
    elif million:
        build_target = "≥ 3,500 runs/s: " + _check(n / r["build"] >= 3500)
    rows.append(("pyhermes first build (fresh process)", _ms(r["build"]),
                 f"{n / r['build']:.0f} runs/s, {r['build'] / r['parse_floor']:.2f}x the read-and-parse floor",
                 build_target))
    rss = r["build_rss_kib"] / 1024
    rows.append(("… peak RSS of the build: writer / one worker", f"{rss:.0f} MB / {_mb(r['build_worker_rss_kib'])}",
                 "", "≤ 400 MB: " + _check(rss <= 400) if size in (100_000, MILLION) else ""))
    rows.append(("pyhermes no-change load_all + filter + latest (warm process)", _ms(r["quick"]),
                 f"{r['legacy'] / r['quick']:.0f}x faster than legacy", ""))
    full_ratio = r["full"] / r["stat_floor"]
    rows.append(('pyhermes no-change load_all(sync="full")', _ms(r["full"]), f"{full_ratio:.2f}x the stat loop",
                 "≤ 1.5x the stat loop: " + _check(full_ratio <= 1.5) if million else ""))
    if "full_fresh" in r:
        fresh_full_ratio = r["full_fresh"] / r["stat_floor"]
        full_rss = r["full_fresh_rss_kib"] / 1024
        rows.append(("… the same, the first call in a fresh process (`python -c`; timed from the call: imports it "
                     "makes, SQLAlchemy's, included)",
                     _ms(r["full_fresh"]), f"{fresh_full_ratio:.2f}x the stat loop",
                     "≤ 1.5x the stat loop: " + _check(fresh_full_ratio <= 1.5) if million else ""))
        workers = f" / {_mb(r['full_fresh_worker_rss_kib'])}" if r["full_fresh_worker_rss_kib"] else ""
        rows.append(("… peak RSS of that process" + (" / one worker" if workers else ""),
                     f"{full_rss:.0f} MB{workers}", "", "≤ 300 MB: " + _check(full_rss <= 300) if million else ""))
    if legacy_fresh == legacy_fresh:
        fresh_ratio = legacy_fresh / r["fresh"]
        fresh_text = f"{fresh_ratio:.1f}x faster than legacy"
    else:  # the whole-process legacy scan was not timed: against the in-process one
        fresh_ratio = r["legacy"] / r["fresh"]
        fresh_text = f"{fresh_ratio:.1f}x faster than the legacy scan in process"
    target = {10_000: "≥ 2x legacy: ", 100_000: "≥ 20x legacy: "}.get(size, "")
    if target:
        target += _check(fresh_ratio >= (2 if size == 10_000 else 20))
    elif million:
        target = "≤ 1 s: " + _check(r["fresh"] <= 1)
    if peer and "fresh" in peer:
        mlflow_ratio = peer["fresh"] / r["fresh"]
        fresh_text += f"; {mlflow_ratio:.1f}x faster than MLflow ({_ms(peer['fresh'])} ms)"
        if size == 10_000:
            target += "; ≥ 8x MLflow: " + _check(mlflow_ratio >= 8)
    rows.append(("fresh process (whole): import, load_all, filter, latest", _ms(r["fresh"]), fresh_text, target))
    if "fresh_rss_kib" in r:
        fresh_rss = r["fresh_rss_kib"] / 1024
        rows.append(("… peak RSS of the fresh process", f"{fresh_rss:.0f} MB", "",
                     "≤ 300 MB: " + _check(fresh_rss <= 300) if million else ""))
    if "fresh_first" in r:
        rows.append(("… the first such process after a sync that wrote (checks the index file)",
                     _ms(r["fresh_first"]), "", ""))
    rows.append(("`hermes ls --where ... --limit 10` (whole process)", _ms(r["ls"]), "",
                 "≤ 400 ms: " + _check(r["ls"] <= 0.4) if size == 100_000 else ""))
    if "ls_sorted" in r:
        rows.append((f"`hermes ls --where ... --sort={LS_SORT} --limit 10` (whole process)", _ms(r["ls_sorted"]),
                     "", "≤ 300 ms: " + _check(r["ls_sorted"] <= 0.3) if million else ""))
    above = r["import"] - r["python"]
    rows.append(("`import pyhermes` above `python -c pass`", _ms(above), "", "≤ 30 ms: " + _check(above <= 0.03)))
    for key, what, _ in SERVE_PAGES:
        if key not in r:
            continue
        syncing = r[f"{key}_syncing"]
        text = (f"then {_ms(r[f'{key}_cached'])} ms (same page again); server RSS after it "
                f"{_mb(r[f'{key}_rss_kib'])}; accepting {r[f'{key}_start']:.2f} s after start"
                + (f"; its sync at start still running ({syncing}x)" if syncing else ""))
        rows.append((f"`hermes serve`: first request after start, {what} ({r[f'{key}_total']:,} runs, "
                     f"page {r[f'{key}_shown']:,} shown)",
                     _ms(r[key]), text, "≤ 300 ms: " + _check(r[key] <= 0.3) if million else ""))

    def versus(key: str, what: str, peer_key: str, goal: float | None) -> None:
        text, target = "", ""
        if peer and peer_key in peer and r[key] == r[key]:
            ratio = peer[peer_key] / r[key]
            text = f"{ratio:.0f}x faster than MLflow ({_ms(peer[peer_key])} ms)"
            if goal is not None and size == 10_000:
                target = f"≥ {goal:.0f}x MLflow: " + _check(ratio >= goal)
        rows.append((what, _ms(r[key]), text, target))

    warm = "warm" if r.get("warm_read", True) else "warm (list not read whole)"
    versus("warm_latest", f"{warm}: filter + newest 1", "latest", 10)
    versus("matches", f"{warm}: all {r['matches_count']:,} matches as a list", "matches", 30)
    versus("typed", f"{warm}: typed query `{TYPED}`", "typed", None)
    versus("top10", f"{warm}: top-10 by final mean", "top10", None)
    versus("frame", f"{warm}: to_frame() of all runs", "frame", 30)
    changed_cost = r["changed_runs"] * per_run_build
    limit = r["full"] + 2 * changed_cost
    rows.append((f"full sync after {r['changed_runs']:,} runs (1%) changed", _ms(r["changed_sync"]),
                 f"no-change {_ms(r['full'])} ms + their build cost {_ms(changed_cost)} ms",
                 "≤ no-change + 2x their build: " + _check(r["changed_sync"] <= limit) if size == 100_000 else ""))
    if peer and "log_per_run" in peer:
        rows.append(("MLflow: logging one run (params, 1,000 score steps, final_mean)",
                     _ms(peer["log_per_run"]), f"pyhermes builds one in {_ms(per_run_build)} ms", ""))
    return [(f"{size:,}", *row) for row in rows]


def plot(path: Path, measured: dict[int, dict[str, Any]]) -> None:
    """Draw the PNG of ``--plot``: per-run cost (µs per run) and question times (ms) against N, log-log.

    Only the sizes in ``measured`` are drawn; a row not timed at a size (NaN) leaves a gap.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    sizes = sorted(measured)
    figure, axes = plt.subplots(1, 2, figsize=(13, 6.5))
    xlabel = "runs in the corpus (N)"
    if any(size >= SHORT_RUNS_FROM for size in sizes):
        xlabel = f"runs in the corpus (N; runs of 100 scores from {SHORT_RUNS_FROM:,} on, else 1,000)"
    for key, label in (("build", "first build"), ("legacy", "legacy scan"), ("stat_floor", "bare stat loop (floor)"),
                       ("parse_floor", "read-and-parse floor (1 core)"), ("full", 'no-change load_all(sync="full")'),
                       ("fresh", "fresh process (whole)")):
        values = [measured[s].get(key, float("nan")) / measured[s]["runs"] * 1e6 for s in sizes]
        axes[0].plot(sizes, values, "o-", label=label)
    axes[0].set(xscale="log", yscale="log", xlabel=xlabel, ylabel="µs per run",
                title="per-run cost against N")
    for key, label in (("fresh", "fresh process (whole)"), ("ls_sorted", "hermes ls --where --sort --limit 10"),
                       ("serve_plain", "serve: first request, /runs"),
                       ("serve_filtered", "serve: first request, filtered"),
                       ("serve_page", "serve: first request, page 10,000"),
                       ("warm_latest", "warm filter + latest"), ("top10", "warm top-10")):
        values = [measured[s].get(key, float("nan")) * 1000 for s in sizes]
        axes[1].plot(sizes, values, "o-", label=label)
    axes[1].axhline(300, color="grey", linestyle=":", linewidth=1, label="300 ms (the targets at 1,000,000)")
    axes[1].set(xscale="log", yscale="log", xlabel=xlabel, ylabel="ms",
                title="questions (whole processes, first requests, warm)")
    runs = FuncFormatter(lambda value, _: f"{value:,.0f}")
    for axis in axes:
        axis.set_xticks(sizes)
        axis.xaxis.set_major_formatter(runs)
        axis.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
        axis.grid(True, which="major", alpha=0.3)
        axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def write_table(path: Path, table: str, begin: str = BEGIN, end: str = END, heading: str | None = None) -> None:
    """Put ``table`` between the markers ``begin`` and ``end`` of the Markdown file ``path``.

    Only the text between the markers is replaced; the rest of the file is kept.
    Without the markers, the block (under ``heading``, when given) is added at the end.
    """
    text = path.read_text() if path.exists() else ""
    block = f"{begin}\n{table}\n{end}"
    if begin in text and end in text[text.index(begin) :]:
        start = text.index(begin)
        stop = text.index(end, start) + len(end)
        text = text[:start] + block + text[stop:]
    else:
        if heading is not None:
            block = f"{heading}\n\n{block}"
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def corpora_text(sizes: list[int]) -> str:
    """The corpora measured, by scores per run: "1,000 and 10,000 runs of 1,000 scores, 1,000,000 runs of 100"."""
    groups: dict[int, list[int]] = {}
    for size in sizes:
        groups.setdefault(scores_per_run(size), []).append(size)
    parts = []
    for scores, group in groups.items():
        names = [f"{size:,}" for size in group]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        parts.append(f"{listed} runs of {scores:,} scores each")
    return ", ".join(parts)


def short_text(sizes: list[int]) -> str:
    """What is timed fewer times at the sizes from :data:`SHORT_RUNS_FROM` on ("" when none is measured)."""
    if not any(size >= SHORT_RUNS_FROM for size in sizes):
        return ""
    return (f"; from {SHORT_RUNS_FROM:,} runs on, the legacy scan, the read-and-parse floor and the first build "
            "once, the legacy scan as a whole process not at all, the warm rows on a list not read whole "
            "and no warm to_frame() (each would build a million objects)")


def precompile() -> None:
    """Write the bytecode of pyhermes and of this script, as an installed wheel has it.

    The fresh processes timed here would otherwise compile every module they
    import from source (~85 ms) when bytecode is not written
    (``PYTHONDONTWRITEBYTECODE``, an editable install); MLflow's virtualenv has
    its bytecode from pip.
    """
    import compileall

    import pyhermes

    compileall.compile_dir(str(Path(pyhermes.__file__).parent), quiet=1)
    compileall.compile_file(str(Path(__file__)), quiet=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000", help="corpus sizes, comma-separated")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--build-repeat", type=int, default=1, help="rounds of the first build")
    parser.add_argument("--peers", default="", help="peers to compare with: mlflow")
    parser.add_argument("--mlflow-max-log", type=int, default=10_000,
                        help="log a corpus into MLflow only up to this size (it is cached)")
    parser.add_argument("--cache", type=Path, help="where corpora and MLflow stores are kept")
    parser.add_argument("--quick", action="store_true", help="1,000 runs, no peers, 2 rounds (CI)")
    parser.add_argument("--write", type=Path, help="write the table into this Markdown file")
    parser.add_argument("--plot", type=Path, help="write the per-run cost plot (PNG) here")
    parser.add_argument("--live", action="store_true",
                        help="time a fresh process, hermes ls and the runs page of hermes serve, quiet and "
                        "during a live lab (scripts/live_lab.py); --write replaces its '## Live lab' section")
    parser.add_argument("--backend", default="sqlite",
                        help="with --live: the index backends, comma-separated: sqlite, postgresql (a throwaway "
                        "server started by the benchmark); default sqlite")
    args = parser.parse_args(argv)
    backends = [name.strip() for name in args.backend.split(",") if name.strip()]
    unknown = [name for name in backends if name not in BACKENDS]
    if unknown or not backends:
        parser.error(f"--backend: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(BACKENDS)}")
    backends = [name for name in BACKENDS if name in backends]  # each once, in the order of BACKENDS
    if backends != ["sqlite"] and not args.live:
        parser.error("--backend is for --live (the main benchmark measures SQLite)")
    sizes = [1000] if args.quick else [int(size) for size in args.sizes.split(",")]
    repeat = 2 if args.quick else args.repeat
    peers = [] if args.quick else [peer for peer in args.peers.split(",") if peer]
    if args.live and (peers or args.plot):
        parser.error("--live measures no peers and draws no plot")
    cache = cache_dir(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    precompile()
    if args.live:
        return main_live(sizes, repeat, cache, args.write, backends)

    measured: dict[int, dict[str, Any]] = {}
    peer_results: dict[int, dict[str, Any]] = {}
    for size in sizes:
        folder = corpus(cache, size)
        print(f"measuring {size} runs ...", file=sys.stderr)
        measured[size] = measure(folder, repeat, args.build_repeat)
        if "mlflow" in peers:
            store = mlflow_store(cache, folder, size, args.mlflow_max_log)
            if store is not None:
                db, per_run = store
                peer = {"log_per_run": per_run}
                for what in ("latest", "matches", "typed", "top10", "frame"):
                    peer[what] = mlflow_query(cache, db, what, repeat)["seconds"]
                fresh = [mlflow_query(cache, db, "fresh", repeat) for _ in range(repeat)]
                peer["fresh"] = statistics.median(item["seconds"] for item in fresh)
                assert fresh[0]["answer"] == Path(measured[size]["fresh_answer"]).name, "MLflow disagrees"
                peer_results[size] = peer
    command = "python scripts/bench.py" + (" --quick" if args.quick else f" --sizes {','.join(map(str, sizes))}")
    command += f" --repeat {repeat}" if not args.quick else ""
    command += f" --peers {','.join(peers)}" if peers else ""
    if peers and args.mlflow_max_log != parser.get_default("mlflow_max_log"):
        command += f" --mlflow-max-log {args.mlflow_max_log}"
    command += f" --plot {args.plot}" if args.plot else ""
    lines = [
        f"Corpora: {corpora_text(sizes)}; medians of {repeat} ({args.build_repeat} for the build)"
        f"{short_text(sizes)}; {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores "
        f"(shared); command: `{command} --write BENCHMARKS.md`",
        "",
        "| runs | what | ms | ratio (same run) | target |",
        "| ---: | --- | ---: | --- | --- |",
    ]
    for size in sizes:
        lines.extend("| " + " | ".join(row) + " |" for row in rows_for(size, measured[size], peer_results.get(size)))
    missing = [size for size in sizes if "mlflow" in peers and size not in peer_results]
    if missing:
        lines += ["", "MLflow not measured at " + ", ".join(f"{s:,}" for s in missing)
                  + f" runs: logging that many runs takes longer than this benchmark may (--mlflow-max-log {args.mlflow_max_log})."]
    growth = growth_text(sizes, measured) if len(sizes) > 1 else ""
    if growth:
        lines += ["", growth]
    table = "\n".join(lines)
    print(table)
    if args.write:
        write_table(args.write, table)
    if args.plot:
        plot(args.plot, measured)
    (cache / "last-results.json").write_text(json.dumps({"pyhermes": measured, "mlflow": peer_results}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
