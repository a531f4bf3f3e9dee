"""The Run page in a real browser (headless Chromium): the status badge and a crashed run's
traceback near the top, paging through a 100,000-line log (and following a growing one), the
smoothing window kept in the URL after a redraw, and a run without scores that says so quietly
with no error in the console.

Without a browser (``chromium`` and ``chromedriver``) or selenium the tests skip with the
reason, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

import pytest

# ruff: noqa: F811 - the fixtures imported from browser are arguments of the tests
from browser import browser, save, serving, shots, then_new_page, wait  # noqa: F401 - fixtures
from legacy import write_run

SWEEP = Path("experiments") / "train_dqn" / "debug"
LINES = 100_000
PAGE = 200
OOM = (
    "Traceback (most recent call last):\n"
    '  File "train_dqn.py", line 87, in <module>\n'
    "    loss.backward()\n"
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB\n"
)


@pytest.fixture(scope="module")
def run_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Path]]]:
    pytest.importorskip("flask")
    from pyhermes.web import create_app

    root = tmp_path_factory.mktemp("browser_run") / "runs"
    sweep = root / SWEEP
    runs = {
        "finished": write_run(
            sweep, start=datetime(2024, 5, 1, 10), scores=[float(i % 50) for i in range(400)],
            stdout="".join(f"episode {i} return {i}.5\n" for i in range(LINES)),
            stderr="a warning\n", extra_files={"model.pth": bytes(1_500_000)},
        ),
        "oom": write_run(sweep, start=datetime(2024, 5, 4, 10), scores=[4.0, 5.0], finished=False,
                         stdout="episode 0 return 4.0\n", stderr="warming up\n" + OOM),
        "no_scores": write_run(sweep, start=datetime(2024, 5, 5, 10), stdout="starting\n"),
    }
    app = create_app(root)
    app.extensions["hermes"].wait()
    with serving(app) as url:
        yield url, runs


def _url(base: str, run_dir: Path, query: str = "") -> str:
    return f"{base}/run/{quote((SWEEP / run_dir.name).as_posix())}{query}"


def _open(driver, url: str) -> None:
    """Open ``url`` and wait until run.js has set the page up."""
    then_new_page(driver, lambda: driver.get(url))
    wait(driver, lambda d: d.execute_script(
        "const v = document.getElementById('log-view');"
        "return document.readyState === 'complete' && (!v || v.dataset.ready === '1');"))


def _log_state(driver) -> dict[str, str]:
    return driver.execute_script(
        "const v = document.getElementById('log-view');"
        "return {start: v.dataset.start, end: v.dataset.end, total: v.dataset.total,"
        " log: v.dataset.log, loading: v.dataset.loading || '', text: v.textContent,"
        " position: document.getElementById('log-position').textContent};"
    )


def _settled(driver, **expected: str):
    """Wait until the log viewer shows ``expected`` (and no request is pending); return its state."""
    def done(d):
        state = _log_state(d)
        return state if not state["loading"] and all(state[k] == v for k, v in expected.items()) else False

    return wait(driver, done)


def test_a_crashed_run_shows_its_badge_and_traceback_at_the_top(browser, run_server, shots):
    from selenium.webdriver.common.by import By

    base, runs = run_server
    _open(browser, _url(base, runs["oom"]))
    badge = browser.find_element(By.ID, "run-status")
    assert badge.text == "crashed"
    assert "traceback" in badge.get_attribute("title")
    card = browser.find_element(By.ID, "crash-card")
    assert "torch.OutOfMemoryError: CUDA out of memory" in card.text
    top = browser.execute_script("return document.getElementById('crash-card').getBoundingClientRect().bottom;")
    assert top < browser.execute_script("return window.innerHeight;")  # seen without scrolling
    assert browser.execute_script(
        "return document.getElementById('crash-card').getBoundingClientRect().top"
        " < document.getElementById('curve-card').getBoundingClientRect().top;")
    assert _log_state(browser)["log"] == "stderr.log"  # the viewer opens on stderr
    save(browser, shots, "run-crashed")

    _open(browser, _url(base, runs["finished"]))
    assert browser.find_element(By.ID, "run-status").text == "finished"
    assert not browser.find_elements(By.ID, "crash-card")


def test_paging_a_large_log(browser, run_server, shots):
    from selenium.webdriver.common.by import By

    base, runs = run_server
    _open(browser, _url(base, runs["finished"]))
    state = _log_state(browser)
    assert (state["start"], state["end"], state["total"]) == (str(LINES - PAGE), str(LINES), str(LINES))
    assert state["text"].splitlines()[-1] == f"episode {LINES - 1} return {LINES - 1}.5"
    assert state["position"].startswith(f"lines {LINES - PAGE + 1:,}–{LINES:,} of {LINES:,}")
    assert browser.find_element(By.ID, "log-next").get_attribute("disabled")

    browser.find_element(By.ID, "log-first").click()
    state = _settled(browser, start="0")
    assert state["text"].splitlines()[:2] == ["episode 0 return 0.5", "episode 1 return 1.5"]
    assert browser.find_element(By.ID, "log-previous").get_attribute("disabled")
    browser.find_element(By.ID, "log-next").click()
    state = _settled(browser, start=str(PAGE))
    assert state["text"].splitlines()[0] == f"episode {PAGE} return {PAGE}.5"
    browser.find_element(By.ID, "log-last").click()
    _settled(browser, end=str(LINES))
    browser.find_element(By.ID, "log-previous").click()
    state = _settled(browser, start=str(LINES - 2 * PAGE))
    assert state["text"].splitlines()[-1] == f"episode {LINES - PAGE - 1} return {LINES - PAGE - 1}.5"
    save(browser, shots, "run-log")

    # Another log, chosen in the list: its last page, and the choice in the URL.
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.ID, "log-name")).select_by_value("stderr.log")
    state = _settled(browser, log="stderr.log", total="1")
    assert state["text"] == "a warning"
    assert parse_qs(urlparse(browser.current_url).query)["log"] == ["stderr.log"]


def test_following_the_tail_of_a_growing_log(browser, run_server):
    from selenium.webdriver.common.by import By

    base, runs = run_server
    _open(browser, _url(base, runs["no_scores"]))
    assert _log_state(browser)["text"] == "starting"
    browser.find_element(By.ID, "log-follow").click()
    with open(runs["no_scores"] / "stdout.log", "a") as handle:
        handle.write("episode 1 return 3.0\n")
    state = _settled(browser, total="2")
    assert state["text"].splitlines() == ["starting", "episode 1 return 3.0"]
    browser.find_element(By.ID, "log-follow").click()  # stop following


def test_the_smoothing_window_is_kept_in_the_url(browser, run_server):
    from selenium.webdriver.common.by import By

    base, runs = run_server
    _open(browser, _url(base, runs["finished"]))
    wait(browser, lambda d: d.find_element(By.ID, "curve-chart").get_attribute("data-drawn"))
    browser.execute_script("delete document.getElementById('curve-chart').dataset.drawn;")
    box = browser.find_element(By.ID, "window")
    box.clear()
    box.send_keys("50")
    browser.find_element(By.CSS_SELECTOR, "#window-form button[type=submit]").click()
    wait(browser, lambda d: d.find_element(By.ID, "curve-chart").get_attribute("data-drawn"))
    assert parse_qs(urlparse(browser.current_url).query)["window"] == ["50"]
    assert "window=50" in browser.find_element(By.ID, "curve-chart").get_attribute("data-url")
    assert browser.find_elements(By.CSS_SELECTOR, "#curve-chart .main-svg")

    _open(browser, browser.current_url)  # the URL alone brings the window back
    assert browser.find_element(By.ID, "window").get_attribute("value") == "50"
    assert "window=50" in browser.find_element(By.ID, "curve-chart").get_attribute("data-url")
    wait(browser, lambda d: d.find_element(By.ID, "curve-chart").get_attribute("data-drawn"))


def test_a_run_without_scores_says_so_with_no_console_error(browser, run_server):
    from selenium.webdriver.common.by import By

    base, runs = run_server
    browser.get_log("browser")  # forget what earlier pages logged
    _open(browser, _url(base, runs["no_scores"]))
    assert browser.find_element(By.ID, "no-scores").text == "no scores yet"
    assert not browser.find_elements(By.CSS_SELECTOR, "pre.error")
    assert not browser.find_elements(By.ID, "curve-chart")
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name);")
    assert not [url for url in loaded if "/api/curves" in url]
    errors = [entry["message"] for entry in browser.get_log("browser")
              if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]]
    assert errors == []
