"""Tests for ffnlp_core.inspect.lessons (the runs each lesson trains and the statements measured from them) and
for ffnlp_core.plots.lessons (their figures, drawn here from the same runs)."""

from pathlib import Path

import numpy as np
import pytest
import torch

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


# --- lesson 4: what a GPU buys ------------------------------------------------------------------------------
def test_matmul_benchmark_on_the_cpu_runs_the_lectures_loop():
    r = lessons.matmul_benchmark("cpu", size=200, repeats=40, max_seconds=5.0)
    assert r["iterations"] == 40 and r["seconds_per_iteration"] > 0
    assert r["seconds_for_300"] == pytest.approx(300 * r["seconds_per_iteration"])
    # repeated normalize(t @ t) converges to rows of equal entries, 1/sqrt(200) each (the lecture's 0.0316 at 1000)
    np.testing.assert_allclose(r["result_head"], 1 / np.sqrt(200), rtol=0.1)


def test_a_missing_accelerator_is_refused_and_not_offered(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        lessons.matmul_benchmark("cuda")
    assert "cuda" not in lessons.accelerators()
    assert list(lessons.gpu_epoch_configs()) == ["cpu"] + lessons.accelerators()


def test_gpu_analysis_without_and_with_an_accelerator(monkeypatch):
    cpu = {"device": "cpu", "label": "CPU", "seconds_per_iteration": 0.1, "seconds_for_300": 30.0}
    only = lessons.gpu_analysis([cpu], {"cpu": {"examples_per_second": 1000.0, "dev_accuracy": 0.6}})
    assert not only["has_accelerator"] and only["text"].startswith("No GPU here")
    gpu = {"device": "cuda", "label": "CUDA: H100", "seconds_per_iteration": 0.002, "seconds_for_300": 0.6}
    both = lessons.gpu_analysis(
        [cpu, gpu],
        {
            "cpu": {"examples_per_second": 1000.0, "dev_accuracy": 0.6},
            "cuda": {"examples_per_second": 4000.0},
        },
    )
    assert both["rows"][1]["speed-up vs CPU (matmul)"] == pytest.approx(50.0)
    assert both["rows"][1]["speed-up vs CPU (epoch)"] == pytest.approx(4.0)
    assert "50x faster" in both["text"]
    fig = lesson_plots.gpu_figure(both)
    assert [list(t.y) for t in fig.data] == [[100.0, 2.0], [1000.0, 4000.0]]
    monkeypatch.setattr(lessons, "accelerators", lambda: ["cuda"])
    cfgs = lessons.gpu_epoch_configs()
    assert [c.train.device for c in cfgs.values()] == ["cpu", "cuda"] and all(
        not c.train.fast for c in cfgs.values()
    )


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


# --- benchmarks/gpu_check.py (the prepared GPU check), here on the CPU --------------------------------------
@pytest.mark.slow
def test_gpu_check_runs_on_the_cpu_says_no_cuda_and_fails_soft(tmp_path):
    import json
    import subprocess
    import sys

    bad = tmp_path / "broken.csv"
    bad.write_text("only a header line\n", encoding="utf-8")  # the davidson part must fail, the rest go on
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--quick", "--davidson", str(bad)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": ""},
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    parts = [line["part"] for line in lines]
    device = lines[0]
    assert device["part"] == "device" and device["cuda"] is False and "no CUDA" in device["note"]
    matmul = next(line for line in lines if line["part"] == "matmul")
    assert matmul["device"] == "cpu" and matmul["iterations"] >= 10
    np.testing.assert_allclose(matmul["result_head"], 1 / np.sqrt(1000), rtol=0.1)
    assert "matmul_ratio" not in parts  # nothing to compare without a GPU
    assert "DataError" in next(line["error"] for line in lines if line["part"] == "data:davidson")
    epochs = [line for line in lines if line["part"] == "epoch"]
    assert [(e["data"], e["engine"], e["path"]) for e in epochs] == [
        ("builtin", "manual", "fast-cpu"),
        ("builtin", "manual", "autograd"),
        ("builtin", "lightning", "autograd"),
    ]
    assert all(
        e["device"] == "cpu" and e["examples_per_second"] > 0 and 0.5 < e["dev_accuracy"] < 1 for e in epochs
    )
    assert parts[-1] == "done" and lines[-1]["cuda"] is False
    assert list(tmp_path.iterdir()) == [bad]  # nothing written


def test_importing_the_lessons_does_not_import_torch_or_plotly():
    import subprocess
    import sys

    code = "import sys, ffnlp_core.inspect.lessons; print(sorted({'torch', 'plotly'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"  # the Lessons page reads the configurations without either


def test_the_recorded_gpu_figures_name_device_date_and_command_and_agree_with_their_ratio():
    ref = lessons.GPU_REFERENCE
    assert ref["device"] and ref["date"] and "bench_train.py --device cuda" in ref["command"]
    measured = ref["rows"][0]
    ratio = measured["ffnlp's loop, examples/s"] / measured["lecture's loop, examples/s"]
    assert round(ratio, 2) == measured["ratio"]
    assert "autograd" in lessons.WHY_CPU_DIFFERS and "fast path" in lessons.WHY_CPU_DIFFERS
