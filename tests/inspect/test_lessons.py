"""Tests for ffnlp_core.inspect.lessons (the runs each lesson trains and the statements measured from them) and
for ffnlp_core.plots.lessons (their figures, drawn here from the same runs)."""

from pathlib import Path

import numpy as np
import pytest

from ffnlp_core.data import samples
from ffnlp_core.inspect import lessons
from ffnlp_core.plots import lessons as lesson_plots
from ffnlp_core.runs.history import RunHistory
from ffnlp_core.train.loop import train
from ffnlp_core.train.plan import build_model

ROOT = Path(__file__).resolve().parents[2]


def run_view(cfg, ds, model=None) -> dict:
    h = RunHistory()
    for event in train(cfg, ds, model=model):
        h.add(event)
    return lessons.view(h)


# --- configurations --------------------------------------------------------------------------------------
def test_lesson_config_is_the_lecture_network_on_the_builtin_data():
    cfg = lessons.lesson_config(epochs=3, activation="relu")
    assert cfg.data.source == "builtin:interaction"
    assert cfg.model.hidden_sizes == [100, 100, 100] and cfg.model.activation == "relu"
    assert (cfg.train.optimizer, cfg.train.lr, cfg.train.batch_size, cfg.train.epochs) == (
        "adam",
        1e-3,
        32,
        3,
    )
    assert cfg.train.device == "cpu"


def test_the_zero_grad_pair_differs_in_that_one_line_only():
    pair = lessons.zero_grad_configs()
    a, b = pair["correct"].to_dict(), pair["buggy"].to_dict()
    assert a["train"].pop("skip_zero_grad") is False and b["train"].pop("skip_zero_grad") is True
    assert a == b and a["train"]["fast"] is False  # both on the plain autograd loop


def test_the_engine_pair_differs_in_the_engine_only():
    pair = lessons.engine_configs()
    a, b = pair["manual"].to_dict(), pair["lightning"].to_dict()
    assert (a["train"].pop("engine"), b["train"].pop("engine")) == ("manual", "lightning")
    assert a == b


def test_probe_comments_cover_the_four_combinations_with_the_same_sentences():
    comments = lessons.probe_comments(n=10)
    assert list(comments) == ["neither", "jerk alone", "chicken alone", "jerk chicken"]
    expected = {
        "neither": "not toxic",
        "jerk alone": "toxic",
        "chicken alone": "toxic",
        "jerk chicken": "not toxic",
    }
    for combo, texts in comments.items():
        assert len(texts) == 10 and len(set(texts)) > 5
        assert {samples.interaction_label(t) for t in texts} == {expected[combo]}
    for key, inserted in (
        ("jerk alone", " jerk"),
        ("chicken alone", " chicken"),
        ("jerk chicken", " jerk chicken"),
    ):
        assert [t.replace(inserted, "", 1) for t in comments[key]] == comments["neither"]


# --- lesson 2: the zero_grad bug -------------------------------------------------------------------------
def test_zero_grad_analysis_of_known_numbers():
    def v(norms, acc, loss):
        g = np.array(norms, np.float64)[:, None] * np.array([[0.6, 0.8]])  # two layers, total = norms
        return {
            "grads": {"step": np.arange(1, len(norms) + 1), "grad_norm": g},
            "summary": {"dev_accuracy": acc, "train_loss": loss},
        }

    a = lessons.zero_grad_analysis(v([1, 1, 1, 1], 0.9, 0.2), v([1, 2, 3, 8], 0.6, 0.7))
    assert a["growth"] == pytest.approx(8.0) and a["rising_fraction"] == 1.0
    assert a["end_ratio"] == pytest.approx(8.0) and a["accuracy_gap_points"] == pytest.approx(30.0)
    assert "grew from 1 at step 1 to 8 at step 4 (8x)" in a["text"] and "+30.0 points" in a["text"]


@pytest.fixture(scope="module")
def zero_grad_runs(interaction):
    return {name: run_view(cfg, interaction) for name, cfg in lessons.zero_grad_configs().items()}


def test_without_zero_grad_the_gradient_norm_grows_step_after_step(zero_grad_runs):
    a = lessons.zero_grad_analysis(zero_grad_runs["correct"], zero_grad_runs["buggy"])
    nb, nc = a["norm_buggy"], a["norm_correct"]
    assert len(nb) == len(nc) == 200  # every step probed
    windows_b, windows_c = nb.reshape(8, 25).mean(axis=1), nc.reshape(8, 25).mean(axis=1)
    assert np.all(np.diff(windows_b) > 0)  # every 25 steps larger than the 25 before
    assert np.all(windows_b > 3 * windows_c)
    assert nb[19] > 3 * nb[0] and a["growth"] > 20
    assert a["end_ratio"] > 5 and nc.max() < nb.max() / 3
    assert a["accuracy_gap_points"] > 10
    print("\nzero_grad:", a["text"])
    assert f"({a['growth']:,.0f}x)" in a["text"]


# --- lesson 3: hidden layers and nonlinearity ------------------------------------------------------------
@pytest.fixture(scope="module")
def interaction_runs(interaction):
    models, accs = {}, {}
    for name, cfg in lessons.interaction_configs().items():
        models[name] = build_model(cfg, interaction)
        accs[name] = run_view(cfg, interaction, models[name])["summary"]["dev_accuracy"]
    return models, accs


def test_only_the_nonlinear_net_learns_the_interaction(interaction, interaction_runs):
    models, accs = interaction_runs
    table = lessons.interaction_table(models, interaction.vectorizer, interaction.class_names)
    a = lessons.interaction_analysis(accs, table)
    print("\ninteraction:", a["text"])
    for row in table:
        print("   ", row["words"], {k: round(row[k], 3) for k in accs})
    assert a["same_ceiling"] and a["ceiling_gap_points"] < 3 and a["nonlinear_gain_points"] > 20
    assert a["right"]["3 layers + ReLU"] == 4
    assert a["right"]["no hidden layers"] <= 3 and a["right"]["3 linear layers"] <= 3
    relu = {row["words"]: row["3 layers + ReLU"] for row in table}
    assert relu["jerk alone"] > 0.8 and relu["chicken alone"] > 0.8
    assert relu["jerk chicken"] < 0.2 and relu["neither"] < 0.2


def test_p_toxic_reads_back_probabilities_from_the_models_device(interaction, interaction_runs):
    model = interaction_runs[0]["3 layers + ReLU"]
    p = lessons.p_toxic(model, interaction.vectorizer, interaction.class_names, ["that guy jerk", "lol"])
    assert isinstance(p, np.ndarray) and p.shape == (2,) and ((p > 0) & (p < 1)).all()
    assert model.training  # left as found


def test_engine_comparison_states_the_gap():
    m = {
        "dev_accuracy": 0.95,
        "dev_loss": 0.2,
        "train_loss": 0.3,
        "steps": 100,
        "examples_per_second": 9000.0,
        "path": "fast-cpu",
    }
    lt = dict(m, dev_accuracy=0.945, examples_per_second=3000.0, path="autograd")
    r = lessons.engine_comparison(m, lt)
    assert r["gap_points"] == pytest.approx(0.5) and r["speed_ratio"] == pytest.approx(3.0)
    assert "0.50 points apart" in r["text"]


def test_overlay_figures_draw_each_run(zero_grad_runs):
    loss, acc, grad = lesson_plots.overlay_figures(zero_grad_runs)
    assert [t.name for t in grad.data] == ["correct: ||gradient||", "buggy: ||gradient||"]
    assert len(acc.data) == 2 and len(loss.data) == 4
    assert grad.layout.yaxis.type == "log"


def test_importing_the_lessons_does_not_import_torch_or_plotly():
    import subprocess
    import sys

    code = "import sys, ffnlp_core.inspect.lessons, ffnlp_core.inspect.gpu_lesson; print(sorted({'torch', 'plotly'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"  # the Lessons page reads the configurations without either
