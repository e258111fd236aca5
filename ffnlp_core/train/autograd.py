"""The plain PyTorch path: `zero_grad / forward / loss.backward() / step` with torch.optim, on any device.

It is the reference the fast CPU path is tested against, the path used on CUDA and MPS, and the one
that can reproduce the lecture's bug (skipping `optimizer.zero_grad()` lets gradients pile up).
Also home of the shared helpers: scipy CSR -> torch, device choice, evaluation on the dev split.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch.nn import functional as F

from ..config import TrainConfig
from ..nn.model import FeedForwardClassifier
from .probes import Probe, activation_stats


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

    def __init__(self, model: FeedForwardClassifier, cfg: TrainConfig, device: torch.device):
        self.model, self.device = model, device
        self.optimizer = make_optimizer(model, cfg)
        self.skip_zero_grad = cfg.skip_zero_grad

    def begin_epoch(self, x: sp.csr_matrix, y: np.ndarray) -> None:
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
        """Returns (loss, correct) as 0-d tensors on the device (read them in blocks) and a Probe or None."""
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
        record = autograd_probe(model, weights, before, pre, hidden, stop - start) if probe else None
        return loss.detach(), correct, record


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
