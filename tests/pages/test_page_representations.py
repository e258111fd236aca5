"""Page tests (AppTest) of Representations (/representations): a finished run projected, then read back."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_page_projects_a_finished_run_and_lists_nothing_until_a_selection(app_env):
    from streamlit.testing.v1 import AppTest

    from ffnlp_core.config import RunConfig
    from pages import _common as ui

    at = AppTest.from_file(str(ROOT / "pages" / "representations.py"), default_timeout=60)
    at.run()
    assert not at.exception and "No run yet" in at.info[0].value
    cfg = RunConfig()
    cfg.model.hidden_sizes, cfg.model.activation = [16, 8, 8, 8], "relu"
    cfg.train.device, cfg.train.snapshot_rows = "cpu", 200
    sid = at.session_state["sid"]  # the page's workspace: start a run in it as the Train page would
    workspace = ui.workspaces().get(sid)
    job = ui.manager().submit(cfg, workspace.dataset, owner=sid)
    workspace.remember_run(job.run_id)
    assert job.wait(60) and job.status == "finished"
    at.run()
    assert not at.exception and "Press **Project**" in at.info[0].value
    at.button(key="repr_project").click().run()
    assert not at.exception, at.exception
    charts = at.get("plotly_chart")
    assert len(charts) == 5  # input, h0, h3 and the two separation charts
    assert at.multiselect(key="repr_layers").value == ["input", "h0", "h3"]
    reading = at.markdown[-1].value if at.markdown else ""
    assert any(m.value.startswith("The classes separate best in h") for m in at.markdown), reading
    at.multiselect(key="repr_layers").set_value(["input", "h0", "h1", "h2", "h3"]).run()
    assert not at.exception and len(at.get("plotly_chart")) == 7  # any number of layers side by side
    assert "200 dev comments" in " ".join(c.value for c in at.caption)
    assert not at.get("arrow_data_frame")  # nothing selected yet
    assert at.select_slider(key="repr_snapshot").value == job.read(lambda h: h.snapshots[-1].step)
    # after a restart the run is read back from disk: its newest snapshot, the input rebuilt from the
    # stored comments with the saved vectorizer, no slider
    ui.manager().shutdown()
    ui.manager.clear()
    at.run()
    assert not at.exception, at.exception
    assert type(ui.manager().open_run(job.run_id)).__name__ == "StoredRun"
    assert len(at.get("plotly_chart")) == 7 and not at.get("select_slider")
    assert "keeps only its newest snapshot" in " ".join(c.value for c in at.caption)
