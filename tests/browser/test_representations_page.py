"""The Representations page in a real browser: after a short relu run, Project draws the input, h0 and h1
with the comment behind each point in the Plotly hover label; a box selection lists comments; the slider
goes back in training; hostile comments stay literal text in the hover label; UMAP swaps in once compiled."""

from __future__ import annotations

import re
import time

import pytest
from helpers import choose, click, goto, key, wait_for, wait_idle

TALL = {"width": 1500, "height": 2200}
SCATTERS = ".st-key-repr_view .js-plotly-plot"
# the screen position, comment (customdata[1]) and dev row of point i of trace 0 in scatter plot `n`
POINT = """([n, i]) => {
  const gd = document.querySelectorAll('.st-key-repr_view .js-plotly-plot')[n];
  if (!gd || !gd._fullData || !gd._fullData.length) return null;
  const tr = gd._fullData[0], xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const box = gd.getBoundingClientRect();
  return {x: box.left + xa._offset + xa.l2p(tr.x[i]), y: box.top + ya._offset + ya.l2p(tr.y[i]),
          row: tr.customdata[i][0], text: tr.customdata[i][1], n: tr.x.length,
          title: gd._fullLayout.title.text};
}"""
TITLES = """() => Array.from(document.querySelectorAll('.st-key-repr_view .js-plotly-plot'))
  .map(gd => gd._fullLayout && gd._fullLayout.title ? gd._fullLayout.title.text : '')"""
HOVER = "() => { const h = document.querySelector('.hoverlayer .hovertext'); return h ? h.textContent : ''; }"


def sidebar(page) -> str:
    return page.locator("[data-testid=stSidebar]").inner_text()


def open_app(page, server) -> None:
    """Open / and wait for the app's own navigation (the first view of a fresh server is the legacy list)."""
    goto(page, server, "/")
    wait_for(lambda: "Look inside" in page.locator("[data-testid=stSidebarNav]").inner_text(), timeout=30)
    wait_idle(page)


def nav(page, label: str) -> None:
    """Click a page in the sidebar until its title shows (a click during a rerun can get lost)."""
    link = page.locator("[data-testid=stSidebarNav] a", has_text=label).first
    title = page.locator("h1", has_text=label)
    for _ in range(3):
        link.click()
        wait_idle(page)
        try:
            return wait_for(lambda: title.count(), timeout=10)
        except TimeoutError:
            continue
    raise TimeoutError(f"could not open the {label} page")


def set_number(page, name: str, value) -> None:
    box = key(page, name).locator("input")
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


def relu_run(page, epochs: int = 3) -> None:
    """Model: 2 hidden relu layers; Train: a few epochs, until finished."""
    nav(page, "Model")
    set_number(page, "model_layers", 2)
    choose(page, "model_activation", "relu")
    page.get_by_role("button", name="Apply").click()
    wait_idle(page)
    wait_for(lambda: "+ relu" in page.locator("[data-testid=stMain]").inner_text(), timeout=15)  # the diagram
    nav(page, "Train")
    set_number(page, "train_epochs", epochs)
    click(page, "train_start")
    wait_for(lambda: "finished" in sidebar(page), timeout=120)


def project(page) -> float:
    """Click Project; seconds until the three scatter plots have their points."""
    t0 = time.monotonic()
    click(page, "repr_project")
    wait_for(
        lambda: page.locator(SCATTERS).count() >= 3 and page.evaluate(POINT, [2, 0]), timeout=30, every=0.05
    )
    return time.monotonic() - t0


def hover(page, plot: int, i: int = 0) -> tuple[dict, str]:
    """Move the mouse onto point i of a scatter plot; the point and the hover label's text."""
    point = page.evaluate(POINT, [plot, i])
    page.mouse.move(point["x"] + 1, point["y"] + 1)
    page.mouse.move(point["x"], point["y"])
    return point, wait_for(lambda: page.evaluate(HOVER), timeout=10)


def test_projection_with_hover_selection_and_slider(page, server, shots):
    page.set_viewport_size(TALL)
    open_app(page, server)
    relu_run(page)
    nav(page, "Representations")
    assert "Press Project" in key(page, "repr_view").inner_text()
    seconds = project(page)
    print(f"first projection on screen {seconds:.2f} s after the click")
    wait_for(lambda: page.locator(SCATTERS).count() == 5, timeout=30)  # then the two separation charts
    wait_idle(page)
    titles = page.evaluate(TITLES)
    assert "input · SVD to 50 dims, then PCA" in titles[0], titles  # Streamlit adds <b>
    assert "h0 (100 units) · PCA" in titles[1] and "h1 (100 units) · PCA" in titles[2], titles
    assert "Separation per layer" in titles[3] and "Separation over training" in titles[4], titles
    view = key(page, "repr_view").inner_text()
    assert "800 dev comments at step" in view  # the built-in set's whole dev split (800 < 2,000 rows)

    point, label = hover(page, 2)
    assert "gold" in label and "predicted" in label and "p = " in label, label
    words = [w for w in point["text"].replace("<br>", " ").split() if "&" not in w]
    assert any(w in label for w in words), (label, point["text"])  # the comment behind a point there
    time.sleep(0.5)
    page.screenshot(path=str(shots / "representations_hover.png"))

    # drag a box over the whole h1 panel: the comments are listed in a data frame
    gd = page.locator(SCATTERS).nth(2).bounding_box()
    page.mouse.move(gd["x"] + 60, gd["y"] + 60)
    page.mouse.down()
    page.mouse.move(gd["x"] + gd["width"] / 2, gd["y"] + gd["height"] / 2, steps=8)
    page.mouse.move(gd["x"] + gd["width"] - 20, gd["y"] + gd["height"] - 60, steps=8)
    page.mouse.up()
    wait_for(lambda: key(page, "repr_selected").count(), timeout=20)
    wait_idle(page)
    page.screenshot(path=str(shots / "representations_selected.png"), full_page=True)

    # the slider back to the first snapshot: another step, the same comments
    last = key(page, "repr_view").inner_text()
    thumb = key(page, "repr_snapshot").locator("[aria-label=Snapshot]").first.bounding_box()
    track = key(page, "repr_snapshot").bounding_box()
    page.mouse.move(thumb["x"] + thumb["width"] / 2, thumb["y"] + thumb["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] - 50, thumb["y"] + thumb["height"] / 2, steps=10)
    page.mouse.up()
    wait_for(lambda: key(page, "repr_view").inner_text() != last, timeout=20)
    wait_idle(page)
    # 3 epochs x 10 evaluations: snapshots at every 2nd one (engine.snapshot_every keeps ~24 a run)
    assert "800 dev comments at step 20." in key(page, "repr_view").inner_text()
    time.sleep(0.5)
    page.screenshot(path=str(shots / "representations_first_snapshot.png"), full_page=True)


def test_hostile_comments_stay_literal_in_the_hover_label(page, server, tmp_path, shots):
    page.set_viewport_size(TALL)
    open_app(page, server)
    nav(page, "Data")
    key(page, "data_mode").get_by_text("Upload a CSV").click()
    wait_idle(page)
    lines = ["comment,verdict"]
    for i in range(400):
        bad = i % 2
        text = ("<script>alert(1)</script> <b>jerk</b>" if bad else "<i>thanks</i> &amp; cheers") + f" n{i}"
        lines.append(f'"{text}",{"toxic" if bad else "fine"}')
    path = tmp_path / "hostile.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    key(page, "data_upload").locator("input[type=file]").set_input_files(str(path))
    wait_idle(page)
    relu_run(page, epochs=2)
    nav(page, "Representations")
    project(page)
    _, label = hover(page, 1)
    assert "<script>alert(1)</script>" in label or "<i>thanks</i> &amp; cheers" in label, label
    assert page.locator(".hoverlayer script, .hoverlayer b, .hoverlayer i").count() == 0
    page.screenshot(path=str(shots / "representations_hostile_hover.png"))


def test_the_view_follows_a_running_run(page, server, shots):
    page.set_viewport_size(TALL)
    open_app(page, server)
    nav(page, "Train")
    set_number(page, "train_epochs", 400)  # ~40,000 steps: stopped below
    click(page, "train_start")
    nav(page, "Representations")
    project(page)

    def step() -> int:
        text = key(page, "repr_view").inner_text()
        return int(re.search(r"dev comments at step ([\d,]+)", text)[1].replace(",", ""))

    first = wait_for(step, timeout=20)
    later = wait_for(lambda: (s := step()) > first and s, timeout=30)
    view = key(page, "repr_view").inner_text()
    assert later > first and "running" in view and "newest snapshot while the run trains" in view

    def in_step() -> bool:  # the separation chart is drawn for the snapshot the scatter plots show
        return f"at step {step():,}<" in page.evaluate(TITLES)[-2]

    wait_for(in_step, timeout=20)
    page.screenshot(path=str(shots / "representations_running.png"), full_page=True)
    click(page, "sidebar_stop")
    wait_for(lambda: "stopped" in sidebar(page), timeout=15)
    wait_for(lambda: key(page, "repr_snapshot").count(), timeout=15)  # the run ended: the slider is there
    wait_for(lambda: f"step {step():,}" in key(page, "repr_snapshot").inner_text(), timeout=10)  # the newest


@pytest.mark.slow
def test_umap_swaps_in_once_compiled(page, server, shots):
    page.set_viewport_size(TALL)
    open_app(page, server)
    relu_run(page, epochs=2)
    nav(page, "Representations")
    project(page)
    key(page, "repr_method").get_by_text("UMAP").click()
    wait_idle(page)
    view = key(page, "repr_view").inner_text()
    titles = page.evaluate(TITLES)
    waiting = "UMAP is compiling" in view or "UMAP is being computed" in view  # PCA shown meanwhile
    assert waiting or all("UMAP" in t for t in titles[:3]), (view, titles)
    if "UMAP is compiling" in view:
        page.screenshot(path=str(shots / "representations_umap_compiling.png"))
    wait_for(lambda: all("UMAP" in t for t in page.evaluate(TITLES)[:3]), timeout=420, every=1.0)
    wait_idle(page)
    time.sleep(0.5)
    page.screenshot(path=str(shots / "representations_umap.png"), full_page=True)
