"""The whole walk in a real browser: upload -> choose columns -> train -> watch the chart grow -> leave the
page and come back -> stop; a reload reattaches to the run; two browser contexts train without mixing."""

from __future__ import annotations

import contextlib
import time

from helpers import click, goto, key, nav, query, selected, url, wait_for, wait_idle
from playwright.sync_api import TimeoutError as PlaywrightTimeout

# the last step drawn on the loss chart (0 while there is none)
CHART_POINTS = """() => {
  const plot = document.querySelector('.st-key-train_charts .js-plotly-plot');
  const traces = plot && plot._fullData;  // decoded traces (data[i].x may still be a base64 array spec)
  if (!traces || !traces.length || !traces[0].x || !traces[0].x.length) return 0;
  const x = traces[0].x;
  return Number(x[x.length - 1]);
}"""


def set_number(page, name: str, value) -> None:
    box = key(page, name).locator("input")
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


def upload_csv(page, tmp_path, rows: int = 600) -> None:
    lines = ["id,comment,verdict,extra"]
    for i in range(rows):
        toxic = i % 2
        text = ("you absolute clown, jerk" if toxic else "thanks for the lovely recipe") + f" number {i}"
        lines.append(f'{i},"{text}",{"toxic" if toxic else "fine"},x')
    path = tmp_path / "comments.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    key(page, "data_upload").locator("input[type=file]").set_input_files(str(path))
    wait_idle(page)


def test_walk_upload_train_navigate_stop(page, server, tmp_path, shots):
    goto(page, server, "/")
    nav(page, "Data")
    key(page, "data_mode").get_by_text("Upload a CSV").click()
    wait_idle(page)
    upload_csv(page, tmp_path)
    # the inferred columns are preselected
    assert selected(page, "data_text_column") == "comment"
    assert selected(page, "data_label_column") == "verdict"
    assert "600" in page.locator("[data-testid=stMetric]").first.inner_text()
    page.screenshot(path=str(shots / "walk_data.png"), full_page=True)

    nav(page, "Model")
    nav(page, "Train")
    set_number(page, "train_batch_size", 4)  # a long run: ~120k steps, stopped by the test
    set_number(page, "train_epochs", 1000)
    click(page, "train_start")
    wait_for(lambda: query(page).get("run"), timeout=10)
    run_id = query(page)["run"]
    first = wait_for(lambda: page.evaluate(CHART_POINTS), timeout=15)
    time.sleep(2.5)
    later = page.evaluate(CHART_POINTS)
    assert later > first, "the loss chart grows while the run trains"
    page.screenshot(path=str(shots / "walk_train_running.png"), full_page=True)

    nav(page, "Data")  # leave the page ...
    time.sleep(1.0)
    nav(page, "Train")  # ... and come back: the same run, still going
    assert query(page)["run"] == run_id
    again = wait_for(lambda: page.evaluate(CHART_POINTS), timeout=10)
    assert again >= later
    assert "running" in page.locator("[data-testid=stSidebar]").inner_text()

    t0 = time.monotonic()
    click(page, "train_stop")
    try:
        wait_for(lambda: "stopped" in page.locator("[data-testid=stSidebar]").inner_text(), timeout=10)
    except TimeoutError:
        page.screenshot(path=str(shots / "walk_train_stop_failed.png"), full_page=True)
        raise AssertionError(page.locator("[data-testid=stSidebar]").inner_text()) from None
    assert time.monotonic() - t0 < 5
    page.screenshot(path=str(shots / "walk_train_stopped.png"), full_page=True)


def test_reload_reattaches(page, server):
    goto(page, server, "/train")
    set_number(page, "train_batch_size", 4)
    set_number(page, "train_epochs", 1000)
    click(page, "train_start")
    run_id = wait_for(lambda: query(page).get("run"), timeout=10)
    wait_for(lambda: page.evaluate(CHART_POINTS), timeout=15)
    page.reload()
    wait_idle(page)
    assert query(page)["run"] == run_id
    assert wait_for(lambda: page.evaluate(CHART_POINTS), timeout=15) > 0
    assert run_id in page.locator("[data-testid=stSidebar]").inner_text()
    # the same URL in a new tab shows the same run too
    other = page.context.new_page()
    other.goto(url(page))
    wait_idle(other)
    assert run_id in other.locator("[data-testid=stSidebar]").inner_text()
    click(other, "train_stop")
    wait_for(lambda: "stopped" in other.locator("[data-testid=stSidebar]").inner_text(), timeout=10)
    other.close()


def test_two_contexts_do_not_mix(browser, server):
    pages = [browser.new_context(viewport={"width": 1300, "height": 900}).new_page() for _ in range(2)]
    run_ids = []
    for pg in pages:
        goto(pg, server, "/train")
        set_number(pg, "train_batch_size", 4)
        set_number(pg, "train_epochs", 300)
        click(pg, "train_start")
        run_ids.append(wait_for(lambda pg=pg: query(pg).get("run"), timeout=10))
    assert run_ids[0] != run_ids[1]
    assert query(pages[0])["sid"] != query(pages[1])["sid"]
    for pg, mine, theirs in ((pages[0], *run_ids), (pages[1], *run_ids[::-1])):
        wait_for(lambda pg=pg: pg.evaluate(CHART_POINTS), timeout=20)
        text = pg.locator("section.main, [data-testid=stMain]").first.inner_text()
        side = pg.locator("[data-testid=stSidebar]").inner_text()
        assert mine in side and theirs not in side
        assert theirs not in text
    for pg in pages:  # stopped before the tab goes (else the runs train on and crowd the next tests)
        click(pg, "train_stop")
        wait_for(lambda pg=pg: "stopped" in pg.locator("[data-testid=stSidebar]").inner_text(), timeout=15)
        pg.context.close()


def test_a_third_run_waits_in_the_queue_then_starts(browser, server, shots):
    """The server trains 2 runs at once (FFNLP_MAX_CONCURRENT=2): a third waits, says so, and starts as
    soon as one of the two is stopped."""
    pages = [browser.new_context(viewport={"width": 1300, "height": 900}).new_page() for _ in range(3)]
    try:
        goto(pages[0], server, "/train")
        wait_for(lambda: server_idle(pages[0]), timeout=120, every=2)  # earlier tests' runs are over
        for pg in pages:
            goto(pg, server, "/train")
            set_number(pg, "train_batch_size", 4)
            set_number(pg, "train_epochs", 1000)
            click(pg, "train_start")
            wait_for(lambda pg=pg: query(pg).get("run"), timeout=10)
        third = pages[2]
        main = third.locator("[data-testid=stMain]")
        says = (
            "Waiting in the queue: position 1 · 2 run(s) training",
            "queued · position 1 · 1000 epoch(s) to train",
        )
        wait_for(lambda: all(s in main.inner_text() for s in says), timeout=15)  # both drawn, same refresh
        third.screenshot(path=str(shots / "train_queued.png"), full_page=True)
        click(pages[0], "train_stop")
        wait_for(lambda: "running · step" in main.inner_text(), timeout=20)
        assert "Waiting in the queue" not in main.inner_text()
    finally:  # stop what still trains (the first page's Stop may not have redrawn as disabled yet)
        for pg in pages:
            with contextlib.suppress(PlaywrightTimeout, TimeoutError):
                key(pg, "train_stop").locator("button:enabled").first.click(timeout=3000)
                wait_for(lambda pg=pg: "stopped" in pg.locator("[data-testid=stSidebar]").inner_text(), 15)
            pg.context.close()


def server_idle(page) -> bool:
    """The Train page (with no live run of its own) says that nothing trains or waits on the server."""
    page.reload()
    wait_idle(page)
    return "Server: 0 run(s) training, 0 waiting" in page.locator("[data-testid=stMain]").inner_text()
