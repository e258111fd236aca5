"""The Lessons page in a real browser: lesson 3 trains its three networks through the server queue and shows
the dev accuracies and the four-combination table; one click on the zero_grad button runs correct and buggy and overlays
them with the growing gradient norm."""

from __future__ import annotations

import re
import time

from helpers import click, goto, key, wait_for, wait_idle

TALL = {"width": 1400, "height": 2600}


def open_lessons(page, server) -> None:
    """Home first (the frame), then Lessons through the sidebar navigation."""
    goto(page, server, "/", timeout=90)  # the first view starts the server's workers: slow on a busy machine
    for _ in range(3):  # a click during the app's very first rerun can be lost: try again
        page.locator("[data-testid=stSidebarNav] a", has_text="Lessons").first.click()
        wait_idle(page, timeout=90)
        try:
            wait_for(lambda: "/lessons" in page.url and page.get_by_role("tab").count() == 6, timeout=10)
            return
        except TimeoutError:
            continue
    raise AssertionError(f"the Lessons page did not open: {page.url}")


def open_tab(page, label: str) -> None:
    page.get_by_role("tab", name=label).click()
    wait_idle(page)


def test_lesson_3_runs_and_shows_the_interaction_table(browser, server, shots):
    page = browser.new_context(viewport=TALL).new_page()
    open_lessons(page, server)
    open_tab(page, "3 · Interactions")
    click(page, "lessons_interaction_run")
    result = key(page, "lessons_interaction_result")
    wait_for(lambda: result.count() and "3 layers + ReLU" in result.inner_text(), timeout=180)
    text = result.inner_text()
    accs = [float(x) for x in re.findall(r"(\d+\.\d)%", text)]
    assert len(accs) == 3 and accs[2] > 90 and max(accs[:2]) < 70, text
    assert "Stacked linear layers reach the same ceiling" in text and "3 layers + ReLU 4/4" in text
    table = key(page, "lessons_interaction_table")
    wait_for(lambda: table.locator("[data-testid=stDataFrame]").count() == 1, timeout=30)
    wait_for(
        lambda: key(page, "lessons_interaction_accuracy").locator(".js-plotly-plot").count() == 1, timeout=30
    )
    time.sleep(1.0)  # let the chart draw
    page.screenshot(path=str(shots / "lessons_interaction.png"), full_page=True)


def test_zero_grad_one_click_overlays_correct_and_buggy(browser, server, shots):
    page = browser.new_context(viewport=TALL).new_page()
    open_lessons(page, server)
    open_tab(page, "2 · zero_grad")
    key(page, "lessons_zero_grad_run").locator("button").click()
    wait_idle(page)
    result = key(page, "lessons_zero_grad_result")
    wait_for(lambda: result.count() and "Without zero_grad" in result.inner_text(), timeout=180)
    growth = re.search(r"\(([\d,]+)x\)", result.inner_text())
    assert growth and float(growth.group(1).replace(",", "")) > 20
    wait_for(lambda: result.locator(".js-plotly-plot").count() == 3, timeout=30)
    names = page.evaluate(
        "() => [...document.querySelectorAll('.st-key-lessons_zero_grad_norm .js-plotly-plot')]"
        ".flatMap(p => p._fullData.map(t => t.name))"
    )
    assert names == ["correct: ||gradient||", "buggy: ||gradient||"]
    loss_names = page.evaluate(
        "() => [...document.querySelectorAll('.st-key-lessons_zero_grad_loss .js-plotly-plot')]"
        ".flatMap(p => p._fullData.map(t => t.name))"
    )
    assert {n.split(":")[0] for n in loss_names} == {"correct", "buggy"}, loss_names
    time.sleep(1.0)
    page.screenshot(path=str(shots / "lessons_zero_grad.png"), full_page=True)
