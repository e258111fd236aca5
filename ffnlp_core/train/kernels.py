"""Numba kernels for the CPU fast path: the epoch's row permutation, the sparse first layer, the softmax
cross-entropy and its gradient, and the optimizer updates.

Why they exist: at batch 32 a PyTorch step on this network is mostly per-operation overhead (autograd,
dispatcher, optimizer bookkeeping) plus a dense Adam update of the whole vocabulary x width matrix, of
which a batch touches ~1%. These loops touch only the rows of the words in the batch.
All arrays are float32 except indices (int64); kernels write in place.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

ADAM, ADAMW, SGD = 0, 1, 2
OPTIMIZER_CODES = {"adam": ADAM, "adamw": ADAMW, "sgd": SGD}
# error_model="numpy": no ZeroDivisionError checks, which would stop LLVM from vectorizing the loops.
# nogil: the web server's threads keep running while a kernel works.
_jit = njit(cache=True, fastmath=True, error_model="numpy", nogil=True)


@intrinsic
def _prefetch(typingctx, arr_ty, off_ty):
    """Hint the CPU to bring the cache line at byte `off` of array `arr`'s data into cache (LLVM's
    prefetch; it changes no value). Used on the weight and optimizer rows a kernel reads next, which sit
    at random addresses the hardware prefetcher cannot guess."""
    sig = types.void(arr_ty, off_ty)

    def codegen(context, builder, signature, args):
        arr, off = args
        ary = context.make_array(signature.args[0])(context, builder, arr)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        ptr = builder.gep(builder.bitcast(ary.data, i8p), [off])
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0i8"
        )
        builder.call(fn, [ptr, i32(1), i32(3), i32(1)])  # for writing, keep in all levels, data cache
        return context.get_dummy_value()

    return sig, codegen


@_jit
def _prefetch_span(a, nbytes):
    """Prefetch the first nbytes of array a's data (a contiguous row)."""
    for off in range(0, nbytes, 64):
        _prefetch(a, off)
    _prefetch(a, nbytes - 1)


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
                gq = grad[q]
                v = data[k]
                for j in range(width):
                    gq[j] = v * g[j]
            else:
                gq = grad[q]
                v = data[k]
                for j in range(width):
                    gq[j] += v * g[j]
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
        slot[r] = -1
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
    indptr = np.array([0, 1], np.int64)
    indices = np.array([0], np.int64)
    data = np.ones(1, f)
    w = np.zeros((2, 2), f)
    out = np.zeros((1, 2), f)
    sparse_forward(indptr, indices, data, 0, 1, w, np.zeros(2, f), out)
    add_bias(out, np.zeros(2, f))
    slot = np.full(2, -1, np.int64)
    rows = np.zeros(2, np.int64)
    grad = np.zeros((2, 2), f)
    n = sparse_backward(indptr, indices, data, 0, 1, out, slot, rows, grad)
    for kind in (ADAM, ADAMW, SGD):
        backward_update_rows(
            indptr,
            indices,
            data,
            0,
            1,
            out,
            slot,
            rows,
            grad,
            w,
            np.zeros((2, 2, 2), f),
            kind,
            1e-3,
            0.9,
            0.999,
            1e-8,
            0.0,
            0.9,
            0.1,
            0.1,
        )
    for kind in (ADAM, ADAMW, SGD):
        update_rows(
            w,
            np.zeros_like(w),
            np.zeros_like(w),
            rows,
            grad,
            n,
            kind,
            1e-3,
            0.9,
            0.999,
            1e-8,
            0.0,
            0.9,
            0.1,
            0.1,
        )
        update_flat(
            np.zeros(2, f),
            np.zeros(2, f),
            np.zeros(2, f),
            np.zeros(2, f),
            kind,
            1e-3,
            0.9,
            0.999,
            1e-8,
            0.0,
            0.9,
            0.1,
            0.1,
        )
    flat, seg = np.zeros(2, f), np.zeros(1, np.int64)
    for kind in (ADAM, ADAMW, SGD):
        update_flat_probed(
            np.zeros(4, f),
            np.zeros(4, f),
            np.zeros(4, f),
            np.zeros(4, f),
            np.array([1], np.int64),
            np.array([2], np.int64),
            kind,
            1e-3,
            0.9,
            0.999,
            1e-8,
            0.0,
            0.9,
            0.1,
            0.1,
        )
    for idx in (np.int32, np.int64):  # scipy's CSR holds int32 indices, or int64 for large matrices
        permute_rows(
            indptr.astype(idx), indices.astype(idx), data, np.zeros(1, np.int64), indptr, indices, data
        )
    softmax_xent(out, np.zeros(1, np.int64), np.zeros_like(out))
    segment_sq(flat, None, seg, seg)
    segment_sq(flat, flat, seg, seg)
    mean_row_norm(out)
    dead_fraction(out)
    small_slope_fraction(out, True, 0.1)
