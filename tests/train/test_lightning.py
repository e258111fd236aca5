"""Tests for ffnlp_core.train.lightning: the Lightning Trainer streams the manual engine's events, reaches the
same dev accuracy from the same seed, stops on the flag, stays quiet, and runs DDP with 2 CPU processes."""

import json
import math
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ffnlp_core.config import ConfigError, RunConfig
from ffnlp_core.events import Eval, Failed, Finished, Gradients, HiddenSnapshot, Started, Steps
from ffnlp_core.runs.manager import JobManager
from ffnlp_core.runs.store import RunStore
from ffnlp_core.train import lightning as lightning_engine
from ffnlp_core.train.evaluate import evaluate
from ffnlp_core.train.plan import build_model

ROOT = Path(__file__).resolve().parents[2]
# Lightning 2.6 calls a torch pytree helper that torch 2.13 deprecates; nothing this project can change
pytestmark = pytest.mark.filterwarnings("ignore:.*isinstance.treespec, LeafSpec.. is deprecated")
# batch 48 on 3,200 rows: 67 steps an epoch (the last one short), so an evaluation every 20 steps misses the
# epoch end, which both engines must still evaluate
SCHEDULE = dict(hidden_sizes=[32, 16], activation="relu", lr=0.01, batch_size=48, epochs=2, eval_every=20)


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def steps_of(events) -> np.ndarray:
    return np.concatenate([e.step for e in of(events, Steps)])


def losses_of(events) -> np.ndarray:
    return np.concatenate([e.loss for e in of(events, Steps)])


@pytest.fixture(scope="module")
def pair(interaction, make_config, run_events):
    """The same config trained by the plain manual loop and by Lightning: (manual events, lightning events)."""
    runs = {}
    for engine in ("manual", "lightning"):
        cfg = make_config(engine=engine, fast=False, snapshot_rows=200, seed=3, **SCHEDULE)
        runs[engine] = run_events(cfg, interaction)
    return runs["manual"], runs["lightning"]


def test_the_event_stream_has_the_manual_engines_shape(pair):
    manual, lit = pair
    assert isinstance(lit[0], Started) and lit[0].engine == "lightning" and lit[0].path == "autograd"
    assert isinstance(lit[-1], Finished) and lit[-1].stopped is False
    assert [type(e) for e in lit if not isinstance(e, (Steps, Gradients))] == [
        type(e) for e in manual if not isinstance(e, (Steps, Gradients))
    ]
    assert lit[0].total_steps == manual[0].total_steps == 134
    assert lit[0].params_per_layer == manual[0].params_per_layer  # from Lightning's ModelSummary
    np.testing.assert_array_equal(steps_of(lit), np.arange(1, 135))
    assert set(lit[-1].summary) == set(manual[-1].summary)
    assert lit[-1].summary["engine"] == "lightning" and lit[-1].summary["steps"] == 134


def test_evaluations_every_n_steps_and_at_each_epoch_end(pair):
    manual, lit = pair
    evals = of(lit, Eval)
    assert [e.step for e in evals] == [20, 40, 60, 67, 80, 100, 120, 134]
    assert [e.step for e in evals] == [e.step for e in of(manual, Eval)]
    assert [e.epoch_end for e in evals] == [False, False, False, True, False, False, False, True]
    for e in evals:
        assert e.confusion.sum() == 800 and e.confusion.shape == (2, 2)
        assert e.dev_accuracy == pytest.approx(np.trace(e.confusion) / 800)


def test_same_seed_same_batches_as_the_plain_manual_loop(pair):
    manual, lit = pair
    # same initial weights, same batches in the same order, same optimizer: the same curve, up to float error
    np.testing.assert_allclose(losses_of(lit), losses_of(manual), rtol=1e-3, atol=1e-5)
    for a, b in zip(of(lit, Eval), of(manual, Eval), strict=True):
        assert abs(a.dev_accuracy - b.dev_accuracy) <= 0.01
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-3)


def test_hidden_snapshots_cover_the_manual_engines_dev_rows(pair):
    manual, lit = pair
    snaps, ref = of(lit, HiddenSnapshot), of(manual, HiddenSnapshot)
    assert len(snaps) == 8
    np.testing.assert_array_equal(snaps[0].dev_rows, ref[0].dev_rows)
    assert [h.shape for h in snaps[-1].hidden] == [(200, 32), (200, 16)]
    np.testing.assert_allclose(snaps[-1].probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(snaps[-1].probs, ref[-1].probs, atol=2e-3)


def test_gradient_probes_match_the_manual_engines(pair):
    manual, lit = pair
    g = of(lit, Gradients)
    grad_norm = np.concatenate([x.grad_norm for x in g])
    ref = np.concatenate([x.grad_norm for x in of(manual, Gradients)])
    assert g[0].layer_names == ["layer_0", "layer_1", "output_layer"]
    assert grad_norm.shape == ref.shape == (134, 3)  # every step probed at this size
    assert np.isfinite(grad_norm).all() and (grad_norm > 0).all()
    np.testing.assert_allclose(grad_norm[:20], ref[:20], rtol=1e-3)


def test_both_engines_reach_the_same_dev_accuracy(interaction, make_config, run_events):
    acc = {}
    for name, settings in {
        "manual (fast)": dict(engine="manual", fast=True),
        "manual (plain)": dict(engine="manual", fast=False),
        "lightning": dict(engine="lightning"),
    }.items():
        cfg = make_config(activation="relu", epochs=4, seed=0, snapshot_rows=0, **settings)
        acc[name] = run_events(cfg, interaction)[-1].summary["dev_accuracy"]
    print("\ndev accuracy, relu [100,100,100], 4 epochs:", {k: round(v, 4) for k, v in acc.items()})
    assert acc["lightning"] > 0.9
    assert abs(acc["lightning"] - acc["manual (plain)"]) <= 0.01
    assert abs(acc["lightning"] - acc["manual (fast)"]) <= 0.02


def test_the_given_model_is_trained_in_place(interaction, make_config, run_events):
    cfg = make_config(engine="lightning", hidden_sizes=[16], activation="relu", snapshot_rows=0)
    model = build_model(cfg, interaction)
    before = model.layer_0.weight.detach().clone()
    events = run_events(cfg, interaction, model=model)
    assert not torch.equal(before, model.layer_0.weight.detach())
    res = evaluate(model, interaction.x_dev, interaction.y_dev, torch.device("cpu"))
    assert res.accuracy == pytest.approx(events[-1].summary["dev_accuracy"], abs=1e-6)


def test_stop_flag_ends_the_run_within_a_second(interaction, make_config):
    cfg = make_config(engine="lightning", hidden_sizes=[8], epochs=50, snapshot_rows=0)
    stop, events, stopped_at = threading.Event(), [], None
    for event in lightning_engine.train_lightning(cfg, interaction, stop=stop):
        events.append(event)
        if isinstance(event, Steps) and stopped_at is None:
            stop.set()
            stopped_at = time.monotonic()
    assert time.monotonic() - stopped_at < 1.0
    last = events[-1]
    assert isinstance(last, Finished) and last.stopped is True
    assert last.summary["steps"] == steps_of(events).max() < events[0].total_steps == 5000
    assert not of(events[events.index(of(events, Steps)[0]) + 1 :], Eval)  # no evaluation once stopped


def test_stop_before_the_start_trains_nothing(interaction, make_config, run_events):
    stop = threading.Event()
    stop.set()
    events = run_events(
        make_config(engine="lightning", hidden_sizes=[8], snapshot_rows=0), interaction, stop=stop
    )
    assert [type(e) for e in events] == [Started, Finished]
    assert events[-1].stopped is True and events[-1].summary["steps"] == 0


def test_leaving_the_generator_early_stops_the_trainer(interaction, make_config):
    cfg = make_config(engine="lightning", hidden_sizes=[8], epochs=50, snapshot_rows=0)
    gen = lightning_engine.train_lightning(cfg, interaction)
    for event in gen:
        if isinstance(event, Steps):
            break
    t0 = time.monotonic()
    gen.close()
    assert time.monotonic() - t0 < 2.0
    assert not [t for t in threading.enumerate() if t.name == "ffnlp-lightning-fit"]


def test_early_stopping_ends_when_the_dev_loss_stops_improving(interaction, make_config, run_events):
    cfg = make_config(
        engine="lightning",
        activation="relu",
        lr=0.01,
        epochs=30,
        eval_every=25,
        early_stopping_patience=2,
        snapshot_rows=0,
    )
    events = run_events(cfg, interaction)
    losses = [e.dev_loss for e in of(events, Eval)]
    assert isinstance(events[-1], Finished) and events[-1].stopped is False
    assert events[-1].summary["steps"] < events[0].total_steps == 3000
    best = int(np.argmin(losses))
    assert len(losses) - 1 - best == 2  # stopped after exactly `patience` evaluations without a better loss


def test_a_diverging_run_fails_like_the_manual_engine(interaction, make_config, run_events):
    cfg = make_config(engine="lightning", optimizer="sgd", lr=10.0, momentum=0.99, snapshot_rows=0)
    events = run_events(cfg, interaction)
    assert isinstance(events[-1], Failed) and events[-1].kind == "diverged"
    assert "Lower the learning rate" in events[-1].reason
    assert np.isfinite(losses_of(events)).all()
    assert events[-1].summary["steps"] == events[-1].step - 1
    assert not of(events, Finished)


def test_skip_zero_grad_accumulates_gradients_in_lightning_too(interaction, make_config, run_events):
    norms = {}
    for bug in (False, True):
        cfg = make_config(engine="lightning", skip_zero_grad=bug, eval_every=50, snapshot_rows=0, seed=2)
        norms[bug] = np.concatenate([g.grad_norm[:, -1] for g in of(run_events(cfg, interaction), Gradients)])
    buggy, correct = norms[True][:40], norms[False][:40]
    assert buggy[39] > 5 * buggy[0]  # the sum of 40 steps' gradients
    assert buggy[39] > 5 * correct[39]


def test_a_missing_device_is_refused(interaction, make_config, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = make_config(engine="lightning", hidden_sizes=[8])
    cfg.train.device = "cuda"
    with pytest.raises(ValueError, match="no CUDA GPU"):
        list(lightning_engine.train_lightning(cfg, interaction))


def test_distributed_settings_are_part_of_the_config(interaction, make_config):
    cfg = make_config(engine="lightning", hidden_sizes=[8], snapshot_rows=0, devices=2, strategy="ddp_spawn")
    assert RunConfig.from_json(cfg.to_json()).train.strategy == "ddp_spawn"  # saved with the run
    with pytest.raises(ValueError, match="use --strategy ddp"):
        list(lightning_engine.train_lightning(cfg, interaction))
    cfg.train.devices, cfg.train.strategy = 1, "auto"
    events = list(lightning_engine.train_lightning(cfg, interaction))  # nothing left over from the last call
    assert isinstance(events[-1], Finished) and events[-1].summary["steps"] == 100


def test_several_devices_need_the_lightning_engine(make_config):
    with pytest.raises(ConfigError, match="Lightning engine"):
        make_config(hidden_sizes=[8], devices=2)


def test_the_job_manager_runs_it_like_any_run(interaction, make_config, tmp_path):
    jm = JobManager(store=RunStore(tmp_path), max_concurrent=1, mode="thread")
    try:
        cfg = make_config(engine="lightning", hidden_sizes=[16], activation="relu", snapshot_rows=100)
        job = jm.submit(cfg, interaction, owner="t", label="lightning")
        assert job.wait(120)
        assert job.status == "finished"
        h = job.read(lambda h: (h.curves()["step"], h.eval_table()["dev_accuracy"], len(h.snapshots)))
        assert len(h[0]) == 100 and len(h[1]) == 10 and h[2] == 10
        stored = JobManager(store=RunStore(tmp_path), mode="thread").open_run(job.run_id)
        assert isinstance(stored.read(lambda h: h.summary)["dev_accuracy"], float)
    finally:
        jm.shutdown()


QUIET_RUN = """
import torch
from ffnlp_core.config import RunConfig
from ffnlp_core.data.dataset import build_dataset, load_source
from ffnlp_core.train.loop import train
cfg = RunConfig()
cfg.train.engine, cfg.train.device, cfg.train.early_stopping_patience = "lightning", "cpu", 3
cfg.model.hidden_sizes = [8]
ds = build_dataset(load_source(cfg.data), cfg.data)
events = list(train(cfg, ds))
assert type(events[-1]).__name__ == "Finished", events[-1]
"""


def test_nothing_printed_and_nothing_written(tmp_path):
    env = {
        "PYTHONPATH": str(ROOT),
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONWARNINGS": "default",
    }
    work = tmp_path / "cwd"
    work.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(QUIET_RUN)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    assert list(work.iterdir()) == []


@pytest.mark.slow
def test_ddp_with_two_cpu_processes_from_the_cli(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "ffnlp_core", "train", "--engine", "lightning", "--devices", "2"]
        + ["--strategy", "ddp", "--device", "cpu", "--activation", "relu", "--epochs", "1", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1  # rank 0 alone reports
    summary = json.loads(lines[0])
    assert summary["engine"] == "lightning"
    assert summary["steps"] == 50  # each process takes half of the epoch: 1,600 rows, 50 steps of 32
    assert summary["train_examples"] == 3200 and summary["dev_examples"] == 800
    assert math.isfinite(summary["dev_accuracy"]) and summary["dev_accuracy"] > 0.55
    assert result.stderr.count("training on") == 1  # the second process printed nothing
