"""Evaluation on the dev split (loss, accuracy, confusion matrix, hidden-state snapshot) and the
highest-loss training comments, both in chunks and without gradients."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch.nn import functional as F

from ..nn.inputs import to_torch_csr
from ..nn.model import FeedForwardClassifier


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
        hidden = [compact(h.cpu().numpy()) for h in hs]
        probs = torch.softmax(logits, dim=1).cpu().numpy().astype(np.float32)
    model.train(was_training)
    n = max(1, x.shape[0])
    return DevResult(loss_sum / n, float(np.trace(confusion)) / n, confusion, hidden, probs)


F16_MAX = float(np.finfo(np.float16).max)


def compact(h: np.ndarray) -> np.ndarray:
    """Hidden states as float16 (half the memory) where that keeps every value, else float32: a
    snapshot never holds an inf that training did not produce."""
    if h.size and np.isfinite(h).all() and float(np.abs(h).max()) >= F16_MAX:
        return h.astype(np.float32)
    return h.astype(np.float16)
