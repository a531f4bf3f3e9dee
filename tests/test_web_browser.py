"""hermes serve in a real browser: headless Chromium drives the running server.

Opens the runs page, types a filter, sorts, opens a run, selects three runs and
compares them (also grouped by ``-lr``), runs an SQL query; asserts what the pages
show and saves a screenshot of each page under the test's temp dir. With
``HERMES_SCREENSHOTS=DIR`` the screenshots are also copied to DIR (that is how
``docs/*.png`` are made: ``python scripts/screenshots.py``).

A second server, writable (``create_app(..., writable=True)``), on a corpus of its
own: two runs ticked are tagged through the page, the chips appear, a click on a
chip filters by the tag, and a run archived through the page (confirmed in its
dialog) leaves the table and the disk's catalogue.

Without a browser (``chromium`` and ``chromedriver``) or selenium the tests skip
with the reason, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

# ruff: noqa: F811 - the fixtures imported from browser are arguments of the tests
from browser import (  # noqa: F401 - fixtures
    attribute,
    browser,
    click,
    column,
    count,
    only_local_resources,
    save,
    server,
    shots,
    then_new_page,
    wait,
    writable_server,
)

from pyhermes import Experiment, rundir


def test_browse_filter_sort_open_compare_and_query(browser, server, shots):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = browser
    base, root = server
    on_disk = Experiment.load_all(root / "experiments" / "train_dqn" / "sweep", index=False)

    # The runs page: every run counted, one page shown.
    driver.get(base + "/")
    wait(driver, lambda d: d.find_elements(By.ID, "runs") and d.find_elements(By.ID, "count"))
    assert count(driver) == 300
    assert len(driver.find_elements(By.CSS_SELECTOR, "a.run-link")) == 50

    # A bad filter: the caret message in the page.
    box = driver.find_element(By.ID, "where")
    box.send_keys("--doubledqn and -lr <")
    then_new_page(driver, lambda: box.send_keys(Keys.ENTER))
    error = wait(driver, lambda d: d.find_element(By.ID, "error").text)
    assert "at position" in error and "^" in error

    # Type a filter.
    expression = "--doubledqn and -gamma == 0.99"
    box = driver.find_element(By.ID, "where")
    box.clear()
    box.send_keys(expression)
    then_new_page(driver, lambda: box.send_keys(Keys.ENTER))
    wait(driver, lambda d: d.find_elements(By.ID, "count"))
    expected = on_disk.where(expression)
    assert count(driver) == len(expected) > 0
    assert parse_qs(urlparse(driver.current_url).query)["where"] == [expression]

    # Sort by final_mean: a click sorts ascending, a second click descending.
    header = 'a.sort[data-column="final_mean"]'
    then_new_page(driver, (By.CSS_SELECTOR, header))
    wait(driver, lambda d: "▲" in d.find_element(By.CSS_SELECTOR, header).text)
    then_new_page(driver, (By.CSS_SELECTOR, header))
    wait(driver, lambda d: "▼" in d.find_element(By.CSS_SELECTOR, header).text)
    assert "final_mean%3Adesc" in driver.current_url
    best = expected.sort_by_score("final_mean")
    assert column(driver, "identifier")[:5] == [run.identifier for run in best[:5]]
    shown = [float(value) for value in column(driver, "final_mean") if value]
    assert shown == sorted(shown, reverse=True)
    assert parse_qs(urlparse(driver.current_url).query)["where"] == [expression]  # state kept
    save(driver, shots, "runs")

    # Open the best run.
    runs_url = driver.current_url
    then_new_page(driver, (By.CSS_SELECTOR, "a.run-link"))
    title = wait(driver, lambda d: d.find_element(By.ID, "run-title").text)
    assert title == best[0].identifier
    wait(driver, lambda d: d.find_element(By.ID, "curve-chart").get_attribute("data-drawn"))
    assert driver.find_elements(By.CSS_SELECTOR, "#curve-chart .main-svg")
    table = driver.find_element(By.ID, "table-args").text
    for line in best[0].exec_arg_lines:
        assert line in table
    assert "hermes.info" in driver.find_element(By.ID, "table-files").text
    save(driver, shots, "run")

    # Select three runs and compare them.
    driver.get(runs_url)
    boxes = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "input.select-run"))
    chosen = [box.get_attribute("value") for box in boxes[:3]]
    for identifier in chosen:
        _tick(driver, identifier)
    then_new_page(driver, (By.ID, "compare-selected"))
    chart = (By.ID, "compare-chart")
    wait(driver, lambda d: attribute(d, chart, "data-drawn"))
    assert attribute(driver, chart, "data-drawn") == "3"
    assert sorted(parse_qs(urlparse(driver.current_url).query)["run"]) == sorted(chosen)
    legend = driver.find_element(By.CSS_SELECTOR, "#compare-chart .legend").text
    for identifier in chosen:
        assert identifier in legend

    # Compare a whole filter grouped by -lr: one line per value, n in the legend.
    driver.get(base + "/compare?where=--doubledqn&group_by=-lr&window=50")
    wait(driver, lambda d: attribute(d, chart, "data-drawn"))
    lrs = {run.exec_args_dict["-lr"] for run in on_disk.where("--doubledqn")}
    assert attribute(driver, chart, "data-drawn") == str(len(lrs))
    assert "(n=" in driver.find_element(By.CSS_SELECTOR, "#compare-chart .legend").text
    summary = driver.find_elements(By.CSS_SELECTOR, "#compare-summary tbody tr")
    assert len(summary) == len(lrs)
    cells = [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in summary]
    assert sum(int(row[1]) for row in cells) == len(on_disk.where("--doubledqn"))
    finals = [float(row[3]) for row in cells]
    assert finals == sorted(finals, reverse=True)  # the winning setting first
    save(driver, shots, "compare")

    # SQL: an example one click away, then a query typed in.
    then_new_page(driver, (By.ID, "nav-sql"))
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "a.example"))
    then_new_page(driver, (By.CSS_SELECTOR, "a.example"))
    wait(driver, lambda d: d.find_element(By.ID, "sql-result"))
    assert len(driver.find_elements(By.CSS_SELECTOR, "#sql-result tbody tr")) == 10
    query = driver.find_element(By.ID, "query")
    query.clear()
    query.send_keys(
        "SELECT a.value AS lr, COUNT(*) AS runs, AVG(r.final_mean) AS mean_final "
        "FROM runs r JOIN run_args a ON a.run_id = r.id AND a.key = '-lr' "
        "GROUP BY a.value ORDER BY mean_final DESC"
    )
    then_new_page(driver, (By.ID, "run-query"))
    wait(driver, lambda d: d.find_element(By.ID, "sql-result"))
    rows = driver.find_elements(By.CSS_SELECTOR, "#sql-result tbody tr")
    lr_counts: dict[str, int] = {}
    for run in on_disk:
        key = str(run.exec_args_dict["-lr"])
        lr_counts[key] = lr_counts.get(key, 0) + 1
    assert len(rows) == len(lr_counts)
    assert sum(int(row.find_elements(By.TAG_NAME, "td")[1].text) for row in rows) == 300
    save(driver, shots, "sql")

    # A write is refused in the page.
    query = driver.find_element(By.ID, "query")
    query.clear()
    query.send_keys("DELETE FROM hermes_run")
    then_new_page(driver, (By.ID, "run-query"))
    assert "refused" in wait(driver, lambda d: d.find_element(By.ID, "error").text)
    assert len(list(shots.glob("*.png"))) == 4


def _tick(driver, identifier: str) -> None:
    """Tick the selection box of the run ``identifier`` (found afresh) and wait until it is ticked."""
    from selenium.webdriver.common.by import By

    selector = f'input.select-run[value="{identifier}"]'
    wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, selector))
    click(driver, (By.CSS_SELECTOR, selector))
    wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, selector).is_selected())


def _chip_rows(driver, tag: str) -> list[str]:
    """The identifiers of the rows of the runs table showing the chip of ``tag``."""
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
    return sorted(
        row.find_element(By.CSS_SELECTOR, "a.run-link").text
        for row in rows
        if any(chip.get_attribute("data-tag") == tag
               for chip in row.find_elements(By.CSS_SELECTOR, "a.tag-chip"))
    )


def test_tag_filter_by_chip_and_archive_through_the_page(browser, writable_server, shots):
    from selenium.webdriver.common.by import By

    (shots / "curation").mkdir(exist_ok=True)

    driver = browser
    base, root = writable_server
    on_disk = Experiment.load_all(root / "experiments" / "train_dqn" / "sweep", index=False)
    finished = sorted(run.identifier for run in on_disk if run.is_finished)  # none is refused as running
    by_identifier = {run.identifier: run for run in on_disk}
    tag = "paper <i>v2"  # user text (a tag holds no slash): shown as typed, never as HTML

    # The finished runs, oldest identifier first; the curation bar is there (writable).
    driver.get(base + "/runs?where=finished&sort=identifier&per_page=100")
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "input.select-run"))
    assert count(driver) == len(finished)
    assert driver.find_element(By.ID, "selected-count").text == "none ticked"
    chosen = finished[:2]

    # Tick two runs and add a tag: the page reloads with the chips and says what changed.
    for identifier in chosen:
        _tick(driver, identifier)
    wait(driver, lambda d: d.find_element(By.ID, "selected-count").text == "2 ticked")
    driver.find_element(By.ID, "tag-input").send_keys(tag)
    then_new_page(driver, (By.ID, "add-tag"))
    wait(driver, lambda d: _chip_rows(d, tag) == sorted(chosen))
    status = wait(driver, lambda d: d.find_element(By.ID, "curation-status"))
    assert "2 of 2 run(s) changed" in status.text
    chip = driver.find_element(By.CSS_SELECTOR, "#runs a.tag-chip")
    assert chip.text == tag and not driver.find_elements(By.CSS_SELECTOR, "#runs a.tag-chip i")
    for identifier in chosen:
        assert rundir.read_tags(by_identifier[identifier].path_to_experiment) == [tag]
    assert _chip_rows(driver, tag) == sorted(chosen)  # and no other row has it
    only_local_resources(driver)
    assert driver.save_screenshot(str(shots / "curation" / "tagged.png"))  # not for the docs

    # A click on a chip filters the table by the tag.
    then_new_page(driver, (By.CSS_SELECTOR, "#runs a.tag-chip"))
    wait(driver, lambda d: d.find_elements(By.ID, "count"))
    assert count(driver) == 2
    where = parse_qs(urlparse(driver.current_url).query)["where"]
    assert where == [f'tag = "{tag}"']
    assert driver.find_element(By.ID, "where").get_attribute("value") == where[0]
    links = [link.text for link in driver.find_elements(By.CSS_SELECTOR, "#runs a.run-link")]
    assert links == sorted(chosen)  # the sort of the view is kept

    # Archive one of them: a dialog asks first; then the run leaves the table and the tree.
    gone, kept = chosen
    _tick(driver, gone)
    click(driver, (By.ID, "archive-selected"))
    wait(driver, lambda d: d.find_element(By.ID, "archive-dialog").get_attribute("open") is not None)
    assert "1 run(s)" in driver.find_element(By.ID, "archive-question").text
    then_new_page(driver, (By.ID, "archive-confirm"))
    wait(driver, lambda d: d.find_elements(By.ID, "count"))
    assert count(driver) == 1
    assert _chip_rows(driver, tag) == [kept]
    assert not driver.find_elements(By.CSS_SELECTOR, f'input.select-run[value="{gone}"]')
    assert "1 run(s) archived" in driver.find_element(By.ID, "curation-status").text
    source = by_identifier[gone].path_to_experiment
    assert not source.exists()
    assert (root / ".archive" / source.relative_to(root) / rundir.TAGS_FILE).is_file()

    # The whole table counts one run fewer.
    driver.get(base + "/runs")
    wait(driver, lambda d: d.find_elements(By.ID, "count"))
    assert count(driver) == len(on_disk) - 1
