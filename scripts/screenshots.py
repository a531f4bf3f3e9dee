#!/usr/bin/env python
"""Make the screenshots of ``hermes serve``: one PNG per page, in ``docs/screenshots/``.

    python scripts/screenshots.py [--out DIR] [--runs N] [--dark]

Generates the demo corpus (the demo's generator and seed, 2,000 runs by default) and a
run that crashed (CUDA out of memory, no end time) in a temporary folder, serves it
in this process and visits every page in headless Chromium at 1400x1000:

* ``indexing.png``: the page shown while the index is first built (the build is held
  at half way while the screenshot is taken);
* ``runs.png``: the runs page sorted by ``final_mean``;
* ``run.png``: the best run's page; ``run-crashed.png``: the crashed run's page;
* ``compare-grouped.png``: the ``--doubledqn`` runs compared, grouped by ``-lr``;
* ``params.png``: the hyperparameter view (skipped when the server has no ``/params``);
* ``sql.png``: a query on the SQL page.

``--dark`` emulates ``prefers-color-scheme: dark`` (Chromium's DevTools protocol,
``Emulation.setEmulatedMedia``) and names the files ``*-dark.png``. Needs selenium,
``chromium`` and ``chromedriver`` (Debian's ``chromium`` and ``chromium-driver``).
Every wait is on a condition of the page, never a fixed pause.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests"))

#: The viewport of every screenshot, in CSS pixels.
WIDTH, HEIGHT = 1400, 1000
#: Seconds any one page may take to show what it is waited for.
TIMEOUT = 120
#: A CUDA out-of-memory crash, as PyTorch prints it, for the crashed run's stderr.log.
CRASH = """Traceback (most recent call last):
  File "dqn.py", line 212, in <module>
    main(args)
  File "dqn.py", line 168, in main
    loss = agent.learn(batch)
  File "dqn.py", line 97, in learn
    q_values = self.network(states)
torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 11.77 GiB total
capacity; 9.12 GiB already allocated; 1.21 GiB free; 9.60 GiB reserved in total by PyTorch)
"""


def make_tree(root: Path, runs: int) -> Path:
    """Write the demo corpus and one crashed run below ``root``; return the crashed run's folder."""
    from make_corpus import make_corpus

    from pyhermes import rundir

    make_corpus(root, runs, seed=0, scores_per_run=1000)
    crashed = make_corpus(root, 1, seed=11, scores_per_run=400, experiment="crashed")[0]
    info = crashed / rundir.INFO_FILE
    lines = info.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if not line.startswith(("end_time:", "execution_time:"))]
    info.write_text("\n".join(kept) + "\n", encoding="utf-8")
    (crashed / rundir.STDERR_FILE).write_text(CRASH, encoding="utf-8")
    hour_ago = time.time() - 3600  # long past the settle window: crashed, not running
    for path in [*crashed.iterdir(), crashed]:
        os.utime(path, (hour_ago, hour_ago))
    return crashed


class HeldBuild:
    """The progress of a sync that stops half way until released (for the indexing page)."""

    half = threading.Event()
    release = threading.Event()

    @classmethod
    def progress_class(cls) -> type:
        from pyhermes.index.sync.progress import SyncProgress

        class Holding(SyncProgress):
            def __call__(self, done: int) -> None:
                super().__call__(done)
                total = self.snapshot()["total"] or 0
                if total and done == total // 2 and not cls.release.is_set():
                    cls.half.set()
                    cls.release.wait(TIMEOUT)

        return Holding


@contextmanager
def serve(root: Path) -> Iterator[tuple[str, Any]]:
    """Serve ``root`` (a tree without an index yet) in a thread; its first build is held half way."""
    from werkzeug.serving import make_server

    import pyhermes.web.state as state_module
    from pyhermes.web import create_app

    original = state_module.SyncProgress
    state_module.SyncProgress = HeldBuild.progress_class()
    try:
        app = create_app(root)
    finally:
        state_module.SyncProgress = original
    state = app.extensions["hermes"]
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", state
    finally:
        HeldBuild.release.set()
        httpd.shutdown()
        thread.join(10)
        state.wait(TIMEOUT)


def start_browser(dark: bool) -> Any:
    """Return a headless Chromium (selenium) with a 1400x1000 viewport, dark if asked."""
    from browser import CHROMIUM_ARGS, find_program
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = find_program(("chromium", "chromium-browser"), "/usr/bin/chromium")
    driver_path = find_program(("chromedriver",), "/usr/bin/chromedriver")
    if chromium is None or driver_path is None:
        raise SystemExit("no headless browser: install Debian's chromium and chromium-driver packages")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in CHROMIUM_ARGS:
        if not argument.startswith("--window-size"):
            options.add_argument(argument)
    options.add_argument(f"--window-size={WIDTH},{HEIGHT}")
    if dark:
        options.add_argument("--force-dark-mode")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(TIMEOUT)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
    )
    scheme = "dark" if dark else "light"
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
    )
    return driver


def charts_drawn(driver: Any) -> bool:
    """Whether the page is loaded and every chart shown on it is drawn (or says why not)."""
    return bool(driver.execute_script(
        "if (document.readyState !== 'complete') return false;"
        "return Array.from(document.querySelectorAll('.chart')).filter(c => !c.closest('[hidden]')).every("
        "  c => c.dataset.drawn !== undefined || c.querySelector('.main-svg, .error, pre, p'));"
    ))


def shoot(driver: Any, base: str, url: str, ready: Callable[[Any], Any], out: Path, name: str) -> Path | None:
    """Open ``base + url``, wait for ``ready``, save ``out/name.png``; ``None`` if the page is a 404."""
    from browser import wait

    driver.get(base + url)
    if driver.execute_script("return document.title").lower().startswith(("error", "404", "not found")):
        if "no such page" in driver.execute_script("return document.body.innerText"):
            print(f"  {name}: {url} is not served here, skipped")
            return None
    wait(driver, ready, TIMEOUT)
    try:
        wait(driver, charts_drawn, TIMEOUT / 4)
    except AssertionError:
        print(f"  {name}: a chart was not drawn in {TIMEOUT / 4:.0f} s; the page is shot as it is")
    path = out / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"  {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshots"), help="where the PNGs go")
    parser.add_argument("--runs", type=int, default=2000, help="runs in the demo corpus (default 2000)")
    parser.add_argument("--dark", action="store_true", help="prefers-color-scheme: dark; files *-dark.png")
    args = parser.parse_args(argv)
    from browser import then_new_page, wait
    from selenium.webdriver.common.by import By

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    suffix = "-dark" if args.dark else ""
    work = Path(tempfile.mkdtemp(prefix="hermes-screenshots-"))
    driver = None
    try:
        root = work / "demo"
        print(f"generating {args.runs:,} runs and a crashed one in {root}")
        crashed = make_tree(root, args.runs)
        driver = start_browser(args.dark)
        with serve(root) as (base, state):
            shots: list[Path | None] = []
            HeldBuild.half.wait(TIMEOUT)
            shots.append(shoot(
                driver, base, "/runs", lambda d: d.find_element(By.ID, "indexing-progress").text,
                out, "indexing" + suffix,
            ))
            HeldBuild.release.set()
            wait(driver, lambda d: d.find_elements(By.ID, "count"), TIMEOUT)  # status.js reloads it
            shots.append(shoot(
                driver, base, "/runs?sort=final_mean%3Adesc", lambda d: d.find_elements(By.ID, "count"),
                out, "runs" + suffix,
            ))
            then_new_page(driver, (By.CSS_SELECTOR, "a.run-link"))
            shots.append(shoot(
                driver, base, driver.current_url.removeprefix(base),
                lambda d: d.find_element(By.ID, "run-title"), out, "run" + suffix,
            ))
            crashed_url = "/run/" + quote(crashed.relative_to(root).as_posix())
            shots.append(shoot(
                driver, base, crashed_url, lambda d: d.find_element(By.ID, "run-title"),
                out, "run-crashed" + suffix,
            ))
            shots.append(shoot(
                driver, base, "/compare?where=--doubledqn&group_by=-lr&window=50",
                lambda d: d.find_element(By.ID, "compare-chart").get_attribute("data-drawn"),
                out, "compare-grouped" + suffix,
            ))
            shots.append(shoot(
                driver, base, "/params?where=--doubledqn", lambda d: d.find_element(By.TAG_NAME, "main"),
                out, "params" + suffix,
            ))
            query = (
                "SELECT a.value AS lr, COUNT(*) AS runs, AVG(r.final_mean) AS mean_final "
                "FROM runs r JOIN run_args a ON a.run_id = r.id AND a.key = '-lr' "
                "GROUP BY a.value ORDER BY mean_final DESC"
            )
            shots.append(shoot(
                driver, base, "/sql?q=" + quote(query), lambda d: d.find_element(By.ID, "sql-result"),
                out, "sql" + suffix,
            ))
        made = [path.name for path in shots if path is not None]
        print(f"{len(made)} screenshots in {out}: {', '.join(made)}")
        return 0
    finally:
        if driver is not None:
            driver.quit()
        from pyhermes.index.store.engine import dispose_engines

        dispose_engines()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
