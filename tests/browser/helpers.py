"""Small Playwright helpers for the ffnlp pages: wait for Streamlit, select widgets by key."""

from __future__ import annotations

import time

CONNECTED = "[data-testid=stApp][data-test-connection-state=CONNECTED]"


IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"


def wait_idle(page, timeout: float = 30.0) -> None:
    """Connected, no script run in progress and no placeholder skeletons left on the page."""
    page.wait_for_selector(CONNECTED, timeout=timeout * 1000)
    time.sleep(0.2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.locator(IDLE).count() and not page.locator("[data-testid=stSkeleton]").count():
            return
        time.sleep(0.1)
    raise TimeoutError(f"the page did not settle in {timeout} s")


def selected(page, name: str) -> str:
    """The shown value of a selectbox with key=name."""
    return key(page, name).locator("input[role=combobox]").input_value()


def choose(page, name: str, option: str) -> None:
    """Pick an option of a selectbox with key=name."""
    box = key(page, name).locator("input[role=combobox]")
    box.click()
    page.get_by_role("option", name=option).first.click()
    wait_idle(page)


def goto(page, server, path: str = "/", timeout: float = 30.0) -> None:
    page.goto(server.url(path))
    wait_idle(page, timeout)


def key(page, name: str):
    """The element container of a widget or container with key=name (Streamlit adds .st-key-<key>)."""
    return page.locator(f".st-key-{name}")


def click(page, name: str) -> None:
    key(page, name).locator("button").first.click()


def nav(page, label: str) -> None:
    """Click a page in the sidebar navigation."""
    page.locator("[data-testid=stSidebarNav] a", has_text=label).first.click()
    wait_idle(page)


def url(page) -> str:
    """The address bar as the page sees it (page.url misses history.replaceState made from a frame)."""
    return page.evaluate("() => window.location.href")


def query(page) -> dict[str, str]:
    from urllib.parse import parse_qs, urlparse

    return {k: v[0] for k, v in parse_qs(urlparse(url(page)).query).items()}


def wait_for(predicate, timeout: float = 30.0, every: float = 0.25):
    """Poll until predicate() is truthy; return its value (or raise TimeoutError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError("condition not met in time")


def train_run(page, epochs: int, timeout: float = 300.0) -> None:
    """On the Train page: set the epochs, click Start and wait until the sidebar says the run finished."""
    nav(page, "Train")
    box = key(page, "train_epochs").locator("input")
    box.fill(str(epochs))
    box.press("Enter")
    wait_idle(page)
    click(page, "train_start")
    side = page.locator("[data-testid=stSidebar]")
    wait_for(lambda: "finished" in side.inner_text(), timeout=timeout)
