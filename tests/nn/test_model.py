"""Tests for ffnlp_core.nn.model: the sparse first layer, the named-layer classifier and its parameter counts."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from ffnlp_core.config import ACTIVATIONS, ModelConfig
from ffnlp_core.nn import activations
from ffnlp_core.nn.inputs import to_torch_csr
from ffnlp_core.nn.model import (
    FeedForwardClassifier,
    SparseLinear,
    parameter_summary,
)
from ffnlp_core.nn.shapes import count_parameters

VOCAB = 12


def bag_of_words(rows: int = 5, vocab: int = VOCAB, seed: int = 0) -> sp.csr_matrix:
    """A small count matrix (rows, vocab) with counts up to 3, shared words and an all-zero row (row 2)."""
    rng = np.random.default_rng(seed)
    dense = rng.integers(0, 4, size=(rows, vocab)) * (rng.random((rows, vocab)) < 0.4)
    dense[2] = 0
    dense[0, 3] = dense[1, 3] = 2  # a word shared by two comments
    return sp.csr_matrix(dense.astype(np.float32))


def as_input(x: sp.csr_matrix, kind: str) -> torch.Tensor:
    if kind == "csr":
        return to_torch_csr(x)
    if kind == "coo":
        return torch.from_numpy(x.toarray()).to_sparse()
    return torch.from_numpy(x.toarray())


def sparse_and_dense(seed: int = 0) -> tuple[SparseLinear, nn.Linear]:
    """A SparseLinear and an nn.Linear computing the same map (dense.weight = sparse.weight.T)."""
    torch.manual_seed(seed)
    sparse = SparseLinear(VOCAB, 4)
    dense = nn.Linear(VOCAB, 4)
    with torch.no_grad():
        dense.weight.copy_(sparse.weight.T)
        dense.bias.copy_(sparse.bias)
    return sparse, dense


# ---- SparseLinear ----------------------------------------------------------------------------------------


def test_sparse_linear_stores_weight_transposed_with_linear_init():
    layer = SparseLinear(VOCAB, 4)
    assert tuple(layer.weight.shape) == (VOCAB, 4)
    assert tuple(layer.bias.shape) == (4,)
    bound = 1.0 / math.sqrt(VOCAB)
    assert float(layer.weight.detach().abs().max()) <= bound
    assert float(layer.bias.detach().abs().max()) <= bound
    assert float(layer.weight.detach().std()) > 0.2 * bound  # really initialised, not left at zero


@pytest.mark.parametrize("kind", ["csr", "coo", "dense"])
def test_sparse_linear_matches_dense_linear_forward_and_gradients(kind):
    sparse, dense = sparse_and_dense()
    x = bag_of_words()
    xd = torch.from_numpy(x.toarray())
    out = sparse(as_input(x, kind))  # (5, 4)
    ref = dense(xd)
    assert out.shape == (5, 4)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
    # the comment with no words scores exactly the bias
    torch.testing.assert_close(out[2], sparse.bias, rtol=0, atol=0)

    # a loss that weighs every output differently, so a wrong row or column shows in the gradients
    target = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    (out * target).sum().backward()
    (ref * target).sum().backward()
    torch.testing.assert_close(sparse.weight.grad, dense.weight.grad.T, rtol=0, atol=1e-6)
    torch.testing.assert_close(sparse.bias.grad, dense.bias.grad, rtol=0, atol=1e-6)
    # words absent from the batch get no gradient, and the bias gradient is the column sum of target
    absent = np.flatnonzero(np.asarray(x.sum(axis=0)).ravel() == 0)
    assert len(absent) > 0
    assert torch.count_nonzero(sparse.weight.grad[absent]) == 0
    torch.testing.assert_close(sparse.bias.grad, target.sum(dim=0), rtol=0, atol=1e-6)


def test_sparse_linear_csr_handles_trailing_empty_rows():
    """The last comment having no words is the edge case of embedding_bag's offsets."""
    sparse, dense = sparse_and_dense()
    x = bag_of_words(rows=4)
    x = sp.vstack([x, sp.csr_matrix((2, VOCAB), dtype=np.float32)]).tocsr()  # rows 4 and 5 empty
    out = sparse(to_torch_csr(x))
    assert out.shape == (6, 4)
    torch.testing.assert_close(out, dense(torch.from_numpy(x.toarray())), rtol=0, atol=1e-6)
    torch.testing.assert_close(out[5], sparse.bias, rtol=0, atol=0)


def test_sparse_linear_repr_names_sparse_input():
    assert "in_features=12, out_features=4, sparse input" in repr(SparseLinear(12, 4))


# ---- FeedForwardClassifier -----------------------------------------------------------------------------


def make_model(hidden=(7, 5, 4), activation="relu", dropout=0.0, n_classes=3, seed=0):
    torch.manual_seed(seed)
    return FeedForwardClassifier(VOCAB, list(hidden), activation, dropout, n_classes)


def test_layers_are_named_as_in_the_lecture():
    model = make_model(hidden=(7, 5, 4))
    assert model.layer_names == ["layer_0", "layer_1", "layer_2", "output_layer"]
    children = dict(model.named_children())
    for name in model.layer_names:
        assert name in children
    assert isinstance(model.layer_0, SparseLinear)
    assert [type(m) for m in model.linear_layers()[1:]] == [nn.Linear, nn.Linear, nn.Linear]
    widths = [(m.in_features, m.out_features) for m in model.linear_layers()]
    assert widths == [(VOCAB, 7), (7, 5), (5, 4), (4, 3)]


def test_forward_shapes_and_pre_activations():
    model = make_model(hidden=(7, 5, 4), activation="tanh")
    x = to_torch_csr(bag_of_words())
    logits, hidden = model(x)
    assert logits.shape == (5, 3)
    assert [tuple(h.shape) for h in hidden] == [(5, 7), (5, 5), (5, 4)]

    logits2, hidden2, pre = model(x, return_pre=True)
    assert len(pre) == 4  # z0, z1, z2 and the logits
    assert [tuple(z.shape) for z in pre] == [(5, 7), (5, 5), (5, 4), (5, 3)]
    assert pre[-1] is logits2
    torch.testing.assert_close(logits2, logits, rtol=0, atol=0)
    for z, h in zip(pre[:-1], hidden2, strict=True):
        torch.testing.assert_close(h, torch.tanh(z), rtol=0, atol=1e-7)
    # each layer reads the previous hidden state: recompute the chain by hand
    xd = torch.from_numpy(bag_of_words().toarray())
    z0 = xd @ model.layer_0.weight + model.layer_0.bias
    torch.testing.assert_close(pre[0], z0, rtol=0, atol=1e-6)
    z1 = torch.tanh(z0) @ model.layer_1.weight.T + model.layer_1.bias
    torch.testing.assert_close(pre[1], z1, rtol=0, atol=1e-6)


def test_zero_hidden_layers_is_logistic_regression():
    model = make_model(hidden=(), n_classes=3)
    assert model.layer_names == ["output_layer"]
    assert isinstance(model.output_layer, SparseLinear)
    assert tuple(model.output_layer.weight.shape) == (VOCAB, 3)
    assert not any(name.startswith("layer_") for name, _ in model.named_children())
    x = bag_of_words()
    logits, hidden, pre = model(to_torch_csr(x), return_pre=True)
    assert hidden == []
    assert len(pre) == 1 and pre[0] is logits
    expected = torch.from_numpy(x.toarray()) @ model.output_layer.weight + model.output_layer.bias
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-6)


REFERENCE_ACTIVATIONS = {
    "none": lambda z: z,
    "relu": lambda z: torch.where(z > 0, z, torch.zeros_like(z)),
    "tanh": lambda z: (torch.exp(z) - torch.exp(-z)) / (torch.exp(z) + torch.exp(-z)),
    "sigmoid": lambda z: 1 / (1 + torch.exp(-z)),
    "gelu": lambda z: z * 0.5 * (1 + torch.erf(z / math.sqrt(2.0))),
}


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_each_activation_applies_its_function(activation):
    model = make_model(hidden=(6, 5), activation=activation)
    x = to_torch_csr(bag_of_words())
    _, hidden, pre = model(x, return_pre=True)
    assert model.activation_name == activation
    reference = REFERENCE_ACTIVATIONS[activation]
    for z, h in zip(pre[:-1], hidden, strict=True):
        torch.testing.assert_close(h, reference(z), rtol=1e-6, atol=1e-6)
        if activation == "none":
            assert torch.equal(h, z)
        else:
            assert not torch.equal(h, z)  # every real activation bends this batch's values somewhere


def test_activation_registry_matches_config():
    assert list(activations.ACTIVATIONS) == list(ACTIVATIONS)
    for name, record in activations.ACTIVATIONS.items():
        assert ACTIVATIONS[name] == record.description
        assert type(make_model(hidden=(3,), activation=name).activation).__name__ == record.torch_module


def test_unknown_activation_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"unknown activation 'swish'.*relu"):
        FeedForwardClassifier(VOCAB, [4], activation="swish")


def test_dropout_is_active_in_train_and_off_in_eval():
    """Output layer = identity, so the logits are dropout(h0): each is 0 or h0 / (1 - p) in train()."""
    model = make_model(hidden=(8,), activation="sigmoid", dropout=0.5, n_classes=8)
    with torch.no_grad():
        model.output_layer.weight.copy_(torch.eye(8))
        model.output_layer.bias.zero_()
    x = to_torch_csr(bag_of_words())

    model.eval()
    logits, (h0,) = model(x)
    torch.testing.assert_close(logits, h0, rtol=0, atol=0)  # sigmoid > 0: nothing dropped
    torch.testing.assert_close(model(x)[0], logits, rtol=0, atol=0)

    model.train()
    torch.manual_seed(3)
    logits, (h0,) = model(x)
    dropped = logits == 0
    kept = torch.isclose(logits, 2 * h0, rtol=1e-6, atol=0)
    assert bool((dropped | kept).all())
    n = logits.numel()
    assert 0.25 * n < int(dropped.sum()) < 0.75 * n  # about half of the 40 units


def test_from_config_builds_the_configured_network():
    cfg = ModelConfig(hidden_sizes=[6, 3], activation="gelu", dropout=0.25)
    model = FeedForwardClassifier.from_config(cfg, vocab_size=VOCAB, n_classes=4)
    assert model.hidden_sizes == [6, 3]
    assert model.activation_name == "gelu" and isinstance(model.activation, nn.GELU)
    assert model.dropout.p == 0.25 and model.dropout_p == 0.25
    assert (model.vocab_size, model.n_classes) == (VOCAB, 4)
    assert model.output_layer.out_features == 4


# ---- parameter counts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hidden", "expected"),
    [
        ([7, 5], [(VOCAB + 1) * 7, (7 + 1) * 5, (5 + 1) * 3]),
        ([], [(VOCAB + 1) * 3]),
        ([4], [(VOCAB + 1) * 4, (4 + 1) * 3]),
    ],
)
def test_parameter_summary_and_count_parameters_agree(hidden, expected):
    model = make_model(hidden=hidden, n_classes=3)
    rows = parameter_summary(model)
    assert [r["name"] for r in rows] == model.layer_names
    assert [r["params"] for r in rows] == expected
    assert count_parameters(VOCAB, hidden, 3) == expected
    assert sum(expected) == sum(p.numel() for p in model.parameters())
    assert rows[0]["type"] == "SparseLinear"
    assert all(r["type"] == "Linear" for r in rows[1:])
    widths = [VOCAB, *hidden, 3]
    assert [(r["in"], r["out"]) for r in rows] == list(zip(widths[:-1], widths[1:], strict=True))
