"""The HTML leaderboard in a real headless browser (Debian's chromium through its chromedriver, fully offline):
the page renders (screenshot), the table and the plots are there and decoded, and clicking a header sorts.

Selenium is given the driver's path, so Selenium Manager never runs (it would try to download a driver).
Skipped when chromium, chromedriver or selenium are missing (`make browser` installs the first two).
"""

from __future__ import annotations

import io
import shutil

import pytest
from PIL import Image

from fairpriv.report import plots
from fairpriv.report.html import render_html
from fairpriv.report.model import Column, Leaderboard, Row, Value

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromedriver: `make browser` (apt-get install -y chromium chromium-driver)",
)
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium: pip install -e '.[test]'")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

COLUMNS = [
    Column("fair", "fairness aw.", "fairness", True),
    Column("priv", "privacy aw.", "privacy", True),
    Column("mmlu", "MMLU", "capability", True),
]
ROWS_SELECTOR = "table.leaderboard tbody tr"


def value(x, delta=None, sig=None, source=None):
    return Value(x, x - 0.03, x + 0.03, source=source, delta=delta, significant=sig) if x is not None else Value(None)


def board() -> Leaderboard:
    """One base with three variants (two points of a DEAN sweep); a missing value; significant and n.s. deltas."""
    rows = [
        Row("A", "base", None, values={"fair": value(0.50, source="a/base.json"), "priv": value(0.40),
                                        "mmlu": value(0.60)}),
        Row("A", "dean p=0.1", "dean", values={"fair": value(0.62, 0.12, True, "a/dean.json"),
                                               "priv": value(0.52, 0.12, True), "mmlu": value(0.50, -0.10, True)},
            sweep=("p", 0.1)),
        Row("A", "dean p=0.001", "dean", values={"fair": value(None), "priv": value(0.43, 0.03, False),
                                                 "mmlu": value(0.59, -0.01, False)}, sweep=("p", 0.001)),
        Row("A", "dp epsilon=8", "dp", values={"fair": value(0.45, -0.05, False), "priv": value(0.41, 0.01, False),
                                               "mmlu": value(0.56, -0.04, True)}, info={"epsilon": "8"}, limit=20),
    ]
    return Leaderboard(COLUMNS, rows, notes=["hand-built leaderboard for the browser test"])


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The page with real plots, written to a folder as index.html."""
    b = board()
    figures = {"fairness-privacy": plots.fairness_privacy(b, "fair", "priv"),
               "capability-cost": plots.capability_cost(b, ["mmlu"]), **dict(plots.sweeps(b, ["priv", "mmlu"]))}
    path = tmp_path_factory.mktemp("report") / "index.html"
    path.write_text(render_html(b, figures, "fairpriv leaderboard"), encoding="utf-8")
    return path, len(figures)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless chromium through the Debian chromedriver given by path (no Selenium Manager, no network)."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    yield driver
    driver.quit()


@pytest.fixture()
def loaded(browser, page):
    """The page freshly loaded (so no test sees another's sorting)."""
    path, n_plots = page
    browser.get(path.as_uri())
    return browser, path, n_plots


def column(driver, index: int) -> list[str]:
    """The ``data-sort`` values of one column, in the displayed row order."""
    script = "return Array.from(document.querySelectorAll(arguments[0]), r => r.cells[arguments[1]].dataset.sort)"
    return driver.execute_script(script, ROWS_SELECTOR, index)


def test_page_renders_to_a_non_trivial_screenshot(loaded):
    driver, path, _ = loaded
    png = driver.get_screenshot_as_png()
    (path.parent / "screenshot.png").write_bytes(png)
    img = Image.open(io.BytesIO(png)).convert("RGB")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and img.size[0] >= 1000 and img.size[1] >= 600
    assert len(img.getcolors(maxcolors=1 << 20)) > 50  # text, table shading and plots, not a blank page
    assert driver.title == "fairpriv leaderboard"


def test_table_and_plots_are_present_and_decoded(loaded):
    driver, _, n_plots = loaded
    rows = driver.find_elements(By.CSS_SELECTOR, ROWS_SELECTOR)
    assert [r.find_elements(By.TAG_NAME, "td")[1].get_attribute("data-sort") for r in rows] == [
        "base", "dean p=0.1", "dean p=0.001", "dp epsilon=8"]
    assert all(r.is_displayed() for r in rows) and len(driver.find_elements(By.CSS_SELECTOR, "td.ns")) == 4
    images = driver.execute_script("return Array.from(document.images, i => [i.complete, i.naturalWidth, i.width])")
    assert len(images) == n_plots == 3
    assert all(done and natural > 100 and shown > 100 for done, natural, shown in images)  # decoded and laid out
    assert driver.find_element(By.CSS_SELECTOR, "a[href='a/dean.json']").text == "0.620"


def test_clicking_a_header_sorts_numerically_then_reverses_missing_last(loaded):
    driver, _, _ = loaded
    header = driver.find_element(By.XPATH, "//th[@data-type and text()='fairness aw.']")
    header.click()
    assert column(driver, 2) == ["0.45", "0.5", "0.62", ""] and header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert column(driver, 2) == ["0.62", "0.5", "0.45", ""] and header.get_attribute("aria-sort") == "descending"
    variant = driver.find_element(By.XPATH, "//th[@data-type and text()='variant']")
    variant.click()
    assert column(driver, 1) == ["base", "dean p=0.001", "dean p=0.1", "dp epsilon=8"]
    assert header.get_attribute("aria-sort") == "none"


def test_no_errors_in_the_browser_console(loaded):
    driver, _, _ = loaded
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []  # e.g. a script error or a resource the Content-Security-Policy blocked
