"""The plain PyTorch path: `zero_grad / forward / loss.backward() / step` with torch.optim, on any device.

It is the reference the fast CPU path is tested against, the path used on CUDA and MPS, and the one
that can reproduce the lecture's bug (skipping `optimizer.zero_grad()` lets gradients pile up).

Gradient probes come two ways. Per step (`autograd_probe`, the Lightning engine's and the reference): the
statistics are read to the host at once, which waits for the GPU. Deferred (`DeviceProbes`, the manual
loop's): each probed step leaves one small tensor of statistics on the device, and the loop reads all of
them with one transfer per flush (a few times a second), so a step never waits for the GPU.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch.nn import functional as F

from ..config import TrainConfig
from ..nn.activations import ACTIVATIONS
from ..nn.model import FeedForwardClassifier
from .probes import SATURATION, Probe, activation_stats


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = model.parameters()
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


class AutogradStepper:
    """One training step the plain way, on the model's device."""

    path = "autograd"

    def __init__(
        self, model: FeedForwardClassifier, cfg: TrainConfig, device: torch.device, defer_probes: bool = False
    ):
        """defer_probes: a probed step returns no Probe; its statistics wait on the device in
        `self.deferred` until `collect_probes()` reads them (the manual loop does, once per flush)."""
        self.model, self.device = model, device
        self.optimizer = make_optimizer(model, cfg)
        self.skip_zero_grad = cfg.skip_zero_grad
        self.deferred = DeviceProbes(model) if defer_probes else None
        self.steps = 0

    def begin_epoch(self, x: sp.csr_matrix, y: np.ndarray, order: np.ndarray | None = None) -> None:
        """The epoch's training rows are x[order], y[order] (order None: as they are), moved to the device."""
        if order is not None:
            x, y = x[order], y[order]
        self.indptr = x.indptr.astype(np.int64)
        self.crow = torch.from_numpy(self.indptr).to(self.device)
        self.col = torch.from_numpy(x.indices.astype(np.int64)).to(self.device)
        self.val = torch.from_numpy(x.data.astype(np.float32)).to(self.device)
        self.y = torch.from_numpy(y.astype(np.int64)).to(self.device)
        self.vocab = x.shape[1]

    def batch(self, start: int, stop: int) -> torch.Tensor:
        a, b = int(self.indptr[start]), int(self.indptr[stop])
        return torch.sparse_csr_tensor(
            self.crow[start : stop + 1] - a,
            self.col[a:b],
            self.val[a:b],
            size=(stop - start, self.vocab),
            check_invariants=False,
        )

    def step(self, start: int, stop: int, probe: bool = False):
        """Returns (loss, correct) as 0-d tensors on the device (read them in blocks) and a Probe or None
        (always None with deferred probes)."""
        self.steps += 1
        model = self.model
        model.train()
        if not self.skip_zero_grad:
            self.optimizer.zero_grad(set_to_none=True)
        x, y = self.batch(start, stop), self.y[start:stop]
        logits, hidden, pre = model(x, return_pre=True)
        if probe:
            for z in pre:
                z.retain_grad()
        loss = F.cross_entropy(logits, y)
        loss.backward()
        weights = [layer.weight for layer in model.linear_layers()]
        before = [w.detach().clone() for w in weights] if probe else None
        self.optimizer.step()
        correct = (logits.detach().argmax(dim=1) == y).sum()
        record = None
        if probe and self.deferred is not None:
            self.deferred.add(self.steps, weights, before, pre, hidden, stop - start)
        elif probe:
            record = autograd_probe(model, weights, before, pre, hidden, stop - start)
        return loss.detach(), correct, record

    def collect_probes(self) -> list[tuple[int, Probe]]:
        """The deferred probes since the last call, as (step number, Probe): one device-to-host copy.
        Step numbers count this stepper's steps from 1, as the loop's do."""
        return self.deferred.collect() if self.deferred is not None else []


class DeviceProbes:
    """Statistics of probed steps kept on the device, one (4 * layers + 2 * hidden,) tensor per step:
    squared gradient norms, signals, squared updates, squared weights (per layer), then the dead and the
    saturated fractions (per hidden layer; NaN where they do not apply). `collect` stacks them and reads
    them to the host at once."""

    def __init__(self, model: FeedForwardClassifier):
        self.act = ACTIVATIONS[model.activation_name]
        self.numel = np.array([layer.weight.numel() for layer in model.linear_layers()], np.float64)
        self.pending: list[tuple[int, torch.Tensor]] = []

    def add(self, step: int, weights, before, pre, hidden, batch_size: int) -> None:
        """The same arguments as autograd_probe; nothing here waits for the device."""
        act = self.act
        with torch.no_grad():
            parts = [
                torch.stack([(w.grad.to_dense() ** 2).sum() for w in weights]),
                torch.stack([z.grad.norm(dim=1).mean() * batch_size for z in pre]),
                torch.stack([((w - b) ** 2).sum() for w, b in zip(weights, before, strict=True)]),
                torch.stack([(w**2).sum() for w in weights]),
            ]
            nan = torch.full((len(hidden),), float("nan"), device=weights[0].device)
            dead, saturated = nan, nan
            if act.dead_units and hidden:  # f'(z) = 0 exactly where z <= 0: dead = no example with z > 0
                dead = torch.stack([1 - (z > 0).any(dim=0).float().mean() for z in pre[: len(hidden)]])
            if act.saturates and hidden:
                slopes = [act.slope(z.float(), h.float()) for z, h in zip(pre, hidden, strict=False)]
                saturated = torch.stack([(s < SATURATION * act.max_slope).float().mean() for s in slopes])
            parts += [dead, saturated]
            self.pending.append((step, torch.cat([p.float().reshape(-1) for p in parts])))

    def collect(self) -> list[tuple[int, Probe]]:
        if not self.pending:
            return []
        steps = [s for s, _ in self.pending]
        rows = torch.stack([r for _, r in self.pending]).cpu().numpy().astype(np.float64)  # the one sync
        self.pending = []
        n, k = len(self.numel), (rows.shape[1] - 4 * len(self.numel)) // 2
        return [
            (
                step,
                Probe(
                    grad_sq=row[:n],
                    numel=self.numel,
                    signal=row[n : 2 * n],
                    update_sq=row[2 * n : 3 * n],
                    weight_sq=row[3 * n : 4 * n],
                    dead=row[4 * n : 4 * n + k],
                    saturated=row[4 * n + k :],
                ),
            )
            for step, row in zip(steps, rows, strict=True)
        ]


def autograd_probe(model, weights, before, pre, hidden, batch_size) -> Probe:
    """Gradient statistics after loss.backward() and optimizer.step() (also used by the Lightning engine).

    weights: each linear layer's weight (with .grad); before: their values before the step;
    pre: the pre-activations [z0 .. logits] with retained grads; hidden: [h0 .. h{k-1}].
    """
    with torch.no_grad():
        stats = (
            torch.stack(
                [
                    torch.stack([(w.grad.to_dense() ** 2).sum() for w in weights]),
                    torch.stack([z.grad.norm(dim=1).mean() * batch_size for z in pre]),
                    torch.stack([((w - b) ** 2).sum() for w, b in zip(weights, before, strict=True)]),
                    torch.stack([(w**2).sum() for w in weights]),
                ]
            )
            .double()
            .cpu()
            .numpy()
        )
        k = len(hidden)
        zs = [z.detach().float().cpu().numpy() for z in pre[:k]]
        hs = [h.detach().float().cpu().numpy() for h in hidden]
    dead, saturated = activation_stats(model.activation_name, zs, hs)
    return Probe(
        grad_sq=stats[0],
        numel=np.array([w.numel() for w in weights], np.float64),
        signal=stats[1],
        update_sq=stats[2],
        weight_sq=stats[3],
        dead=dead,
        saturated=saturated,
    )
