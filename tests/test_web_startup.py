"""An honest start of ``hermes serve``: until the served tree is indexed once, no page counts runs.

A real werkzeug server in a thread serves a tree of 2,000 small runs whose index does
not exist yet, and is asked at once: every page is the "indexing" page (a 503 with the
progress), every ``/api/`` data endpoint a JSON 503 with ``Retry-After``, ``/static/``
and ``/api/status`` answer; no answer ever shows a count other than the full one.
A sync that pauses at a chosen run (a :class:`SyncProgress` that waits) lets the tests
see the progress ("indexing: 500 of 2,000 runs read") at a known point. A refresh of a
built index holds nothing back; a failed first build keeps the pages honest until a
retry succeeds; in headless Chromium the indexing page turns into the runs page by
itself. Below the web app: a sync tells a :class:`SyncProgress` how many runs it reads.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# ruff: noqa: F811 - the fixtures imported from browser are arguments of the tests
from browser import browser, serving, wait  # noqa: F401 - fixtures
from legacy import make_corpus

from pyhermes.index.sync.progress import SyncProgress

pytest.importorskip("flask")

RUNS = 2000  # from this many runs on, a build reads them in worker processes: the real path
PAUSE_AT = 500


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("startup") / "runs"
    make_corpus(root, RUNS, seed=5, scores_per_run=5)
    return root


def runs_on_disk(root: Path) -> int:
    return sum(1 for _ in root.glob("experiments/*/*/*/hermes.info"))


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    yield
    from pyhermes.index.store.engine import dispose_engines

    dispose_engines()


class Pausing(SyncProgress):
    """A sync's progress that stops the sync when it reaches run ``at`` until released."""

    at = PAUSE_AT
    reached = threading.Event()
    release = threading.Event()

    def __call__(self, done: int) -> None:
        super().__call__(done)
        if done == self.at:
            type(self).reached.set()
            type(self).release.wait(120)


@pytest.fixture
def pausing(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Pausing]]:
    """Every sync started by a served app from now on pauses at run :attr:`Pausing.at`."""
    import pyhermes.web.state as state_module

    Pausing.reached = threading.Event()
    Pausing.release = threading.Event()
    monkeypatch.setattr(state_module, "SyncProgress", Pausing)
    yield Pausing
    Pausing.release.set()  # never leave a sync thread waiting


@contextmanager
def served(root: Path, index: Path, **options) -> Iterator[tuple[str, object]]:
    """Serve ``root`` (index file ``index``) on a free port; yield (base URL, HermesApp)."""
    from pyhermes.web import create_app

    app = create_app(root, index=str(index), **options)
    state = app.extensions["hermes"]
    try:
        with serving(app) as url:
            try:
                yield url, state
            finally:
                Pausing.release.set()  # a test that failed midway leaves no sync waiting
    finally:
        state.wait(120)


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    """GET ``url``: (status, headers, body), whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def post(url: str) -> int:
    request = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=60) as answer:
        return answer.status


def check_held(base: str, expected_runs: int) -> dict:
    """Ask every kind of URL once while the index may be building; check that each answer is
    either the "indexing" one or the complete one. Return the status seen first."""
    status_code, _, body = get(base + "/api/status")
    assert status_code == 200
    status = json.loads(body)

    code, headers, body = get(base + "/api/runs?per_page=5")
    if code == 503:
        answer = json.loads(body)
        assert answer["indexing"] is True and answer["error"].startswith("indexing")
        assert headers["Content-Type"].startswith("application/json")
        assert int(headers["Retry-After"]) > 0
    else:
        assert code == 200 and json.loads(body)["total"] == expected_runs

    code, headers, body = get(base + "/runs")
    text = body.decode()
    if code == 503:
        assert 'id="indexing"' in text and "indexing" in text and int(headers["Retry-After"]) > 0
        assert 'id="count"' not in text and "runs match" not in text and 'id="runs"' not in text
    else:
        assert code == 200 and f'data-total="{expected_runs}"' in text

    for url in ("/api/curves?where=--doubledqn", "/compare?where=--doubledqn", "/sql"):
        code, _, _ = get(base + url)
        assert code in (200, 503), url
    assert get(base + "/static/status.js")[0] == 200
    assert get(base + "/nosuchpage")[0] == 404  # a URL no route serves is not held back
    return status


def test_a_first_build_says_indexing_with_progress_until_done(tree, tmp_path, pausing):
    expected = runs_on_disk(tree)
    with served(tree, tmp_path / "index.sqlite") as (base, state):
        # Asked at once, before a run is read: every page and data endpoint says "indexing".
        status = check_held(base, expected)
        assert status["ready"] is False
        code, headers, body = get(base + "/api/runs")
        assert code == 503 and json.loads(body)["indexing"] is True
        code, _, body = get(base + "/")  # its redirect to /runs followed
        assert code == 503 and b'id="indexing"' in body

        # Paused at a known run: the progress is in /api/status and on every page.
        assert pausing.reached.wait(120)
        status = json.loads(get(base + "/api/status")[2])
        assert status["indexing"] is True and status["running"] is True and status["ready"] is False
        assert (status["phase"], status["done"], status["total"]) == ("reading", PAUSE_AT, expected)
        assert status["message"] == f"indexing: {PAUSE_AT:,} of {expected:,} runs read"
        for page in ("/runs", "/compare", "/sql", "/run/experiments/x"):
            code, headers, body = get(base + page)
            assert code == 503, page
            assert f"indexing: {PAUSE_AT:,} of {expected:,} runs read" in body.decode(), page
        code, headers, body = get(base + "/api/runs")
        answer = json.loads(body)
        assert code == 503 and (answer["done"], answer["total"]) == (PAUSE_AT, expected)
        assert get(base + "/api/sql?q=SELECT%201")[0] == 503
        check_held(base, expected)

        # Let it go: asked all the while, nothing ever shows a partial count.
        pausing.release.set()
        deadline = time.monotonic() + 180
        while not json.loads(get(base + "/api/status")[2])["ready"]:
            check_held(base, expected)
            assert time.monotonic() < deadline, "the build did not finish"
        status = json.loads(get(base + "/api/status")[2])
        assert status["indexing"] is False and status["report"]["added"] == expected
        code, _, body = get(base + "/api/runs?per_page=5")
        assert code == 200 and json.loads(body)["total"] == expected
        code, _, body = get(base + "/runs")
        assert code == 200 and f'data-total="{expected}"' in body.decode()


def test_asked_at_once_no_answer_ever_shows_a_partial_count(tree, tmp_path):
    """The build left alone (no pause), as ``hermes serve`` runs it: asked in a tight loop."""
    expected = runs_on_disk(tree)
    with served(tree, tmp_path / "index.sqlite") as (base, state):
        held = 0
        deadline = time.monotonic() + 180
        while True:
            ready_before = state.ready
            check_held(base, expected)
            code, _, body = get(base + "/api/runs?per_page=1")
            if code == 503:
                held += 1
            else:
                assert json.loads(body)["total"] == expected
            if ready_before:
                break
            assert time.monotonic() < deadline, "the build did not finish"
        assert held >= 1  # the first answers came while the build ran


def test_a_refresh_of_a_built_index_holds_nothing_back(tree, tmp_path, pausing, monkeypatch):
    index = tmp_path / "index.sqlite"
    expected = runs_on_disk(tree)
    with served(tree, index) as (base, state):  # the first build, paused then let go
        assert pausing.reached.wait(120)
        pausing.release.set()
        state.wait(180)
    assert state.ready

    # A new server on the built index is ready at once, even while its own sync runs.
    make_corpus(tree, 3, seed=6, scores_per_run=5, experiment="added")
    pausing.reached.clear()
    pausing.release.clear()
    pausing.at = 1
    try:
        with served(tree, index) as (base, state):
            assert state.ready
            code, _, body = get(base + "/api/runs?per_page=1")
            assert code == 200 and json.loads(body)["total"] == expected  # the last complete state
            assert pausing.reached.wait(120)  # its sync reads the new runs
            status = json.loads(get(base + "/api/status")[2])
            assert status["running"] is True and status["indexing"] is False and status["ready"] is True
            assert (status["phase"], status["done"], status["total"]) == ("reading", 1, 3)
            assert status["message"] == "syncing: 1 of 3 runs read"
            code, _, body = get(base + "/runs")
            assert code == 200 and f'data-total="{expected}"' in body.decode()
            pausing.release.set()
            state.wait(120)
            code, _, body = get(base + "/api/runs?per_page=1")
            assert code == 200 and json.loads(body)["total"] == expected + 3
            status = json.loads(get(base + "/api/status")[2])
            assert status["running"] is False and status["phase"] is None and status["message"] == ""

            # A sync with more runs to read than it writes at once (HOLD_FROM) holds pages back:
            # its slices would show partial counts.
            import pyhermes.web.state as state_module

            monkeypatch.setattr(state_module, "HOLD_FROM", 2)
            make_corpus(tree, 3, seed=7, scores_per_run=5, experiment="added-more")
            pausing.reached.clear()
            pausing.release.clear()
            assert post(base + "/api/refresh") == 200
            assert pausing.reached.wait(120)
            status = json.loads(get(base + "/api/status")[2])
            assert status["indexing"] is True and status["ready"] is True
            assert status["message"] == "indexing: 1 of 3 runs read"
            code, _, body = get(base + "/runs")
            assert code == 503 and "indexing: 1 of 3 runs read" in body.decode()
            assert get(base + "/api/runs")[0] == 503
            pausing.release.set()
            state.wait(120)
            code, _, body = get(base + "/api/runs?per_page=1")
            assert code == 200 and json.loads(body)["total"] == expected + 6
    finally:
        pausing.at = PAUSE_AT


def test_a_failed_first_build_keeps_pages_honest_until_a_retry(tree, tmp_path, monkeypatch):
    from pyhermes.index.run_index import RunIndex

    real_sync = RunIndex.sync
    failures = iter([OSError("disk full")])

    def failing_once(self, *args, **kwargs):
        for error in failures:
            raise error
        return real_sync(self, *args, **kwargs)

    monkeypatch.setattr(RunIndex, "sync", failing_once)
    expected = runs_on_disk(tree)
    with served(tree, tmp_path / "index.sqlite") as (base, state):
        state.wait(60)
        status = json.loads(get(base + "/api/status")[2])
        assert status["ready"] is False and status["running"] is False
        assert status["message"] == "indexing failed: OSError: disk full"
        code, _, body = get(base + "/runs")
        assert code == 503 and "indexing failed: OSError: disk full" in body.decode()
        code, _, body = get(base + "/api/runs")
        assert code == 503 and json.loads(body)["error"] == "indexing failed: OSError: disk full"

        assert post(base + "/api/refresh") == 200  # the retry (the page's refresh button)
        state.wait(180)
        assert state.ready
        code, _, body = get(base + "/api/runs?per_page=1")
        assert code == 200 and json.loads(body)["total"] == expected


def test_the_indexing_page_turns_into_the_page_asked_for(browser, tree, tmp_path, pausing):
    from selenium.webdriver.common.by import By

    driver = browser
    expected = runs_on_disk(tree)
    with served(tree, tmp_path / "index.sqlite") as (base, state):
        assert pausing.reached.wait(120)
        driver.get(base + "/runs?where=--doubledqn")
        line = wait(driver, lambda d: d.find_element(By.ID, "indexing-progress").text)
        assert line == f"indexing: {PAUSE_AT:,} of {expected:,} runs read"
        header = wait(driver, lambda d: d.find_element(By.ID, "sync-status").text)
        assert header == f"indexing {PAUSE_AT:,} of {expected:,}"
        assert not driver.find_elements(By.ID, "count")
        pausing.release.set()
        # No reload by the test: status.js reloads the page once the index is ready.
        wait(driver, lambda d: d.find_elements(By.ID, "count"), timeout=180)
        assert state.ready
        total = int(driver.find_element(By.ID, "count").get_attribute("data-total"))
        code, _, body = get(base + "/api/runs?where=--doubledqn&per_page=1")
        assert total == json.loads(body)["total"] > 0
        assert "where=--doubledqn" in driver.current_url


def test_a_sync_reports_how_many_runs_it_reads(tmp_path):
    from pyhermes import Catalog

    root = tmp_path / "runs"
    make_corpus(root, 30, seed=8, scores_per_run=5)
    catalog = Catalog.open_and_sync(root, sync="quick", defer=True)
    assert not catalog.has_synced(root)
    progress = SyncProgress()
    assert progress.snapshot()["phase"] == "waiting"
    report = catalog.sync(root, mode="quick", progress=progress, warn=False)
    assert report.added == 30 and catalog.has_synced(root)
    assert {key: progress.snapshot()[key] for key in ("phase", "done", "total")} == {
        "phase": "writing", "done": 30, "total": 30,
    }

    counted: list[int] = []  # any other callable only counts runs, as before
    make_corpus(root, 2, seed=9, scores_per_run=5, experiment="more")
    catalog.sync(root, mode="quick", progress=counted.append, warn=False)
    assert counted == [1, 2]

    again = SyncProgress()
    catalog.sync(root, mode="quick", progress=again, warn=False)
    assert (again.snapshot()["total"], again.snapshot()["done"]) == (0, 0)  # nothing to read
