"""Page tests (AppTest) of Gradients (/gradients): a stored run and the activation comparison."""

import math
from pathlib import Path

from ffnlp_core.inspect import gradients as gr
from ffnlp_core.runs.store import RunStore

PAGE = Path(__file__).resolve().parents[2] / "pages" / "gradients.py"


def stored_run(runs_dir, interaction, make_config) -> tuple[str, dict, list[str]]:
    """A finished run written to disk by another manager (as after a server restart)."""
    from ffnlp_core.runs.manager import JobManager

    jm = JobManager(store=RunStore(runs_dir), max_concurrent=1, mode="thread")
    cfg = make_config(hidden_sizes=[8, 8, 8], activation="sigmoid", batch_size=64, snapshot_rows=0)
    job = jm.submit(cfg, interaction, owner="someone")
    assert job.wait(120) and job.status == "finished"
    table, layers = job.read(lambda h: (h.gradient_table(), list(h.layer_names)))
    jm.shutdown()
    return job.run_id, table, layers


def open_page(**query):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(PAGE), default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def test_page_without_a_run_points_to_train(app_env):
    at = open_page()
    assert not at.exception
    assert "No run yet" in at.info[0].value
    assert len(at.get("plotly_chart")) == 0


def test_page_draws_a_stored_run_and_its_verdict(app_env, interaction, make_config):
    run_id, table, layers = stored_run(app_env, interaction, make_config)
    at = open_page(run=run_id)
    assert not at.exception
    want = gr.verdict("sigmoid", layers, gr.layer_means(table, "grad_rms"), "grad_rms", len(table["step"]))
    assert at.success[0].value == f"{want} {gr.explanation('sigmoid', 'default', None)}"
    assert len(at.get("plotly_chart")) == 7
    at.toggle(key="gradients_frobenius").set_value(True).run()
    want = gr.verdict("sigmoid", layers, gr.layer_means(table, "grad_norm"), "grad_norm", len(table["step"]))
    assert at.success[0].value == f"{want} {gr.explanation('sigmoid', 'default', None)}"


def test_comparison_submits_runs_kept_in_the_workspace(app_env):
    from pages import _common as ui

    at = open_page()
    at.number_input(key="gradients_compare_depth").set_value(3)
    at.multiselect(key="gradients_compare_activations").set_value(["sigmoid", "relu"])
    at.button(key="gradients_compare_start").click().run()
    assert not at.exception
    sid = at.session_state["sid"]
    saved = ui.workspaces().get(sid).extras["gradients_compare"]
    assert saved["depth"] == 3 and list(saved["runs"]) == ["sigmoid", "relu"]
    for act, rid in saved["runs"].items():
        job = ui.manager().open_run(rid)
        assert job.cfg.model.activation == act and len(job.cfg.model.hidden_sizes) == 3
        assert job.wait(120) and job.status == "finished", job.reason
    again = open_page(sid=sid)  # a reload: the same workspace, the same comparison
    assert not again.exception
    means = {}
    for act, rid in saved["runs"].items():
        table, layers = ui.manager().open_run(rid).read(lambda h: (h.gradient_table(), list(h.layer_names)))
        means[act] = gr.layer_means(table, "grad_rms")
    verdict = gr.comparison_verdict(means, layers, "grad_rms", "After training")
    assert again.success[0].value == verdict
    assert math.isfinite(float(gr.ratios_to(means["sigmoid"], 2)[0]))
    assert len(again.get("plotly_chart")) == 3


def test_comparison_of_initializations_runs_one_network_per_pair(app_env):
    from pages import _common as ui

    at = open_page()
    at.number_input(key="gradients_compare_depth").set_value(4)
    at.multiselect(key="gradients_compare_activations").set_value(["sigmoid"])
    at.multiselect(key="gradients_compare_inits").set_value(["default", "xavier"])
    at.button(key="gradients_compare_start").click().run()
    assert not at.exception
    saved = ui.workspaces().get(at.session_state["sid"]).extras["gradients_compare"]
    assert list(saved["runs"]) == ["sigmoid · default", "sigmoid · xavier"]
    for name, rid in saved["runs"].items():
        job = ui.manager().open_run(rid)
        assert job.cfg.model.init == name.split(" · ")[1] and job.label == f"gradients ({name})"
        assert job.wait(120) and job.status == "finished", job.reason
    at.run()
    assert "with sigmoid · xavier" in at.success[-1].value
