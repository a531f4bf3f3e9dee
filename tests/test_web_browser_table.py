"""The runs table of ``hermes serve`` in a real browser at 1280 x 900: it fits, its header and
identifiers stay in view while it scrolls, and the page follows the system's dark mode.

Measured with ``getBoundingClientRect`` in headless Chromium on the 300-run corpus of
``browser.py`` (the demo's generator and seed). Without a browser the tests skip, except
under ``CI=true``, where they fail.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# ruff: noqa: F811 - the fixtures imported from browser are arguments of the tests
from browser import browser, server, then_new_page, wait  # noqa: F401 - fixtures

WIDTH, HEIGHT = 1280, 900

#: The box of an element, relative to the viewport.
BOX = "const r = arguments[0].getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom];"


@pytest.fixture
def small_screen(browser) -> Iterator[object]:
    """The browser with a viewport of exactly 1280 x 900 CSS pixels (restored afterwards)."""
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
    )
    yield browser
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def _open(driver, url: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url)
    wait(driver, lambda d: d.execute_script("return document.readyState") == "complete"
         and d.find_elements(By.CSS_SELECTOR, "#runs tbody tr"))


def _header(driver, name: str):
    from selenium.webdriver.common.by import By

    for cell in driver.find_elements(By.CSS_SELECTOR, "#runs thead th"):
        if cell.text.rstrip(" ▲▼") == name:
            return cell
    raise AssertionError(f"no column {name!r}")


def test_the_summaries_are_in_view_at_1280_px(small_screen, server):
    from selenium.webdriver.common.by import By

    driver = small_screen
    base, _ = server
    _open(driver, base + "/runs")
    assert driver.execute_script("return [innerWidth, innerHeight]") == [WIDTH, HEIGHT]
    # The page itself does not scroll sideways; the table's box is within the viewport.
    assert driver.execute_script("return document.documentElement.scrollWidth") <= WIDTH
    scroller = driver.find_element(By.ID, "runs-scroll")
    assert driver.execute_script(BOX, scroller)[2] <= WIDTH
    # Every score summary is right after the identifier, visible without scrolling.
    headers = [cell.text.rstrip(" ▲▼") for cell in driver.find_elements(By.CSS_SELECTOR, "#runs thead th")]
    assert headers[1:6] == ["identifier", "final_mean", "best_window_mean", "max", "count"]
    for name in ("final_mean", "best_window_mean", "max", "count"):
        left, _, right, _ = driver.execute_script(BOX, _header(driver, name))
        assert 0 <= left < right <= WIDTH, (name, left, right)
    # Script and experiment are the same for every run: one line above the table, no columns.
    same = driver.find_element(By.ID, "same-for-all").text
    assert "script train_dqn" in same and "experiment sweep" in same
    assert "script_name" not in headers and "experiment_name" not in headers
    # Numbers are right-aligned, to one precision per column.
    position = headers.index("final_mean") + 1
    cells = driver.find_elements(By.CSS_SELECTOR, f"#runs tbody td:nth-child({position})")
    texts = [cell.text for cell in cells if cell.text]
    assert len({len(text.partition(".")[2]) for text in texts}) == 1
    assert {cell.value_of_css_property("text-align") for cell in cells} == {"right"}


def test_the_header_and_the_identifiers_stay_in_view_while_the_table_scrolls(small_screen, server):
    from selenium.webdriver.common.by import By

    driver = small_screen
    base, _ = server
    # Wide enough to scroll sideways at 1280 px: the whole argument line and the times.
    columns = "identifier,final_mean,args,start_time,end_time,commit_hash,script_name"
    _open(driver, f"{base}/runs?per_page=100&columns={columns}")
    scroller = driver.find_element(By.ID, "runs-scroll")
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", scroller)
    box_left, box_top, _, _ = driver.execute_script(BOX, scroller)
    header = _header(driver, "final_mean")
    first_cell = driver.find_element(By.CSS_SELECTOR, "#runs tbody tr:first-child td:nth-child(2)")
    header_top = driver.execute_script(BOX, header)[1]

    # Down: the rows move up under the header, which stays at the top of the box, in view.
    assert driver.execute_script("return arguments[0].scrollHeight > arguments[0].clientHeight", scroller)
    driver.execute_script("arguments[0].scrollTop = 1500;", scroller)
    wait(driver, lambda d: d.execute_script(BOX, first_cell)[1] < header_top - 500)
    top = driver.execute_script(BOX, header)[1]
    assert abs(top - header_top) <= 1 and 0 <= top < HEIGHT

    # Sideways: the other columns move left, the identifiers stay beside the selection boxes.
    assert driver.execute_script("return arguments[0].scrollWidth > arguments[0].clientWidth", scroller)
    driver.execute_script("arguments[0].scrollTop = 0;", scroller)
    wait(driver, lambda d: abs(d.execute_script(BOX, first_cell)[1] - header_top) < 100)
    identifier = driver.find_elements(By.CSS_SELECTOR, "#runs tbody td.identifier-cell")[10]
    select_box = driver.find_elements(By.CSS_SELECTOR, "#runs tbody td.select-cell")[10]
    before = driver.execute_script(BOX, identifier)[0]
    score = driver.execute_script(BOX, _header(driver, "final_mean"))[0]
    driver.execute_script("arguments[0].scrollLeft = arguments[0].scrollWidth;", scroller)
    wait(driver, lambda d: d.execute_script(BOX, _header(d, "final_mean"))[0] < score - 100)
    after = driver.execute_script(BOX, identifier)[0]
    assert abs(after - before) <= 1 and after >= box_left
    assert abs(driver.execute_script(BOX, select_box)[2] - after) <= 1  # side by side
    # The frozen cell is drawn over the cells scrolled under it.
    x, y = after + 5, driver.execute_script(BOX, identifier)[1] + 5
    hit = driver.execute_script("return document.elementFromPoint(arguments[0], arguments[1])"
                                ".closest('td')", x, y)
    assert hit is not None and "identifier-cell" in hit.get_attribute("class")


def test_an_error_is_above_the_table_which_stays(small_screen, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = small_screen
    base, _ = server
    _open(driver, base + "/runs")
    box = driver.find_element(By.ID, "where")
    then_new_page(driver, lambda: box.send_keys("--doubledqn and -lr < " + "(" * 200, Keys.ENTER))
    error = wait(driver, lambda d: d.find_element(By.ID, "error"))
    assert "^" in error.text
    left, top, right, bottom = driver.execute_script(BOX, error)
    assert right <= WIDTH  # wrapped, not clipped or widening the page
    assert error.value_of_css_property("white-space") == "pre-wrap"
    table = driver.find_element(By.ID, "runs")
    assert driver.execute_script(BOX, table)[1] > bottom  # the table is still there, below
    assert driver.find_element(By.ID, "fallback-note").is_displayed()


def test_dark_mode_follows_the_system(small_screen, server):
    driver = small_screen
    base, _ = server
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
    )
    _open(driver, base + "/runs")

    def lightness(script: str) -> float:
        red, green, blue = driver.execute_script(
            f"const c = getComputedStyle({script}).backgroundColor.match(/\\d+/g).map(Number);"
            "return c.slice(0, 3);"
        )
        return (red + green + blue) / 3

    assert lightness("document.body") < 60
    assert lightness("document.querySelector('#runs')") < 60
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "light"}]}
    )
    _open(driver, base + "/runs")
    assert lightness("document.body") > 200
