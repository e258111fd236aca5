"""Tests for ffnlp_core.nn.activations: every record of the registry goes through every consumer — the model,
the CPU fast path against autograd, the probes, the generated code and the gradient bound — so an activation
cannot be half-added (a record with a wrong field, or one consumer changed alone, fails here)."""

import copy

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch.nn import functional as F

from ffnlp_core.config import RunConfig, TrainConfig
from ffnlp_core.inspect import codegen
from ffnlp_core.inspect import gradients as gr
from ffnlp_core.nn.activations import ACTIVATIONS
from ffnlp_core.nn.inputs import to_torch_csr
from ffnlp_core.nn.model import FeedForwardClassifier
from ffnlp_core.plots import gradients as grplots
from ffnlp_core.train.fastpath import FastCpuStepper
from ffnlp_core.train.probes import SATURATION, activation_stats

NAMES = list(ACTIVATIONS)
GRID = np.linspace(-10, 10, 200_001, dtype=np.float32)


def batch(rows=8, vocab=20, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 4, size=(rows, vocab)) * (rng.random((rows, vocab)) < 0.3)
    return sp.csr_matrix(counts.astype(np.float32)), rng.integers(0, classes, size=rows).astype(np.int64)


def model(name, hidden=(6, 5), vocab=20, classes=3):
    torch.manual_seed(0)
    return FeedForwardClassifier(vocab, list(hidden), name, 0.0, classes)


@pytest.mark.parametrize("name", NAMES)
def test_the_model_applies_the_records_module_and_function(name):
    record = ACTIVATIONS[name]
    net = model(name)
    assert type(net.activation).__name__ == record.torch_module
    x, _ = batch()
    with torch.no_grad():
        _, hidden, pre = net(to_torch_csr(x), return_pre=True)
    for z, h in zip(pre[:-1], hidden, strict=True):
        np.testing.assert_allclose(h.numpy(), record.f(z.numpy()), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_the_slope_is_the_derivative_of_f(name):
    record = ACTIVATIONS[name]
    z = np.linspace(-4, 4, 81, dtype=np.float64) + 0.013  # off the kink of ReLU at 0
    h = record.f(z)
    slope = record.slope(z, h)
    slope = np.ones_like(z) if slope is None else slope
    numeric = (record.f(z + 1e-6) - record.f(z - 1e-6)) / 2e-6
    np.testing.assert_allclose(slope, numeric, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_max_slope_saturation_and_dead_units_agree_with_the_slope(name):
    record = ACTIVATIONS[name]
    s = record.slope(GRID, record.f(GRID))
    s = np.ones_like(GRID) if s is None else np.abs(s)
    assert record.max_slope == pytest.approx(float(s.max()), rel=0.01)
    ends = np.array([s[0], s[-1]])  # at z = -10 and +10
    assert record.saturates == bool((ends < SATURATION * record.max_slope).all())
    assert record.dead_units == bool((s[GRID <= 0] == 0).all())


@pytest.mark.parametrize("name", NAMES)
def test_the_fast_path_computes_autograds_gradients(name):
    net = model(name)
    fast = copy.deepcopy(net)
    x, y = batch()
    stepper = FastCpuStepper(fast, TrainConfig(optimizer="sgd", lr=1.0, momentum=0.0), 0)
    stepper.begin_epoch(x, y)
    loss, _, _ = stepper.step(0, x.shape[0], probe=True)
    logits, _ = net(to_torch_csr(x))
    ref = F.cross_entropy(logits, torch.from_numpy(y))
    ref.backward()
    torch.optim.SGD(net.parameters(), lr=1.0).step()
    assert loss == pytest.approx(ref.item(), rel=1e-6)
    for (k, p), q in zip(fast.named_parameters(), net.parameters(), strict=True):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("name", NAMES)
def test_the_probes_count_what_the_record_says_applies(name):
    record = ACTIVATIONS[name]
    z = np.random.default_rng(0).normal(0, 3, size=(16, 5)).astype(np.float32)
    dead, saturated = activation_stats(name, [z], [record.f(z)])
    assert np.isfinite(dead[0]) == record.dead_units
    assert np.isfinite(saturated[0]) == record.saturates
    if record.saturates:
        s = record.slope(z, record.f(z))
        assert saturated[0] == pytest.approx(np.mean(s < SATURATION * record.max_slope))


@pytest.mark.parametrize("name", NAMES)
def test_the_generated_script_writes_the_records_code(name):
    record = ACTIVATIONS[name]
    cfg = RunConfig()
    cfg.model.activation = name
    for script in (codegen.torch_script(cfg), codegen.lightning_script(cfg)):
        assert f"self.activation = {record.code}" in script
        compile(script, f"{name}.py", "exec")
    made = eval(record.code.split("#")[0], {"torch": torch})  # the code builds the record's module
    assert type(made).__name__ == record.torch_module


@pytest.mark.parametrize("name", NAMES)
def test_the_gradient_bound_uses_the_max_slope(name):
    record = ACTIVATIONS[name]
    bound = gr.slope_bound(name)
    assert bound == (record.max_slope if record.max_slope < 1 else None)
    layers = ["layer_0", "layer_1", "layer_2", "output_layer"]
    means = np.array([0.1, 0.2, 0.4, 0.8])
    fig = grplots.decay_figure(means, means, layers, name, "grad_rms")
    bounds = [t for t in fig.data if t.name.startswith("bound")]
    assert len(bounds) == (bound is not None)
    if bound is not None:
        np.testing.assert_allclose(bounds[0].y, [bound**2, bound, 1.0])
