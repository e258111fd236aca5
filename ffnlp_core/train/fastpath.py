"""The CPU fast path: one training step with hand-derived backpropagation on numpy views of the model's
own parameters, and lazy (touched-rows-only) optimizer updates for the sparse first layer.

It computes the same function and the same gradients as `loss.backward()` on `FeedForwardClassifier`
(tests check both against torch.autograd); it exists because at batch 32 PyTorch's per-operation
overhead, not arithmetic, dominates a step (see benchmarks/bench_train.py). The parameters stay torch
tensors: the model is an ordinary nn.Module before, during and after training.

Where a large batch's time goes (profiled at batch 512 on 2 cores, benchmarks/bench_train.py): the dense
(B, 100) x (100, 100) matmuls, the touched rows' optimizer update, the sparse first layer. So: the matmuls run
through NumPy's BLAS on one thread (two threads wait on each other on a busy machine: 10x slower), write
into buffers kept from step to step, the epoch's rows are permuted once into contiguous arrays by a kernel
(no scipy copy, no dtype conversions per epoch), and the softmax, loss and its gradient are one kernel. The
first layer's weight gradient and its touched rows' update are one kernel too (each row updated in one pass,
its two optimizer slots side by side in memory, the next rows prefetched), and the bias gradients are one
BLAS gemv each (ones @ dz) rather than a NumPy reduction.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ..config import TrainConfig
from ..nn.activations import ACTIVATIONS
from ..nn.model import FeedForwardClassifier
from . import kernels
from .probes import Probe, slope_stats


class FastCpuStepper:
    """Forward, backward and update for one batch of rows of the epoch-ordered training matrix."""

    path = "fast-cpu"

    def __init__(self, model: FeedForwardClassifier, cfg: TrainConfig, seed: int):
        kernels.warm_up()
        self.model, self.act = model, ACTIVATIONS[model.activation_name]
        self.p_drop = float(model.dropout_p)
        self.kind = kernels.OPTIMIZER_CODES[cfg.optimizer]
        self.lr, self.wd, self.momentum = cfg.lr, cfg.weight_decay, cfg.momentum
        self.b1, self.b2, self.eps = 0.9, 0.999, 1e-8  # torch.optim.Adam defaults
        self.t = 0
        self.rng = np.random.default_rng(seed)
        layers = model.linear_layers()
        first = layers[0]
        self.w0 = first.weight.detach().numpy()  # (vocab, H0), shares memory with the model
        vocab, width0 = self.w0.shape
        # the optimizer's two state slots of each row side by side: a touched row's state is one run of memory
        self.w0_state = np.zeros((vocab, 2, width0), np.float32)
        self.w0_s1, self.w0_s2 = self.w0_state[:, 0], self.w0_state[:, 1]
        self.t = 0
        self.resync()
        self.slot = np.full(vocab, -1, np.int64)
        self.rows = np.zeros(vocab, np.int64)
        self.row_grad = np.zeros((vocab, width0), np.float32)  # only [:n] is used
        # All other parameters become views into one flat buffer, so one kernel call updates them all.
        dense = [first.bias] + [p for layer in layers[1:] for p in (layer.weight, layer.bias)]
        total = sum(p.numel() for p in dense)
        self.flat = torch.zeros(total)
        self.flat_grad = np.zeros(total, np.float32)
        offset, views = 0, []
        for p in dense:
            n = p.numel()
            self.flat[offset : offset + n].copy_(p.detach().reshape(-1))
            p.data = self.flat[offset : offset + n].view_as(p)
            views.append((offset, n))
            offset += n
        self.flat_np = self.flat.numpy()
        self.flat_s1, self.flat_s2 = np.zeros_like(self.flat_np), np.zeros_like(self.flat_np)
        grad_view = [self.flat_grad[o : o + n] for o, n in views]
        self.b0, self.b0_grad = self.flat_np[views[0][0] : views[0][0] + views[0][1]], grad_view[0]
        self.dense = []  # (W (out,in), b, dW, db) for layer_1 ... output_layer
        # where each dense W starts in the flat buffers, and its size (for the probes)
        self.w_starts = np.array([views[1 + 2 * i][0] for i in range(len(layers) - 1)], np.int64)
        self.w_sizes = np.array([views[1 + 2 * i][1] for i in range(len(layers) - 1)], np.int64)
        for i, layer in enumerate(layers[1:]):
            (ow, _), (ob, nb) = views[1 + 2 * i], views[2 + 2 * i]
            shape = tuple(layer.weight.shape)
            self.dense.append(
                (
                    self.flat_np[ow : ow + layer.weight.numel()].reshape(shape),
                    self.flat_np[ob : ob + nb],
                    grad_view[1 + 2 * i].reshape(shape),
                    grad_view[2 + 2 * i],
                )
            )
        self.layer_numel = np.array([self.w0.size] + [w.size for w, _, _, _ in self.dense], np.float64)

    def begin_epoch(self, x: sp.csr_matrix, y: np.ndarray, order: np.ndarray | None = None) -> None:
        """The epoch's training rows are x[order], y[order] (order None: as they are), copied once into
        buffers kept from epoch to epoch, so that each batch is one contiguous run of rows."""
        order = np.arange(x.shape[0], dtype=np.int64) if order is None else np.asarray(order, np.int64)
        n, nnz = len(order), x.nnz
        if getattr(self, "indptr", None) is None or len(self.indptr) != n + 1 or len(self.indices) != nnz:
            self.indptr = np.empty(n + 1, np.int64)
            self.indices = np.empty(nnz, np.int64)
            self.data = np.empty(nnz, np.float32)
        src_data = x.data if x.data.dtype == np.float32 else x.data.astype(np.float32)
        kernels.permute_rows(x.indptr, x.indices, src_data, order, self.indptr, self.indices, self.data)
        self.y = np.ascontiguousarray(y[order], dtype=np.int64)

    def _buffers(self, b: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Pre-activations zs[i] (b, width_i) and gradient scratch dzs[i] of the same shapes, reused from
        step to step (a fresh (512, 100) array each time costs page faults, not arithmetic)."""
        if getattr(self, "_cap", 0) < b:
            widths = [self.w0.shape[1]] + [w.shape[0] for w, _, _, _ in self.dense]
            self._cap = b
            self._zs = [np.empty((b, n), np.float32) for n in widths]
            self._dzs = [np.empty((b, n), np.float32) for n in widths]
            self._ones = np.ones(b, np.float32)
        return [z[:b] for z in self._zs], [d[:b] for d in self._dzs]

    def step(self, start: int, stop: int, probe: bool = False) -> tuple[float, int, Probe | None]:
        """Train on rows start..stop-1 of the epoch's rows. Returns (mean loss, correct predictions,
        probe or None)."""
        with _OneBlasThread():
            return self._step(start, stop, probe)

    def _step(self, start: int, stop: int, probe: bool) -> tuple[float, int, Probe | None]:
        b = stop - start
        n_hidden = len(self.model.hidden_sizes)
        zs, dzs = self._buffers(b)
        ones = self._ones[:b]  # bias gradients as ones @ dz: one BLAS gemv, ~4x faster than dz.sum(axis=0)
        # forward: zs[i] (B, width_i), hs[i] = act(zs[i]), inputs[i] = what layer i+1 reads (after dropout)
        kernels.sparse_forward(self.indptr, self.indices, self.data, start, stop, self.w0, self.b0, zs[0])
        hs, masks, inputs = [], [], []
        for i, (w, bias, _, _) in enumerate(self.dense):
            h = self.act.f(zs[i])
            hs.append(h)
            if self.p_drop > 0:
                mask = (self.rng.random(h.shape, dtype=np.float32) >= self.p_drop) / np.float32(
                    1 - self.p_drop
                )
                masks.append(mask)
                h = h * mask
            inputs.append(h)
            np.matmul(h, w.T, out=zs[i + 1])  # (B, out)
            kernels.add_bias(zs[i + 1], bias)
        # backward: dz = dL/dz at each layer's pre-activation, from the output down
        dz = dzs[-1]
        loss_sum, correct = kernels.softmax_xent(zs[-1], self.y[start:stop], dz)
        loss, correct = float(loss_sum) / b, int(correct)  # mean cross-entropy
        signals = [] if probe else None
        slopes = [None] * n_hidden  # act'(z) of each hidden layer, kept for the probe's activation statistics
        for i in range(len(self.dense) - 1, -1, -1):
            w, _, dw, db = self.dense[i]
            if probe:
                signals.append(_signal(dz))
            np.matmul(dz.T, inputs[i], out=dw)
            np.matmul(ones, dz, out=db)
            dh = np.matmul(dz, w, out=dzs[i])  # (B, in)
            if masks:
                dh *= masks[i]
            s = self.act.slope(zs[i], hs[i])
            slopes[i] = s
            if s is not None:
                dh *= s
            dz = dh
        if probe:
            signals.append(_signal(dz))
        np.matmul(ones, dz, out=self.b0_grad)
        if probe and self.w0_sq_at != self.t:
            self.resync()  # ||W0||^2 is tracked incrementally only across consecutive probed steps
        # the first layer's touched rows: gradient and update in one kernel; then the dense parameters
        self.t += 1
        bc1, bc2 = 1 - self.b1**self.t, 1 - self.b2**self.t
        args = (self.kind, self.lr, self.b1, self.b2, self.eps, self.wd, self.momentum, bc1, bc2)
        n, row_du2, row_dw2 = kernels.backward_update_rows(
            self.indptr,
            self.indices,
            self.data,
            start,
            stop,
            dz,
            self.slot,
            self.rows,
            self.row_grad,
            self.w0,
            self.w0_state,
            *args,
        )
        g0 = self.row_grad[:n]
        row_grad_sq = float(np.vdot(g0, g0)) if probe else 0.0
        if not probe:
            kernels.update_flat(self.flat_np, self.flat_s1, self.flat_s2, self.flat_grad, *args)
            return loss, correct, None
        grad_sq, update_sq, weight_sq = kernels.update_flat_probed(
            self.flat_np, self.flat_s1, self.flat_s2, self.flat_grad, self.w_starts, self.w_sizes, *args
        )
        self.w0_sq += row_dw2
        self.w0_sq_at = self.t
        dead, saturated = slope_stats(self.act, slopes)
        return (
            loss,
            correct,
            Probe(
                grad_sq=np.concatenate(([row_grad_sq], grad_sq)),
                numel=self.layer_numel,
                signal=np.array(signals[::-1]),
                update_sq=np.concatenate(([row_du2], update_sq)),
                weight_sq=np.concatenate(([self.w0_sq], weight_sq)),
                dead=dead,
                saturated=saturated,
            ),
        )

    def resync(self) -> None:
        """Recompute ||W0||^2 exactly (it is then tracked incrementally while every step is probed)."""
        self.w0_sq = float(np.vdot(self.w0, self.w0))
        self.w0_sq_at = self.t


class _OneBlasThread:
    """NumPy's BLAS on one thread while a step runs, then as before. This network's matmuls are small
    ((B, 100) x (100, 100)): two BLAS threads gain little on an idle machine and lose 10x on a busy one,
    where each of a step's matmuls waits for a descheduled thread (measured: benchmarks/bench_train.py)."""

    _lib = None  # threadpoolctl's controller of NumPy's OpenBLAS, found once; False: none to limit

    def __enter__(self):
        lib = _OneBlasThread._lib
        if lib is None:
            lib = _OneBlasThread._lib = _numpy_blas()
        self.prev = lib.get_num_threads() if lib else 1
        if self.prev != 1:
            lib.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        if self.prev != 1:
            _OneBlasThread._lib.set_num_threads(self.prev)


def _numpy_blas():
    """The threadpoolctl controller of the BLAS NumPy links (OpenBLAS in the wheels), or False."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # scikit-learn brings it; without it the step runs with BLAS's own threads
        return False
    libs = [
        c for c in ThreadpoolController().select(user_api="blas").lib_controllers if "numpy" in c.filepath
    ]
    return libs[0] if libs else False


def _signal(dz: np.ndarray) -> float:
    """Mean over examples of the norm of each example's own loss gradient (dz is of the batch mean)."""
    return kernels.mean_row_norm(dz) * dz.shape[0]
