"""Browser tests of what only a browser shows: at ?classroom=1 every text a class reads (headings, metric
values, captions, buttons, labels, chart titles, ticks and legends) is at least 1.4x its size in the normal
view and no button is cut short at 1280x720; with labels 0/1/2 the class-balance chart and the confusion
matrix have one tick per class, none at a half-integer."""

from __future__ import annotations

import re

from helpers import click, goto, key, nav, query, wait_for, wait_idle

SMALL = {"width": 1280, "height": 720}
KINDS = {
    "heading": "[data-testid=stMain] h1, [data-testid=stMain] h2, [data-testid=stMain] h3",
    "metric value": "[data-testid=stMetricValue]",
    "caption": "[data-testid=stCaptionContainer]",
    "button": "[data-testid=stMain] button",
    "label": "[data-testid=stWidgetLabel]",
    "chart title": ".js-plotly-plot .gtitle",
    "tick": ".js-plotly-plot .xtick text, .js-plotly-plot .ytick text",
    "legend": ".js-plotly-plot .legendtext",
}
# The smallest font size of the visible elements that hold text themselves, per kind.
SIZES = """(kinds) => { const out = {};
  for (const [k, sel] of Object.entries(kinds)) {
    const all = [...document.querySelectorAll(sel)].flatMap(e => [e, ...e.querySelectorAll('*')]);
    const own = all.filter(e => e.getClientRects().length
      && [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()));
    out[k] = own.length ? Math.min(...own.map(e => parseFloat(getComputedStyle(e).fontSize))) : null;
  }
  return out; }"""
CUT = """() => [...document.querySelectorAll('[data-testid=stMain] button')].filter(b => b.getClientRects().length)
  .flatMap(b => [...b.querySelectorAll('p')].filter(p => p.scrollWidth > p.clientWidth + 1))
  .map(p => p.textContent.trim())"""
TICKS = """(k) => [...document.querySelectorAll(`.st-key-${k} .js-plotly-plot .xtick text`)].map(t => t.textContent)"""


def sizes_on(page, server, path: str, sid: str, classroom: int) -> tuple[dict, list]:
    page.goto(server.url(f"{path}?sid={sid}&classroom={classroom}"))
    wait_idle(page, 60)
    page.wait_for_selector(".js-plotly-plot .xtick text", timeout=30000)
    return page.evaluate(SIZES, KINDS), page.evaluate(CUT)


def test_classroom_view_makes_every_text_larger_and_cuts_no_button(page, server, shots):
    page.set_viewport_size(SMALL)
    goto(page, server, "/train")
    click(page, "train_start")
    wait_for(lambda: query(page).get("run"), timeout=15)
    wait_for(lambda: "finished" in page.locator("[data-testid=stSidebar]").inner_text(), timeout=90)
    sid = query(page)["sid"]
    normal, cut_normal = sizes_on(page, server, "/train", sid, 0)
    large, cut_large = sizes_on(page, server, "/train", sid, 1)
    page.screenshot(path=str(shots / "train_classroom.png"))
    assert all(normal.values()) and all(large.values()), (normal, large)
    ratios = {k: large[k] / normal[k] for k in KINDS}
    assert min(ratios.values()) >= 1.4, ratios
    assert not cut_normal and not cut_large, (cut_normal, cut_large)
    # the chart's legend sits below its x-axis title, not on it
    boxes = page.evaluate(
        """() => { const p = document.querySelector('.js-plotly-plot');
          const r = e => e.getBoundingClientRect();
          return [r(p.querySelector('.xtitle')).bottom, r(p.querySelector('.legend')).top]; }"""
    )
    assert boxes[1] >= boxes[0], boxes
    for path in ("/representations", "/compare", "/gradients"):
        page.goto(server.url(f"{path}?sid={sid}&classroom=1"))
        wait_idle(page, 60)
        assert not page.evaluate(CUT), (path, page.evaluate(CUT))


def test_numeric_labels_get_one_tick_per_class(page, server, tmp_path, shots):
    rows = ["text,label"]
    words = ["idiot", "thanks", "great", "jerk", "lunch", "awful"]
    for i in range(600):
        rows.append(f"{words[i % 6]} comment number {i % 37} {words[(i * 7) % 6]},{i % 3}")
    path = tmp_path / "three.csv"
    path.write_text("\n".join(rows), encoding="utf-8")
    page.set_viewport_size({"width": 1400, "height": 1400})
    goto(page, server, "/data")
    key(page, "data_mode").get_by_text("Upload a CSV").click()
    wait_idle(page)
    key(page, "data_upload").locator("input[type=file]").set_input_files(str(path))
    wait_idle(page, 60)
    balance = wait_for(lambda: page.evaluate(TICKS, "data_balance"), timeout=30)
    nav(page, "Train")
    click(page, "train_start")
    wait_for(lambda: "finished" in page.locator("[data-testid=stSidebar]").inner_text(), timeout=90)
    wait_idle(page)
    confusion = wait_for(lambda: page.evaluate(TICKS, "train_confusion"), timeout=30)
    page.screenshot(path=str(shots / "numeric_labels_confusion.png"))
    for ticks in (balance, confusion):
        assert ticks == ["0", "1", "2"], ticks
        assert not any(re.fullmatch(r"-?\d+\.5", t) for t in ticks)
