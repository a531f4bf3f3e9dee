"""The Runs page answers with its rows before its match count: the count follows.

At a million runs a filtered count scans for a second where the page's rows take
milliseconds; the first request after start must not wait for it. Here the count is
held back (a gate in front of the real count, released by the test) to check that the
page answers without it, says so, that ``/api/count`` then gives it, that the page
after it is counted, and, in a real Chromium, that the page fills the count in.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from urllib.parse import quote

import pytest

# ruff: noqa: F811 - the fixtures imported from browser are arguments of the tests
from browser import browser, serving, wait  # noqa: F401 - fixtures
from legacy import corpus_fixture

from pyhermes import Catalog, present
from pyhermes.index.query.runs import RunQueries

pytest.importorskip("flask")

WHERE = "--doubledqn and -lr < 0.01"


corpus = corpus_fixture("count", 120, seed=4, scores_per_run=20)


@pytest.fixture
def held_count(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Every count of the index waits for the event the test sets (at most 60 s)."""
    release = threading.Event()
    real_count = RunQueries.count

    def count(self, where=None, *, alone=False):
        release.wait(60)
        return real_count(self, where, alone=alone)

    present.forget_counts()
    monkeypatch.setattr(RunQueries, "count", count)
    yield release
    release.set()
    present.forget_counts()


def test_a_page_is_given_before_its_count_and_the_count_follows(corpus, held_count):
    catalog = Catalog.open(corpus)
    page = present.runs_page(catalog, where=WHERE, per_page=10, count_wait=0.05)
    assert not page.counted and len(page.rows) == 10 and page.more
    assert page.total == 10 and page.pages == 2 and page.same_for_all == {}
    assert page.as_dict()["counted"] is False
    held_count.set()
    expected = len(catalog.find(WHERE))
    assert present.count_of(catalog, WHERE) == expected
    again = present.runs_page(catalog, where=WHERE, per_page=10, count_wait=0.05)
    assert again.counted and again.total == expected and again.pages == -(-expected // 10)


def test_a_page_past_the_end_waits_for_the_count_to_be_the_last(corpus, held_count):
    catalog = Catalog.open(corpus)
    threading.Timer(0.3, held_count.set).start()
    page = present.runs_page(catalog, where=WHERE, per_page=10, page=10_000, count_wait=0.05)
    expected = len(catalog.find(WHERE))
    assert page.counted and page.page == -(-expected // 10) and page.total == expected


def test_the_runs_page_says_it_is_counting_and_api_count_answers(corpus, held_count):
    from pyhermes.web import create_app

    app = create_app(corpus)
    app.extensions["hermes"].wait()
    client = app.test_client()
    page = client.get(f"/runs?where={quote(WHERE)}&per_page=10").get_data(as_text=True)
    assert "counting the runs…" in page and 'data-count-url="/api/count?where=' in page
    assert page.count('class="select-run"') == 10  # the rows came without the count
    held_count.set()
    answer = client.get(f"/api/count?where={quote(WHERE)}")
    expected = len(Catalog.open(corpus).find(WHERE))
    assert answer.status_code == 200 and answer.get_json() == {"total": expected}
    counted = client.get(f"/runs?where={quote(WHERE)}&per_page=10").get_data(as_text=True)
    assert "counting the runs" not in counted and f"{expected:,} runs match" in counted
    bad = client.get("/api/count?where=" + quote("-lr <"))
    assert bad.status_code == 400 and "error" in bad.get_json()


def test_the_browser_fills_the_count_in(corpus, held_count, browser):
    from selenium.webdriver.common.by import By

    from pyhermes.web import create_app

    app = create_app(corpus)
    app.extensions["hermes"].wait()
    expected = len(Catalog.open(corpus).find(WHERE))
    with serving(app) as url:
        threading.Timer(1.0, held_count.set).start()
        browser.get(f"{url}/runs?where={quote(WHERE)}&per_page=10")
        wait(browser, lambda d: d.find_element(By.ID, "count").get_attribute("data-total") == str(expected))
        assert browser.find_element(By.ID, "count").text == f"{expected:,} runs match"
        assert browser.find_element(By.ID, "page-count").text == f"{-(-expected // 10):,}"


def test_columns_the_same_for_all_follow_like_the_count(corpus, monkeypatch):
    """Not found within the page's wait, the page folds nothing; found later, the next page folds."""
    release = threading.Event()
    real = RunQueries.same_for_all

    def same_for_all(self, *args, **kwargs):
        release.wait(60)
        return real(self, *args, **kwargs)

    present.forget_counts()
    monkeypatch.setattr(RunQueries, "same_for_all", same_for_all)
    catalog = Catalog.open(corpus)
    try:
        first = present.runs_page(catalog, per_page=10, count_wait=0.05)
        assert first.counted and first.same_for_all == {} and "script_name" in first.columns
    finally:
        release.set()
    later = present.runs_page(catalog, per_page=10, count_wait=5)
    assert later.same_for_all.get("script_name") == "train_dqn"
    present.forget_counts()
