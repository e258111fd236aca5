"""Hostile comments render as plain text on every page (nothing executes, no injected elements), and a file
over the upload limit gets a clear refusal while the previous data stays."""

from __future__ import annotations

import time

import pytest
from conftest import Server
from helpers import click, goto, key, nav, query, wait_for, wait_idle

HOSTILE = [
    "<script>window.__pwned = 1</script> you jerk",
    '<img src=x onerror="window.__pwned = 2"> jerk chicken',
    '<a href="javascript:window.__pwned = 3">click here</a> thanks',
    "[click me](javascript:window.__pwned=4) lovely",
    "$\\frac{a}{b}$ and $x^2$ what a loser",
    "**bold** _italic_ # heading <b>tag</b>",
]
PAGES = [
    "Home",
    "Data",
    "Model",
    "Train",
    "Gradients",
    "Representations",
    "Try it",
    "Lessons",
    "Noise lab",
    "Compare runs",
]


def hostile_csv(tmp_path):
    lines = ["comment,label"]
    for i in range(120):
        text = (
            HOSTILE[i % len(HOSTILE)]
            if i < 24
            else f"an ordinary comment number {i} {'jerk' if i % 2 else 'nice'}"
        )
        lines.append('"' + text.replace('"', '""') + f'",{"toxic" if i % 2 else "ok"}')
    path = tmp_path / "hostile.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def assert_inert(page) -> None:
    assert page.evaluate("() => window.__pwned") is None, "a hostile comment executed"
    assert page.locator("img[src=x]").count() == 0
    assert page.locator('a[href^="javascript:"]').count() == 0
    assert page.locator("[data-testid=stMain] script").count() == 0


def test_hostile_comments_stay_plain_text_everywhere(page, server, tmp_path, shots):
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    goto(page, server, "/data")
    key(page, "data_mode").get_by_text("Upload a CSV").click()
    wait_idle(page)
    key(page, "data_upload").locator("input[type=file]").set_input_files(str(hostile_csv(tmp_path)))
    wait_idle(page)
    assert "120" in page.locator("[data-testid=stMetric]").first.inner_text()
    assert_inert(page)
    page.screenshot(path=str(shots / "hostile_data.png"), full_page=True)

    nav(page, "Train")
    click(page, "train_start")
    wait_for(lambda: query(page).get("run"), timeout=15)
    wait_for(lambda: "finished" in page.locator("[data-testid=stSidebar]").inner_text(), timeout=60)
    for label in PAGES:
        link = page.locator("[data-testid=stSidebarNav] a", has_text=label)
        if not link.count():
            continue
        nav(page, label)
        time.sleep(1.0)
        assert_inert(page)
    assert dialogs == []


@pytest.fixture
def small_limit_server(tmp_path, chromium_path):
    srv = Server(tmp_path / "runs_small", env={"STREAMLIT_SERVER_MAX_UPLOAD_SIZE": "1"})
    yield srv
    srv.stop()


def test_a_file_over_the_upload_limit_is_refused_clearly(page, small_limit_server, tmp_path, shots):
    big = tmp_path / "big.csv"
    big.write_text(
        "text,label\n" + "\n".join(f"comment number {i} padded {'x' * 40},{i % 2}" for i in range(25_000))
    )
    assert big.stat().st_size > 1_100_000
    goto(page, small_limit_server, "/data")
    key(page, "data_mode").get_by_text("Upload a CSV").click()
    wait_idle(page)
    key(page, "data_upload").locator("input[type=file]").set_input_files(str(big))
    wait_for(lambda: "1.0MB or smaller" in key(page, "data_upload").inner_text(), timeout=15)
    page.screenshot(path=str(shots / "upload_too_big.png"), full_page=True)
    assert "4,000" in page.locator("[data-testid=stMetric]").first.inner_text()  # the built-in data stays
