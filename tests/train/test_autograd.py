"""Tests for ffnlp_core.train.autograd: the plain autograd stepper and its probes, the lecture's missing
zero_grad bug, device choice, dev-set evaluation and scipy CSR -> torch conversion."""

import copy

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch.nn import functional as F

from ffnlp_core.config import TrainConfig
from ffnlp_core.nn.inputs import to_torch_csr
from ffnlp_core.nn.model import FeedForwardClassifier
from ffnlp_core.train.autograd import AutogradStepper, make_optimizer
from ffnlp_core.train.devices import available_devices, describe_device, resolve_device
from ffnlp_core.train.evaluate import evaluate

VOCAB, CLASSES, B = 30, 3, 8
CPU = torch.device("cpu")
HAS_MPS = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def make_model(hidden=(7, 5), activation="tanh", dropout=0.0, seed=0) -> FeedForwardClassifier:
    torch.manual_seed(seed)
    return FeedForwardClassifier(VOCAB, list(hidden), activation, dropout, CLASSES)


def make_batch(rows: int = B, seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    """Counts (rows, VOCAB) up to 3, word 4 in several comments, row 3 empty; labels (rows,) int64."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 4, size=(rows, VOCAB)) * (rng.random((rows, VOCAB)) < 0.15)
    counts[:, 4] = np.arange(rows) % 3
    counts[3] = 0
    y = rng.integers(0, CLASSES, size=rows).astype(np.int64)
    return sp.csr_matrix(counts.astype(np.float32)), y


# ---- AutogradStepper -----------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_probe_matches_hooks_free_autograd(activation):
    model = make_model(activation=activation)
    ref = copy.deepcopy(model)
    x, y = make_batch()
    stepper = AutogradStepper(model, TrainConfig(optimizer="adam", lr=0.01), CPU)
    stepper.begin_epoch(x, y)
    weights = [layer.weight for layer in model.linear_layers()]
    before = [w.detach().numpy().copy() for w in weights]
    loss, correct, probe = stepper.step(0, B, probe=True)

    # reference: torch.autograd.grad on an untouched copy, no retain_grad hooks
    logits, hidden, pre = ref(to_torch_csr(x), return_pre=True)
    yt = torch.from_numpy(y)
    ref_weights = [layer.weight for layer in ref.linear_layers()]
    ref_loss = F.cross_entropy(logits, yt)
    weight_grads = torch.autograd.grad(ref_loss, ref_weights, retain_graph=True)
    # each row of z feeds only its own example's loss: grads of the summed loss are per-example grads
    per_example = torch.autograd.grad(F.cross_entropy(logits, yt, reduction="sum"), pre)

    assert loss.shape == () and correct.shape == ()
    assert float(loss) == pytest.approx(ref_loss.item(), rel=1e-6)
    assert int(correct) == int((logits.argmax(dim=1) == yt).sum())
    np.testing.assert_allclose(probe.grad_sq, [float((g**2).sum()) for g in weight_grads], rtol=1e-5)
    np.testing.assert_allclose(probe.signal, [float(g.norm(dim=1).mean()) for g in per_example], rtol=1e-5)
    np.testing.assert_array_equal(probe.numel, [VOCAB * 7, 7 * 5, 5 * CLASSES])
    after = [w.detach().numpy() for w in weights]
    update_sq = [float(((a - b) ** 2).sum()) for a, b in zip(after, before, strict=True)]
    np.testing.assert_allclose(probe.update_sq, update_sq, rtol=1e-5)
    np.testing.assert_allclose(probe.weight_sq, [float((a**2).sum()) for a in after], rtol=1e-5)
    assert min(update_sq) > 0

    hs = [h.detach().numpy() for h in hidden]
    zs = [z.detach().numpy() for z in pre[:-1]]
    if activation == "tanh":
        np.testing.assert_allclose(probe.saturated, [float((1 - h * h < 0.05).mean()) for h in hs])
        assert np.isnan(probe.dead).all()
    else:
        np.testing.assert_allclose(probe.dead, [float((z <= 0).all(axis=0).mean()) for z in zs])
        assert np.isnan(probe.saturated).all()


def test_step_without_probe_trains_like_torch_optim():
    model = make_model(activation="gelu")
    ref = copy.deepcopy(model)
    x, y = make_batch(rows=16, seed=1)
    stepper = AutogradStepper(model, TrainConfig(optimizer="adamw", lr=0.01, weight_decay=0.1), CPU)
    stepper.begin_epoch(x, y)
    opt = torch.optim.AdamW(ref.parameters(), lr=0.01, weight_decay=0.1)
    for start in (0, 8):
        loss, _, probe = stepper.step(start, start + 8)
        assert probe is None
        opt.zero_grad()
        ref_loss = F.cross_entropy(
            ref(to_torch_csr(x[start : start + 8]))[0], torch.from_numpy(y[start:][:8])
        )
        ref_loss.backward()
        opt.step()
        assert float(loss) == pytest.approx(ref_loss.item(), rel=1e-6)
    for (name, p), q in zip(model.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7, msg=name)


def test_batch_slices_the_epoch_matrix():
    x, y = make_batch(rows=10, seed=2)
    stepper = AutogradStepper(make_model(), TrainConfig(), CPU)
    stepper.begin_epoch(x, y)
    xb = stepper.batch(2, 7)  # includes the empty row 3
    assert xb.layout == torch.sparse_csr and xb.shape == (5, VOCAB)
    np.testing.assert_array_equal(xb.to_dense().numpy(), x[2:7].toarray())
    np.testing.assert_array_equal(stepper.y[2:7].numpy(), y[2:7])


def grad_sq_over_steps(skip_zero_grad: bool, steps: int = 5) -> list[float]:
    """layer_0's squared gradient norm at each of `steps` SGD steps on the same batch."""
    model = make_model()
    cfg = TrainConfig(optimizer="sgd", lr=1e-3, momentum=0.0, skip_zero_grad=skip_zero_grad)
    stepper = AutogradStepper(model, cfg, CPU)
    x, y = make_batch()
    stepper.begin_epoch(x, y)
    return [float(stepper.step(0, B, probe=True)[2].grad_sq[0]) for _ in range(steps)]


def test_skipping_zero_grad_makes_gradients_pile_up():
    buggy = grad_sq_over_steps(skip_zero_grad=True)
    normal = grad_sq_over_steps(skip_zero_grad=False)
    assert buggy[0] == pytest.approx(normal[0], rel=1e-6)  # the same first step
    assert all(b > a for a, b in zip(buggy, buggy[1:], strict=False))
    assert buggy[-1] > 16 * buggy[0]  # ~ (5 g)^2 = 25 g^2 with tiny steps
    assert max(normal) < 1.05 * min(normal)


def test_skipping_zero_grad_steps_with_the_sum_of_gradients():
    """Step 2 of the bug uses g(theta_0) + g(theta_1), exactly as the lecture explains."""
    lr = 0.05
    model = make_model()
    ref = copy.deepcopy(model)
    x, y = make_batch()
    cfg = TrainConfig(optimizer="sgd", lr=lr, momentum=0.0, skip_zero_grad=True)
    stepper = AutogradStepper(model, cfg, CPU)
    stepper.begin_epoch(x, y)
    stepper.step(0, B)
    stepper.step(0, B)

    params = list(ref.parameters())
    xt, yt = to_torch_csr(x), torch.from_numpy(y)
    g0 = torch.autograd.grad(F.cross_entropy(ref(xt)[0], yt), params)
    with torch.no_grad():
        for p, g in zip(params, g0, strict=True):
            p -= lr * g
    g1 = torch.autograd.grad(F.cross_entropy(ref(xt)[0], yt), params)
    with torch.no_grad():
        for p, a, b in zip(params, g0, g1, strict=True):
            p -= lr * (a + b)
    for (name, p), q, a, b in zip(model.named_parameters(), params, g0, g1, strict=True):
        torch.testing.assert_close(p.grad, a + b, rtol=1e-5, atol=1e-7, msg=name)
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7, msg=name)


@pytest.mark.parametrize(
    ("name", "kind", "settings"),
    [
        ("adam", torch.optim.Adam, {"lr": 0.02, "weight_decay": 0.0}),
        ("adamw", torch.optim.AdamW, {"lr": 0.02, "weight_decay": 0.0}),
        ("sgd", torch.optim.SGD, {"lr": 0.02, "weight_decay": 0.1, "momentum": 0.5}),
    ],
)
def test_make_optimizer_uses_the_config(name, kind, settings):
    cfg = TrainConfig(optimizer=name, lr=0.02, weight_decay=settings["weight_decay"], momentum=0.5)
    opt = make_optimizer(make_model(), cfg)
    assert type(opt) is kind
    group = opt.param_groups[0]
    for key, value in settings.items():
        assert group[key] == value, key
    assert len(group["params"]) == 6  # 3 layers x (weight, bias)


# ---- devices -------------------------------------------------------------------------------------------


def test_resolve_device_cpu_and_auto():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available() and not HAS_MPS:
        assert resolve_device("auto") == torch.device("cpu")
    elif torch.cuda.is_available():
        assert resolve_device("auto").type == "cuda"


def test_resolve_device_cuda_without_gpu_says_what_to_do():
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
        return
    with pytest.raises(ValueError, match=r"no CUDA GPU is available.*use 'cpu' or 'auto'"):
        resolve_device("cuda")


def test_resolve_device_mps_without_mps_says_what_to_do():
    if HAS_MPS:
        assert resolve_device("mps").type == "mps"
        return
    with pytest.raises(ValueError, match=r"MPS is not available.*use 'cpu' or 'auto'"):
        resolve_device("mps")


def test_available_devices_start_with_cpu():
    found = available_devices()
    assert found[0] == ("cpu", "CPU")
    keys = [key for key, _ in found]
    assert ("cuda" in keys) == torch.cuda.is_available()
    assert ("mps" in keys) == HAS_MPS
    assert describe_device(torch.device("cpu")) == "cpu"


# ---- evaluation ----------------------------------------------------------------------------------------


def test_evaluate_matches_a_direct_computation():
    model = make_model(hidden=(6, 4), activation="relu", dropout=0.5)
    model.train()
    x, y = make_batch(rows=10, seed=3)
    rows = np.array([1, 4, 7])
    res = evaluate(model, x, y, CPU, snapshot_rows=rows, chunk=4)  # 3 chunks: 4 + 4 + 2 rows
    assert model.training  # the caller's mode is restored

    model.eval()
    with torch.no_grad():
        logits, hidden = model(torch.from_numpy(x.toarray()))
    yt = torch.from_numpy(y)
    assert res.loss == pytest.approx(float(F.cross_entropy(logits, yt)), rel=1e-6)
    pred = logits.argmax(dim=1).numpy()
    assert res.accuracy == pytest.approx(float((pred == y).mean()))
    confusion = np.zeros((CLASSES, CLASSES), np.int64)
    for t, p in zip(y, pred, strict=True):
        confusion[t, p] += 1
    np.testing.assert_array_equal(res.confusion, confusion)
    assert res.confusion.sum() == 10

    assert [h.dtype for h in res.hidden] == [np.float16, np.float16]
    assert [h.shape for h in res.hidden] == [(3, 6), (3, 4)]
    for snap, full in zip(res.hidden, hidden, strict=True):
        np.testing.assert_allclose(snap.astype(np.float32), full.numpy()[rows], rtol=1e-3, atol=1e-4)
    assert res.probs.shape == (3, CLASSES)
    np.testing.assert_allclose(res.probs, torch.softmax(logits, dim=1).numpy()[rows], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(res.probs.sum(axis=1), 1.0, rtol=1e-6)


def test_evaluate_without_snapshot_rows():
    model = make_model()
    x, y = make_batch(rows=6, seed=4)
    for rows in (None, np.array([], np.int64)):
        res = evaluate(model, x, y, CPU, snapshot_rows=rows)
        assert res.hidden is None and res.probs is None
        assert res.confusion.sum() == 6


# ---- scipy CSR -> torch --------------------------------------------------------------------------------


def test_to_torch_csr_round_trips():
    dense = np.array([[0, 2, 0, 1], [0, 0, 0, 0], [3, 0, 0, 0], [0, 0, 5, 0]], np.int64)  # row 1 empty
    x = sp.csr_matrix(dense)  # int64 data, int32 indices: both converted
    t = to_torch_csr(x)
    assert t.layout == torch.sparse_csr
    assert t.dtype == torch.float32
    assert t.shape == (4, 4)
    assert t.crow_indices().dtype == torch.int64 and t.col_indices().dtype == torch.int64
    np.testing.assert_array_equal(t.to_dense().numpy(), dense.astype(np.float32))
    x2, _ = make_batch(rows=6, seed=5)
    np.testing.assert_array_equal(to_torch_csr(x2, "cpu").to_dense().numpy(), x2.toarray())
