#!/usr/bin/env python
"""Server time of the ``hermes serve`` pages on large catalogues.

    python scripts/bench_web.py [--sizes 100000] [--dir DIR] [--repeat 7]
                                [--compare-runs 1000] [--compare-scores 10000]

For each size N of ``--sizes`` (comma-separated) it generates (once; reused when DIR
already holds it) a corpus of N runs with 20 scores each, indexes it, and times
requests through Flask's in-process client, so that the figures are the server's time
(routing, SQL, rendering), without a network or a browser:

* the Runs page: sorts and filters (goal: 300 ms at 100,000 runs); the count of
  matches, which the app keeps per filter until the index changes, is dropped before
  each request, so the figures are those of a filter's first view;
* the hyperparameter view, ``/api/params`` and the Params page, with and without a
  filter (goal: 500 ms at 100,000 runs); nothing of it is kept between requests;
* a grouped compare of about 1,000 matched runs, ``/api/curves?where=-seed < 4&
  group_by=-lr`` (1,080 runs at every size of 1,080 runs or more; goal: 1 s and a
  response of at most 2 MB).

Then, once, on corpora of their own: the Compare rows of 50 runs of 1,000 scores, and
a grouped compare of ``--compare-runs`` runs of ``--compare-scores`` scores each
(goal: 1 s and 2 MB for 1,000 runs x 10,000 scores).

Each figure is the median of ``--repeat`` requests after one warm-up. Where the library
computes the same answer alone (:func:`pyhermes.present.runs_page`,
:func:`pyhermes.present.hparams.hparams_view`), that is timed too: the ratio is what
the web layer adds. A row over its goal is marked ``OVER``. The last lines are the
rows as a Markdown table, for the README's serve section. Use ``--sizes 2000
--compare-scores 1000`` for a quick check that the script works.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent

#: Goals, in milliseconds and bytes (issue 18).
RUNS_GOAL_MS = 300.0
PARAMS_GOAL_MS = 500.0
COMPARE_GOAL_MS = 1000.0
COMPARE_GOAL_BYTES = 2 * 1024 * 1024
#: A filter matching 1,080 runs of a generated corpus of 1,080 runs or more (270 per seed).
ABOUT_1000 = "-seed < 4"


@dataclass
class Row:
    """One timed request: its median, the library's where there is one, its answer's size."""

    corpus: str
    label: str
    web_ms: float
    library_ms: float | None = None
    size: int = 0
    goal_ms: float | None = None
    goal_bytes: int | None = None

    @property
    def over(self) -> bool:
        """Whether the request misses a goal."""
        return (self.goal_ms is not None and self.web_ms > self.goal_ms) or (
            self.goal_bytes is not None and self.size > self.goal_bytes
        )

    def line(self) -> str:
        library = f"{self.library_ms:8.1f} {self.web_ms / self.library_ms:6.2f}" if self.library_ms else " " * 15
        goal = f"<= {self.goal_ms:.0f} ms" if self.goal_ms else ""
        if self.goal_bytes:
            goal += f", <= {self.goal_bytes / 2**20:.0f} MB"
        return (f"{self.label:<66} {self.web_ms:8.1f} {library} {_size(self.size):>9} "
                f"{goal:<20} {'OVER' if self.over else ''}")


def _size(count: int) -> str:
    return f"{count / 2**20:.2f} MB" if count >= 2**20 else f"{count / 1024:.0f} kB"


def _make_corpus(out: Path, runs: int, scores: int) -> None:
    sweep = out / "experiments" / "train_dqn" / "sweep"
    if sweep.is_dir() and any(sweep.iterdir()):
        return
    spec = importlib.util.spec_from_file_location("make_corpus", HERE / "make_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    started = time.perf_counter()
    module.make_corpus(out, runs, seed=0, scores_per_run=scores)
    print(f"  wrote {runs:,} runs of {scores:,} scores in {time.perf_counter() - started:.1f} s", flush=True)


def _indexed(root: Path) -> None:
    from pyhermes import Catalog

    started = time.perf_counter()
    count = Catalog.open(root, sync="full").count()
    print(f"  indexed {root.name} ({count:,} runs) in {time.perf_counter() - started:.1f} s", flush=True)


def _median_ms(call: Callable[[], object], repeat: int) -> float:
    call()  # warm-up: caches, SQLite pages
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def _timed_get(client, url: str, repeat: int, before: Callable[[], None] | None = None) -> tuple[float, int]:
    """The median of ``repeat`` GETs of ``url`` (after one warm-up) and the size of the answer."""
    size = 0

    def request() -> None:
        nonlocal size
        if before is not None:
            before()
        response = client.get(url)
        assert response.status_code == 200, (url, response.data[:300])
        size = len(response.data)

    return _median_ms(request, repeat), size


def runs_rows(root: Path, corpus: str, repeat: int) -> list[Row]:
    """The Runs page, the hyperparameter view and a grouped compare of ~1,000 runs on ``root``."""
    from pyhermes import present
    from pyhermes.present import hparams
    from pyhermes.web import create_app

    app = create_app(root, sync="none")
    client = app.test_client()
    catalog = app.extensions["hermes"].catalog
    rows: list[Row] = []
    runs_requests = [
        ({}, "newest first, page 1"),
        ({"where": "--doubledqn and -lr < 0.001 and final_mean > 100", "sort": "-final_mean"},
         "filter, sort by final_mean"),
        ({"sort": "-lr:desc"}, "sort by an exec-arg key"),
        ({"sort": "-lr", "page": 1000}, "sort by an exec-arg key, page 1000"),
        ({"where": "--doubledqn and final_mean > 100", "sort": "-gamma:desc"},
         "filter, sort by an exec-arg key"),
        ({"sort": "max:desc"}, "sort by a column without an index (max)"),
        ({"page": 1000}, "page 1000"),
        ({"per_page": 500}, "500 runs per page"),
    ]
    for params, label in runs_requests:
        web_ms, size = _timed_get(client, "/runs?" + urlencode(params), repeat, present.forget_counts)

        def library(params: dict = params) -> None:
            present.forget_counts()
            present.runs_page(catalog, where=params.get("where"), sort=params.get("sort"),
                              page=params.get("page", 1), per_page=params.get("per_page", 50))

        rows.append(Row(corpus, f"/runs {label}", web_ms, _median_ms(library, repeat), size, RUNS_GOAL_MS))
        print(rows[-1].line(), flush=True)

    for params, label in (
        ({}, "/api/params (every run, final_mean)"),
        ({"where": "--doubledqn", "summary": "best_window_mean"},
         "/api/params?where=--doubledqn&summary=best_window_mean"),
        ({"where": "-lr = 0.001 and final_mean > 0", "x": "-gamma"}, "/api/params, a filter, x=-gamma"),
        ({}, "/params (the page, every run)"),
    ):
        url = ("/params?" if label.startswith("/params") else "/api/params?") + urlencode(params)
        web_ms, size = _timed_get(client, url, repeat)

        def view(params: dict = params) -> None:
            hparams.hparams_view(catalog, params.get("where"), params.get("summary", "final_mean"),
                                 params.get("x"))

        rows.append(Row(corpus, label, web_ms, _median_ms(view, repeat), size, PARAMS_GOAL_MS))
        print(rows[-1].line(), flush=True)

    matched = catalog.count(ABOUT_1000)
    url = "/api/curves?" + urlencode({"where": ABOUT_1000, "group_by": "-lr"})
    web_ms, size = _timed_get(client, url, repeat)
    rows.append(Row(corpus, f"/api/curves?where={ABOUT_1000}&group_by=-lr ({matched:,} runs, grouped)",
                    web_ms, None, size, COMPARE_GOAL_MS, COMPARE_GOAL_BYTES))
    print(rows[-1].line(), flush=True)
    return rows


def compare_rows(
    root: Path, corpus: str, repeat: int, requests: list[tuple[str, str, float | None, int | None]]
) -> list[Row]:
    """The Compare requests ``(url, label, goal in ms, goal in bytes)`` on ``root``."""
    from pyhermes.web import create_app

    client = create_app(root, sync="none").test_client()
    rows = []
    for url, label, goal_ms, goal_bytes in requests:
        web_ms, size = _timed_get(client, url, repeat)
        rows.append(Row(corpus, label, web_ms, None, size, goal_ms, goal_bytes))
        print(rows[-1].line(), flush=True)
    return rows


def markdown(rows: list[Row]) -> str:
    """The rows as a Markdown table (the README's serve section)."""
    lines = ["| corpus | request | server time | answer | goal |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        goal = f"≤ {row.goal_ms:.0f} ms" if row.goal_ms else ""
        if row.goal_bytes:
            goal += f", ≤ {row.goal_bytes / 2**20:.0f} MB"
        mark = " (over)" if row.over else ""
        lines.append(f"| {row.corpus} | `{row.label}` | {row.web_ms:.1f} ms{mark} | {_size(row.size)} | {goal} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000", help="comma-separated corpus sizes (runs)")
    parser.add_argument("--runs", type=int, default=None, help="one size (the same as --sizes N)")
    parser.add_argument("--dir", default="bench-web")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--compare-runs", type=int, default=1000)
    parser.add_argument("--compare-scores", type=int, default=10000)
    options = parser.parse_args()
    sizes = [options.runs] if options.runs else [int(size) for size in options.sizes.split(",") if size.strip()]

    base = Path(options.dir)
    print(f"corpora in {base}", flush=True)
    header = (f"{'request':<66} {'web':>8} {'library':>8} {'ratio':>6} {'answer':>9} {'goal':<20}")
    rows: list[Row] = []
    for size in sizes:
        root = base / f"runs-{size}"
        _make_corpus(root, size, 20)
        _indexed(root)
        print(f"\n{size:,} runs of 20 scores: server time, median of {options.repeat} (ms)\n{header}")
        rows += runs_rows(root, f"{size:,} runs", options.repeat)

    small = base / "compare-50x1000"
    long_runs, long_scores = options.compare_runs, options.compare_scores
    long = base / f"compare-{long_runs}x{long_scores}"
    for root, runs, scores in ((small, 50, 1000), (long, long_runs, long_scores)):
        _make_corpus(root, runs, scores)
        _indexed(root)
    print(f"\ncompare: server time, median of {options.repeat} (ms)\n{header}")
    rows += compare_rows(small, "50 runs x 1,000 scores", options.repeat, [
        ("/api/curves?group_by=-lr", "/api/curves?group_by=-lr (the Compare chart)", None, None),
        ("/api/curves", "/api/curves (one line per run, 50 lines)", None, None),
        ("/compare?where=&group_by=-lr", "/compare?where=&group_by=-lr (the page around the chart)", None, None),
    ])
    # The goal for long curves is the answer's size (and drawing it in the browser
    # within 1 s, measured there); the server time is reported, limited by parsing the files.
    rows += compare_rows(long, f"{long_runs:,} runs x {long_scores:,} scores", options.repeat, [
        ("/api/curves?where=&group_by=-lr", "/api/curves?where=&group_by=-lr (every run, grouped)",
         None, COMPARE_GOAL_BYTES),
    ])
    print("\n" + markdown(rows))
    over = [row for row in rows if row.over]
    if over:
        print(f"\n{len(over)} request(s) over their goal: " + "; ".join(row.label for row in over))
    return 0


if __name__ == "__main__":
    sys.exit(main())
