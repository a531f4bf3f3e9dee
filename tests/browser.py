"""Browser tests' shared parts: headless Chromium, served corpora, waits that do not flake.

Import the fixtures into a test module (``from browser import browser, server  # noqa: F401``)
and use the helpers. Without a browser (``chromium`` and ``chromedriver``) or selenium the
tests skip with the reason, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from legacy import make_corpus

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1440,1000",
    "--hide-scrollbars",
)


def missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the browser test cannot run: {reason}")
    pytest.skip(reason)


def find_program(names: tuple[str, ...], fallback: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return fallback if Path(fallback).exists() else None


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing("selenium is not installed (pip install -e '.[dev]')")
    chromium = find_program(("chromium", "chromium-browser"), "/usr/bin/chromium")
    driver_path = find_program(("chromedriver",), "/usr/bin/chromedriver")
    if chromium is None or driver_path is None:
        missing("no headless browser: install Debian's chromium and chromium-driver packages")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in CHROMIUM_ARGS:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console errors, for failures
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    pytest.importorskip("flask")
    from werkzeug.serving import make_server

    from pyhermes.web import create_app

    root = tmp_path_factory.mktemp("browser") / "demo"
    make_corpus(root, 300, seed=0, scores_per_run=1000)  # the demo's generator and seed
    app = create_app(root)
    app.extensions["hermes"].wait()
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", root
    httpd.shutdown()
    thread.join(10)


@pytest.fixture(scope="module")
def writable_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A writable server (``hermes serve --writable``) on a small corpus of its own."""
    pytest.importorskip("flask")
    from werkzeug.serving import make_server

    from pyhermes.web import create_app

    root = tmp_path_factory.mktemp("curation") / "runs"
    make_corpus(root, 40, seed=4, scores_per_run=60)
    app = create_app(root, writable=True)
    app.extensions["hermes"].wait()
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", root
    httpd.shutdown()
    thread.join(10)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def only_local_resources(driver) -> None:
    """Everything the page loaded came from the server itself (no CDN, no web fonts)."""
    origin, loaded = driver.execute_script(
        "return [location.origin, performance.getEntriesByType('resource').map(e => e.name)];"
    )
    assert loaded and all(url.startswith(origin + "/") for url in loaded), loaded


def save(driver, shots: Path, name: str) -> Path:
    only_local_resources(driver)
    path = shots / f"{name}.png"
    assert driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    target = os.environ.get("HERMES_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)
    return path


def wait(driver, condition, timeout: float = 90):
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        TimeoutException,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (NoSuchElementException, StaleElementReferenceException)  # a page being replaced
    try:
        return WebDriverWait(driver, timeout, ignored_exceptions=ignored).until(condition)
    except TimeoutException:
        text = driver.execute_script("return document.body ? document.body.innerText : ''")
        errors = [entry["message"] for entry in driver.get_log("browser")]
        raise AssertionError(
            f"timed out on {driver.current_url}\nbrowser log: {errors}\npage:\n{text[:3000]}"
        ) from None


def then_new_page(driver, action) -> None:
    """Do ``action`` (a click or key that submits a form) and wait until the page it loads replaced this one.

    Without this, a wait for an element that both pages have could find it on the old page.
    The old page is marked with a script variable, which a new document does not have: asking
    a node of the old page whether it is stale can fail inside Chromium while the page changes
    ("Node with given id does not belong to the document"), a variable cannot.
    """
    driver.execute_script("window.__hermesOldPage = true;")
    action()

    def new_page_loaded(d) -> bool:
        try:
            return bool(d.execute_script(
                "return window.__hermesOldPage === undefined && document.readyState === 'complete';"
            ))
        except Exception:  # noqa: BLE001 - the page is being replaced: ask again
            return False

    wait(driver, new_page_loaded)


def count(driver) -> int:
    from selenium.webdriver.common.by import By

    return int(driver.find_element(By.ID, "count").get_attribute("data-total"))


def column(driver, name: str) -> list[str]:
    from selenium.webdriver.common.by import By

    headers = [th.text.rstrip(" ▲▼") for th in driver.find_elements(By.CSS_SELECTOR, "#runs th")]
    position = headers.index(name) + 1
    return [
        cell.text for cell in driver.find_elements(By.CSS_SELECTOR, f"#runs td:nth-child({position})")
    ]
