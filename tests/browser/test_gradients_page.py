"""The Gradients page in a real browser: its charts stream while a run trains, show a finished run with a
verdict, and the one-click comparison (sigmoid vs relu) trains, draws and survives a reload."""

from __future__ import annotations

import re
import time

from helpers import click, goto, key, nav, wait_for, wait_idle

TALL = {"width": 1400, "height": 3400}  # Streamlit scrolls inside its main block: a tall window shows it all
CHARTS = ".st-key-gradients_view .js-plotly-plot"
# points of the first line (layer_0); _fullData holds the decoded arrays (data keeps numpy's base64 form)
LINE_POINTS = """() => {
  const plot = document.querySelector('.st-key-gradients_view .js-plotly-plot');
  return plot && plot._fullData && plot._fullData.length ? plot._fullData[0].x.length : 0;
}"""


def set_number(page, name: str, value) -> None:
    box = key(page, name).locator("input")
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


def sidebar(page) -> str:
    return page.locator("[data-testid=stSidebar]").inner_text()


def open_app(page, server) -> None:
    """Open / and wait for the app's own navigation: on a fresh server the very first view briefly shows
    Streamlit's legacy pages/ list (app.py reruns once to leave it), and a click then lands on a wrong page."""
    goto(page, server, "/", timeout=120)  # a cold server's first run imports torch and starts the workers
    wait_for(lambda: "Look inside" in page.locator("[data-testid=stSidebarNav]").inner_text(), timeout=60)
    wait_idle(page)


def test_finished_run_shows_every_chart_and_a_verdict(page, server, shots):
    page.set_viewport_size(TALL)
    open_app(page, server)
    nav(page, "Train")
    click(page, "train_start")  # the defaults: 3 hidden layers, no activation, 1 epoch of 100 steps
    wait_for(lambda: "finished" in sidebar(page), timeout=90)
    nav(page, "Gradients")
    wait_for(lambda: page.locator(CHARTS).count() == 7, timeout=30)
    view = key(page, "gradients_view").inner_text()
    assert re.search(r"With no activation, layer_0 gets \S+ .*layer_2 .*mean over 100 probes", view), view
    for title in ("layer × step", "Mean per layer", "backprop signal", "update / weight", "Decay towards"):
        assert title in view, title
    time.sleep(1.0)
    page.screenshot(path=str(shots / "gradients_finished.png"))
    key(page, "gradients_frobenius").get_by_text("Frobenius").click()  # the toggle's label
    wait_idle(page)
    wait_for(lambda: "Frobenius norm, mean over" in key(page, "gradients_view").inner_text(), timeout=10)


def test_charts_stream_while_the_run_trains(page, server, shots):
    page.set_viewport_size(TALL)
    open_app(page, server)
    nav(page, "Train")
    set_number(page, "train_epochs", 1000)  # 100,000 steps: long enough to watch (~15 s at full speed)
    click(page, "train_start")
    nav(page, "Gradients")
    # As long as train_run allows: on a fresh clone this can be the first run, whose worker compiles the
    # CPU fast path's kernels first (30 s was once too short in CI).
    first = wait_for(lambda: page.evaluate(LINE_POINTS), timeout=300)
    later = wait_for(lambda: (n := page.evaluate(LINE_POINTS)) > first and n, timeout=15)
    assert later > first, "the per-layer lines grow while the run trains"
    assert "running" in key(page, "gradients_view").inner_text()
    wait_for(lambda: page.locator(CHARTS).count() == 7, timeout=15)
    page.screenshot(path=str(shots / "gradients_running.png"))
    nav(page, "Train")  # stop it there (the sidebar's button is redrawn every second while it polls)
    if key(page, "train_stop").locator("button").is_enabled():
        click(page, "train_stop")
    wait_for(lambda: "stopped" in sidebar(page) or "finished" in sidebar(page), timeout=15)


def test_comparison_sigmoid_vs_relu(page, server, shots):
    page.set_viewport_size(TALL)
    open_app(page, server)
    nav(page, "Gradients")
    assert "Press Compare" in key(page, "gradients_compare").inner_text()
    box = key(page, "gradients_compare_activations")
    for act in ("none", "tanh"):
        box.get_by_role("button", name=f"Remove {act}").click()
        wait_idle(page)
    click(page, "gradients_compare_start")
    done = wait_for(lambda: "After training" in (t := key(page, "gradients_compare").inner_text()) and t, 120)
    wait_for(lambda: key(page, "gradients_compare").locator(".js-plotly-plot").count() == 3, timeout=15)
    verdict = re.search(r"After training, layer_0's gradient is (\S+) with sigmoid and (\S+) with relu", done)
    assert verdict, done
    assert "relative to layer_5's" in done and "fades most with sigmoid" in done
    time.sleep(1.0)
    page.screenshot(path=str(shots / "gradients_compare_sigmoid_relu.png"))
    page.reload()  # the run ids live in the workspace: the comparison is still there
    wait_idle(page)
    again = wait_for(lambda: "After training" in (t := key(page, "gradients_compare").inner_text()) and t, 30)
    assert verdict.group(0) in again
