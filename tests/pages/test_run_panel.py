"""AppTest checks of the shared run panel (pages/_run_panel.py) on Train and Noise lab: Start submits a run,
Stop stops it, and a refused setting shows its ConfigError on the page without starting a run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def app_env(tmp_path, monkeypatch):
    monkeypatch.setenv("FFNLP_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FFNLP_WORKERS", "thread")
    monkeypatch.setenv("FFNLP_UMAP", "0")
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    from pages import _common as ui

    ui.manager().shutdown()
    st.cache_resource.clear()


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def jobs(at: AppTest):
    from pages import _common as ui

    return ui.manager().jobs_of(at.session_state["sid"])


def wait_for_steps(job, n: int = 5) -> None:
    deadline = time.monotonic() + 20
    while job.read(lambda h: h.steps_done) < n and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("name, epochs", [("train", "train_epochs"), ("lab", "lab_epochs")])
def test_start_submits_a_run_and_stop_stops_it(name, epochs):
    at = page(name)
    assert at.button(key=f"{name}_stop").disabled
    at.number_input(key=epochs).set_value(400).run()
    at.button(key=f"{name}_start").click().run()
    assert not at.exception, at.exception
    (job,) = jobs(at)
    assert job.cfg.train.epochs == 400
    wait_for_steps(job)
    at.run()
    assert job.status == "running"
    assert at.button(key=f"{name}_start").disabled and not at.button(key=f"{name}_stop").disabled
    assert any(p.text.startswith("running · step") for p in at.progress)
    at.button(key=f"{name}_stop").click().run()
    assert job.wait(5)
    assert job.status == "stopped"


def test_lab_run_carries_the_noise_and_its_label():
    at = page("lab")
    at.slider(key="lab_noise").set_value(0.2).run()
    at.button(key="lab_start").click().run()
    (job,) = jobs(at)
    assert job.cfg.data.label_noise == pytest.approx(0.2)
    assert job.label == "noise lab: 20% flipped"
    from pages import _common as ui

    ui.manager().stop(job.run_id)
    assert job.wait(5)


def test_a_batch_larger_than_the_data_is_refused_on_the_page_without_a_run():
    at = page("train")
    at.number_input(key="train_batch_size").set_value(50_000).run()
    at.button(key="train_start").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(e.startswith("Cannot start: batch size 50,000 is larger than the") for e in errors), errors
    assert jobs(at) == []


def test_the_seed_widget_allows_what_the_config_accepts():
    from ffnlp_core.config import MAX_SEED

    at = page("train")
    seed = at.number_input(key="train_seed")
    assert seed.max == MAX_SEED and seed.min == 0
    seed.set_value(MAX_SEED).run()
    at.button(key="train_start").click().run()
    (job,) = jobs(at)
    assert job.cfg.train.seed == MAX_SEED
    from pages import _common as ui

    ui.manager().stop(job.run_id)
    assert job.wait(5)


def test_a_full_runs_folder_is_said_on_the_page_and_the_session_is_noted():
    from streamlit.testing.v1 import AppTest

    from pages import _common as ui

    at = AppTest.from_file(str(ROOT / "pages" / "train.py"), default_timeout=60)
    at.run()
    jm = ui.manager()
    assert at.session_state["sid"] in jm.owners.seen  # pruning spares this session's runs
    jm.writer.problem = "the runs folder is full (3 MB free): free space or set FFNLP_RUNS_DIR"
    at.run()
    assert any("runs folder is full" in e.value for e in at.error)
