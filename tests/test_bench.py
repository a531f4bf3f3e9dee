"""scripts/bench.py --quick runs in CI so that the benchmark never rots (no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_quick_benchmark_runs_and_reports_every_row(tmp_path: Path) -> None:
    table = tmp_path / "BENCH.md"
    table.write_text("# Benchmarks\n\nprose kept\n")
    plot = tmp_path / "bench.png"
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench.py"), "--quick", "--cache", str(tmp_path / "cache"),
         "--write", str(table), "--plot", str(plot)],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    text = table.read_text()
    assert text.startswith("# Benchmarks\n\nprose kept\n")
    for row in ("legacy scan", "read-and-parse", "first build", "peak RSS", "fresh process",
                "hermes ls", "import pyhermes", "filter + newest 1", "matches as a list",
                "typed query", "top-10", "to_frame()", "1%) changed"):
        assert row in text, row
    assert text.count("| 1,000 |") >= 15
    assert plot.read_bytes().startswith(b"\x89PNG")
    # The corpus is cached: a second run does not generate it again.
    assert (tmp_path / "cache" / "corpus-1000" / ".complete").exists()
