"""Page tests (AppTest) of Train (/train): Start, a poll, Stop and the run history; a refused batch size;
a run that waits in the queue."""

from __future__ import annotations

import re
import time

import pytest

pytestmark = pytest.mark.usefixtures("app_env")


def test_train_start_poll_and_stop(open_page):
    at = open_page("train")
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


def test_train_refuses_a_batch_larger_than_the_data(open_page):
    at = open_page("train")
    at.number_input(key="train_batch_size").set_value(50_000).run()
    at.button(key="train_start").click().run()
    assert any("batch size 50,000 is larger" in e.value for e in at.error)


def test_a_run_that_waits_shows_its_place_in_the_queue(open_page, workspace_of):
    from pages import _common as ui

    at = open_page("train")
    ws = workspace_of(at)
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


def test_train_says_when_overfitting_began_and_what_early_stopping_keeps(open_page, workspace_of):
    """30% flipped labels and a wide network: the dev loss turns up, and the page says at which epoch."""
    from pages import _common as ui

    at = open_page("train")
    ws = workspace_of(at)
    cfg = ws.config.__class__.from_dict(ws.config.to_dict())
    cfg.data.label_noise = 0.3
    cfg.model.hidden_sizes, cfg.model.activation = [256, 256], "relu"
    cfg.train.epochs, cfg.train.lr, cfg.train.device = 8, 0.003, "cpu"
    from ffnlp_core.data.dataset import build_dataset, load_source

    noisy = build_dataset(load_source(cfg.data), cfg.data)
    job = ui.manager().submit(cfg, noisy, owner=ws.sid)
    ws.remember_run(job.run_id)
    assert job.wait(120) and job.status == "finished", job.reason
    at.run()
    assert not at.exception
    (text,) = [w.value for w in at.warning if "began to overfit" in w.value]
    assert re.search(r"around epoch \d+", text) and "Early stopping with a patience of 10 evaluations" in text


def test_a_finished_run_shows_per_class_figures_and_the_baselines(open_page, workspace_of):
    from pages import _common as ui

    at = open_page("train")
    ws = workspace_of(at)
    job = ui.manager().submit(ws.config, ws.dataset, owner=ws.sid)
    ws.remember_run(job.run_id)
    assert job.wait(60) and job.status == "finished"
    at.run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "macro F1" in text and "weighted F1" in text
    tables = {tuple(d.value.columns): d.value for d in at.dataframe}
    per_class = tables[("class", "precision", "recall", "f1", "support")]
    assert per_class["class"].tolist() == ["not toxic", "toxic"] and per_class["support"].sum() == 800
    baselines = next(t for cols, t in tables.items() if cols[0] == "model")
    assert baselines["model"].tolist() == ["this network", "majority class", "logistic regression"]
    assert baselines.loc[1, "accuracy"] == pytest.approx(475 / 800)
    assert any("the network" in c.value and "logistic regression" in c.value for c in at.caption)
