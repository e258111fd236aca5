"""Tests for the fast path's large-batch pieces (ffnlp_core.train.fastpath, kernels): the epoch's rows permuted
in place of scipy's x[order], the fused softmax cross-entropy, reused buffers, and BLAS on one thread per step."""

import copy

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch.nn import functional as F

from ffnlp_core.config import TrainConfig
from ffnlp_core.nn.model import FeedForwardClassifier
from ffnlp_core.train import fastpath, kernels
from ffnlp_core.train.fastpath import FastCpuStepper

VOCAB, CLASSES, ROWS = 50, 3, 40


def make_data(seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 4, size=(ROWS, VOCAB)) * (rng.random((ROWS, VOCAB)) < 0.15)
    counts[5] = 0  # an empty comment
    return sp.csr_matrix(counts.astype(np.float32)), rng.integers(0, CLASSES, size=ROWS).astype(np.int64)


def test_permute_rows_is_scipys_row_indexing():
    x, _ = make_data()
    order = np.random.default_rng(1).permutation(ROWS)
    indptr, indices, data = (
        np.empty(ROWS + 1, np.int64),
        np.empty(x.nnz, np.int64),
        np.empty(x.nnz, np.float32),
    )
    kernels.permute_rows(x.indptr, x.indices, x.data, order, indptr, indices, data)
    want = x[order]
    np.testing.assert_array_equal(indptr, want.indptr)
    np.testing.assert_array_equal(indices, want.indices)
    np.testing.assert_array_equal(data, want.data)


def test_softmax_xent_matches_torch_cross_entropy():
    rng = np.random.default_rng(2)
    logits = (rng.standard_normal((16, CLASSES)) * 5).astype(np.float32)
    y = rng.integers(0, CLASSES, size=16).astype(np.int64)
    dz = np.empty_like(logits)
    total, correct = kernels.softmax_xent(logits, y, dz)
    t = torch.from_numpy(logits).requires_grad_()
    loss = F.cross_entropy(t, torch.from_numpy(y))
    loss.backward()
    assert total / 16 == pytest.approx(loss.item(), rel=1e-6)
    assert correct == int((logits.argmax(axis=1) == y).sum())
    np.testing.assert_allclose(dz, t.grad.numpy(), rtol=1e-5, atol=1e-7)


def steps_of(stepper: FastCpuStepper, bounds) -> list[float]:
    return [stepper.step(a, b, probe=True)[0] for a, b in bounds]


def test_an_epoch_read_through_its_order_trains_as_on_the_permuted_copy():
    """begin_epoch(x, y, order) is begin_epoch(x[order], y[order]): same losses, same weights, two epochs."""
    x, y = make_data(seed=3)
    torch.manual_seed(0)
    model = FeedForwardClassifier(VOCAB, [9, 6], "relu", 0.0, CLASSES)
    twin = copy.deepcopy(model)
    cfg = TrainConfig(optimizer="adam", lr=0.01)
    a, b = FastCpuStepper(model, cfg, 0), FastCpuStepper(twin, cfg, 0)
    bounds = [(0, 16), (16, 32), (32, 40)]  # the last batch short: the buffers are sliced, not resized
    losses_a, losses_b = [], []
    for epoch in range(2):
        order = np.random.default_rng(epoch).permutation(ROWS)
        a.begin_epoch(x, y, order)
        b.begin_epoch(x[order], y[order])
        losses_a += steps_of(a, bounds)
        losses_b += steps_of(b, bounds)
    assert losses_a == losses_b and len(set(losses_a)) == 6
    for (name, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy(), err_msg=name)


def test_a_step_runs_blas_on_one_thread_and_restores_it(monkeypatch):
    seen = []

    class FakeBlas:
        threads = 2

        def get_num_threads(self):
            return self.threads

        def set_num_threads(self, n):
            seen.append(n)
            self.threads = n

    fake = FakeBlas()
    monkeypatch.setattr(fastpath._OneBlasThread, "_lib", fake)
    x, y = make_data()
    torch.manual_seed(0)
    stepper = FastCpuStepper(FeedForwardClassifier(VOCAB, [8], "none", 0.0, CLASSES), TrainConfig(), 0)
    stepper.begin_epoch(x, y)
    loss, correct, _ = stepper.step(0, 20)
    assert seen == [1, 2] and fake.threads == 2  # one thread during the step, two again after it
    assert np.isfinite(loss) and 0 <= correct <= 20
