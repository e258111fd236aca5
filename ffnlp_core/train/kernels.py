"""Numba kernels for the CPU fast path: the epoch's row permutation, the sparse first layer, the softmax
cross-entropy and its gradient, and the probes' statistics (the optimizer updates are in updates.py,
the compilation settings and the prefetch hint in jit.py).

Why they exist: at batch 32 a PyTorch step on this network is mostly per-operation overhead (autograd,
dispatcher, optimizer bookkeeping) plus a dense Adam update of the whole vocabulary x width matrix, of
which a batch touches ~1%. These loops touch only the rows of the words in the batch.
All arrays are float32 except indices (int64); kernels write in place.
"""

from __future__ import annotations

import numpy as np

from . import updates
from .jit import _jit, _prefetch_span
from .updates import (  # noqa: F401  (the optimizer kernels, reached as kernels.* by the fast path)
    ADAM,
    ADAMW,
    OPTIMIZER_CODES,
    SGD,
    backward_update_rows,
    sparse_backward,
    update_flat,
    update_flat_probed,
    update_rows,
)


@_jit
def sparse_forward(indptr, indices, data, start, stop, weight, bias, out):
    """out[r] = bias + sum_k data[k] * weight[indices[k]] for CSR rows start..stop-1.  out: (B, H).

    Four weight rows at a time: their loads are in flight together (each is a cache miss at a random
    address), and out[r] is read and written a quarter as often.
    """
    width = weight.shape[1]
    wbytes = width * 4
    for r in range(start, stop):
        if r + 1 < stop:  # the next example's weight rows, fetched while this one's are summed
            for k in range(indptr[r + 1], indptr[r + 2]):
                _prefetch_span(weight[indices[k]], wbytes)
        o = out[r - start]
        for j in range(width):
            o[j] = bias[j]
        k, end = indptr[r], indptr[r + 1]
        while k + 4 <= end:
            r0, r1, r2, r3 = (
                weight[indices[k]],
                weight[indices[k + 1]],
                weight[indices[k + 2]],
                weight[indices[k + 3]],
            )
            v0, v1, v2, v3 = data[k], data[k + 1], data[k + 2], data[k + 3]
            for j in range(width):
                o[j] += (v0 * r0[j] + v1 * r1[j]) + (v2 * r2[j] + v3 * r3[j])
            k += 4
        while k < end:
            row = weight[indices[k]]
            v = data[k]
            for j in range(width):
                o[j] += v * row[j]
            k += 1


@_jit
def add_bias(z, bias):
    """z[i] += bias for each row of z (B, H), in place (NumPy's broadcast add is ~4x slower here)."""
    for i in range(z.shape[0]):
        zi = z[i]
        for j in range(z.shape[1]):
            zi[j] += bias[j]


@_jit
def permute_rows(indptr, indices, data, order, out_indptr, out_indices, out_data):
    """The CSR matrix's rows in `order`, written into out_* (what scipy's x[order] computes, without its
    allocations): the steps then read each batch's rows as one contiguous run of memory."""
    out_indptr[0] = 0
    pos = 0
    for i in range(order.shape[0]):
        r = order[i]
        for k in range(indptr[r], indptr[r + 1]):
            out_indices[pos] = indices[k]
            out_data[pos] = data[k]
            pos += 1
        out_indptr[i + 1] = pos


@_jit
def softmax_xent(logits, y, dz):
    """Mean cross-entropy of logits (B, C) against labels y (B,), and its gradient: dz = (softmax -
    onehot) / B, written in place.  Returns (summed loss, correct predictions)."""
    b, c = logits.shape
    inv_b = np.float32(1.0 / b)
    total = 0.0
    correct = 0
    for i in range(b):
        label = y[i]
        top, arg = logits[i, 0], 0
        for j in range(1, c):
            if logits[i, j] > top:
                top, arg = logits[i, j], j
        s = np.float32(0.0)
        for j in range(c):
            e = np.exp(logits[i, j] - top)
            dz[i, j] = e
            s += e
        total += np.log(np.float64(s)) - np.float64(logits[i, label] - top)
        correct += arg == label
        inv_s = np.float32(1.0) / s
        for j in range(c):
            dz[i, j] = dz[i, j] * inv_s * inv_b
        dz[i, label] -= inv_b
    return total, correct


@_jit
def segment_sq(a, b, starts, sizes):
    """Sum of squares of (a - b) over each segment [start, start + size) of flat arrays; b may be None."""
    out = np.zeros(starts.shape[0])
    for k in range(starts.shape[0]):
        acc = np.float32(0.0)
        for j in range(starts[k], starts[k] + sizes[k]):
            d = a[j] if b is None else a[j] - b[j]
            acc += d * d
        out[k] = acc
    return out


@_jit
def mean_row_norm(a):
    """Mean over rows of the Euclidean norm of each row.  a: (B, H)."""
    total = 0.0
    for i in range(a.shape[0]):
        sq = np.float32(0.0)
        for j in range(a.shape[1]):
            sq += a[i, j] * a[i, j]
        total += np.sqrt(np.float64(sq))
    return total / max(1, a.shape[0])


@_jit
def dead_fraction(z):
    """Fraction of units (columns) that are <= 0 for every example (row): dead ReLUs.  z: (B, H)."""
    alive = np.zeros(z.shape[1], np.bool_)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            if z[i, j] > 0:
                alive[j] = True
    return 1.0 - alive.sum() / max(1, z.shape[1])


@_jit
def small_slope_fraction(h, kind_sigmoid, threshold):
    """Fraction of activations whose slope is below `threshold`: sigmoid h(1-h), tanh 1-h^2.  h: (B, H)."""
    count = 0
    for i in range(h.shape[0]):
        for j in range(h.shape[1]):
            v = h[i, j]
            s = v * (1 - v) if kind_sigmoid else 1 - v * v
            if s < threshold:
                count += 1
    return count / max(1, h.size)


def warm_up() -> None:
    """Compile (or load from cache) every kernel on tiny inputs, so the first real step is fast."""
    f = np.float32
    indptr, indices, data = np.array([0, 1], np.int64), np.array([0], np.int64), np.ones(1, f)
    w, out = np.zeros((2, 2), f), np.zeros((1, 2), f)
    sparse_forward(indptr, indices, data, 0, 1, w, np.zeros(2, f), out)
    add_bias(out, np.zeros(2, f))
    slot, rows, grad = np.full(2, -1, np.int64), np.zeros(2, np.int64), np.zeros((2, 2), f)
    sparse_backward(indptr, indices, data, 0, 1, out, slot, rows, grad)
    for idx in (np.int32, np.int64):  # scipy's CSR holds int32 indices, or int64 for large matrices
        permute_rows(
            indptr.astype(idx), indices.astype(idx), data, np.zeros(1, np.int64), indptr, indices, data
        )
    softmax_xent(out, np.zeros(1, np.int64), np.zeros_like(out))
    flat, seg = np.zeros(2, f), np.zeros(1, np.int64)
    segment_sq(flat, None, seg, seg)
    segment_sq(flat, flat, seg, seg)
    mean_row_norm(out)
    dead_fraction(out)
    small_slope_fraction(out, True, 0.1)
    updates.warm_up()
