"""Numba kernels of the optimizers on the CPU fast path: the first layer's backward pass on the rows a
batch touched (`sparse_backward`), Adam, AdamW and SGD (with momentum) on those rows (both in one call,
while the gradient rows are in cache: `backward_update_rows`) and on the dense
layers' flat parameters (with the probes' norms in `update_flat_probed`)."""

from __future__ import annotations

import numpy as np

from .jit import _jit, _prefetch_span

ADAM, ADAMW, SGD = 0, 1, 2
OPTIMIZER_CODES = {"adam": ADAM, "adamw": ADAMW, "sgd": SGD}
HYPER = (1e-3, 0.9, 0.999, 1e-8, 0.0, 0.9, 0.1, 0.1)  # warm-up: lr, b1, b2, eps, wd, momentum, bc1, bc2


@_jit
def _update_span(w, s1, s2, g, kind, lr, b1, b2, eps, wd, momentum, bc1, bc2):
    """One optimizer update of a contiguous run of parameters, in place (PyTorch's update rules).

    Returns (sum of squared changes, change of the sum of squares) of the run, for the probes.
    Each rule is split into loops with a single store each so that they vectorize.
    """
    n = w.shape[0]
    lr32, wdf, mom = np.float32(lr), np.float32(wd), np.float32(momentum)
    du2 = np.float32(0.0)
    dw2 = np.float32(0.0)
    if kind == SGD:  # buf = momentum * buf + (g + wd * w);  w -= lr * buf
        for j in range(n):
            s1[j] = mom * s1[j] + g[j] + wdf * w[j]
        for j in range(n):
            d = -lr32 * s1[j]
            du2 += d * d
            dw2 += d * (2 * w[j] + d)  # (w + d)^2 - w^2
            w[j] += d
        return du2, dw2
    b1f, b2f, epsf = np.float32(b1), np.float32(b2), np.float32(eps)
    c1, c2 = np.float32(1.0 - b1), np.float32(1.0 - b2)  # not 1 - b2f: float32(0.999) rounds 1 - it by 1e-5
    step = np.float32(lr / bc1)
    inv_sqrt_bc2 = np.float32(1.0 / np.sqrt(bc2))
    l2 = wdf if kind == ADAM else np.float32(0.0)  # Adam: L2 added to the gradient
    decay = np.float32(lr * wd) if kind == ADAMW else np.float32(0.0)  # AdamW: decoupled decay
    for j in range(n):
        s1[j] = b1f * s1[j] + c1 * (g[j] + l2 * w[j])
    for j in range(n):
        gj = g[j] + l2 * w[j]
        s2[j] = b2f * s2[j] + c2 * gj * gj
    for j in range(n):
        d = -decay * w[j] - step * s1[j] / (np.sqrt(s2[j]) * inv_sqrt_bc2 + epsf)
        du2 += d * d
        dw2 += d * (2 * w[j] + d)
        w[j] += d
    return du2, dw2


@_jit
def update_rows(weight, s1, s2, rows, grad, n, kind, lr, b1, b2, eps, wd, momentum, bc1, bc2):
    """Lazy update of the touched rows only (as torch.optim.SparseAdam does).

    Returns (sum of squared updates, change of sum W^2) over those rows.
    """
    du2 = 0.0
    dw2 = 0.0
    for q in range(n):
        r = rows[q]
        a, b = _update_span(weight[r], s1[r], s2[r], grad[q], kind, lr, b1, b2, eps, wd, momentum, bc1, bc2)
        du2 += a
        dw2 += b
    return du2, dw2


@_jit
def sparse_backward(indptr, indices, data, start, stop, dz, slot, rows, grad):
    """Gradient of the loss w.r.t. the weight rows the batch touched.

    dz: (B, H) gradient at the layer's output. Writes the distinct word ids to rows[:n] and their
    gradient rows to grad[:n]; returns n. `slot` (vocab,) must be all -1 on entry and is left so.
    """
    width = dz.shape[1]
    n = 0
    for r in range(start, stop):
        g = dz[r - start]
        for k in range(indptr[r], indptr[r + 1]):
            c = indices[k]
            q = slot[c]
            if q < 0:
                q = n
                slot[c] = n
                rows[n] = c
                n += 1
                for j in range(width):
                    grad[q, j] = 0.0
            v = data[k]
            for j in range(width):
                grad[q, j] += v * g[j]
    for q in range(n):
        slot[rows[q]] = -1
    return n


@_jit
def backward_update_rows(
    indptr,
    indices,
    data,
    start,
    stop,
    dz,
    slot,
    rows,
    grad,
    weight,
    state,
    kind,
    lr,
    b1,
    b2,
    eps,
    wd,
    momentum,
    bc1,
    bc2,
):
    """sparse_backward then update_rows in one call, while the gradient rows are still in cache.

    state: (vocab, 2, H), the optimizer's two slots of each row side by side (SGD uses only [:, 0]), so a
    row's state is one contiguous run of memory. Each touched row is updated in a single pass (one load of w, its
    state and its gradient). Returns (n, sum of squared updates, change of sum W^2).
    """
    width = dz.shape[1]
    n = sparse_backward(indptr, indices, data, start, stop, dz, slot, rows, grad)
    lr32, wdf, mom = np.float32(lr), np.float32(wd), np.float32(momentum)
    b1f, b2f, epsf = np.float32(b1), np.float32(b2), np.float32(eps)
    c1, c2 = np.float32(1.0 - b1), np.float32(1.0 - b2)
    step = np.float32(lr / bc1)
    inv_sqrt_bc2 = np.float32(1.0 / np.sqrt(bc2))
    l2 = wdf if kind == ADAM else np.float32(0.0)
    decay = np.float32(lr * wd) if kind == ADAMW else np.float32(0.0)
    du2 = 0.0
    dw2 = 0.0
    ahead = 4  # rows prefetched ahead of the one being updated
    wbytes, sbytes = width * 4, 2 * width * 4
    for q in range(min(ahead, n)):
        _prefetch_span(weight[rows[q]], wbytes)
        _prefetch_span(state[rows[q]], sbytes)
    for q in range(n):
        if q + ahead < n:
            nxt = rows[q + ahead]
            _prefetch_span(weight[nxt], wbytes)
            _prefetch_span(state[nxt], sbytes)
        r = rows[q]
        w = weight[r]
        m1 = state[r, 0]
        m2 = state[r, 1]
        gq = grad[q]
        rdu2 = np.float32(0.0)
        rdw2 = np.float32(0.0)
        if kind == SGD:
            for j in range(width):
                gj = gq[j]
                wj = w[j]
                bj = mom * m1[j] + gj + wdf * wj
                m1[j] = bj
                d = -lr32 * bj
                rdu2 += d * d
                rdw2 += d * (2 * wj + d)
                w[j] = wj + d
        else:
            for j in range(width):
                gj = gq[j]
                wj = w[j]
                ge = gj + l2 * wj
                a = b1f * m1[j] + c1 * ge
                s = b2f * m2[j] + c2 * ge * ge
                m1[j] = a
                m2[j] = s
                d = -decay * wj - step * a / (np.sqrt(s) * inv_sqrt_bc2 + epsf)
                rdu2 += d * d
                rdw2 += d * (2 * wj + d)
                w[j] = wj + d
        du2 += rdu2
        dw2 += rdw2
    return n, du2, dw2


@_jit
def update_flat(params, s1, s2, grad, kind, lr, b1, b2, eps, wd, momentum, bc1, bc2):
    """Update of one flat buffer holding all the dense parameters."""
    return _update_span(params, s1, s2, grad, kind, lr, b1, b2, eps, wd, momentum, bc1, bc2)


@_jit
def update_flat_probed(params, s1, s2, grad, starts, sizes, kind, lr, b1, b2, eps, wd, momentum, bc1, bc2):
    """update_flat, measuring each weight segment [start, start + size) on the way (a probed step):
    returns (sum of squared gradients, sum of squared updates, sum of squared weights after), one per segment.
    The spans between segments (the biases) are updated without being measured."""
    k = starts.shape[0]
    grad_sq, update_sq, weight_sq = np.zeros(k), np.zeros(k), np.zeros(k)
    pos = 0
    for i in range(k):
        a, b = starts[i], starts[i] + sizes[i]
        if a > pos:
            _update_span(
                params[pos:a],
                s1[pos:a],
                s2[pos:a],
                grad[pos:a],
                kind,
                lr,
                b1,
                b2,
                eps,
                wd,
                momentum,
                bc1,
                bc2,
            )
        g2 = np.float32(0.0)
        for j in range(a, b):
            g2 += grad[j] * grad[j]
        du2, _ = _update_span(
            params[a:b], s1[a:b], s2[a:b], grad[a:b], kind, lr, b1, b2, eps, wd, momentum, bc1, bc2
        )
        w2 = np.float32(0.0)
        for j in range(a, b):
            w2 += params[j] * params[j]
        grad_sq[i], update_sq[i], weight_sq[i] = g2, du2, w2
        pos = b
    n = params.shape[0]
    if pos < n:
        _update_span(
            params[pos:n], s1[pos:n], s2[pos:n], grad[pos:n], kind, lr, b1, b2, eps, wd, momentum, bc1, bc2
        )
    return grad_sq, update_sq, weight_sq


def warm_up() -> None:
    """Compile (or load from cache) every optimizer kernel on tiny inputs."""
    f = np.float32
    indptr, indices, data = np.array([0, 1], np.int64), np.array([0], np.int64), np.ones(1, f)
    w, dz = np.zeros((2, 2), f), np.zeros((1, 2), f)
    slot, rows, grad = np.full(2, -1, np.int64), np.zeros(2, np.int64), np.zeros((2, 2), f)
    z2, z4 = (lambda: np.zeros(2, f)), (lambda: np.zeros(4, f))
    for kind in (ADAM, ADAMW, SGD):
        state = np.zeros((2, 2, 2), f)
        backward_update_rows(indptr, indices, data, 0, 1, dz, slot, rows, grad, w, state, kind, *HYPER)
        update_rows(w, np.zeros_like(w), np.zeros_like(w), rows, grad, 0, kind, *HYPER)
        update_flat(z2(), z2(), z2(), z2(), kind, *HYPER)
        one, two = np.array([1], np.int64), np.array([2], np.int64)
        update_flat_probed(z4(), z4(), z4(), z4(), one, two, kind, *HYPER)
