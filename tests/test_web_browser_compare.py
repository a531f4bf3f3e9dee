"""The Compare page in a real browser: it draws, hover names are whole, swatches match the lines,
one order everywhere, the args table, ungrouped sampling with its note, add and remove runs.

Headless Chromium drives a running server on the demo corpus (300 runs); without a
browser or selenium the tests skip (fail under ``CI=true``), as ``test_web_browser.py``.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

# ruff: noqa: F811 - the fixtures imported from browser are arguments of the tests
from browser import (  # noqa: F401 - fixtures
    browser,
    only_local_resources,
    server,
    then_new_page,
    wait,
)

from pyhermes import Experiment


def _drawn(driver, chart_id: str = "compare-chart") -> int:
    from selenium.webdriver.common.by import By

    wait(driver, lambda d: d.find_element(By.ID, chart_id).get_attribute("data-drawn"))
    return int(driver.find_element(By.ID, chart_id).get_attribute("data-drawn"))


def _line_colours(driver) -> list[str]:
    """The colour of each named line of the chart, in the legend's order."""
    return driver.execute_script(
        "const chart = document.getElementById('compare-chart');"
        "return chart.data.filter(t => t.showlegend !== false && !t.fill).map(t => t.line.color);"
    )


def _swatches(driver, selector: str) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), s => s.style.background);",
        selector,
    )


def _hex_to_rgb(colour: str) -> str:
    value = int(colour[1:], 16)
    return f"rgb({value >> 16 & 255}, {value >> 8 & 255}, {value & 255})"


def test_compare_all_matching_draws_grouped_lines_in_one_order(browser, server):
    from selenium.webdriver.common.by import By

    driver = browser
    base, root = server
    on_disk = Experiment.load_all(root / "experiments" / "train_dqn" / "sweep", index=False)
    runs = on_disk.where("--doubledqn")

    driver.get(base + "/compare?where=--doubledqn&window=50")
    lines = _drawn(driver)
    box = driver.find_element(By.ID, "group-by").get_attribute("value")
    assert box and "seed" not in box  # grouped by the args that differ, except the seed
    assert lines >= 2
    only_local_resources(driver)

    # Whole names in hover, one per line.
    layout = driver.execute_script("return document.getElementById('compare-chart').layout;")
    assert layout["hoverlabel"]["namelength"] == -1
    names = driver.execute_script(
        "return document.getElementById('compare-chart').data"
        ".filter(t => t.showlegend !== false && !t.fill).map(t => t.name);"
    )
    assert len(names) == lines and max(len(name) for name in names) > 15

    # The summary: one row per line, a swatch of the line's colour, best final first.
    rows = driver.find_elements(By.CSS_SELECTOR, "#compare-summary tbody tr")
    assert len(rows) == lines
    colours = [_hex_to_rgb(colour) for colour in _line_colours(driver)]
    assert _swatches(driver, "#compare-summary .swatch") == colours
    cells = [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    assert [row[0] for row in cells] == names  # the legend's order
    assert sum(int(row[1]) for row in cells) == len(runs)
    finals = [float(row[3]) for row in cells]
    assert finals == sorted(finals, reverse=True)

    # The args table: the same order, the differing args highlighted.
    arg_rows = driver.find_elements(By.CSS_SELECTOR, "#compare-args-table tbody tr")
    assert [row.find_element(By.TAG_NAME, "td").text for row in arg_rows] == names
    differing = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#compare-args-table th.differs")]
    assert set(box.split(",")) <= set(differing)

    # The runs table in the lines' order, each run with its line's swatch.
    wait(driver, lambda d: d.find_element(By.ID, "runs").get_attribute("data-ordered"))
    positions = driver.execute_script(
        "return Array.from(document.querySelectorAll('#runs tbody tr'), r => Number(r.dataset.line));"
    )
    assert positions == sorted(positions)
    first_row_swatch = _swatches(driver, "#runs tbody tr:first-child .swatch")
    assert first_row_swatch == colours[:1]


def test_ungrouped_is_a_noted_sample_and_runs_are_added_and_removed(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = browser
    base, root = server
    on_disk = Experiment.load_all(root / "experiments" / "train_dqn" / "sweep", index=False)

    # Every run, one line each: a sample of 100, said in a visible note.
    driver.get(base + "/compare?where=")
    _drawn(driver)
    then_new_page(driver, driver.find_element(By.ID, "ungrouped").click)
    assert parse_qs(urlparse(driver.current_url).query, keep_blank_values=True)["group_by"] == [""]
    assert _drawn(driver) == 100
    note = driver.find_element(By.ID, "compare-note")
    assert note.is_displayed() and f"100 of {len(on_disk)}" in note.text

    # Three runs chosen, one removed, one added back by its identifier.
    chosen = [run.identifier for run in on_disk[:3]]
    driver.get(base + "/compare?runs=" + ",".join(chosen) + "&columns=identifier,-lr,final_mean")
    assert _drawn(driver) == 3
    headers = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#runs th")]
    assert headers == ["identifier", "-lr", "final_mean"]
    remove = driver.find_element(
        By.CSS_SELECTOR, f'.run-chip[data-identifier="{chosen[0]}"] a.remove-run'
    )
    then_new_page(driver, remove.click)
    assert _drawn(driver) == 2
    assert chosen[0] not in driver.find_element(By.ID, "run-chips").text
    box = driver.find_element(By.ID, "add-runs")
    then_new_page(driver, lambda: box.send_keys(chosen[0], Keys.ENTER))
    assert _drawn(driver) == 3
    assert sorted(parse_qs(urlparse(driver.current_url).query)["runs"][0].split(",")) == sorted(chosen)
    headers = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#runs th")]
    assert headers == ["identifier", "-lr", "final_mean"]  # the columns stay
