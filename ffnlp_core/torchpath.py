"""The plain PyTorch path: `zero_grad / forward / loss.backward() / step` with torch.optim, on any device.

It is the reference the fast CPU path is tested against, the path used on CUDA and MPS, and the one
that can reproduce the lecture's bug (skipping `optimizer.zero_grad()` lets gradients pile up).
Also home of the shared helpers: scipy CSR -> torch, device choice, evaluation on the dev split.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch.nn import functional as F

from .config import TrainConfig
from .fastpath import Probe, activation_stats
from .model import FeedForwardClassifier

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; an explicit choice that does not exist is an error."""
    has_mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available here; use 'cpu' or 'auto'")
    if name == "mps" and not has_mps:
        raise ValueError(
            "device 'mps' was asked for but Apple's MPS is not available here; use 'cpu' or 'auto'"
        )
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
    return str(device)


def available_devices() -> list[tuple[str, str]]:
    """(key, label) for each device present: CPU always, then CUDA GPUs with their names, then MPS."""
    found = [("cpu", "CPU")]
    if torch.cuda.is_available():
        found.append(("cuda", f"CUDA: {torch.cuda.get_device_name(0)}"))
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        found.append(("mps", "Apple MPS"))
    return found


def to_torch_csr(x: sp.csr_matrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """scipy CSR (rows, vocab) -> torch sparse CSR float32 on `device` (no dense copy)."""
    return torch.sparse_csr_tensor(
        torch.from_numpy(x.indptr.astype(np.int64)),
        torch.from_numpy(x.indices.astype(np.int64)),
        torch.from_numpy(x.data.astype(np.float32)),
        size=x.shape,
        check_invariants=False,
    ).to(device)


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


@dataclass
class DevResult:
    loss: float
    accuracy: float
    confusion: np.ndarray  # (C, C)
    hidden: list[np.ndarray] | None  # snapshot rows only, float16
    probs: np.ndarray | None  # snapshot rows only


@torch.no_grad()
def hardest(
    model: FeedForwardClassifier,
    x: sp.csr_matrix,
    y: np.ndarray,
    device: torch.device,
    k: int,
    chunk: int = 4096,
):
    """(rows, losses, predicted) of the k examples with the highest loss, highest first."""
    was_training = model.training
    model.eval()
    y = np.asarray(y, np.int64)
    losses, preds = [], []
    for s in range(0, x.shape[0], chunk):
        logits, _ = model(to_torch_csr(x[s : s + chunk], device))
        yt = torch.from_numpy(y[s : s + chunk]).to(device)
        losses.append(F.cross_entropy(logits, yt, reduction="none").cpu().numpy())
        preds.append(logits.argmax(dim=1).cpu().numpy())
    model.train(was_training)
    loss, pred = np.concatenate(losses), np.concatenate(preds)
    rows = np.argsort(-loss, kind="stable")[:k]
    return rows, loss[rows].astype(np.float32), pred[rows]


@torch.no_grad()
def evaluate(
    model: FeedForwardClassifier,
    x: sp.csr_matrix,
    y: np.ndarray,
    device: torch.device,
    snapshot_rows: np.ndarray | None = None,
    chunk: int = 4096,
) -> DevResult:
    """Dev loss, accuracy and confusion matrix; hidden states and probabilities of `snapshot_rows`."""
    was_training = model.training
    model.eval()
    y = np.asarray(y, np.int64)
    n_classes = model.n_classes
    loss_sum, confusion = 0.0, np.zeros((n_classes, n_classes), np.int64)
    for s in range(0, x.shape[0], chunk):
        logits, _ = model(to_torch_csr(x[s : s + chunk], device))
        yt = torch.from_numpy(y[s : s + chunk]).to(device)
        loss_sum += float(F.cross_entropy(logits, yt, reduction="sum"))
        pred = logits.argmax(dim=1).cpu().numpy()
        np.add.at(confusion, (y[s : s + chunk], pred), 1)
    hidden = probs = None
    if snapshot_rows is not None and len(snapshot_rows):
        logits, hs = model(to_torch_csr(x[snapshot_rows], device))
        hidden = [h.cpu().numpy().astype(np.float16) for h in hs]
        probs = torch.softmax(logits, dim=1).cpu().numpy().astype(np.float32)
    model.train(was_training)
    n = max(1, x.shape[0])
    return DevResult(loss_sum / n, float(np.trace(confusion)) / n, confusion, hidden, probs)
