"""The fused first-layer kernel (sparse backward + touched-rows update in one pass) against the two
separate kernels it replaces in the step, for every optimizer."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ffnlp_core.train import kernels


@pytest.mark.parametrize("kind", [kernels.ADAM, kernels.ADAMW, kernels.SGD])
@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_backward_update_rows_matches_separate_kernels(kind, wd):
    rng = np.random.default_rng(kind * 10 + int(wd * 100))
    vocab, width, b = 50, 13, 9  # width not a multiple of the vector length: the loops' tails run too
    x = sp.random(b, vocab, density=0.2, format="csr", random_state=1, dtype=np.float32)
    x.data[:] = rng.integers(1, 4, x.nnz)
    indptr, indices = x.indptr.astype(np.int64), x.indices.astype(np.int64)
    dz = rng.standard_normal((b, width)).astype(np.float32)
    w = rng.standard_normal((vocab, width)).astype(np.float32)
    s1 = rng.random((vocab, width)).astype(np.float32)
    s2 = rng.random((vocab, width)).astype(np.float32)
    args = (kind, 1e-2, 0.9, 0.999, 1e-8, wd, 0.9, 1 - 0.9**3, 1 - 0.999**3)

    w_ref, s1_ref, s2_ref = w.copy(), s1.copy(), s2.copy()
    slot, rows, grad = (
        np.full(vocab, -1, np.int64),
        np.zeros(vocab, np.int64),
        np.zeros((vocab, width), np.float32),
    )
    n_ref = kernels.sparse_backward(indptr, indices, x.data, 2, b, dz[2:], slot, rows, grad)
    rows_ref, grad_ref = rows[:n_ref].copy(), grad[:n_ref].copy()
    du2_ref, dw2_ref = kernels.update_rows(w_ref, s1_ref, s2_ref, rows, grad, n_ref, *args)

    state = np.stack([s1, s2], axis=1)
    slot2, rows2, grad2 = (
        np.full(vocab, -1, np.int64),
        np.zeros(vocab, np.int64),
        np.zeros((vocab, width), np.float32),
    )
    n, du2, dw2 = kernels.backward_update_rows(
        indptr, indices, x.data, 2, b, dz[2:], slot2, rows2, grad2, w, state, *args
    )
    assert n == n_ref and (slot2 == -1).all()
    np.testing.assert_array_equal(rows2[:n], rows_ref)
    np.testing.assert_allclose(grad2[:n], grad_ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(w, w_ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(state[:, 0], s1_ref, rtol=1e-6, atol=1e-7)
    if kind != kernels.SGD:
        np.testing.assert_allclose(state[:, 1], s2_ref, rtol=1e-6, atol=1e-9)
    assert du2 == pytest.approx(du2_ref, rel=1e-4) and dw2 == pytest.approx(dw2_ref, rel=1e-3, abs=1e-6)


def test_sparse_forward_matches_dense_product():
    rng = np.random.default_rng(0)
    x = sp.random(20, 40, density=0.3, format="csr", random_state=2, dtype=np.float32)  # rows of 0..~20 words
    w = rng.standard_normal((40, 7)).astype(np.float32)
    bias = rng.standard_normal(7).astype(np.float32)
    out = np.empty((17, 7), np.float32)
    kernels.sparse_forward(x.indptr.astype(np.int64), x.indices.astype(np.int64), x.data, 3, 20, w, bias, out)
    np.testing.assert_allclose(out, x[3:20].toarray() @ w + bias, rtol=1e-5, atol=1e-5)
