"""Tests for ffnlp_core.train.fastpath (and its numba kernels): the CPU fast path must compute the same loss,
gradients, updates and probes as torch.autograd + torch.optim on the same FeedForwardClassifier."""

import copy

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch.nn import functional as F

from ffnlp_core.config import ACTIVATIONS, TrainConfig
from ffnlp_core.nn.inputs import to_torch_csr
from ffnlp_core.nn.model import FeedForwardClassifier
from ffnlp_core.train import kernels
from ffnlp_core.train.fastpath import FastCpuStepper
from ffnlp_core.train.probes import activation_stats

VOCAB, CLASSES, B = 30, 3, 8
TOL = {"rtol": 1e-5, "atol": 1e-6}


def make_model(hidden=(7, 5), activation="tanh", dropout=0.0, seed=0) -> FeedForwardClassifier:
    torch.manual_seed(seed)
    return FeedForwardClassifier(VOCAB, list(hidden), activation, dropout, CLASSES)


def make_batch(rows: int = B, seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    """Counts (rows, VOCAB) up to 3, word 4 in several comments, row 3 empty; labels (rows,) int64."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 4, size=(rows, VOCAB)) * (rng.random((rows, VOCAB)) < 0.15)
    counts[:, 4] = np.arange(rows) % 3  # a repeated word, sometimes twice or three times in one comment
    counts[3] = 0
    y = rng.integers(0, CLASSES, size=rows).astype(np.int64)
    return sp.csr_matrix(counts.astype(np.float32)), y


def touched_words(x: sp.csr_matrix) -> np.ndarray:
    return np.unique(x.indices)


def new_stepper(model, optimizer="sgd", lr=1.0, momentum=0.0, weight_decay=0.0, seed=0) -> FastCpuStepper:
    cfg = TrainConfig(optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return FastCpuStepper(model, cfg, seed)


def snapshot(model) -> dict[str, np.ndarray]:
    return {name: p.detach().numpy().copy() for name, p in model.named_parameters()}


def reference_backward(model, x, y):
    """loss.backward() on the model, plus per-example gradients at each pre-activation.

    Each row of z only feeds its own example's loss, so the gradient of the *summed* loss w.r.t. z is,
    row by row, dL_i/dz_i: the per-example signal without any rescaling trick.
    """
    logits, hidden, pre = model(to_torch_csr(x), return_pre=True)
    yt = torch.from_numpy(y)
    per_example = torch.autograd.grad(F.cross_entropy(logits, yt, reduction="sum"), pre, retain_graph=True)
    loss = F.cross_entropy(logits, yt)
    loss.backward()
    return loss, logits, hidden, pre, per_example


def assert_params_close(fast_model, ref_model, skip=(), **tol):
    ref = dict(ref_model.named_parameters())
    for name, p in fast_model.named_parameters():
        if name in skip:
            continue
        np.testing.assert_allclose(p.detach().numpy(), ref[name].detach().numpy(), err_msg=name, **tol)


# ---- one step against autograd -------------------------------------------------------------------------

SHAPES = [((7, 5), act) for act in ACTIVATIONS] + [((), "none"), ((6,), "relu")]


@pytest.mark.parametrize(("hidden", "activation"), SHAPES, ids=[f"{list(h)}-{a}" for h, a in SHAPES])
def test_step_matches_autograd(hidden, activation):
    model = make_model(hidden, activation)
    fast_model = copy.deepcopy(model)
    x, y = make_batch()
    before = snapshot(model)

    stepper = new_stepper(fast_model, "sgd", lr=1.0, momentum=0.0)  # update = -grad
    stepper.begin_epoch(x, y)
    loss, correct, probe = stepper.step(0, B, probe=True)

    ref_loss, logits, hidden_ref, pre, per_example = reference_backward(model, x, y)
    assert loss == pytest.approx(ref_loss.item(), rel=1e-6)
    assert correct == int((logits.argmax(dim=1) == torch.from_numpy(y)).sum())

    # gradients as the stepper left them in its buffers
    layers = model.linear_layers()
    words = touched_words(x)
    n = len(words)
    rows = stepper.rows[:n]
    assert sorted(rows.tolist()) == words.tolist()
    g0 = layers[0].weight.grad.numpy()
    np.testing.assert_allclose(stepper.row_grad[:n], g0[rows], **TOL)
    assert not np.any(np.delete(g0, words, axis=0))  # so the rows the fast path skips really have grad 0
    np.testing.assert_allclose(stepper.b0_grad, layers[0].bias.grad.numpy(), **TOL)
    assert len(stepper.dense) == len(layers) - 1
    for (_, _, dw, db), layer in zip(stepper.dense, layers[1:], strict=True):
        np.testing.assert_allclose(dw, layer.weight.grad.numpy(), **TOL)
        np.testing.assert_allclose(db, layer.bias.grad.numpy(), **TOL)

    # and as parameter values after one SGD step with lr=1, momentum 0, against torch.optim.SGD
    torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.0).step()
    assert_params_close(fast_model, model, **TOL)
    untouched = np.setdiff1d(np.arange(VOCAB), words)
    first = f"{model.layer_names[0]}.weight"  # output_layer when there are no hidden layers
    np.testing.assert_array_equal(snapshot(fast_model)[first][untouched], before[first][untouched])

    # the probe
    weight_grads = [layer.weight.grad for layer in layers]
    np.testing.assert_allclose(probe.grad_sq, [float((g**2).sum()) for g in weight_grads], rtol=1e-5)
    np.testing.assert_array_equal(probe.numel, [g.numel() for g in weight_grads])
    signal = [float(g.norm(dim=1).mean()) for g in per_example]
    np.testing.assert_allclose(probe.signal, signal, rtol=1e-5)
    assert len(probe.signal) == len(hidden) + 1
    k = len(hidden)
    zs = [z.detach().numpy() for z in pre[:k]]
    hs = [h.detach().numpy() for h in hidden_ref]
    dead = [float((z <= 0).all(axis=0).mean()) for z in zs] if activation == "relu" else [np.nan] * k
    if activation == "sigmoid":
        saturated = [float((h * (1 - h) < 0.05 * 0.25).mean()) for h in hs]
    elif activation == "tanh":
        saturated = [float((1 - h * h < 0.05).mean()) for h in hs]
    else:
        saturated = [np.nan] * k
    np.testing.assert_allclose(probe.dead, dead, atol=1e-12)
    np.testing.assert_allclose(probe.saturated, saturated, atol=1e-12)


def test_step_without_probe_returns_same_loss_and_update():
    model = make_model((7, 5), "gelu")
    twin = copy.deepcopy(model)
    x, y = make_batch(seed=1)
    a, b = new_stepper(model, "adam", lr=0.01), new_stepper(twin, "adam", lr=0.01)
    a.begin_epoch(x, y)
    b.begin_epoch(x, y)
    loss_a, correct_a, probe_a = a.step(0, B, probe=False)
    loss_b, correct_b, probe_b = b.step(0, B, probe=True)
    assert probe_a is None and probe_b is not None
    assert (loss_a, correct_a) == (loss_b, correct_b)
    assert_params_close(model, twin, rtol=0, atol=0)


def test_model_parameters_stay_shared_with_the_stepper():
    """The stepper trains the model's own tensors: the nn.Module sees every update."""
    model = make_model((7, 5), "relu")
    stepper = new_stepper(model, "adam", lr=0.01)
    x, y = make_batch()
    stepper.begin_epoch(x, y)
    before = snapshot(model)
    stepper.step(0, B)
    after = snapshot(model)
    for name in before:
        assert not np.array_equal(before[name], after[name]), name
    assert np.shares_memory(stepper.w0, model.layer_0.weight.detach().numpy())
    assert np.shares_memory(stepper.flat_np, model.output_layer.bias.detach().numpy())


# ---- optimizers ----------------------------------------------------------------------------------------


def torch_optimizer(model, name, lr, momentum, weight_decay):
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


OPTIMIZER_CASES = [
    ("adam", 0.01, 0.0, 0.0),
    ("adamw", 0.01, 0.0, 0.0),
    ("sgd", 0.1, 0.9, 0.0),
    ("adam", 0.01, 0.0, 0.1),
    ("adamw", 0.01, 0.0, 0.1),
    ("sgd", 0.1, 0.9, 0.1),
]


@pytest.mark.parametrize(
    ("optimizer", "lr", "momentum", "weight_decay"),
    OPTIMIZER_CASES,
    ids=[f"{o}-wd{wd}" for o, _, _, wd in OPTIMIZER_CASES],
)
def test_first_step_matches_torch_optim(optimizer, lr, momentum, weight_decay):
    model = make_model((7, 5), "tanh")
    fast_model = copy.deepcopy(model)
    x, y = make_batch(seed=2)
    w0_before = model.layer_0.weight.detach().numpy().copy()

    stepper = new_stepper(fast_model, optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay)
    stepper.begin_epoch(x, y)
    stepper.step(0, B)
    opt = torch_optimizer(model, optimizer, lr, momentum, weight_decay)
    reference_backward(model, x, y)
    opt.step()

    words = touched_words(x)
    untouched = np.setdiff1d(np.arange(VOCAB), words)
    fast_w0 = fast_model.layer_0.weight.detach().numpy()
    ref_w0 = model.layer_0.weight.detach().numpy()
    assert_params_close(fast_model, model, skip={"layer_0.weight"}, **TOL)
    np.testing.assert_allclose(fast_w0[words], ref_w0[words], **TOL)
    assert not np.allclose(fast_w0[words], w0_before[words])  # the touched rows did learn
    # lazy semantics: rows of absent words are not touched, not even by weight decay
    np.testing.assert_array_equal(fast_w0[untouched], w0_before[untouched])
    if weight_decay == 0:
        np.testing.assert_allclose(fast_w0, ref_w0, **TOL)  # zero state: lazy == dense on step 1
    else:
        assert not np.allclose(ref_w0[untouched], w0_before[untouched])  # torch decays them (dense)


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_adam_update_size_is_torchs_to_float32_precision(optimizer):
    """Step 1 of Adam moves each weight by about lr * g / |g|: compare the sizes of the moves.

    Their ratio must be 1 to float32 rounding (~1e-7), not biased: a systematic error here means the
    moment weights (1 - beta1, 1 - beta2) or the bias corrections differ from torch.optim's.
    """
    model = make_model((7, 5), "tanh")
    fast_model = copy.deepcopy(model)
    x, y = make_batch(seed=2)
    before = snapshot(model)
    stepper = new_stepper(fast_model, optimizer, lr=0.01)
    stepper.begin_epoch(x, y)
    stepper.step(0, B)
    opt = torch_optimizer(model, optimizer, 0.01, 0.0, 0.0)
    reference_backward(model, x, y)
    opt.step()
    fast, ref = snapshot(fast_model), snapshot(model)
    for name in before:
        d_fast = fast[name].astype(np.float64) - before[name]
        d_ref = ref[name].astype(np.float64) - before[name]
        big = np.abs(d_ref) > 0.005  # |g| >> eps: the move is lr * sign(g)
        assert big.sum() > 0
        ratio = d_fast[big] / d_ref[big]
        assert abs(float(ratio.mean()) - 1) < 1e-6, name


MULTI_STEP_CASES = [("adam", 0.01, 0.0, 0.0), ("adamw", 0.01, 0.0, 0.1), ("sgd", 0.1, 0.9, 0.1)]


@pytest.mark.parametrize(
    ("optimizer", "lr", "momentum", "weight_decay"),
    MULTI_STEP_CASES,
    ids=[f"{o}-wd{wd}" for o, _, _, wd in MULTI_STEP_CASES],
)
def test_several_steps_on_the_same_words_match_torch(optimizer, lr, momentum, weight_decay):
    """When every batch touches the same words, the lazy updates of those rows are the dense ones:
    the moments, momentum buffers and bias corrections must then track torch.optim step after step."""
    words = np.array([1, 4, 9, 13, 20, 29])
    rng = np.random.default_rng(7)
    steps, rows = 5, 4
    counts = np.zeros((steps * rows, VOCAB), np.float32)
    for s in range(steps):
        for w in words:  # each word at least once in every batch
            counts[s * rows + rng.integers(rows), w] += rng.integers(1, 4)
        extra = rng.random((rows, len(words))) < 0.3
        counts[s * rows : (s + 1) * rows, words] += extra
    x = sp.csr_matrix(counts)
    y = rng.integers(0, CLASSES, size=steps * rows).astype(np.int64)

    model = make_model((7, 5), "relu")
    fast_model = copy.deepcopy(model)
    w0_before = model.layer_0.weight.detach().numpy().copy()
    stepper = new_stepper(fast_model, optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay)
    stepper.begin_epoch(x, y)
    opt = torch_optimizer(model, optimizer, lr, momentum, weight_decay)
    for s in range(steps):
        loss, _, _ = stepper.step(s * rows, (s + 1) * rows)
        opt.zero_grad()
        ref_loss = reference_backward(model, x[s * rows : (s + 1) * rows], y[s * rows : (s + 1) * rows])[0]
        opt.step()
        assert loss == pytest.approx(ref_loss.item(), rel=1e-5)

    fast_w0 = fast_model.layer_0.weight.detach().numpy()
    ref_w0 = model.layer_0.weight.detach().numpy()
    np.testing.assert_allclose(fast_w0[words], ref_w0[words], rtol=1e-5, atol=1e-7)
    assert_params_close(fast_model, model, skip={"layer_0.weight"}, rtol=1e-5, atol=1e-7)
    untouched = np.setdiff1d(np.arange(VOCAB), words)
    np.testing.assert_array_equal(fast_w0[untouched], w0_before[untouched])
    if weight_decay == 0:
        np.testing.assert_array_equal(ref_w0[untouched], w0_before[untouched])  # lazy == dense here
    assert np.abs(fast_w0[words] - w0_before[words]).max() > 0.01  # 5 steps really moved them


# ---- dropout -------------------------------------------------------------------------------------------


def train_steps(model, x, y, seed, steps=3, rows=4):
    stepper = new_stepper(model, "adam", lr=0.01, seed=seed)
    stepper.begin_epoch(x, y)
    return [stepper.step(s * rows, (s + 1) * rows)[0] for s in range(steps)]


def test_dropout_is_deterministic_for_a_seed_and_changes_the_step():
    x, y = make_batch(rows=12, seed=3)
    a, b = make_model(dropout=0.3), make_model(dropout=0.3)
    plain = make_model(dropout=0.0)
    other_seed = make_model(dropout=0.3)
    assert_params_close(a, plain, rtol=0, atol=0)  # same initial weights: dropout has none

    losses_a = train_steps(a, x, y, seed=5)
    losses_b = train_steps(b, x, y, seed=5)
    losses_plain = train_steps(plain, x, y, seed=5)
    train_steps(other_seed, x, y, seed=6)
    assert losses_a == losses_b
    assert_params_close(a, b, rtol=0, atol=0)
    assert losses_a != losses_plain
    for model in (plain, other_seed):
        assert not all(
            np.array_equal(p.detach().numpy(), q.detach().numpy())
            for p, q in zip(a.parameters(), model.parameters(), strict=True)
        )


def test_dropout_gradients_match_autograd_with_the_same_masks():
    """Rebuild the stepper's masks from its seed (one draw per hidden layer, input to output)."""
    p, seed = 0.4, 11
    model = make_model((7, 5), "sigmoid", dropout=p)
    fast_model = copy.deepcopy(model)
    x, y = make_batch(seed=4)
    stepper = new_stepper(fast_model, "sgd", lr=1.0, momentum=0.0, seed=seed)
    stepper.begin_epoch(x, y)
    loss, _, _ = stepper.step(0, B)

    rng = np.random.default_rng(seed)
    h = to_torch_csr(x)
    for layer, width in zip(model.linear_layers()[:-1], model.hidden_sizes, strict=True):
        mask = (rng.random((B, width), dtype=np.float32) >= p) / np.float32(1 - p)
        h = model.activation(layer(h)) * torch.from_numpy(mask)
    logits = model.output_layer(h)
    ref_loss = F.cross_entropy(logits, torch.from_numpy(y))
    ref_loss.backward()
    torch.optim.SGD(model.parameters(), lr=1.0).step()
    assert loss == pytest.approx(ref_loss.item(), rel=1e-6)
    assert_params_close(fast_model, model, **TOL)


# ---- the update-ratio inputs ---------------------------------------------------------------------------


@pytest.mark.parametrize(("optimizer", "weight_decay"), [("adam", 0.0), ("adamw", 0.1), ("sgd", 0.05)])
def test_probe_update_and_weight_norms_match_the_parameters(optimizer, weight_decay):
    model = make_model((7, 5), "relu")
    x, y = make_batch(rows=16, seed=5)
    stepper = new_stepper(model, optimizer, lr=0.05, momentum=0.9, weight_decay=weight_decay)
    stepper.begin_epoch(x, y)
    weights = [layer.weight for layer in model.linear_layers()]
    # an unprobed step in between: ||W0||^2 must not go stale
    for s, probe in enumerate([True, True, False, True]):
        before = [w.detach().numpy().copy() for w in weights]
        _, _, record = stepper.step(4 * s, 4 * s + 4, probe=probe)
        if not probe:
            assert record is None
            continue
        after = [w.detach().numpy() for w in weights]
        update_sq = [float(((a - b) ** 2).sum(dtype=np.float64)) for a, b in zip(after, before, strict=True)]
        weight_sq = [float((a.astype(np.float64) ** 2).sum()) for a in after]
        np.testing.assert_allclose(record.update_sq, update_sq, rtol=1e-5)
        np.testing.assert_allclose(record.weight_sq, weight_sq, rtol=1e-5)
        assert min(update_sq) > 0


def test_resync_restores_exact_first_layer_norm_after_outside_changes():
    model = make_model((7, 5), "relu")
    x, y = make_batch(rows=16, seed=6)
    stepper = new_stepper(model, "adam", lr=0.05)
    stepper.begin_epoch(x, y)
    stepper.step(0, 4, probe=True)
    with torch.no_grad():
        model.layer_0.weight.mul_(2.0)  # e.g. weights loaded from elsewhere
    stepper.resync()
    _, _, record = stepper.step(4, 8, probe=True)
    w0 = model.layer_0.weight.detach().numpy().astype(np.float64)
    assert record.weight_sq[0] == pytest.approx(float((w0**2).sum()), rel=1e-5)


# ---- activation statistics -----------------------------------------------------------------------------


def test_dead_fraction_for_relu():
    z0 = np.array([[-1.0, 2.0, -0.5], [-3.0, -1.0, 0.0]], np.float32)  # columns 0 and 2 never > 0
    z1 = np.array([[0.5, 1.0], [-1.0, 0.1]], np.float32)  # both units fire somewhere
    dead, saturated = activation_stats("relu", [z0, z1], [np.maximum(z0, 0), np.maximum(z1, 0)])
    np.testing.assert_allclose(dead, [2 / 3, 0.0])
    assert np.isnan(saturated).all() and saturated.shape == (2,)


def test_saturated_fraction_for_sigmoid_and_tanh():
    # sigmoid slopes h(1-h): .25, .0099, .000999, .0196, .16, .09 -> below 0.05 * 0.25 = .0125: two of six
    h = np.array([[0.5, 0.99, 0.001], [0.98, 0.2, 0.9]], np.float32)
    dead, saturated = activation_stats("sigmoid", [np.zeros_like(h)], [h])
    np.testing.assert_allclose(saturated, [2 / 6], rtol=1e-6)
    assert np.isnan(dead).all()
    # tanh slopes 1-h^2: 1, .0199, .0396, .75, .002, .0591 -> below 0.05: three of six
    h = np.array([[0.0, 0.99, -0.98], [0.5, -0.999, 0.97]], np.float32)
    dead, saturated = activation_stats("tanh", [np.zeros_like(h)], [h])
    np.testing.assert_allclose(saturated, [3 / 6], rtol=1e-6)
    assert np.isnan(dead).all()


@pytest.mark.parametrize("activation", ["none", "gelu"])
def test_activation_stats_do_not_apply(activation):
    z = np.array([[-1.0, 2.0]], np.float32)
    dead, saturated = activation_stats(activation, [z, z, z], [z, z, z])
    assert dead.shape == saturated.shape == (3,)
    assert np.isnan(dead).all() and np.isnan(saturated).all()


# ---- kernels -------------------------------------------------------------------------------------------


def csr_arrays(x: sp.csr_matrix):
    return x.indptr.astype(np.int64), x.indices.astype(np.int64), x.data.astype(np.float32)


def test_sparse_forward_equals_x_w_plus_b():
    x, _ = make_batch(seed=8)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((VOCAB, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    out = np.full((5, 4), np.nan, np.float32)
    kernels.sparse_forward(*csr_arrays(x), 2, 7, w, b, out)  # rows 2..6, the empty row 3 among them
    np.testing.assert_allclose(out, x[2:7].toarray() @ w + b, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out[1], b)


def test_sparse_backward_returns_distinct_rows_and_summed_gradients():
    # non-canonical CSR: word 5 twice in row 1, word 2 in rows 0 and 2; row 3 empty; row 4 is outside
    indptr = np.array([0, 2, 5, 7, 7, 9], np.int64)
    indices = np.array([2, 7, 5, 0, 5, 2, 11, 8, 9], np.int64)
    data = np.array([1, 2, 1, 3, 2, 1, 1, 5, 5], np.float32)
    x = sp.csr_matrix((data, indices, indptr), shape=(5, 12))
    dz = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)  # rows 0..3
    slot = np.full(12, -1, np.int64)
    rows = np.zeros(12, np.int64)
    grad = np.full((12, 3), np.nan, np.float32)
    n = kernels.sparse_backward(indptr, indices, data, 0, 4, dz, slot, rows, grad)

    assert n == 5
    assert sorted(rows[:n].tolist()) == [0, 2, 5, 7, 11]
    full = x[:4].toarray().T @ dz  # (12, 3): X^T dz, duplicates summed
    np.testing.assert_allclose(grad[:n], full[rows[:n]], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(full[5], 3 * dz[1])  # the duplicate entries were both counted
    np.testing.assert_array_equal(slot, -1)


def test_small_kernels_match_numpy():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((6, 5)).astype(np.float32)
    assert kernels.mean_row_norm(a) == pytest.approx(float(np.linalg.norm(a, axis=1).mean()), rel=1e-6)
    flat, other = a.ravel(), rng.standard_normal(30).astype(np.float32)
    starts, sizes = np.array([0, 10, 25], np.int64), np.array([10, 15, 5], np.int64)
    expect = [float((flat[s : s + k] ** 2).sum()) for s, k in zip(starts, sizes, strict=True)]
    np.testing.assert_allclose(kernels.segment_sq(flat, None, starts, sizes), expect, rtol=1e-5)
    diff = flat - other
    expect = [float((diff[s : s + k] ** 2).sum()) for s, k in zip(starts, sizes, strict=True)]
    np.testing.assert_allclose(kernels.segment_sq(flat, other, starts, sizes), expect, rtol=1e-5)
