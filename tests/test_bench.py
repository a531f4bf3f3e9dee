"""scripts/bench.py --quick runs in CI so that the benchmark never rots (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[1]


class QuickRun(NamedTuple):
    """One ``bench.py --quick`` run: its folder, its stderr, the table file, the plot."""

    folder: Path
    stderr: str
    table: Path
    plot: Path


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> QuickRun:
    """Run ``bench.py --quick --write --plot`` once (about half a minute) for the tests of this module."""
    folder = tmp_path_factory.mktemp("bench")
    table = folder / "BENCH.md"
    table.write_text("# Benchmarks\n\nprose kept\n")
    plot = folder / "bench.png"
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench.py"), "--quick", "--cache", str(folder / "cache"),
         "--write", str(table), "--plot", str(plot)],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return QuickRun(folder, out.stderr, table, plot)


def test_quick_benchmark_runs_and_reports_every_row(quick: QuickRun) -> None:
    text = quick.table.read_text()
    assert text.startswith("# Benchmarks\n\nprose kept\n")
    for row in ("legacy scan", "read-and-parse", "first build", "peak RSS", "fresh process",
                "hermes ls", "import pyhermes", "filter + newest 1", "matches as a list",
                "typed query", "top-10", "to_frame()", "1%) changed",
                "peak RSS of the fresh process", 'load_all(sync="full")', "peak RSS of that process",
                "--sort=-final_mean --limit 10", "first request after start, runs page",
                "first request after start, filtered", "first request after start, page 10,000"):
        assert row in text, row
    assert "1,000 runs of 1,000 scores each" in text
    assert text.count("| 1,000 |") >= 24
    assert quick.plot.read_bytes().startswith(b"\x89PNG")
    # Progress lines on stderr say what is timed and how long it took.
    assert "[corpus-1000] first build (fresh process): " in quick.stderr
    # The corpus is cached: a second run does not generate it again.
    assert (quick.folder / "cache" / "corpus-1000" / ".complete").exists()


def test_quick_benchmark_measures_real_values(quick: QuickRun) -> None:
    """The rows hold measured values: peak RSS of real processes, runs pages a server really answered."""
    r = json.loads((quick.folder / "cache" / "last-results.json").read_text())["pyhermes"]["1000"]
    assert r["runs"] == 1000
    # A Python process that imported pyhermes and read an index holds more than 20 MB, and not gigabytes.
    for key in ("fresh_rss_kib", "full_fresh_rss_kib", "build_rss_kib"):
        assert 20_000 < r[key] < 2_000_000, (key, r[key])
    for key in ("serve_plain", "serve_filtered", "serve_page"):
        assert 0 < r[key] < 60 and 0 < r[f"{key}_cached"] < 60, key
        assert 20_000 < r[f"{key}_rss_kib"] < 2_000_000, key
        assert r[f"{key}_start"] > 0, key
    # Each page is the runs page of the whole corpus: every run, a filter's part of them, the last page.
    assert (r["serve_plain_total"], r["serve_plain_shown"]) == (1000, 1)
    assert 0 < r["serve_filtered_total"] < 1000 and r["serve_filtered_shown"] == 1
    assert (r["serve_page_total"], r["serve_page_shown"]) == (1000, 20)  # page 10,000 of 20 (50 a page): the last
    for key in ("fresh", "full_fresh", "ls", "ls_sorted", "legacy", "legacy_fresh", "frame", "changed_sync"):
        assert 0 < r[key] < 60, key
    assert r["warm_read"] is True


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The module scripts/bench.py."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import bench
    finally:
        sys.path.remove(str(REPO / "scripts"))
    return bench


def million_results(**changes: float) -> dict[str, object]:
    """Results of :func:`bench.measure` at 1,000,000 runs as they come when every target is met."""
    nan = float("nan")
    results: dict[str, object] = {
        "runs": 1_000_000, "legacy": 260.0, "legacy_fresh": nan, "stat_floor": 20.0, "parse_floor": 400.0,
        "build": 250.0, "build_rss_kib": 350 * 1024, "build_worker_rss_kib": 100 * 1024, "quick": 0.5,
        "full": 25.0, "full_fresh": 28.0, "full_fresh_rss_kib": 250 * 1024, "full_fresh_worker_rss_kib": 0,
        "fresh": 0.8, "fresh_rss_kib": 200 * 1024, "fresh_first": 2.0, "ls": 0.25, "ls_sorted": 0.28,
        "import": 0.05, "python": 0.03, "warm_read": False, "warm_latest": 0.01, "matches": 2.0,
        "matches_count": 100_000, "typed": 1.0, "top10": 0.1, "frame": nan, "changed_runs": 10_000,
        "changed_sync": 30.0,
    }
    for key in ("serve_plain", "serve_filtered", "serve_page"):
        results.update({key: 0.25, f"{key}_cached": 0.05, f"{key}_start": 1.5, f"{key}_rss_kib": 150 * 1024,
                        f"{key}_syncing": 0, f"{key}_total": 1_000_000, f"{key}_shown": 1})
    results.update(changes)
    return results


def test_the_header_names_the_scores_per_run_of_each_corpus(bench: ModuleType) -> None:
    text = bench.corpora_text([1000, 10_000, 100_000, 1_000_000])
    assert text == "1,000, 10,000 and 100,000 runs of 1,000 scores each, 1,000,000 runs of 100 scores each"
    assert bench.short_text([1000, 10_000]) == ""
    assert "once" in bench.short_text([1000, 1_000_000])


def test_the_million_rows_check_the_targets_of_issue_19(bench: ModuleType) -> None:
    rows = {row[1]: row for row in bench.rows_for(1_000_000, million_results(), None)}
    targets = [row[4] for row in rows.values() if row[4]]
    # build rate, build RSS, full sync in and out of process, its RSS, fresh process, its RSS,
    # ls --sort, three serve pages, import
    assert len(targets) == 12, targets
    assert all(target.endswith(": met") for target in targets), targets
    assert rows["… the same legacy scan as a whole process (`python script.py`)"][2] == "–"
    assert rows["warm (list not read whole): to_frame() of all runs"][2] == "–"
    assert rows["… peak RSS of the fresh process"][2:] == ("200 MB", "", "≤ 300 MB: met")
    assert "1,000,000 runs, page 1 shown" in " ".join(rows)

    missed = million_results(fresh=1.2, fresh_rss_kib=301 * 1024, serve_page=0.31, ls_sorted=0.4,
                             full=31.0, full_fresh_rss_kib=400 * 1024, build=300.0, build_rss_kib=401 * 1024)
    rows = bench.rows_for(1_000_000, missed, None)
    assert sum(row[4].endswith("NOT met") for row in rows) == 8


def test_an_answer_that_is_not_the_runs_page_fails_loudly(bench: ModuleType) -> None:
    indexing = '<section id="indexing"><h1>Indexing the runs</h1></section>'
    with pytest.raises(RuntimeError, match="not the runs page"):
        bench.runs_page_facts("/runs", 503, indexing)
    with pytest.raises(RuntimeError, match="not the runs page"):
        bench.runs_page_facts("/runs", 200, indexing)
    page = ('<span class="count" id="count" data-total="1234">1,234 runs match</span> · showing 51–100 · '
            'page 2 of 25 <table id="runs"></table>')
    assert bench.runs_page_facts("/runs?page=2", 200, page) == (1234, 2, None)
    counting = ('<span class="count" id="count" data-count-url="/api/count?where=-lr+%3C+1&amp;x=1">'
                'counting the runs…</span> · showing 1–50 · page 1 of <span id="page-count">…</span>'
                '<table id="runs"></table>')
    assert bench.runs_page_facts("/runs", 200, counting) == (None, 1, "/api/count?where=-lr+%3C+1&x=1")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmHWM is Linux's")
def test_the_peak_rss_of_a_measured_process_is_its_own(bench: ModuleType) -> None:
    """A child's ru_maxrss on Linux starts at its parent's peak (vfork + exec); the scripts report the child's own."""
    held = bytearray(200 * 1024 * 1024)
    for at in range(0, len(held), 4096):
        held[at] = 1
    out = subprocess.run([sys.executable, "-c", bench.PEAK_RSS + "print(peak_kib())"],
                         capture_output=True, text=True, check=True)
    assert 1000 < int(out.stdout) < 100 * 1024, out.stdout
    del held
