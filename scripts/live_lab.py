#!/usr/bin/env python
"""A live lab on a tree of runs: writers creating finished runs, unfinished runs growing.

    python scripts/live_lab.py ROOT --seconds 30 [--writers 4] [--appenders 20]
                               [--interval 0.3] [--scores-per-run 200] [--folder live]

As a module (``scripts/`` is not a package: put it on ``sys.path``)::

    from live_lab import LiveLab

    with LiveLab(root, writers=4, appenders=20) as lab:
        ...                       # the lab is live on `root` meanwhile
    assert lab.problems() == [], lab.problems()
    print(len(lab.created()), "runs created")

While inside the ``with`` block:

* ``writers`` long-lived processes each create a finished run with
  ``pyhermes.Experiment.create`` every ``interval`` seconds, under
  ``ROOT/<folder>/experiments/live/writer<N>/``: exec args like
  ``train --doubledqn -lr 0.001 -gamma 0.99 -seed 7 -writer 2``, ``scores_per_run``
  scores saved with ``append_scores`` (a few lines at a time, as a training loop
  would), the run finished by the context manager. ``Experiment.create`` writes
  each run into the index serving ``ROOT`` when one exists (``HERMES_INDEX`` or a
  ``.hermes/index.sqlite`` at or above it), at creation and at the finish.
* one more long-lived process owns ``appenders`` unfinished runs, created when
  it starts under ``ROOT/<folder>/experiments/live/appending/``, and appends one
  score line to the ``<identifier>.scores`` file of each of them every
  ``interval`` seconds, the way a script run by the original hermes did (open
  in append mode, write a line, close); they are never finished.

Every child runs ``sys.executable`` with ``os.environ`` plus ``env``; it prints
each Python warning as one line on stderr (``warnings.simplefilter("always")``),
prints tracebacks there, and stops cleanly on SIGTERM (or SIGINT) once its
current run or round is written. :meth:`LiveLab.problems` gives everything the
children printed on stderr (warnings such as "written but not indexed",
tracebacks, exceptions) and every child that did not exit with status 0.

The command builds the index of ROOT first (``Experiment.load_all(ROOT,
recursive=True)``) when none serves it yet, so that the writers' runs are written
through, then prints a JSON summary and exits 1 when there were problems.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path
from typing import IO, Any

__all__ = ["LiveLab", "main"]

#: The first argument that makes this file run as one of the lab's processes.
CHILD_FLAG = "--live-lab-child"
#: Seconds :meth:`LiveLab.__enter__` waits for every process to have written once.
START_TIMEOUT = 120.0
#: Seconds between SIGTERM and SIGKILL when the lab stops.
STOP_TIMEOUT = 10.0
#: The script name of every run the lab writes (``experiments/<script>/...``).
SCRIPT = "live"

_LRS = ("0.0001", "0.0005", "0.001", "0.005", "0.01")
_GAMMAS = ("0.9", "0.99", "0.999")
#: Scores appended by one call of ``append_scores`` in a writer.
_SCORES_PER_APPEND = 50


class LiveLab:
    """Context manager: while inside, the lab is live on `root`."""

    def __init__(
        self,
        root: Path,
        *,
        writers: int = 4,
        appenders: int = 20,
        interval: float = 0.3,
        scores_per_run: int = 200,
        env: dict[str, str] | None = None,
        folder: str = "live",
    ) -> None:
        """Describe the lab; nothing starts before ``__enter__``.

        Raises:
            ValueError: a count is negative, ``interval`` not positive, ``scores_per_run``
                below 1, or ``folder`` not one plain folder name.
        """
        if writers < 0 or appenders < 0:
            raise ValueError("writers and appenders must be >= 0")
        if not interval > 0 or scores_per_run < 1:
            raise ValueError("interval must be > 0 and scores_per_run >= 1")
        if not folder or Path(folder).name != folder or folder in (".", ".."):
            raise ValueError(f"folder must be one plain folder name, not {folder!r}")
        self.root = Path(root)
        self.writers, self.appenders = writers, appenders
        self.interval, self.scores_per_run = interval, scores_per_run
        self.env = dict(env or {})
        self.folder = folder
        self._children: list[_Child] = []

    # ------------------------------------------------------------------ the with block

    def __enter__(self) -> LiveLab:
        """Start the processes; return once each has written at least once.

        Returns:
            This lab.

        Raises:
            RuntimeError: a process exited, or did not write within :data:`START_TIMEOUT`
                seconds, before the lab was live (its stderr is in the message); the
                others are stopped first.
        """
        if self._children:
            raise RuntimeError("this LiveLab was already started")
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        base = {"root": str(self.root / self.folder), "interval": self.interval}
        jobs = [
            (f"writer-{number}", {**base, "kind": "writer", "number": number,
                                  "scores_per_run": self.scores_per_run})
            for number in range(self.writers)
        ]
        if self.appenders:
            jobs.append(("appender", {**base, "kind": "appender", "count": self.appenders}))
        try:
            for name, job in jobs:
                self._children.append(_Child.start(name, job, env))
            deadline = time.monotonic() + START_TIMEOUT
            for child in self._children:
                while not child.first_write.wait(0.05):
                    if child.process.poll() is not None or time.monotonic() > deadline:
                        child.finish_reading()
                        what = (f"exited with status {child.process.returncode}"
                                if child.process.poll() is not None
                                else f"wrote nothing in {START_TIMEOUT:.0f} s")
                        raise RuntimeError(
                            f"live lab: {child.name} {what} before the lab was live:\n"
                            + "".join(child.stderr_lines)
                        )
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the processes (SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT` s) and collect
        their output. Returns None: an exception of the block goes on."""
        self._stop()

    def _stop(self) -> None:
        for child in self._children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in self._children:
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.killed = True
                child.process.kill()
                child.process.wait()
            child.finish_reading()

    # ------------------------------------------------------------------ what happened

    def problems(self) -> list[str]:
        """Return what went wrong in the children, complete once the lab has exited.

        Returns:
            One string per problem, each starting with the child's name: every line a
            child printed on stderr (its warnings, one line each, e.g.
            ``writer-1: UserWarning: run ... was written but not indexed: ...``, and
            exceptions), every traceback as one string of its lines, and every
            child that exited with a status other than 0 or had to be killed.
        """
        found: list[str] = []
        for child in self._children:
            found += [f"{child.name}: {text}" for text in _stderr_entries(child.stderr_lines)]
            code = child.process.returncode
            if child.killed:
                found.append(f"{child.name}: did not stop within {STOP_TIMEOUT:.0f} s of SIGTERM; killed")
            elif code not in (None, 0):
                found.append(f"{child.name}: exited with status {code}")
        return found

    def created(self) -> list[Path]:
        """Return the run directories the writers created (finished), in the order they
        reported them; complete once the lab has exited."""
        return [path for child in self._children for path in child.created]

    def appending(self) -> list[Path]:
        """Return the unfinished run directories of the appender (empty without appenders)."""
        return [path for child in self._children for path in child.appending]

    def exit_codes(self) -> dict[str, int | None]:
        """Return each child's exit status by name (``None`` while it runs; ``-9``: killed)."""
        return {child.name: child.process.returncode for child in self._children}


class _Child:
    """One process of the lab, with threads reading its stdout and stderr."""

    def __init__(self, name: str, process: subprocess.Popen[str]) -> None:
        self.name, self.process = name, process
        self.created: list[Path] = []
        self.appending: list[Path] = []
        self.stderr_lines: list[str] = []
        self.first_write = threading.Event()
        self.killed = False
        assert process.stdout is not None and process.stderr is not None
        self._threads = [
            threading.Thread(target=self._read_stdout, args=(process.stdout,), daemon=True),
            threading.Thread(target=self._read_stderr, args=(process.stderr,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @classmethod
    def start(cls, name: str, job: dict[str, Any], env: dict[str, str]) -> _Child:
        """Start the process of ``job``; return it.

        Raises:
            OSError: the interpreter cannot be started.
        """
        command = [sys.executable, str(Path(__file__).resolve()), CHILD_FLAG, json.dumps(job)]
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8", errors="backslashreplace", env=env,
        )
        return cls(name, process)

    def _read_stdout(self, stream: IO[str]) -> None:
        with stream:  # closed at the end of the output
            for line in stream:
                kind, _, rest = line.rstrip("\n").partition(" ")
                if kind == "created":
                    self.created.append(Path(rest))
                elif kind == "appending":
                    self.appending.append(Path(rest))
                if kind in ("created", "appended"):
                    self.first_write.set()

    def _read_stderr(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                self.stderr_lines.append(line)

    def finish_reading(self) -> None:
        """Wait (at most 10 s) for the output of an exited process to be read."""
        for thread in self._threads:
            thread.join(10.0)


def _stderr_entries(lines: list[str]) -> list[str]:
    """The problems in a child's stderr: each traceback whole, every other non-blank line."""
    entries: list[str] = []
    block: list[str] | None = None
    for raw in lines:
        line = raw.rstrip("\n")
        if block is not None:
            block.append(line)
            if line and not line[0].isspace():  # the exception line ends a traceback
                entries.append("\n".join(block))
                block = None
        elif line.startswith("Traceback"):
            block = [line]
        elif line.strip():
            entries.append(line)
    if block is not None:
        entries.append("\n".join(block))
    return entries


# --------------------------------------------------------------------------- the children


class _Stop:
    """Set by SIGTERM or SIGINT: the child stops once its current run or round is written."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True

    def sleep_until(self, moment: float) -> None:
        """Sleep until ``time.monotonic()`` reaches ``moment`` or a stop is requested."""
        while not self.requested:
            left = moment - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))


#: The longest warning line a child prints (characters); the rest is cut.
_WARNING_CHARS = 2000


def _print_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                   file: IO[str] | None = None, line: str | None = None) -> None:
    """Print a warning as one line on stderr (a message of several lines is joined with ``|``)."""
    text = " | ".join(part for part in str(message).splitlines() if part.strip())
    if len(text) > _WARNING_CHARS:
        text = text[:_WARNING_CHARS] + "..."
    print(f"{category.__name__}: {text} [{filename}:{lineno}]", file=sys.stderr, flush=True)


def _child_main(job: dict[str, Any]) -> int:
    """Run one process of the lab until SIGTERM; return its exit status (1 if anything raised)."""
    stop = _Stop()
    warnings.simplefilter("always")
    warnings.showwarning = _print_warning
    if job["kind"] == "writer":
        return _writer(job, stop)
    return _appender(job, stop)


def _learning_curve(rng: random.Random, count: int) -> list[float]:
    """``count`` returns of a run that learns: from about -180 to a level drawn at random."""
    level = rng.uniform(-60.0, 40.0)
    tau = max(1.0, count * rng.uniform(0.1, 0.4))
    return [
        round(-180.0 + (level + 180.0) * (1.0 - math.exp(-step / tau)) + rng.gauss(0.0, 8.0), 4)
        for step in range(count)
    ]


def _writer(job: dict[str, Any], stop: _Stop) -> int:
    """Create a finished run every ``interval`` seconds; print ``created <path>`` for each."""
    from pyhermes import Experiment

    number, interval, count = job["number"], job["interval"], job["scores_per_run"]
    rng = random.Random(number)
    status = 0
    seed = 0
    while not stop.requested:
        began = time.monotonic()
        args = ["train"] + (["--doubledqn"] if rng.random() < 0.5 else []) + [
            f"-lr {rng.choice(_LRS)}", f"-gamma {rng.choice(_GAMMAS)}", f"-seed {seed}",
            f"-writer {number}",
        ]
        try:
            with Experiment.create(job["root"], SCRIPT, f"writer{number}", args, job_idx=number,
                                   commit_hash=f"lab{number:02d}",
                                   comments=[f"live lab writer {number}"]) as run:
                scores = _learning_curve(rng, count)
                for start in range(0, count, _SCORES_PER_APPEND):
                    run.append_scores(*scores[start : start + _SCORES_PER_APPEND])
            print(f"created {run.path_to_experiment}", flush=True)
        except Exception:  # noqa: BLE001 - printed for LiveLab.problems; the lab goes on
            traceback.print_exc()
            status = 1
        seed += 1
        stop.sleep_until(began + interval)
    return status


def _appender(job: dict[str, Any], stop: _Stop) -> int:
    """Create ``count`` unfinished runs, then append a score line to each every ``interval`` s."""
    from pyhermes import Experiment

    rng = random.Random(1000)
    files: list[tuple[Path, float]] = []
    for number in range(job["count"]):
        args = ["train", "--doubledqn", f"-lr {rng.choice(_LRS)}", f"-seed {number}"]
        run = Experiment.create(job["root"], SCRIPT, "appending", args, job_idx=number,
                                commit_hash="lab99", comments=["live lab, never finished"])
        print(f"appending {run.path_to_experiment}", flush=True)
        files.append((Path(run.scores_file), rng.uniform(-60.0, 40.0)))
    status = 0
    step = 0
    while not stop.requested:
        began = time.monotonic()
        try:
            for path, level in files:
                value = -180.0 + (level + 180.0) * (1.0 - math.exp(-step / 300.0)) + rng.gauss(0, 8)
                with open(path, "a", encoding="utf-8") as handle:
                    handle.write(f"{value:.4f}\n")
            print(f"appended {step}", flush=True)
        except Exception:  # noqa: BLE001 - printed for LiveLab.problems; the lab goes on
            traceback.print_exc()
            status = 1
        step += 1
        stop.sleep_until(began + job["interval"])
    return status


# --------------------------------------------------------------------------- the command


def _index_serves(root: Path) -> bool:
    """True when ``HERMES_INDEX`` is set or a ``.hermes/index.sqlite`` exists at or above ``root``."""
    if os.environ.get("HERMES_INDEX"):
        return True
    resolved = root.resolve()
    return any((folder / ".hermes" / "index.sqlite").is_file() for folder in (resolved, *resolved.parents))


def main(argv: list[str] | None = None) -> int:
    """Run the lab on ROOT for ``--seconds``; print a JSON summary.

    Returns:
        0 when no child had a problem, else 1.

    Raises:
        RuntimeError: the lab could not start (see :meth:`LiveLab.__enter__`).
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, metavar="ROOT", help="the tree of runs (created if missing)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the lab is live (default 30)")
    parser.add_argument("--writers", type=int, default=4, help="processes creating runs (default 4)")
    parser.add_argument("--appenders", type=int, default=20, help="unfinished runs growing (default 20)")
    parser.add_argument("--interval", type=float, default=0.3, help="seconds between writes (default 0.3)")
    parser.add_argument("--scores-per-run", type=int, default=200, help="scores of a created run (default 200)")
    parser.add_argument("--folder", default="live", help="folder of ROOT the lab writes in (default live)")
    args = parser.parse_args(argv)
    args.root.mkdir(parents=True, exist_ok=True)
    built = False
    if not _index_serves(args.root):  # else nothing would be written through
        from pyhermes import Experiment
        from pyhermes.index.store.engine import dispose_engines

        Experiment.load_all(args.root, recursive=True)
        dispose_engines()
        built = True
    began = time.monotonic()
    lab = LiveLab(args.root, writers=args.writers, appenders=args.appenders, interval=args.interval,
                  scores_per_run=args.scores_per_run, folder=args.folder)
    with lab:
        live_from = time.monotonic()
        try:
            time.sleep(max(0.0, args.seconds))
        except KeyboardInterrupt:
            pass
    summary = {
        "root": str(args.root.resolve()),
        "index_built_first": built,
        "seconds_live": round(time.monotonic() - live_from, 2),
        "seconds_to_start": round(live_from - began, 2),
        "writers": args.writers,
        "appenders": args.appenders,
        "runs_created": len(lab.created()),
        "exit_codes": lab.exit_codes(),
        "problems": lab.problems(),
    }
    print(json.dumps(summary, indent=2))
    return 1 if summary["problems"] else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == CHILD_FLAG:
        sys.exit(_child_main(json.loads(sys.argv[2])))
    sys.exit(main())
