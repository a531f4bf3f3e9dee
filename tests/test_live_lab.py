"""The index under a live lab, and the workers of a first build killed with their parent.

``test_a_live_lab_keeps_the_index_sound`` runs on a SQLite index and on a real
PostgreSQL database (it asks for the ``backend`` fixture, tests/conftest.py):
while ``scripts/live_lab.py`` keeps writers creating runs and unfinished runs
growing, fresh processes load and query the tree, ``hermes ls`` lists it,
``hermes serve`` answers over HTTP and ``hermes-reindex`` syncs it; then nothing
may have printed a warning or a traceback (nor opened an index file other than
through SQLite, when ``tests/audit_site`` is there to tell), the SQLite file must be sound and
never set aside, every run written must be in the index without a sync, and the
index must equal the disk.

The server is started with the lab and then again every few seconds, with a
moment without one in between: a server keeps its connection to the index open
for its whole life, and a fault that shows only while no long-lived process
holds the file (a process whose POSIX locks on a SQLite file were dropped, say,
by a stray ``close()``) would never show with one always up.

``test_workers_of_a_killed_first_build_die_with_it`` kills a first build that
reads in worker processes and looks for its workers afterwards.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from legacy import make_corpus

from pyhermes import Experiment
from pyhermes.index.store.engine import dispose_engines

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HERMES = str(BIN / "hermes")
HERMES_REINDEX = str(BIN / "hermes-reindex")

#: Put first on a child's PYTHONPATH, its ``sitecustomize`` makes the child print a line
#: ``IndexFileOpened: ...`` at exit for each time project code opened an index file itself.
AUDIT_SITE = Path(__file__).resolve().parent / "audit_site"

#: ``hermes serve ...`` run by the ``hermes`` script itself, with SIGINT handled even when this
#: process was started with it ignored (a background job of a shell without job control): it
#: stops on SIGINT like on Ctrl-C, and its exit handlers (the audit's report) run.
SERVE_WRAPPER = """\
import runpy, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
#: Exit statuses of a ``hermes serve`` stopped by SIGINT (``EXIT_INTERRUPTED``), or that ended.
SERVE_STOPPED = (0, 130)

#: Runs of the settled tree the lab works on.
CORPUS_RUNS = 300
WHERE = "--doubledqn and -lr < 0.01"
SORT = "-final_mean"
#: Seconds between two ``hermes-reindex`` runs during the lab.
REINDEX_EVERY = 3.0
#: Seconds each ``hermes serve`` lives, and seconds without one before the next starts.
SERVE_UP, SERVE_DOWN = 5.0, 2.0
#: Seconds a ``hermes serve`` may take to print its URL.
SERVE_START = 60.0

#: A fresh process: load the tree, filter, rank, take the newest; print the answers as JSON.
FRESH_QUERY = """\
import json, sys, warnings
warnings.simplefilter("always")
from pyhermes import Experiment
runs = Experiment.load_all(sys.argv[1], recursive=True)
chosen = runs.where(sys.argv[2])
best = chosen.sort_by_score("final_mean")[:10]
newest = runs.filter_by_exec_args("--doubledqn").latest()
print(json.dumps({"runs": len(runs), "matched": len(chosen),
                  "best": [run.identifier for run in best], "newest": newest.identifier}))
"""

# A werkzeug access-log line of ``hermes serve`` (on stderr): only a 5xx answer is a problem.
_ACCESS_LOG = re.compile(r'^\S+ - - \[[^\]]*\] "[^"]*" (\d{3}) ')


def _live_lab_module() -> ModuleType:
    """``scripts/live_lab.py`` as a module (``scripts/`` is not a package)."""
    spec = importlib.util.spec_from_file_location("live_lab", REPO / "scripts" / "live_lab.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _settle(root: Path, seconds_ago: float = 3600.0) -> None:
    """Date every file and folder below ``root`` ``seconds_ago`` back: a settled tree."""
    moment = time.time() - seconds_ago
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.utime(os.path.join(folder, name), (moment, moment), follow_symlinks=False)
    os.utime(root, (moment, moment))


def _outcome(what: str, done: subprocess.CompletedProcess[str]) -> str | None:
    """A failure text when ``done`` did not exit 0 or printed anything on stderr, else None."""
    if done.returncode == 0 and not done.stderr.strip():
        return None
    return f"{what} exited {done.returncode}; stderr:\n{done.stderr}\nstdout:\n{done.stdout[-2000:]}"


def _shortened(text: str, head: int = 700, tail: int = 1300) -> str:
    """``text``, or its start and end when it is long (a traceback ends with its exception)."""
    if len(text) <= head + tail:
        return text
    return f"{text[:head]}\n[... {len(text) - head - tail} characters ...]\n{text[-tail:]}"


def _serve_problems(stderr: str) -> list[str]:
    """The lines of ``hermes serve``'s stderr that are not access logs of answers below 500
    (nor the ``hermes: error: interrupted`` of its stop)."""
    problems = []
    for line in stderr.splitlines():
        logged = _ACCESS_LOG.match(line)
        if line.strip() and line != "hermes: error: interrupted" and (
            logged is None or int(logged.group(1)) >= 500
        ):
            problems.append(line)
    return problems


def _children_env(backend: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment of every child: ``HERMES_INDEX`` on PostgreSQL, and the index-file audit."""
    env = dict(os.environ)
    if backend == "postgresql":
        env["HERMES_INDEX"] = request.node.pg_index  # every child uses the same database
    if AUDIT_SITE.is_dir():
        env["PYTHONPATH"] = os.pathsep.join(
            part for part in (str(AUDIT_SITE), env.get("PYTHONPATH", "")) if part
        )
    return env


class _Serve:
    """``hermes serve ROOT --port 0`` on 127.0.0.1, started again and again during the lab:
    each one lives :data:`SERVE_UP` seconds (from its start), then none for :data:`SERVE_DOWN`.

    A server holds its connection to the index for its whole life; with one always
    up, a fault that needs a moment without any long-lived connection would never
    show. Each generation's stdout and stderr go to files in ``folder``.
    """

    def __init__(self, root: Path, env: dict[str, str], folder: Path) -> None:
        self.root, self.env, self.folder = root, {**env, "PYTHONUNBUFFERED": "1"}, folder
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.generation = 0
        self.changed = -SERVE_DOWN  # the first one starts at once
        self.answers = 0
        self.problems: list[str] = []

    def _files(self, generation: int) -> tuple[Path, Path]:
        return self.folder / f"serve-{generation}.out", self.folder / f"serve-{generation}.err"

    def tend(self) -> None:
        """Start a server, learn its port, or stop it, as its time says."""
        now = time.monotonic()
        if self.process is None:
            if now - self.changed >= SERVE_DOWN:
                self.generation += 1
                out, err = self._files(self.generation)
                with open(out, "wb") as stdout, open(err, "wb") as stderr:
                    self.process = subprocess.Popen(
                        [sys.executable, "-c", SERVE_WRAPPER, HERMES, "serve", str(self.root), "--port", "0"],
                        stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=self.env)
                self.changed = now
        elif self.port is None:
            if not self._learn_port() and (self.process.poll() is not None
                                           or now - self.changed > SERVE_START):
                self.stop()
        elif now - self.changed >= SERVE_UP:
            self.stop()

    def _learn_port(self, wait: float = 0.0) -> bool:
        """Read the port from the server's first line, waiting up to ``wait`` s (while it runs)
        for it; return whether it is known."""
        assert self.process is not None
        until = time.monotonic() + wait
        while True:
            found = re.search(r"http://127\.0\.0\.1:(\d+)/runs", self._files(self.generation)[0].read_text())
            if found:
                self.port = int(found.group(1))
                return True
            if self.process.poll() is not None or time.monotonic() >= until:
                return False
            time.sleep(0.05)

    def poll(self, round_: int) -> None:
        """Ask the running server for the ten best matching runs (every 4th round, to sync first)."""
        if self.port is None:
            return
        problem = _poll_serve(self.port, round_)
        if problem is None:
            self.answers += 1
        else:
            self.problems.append(f"hermes serve #{self.generation}: {problem}")

    def stop(self) -> None:
        """Stop the running server, if any, once it serves (SIGINT, as Ctrl-C; SIGKILL after
        30 s), and collect what it printed on stderr."""
        if self.process is None:
            return
        if self.port is None:  # a server still starting is let start first
            self._learn_port(wait=max(0.0, self.changed + SERVE_START - time.monotonic()))
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        code = self.process.returncode
        if code not in SERVE_STOPPED:
            self.problems.append(f"hermes serve #{self.generation} exited {code}")
        if self.port is None:
            self.problems.append(f"hermes serve #{self.generation} never printed its URL: "
                                 + self._files(self.generation)[0].read_text())
        err = self._files(self.generation)[1].read_text(errors="backslashreplace")
        self.problems += [f"hermes serve #{self.generation}: {line}" for line in _serve_problems(err)]
        self.process, self.port, self.changed = None, None, time.monotonic()


def _poll_serve(port: int, round_: int) -> str | None:
    """Ask ``hermes serve`` for the ten best matching runs (and, every 4th round, to refresh);
    return a failure text, or None when it answered well."""
    base = f"http://127.0.0.1:{port}"
    query = urllib.parse.urlencode({"where": WHERE, "sort": SORT, "per_page": 10})
    try:
        if round_ % 4 == 0:
            request = urllib.request.Request(f"{base}/api/refresh", data=b"", method="POST")
            with urllib.request.urlopen(request, timeout=60) as answer:
                json.loads(answer.read())
        with urllib.request.urlopen(f"{base}/api/runs?{query}", timeout=60) as answer:
            page = json.loads(answer.read())
        with urllib.request.urlopen(f"{base}/api/status", timeout=60) as answer:
            status = json.loads(answer.read())
    except Exception as exc:  # noqa: BLE001 - reported by the test
        return f"{type(exc).__name__}: {exc}"
    if not page.get("total") or not 0 < len(page["runs"]) <= 10:
        return f"a page without runs: {str(page)[:500]}"
    if status.get("error"):
        return f"its sync failed: {status['error']}"
    return None


class _Reindex:
    """``hermes-reindex ROOT --json`` in the background, started again every :data:`REINDEX_EVERY` s."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env
        self.process: subprocess.Popen[str] | None = None
        self.started = -REINDEX_EVERY
        self.runs = 0
        self.problems: list[str] = []

    def tend(self, *, start: bool = True) -> None:
        """Collect a finished run of it; start the next one when it is time (and ``start``)."""
        if self.process is not None and self.process.poll() is not None:
            out, err = self.process.communicate()
            done = subprocess.CompletedProcess(self.process.args, self.process.returncode, out, err)
            self.problems += [problem for problem in [_outcome("hermes-reindex", done)] if problem]
            self.process = None
        if start and self.process is None and time.monotonic() - self.started >= REINDEX_EVERY:
            self.process = subprocess.Popen([HERMES_REINDEX, str(self.root), "--json"], stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True, env=self.env)
            self.started = time.monotonic()
            self.runs += 1

    def finish(self) -> None:
        """Wait (at most 120 s, then kill it) for the running one, and collect it."""
        if self.process is not None:
            try:
                self.process.wait(120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                self.problems.append("hermes-reindex ran over 120 s; killed")
        self.tend(start=False)


def _index_view(root: Path, **where: Any) -> list[tuple[str, tuple[str, ...], bool]]:
    """(path below ``root``, sorted exec args, finished) of each run ``load_all(root, ...)`` gives."""
    runs = Experiment.load_all(root, recursive=True, **where)
    return sorted(
        (run.path_to_experiment.resolve().relative_to(root.resolve()).as_posix(),
         tuple(sorted(run.exec_args)), bool(run.is_finished))
        for run in runs
    )


@pytest.mark.parametrize(
    "seconds", [pytest.param(15.0, id="15s"), pytest.param(60.0, id="60s", marks=pytest.mark.slow)]
)
def test_a_live_lab_keeps_the_index_sound(backend: str, tmp_path: Path, request: pytest.FixtureRequest,
                                          seconds: float) -> None:
    """A settled tree of 300 runs, indexed once, then ``seconds`` of a live lab (4 writers, 2
    growing runs) with fresh loads, ``hermes ls``, ``hermes serve`` and ``hermes-reindex``."""
    live_lab = _live_lab_module()
    root = tmp_path / "lab"
    make_corpus(root, CORPUS_RUNS, scores_per_run=100)
    _settle(root)
    env = _children_env(backend, request)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(Experiment.load_all(root, recursive=True)) == CORPUS_RUNS  # built once
    dispose_engines()
    assert [str(warning.message) for warning in caught] == []

    failures: list[str] = []
    counts = {"fresh": 0, "ls": 0}
    serve = _Serve(root, env, tmp_path)
    reindex = _Reindex(root, env)
    try:
        serve.tend()  # the first server starts with the lab
        with live_lab.LiveLab(root, writers=4, appenders=2, env=env) as lab:
            deadline = time.monotonic() + seconds
            round_ = 0
            while time.monotonic() < deadline:
                reindex.tend()
                serve.tend()
                if round_ % 2 == 0:
                    done = subprocess.run([sys.executable, "-c", FRESH_QUERY, str(root), WHERE],
                                          capture_output=True, text=True, env=env, timeout=120)
                    failures.append(_outcome("a fresh load_all + where + sort_by_score + latest", done) or "")
                    if done.returncode == 0:
                        answer = json.loads(done.stdout)
                        if answer["runs"] < CORPUS_RUNS or not answer["best"]:
                            failures.append(f"a fresh process saw too few runs: {answer}")
                    counts["fresh"] += 1
                else:
                    done = subprocess.run([HERMES, "ls", str(root), f"--where={WHERE}", f"--sort={SORT}",
                                           "--limit", "10", "--format", "json"],
                                          capture_output=True, text=True, env=env, timeout=120)
                    failures.append(_outcome("hermes ls", done) or "")
                    if done.returncode == 0 and not 0 < len(json.loads(done.stdout)) <= 10:
                        failures.append(f"hermes ls listed no run: {done.stdout[:500]}")
                    counts["ls"] += 1
                serve.tend()
                serve.poll(round_)
                round_ += 1
            reindex.finish()
    finally:
        serve.stop()
        reindex.finish()
    failures = [failure for failure in failures if failure]
    created = lab.created()
    problems = lab.problems() + serve.problems + reindex.problems + failures
    broken: list[str] = []
    checked = ["ok"]
    if backend == "sqlite":  # the file was never set aside, and is sound
        index_file = root / ".hermes" / "index.sqlite"
        broken = sorted(path.name for path in index_file.parent.glob("*.broken-*"))
        connection = sqlite3.connect(f"file:{index_file}?mode=ro", uri=True)
        try:
            checked = [row[0] for row in connection.execute("PRAGMA integrity_check")]
        finally:
            connection.close()
    report = (
        f"{len(created)} runs created; {counts}, {reindex.runs} hermes-reindex, {serve.generation} "
        f"hermes serve answering {serve.answers} polls; exit codes {lab.exit_codes()}\n"
        f"set aside: {broken}\nintegrity_check: {checked[:10] if backend == 'sqlite' else 'not run'}\n"
        f"{len(problems)} problems:\n"
        + "\n".join(_shortened(problem) for problem in problems[:30])
    )
    print(report)  # shown by pytest -rP: what the lab did
    sound = not problems and not broken and checked == ["ok"]
    assert sound, report
    assert len(created) >= 4 * 5 and len(lab.appending()) == 2, report
    assert serve.answers >= 2 and reindex.runs >= 2, report

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Written through: every run a writer created is in the index, finished, before any sync.
        indexed = {path: finished for path, _, finished in _index_view(root, sync="none")}
        relative = [path.resolve().relative_to(root.resolve()).as_posix() for path in created]
        missing = [path for path in relative if path not in indexed]
        assert missing == [], f"{len(missing)} of {len(relative)} created runs not in the index: {missing[:10]}"
        assert all(indexed[path] for path in relative), [path for path in relative if not indexed[path]][:10]
        # After one more sync, the index holds exactly the disk: paths, exec args, finished state.
        Experiment.load_all(root, recursive=True)
        in_index = _index_view(root, sync="none")
        on_disk = _index_view(root, index=False)
    dispose_engines()
    assert [str(warning.message) for warning in caught] == []
    assert len(on_disk) == CORPUS_RUNS + len(created) + 2
    assert in_index == on_disk


def test_live_lab_reports_a_run_written_but_not_indexed(tmp_path: Path) -> None:
    """LiveLab.problems() gives the writers' warnings: here, an index that cannot be opened."""
    live_lab = _live_lab_module()
    unreachable = {"HERMES_INDEX": str(tmp_path / "not-a-folder" / "index.sqlite")}
    (tmp_path / "not-a-folder").write_text("a file where the index folder should be")
    with live_lab.LiveLab(tmp_path / "lab", writers=1, appenders=1, interval=0.1, env=unreachable) as lab:
        time.sleep(0.3)
    assert lab.exit_codes() == {"writer-0": 0, "appender": 0}
    assert len(lab.created()) >= 1 and len(lab.appending()) == 1
    assert all(path.is_dir() for path in lab.created() + lab.appending())
    assert any("written but not indexed" in problem for problem in lab.problems()), lab.problems()
    assert all(problem.startswith(("writer-0: ", "appender: ")) for problem in lab.problems())


# --------------------------------------------------------------------------- a killed first build

#: Runs of the tree: enough that a first build reads them in worker processes for a while.
BUILD_RUNS = 5000
KILL_ROUNDS = 10


def _session_processes(session: int) -> dict[int, str]:
    """The live (not zombie) processes whose session id is ``session``: pid -> command line."""
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read().decode(errors="replace")
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if fields[0] != "Z" and int(fields[3]) == session:
            found[int(entry)] = command
    return found


def _index_descriptors(pid: int, index_dir: Path) -> list[str]:
    """The descriptors of ``pid`` open on a file of the index (``index.sqlite*`` in ``index_dir``)."""
    prefix = str(index_dir / "index.sqlite")
    held = []
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith(prefix):
                held.append(f"fd {fd} -> {target}")
    except OSError:  # gone meanwhile
        pass
    return held


def _kill_all(pids: list[int], wait: float = 10.0) -> None:
    """SIGKILL each of ``pids`` (processes this test started, or their descendants); wait until gone."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """True while ``pid`` is a process that has not exited (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode(errors="replace")
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


@pytest.mark.sqlite_only  # the SQLite file's descriptors
def test_workers_of_a_killed_first_build_die_with_it(tmp_path: Path) -> None:
    """10 first builds of 5,000 runs (2 workers), each SIGKILLed 0.2-1.5 s in: 5 s later no
    process of its session is alive, and no worker ever held a descriptor of the index."""
    root = tmp_path / "tree"
    make_corpus(root, BUILD_RUNS, scores_per_run=10)
    index_dir = root / ".hermes"
    env = {**os.environ, "HERMES_BUILD_WORKERS": "2"}
    chooser = random.Random(11)
    findings: list[str] = []
    rounds_with_workers = 0
    leftovers: list[int] = []
    try:
        for round_ in range(KILL_ROUNDS):
            assert not leftovers
            shutil.rmtree(index_dir, ignore_errors=True)  # a first build each time; nobody is alive
            kill_after = chooser.uniform(0.2, 1.5)
            process = subprocess.Popen([HERMES_REINDEX, str(root), "--json"], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, env=env, start_new_session=True)
            started = time.monotonic()
            workers_seen: set[int] = set()
            while time.monotonic() - started < kill_after and process.poll() is None:
                for pid in _session_processes(process.pid):
                    if pid != process.pid:
                        workers_seen.add(pid)
                        held = _index_descriptors(pid, index_dir)
                        if held:
                            findings.append(f"round {round_}: worker {pid}, while the build runs, holds "
                                            f"the index: {held}")
                time.sleep(0.01)
            workers_at_kill = [pid for pid in _session_processes(process.pid) if pid != process.pid]
            process.send_signal(signal.SIGKILL)
            process.wait()
            if workers_at_kill:
                rounds_with_workers += 1
            deadline = time.monotonic() + 5.0
            survivors = _session_processes(process.pid)
            while survivors and time.monotonic() < deadline:
                time.sleep(0.1)
                survivors = _session_processes(process.pid)
            for pid, command in survivors.items():
                held = _index_descriptors(pid, index_dir)
                findings.append(
                    f"round {round_} (killed {kill_after:.2f} s in, workers then {workers_at_kill}): "
                    f"process {pid} ({command}) still alive 5 s after its build was killed"
                    + (f", holding the index: {held}" if held else "")
                )
            leftovers = list(survivors)
            _kill_all(leftovers)
            assert not [pid for pid in leftovers if _alive(pid)], "a survivor could not be stopped"
            leftovers = []
    finally:
        _kill_all(leftovers)
    assert not findings, f"{len(findings)} findings:\n" + "\n".join(findings)
    # The kills must have landed while workers read, or this test proves nothing.
    assert rounds_with_workers >= KILL_ROUNDS // 2, f"only {rounds_with_workers} kills landed during the read"
