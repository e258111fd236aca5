"""The second engine: PyTorch Lightning's Trainer trains the same model and streams the same events.

    for event in train_lightning(config, dataset, stop=threading.Event()):
        ...   # Started, Steps, Gradients, Eval, HiddenSnapshot, then Finished or Failed (as engine.train)

`LitClassifier` is the lecture's LightningModule around our FeedForwardClassifier (configure_optimizers,
training_step, validation_step, torchmetrics accuracy); `_Emitter` is a Callback that turns the Trainer's
hooks into our events. Trainer.fit runs in a helper thread; the generator yields from a queue and passes the
stop flag on (the Trainer stops before its next batch). The batches are the manual engine's: one
`np.random.default_rng(seed)` draws the snapshot rows, then one permutation of the training rows per epoch,
so with the same seed both engines see the same batches in the same order.

Lightning evaluates every `eval_every` steps (val_check_interval); the epoch-end evaluation the manual engine
also makes is run by the callback where Lightning's schedule missed it. With `devices=2, strategy="ddp"` in
the config each process trains on its share of every epoch's rows; rank 0 alone emits events.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.utilities.model_summary import ModelSummary
from torch.nn import functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from ..config import RunConfig
from ..data.dataset import Dataset
from ..events import Eval, Failed, Finished, Gradients, HardExamples, HiddenSnapshot, Started, Steps
from ..nn.inputs import to_torch_csr as _csr
from ..nn.model import FeedForwardClassifier
from .autograd import autograd_probe, make_optimizer
from .devices import describe_device, resolve_device
from .evaluate import evaluate, hardest
from .loop import summarize
from .plan import FLUSH_SECONDS, build_model, new_run_id, schedule, snapshot_every

DEV_CHUNK = 4096  # dev rows per validation batch
_QUIET_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")
_quiet_lock = threading.Lock()
_quiet_count = 0

# Lightning's advice for production jobs (worker processes, logger folders) is noise in a teaching app.
warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
warnings.filterwarnings("ignore", message=r".*sync_dist=True.*")
warnings.filterwarnings("ignore", message=r".*LightningModule.*log.*")
warnings.filterwarnings("ignore", module=r"lightning(\..*)?$")


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
        self.log("val_loss", self.dev_result[0], sync_dist=False)  # already summed over every process

    def dev_metrics(self) -> tuple[float, float, np.ndarray]:
        """(dev loss, dev accuracy, confusion) over every process's share; resets the metrics."""
        out = (
            float(self.val_loss.compute()),
            float(self.val_accuracy.compute()),
            self.val_confusion.compute().cpu().numpy().astype(np.int64),
        )
        for m in (self.val_loss, self.val_accuracy, self.val_confusion):
            m.reset()
        return out

    @torch.no_grad()
    def dev_pass(self, loader) -> tuple[float, float, np.ndarray]:
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
        rank, world = _rank_and_world()
        return math.ceil(len(range(rank, self.n, world)) / self.bs)

    def __iter__(self):
        rank, world = _rank_and_world()
        order = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        mine = order[rank::world]
        return iter([mine[s : s + self.bs] for s in range(0, len(mine), self.bs)])


def _as_is(batch):
    return batch


def _loader(x, y, batch_size, rng, shuffle):
    sampler = _EpochBatches(x.shape[0], batch_size, rng, shuffle)
    return torch.utils.data.DataLoader(_Rows(x, y), batch_size=None, sampler=sampler, collate_fn=_as_is)


# --- the callback that speaks our events ----------------------------------------------------------------
class _Control:
    """Why the run should halt: the user's stop flag, a divergence, or the consumer went away."""

    def __init__(self, stop: threading.Event):
        self.stop, self.abort = stop, threading.Event()

    def halted(self) -> bool:
        return self.stop.is_set() or self.abort.is_set()


class _Emitter(pl.Callback):
    """Folds the Trainer's hooks into Started / Steps / Gradients / Eval / HiddenSnapshot events (rank 0)."""

    def __init__(self, cfg, ds, run_id, emit, control, snapshot_rows, device, world):
        self.cfg, self.ds, self.run_id, self.emit, self.control = cfg, ds, run_id, emit, control
        self.snapshot_rows, self.device, self.world = snapshot_rows, device, world
        n_local = math.ceil(ds.x_train.shape[0] / world)
        self.per_epoch, self.total, self.eval_every, self.probe_every = schedule(cfg, n_local)
        self.snap_every, self.n_evals = snapshot_every(cfg, self.per_epoch, self.eval_every), 0
        self.seen = self.train_seconds = 0.0
        self.epoch_losses, self.window_losses = [], []
        self.epoch_correct = self.epoch_seen = 0
        self.block = []  # (step, loss tensor, correct tensor, size)
        self.probes = []  # (step, Probe)
        self.grad_rms_sum, self.n_probes = None, 0
        self.last_flush, self.last_eval, self.last_eval_step = time.perf_counter(), None, -1
        self.failed = False
        self.steps_done = 0
        env = os.environ  # before the launcher has run, the environment says which process this is
        self.rank0 = env.get("LOCAL_RANK", "0") == "0" and env.get("NODE_RANK", "0") == "0"

    # training steps
    def on_train_start(self, trainer, pl_module):
        self.rank0 = trainer.global_rank == 0  # known only now (the launcher has started the processes)
        pl_module.probe_now = True  # step 1 is always probed
        if self.rank0:
            self.emit(self._started(pl_module))

    def on_train_epoch_start(self, trainer, pl_module):
        self.epoch_losses, self.epoch_correct, self.epoch_seen = [], 0, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.t0 = time.perf_counter()
        if self.control.halted():
            trainer.should_stop = True  # the module skips this batch; the Trainer ends the run

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        # after loss.backward(), before optimizer.step(): keep the weights to measure the update
        if pl_module.probe_now:
            self.weights = [layer.weight for layer in pl_module.net.linear_layers()]
            self.before = [w.detach().clone() for w in self.weights]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.train_seconds += time.perf_counter() - self.t0
        step = trainer.global_step
        self.steps_done = step
        size = int(outputs["size"])
        self.block.append((step, outputs["loss"].detach(), outputs["correct"], size))
        if pl_module.probe_now and pl_module.probed is not None:
            pre, hidden = pl_module.probed
            probe = autograd_probe(pl_module.net, self.weights, self.before, pre, hidden, size)
            self.probes.append((step, probe))
            pl_module.probed = self.before = self.weights = None
        pl_module.probe_now = (step + 1) % self.probe_every == 0
        last_of_epoch = batch_idx + 1 == self.per_epoch
        if (
            step == 1
            or step % self.eval_every == 0
            or last_of_epoch
            or time.perf_counter() - self.last_flush > FLUSH_SECONDS
        ):
            self._flush(trainer, trainer.current_epoch + 1)

    def _flush(self, trainer, epoch):
        """Yield the block's Steps and Gradients; the first non-finite loss or gradient fails the run."""
        block, probes = self.block, self.probes
        self.block, self.probes, self.last_flush = [], [], time.perf_counter()
        if not block or not self.rank0 or self.failed:
            return
        steps = np.array([b[0] for b in block], np.int64)
        loss = torch.stack([b[1] for b in block]).double().cpu().numpy()
        correct = torch.stack([b[2] for b in block]).double().cpu().numpy()
        size = np.array([b[3] for b in block], np.float64)
        bad = [int(s) for s in steps[~np.isfinite(loss)]]
        bad += [s for s, p in probes if not (np.isfinite(p.grad_sq).all() and np.isfinite(p.update_sq).all())]
        at = min(bad) if bad else None
        good = len(steps) if at is None else int(np.searchsorted(steps, at))
        self.seen += float(size[:good].sum()) * self.world  # every process trains on its own share
        self.epoch_correct += int(correct[:good].sum())
        self.epoch_seen += int(size[:good].sum())
        self.epoch_losses.extend(loss[:good].tolist())
        self.window_losses.extend(loss[:good].tolist())
        if good:
            self.emit(
                Steps(
                    epoch=epoch,
                    step=steps[:good],
                    loss=loss[:good].astype(np.float32),
                    accuracy=(correct[:good] / size[:good]).astype(np.float32),
                    running_accuracy=self.epoch_correct / max(1, self.epoch_seen),
                    examples_seen=int(self.seen),
                    train_seconds=self.train_seconds,
                    examples_per_second=self.seen / max(self.train_seconds, 1e-9),
                    total_steps=self.total,
                )
            )
        kept = [(s, p) for s, p in probes if at is None or s < at]
        if kept:
            self.emit(self._gradients(kept))
        if at is not None:
            self._fail(trainer, at, "the loss or its gradients became infinite or nan")

    def _fail(self, trainer, at, what):
        self.steps_done = at - 1  # the summary counts the good steps only
        lr = self.cfg.train.lr
        reason = f"diverged at step {at}: {what}. Lower the learning rate (now {lr:g}) and train again."
        self.emit(Failed("diverged", reason, at, self.summary()))
        self.failed = True
        if self.world == 1:  # in DDP every process must stop together: the others train on, rank 0 is silent
            self.control.abort.set()
            trainer.should_stop = True

    # evaluation
    def on_validation_start(self, trainer, pl_module):
        self.eval_t0 = time.perf_counter()

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        self._report(trainer, pl_module, pl_module.dev_result, epoch_end=False)

    def on_train_epoch_end(self, trainer, pl_module):
        """The manual engine also evaluates at each epoch end: do it where Lightning's schedule did not."""
        stopped = self.control.halted() or (self.failed and self.world == 1)  # DDP: all processes or none
        if trainer.global_step != self.last_eval_step and not stopped:
            self.eval_t0 = time.perf_counter()
            result = pl_module.dev_pass(trainer.val_dataloaders)
            self._report(trainer, pl_module, result, epoch_end=True)

    def _report(self, trainer, pl_module, result, epoch_end):
        step = trainer.global_step
        self.last_eval_step = step
        epoch = trainer.current_epoch + 1
        self._flush(trainer, epoch)
        if not self.rank0 or self.failed or self.control.stop.is_set():
            return
        dev_loss, dev_acc, confusion = result
        if not math.isfinite(dev_loss):
            self._fail(trainer, step, "the dev loss became nan (the weights are no longer finite)")
            return
        window, self.window_losses = self.window_losses, []
        epoch_end = epoch_end or (self.steps_done % self.per_epoch == 0)
        self.last_eval = Eval(
            step=step,
            epoch=epoch,
            epoch_end=epoch_end,
            dev_loss=dev_loss,
            dev_accuracy=dev_acc,
            confusion=confusion,
            train_loss=float(np.mean(window)) if window else float("nan"),
            train_accuracy=self.epoch_correct / max(1, self.epoch_seen),
            eval_seconds=time.perf_counter() - self.eval_t0,
        )
        self.emit(self.last_eval)
        net, device, rows = pl_module.net, pl_module.device, self.snapshot_rows
        self.n_evals += 1
        snap = self.n_evals % self.snap_every == 0 or step == self.total
        if rows is not None and snap:  # the same dev rows at every evaluation: one small forward pass
            ds = self.ds
            res = evaluate(net, ds.x_dev[rows], ds.y_dev[rows], device, np.arange(len(rows)))
            self.emit(HiddenSnapshot(step, epoch, rows, res.hidden, res.probs))
        k = self.cfg.train.hard_examples
        if k:
            train_rows, losses, pred = hardest(net, self.ds.x_train, self.ds.y_train, device, k)
            self.emit(HardExamples(step, train_rows, losses, pred))

    # reporting
    def _gradients(self, kept) -> Gradients:
        probes = [p for _, p in kept]
        grad_sq = np.stack([p.grad_sq for p in probes])
        rms = np.sqrt(grad_sq / probes[0].numel)
        self.grad_rms_sum = rms.sum(axis=0) + (0 if self.grad_rms_sum is None else self.grad_rms_sum)
        self.n_probes += len(probes)
        return Gradients(
            step=np.array([s for s, _ in kept], np.int64),
            layer_names=self.layer_names,
            grad_rms=rms,
            grad_norm=np.sqrt(grad_sq),
            signal=np.stack([p.signal for p in probes]),
            update_ratio=np.sqrt(np.stack([p.update_sq / np.maximum(p.weight_sq, 1e-30) for p in probes])),
            dead_fraction=np.stack([p.dead for p in probes]),
            saturated_fraction=np.stack([p.saturated for p in probes]),
        )

    def _started(self, pl_module) -> Started:
        net = pl_module.net
        self.layer_names = net.layer_names
        summary = ModelSummary(pl_module, max_depth=2)  # Lightning's own parameter count, per layer
        params = dict(zip(summary.layer_names, summary.param_nums, strict=True))
        return Started(
            run_id=self.run_id,
            total_steps=self.total,
            steps_per_epoch=self.per_epoch,
            train_examples=int(self.ds.x_train.shape[0]),
            dev_examples=int(self.ds.x_dev.shape[0]),
            vocab_size=int(self.ds.vocab_size),
            classes=list(self.ds.class_names),
            layer_names=net.layer_names,
            hidden_sizes=list(net.hidden_sizes),
            params_per_layer=[int(params[f"net.{name}"]) for name in net.layer_names],
            device=describe_device(self.device),
            path="autograd",
            engine="lightning",
            probe_every=self.probe_every,
        )

    def summary(self) -> dict:
        return summarize(self, steps=self.steps_done, path="autograd", engine="lightning")


# --- the generator --------------------------------------------------------------------------------------
_ACCELERATORS = {"cpu": "cpu", "cuda": "gpu", "mps": "mps"}


def train_lightning(
    cfg: RunConfig,
    ds: Dataset,
    *,
    stop: threading.Event | None = None,
    run_id: str | None = None,
    model: FeedForwardClassifier | None = None,
) -> Iterator:
    """Train with Lightning's Trainer and yield the manual engine's events (nothing on ranks other than 0)."""
    devices, strategy = cfg.train.devices, cfg.train.strategy
    device = resolve_device(cfg.train.device)  # a missing device is a ValueError, as in the manual engine
    control = _Control(stop or threading.Event())
    net = model or build_model(cfg, ds)
    world = max(1, devices)
    rng = np.random.default_rng(cfg.train.seed)  # as engine._Loop: snapshot rows first, then epoch orders
    n_dev = ds.x_dev.shape[0]
    k = min(cfg.train.snapshot_rows, n_dev)
    snapshot_rows = np.sort(rng.choice(n_dev, size=k, replace=False)) if k else None
    events: queue.Queue = queue.Queue()
    emitter = _Emitter(cfg, ds, run_id or new_run_id(), events.put, control, snapshot_rows, device, world)
    callbacks = [emitter]
    if cfg.train.early_stopping_patience:
        callbacks.append(EarlyStopping("val_loss", patience=cfg.train.early_stopping_patience, verbose=False))
    root = tempfile.TemporaryDirectory(prefix="ffnlp-lightning-")
    try:
        with _quiet():
            trainer = pl.Trainer(
                accelerator=_ACCELERATORS[device.type],
                devices=devices if devices > 1 else ([device.index] if device.index is not None else 1),
                strategy=strategy,
                precision=cfg.train.precision or "32-true",
                max_epochs=cfg.train.epochs,
                val_check_interval=emitter.eval_every,
                check_val_every_n_epoch=None,  # every eval_every steps, counted across epochs (as manual)
                num_sanity_val_steps=0,
                use_distributed_sampler=False,  # _EpochBatches shards the rows itself
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,  # its table is in lightning_summary() and the Started event
                default_root_dir=root.name,
                callbacks=callbacks,
            )
    except Exception as exc:  # e.g. a precision this device cannot do: a setting to change, as ValueError
        root.cleanup()
        raise ValueError(f"Lightning refused the settings: {exc}") from exc
    if world > 1 and type(trainer.strategy.launcher).__name__ != "_SubprocessScriptLauncher":
        root.cleanup()  # spawned processes could not hand their events back to this generator
        raise ValueError(f"strategy {strategy!r} is not supported here; use --strategy ddp")
    lit = LitClassifier(net, cfg, control, ds.n_classes)
    train_loader = _loader(ds.x_train, ds.y_train, cfg.train.batch_size, rng, True)
    dev_loader = _loader(ds.x_dev, ds.y_dev, DEV_CHUNK, rng, False)
    done = object()

    def fit() -> None:
        try:
            torch.set_flush_denormal(True)  # tiny Adam moments would otherwise slow CPU math 10-100x
            with _quiet():
                trainer.fit(lit, train_dataloaders=train_loader, val_dataloaders=dev_loader)
            emitter._flush(trainer, trainer.current_epoch + 1)
            if emitter.rank0 and not emitter.failed:
                stopped = control.stop.is_set() and emitter.steps_done < emitter.total
                events.put(Finished(stopped=stopped, summary=emitter.summary()))
        except (torch.OutOfMemoryError, MemoryError) as exc:
            at = emitter.steps_done
            if emitter.rank0:
                events.put(
                    Failed("out of memory", f"ran out of memory at step {at}: {exc}", at, emitter.summary())
                )
        except Exception as exc:  # a crash marks this run failed; the process goes on
            at = emitter.steps_done
            if emitter.rank0:
                events.put(
                    Failed("error", f"{type(exc).__name__} at step {at}: {exc}", at, emitter.summary())
                )
        finally:
            events.put(done)

    worker = threading.Thread(target=fit, name="ffnlp-lightning-fit", daemon=True)
    worker.start()
    try:
        while True:
            try:
                event = events.get(timeout=0.1)
            except queue.Empty:
                if control.halted():
                    trainer.should_stop = True
                continue
            if event is done:
                break
            yield event
    finally:
        if worker.is_alive():  # the consumer went away: stop the Trainer before its next batch
            control.abort.set()
            trainer.should_stop = True
            worker.join()
        root.cleanup()


def _rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes ((0, 1) outside a distributed run)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


@contextlib.contextmanager
def _quiet():
    """Lightning's INFO lines (GPU available, tips, `Trainer.fit` stopped) stay out of the console."""
    global _quiet_count
    with _quiet_lock:
        if _quiet_count == 0:
            _quiet.saved = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
            for name in _QUIET_LOGGERS:
                logging.getLogger(name).setLevel(logging.ERROR)
        _quiet_count += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_count -= 1
            if _quiet_count == 0:
                for name, level in _quiet.saved.items():
                    logging.getLogger(name).setLevel(level)
