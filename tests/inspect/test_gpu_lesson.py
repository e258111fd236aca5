"""Tests for ffnlp_core.inspect.gpu_lesson (lesson 4: the lecture's matmul loop per device, the analysis, the
recorded GPU figures) and for benchmarks/gpu_check.py, the prepared GPU check, here on the CPU."""

from pathlib import Path

import numpy as np
import pytest
import torch

from ffnlp_core.inspect import gpu_lesson
from ffnlp_core.plots import lessons as lesson_plots

ROOT = Path(__file__).resolve().parents[2]


# --- lesson 4: what a GPU buys ------------------------------------------------------------------------------
def test_matmul_benchmark_on_the_cpu_runs_the_lectures_loop():
    r = gpu_lesson.matmul_benchmark("cpu", size=200, repeats=40, max_seconds=5.0)
    assert r["iterations"] == 40 and r["seconds_per_iteration"] > 0
    assert r["seconds_for_300"] == pytest.approx(300 * r["seconds_per_iteration"])
    # repeated normalize(t @ t) converges to rows of equal entries, 1/sqrt(200) each (the lecture's 0.0316 at 1000)
    np.testing.assert_allclose(r["result_head"], 1 / np.sqrt(200), rtol=0.1)


def test_a_missing_accelerator_is_refused_and_not_offered(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        gpu_lesson.matmul_benchmark("cuda")
    assert "cuda" not in gpu_lesson.accelerators()
    assert list(gpu_lesson.gpu_epoch_configs()) == ["cpu"] + gpu_lesson.accelerators()


def test_gpu_analysis_without_and_with_an_accelerator(monkeypatch):
    cpu = {"device": "cpu", "label": "CPU", "seconds_per_iteration": 0.1, "seconds_for_300": 30.0}
    only = gpu_lesson.gpu_analysis([cpu], {"cpu": {"examples_per_second": 1000.0, "dev_accuracy": 0.6}})
    assert not only["has_accelerator"] and only["text"].startswith("No GPU here")
    gpu = {"device": "cuda", "label": "CUDA: H100", "seconds_per_iteration": 0.002, "seconds_for_300": 0.6}
    both = gpu_lesson.gpu_analysis(
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
    monkeypatch.setattr(gpu_lesson, "accelerators", lambda: ["cuda"])
    cfgs = gpu_lesson.gpu_epoch_configs()
    assert [c.train.device for c in cfgs.values()] == ["cpu", "cuda"] and all(
        not c.train.fast for c in cfgs.values()
    )


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


def test_the_recorded_gpu_figures_name_device_date_and_command_and_agree_with_their_ratio():
    ref = gpu_lesson.GPU_REFERENCE
    assert ref["device"] and ref["date"] and "bench_train.py --device cuda" in ref["command"]
    measured = ref["rows"][0]
    ratio = measured["ffnlp's loop, examples/s"] / measured["lecture's loop, examples/s"]
    assert round(ratio, 2) == measured["ratio"]
    assert "autograd" in gpu_lesson.WHY_CPU_DIFFERS and "fast path" in gpu_lesson.WHY_CPU_DIFFERS
