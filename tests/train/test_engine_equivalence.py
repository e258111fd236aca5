"""Both engines report through ffnlp_core.train.report: the same config gives the same event stream (types in
the same order, the same fields of the same kinds, the same summary keys) and the same divergence."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from ffnlp_core.events import Failed, Gradients, HardExamples, HiddenSnapshot, Started, Steps
from ffnlp_core.train import report
from ffnlp_core.train.plan import build_model

pytestmark = pytest.mark.filterwarnings("ignore:.*isinstance.treespec, LeafSpec.. is deprecated")
# hidden [8, 8], 1 epoch of 3,200 rows at batch 64: 50 steps, an evaluation every 10
SMALL = dict(hidden_sizes=[8, 8], activation="relu", epochs=1, batch_size=64, eval_every=10, seed=2)
SMALL_EVENTS = dict(snapshot_rows=100, hard_examples=5)


@pytest.fixture(autouse=True)
def blocks_by_schedule_only(monkeypatch):
    """Step blocks are cut by the schedule alone (not by the clock), so the two streams can be compared."""
    monkeypatch.setattr(report, "FLUSH_SECONDS", math.inf)


def both(make_config, run_events, ds, model_edit=None, **settings) -> dict:
    """engine -> the events of one run of `settings` (the manual engine on its plain autograd path)."""
    runs = {}
    for engine in ("manual", "lightning"):
        cfg = make_config(engine=engine, fast=False, **settings)
        model = build_model(cfg, ds)
        if model_edit:
            model_edit(model, ds)
        runs[engine] = run_events(cfg, ds, model=model)
    return runs


def shape(value):
    """What a field holds, without its figures: type, and dtype and shape for arrays."""
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), value.shape)
    if isinstance(value, list):
        return ("list", [shape(v) for v in value])
    return type(value).__name__


def fields(event) -> dict:
    return {f.name: shape(getattr(event, f.name)) for f in dataclasses.fields(event)}


def assert_same_stream(manual, lit):
    assert [type(e).__name__ for e in lit] == [type(e).__name__ for e in manual]
    for a, b in zip(manual, lit, strict=True):
        if isinstance(a, Steps | Gradients):
            np.testing.assert_array_equal(a.step, b.step)
        assert fields(a) == fields(b), type(a).__name__
    assert set(manual[-1].summary) == set(lit[-1].summary)
    assert {k: shape(v) for k, v in manual[-1].summary.items()} == {
        k: shape(v) for k, v in lit[-1].summary.items()
    }


def test_the_same_config_gives_the_same_event_stream(interaction, make_config, run_events):
    runs = both(make_config, run_events, interaction, **SMALL, **SMALL_EVENTS)
    manual, lit = runs["manual"], runs["lightning"]
    assert_same_stream(manual, lit)
    kinds = {type(e) for e in manual}
    assert {Started, Steps, Gradients, HiddenSnapshot, HardExamples} <= kinds  # every kind was compared
    assert [type(e).__name__ for e in manual[-4:]] == ["Eval", "HiddenSnapshot", "HardExamples", "Finished"]
    started = {e: dataclasses.asdict(runs[e][0]) for e in runs}
    for key in ("run_id", "engine"):
        started["manual"].pop(key), started["lightning"].pop(key)
    assert started["manual"] == started["lightning"]  # the same run described the same way
    assert manual[-1].summary["steps"] == lit[-1].summary["steps"] == 50


def test_a_learning_rate_that_blows_up_fails_both_alike(interaction, make_config, run_events):
    # the lecture's [100, 100, 100] at batch 32 (test_loop's diverging run): the loss breaks within 100 steps
    settings = dict(epochs=1, eval_every=10, optimizer="sgd", lr=10.0, momentum=0.99, snapshot_rows=0)
    runs = both(make_config, run_events, interaction, **settings)
    assert_same_stream(runs["manual"], runs["lightning"])
    failed = {e: runs[e][-1] for e in runs}
    for f in failed.values():
        assert isinstance(f, Failed) and f.kind == "diverged"
        assert f"diverged at step {f.step}: " in f.reason and "(now 10)" in f.reason
        assert f.summary["steps"] == f.step - 1 > 0
        for key in ("train_loss", "train_accuracy", "examples_per_second"):
            assert math.isfinite(f.summary[key]), key
        assert all(math.isfinite(g) for g in f.summary["grad_rms"])
    assert failed["manual"].step == failed["lightning"].step
    assert failed["manual"].reason == failed["lightning"].reason


def huge_rare_weight(model, ds):
    """One first-layer weight of the rarest word at 1e20: its square overflows float32, so the weights'
    squared norm is infinite from step 1, while batches without that word still give finite losses and
    gradients (only the check of the weights themselves sees it)."""
    rarest = int(np.argmin(np.asarray((ds.x_train != 0).sum(axis=0)).ravel()))
    with torch.no_grad():
        model.layer_0.weight[rarest, 0] = 1e20  # SparseLinear keeps (vocab, width)


def test_weights_that_overflow_fail_both_at_step_1(interaction, make_config, run_events):
    runs = both(make_config, run_events, interaction, huge_rare_weight, **SMALL, snapshot_rows=0)
    assert_same_stream(runs["manual"], runs["lightning"])
    for events in runs.values():
        assert [type(e) for e in events] == [Started, Failed]
        failed = events[-1]
        assert failed.kind == "diverged" and failed.step == 1
        assert "the weights became infinite or nan" in failed.reason
        assert failed.summary["steps"] == 0 and failed.summary["grad_rms"] == []
