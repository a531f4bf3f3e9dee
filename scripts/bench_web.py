#!/usr/bin/env python
"""Server time of the ``hermes serve`` pages on a large catalogue.

    python scripts/bench_web.py [--runs 100000] [--dir DIR] [--repeat 7]

Generates (once; reused when DIR already holds it) a corpus of ``--runs`` runs with
20 scores each for the Runs page, and one of 50 runs with 1,000 scores each for
Compare; indexes them; then times requests through Flask's in-process client, so
that the figures are the server's time (routing, SQL, rendering), without a network
or a browser. Each figure is the median of ``--repeat`` requests after one warm-up; the
count of matches, which the app keeps per filter until the index changes, is
dropped before each Runs request, so the figures are those of a filter's first view.

The baseline of each Runs request is the same page computed by the library alone
(:func:`pyhermes.present.runs_page`): the ratio is what the web layer adds.
Goals (issue 10): the Runs page under 300 ms at 100,000 runs; a compare of 50
runs of 1,000 scores under 1 s.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent


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
    print(f"  wrote {runs:,} runs in {time.perf_counter() - started:.1f} s", flush=True)


def _median_ms(call, repeat: int) -> float:
    call()  # warm-up: caches, SQLite pages
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--dir", default="bench-web")
    parser.add_argument("--repeat", type=int, default=7)
    options = parser.parse_args()

    from pyhermes import Catalog, present
    from pyhermes.web import create_app

    base = Path(options.dir)
    big, small = base / f"runs-{options.runs}", base / "compare-50x1000"
    print(f"corpora in {base}", flush=True)
    _make_corpus(big, options.runs, 20)
    _make_corpus(small, 50, 1000)
    for root in (big, small):
        started = time.perf_counter()
        count = Catalog.open(root, sync="full").count()
        print(f"  indexed {root.name} ({count:,} runs) "
              f"in {time.perf_counter() - started:.1f} s", flush=True)

    print(f"\nserver time, median of {options.repeat} (ms)")
    print(f"{'request':<62} {'web':>8} {'library':>8} {'ratio':>6}")
    app = create_app(big, sync="none")
    client = app.test_client()
    catalog = app.extensions["hermes"].catalog
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
        url = "/runs?" + urlencode(params)

        def web(url: str = url) -> None:
            present.forget_counts()  # a filter seen for the first time: counted again
            response = client.get(url)
            assert response.status_code == 200, response.data[:300]

        def library(params: dict = params) -> None:
            present.forget_counts()
            present.runs_page(
                catalog,
                where=params.get("where"),
                sort=params.get("sort"),
                page=params.get("page", 1),
                per_page=params.get("per_page", 50),
            )

        web_ms, library_ms = _median_ms(web, options.repeat), _median_ms(library, options.repeat)
        print(f"/runs {label:<56} {web_ms:8.1f} {library_ms:8.1f} {web_ms / library_ms:6.2f}")

    compare = create_app(small, sync="none").test_client()
    for url, label in (
        ("/api/curves?group_by=-lr", "/api/curves: 50 runs x 1,000 scores, group by -lr"),
        ("/api/curves", "/api/curves: 50 runs x 1,000 scores, one line per run"),
        ("/compare?where=&group_by=-lr", "/compare page (table of the 50 runs)"),
    ):

        def request(url: str = url) -> None:
            response = compare.get(url)
            assert response.status_code == 200, response.data[:300]

        print(f"{label:<67} {_median_ms(request, options.repeat):8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
