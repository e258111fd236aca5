"""Page tests with Streamlit's AppTest for Home, Data, Model and Train: each page runs on its own (the
navigation frame is covered by the browser tests), with training in threads and runs in a temp folder."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

TIMEOUT = 60
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def app_env(tmp_path, monkeypatch):
    monkeypatch.setenv("FFNLP_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FFNLP_WORKERS", "thread")
    monkeypatch.setenv("FFNLP_UMAP", "0")  # no UMAP process / numba compile during page tests
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    from pages import _common as ui

    ui.manager().shutdown()
    st.cache_resource.clear()


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_home_shows_the_steps_and_the_current_data():
    at = page("home")
    assert "feedforward network" in at.title[0].value
    texts = " ".join(t.value for t in at.text) + " ".join(c.value for c in at.caption)
    assert "built-in: interaction" in texts
    assert "4,000 comments" in texts and "2 classes" in texts


def test_data_defaults_to_the_builtin_comments_and_switches_sets():
    at = page("data")
    assert metric(at, "Comments kept") == "4,000"
    assert at.selectbox(key="data_text_column").value == "text"
    assert at.selectbox(key="data_label_column").value == "label"
    at.selectbox(key="data_sample").set_value("topics").run()
    assert not at.exception
    assert metric(at, "Comments kept") == "3,000"
    classes = {row["class"] for row in at.dataframe[0].value.to_dict("records")}
    assert classes == {"food", "music", "sports", "tech"}


def test_data_upload_picks_columns_and_a_bad_file_keeps_the_previous_data():
    at = page("data")
    at.segmented_control(key="data_mode").set_value("upload").run()
    rows = ["id;review;stars"] + [
        f"{i};{'great fun' if i % 2 else 'awful and slow'} {i};{i % 2}" for i in range(60)
    ]
    at.file_uploader(key="data_upload").set_value(("reviews.csv", "\n".join(rows).encode(), "text/csv")).run()
    assert not at.exception
    assert at.selectbox(key="data_text_column").value == "review"
    assert at.selectbox(key="data_label_column").value == "stars"
    assert metric(at, "Comments kept") == "60"
    # an Excel workbook renamed .csv: the core's message is shown and the previous data stays
    at.file_uploader(key="data_upload").set_value(("book.csv", b"PK\x03\x04" + b"\0" * 100, "text/csv")).run()
    assert any("Excel" in e.value for e in at.error)
    assert metric(at, "Comments kept") == "60"


def test_data_min_df_too_high_is_refused_with_a_message():
    at = page("data")
    at.number_input(key="data_min_df").set_value(5000).run()  # more than the 3,200 training comments
    assert any("min_df" in e.value for e in at.error)
    assert metric(at, "Comments kept") == "4,000"  # the previous data set is still there


def test_model_summary_and_apply():
    at = page("model")
    table = at.dataframe[0].value
    assert list(table["name"]) == ["layer_0", "layer_1", "layer_2", "output_layer"]
    assert list(table["params"]) == [f"{79 * 100:,}", f"{101 * 100:,}", f"{101 * 100:,}", f"{101 * 2:,}"]
    at.number_input(key="model_layers").set_value(2)
    at.number_input(key="model_width").set_value(16)
    at.selectbox(key="model_activation").set_value("relu")
    at.button[0].click().run()  # the form's Apply
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["name"]) == ["layer_0", "layer_1", "output_layer"]
    assert list(table["params"]) == [f"{(78 + 1) * 16:,}", f"{17 * 16:,}", f"{17 * 2:,}"]


def test_train_start_poll_and_stop():
    at = page("train")
    at.number_input(key="train_epochs").set_value(400).run()
    at.button(key="train_start").click().run()
    assert not at.exception
    from pages import _common as ui

    jobs = ui.manager().jobs_of(at.session_state["sid"])
    assert len(jobs) == 1
    job = jobs[0]
    deadline = time.monotonic() + 20
    while job.read(lambda h: h.steps_done) < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    at.run()  # a poll: run_every never fires in AppTest
    assert at.progress and at.progress[0].text.startswith("running · step")
    assert job.status == "running"
    at.button(key="train_stop").click().run()
    assert job.wait(5)
    assert job.status == "stopped"
    done = job.read(lambda h: h.steps_done)
    assert 0 < done < 400 * 100
    at.run()
    history = at.dataframe[-1].value
    assert history["run"].tolist() == [job.run_id] and history["status"].tolist() == ["stopped"]


def test_train_refuses_a_batch_larger_than_the_data():
    at = page("train")
    at.number_input(key="train_batch_size").set_value(50_000).run()
    at.button(key="train_start").click().run()
    assert any("batch size 50,000 is larger" in e.value for e in at.error)


def _workspace(at: AppTest):
    from pages import _common as ui

    return ui.workspaces().get(at.session_state["sid"])


def test_sessions_on_the_same_data_share_one_dataset():
    first, second = page("train"), page("train")
    a, b = _workspace(first), _workspace(second)
    assert a.sid != b.sid
    assert a.dataset is b.dataset  # built once for the whole server, not once per session
    assert a.dataset.x_train.shape == (3200, 78)


def test_a_refused_upload_never_shows_another_sessions_data():
    bad = ("book.csv", b"PK\x03\x04" + b"\0" * 100, "text/csv")
    # The same column names as the built-in data: only the files tell the two sessions' data apart.
    rows = ["text,label"] + [f"{'great fun' if i % 2 else 'awful and slow'} {i},{i % 2}" for i in range(60)]
    first = page("data")
    first.segmented_control(key="data_mode").set_value("upload").run()
    first.file_uploader(key="data_upload").set_value(
        ("reviews.csv", "\n".join(rows).encode(), "text/csv")
    ).run()
    first.file_uploader(key="data_upload").set_value(bad).run()
    assert metric(first, "Comments kept") == "60"
    # Another student uploads the same broken file: they keep their own (built-in) data.
    second = page("data")
    second.segmented_control(key="data_mode").set_value("upload").run()
    second.file_uploader(key="data_upload").set_value(bad).run()
    assert any("Excel" in e.value for e in second.error)
    assert metric(second, "Comments kept") == "4,000"
    assert _workspace(second).dataset.x_train.shape[0] == 3200
    second.run()  # the refused file is not read again, and its message stays while it is in the box
    assert any("Excel" in e.value for e in second.error)
    assert metric(second, "Comments kept") == "4,000"


def test_a_run_that_waits_shows_its_place_in_the_queue():
    from pages import _common as ui

    at = page("train")
    ws = _workspace(at)
    jm = ui.manager()
    long = ws.config.__class__.from_dict(ws.config.to_dict())
    long.train.epochs = 1000
    busy = [jm.submit(long, ws.dataset, owner="someone else") for _ in range(jm.max_concurrent)]
    try:
        at.button(key="train_start").click().run()
        assert not at.exception
        info = " ".join(i.value for i in at.info)
        assert f"Waiting in the queue: position 1 · {jm.max_concurrent} run(s) training" in info
        assert at.progress[0].text == f"queued · position 1 · {ws.config.train.epochs} epoch(s) to train"
    finally:
        for job in busy:
            jm.stop(job.run_id)


def test_a_shared_link_opened_by_a_class_builds_its_dataset_once():
    from ffnlp_core.config import RunConfig
    from ffnlp_core.session import urlstate

    cfg = RunConfig()
    cfg.data.label_noise, cfg.data.noise_seed = 0.25, 3  # same data, same words: only the noise differs
    value, _ = urlstate.encode(cfg.validate())
    linked = []
    for _ in range(2):
        at = AppTest.from_file(str(ROOT / "pages" / "train.py"), default_timeout=TIMEOUT)
        at.query_params["cfg"] = value
        at.run()
        assert not at.exception, at.exception
        linked.append(_workspace(at))
    assert linked[0].sid != linked[1].sid and linked[0].dataset is linked[1].dataset
    noisy = linked[0].dataset
    assert int(noisy.train_flipped.sum()) == round(0.25 * len(noisy.y_train))
    plain = _workspace(page("train")).dataset  # no link: the data without noise, not the cached noisy one
    assert plain is not noisy and int(plain.train_flipped.sum()) == 0
