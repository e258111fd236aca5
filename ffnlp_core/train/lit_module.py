"""The lecture's LightningModule around our network, and the manual loop's batches as a DataLoader.

`LitClassifier` holds FeedForwardClassifier as `net`: the configured optimizer, cross-entropy, torchmetrics
accuracy and the dev confusion matrix; `loader` hands out the same batches as the manual loop (one seeded
permutation per epoch, each process its rank::world share). `lightning.py` runs them in a Trainer.
"""

from __future__ import annotations

import math

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.utilities.model_summary import ModelSummary
from torch.nn import functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from ..config import RunConfig
from ..data.dataset import Dataset
from ..nn.inputs import to_torch_csr as _csr
from ..nn.model import FeedForwardClassifier
from .autograd import make_optimizer
from .evaluate import DevResult
from .plan import build_model

DEV_CHUNK = 4096  # dev rows per validation batch


def lightning_summary(cfg: RunConfig, ds: Dataset) -> str:
    """Lightning's ModelSummary table of the model this config builds (what its Trainer would print)."""
    lit = LitClassifier(build_model(cfg, ds), cfg, None, ds.n_classes)
    return str(ModelSummary(lit, max_depth=2))


# --- the LightningModule --------------------------------------------------------------------------------
class LitClassifier(pl.LightningModule):
    """The lecture's LightningModule: our FeedForwardClassifier as `net`, Adam (or the configured optimizer),
    cross-entropy, accuracy and the dev confusion matrix from torchmetrics."""

    def __init__(self, net: FeedForwardClassifier, cfg: RunConfig, control, n_classes: int):
        super().__init__()
        self.net, self.cfg, self.control = net, cfg, control
        self.train_accuracy = MulticlassAccuracy(num_classes=n_classes, average="micro")
        self.val_accuracy = MulticlassAccuracy(num_classes=n_classes, average="micro")
        self.val_loss = MeanMetric(nan_strategy="disable")
        self.val_confusion = MulticlassConfusionMatrix(num_classes=n_classes)
        self.probe_now = False  # set by the callback for the steps whose gradients it measures
        self.probed = None  # (pre-activations, hidden) of the probed step

    def configure_optimizers(self):
        return make_optimizer(self.net, self.cfg.train)

    def optimizer_zero_grad(self, epoch, batch_idx, optimizer):
        if not self.cfg.train.skip_zero_grad:  # the lecture's bug can be reproduced here too
            optimizer.zero_grad(set_to_none=True)

    def on_train_batch_start(self, batch, batch_idx):
        if self.control is not None and self.control.halted():
            return -1  # Lightning skips the rest of the epoch; should_stop ends the run

    def training_step(self, batch, batch_idx):
        x, y = batch  # x: (B, vocab) sparse CSR, y: (B,)
        if self.probe_now:
            logits, hidden, pre = self.net(x, return_pre=True)
            for z in pre:
                z.retain_grad()
            self.probed = (pre, hidden)
        else:
            logits, _ = self.net(x)
        loss = F.cross_entropy(logits, y)
        pred = logits.detach().argmax(dim=1)
        self.train_accuracy.update(pred, y)
        self.log("train_accuracy", self.train_accuracy, on_step=False, on_epoch=True)
        return {"loss": loss, "correct": (pred == y).sum(), "size": len(y)}

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits, _ = self.net(x)
        self.val_loss.update(F.cross_entropy(logits, y, reduction="none"))
        pred = logits.argmax(dim=1)
        self.val_accuracy.update(pred, y)
        self.val_confusion.update(pred, y)

    def on_validation_epoch_end(self):
        self.dev_result = self.dev_metrics()
        self.log("val_loss", self.dev_result.loss, sync_dist=False)  # already summed over every process

    def dev_metrics(self) -> DevResult:
        """Dev loss, accuracy and confusion over every process's share (no hidden states); resets them."""
        confusion = self.val_confusion.compute().cpu().numpy().astype(np.int64)
        out = DevResult(
            float(self.val_loss.compute()), float(self.val_accuracy.compute()), confusion, None, None
        )
        for m in (self.val_loss, self.val_accuracy, self.val_confusion):
            m.reset()
        return out

    @torch.no_grad()
    def dev_pass(self, loader) -> DevResult:
        """The validation loop by hand (for the epoch-end evaluation Lightning's schedule skipped)."""
        was_training = self.net.training
        self.net.eval()
        for i, (x, y) in enumerate(loader):
            self.validation_step((x.to(self.device), y.to(self.device)), i)
        self.net.train(was_training)
        return self.dev_metrics()


# --- data: the manual engine's batches ------------------------------------------------------------------
class _Rows(torch.utils.data.Dataset):
    """rows (an index array) -> (sparse CSR batch, labels); the sampler hands out whole batches."""

    def __init__(self, x, y):
        self.x, self.y = x, np.asarray(y, np.int64)

    def __len__(self):
        return self.x.shape[0]

    def __getitem__(self, rows):
        return _csr(self.x[rows]), torch.from_numpy(self.y[rows])


class _EpochBatches(torch.utils.data.Sampler):
    """Each epoch: the next permutation from `rng` (shared with the snapshot choice), this process's share
    of it (rank::world, read when iterating: the process group exists by then), cut into batches."""

    def __init__(self, n, batch_size, rng, shuffle=True):
        self.n, self.bs, self.rng, self.shuffle = n, batch_size, rng, shuffle

    def __len__(self):
        rank, world = rank_and_world()
        return math.ceil(len(range(rank, self.n, world)) / self.bs)

    def __iter__(self):
        rank, world = rank_and_world()
        order = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        mine = order[rank::world]
        return iter([mine[s : s + self.bs] for s in range(0, len(mine), self.bs)])


def _as_is(batch):
    return batch


def loader(x, y, batch_size, rng, shuffle):
    sampler = _EpochBatches(x.shape[0], batch_size, rng, shuffle)
    return torch.utils.data.DataLoader(_Rows(x, y), batch_size=None, sampler=sampler, collate_fn=_as_is)


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes ((0, 1) outside a distributed run)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1
