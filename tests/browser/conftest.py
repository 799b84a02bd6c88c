"""The browser tier: headless Debian Chromium driven by selenium, against ``pingxuan up``.

Run in its own pytest process: ``PINGXUAN_BROWSER_TESTS=1 pytest -p no:pytest_nameko
tests/browser`` (``make test-browser``), because nameko's plugin monkey-patches eventlet.
"""
import os
import shutil
from pathlib import Path

import pytest

from tests.system import running_system

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
PHONE_WINDOW = (390, 844)


def pytest_collection_modifyitems(config, items):
    for item in items:
        item.add_marker(pytest.mark.browser)


@pytest.fixture
def system(tmp_path):
    with running_system(tmp_path / "home") as system:
        yield system


@pytest.fixture
def browser(tmp_path):
    """A headless Chromium the size of a phone."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail(f"the browser tier needs {CHROMIUM} and {CHROMEDRIVER} "
                    "(Debian packages chromium and chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'chromium'}",
                 f"--window-size={PHONE_WINDOW[0]},{PHONE_WINDOW[1]}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def screenshot(browser, tmp_path):
    """``screenshot(name)`` saves the window as ``<name>.png`` in ``PINGXUAN_SCREENSHOTS`` (to
    look at the pages after a change) or the test's own folder."""
    folder = Path(os.environ.get("PINGXUAN_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)

    def save(name):
        browser.save_screenshot(str(folder / f"{name}.png"))

    return save


def computed_style(browser, selector, prop):
    """The computed CSS ``prop`` of the first element matching ``selector`` (proof that the
    page's style sheet was served and applied, not only its HTML)."""
    return browser.execute_script(
        "return getComputedStyle(document.querySelector(arguments[0]))[arguments[1]];",
        selector, prop)
