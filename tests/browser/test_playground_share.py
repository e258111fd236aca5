"""In a real browser: Try it explains a typed comment (prediction, probabilities, words colored by effect,
unknown words marked, hostile markup shown literally) and keeps up with a run that is still training;
the share link from Compare runs restores the data choice and every setting in a fresh browser context,
turns on the classroom view, and a broken link is refused with a message."""

from __future__ import annotations

import re
import time
import zipfile
from urllib.parse import parse_qs, urlsplit

from helpers import IDLE, choose, click, goto, key, nav, query, selected, wait_for, wait_idle

from ffnlp_core.session import urlstate

HOSTILE = "<script>window.__pwned = 1</script> that jerk chicken <b>zebra</b> at lunch"
VIEWPORT = {"width": 1400, "height": 1000}


def settled(page, quiet: float = 1.0, timeout: float = 30.0) -> None:
    """No script run for `quiet` seconds in a row: on a busy machine the rerun an action triggers can start
    a moment after wait_idle already saw the page idle (then the next click would supersede it)."""
    deadline, calm_since = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if page.locator(IDLE).count():
            calm_since = calm_since or time.monotonic()
            if time.monotonic() - calm_since >= quiet:
                return
        else:
            calm_since = None
        time.sleep(0.1)
    raise TimeoutError(f"the page did not stay idle for {quiet} s")


def set_number(page, name: str, value) -> None:
    box = key(page, name).locator("input")
    box.fill(str(value))
    box.press("Enter")
    settled(page)


def open_app(page, server, path: str) -> None:
    """Open a page of the app. The very first visit to a fresh server goes through "/" so that app.py has
    switched Streamlit out of its legacy pages/ mode before a deep link is opened."""
    goto(page, server, "/")
    goto(page, server, path)


def type_comment(page, text: str) -> None:
    box = key(page, "play_text").locator("textarea")
    box.fill(text)
    box.press("Control+Enter")
    wait_idle(page)


def model_step(page) -> int:
    """The step of the model Try it uses, from its caption (0 when not shown)."""
    m = re.search(r"Model of step ([\d,]+)", page.locator("[data-testid=stMain]").inner_text())
    return int(m.group(1).replace(",", "")) if m else 0


def test_playground_explains_a_typed_comment_live_and_safely(page, server, shots):
    open_app(page, server, "/train")
    set_number(page, "train_epochs", 400)
    click(page, "train_start")
    wait_for(lambda: query(page).get("run"), timeout=10)
    nav(page, "Try it")
    type_comment(page, HOSTILE)
    colored = key(page, "play_colored")
    wait_for(lambda: colored.locator(".ffnlp-word").count() > 0, timeout=60)  # the first evaluation

    # the comment is shown exactly as typed: its markup is text, nothing of it became an element
    assert colored.inner_text().strip() == HOSTILE
    assert colored.locator("script").count() == 0 and colored.locator("b").count() == 0
    assert page.evaluate("window.__pwned") is None
    # known words are colored by their effect, unknown ones marked as ignored
    assert {"that", "jerk", "chicken", "lunch"} <= set(colored.locator(".ffnlp-word").all_inner_texts())
    assert {"zebra", "script", "window"} <= set(colored.locator(".ffnlp-ignored").all_inner_texts())
    backgrounds = [
        w.evaluate("e => getComputedStyle(e).backgroundColor") for w in colored.locator(".ffnlp-word").all()
    ]
    assert any(b not in ("rgba(0, 0, 0, 0)", "transparent") for b in backgrounds)
    metric = page.locator("[data-testid=stMetric]").first.inner_text()
    assert re.search(r"toxic", metric) and re.search(r"\d+\.\d% sure", metric)
    assert key(page, "play_probs").locator("[data-testid=stDataFrame]").count() == 1

    # while the run trains, the explanation follows the newest model
    first = wait_for(lambda: model_step(page), timeout=20)
    wait_for(lambda: model_step(page) > first, timeout=40)
    page.screenshot(path=str(shots / "playground_live.png"), full_page=True)
    click(page, "sidebar_stop")
    wait_for(lambda: "stopped" in page.locator("[data-testid=stSidebar]").inner_text(), timeout=15)
    wait_idle(page)

    # a dev comment, picked from the list, is explained the same way
    key(page, "play_dev").locator("input[role=combobox]").click()
    page.get_by_role("option").first.click()
    wait_idle(page)
    picked = key(page, "play_text").locator("textarea").input_value()
    assert picked and picked != HOSTILE
    wait_for(lambda: colored.inner_text().strip() == picked, timeout=10)
    key(page, "play_word").locator("input").fill("jerk")
    key(page, "play_word").locator("input").press("Enter")
    wait_idle(page)
    assert key(page, "play_word_table").count() == 1
    page.screenshot(path=str(shots / "playground.png"), full_page=True)


def test_share_link_restores_the_setup_in_a_new_context(browser, server, shots):
    a = browser.new_context(viewport=VIEWPORT).new_page()
    open_app(a, server, "/data")
    choose(a, "data_sample", "negation")
    wait_for(lambda: "3,000" in a.locator("[data-testid=stMetric]").first.inner_text(), timeout=15)
    nav(a, "Model")
    key(a, "model_layers").locator("input").fill("2")
    key(a, "model_width").locator("input").fill("32")
    choose(a, "model_activation", "relu")
    settled(a)
    a.get_by_role("button", name="Apply").click()
    wait_for(lambda: "layer_1" in a.locator("[data-testid=stMain]").inner_text(), timeout=15)
    settled(a)
    nav(a, "Train")
    set_number(a, "train_epochs", 7)
    set_number(a, "train_batch_size", 16)
    nav(a, "Compare runs")
    link = key(a, "compare_share").locator("code").inner_text().strip()
    assert "cfg=" in link and "sid=" not in link and "run=" not in link
    shared = urlstate.decode(parse_qs(urlsplit(link).query)["cfg"][0])  # what the link carries
    assert shared.data.source == "builtin:negation" and shared.model.hidden_sizes == [32, 32]
    assert (shared.model.activation, shared.train.epochs, shared.train.batch_size) == ("relu", 7, 16)
    a.screenshot(path=str(shots / "compare_share.png"), full_page=True)

    b = browser.new_context(viewport=VIEWPORT).new_page()
    b.goto(link)
    wait_idle(b)
    assert query(b).get("sid") != query(a)["sid"]  # a new workspace, not the sender's
    assert key(b, "model_layers").locator("input").input_value() == "2"
    assert key(b, "model_width").locator("input").input_value() == "32"
    assert selected(b, "model_activation") == "relu"
    b.screenshot(path=str(shots / "share_restored_model.png"), full_page=True)
    nav(b, "Train")
    assert key(b, "train_epochs").locator("input").input_value() == "7"
    assert key(b, "train_batch_size").locator("input").input_value() == "16"
    nav(b, "Data")
    assert selected(b, "data_sample").startswith("negation")
    b.context.close()

    # the classroom view: larger type, advanced controls hidden
    c = browser.new_context(viewport=VIEWPORT).new_page()
    c.goto(link + "&classroom=1")
    wait_idle(c)
    assert (
        c.evaluate("getComputedStyle(document.documentElement).fontSize") == "23px"
    )  # 1.44x the 16px of the normal view (test_classroom.py measures every kind)
    nav(c, "Noise lab")
    assert key(c, "lab_noise").count() == 1 and not key(c, "advanced_lab").is_visible()
    c.screenshot(path=str(shots / "classroom_lab.png"), full_page=True)

    # a broken link is refused with a message, and the app still works
    goto(c, server, "/model?cfg=%25%25not-a-setup")
    assert "could not be used" in c.locator("[data-testid=stMain]").inner_text()
    assert key(c, "model_layers").count() == 1
    c.context.close()
    a.context.close()


def test_downloads_and_a_model_uploaded_back_drives_try_it(page, server, tmp_path, shots):
    open_app(page, server, "/train")
    set_number(page, "train_epochs", 2)
    click(page, "train_start")
    trained = wait_for(lambda: query(page).get("run"), timeout=10)
    wait_for(lambda: "finished" in page.locator("[data-testid=stSidebar]").inner_text(), timeout=90)
    nav(page, "Compare runs")

    files = {}
    for name in ("compare_dl_model", "compare_dl_csv", "compare_dl_html"):
        with page.expect_download() as download:
            click(page, name)
        files[name] = tmp_path / download.value.suggested_filename
        download.value.save_as(files[name])
        wait_idle(page)
    with zipfile.ZipFile(files["compare_dl_model"]) as z:
        assert {"model.safetensors", "config.json", "model.json"} <= set(z.namelist())
    header = files["compare_dl_csv"].read_text().splitlines()[0].split(",")
    assert header[:3] == ["step", "train_loss", "train_accuracy"] and "dev_accuracy" in header
    chart = files["compare_dl_html"].read_text()
    assert len(chart) > 1_000_000 and not re.findall(r"<script[^>]*\bsrc=", chart)

    # a file that is not a model is refused with a message; the downloaded model is taken back
    bad = tmp_path / "not-a-model.zip"
    bad.write_bytes(b"<b>not a zip</b>")
    key(page, "compare_upload").locator("input[type=file]").set_input_files(str(bad))
    wait_idle(page)
    wait_for(lambda: "not a model bundle" in page.locator("[data-testid=stMain]").inner_text(), timeout=15)
    key(page, "compare_upload").locator("input[type=file]").set_input_files(str(files["compare_dl_model"]))
    wait_idle(page)
    wait_for(lambda: "Loaded as run" in page.locator("[data-testid=stMain]").inner_text(), timeout=15)
    imported = wait_for(
        lambda: query(page).get("run") if query(page).get("run") != trained else None, timeout=10
    )
    assert imported in page.locator("[data-testid=stSidebar]").inner_text()

    nav(page, "Try it")
    assert query(page)["run"] == imported
    type_comment(page, "honestly that jerk at lunch")
    colored = key(page, "play_colored")
    wait_for(lambda: colored.locator(".ffnlp-word").count() > 0, timeout=15)
    assert "jerk" in colored.locator(".ffnlp-word").all_inner_texts()
    page.screenshot(path=str(shots / "playground_imported.png"), full_page=True)
