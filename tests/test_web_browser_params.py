"""The Params page (the hyperparameter view) in headless Chromium: it draws a parallel-coordinates
plot and a scatter from its data, and a change of the scatter's arg is kept in the URL.

Without a browser (``chromium`` and ``chromedriver``) or selenium the test skips with the
reason, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

# ruff: noqa: F811 - the fixtures imported from browser are arguments of the tests
from browser import (  # noqa: F401 - fixtures
    browser,
    only_local_resources,
    save,
    server,
    shots,
    then_new_page,
    wait,
)

#: Whether both charts of the page are drawn (set by params.js once plotly has drawn each).
DRAWN = (
    "return document.getElementById('parcoords')?.dataset.drawn === 'parcoords'"
    " && document.getElementById('scatter')?.dataset.drawn === 'scatter';"
)


def page_data(driver) -> dict:
    return json.loads(driver.execute_script("return document.getElementById('params-data').textContent;"))


def drawn(driver) -> dict:
    """What plotly drew: the parcoords' dimensions and the scatter's points and x title."""
    return driver.execute_script(
        """
        const parcoords = document.getElementById('parcoords');
        const scatter = document.getElementById('scatter');
        return {
          type: parcoords.data[0].type,
          dimensions: parcoords.data[0].dimensions.map((d) => d.label),
          axes: parcoords.querySelectorAll('g.y-axis').length,
          scatterType: scatter.data[0].type,
          points: scatter.querySelectorAll('.scatterlayer .point').length,
          xTitle: scatter.querySelector('.xtitle')?.textContent,
        };
        """
    )


def test_the_params_page_draws_parcoords_and_a_scatter(browser, server, shots):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser
    base, _ = server
    driver.get(base + "/params?where=--doubledqn")
    wait(driver, lambda d: d.execute_script(DRAWN))
    data = page_data(driver)
    assert data["matched"] == data["shown"] > 100 and data["message"] is None
    shown = drawn(driver)
    assert shown["type"] == "parcoords" and shown["scatterType"] == "scatter"
    assert shown["dimensions"] == [*(axis["key"] for axis in data["axes"]), data["summary"]]
    assert shown["axes"] == len(data["axes"]) + 1
    assert shown["points"] == data["shown"]
    assert shown["xTitle"] == data["x"]
    assert "--doubledqn" not in shown["dimensions"]  # the same for every run: not an axis
    only_local_resources(driver)
    save(driver, shots, "params")

    # Another arg for the scatter: the page reloads with it in the URL, and draws it.
    other = next(key for key in data["varying"] if key != data["x"])
    select = Select(driver.find_element(By.ID, "x-arg"))
    then_new_page(driver, lambda: select.select_by_value(other))
    wait(driver, lambda d: d.execute_script(DRAWN))
    assert parse_qs(urlparse(driver.current_url).query)["x"] == [other]
    assert parse_qs(urlparse(driver.current_url).query)["where"] == ["--doubledqn"]
    assert drawn(driver)["xTitle"] == other
    assert Select(driver.find_element(By.ID, "x-arg")).first_selected_option.get_attribute("value") == other

    # Another score: the colours and the last axis follow it.
    summary = Select(driver.find_element(By.ID, "summary"))
    then_new_page(driver, lambda: summary.select_by_value("max"))
    wait(driver, lambda d: d.execute_script(DRAWN))
    assert parse_qs(urlparse(driver.current_url).query)["summary"] == ["max"]
    assert drawn(driver)["dimensions"][-1] == "max"
