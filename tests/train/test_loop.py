"""Tests for ffnlp_core.train.loop: the event stream of real (short) runs on the built-in interaction data."""

import math
import threading

import numpy as np
import pytest
import torch

from ffnlp_core.events import Eval, Failed, Finished, Gradients, HiddenSnapshot, Started, Steps
from ffnlp_core.train.autograd import AutogradStepper
from ffnlp_core.train.devices import resolve_device
from ffnlp_core.train.fastpath import FastCpuStepper
from ffnlp_core.train.plan import build_model, schedule

SUMMARY_FIELDS = {
    "train_examples",
    "dev_examples",
    "vocab_size",
    "classes",
    "steps",
    "train_loss",
    "train_accuracy",
    "dev_accuracy",
    "examples_per_second",
    "device",
    "grad_rms",
}


def of(events, kind) -> list:
    return [e for e in events if isinstance(e, kind)]


def step_numbers(events) -> np.ndarray:
    return np.concatenate([e.step for e in of(events, Steps)])


def losses(events) -> np.ndarray:
    return np.concatenate([e.loss for e in of(events, Steps)])


def weights(model) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


# ---- the stream of one run (the shared run: 2 epochs, batch 48, eval every 20 steps) -------------------


def test_started_first_finished_last_and_only_progress_between(shared_run):
    events = shared_run.events
    assert isinstance(events[0], Started)
    assert isinstance(events[-1], Finished) and events[-1].stopped is False
    middle = events[1:-1]
    assert all(isinstance(e, Steps | Gradients | Eval | HiddenSnapshot) for e in middle)
    assert len(of(events, Started)) == 1 and len(of(events, Finished)) == 1 and not of(events, Failed)
    for before, snap in zip(events, events[1:], strict=False):  # each snapshot follows its evaluation
        if isinstance(snap, HiddenSnapshot):
            assert isinstance(before, Eval) and before.step == snap.step


def test_started_describes_the_run(shared_run):
    s = shared_run.events[0]
    assert (s.train_examples, s.dev_examples, s.vocab_size) == (3200, 800, 78)
    assert s.classes == ["not toxic", "toxic"]
    assert s.steps_per_epoch == 67 and s.total_steps == 134  # ceil(3200 / 48) = 67, 2 epochs
    assert s.layer_names == ["layer_0", "layer_1", "layer_2", "output_layer"]
    assert s.hidden_sizes == [32, 16, 8]
    assert s.params_per_layer == [(78 + 1) * 32, (32 + 1) * 16, (16 + 1) * 8, (8 + 1) * 2]
    assert (s.device, s.path, s.engine) == ("cpu", "fast-cpu", "manual")


def test_steps_are_numbered_1_to_total_without_gaps(shared_run):
    events, cfg = shared_run.events, shared_run.cfg
    total = math.ceil(3200 / cfg.train.batch_size) * cfg.train.epochs
    np.testing.assert_array_equal(step_numbers(events), np.arange(1, total + 1))
    blocks = of(events, Steps)
    assert all(b.total_steps == total for b in blocks)
    assert all(len(b.step) == len(b.loss) == len(b.accuracy) for b in blocks)
    assert [b.epoch for b in blocks] == sorted(b.epoch for b in blocks)
    epoch_of_step = {int(s): b.epoch for b in blocks for s in b.step}
    assert epoch_of_step[67] == 1 and epoch_of_step[68] == 2


def test_examples_seen_counts_every_row_of_every_epoch(shared_run):
    blocks = of(shared_run.events, Steps)
    seen = [b.examples_seen for b in blocks]
    assert seen == sorted(seen)
    assert seen[-1] == 2 * 3200
    assert blocks[0].examples_seen == 48  # the first block is the first step alone
    assert blocks[-1].examples_per_second == pytest.approx(6400 / blocks[-1].train_seconds)


def test_step_figures_are_real_losses_and_accuracies(shared_run):
    events = shared_run.events
    loss, acc = losses(events), np.concatenate([e.accuracy for e in of(events, Steps)])
    assert loss.dtype == np.float32 and np.all(np.isfinite(loss))
    assert loss[0] == pytest.approx(math.log(2), abs=0.1)  # untrained: about chance on 2 classes
    assert loss[-20:].mean() < 0.6 * loss[:20].mean()  # it learns
    # every batch accuracy is correct / batch size: a multiple of 1/48, or of 1/32 for the short last batch
    full = acc[np.r_[0:66, 67:133]] * 48
    np.testing.assert_allclose(full, np.round(full), atol=1e-4)
    short = acc[[66, 133]] * 32
    np.testing.assert_allclose(short, np.round(short), atol=1e-4)


def test_eval_at_every_eval_every_steps_and_each_epoch_end(shared_run):
    evals = of(shared_run.events, Eval)
    expected = sorted({s for s in range(1, 135) if s % 20 == 0} | {67, 134})
    assert [e.step for e in evals] == expected
    assert [e.step for e in evals if e.epoch_end] == [67, 134]
    assert [e.epoch for e in evals] == [1, 1, 1, 1, 2, 2, 2, 2]
    for e in evals:
        assert e.confusion.shape == (2, 2) and e.confusion.sum() == 800
        assert e.dev_accuracy == pytest.approx(np.trace(e.confusion) / 800)
        assert np.isfinite(e.dev_loss) and np.isfinite(e.train_loss)
        assert 0 <= e.train_accuracy <= 1
    assert evals[-1].dev_accuracy > evals[0].dev_accuracy


def test_eval_train_loss_is_the_mean_since_the_previous_evaluation(shared_run):
    events = shared_run.events
    loss, steps = losses(events), step_numbers(events)
    previous = 0
    for e in of(events, Eval):
        window = loss[(steps > previous) & (steps <= e.step)]
        assert e.train_loss == pytest.approx(float(np.mean(window)), rel=1e-5)
        previous = e.step


def test_default_eval_interval_is_about_ten_per_epoch(interaction, make_config, run_events):
    cfg = make_config(hidden_sizes=[8], epochs=1, snapshot_rows=0)  # 100 steps of 32
    assert schedule(cfg, 3200) == (100, 100, 10, 1)
    evals = of(run_events(cfg, interaction), Eval)
    assert [e.step for e in evals] == list(range(10, 101, 10))
    assert [e.epoch_end for e in evals] == [False] * 9 + [True]


def test_hidden_snapshots_hold_the_sampled_dev_rows(shared_run):
    events, cfg = shared_run.events, shared_run.cfg
    snaps = of(events, HiddenSnapshot)
    assert [s.step for s in snaps] == [e.step for e in of(events, Eval)]
    rows = snaps[0].dev_rows
    assert len(rows) == cfg.train.snapshot_rows == 300
    assert np.all(np.diff(rows) > 0) and rows[0] >= 0 and rows[-1] < 800
    for s in snaps:
        np.testing.assert_array_equal(s.dev_rows, rows)  # the same comments at every snapshot
        assert [h.shape for h in s.hidden] == [(300, 32), (300, 16), (300, 8)]
        assert all(h.dtype == np.float16 for h in s.hidden)
        assert all(np.all(h >= 0) for h in s.hidden)  # ReLU outputs
        assert s.probs.shape == (300, 2) and s.probs.dtype == np.float32
        np.testing.assert_allclose(s.probs.sum(axis=1), 1.0, atol=1e-5)


def test_last_snapshot_matches_the_trained_model(shared_run):
    from ffnlp_core.nn.inputs import to_torch_csr

    snap = of(shared_run.events, HiddenSnapshot)[-1]
    model = shared_run.model.eval()
    with torch.no_grad():
        logits, hidden = model(to_torch_csr(shared_run.ds.x_dev[snap.dev_rows]))
    np.testing.assert_allclose(snap.probs, torch.softmax(logits, 1).numpy(), atol=1e-6)
    np.testing.assert_allclose(snap.hidden[-1], hidden[-1].numpy(), rtol=1e-2, atol=1e-2)  # float16


def test_snapshot_takes_all_dev_rows_when_there_are_fewer(interaction, make_config, run_events):
    cfg = make_config(hidden_sizes=[6, 4], epochs=1, snapshot_rows=2000)
    snaps = of(run_events(cfg, interaction), HiddenSnapshot)
    assert snaps
    np.testing.assert_array_equal(snaps[-1].dev_rows, np.arange(800))
    assert [h.shape for h in snaps[-1].hidden] == [(800, 6), (800, 4)]


def test_no_snapshots_with_zero_rows(interaction, make_config, run_events):
    cfg = make_config(hidden_sizes=[6], epochs=1, snapshot_rows=0)
    events = run_events(cfg, interaction)
    assert of(events, Eval) and not of(events, HiddenSnapshot)


def test_gradients_have_one_finite_column_per_layer(shared_run):
    events = shared_run.events
    names = events[0].layer_names
    grads = of(events, Gradients)
    np.testing.assert_array_equal(
        np.concatenate([g.step for g in grads]), np.arange(1, 135)
    )  # probe every step
    numel = np.array([78 * 32, 32 * 16, 16 * 8, 8 * 2])
    for g in grads:
        n = len(g.step)
        assert g.layer_names == names
        for field in ("grad_rms", "grad_norm", "signal", "update_ratio"):
            arr = getattr(g, field)
            assert arr.shape == (n, 4), field
            assert np.all(np.isfinite(arr)) and np.all(arr >= 0), field
        np.testing.assert_allclose(g.grad_norm, g.grad_rms * np.sqrt(numel), rtol=1e-6)
        assert g.dead_fraction.shape == g.saturated_fraction.shape == (n, 3)  # per hidden layer
        assert np.all((g.dead_fraction >= 0) & (g.dead_fraction <= 1))
        assert np.all(np.isnan(g.saturated_fraction))  # saturation means nothing for ReLU
    rms = np.concatenate([g.grad_rms for g in grads])
    assert np.all(rms[:, -1] > 0)


def test_summary_has_every_cli_field_with_the_runs_figures(shared_run):
    events = shared_run.events
    summary = events[-1].summary
    assert set(summary) >= SUMMARY_FIELDS
    assert "seconds" not in summary  # the CLI adds the whole run's time
    assert (summary["train_examples"], summary["dev_examples"], summary["vocab_size"]) == (3200, 800, 78)
    assert summary["classes"] == ["not toxic", "toxic"]
    assert summary["steps"] == 134
    assert summary["device"] == "cpu"
    last_epoch = np.concatenate([b.loss for b in of(events, Steps) if b.epoch == 2])
    assert len(last_epoch) == 67
    assert summary["train_loss"] == pytest.approx(float(last_epoch.mean()), rel=1e-6)
    assert summary["train_accuracy"] == pytest.approx(of(events, Steps)[-1].running_accuracy)
    assert summary["dev_accuracy"] == of(events, Eval)[-1].dev_accuracy
    last = of(events, Steps)[-1]
    assert summary["examples_per_second"] == pytest.approx(6400 / last.train_seconds)
    rms = np.concatenate([g.grad_rms for g in of(events, Gradients)])
    assert len(summary["grad_rms"]) == 4
    np.testing.assert_allclose(summary["grad_rms"], rms.mean(axis=0), rtol=1e-6)


# ---- seeds ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
def test_same_seed_same_run_other_seed_other_run(interaction, make_config, run_events, fast):
    def run(seed):
        cfg = make_config(hidden_sizes=[16, 8], activation="relu", epochs=1, seed=seed, fast=fast)
        model = build_model(cfg, interaction)
        events = run_events(cfg, interaction, model=model)
        assert events[0].path == ("fast-cpu" if fast else "autograd")
        return losses(events), weights(model), events[-1].summary

    (loss_a, w_a, s_a), (loss_b, w_b, s_b), (loss_c, w_c, _) = run(3), run(3), run(4)
    np.testing.assert_array_equal(loss_a, loss_b)
    assert w_a.keys() == w_b.keys()
    for k in w_a:
        np.testing.assert_array_equal(w_a[k], w_b[k], err_msg=k)
    assert s_a["dev_accuracy"] == s_b["dev_accuracy"]
    assert not np.array_equal(loss_a, loss_c)
    assert not np.array_equal(w_a["layer_0.weight"], w_c["layer_0.weight"])


def test_fast_and_plain_paths_compute_the_same_first_step(interaction, make_config, run_events):
    firsts = []
    for fast in (True, False):
        cfg = make_config(activation="relu", epochs=1, seed=5, fast=fast, snapshot_rows=0)
        firsts.append(losses(run_events(cfg, interaction))[:3])
    np.testing.assert_allclose(firsts[0], firsts[1], rtol=1e-4)


def test_fast_and_plain_paths_reach_the_same_dev_accuracy(interaction, make_config, run_events):
    acc = {}
    for fast in (True, False):
        cfg = make_config(activation="relu", epochs=4, seed=0, fast=fast, snapshot_rows=0)
        acc[fast] = run_events(cfg, interaction)[-1].summary["dev_accuracy"]
    print(f"\ndev accuracy, relu [100,100,100], 4 epochs: fast {acc[True]:.4f}, plain {acc[False]:.4f}")
    assert acc[True] > 0.9
    assert abs(acc[True] - acc[False]) <= 0.02


# ---- stopping and failing ------------------------------------------------------------------------------


def test_stop_flag_ends_the_run_early(interaction, make_config):
    from ffnlp_core.train.loop import train

    cfg = make_config(hidden_sizes=[8], epochs=3, snapshot_rows=0)
    stop = threading.Event()
    events = []
    for event in train(cfg, interaction, stop=stop):
        events.append(event)
        if isinstance(event, Steps):
            stop.set()
    first = of(events, Steps)[0]
    assert isinstance(events[-1], Finished) and events[-1].stopped is True
    assert step_numbers(events).max() == first.step[-1]  # no step runs once the flag is set
    assert events[-1].summary["steps"] == first.step[-1] < events[0].total_steps == 300


def test_stop_before_the_start_trains_nothing(interaction, make_config, run_events):
    stop = threading.Event()
    stop.set()
    events = run_events(make_config(hidden_sizes=[8], snapshot_rows=0), interaction, stop=stop)
    assert [type(e) for e in events] == [Started, Finished]
    assert events[-1].stopped is True and events[-1].summary["steps"] == 0


DIVERGING = {
    "sgd-lr10-momentum0.99": dict(optimizer="sgd", lr=10.0, momentum=0.99),
    "sgd-lr5-momentum0.9": dict(optimizer="sgd", lr=5.0, momentum=0.9),  # reachable from the CLI
}


def diverge(make_config, run_events, ds, fast, settings=DIVERGING["sgd-lr10-momentum0.99"]) -> list:
    return run_events(make_config(epochs=1, fast=fast, snapshot_rows=0, **settings), ds)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's overflow warnings are the point here
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize("settings", list(DIVERGING.values()), ids=list(DIVERGING))
def test_a_diverging_run_fails_at_the_step_where_the_loss_broke(
    interaction, make_config, run_events, settings, fast
):
    events = diverge(make_config, run_events, interaction, fast, settings)
    failed = events[-1]
    assert isinstance(failed, Failed), type(failed)
    assert failed.kind == "diverged"
    assert f"diverged at step {failed.step}" in failed.reason
    assert "learning rate" in failed.reason and f"(now {settings['lr']:g})" in failed.reason
    assert 1 < failed.step < events[0].total_steps
    assert not of(events, Finished)
    np.testing.assert_array_equal(step_numbers(events), np.arange(1, failed.step))  # every good step
    assert np.all(np.isfinite(losses(events)))
    summary = failed.summary
    assert set(summary) >= SUMMARY_FIELDS
    assert len(summary["grad_rms"]) == 4
    for key in ("train_loss", "train_accuracy", "examples_per_second"):
        assert math.isfinite(summary[key]), key
    good = losses(events)
    assert summary["train_loss"] == pytest.approx(float(good.mean()), rel=1e-6)  # the good steps only


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
def test_a_diverged_summary_counts_no_steps_past_the_divergence(interaction, make_config, run_events, fast):
    failed = diverge(make_config, run_events, interaction, fast)[-1]
    assert isinstance(failed, Failed)
    assert failed.summary["steps"] <= failed.step, (failed.summary["steps"], failed.reason)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
def test_a_diverged_run_reports_only_finite_gradients(interaction, make_config, run_events, fast):
    events = diverge(make_config, run_events, interaction, fast)
    failed = events[-1]
    assert isinstance(failed, Failed)
    for g in of(events, Gradients):
        bad = g.step[~np.all(np.isfinite(g.grad_rms), axis=1)]
        assert len(bad) == 0, f"non-finite grad_rms at steps {bad.tolist()} (failed at step {failed.step})"
    assert all(math.isfinite(g) for g in failed.summary["grad_rms"]), failed.summary["grad_rms"]


def test_an_error_inside_a_step_becomes_a_failed_event(interaction, make_config, run_events, monkeypatch):
    real_step = FastCpuStepper.step

    def step(self, start, stop, probe=False):
        if start >= 2 * 32:  # the third step
            raise RuntimeError("kaboom in the kernel")
        return real_step(self, start, stop, probe)

    monkeypatch.setattr(FastCpuStepper, "step", step)
    events = run_events(make_config(hidden_sizes=[8], epochs=1, snapshot_rows=0), interaction)
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.kind == "error"
    assert failed.step == 3
    assert "RuntimeError" in failed.reason and "kaboom in the kernel" in failed.reason
    assert "step 3" in failed.reason
    assert set(failed.summary) >= SUMMARY_FIELDS
    assert np.all(step_numbers(events) < 3)


def test_an_error_on_the_plain_path_becomes_a_failed_event(interaction, make_config, run_events, monkeypatch):
    def step(self, start, stop, probe=False):
        raise ValueError("bad batch")

    monkeypatch.setattr(AutogradStepper, "step", step)
    events = run_events(make_config(hidden_sizes=[8], fast=False, snapshot_rows=0), interaction)
    assert isinstance(events[0], Started) and events[0].path == "autograd"
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.kind == "error" and failed.step == 1
    assert "ValueError at step 1: bad batch" in failed.reason


def test_an_explicit_missing_device_is_refused():
    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    with pytest.raises(ValueError, match="cuda"):
        resolve_device("cuda")


# ---- what the lecture is about -------------------------------------------------------------------------


def test_a_nonlinear_hidden_layer_learns_what_no_linear_model_can(interaction, make_config, run_events):
    acc = {}
    for name, settings in {
        "logistic regression (hidden [])": dict(hidden_sizes=[]),
        "[100,100,100] no activation": dict(activation="none"),
        "[100,100,100] relu": dict(activation="relu"),
    }.items():
        cfg = make_config(epochs=8, seed=0, snapshot_rows=0, **settings)
        acc[name] = run_events(cfg, interaction)[-1].summary["dev_accuracy"]
    print("\ndev accuracy after 8 epochs on interaction:", {k: round(v, 4) for k, v in acc.items()})
    linear, deep_linear, relu = acc.values()
    assert linear < 0.70
    assert deep_linear < 0.70  # stacked linear layers are still one linear map
    assert relu > 0.90


@pytest.mark.parametrize("engine", ["manual", "lightning"])
def test_a_paced_run_is_spread_over_its_pace_and_reports_its_real_speed(
    interaction, make_config, run_events, engine
):
    """pace_seconds=3: the 100 steps of one epoch arrive over >= 3 s, one step block after another, while
    the summary's examples/s is still the training speed (well above the paced wall-clock rate)."""
    import time

    cfg = make_config(engine=engine, epochs=1, pace_seconds=3.0)
    t0 = time.perf_counter()
    events = run_events(cfg, interaction)
    took = time.perf_counter() - t0
    assert took >= 3.0
    assert len(of(events, Steps)) >= 8  # the curve moves: blocks keep arriving while it waits
    summary = of(events, Finished)[0].summary
    assert summary["steps"] == 100 and summary["examples_per_second"] > 2 * 3200 / took
