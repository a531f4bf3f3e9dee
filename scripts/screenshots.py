#!/usr/bin/env python
"""Re-make the README's screenshots of ``hermes serve``: ``docs/screenshots/*.png``.

    python scripts/screenshots.py [OUT_DIR]

Runs the browser test (``tests/test_web_browser.py``: headless Chromium on a corpus
from the demo's generator and seed) with ``HERMES_SCREENSHOTS=OUT_DIR``, which copies
the screenshot of each page it visits there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(out_dir: str = str(REPO / "docs" / "screenshots")) -> int:
    env = {**os.environ, "HERMES_SCREENSHOTS": str(Path(out_dir).resolve()), "CI": "true"}
    test = str(REPO / "tests" / "test_web_browser.py")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:logging", test], env=env)
    if done.returncode == 0:
        print(f"screenshots in {out_dir}: {', '.join(sorted(p.name for p in Path(out_dir).glob('*.png')))}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
