"""Page tests (AppTest) of Lessons (/lessons): lesson 3 and the zero_grad lesson (one click: both runs) end to end, the code tab."""

import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ffnlp_core.inspect import gpu_lesson, lessons

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def page(app_env):
    at = AppTest.from_file(str(ROOT / "pages" / "lessons.py"), default_timeout=120)
    at.run()
    return at


def poll(at, found, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        value = found(at)
        if value:
            return value
        time.sleep(0.5)
    raise TimeoutError("the lesson did not finish in time")


def test_page_lesson_3_trains_three_networks_and_shows_the_table(page):
    assert not page.exception
    page.button(key="lessons_interaction_run").click().run()
    text = poll(page, lambda at: next((s.value for s in at.success if "3 layers + ReLU" in s.value), None))
    accs = [float(x) / 100 for x in re.findall(r"(\d+\.\d)%", text)]
    assert len(accs) == 3 and accs[2] > 0.9 and max(accs[:2]) < 0.7
    table = page.dataframe[0].value
    assert list(table["words"]) == ["neither", "jerk alone", "chicken alone", "jerk chicken"]
    assert table["3 layers + ReLU"].round().tolist() == [0, 1, 1, 0]
    from pages import _common as ui

    labels = sorted(j.label for j in ui.manager().jobs.values())
    assert labels == [f"lesson: interaction ({n})" for n in sorted(lessons.INTERACTION_MODELS)]


def test_page_zero_grad_shows_both_loops_side_by_side(page):
    codes = [c.value for c in page.code]
    correct = next(
        c for c in codes if c.startswith("for x, y in batches:") and "    optimizer.zero_grad()" in c
    )
    buggy = next(c for c in codes if c.startswith("for x, y in batches:") and "# optimizer.zero_grad()" in c)
    assert correct.replace("optimizer.zero_grad()", "") != buggy and "forgotten" in buggy


def test_page_zero_grad_one_click_runs_both_and_states_the_growth(page):
    page.button(key="lessons_zero_grad_run").click().run()
    text = poll(page, lambda at: next((i.value for i in at.info if "Without zero_grad" in i.value), None))
    growth = float(re.search(r"\(([\d,]+)x\)", text).group(1).replace(",", ""))
    assert growth > 20
    from pages import _common as ui

    labels = sorted(j.label for j in ui.manager().jobs.values())
    assert labels == ["lesson: zero_grad (buggy)", "lesson: zero_grad (correct)"]
    assert len(page.get("plotly_chart")) >= 3  # loss, accuracy and gradient norm overlays


def test_page_shows_the_code_of_the_workspace_config(page):
    codes = [c.value for c in page.code]
    assert any(
        "optimizer.zero_grad()" in c and "class FeedForwardClassifier(torch.nn.Module)" in c for c in codes
    )
    assert any("class FeedForwardClassifier(pl.LightningModule)" in c for c in codes)


def test_page_gpu_lesson_without_a_gpu_shows_recorded_figures_and_says_why_the_cpu_differs(page):
    if gpu_lesson.accelerators():
        pytest.skip("this machine has a GPU: the lesson measures it live")
    texts = " ".join(m.value for m in page.markdown) + " ".join(c.value for c in page.caption)
    assert "Recorded, not live" in texts and gpu_lesson.GPU_REFERENCE["date"] in texts
    assert gpu_lesson.WHY_CPU_DIFFERS in texts
    assert any("lecture's loop, examples/s" in d.value.columns for d in page.dataframe)
