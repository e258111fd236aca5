"""Tests for the deferred gradient probes of ffnlp_core.train.autograd (DeviceProbes): statistics kept on the
device and read once per flush must equal, to float tolerance, the per-step probes (autograd_probe), both
for a stepper alone and in the manual loop's event stream."""

import copy

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from ffnlp_core.config import TrainConfig
from ffnlp_core.events import Gradients
from ffnlp_core.nn.model import FeedForwardClassifier
from ffnlp_core.train import loop
from ffnlp_core.train.autograd import AutogradStepper

VOCAB, CLASSES, ROWS, B = 40, 3, 48, 8
CPU = torch.device("cpu")
FIELDS = ("grad_sq", "numel", "signal", "update_sq", "weight_sq", "dead", "saturated")


def make_data(seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    """Counts (ROWS, VOCAB) up to 3 with ~20% of words present; labels (ROWS,)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 4, size=(ROWS, VOCAB)) * (rng.random((ROWS, VOCAB)) < 0.2)
    return sp.csr_matrix(counts.astype(np.float32)), rng.integers(0, CLASSES, size=ROWS).astype(np.int64)


def twin_steppers(activation: str, dropout: float = 0.0):
    """A per-step and a deferred stepper on identical models (same weights, same dropout stream)."""
    torch.manual_seed(0)
    model = FeedForwardClassifier(VOCAB, [7, 5], activation, dropout, CLASSES)
    twin = copy.deepcopy(model)
    cfg = TrainConfig(optimizer="adam", lr=0.05)
    return AutogradStepper(model, cfg, CPU), AutogradStepper(twin, cfg, CPU, defer_probes=True)


@pytest.mark.parametrize(
    ("activation", "dropout"), [("relu", 0.0), ("tanh", 0.0), ("sigmoid", 0.3), ("gelu", 0.0), ("none", 0.0)]
)
def test_deferred_probes_equal_per_step_probes(activation, dropout):
    x, y = make_data()
    per_step, deferred = twin_steppers(activation, dropout)
    per_step.begin_epoch(x, y)
    deferred.begin_epoch(x, y)
    expected = []
    for i, start in enumerate(range(0, ROWS, B)):
        probed = i % 2 == 0  # steps 1, 3, 5 are probed
        torch.manual_seed(i)  # the same dropout masks for both
        loss_a, correct_a, probe_a = per_step.step(start, start + B, probed)
        torch.manual_seed(i)
        loss_b, correct_b, probe_b = deferred.step(start, start + B, probed)
        assert probe_b is None  # a deferred probe never comes back from the step
        assert float(loss_a) == float(loss_b) and int(correct_a) == int(correct_b)
        if probed:
            expected.append((i + 1, probe_a))
    assert len(deferred.deferred.pending) == 3  # still on the device, not read yet

    got = deferred.collect_probes()
    assert [s for s, _ in got] == [1, 3, 5]
    assert deferred.collect_probes() == []  # read once
    for (_, want), (_, have) in zip(expected, got, strict=True):
        for field in FIELDS:
            np.testing.assert_allclose(
                getattr(have, field), getattr(want, field), rtol=1e-6, atol=1e-12, err_msg=field
            )
        assert np.all(want.grad_sq > 0) and np.all(want.update_sq > 0) and np.all(want.signal > 0)
    dead = np.stack([p.dead for _, p in got])
    saturated = np.stack([p.saturated for _, p in got])
    assert np.isnan(dead).all() != (activation == "relu")  # dead units: ReLU only
    assert np.isnan(saturated).all() != (activation in ("tanh", "sigmoid"))  # saturation: these two
    if activation == "relu":
        assert np.all((dead >= 0) & (dead <= 1))


def test_dead_and_saturated_fractions_are_the_real_counts():
    """A unit whose pre-activation is <= 0 for every example is dead; the deferred figure counts it."""
    x, y = make_data(seed=1)
    _, deferred = twin_steppers("relu")
    first = deferred.model.layer_0
    with torch.no_grad():
        first.weight[:, :2] = -1.0  # counts are >= 0: units 0 and 1 of layer_0 never fire
        first.bias[:2] = -1.0
    _, _, pre = deferred.model(torch.sparse_csr_tensor(*_csr(x[:B]), check_invariants=True), return_pre=True)
    z0, z1 = (z.detach().numpy() for z in pre[:2])  # what the step's forward pass computes
    expected = [float((z <= 0).all(axis=0).mean()) for z in (z0, z1)]
    assert expected[0] >= 2 / 7 - 1e-9  # the two silenced units at least
    deferred.begin_epoch(x, y)
    deferred.step(0, B, True)
    ((_, probe),) = deferred.collect_probes()
    np.testing.assert_allclose(probe.dead, expected, atol=1e-6)
    assert np.isnan(probe.saturated).all()


def _csr(x: sp.csr_matrix):
    return (
        torch.from_numpy(x.indptr.astype(np.int64)),
        torch.from_numpy(x.indices.astype(np.int64)),
        torch.from_numpy(x.data),
        x.shape,
    )


def test_manual_loop_streams_the_same_gradients_deferred_or_per_step(interaction, make_config, monkeypatch):
    """The autograd path of the manual loop (fast=False) defers its probes; the Gradients events it streams
    equal those of the same run probed step by step."""
    settings = dict(hidden_sizes=[16, 8], activation="tanh", batch_size=64, fast=False, seed=3, probe_every=2)
    deferred_events = list(loop.train(make_config(**settings), interaction))
    calls = []
    real_collect = AutogradStepper.collect_probes

    class PerStep(AutogradStepper):
        def __init__(self, model, cfg, device, defer_probes=False):
            super().__init__(model, cfg, device, defer_probes=False)

        def collect_probes(self):
            calls.append(1)
            return real_collect(self)

    monkeypatch.setattr(loop, "AutogradStepper", PerStep)
    per_step_events = list(loop.train(make_config(**settings), interaction))
    a = [e for e in deferred_events if isinstance(e, Gradients)]
    b = [e for e in per_step_events if isinstance(e, Gradients)]
    assert calls  # the per-step run went through the same flushes, with nothing deferred
    assert len(a) == len(b) > 1
    for ga, gb in zip(a, b, strict=True):
        np.testing.assert_array_equal(ga.step, gb.step)
        for field in (
            "grad_rms",
            "grad_norm",
            "signal",
            "update_ratio",
            "dead_fraction",
            "saturated_fraction",
        ):
            np.testing.assert_allclose(getattr(ga, field), getattr(gb, field), rtol=1e-6, err_msg=field)
    steps = np.concatenate([g.step for g in a])
    np.testing.assert_array_equal(steps, np.concatenate(([1], np.arange(2, steps[-1] + 1, 2))))
    assert np.all(np.isnan(np.concatenate([g.dead_fraction for g in a])))  # tanh: no dead units
    saturated = np.concatenate([g.saturated_fraction for g in a])
    assert np.all((saturated >= 0) & (saturated <= 1))
