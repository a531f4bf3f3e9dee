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
from contextlib import contextmanager
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


@contextmanager
def serving(app: object) -> Iterator[str]:
    """Serve a Flask ``app`` on a free loopback port in a thread; yield its base URL."""
    from werkzeug.serving import make_server

    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    pytest.importorskip("flask")
    from pyhermes.web import create_app

    root = tmp_path_factory.mktemp("browser") / "demo"
    make_corpus(root, 300, seed=0, scores_per_run=1000)  # the demo's generator and seed
    app = create_app(root)
    app.extensions["hermes"].wait()
    with serving(app) as url:
        yield url, root


@pytest.fixture(scope="module")
def writable_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A writable server (``hermes serve --writable``) on a small corpus of its own."""
    pytest.importorskip("flask")
    from pyhermes.web import create_app

    root = tmp_path_factory.mktemp("curation") / "runs"
    make_corpus(root, 40, seed=4, scores_per_run=60)
    app = create_app(root, writable=True)
    app.extensions["hermes"].wait()
    with serving(app) as url:
        yield url, root


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


#: Messages of WebDriver errors that mean "the node asked about belongs to a page being
#: replaced or re-rendered": asking again (after finding the element afresh) is the cure.
TRANSIENT = (
    "does not belong to the document",
    "unhandled inspector error",
    "stale element",
    "no such element",
    "cannot find context",
    "execution context was destroyed",
    "target frame detached",
    "element is not attached",
    "is not clickable",
    "element click intercepted",
)


def transient(error: BaseException) -> bool:
    """Whether ``error`` (a WebDriver error) is one of :data:`TRANSIENT`: the page changed under it."""
    from selenium.common.exceptions import WebDriverException

    if not isinstance(error, WebDriverException):
        return False
    text = f"{type(error).__name__} {error.msg or ''}".lower()
    return "stale" in text or any(part in text for part in TRANSIENT)


def wait(driver, condition, timeout: float = 90):
    """Wait until ``condition(driver)`` is truthy; return its value.

    A condition that fails because the page changed under it (:func:`transient`) is asked
    again; any other error fails at once. On a timeout the error shows the URL, the
    browser's console and the page's text.
    """
    from selenium.common.exceptions import TimeoutException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def asked(d):
        try:
            return condition(d)
        except WebDriverException as error:
            if transient(error):
                return False
            raise

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(asked)
    except TimeoutException:
        text = driver.execute_script("return document.body ? document.body.innerText : ''")
        errors = [entry["message"] for entry in driver.get_log("browser")]
        raise AssertionError(
            f"timed out on {driver.current_url}\nbrowser log: {errors}\npage:\n{text[:3000]}"
        ) from None


def click(driver, locator: tuple[str, str], timeout: float = 60) -> None:
    """Click the element found by ``locator`` (``(By.ID, "run-query")``), found afresh each try.

    A click that fails before it reaches the page because the element went stale or
    Chromium lost its node while the page changed (:func:`transient`) is tried again
    with the element found again; a click that reached the page (a capturing listener
    saw it, or the page it was on is gone) is never repeated, so a click that submits
    a form submits it once.
    """
    from selenium.common.exceptions import WebDriverException

    def clicked(d) -> bool:
        d.execute_script(
            "window.__hermesClickSeen = false;"
            "document.addEventListener('click', () => { window.__hermesClickSeen = true; },"
            " {capture: true, once: true});"
        )
        try:
            d.find_element(*locator).click()
        except WebDriverException as error:
            if not transient(error):
                raise
            try:
                seen = d.execute_script("return window.__hermesClickSeen;")
            except WebDriverException:
                return True  # the page is being replaced: the click went through
            return seen is not False  # None: a new page, so the click went through
        return True

    wait(driver, clicked, timeout)


def then_new_page(driver, action) -> None:
    """Do ``action`` and wait until the page it loads replaced this one.

    ``action`` is a callable (a key that submits a form) or a locator, clicked with
    :func:`click`. Without this, a wait for an element that both pages have could find
    it on the old page. The old page is marked with a script variable, which a new
    document does not have: asking a node of the old page whether it is stale can
    fail inside Chromium while the page changes ("Node with given id does not belong
    to the document"), a variable cannot.
    """
    driver.execute_script("window.__hermesOldPage = true;")
    if isinstance(action, tuple):
        locator = action
        click(driver, locator)
    else:
        action()

    def new_page_loaded(d) -> bool:
        try:
            return bool(d.execute_script(
                "return window.__hermesOldPage === undefined && document.readyState === 'complete';"
            ))
        except Exception:  # noqa: BLE001 - the page is being replaced: ask again
            return False

    wait(driver, new_page_loaded)


def click_to_new_page(driver, locator: tuple[str, str]) -> None:
    """Click the element at ``locator`` (:func:`click`) and wait for the page it loads (:func:`then_new_page`)."""
    then_new_page(driver, locator)


def open_page(driver, url: str, ready) -> object:
    """Load ``url`` and wait until ``ready(driver)`` is truthy; return its value."""
    driver.get(url)
    return wait(driver, ready)


def attribute(driver, locator: tuple[str, str], name: str):
    """The attribute ``name`` of the element at ``locator``, found afresh (``None`` if unset)."""
    return driver.find_element(*locator).get_attribute(name)


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
