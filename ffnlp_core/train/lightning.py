"""The second engine: PyTorch Lightning's Trainer trains the same model and streams the same events.

    for event in train_lightning(config, dataset, stop=threading.Event()):
        ...   # as loop.train: Started, Steps, Gradients, Eval, HiddenSnapshot, then Finished or Failed

`LitClassifier` is the lecture's LightningModule (configure_optimizers, training_step, validation_step,
torchmetrics); `_Emitter`, a Callback, tells the shared report.Reporter of each step and evaluation. The batches
are the manual loop's (one seeded generator: snapshot rows, then one permutation per epoch), and the callback
adds the epoch-end evaluation where val_check_interval missed it; its gradient probes stay on the device
until a flush (autograd.DeviceProbes), so a probed step does not wait for the GPU. Trainer.fit runs in a helper thread; the
generator yields from a queue and passes the stop flag on. With devices=2, strategy="ddp" each process trains
on its share of every epoch's rows; rank 0 alone reports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
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

from ..config import RunConfig
from ..data.dataset import Dataset
from ..nn.model import FeedForwardClassifier
from .autograd import DeviceProbes
from .devices import resolve_device
from .evaluate import DevResult, evaluate
from .lit_module import DEV_CHUNK, LitClassifier, loader
from .plan import build_model, new_run_id
from .report import Reporter

_QUIET_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")
_quiet_lock = threading.Lock()
_quiet_count = 0

# Lightning's advice for production jobs (worker processes, logger folders) is noise in a teaching app.
warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
warnings.filterwarnings("ignore", message=r".*sync_dist=True.*")
warnings.filterwarnings("ignore", message=r".*LightningModule.*log.*")
warnings.filterwarnings("ignore", module=r"lightning(\..*)?$")


# --- the callback: the Trainer's hooks, told to the shared Reporter --------------------------------------
class _Control:
    """Why the run should halt: the user's stop flag, a divergence, or the consumer went away."""

    def __init__(self, stop: threading.Event):
        self.stop, self.abort = stop, threading.Event()

    def halted(self) -> bool:
        return self.stop.is_set() or self.abort.is_set()


class _Emitter(pl.Callback):
    """Tells the Reporter of each step and evaluation (on rank 0; the other processes only train)."""

    def __init__(self, rep: Reporter, emit, control: _Control):
        self.rep, self.emit, self.control = rep, emit, control
        self.last_eval_step = -1
        self.deferred: DeviceProbes | None = None  # probed steps' statistics, on the device until a flush
        env = os.environ  # before the launcher has run, the environment says which process this is
        self.rank0 = env.get("LOCAL_RANK", "0") == "0" and env.get("NODE_RANK", "0") == "0"

    def send(self, trainer, events: list) -> None:
        for event in events:
            self.emit(event)
        if self.rep.failed and self.rep.world == 1:  # DDP: every process must stop together, so train on
            self.control.abort.set()
            trainer.should_stop = True

    def flush(self, epoch: int) -> list:
        """The Reporter's block, with the probes kept on the device since the last flush (one copy)."""
        return self.rep.flush(epoch, self.deferred.collect() if self.deferred is not None else [])

    # training steps
    def on_train_start(self, trainer, pl_module):
        self.rank0 = trainer.global_rank == 0  # known only now (the launcher has started the processes)
        pl_module.probe_now = self.rank0  # step 1 is always probed
        if self.rank0:
            summary = ModelSummary(pl_module, max_depth=2)  # Lightning's own parameter count, per layer
            params = dict(zip(summary.layer_names, summary.param_nums, strict=True))
            self.emit(self.rep.started([params[f"net.{name}"] for name in pl_module.net.layer_names]))

    def on_train_epoch_start(self, trainer, pl_module):
        self.rep.begin_epoch()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.t0 = time.perf_counter()
        if self.control.halted():
            trainer.should_stop = True  # the module skips this batch; the Trainer ends the run
        self.rep.begin_step()

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        # after loss.backward(), before optimizer.step(): keep the weights to measure the update
        if pl_module.probe_now:
            self.weights = [layer.weight for layer in pl_module.net.linear_layers()]
            self.before = [w.detach().clone() for w in self.weights]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        rep, step, size = self.rep, trainer.global_step, int(outputs["size"])
        rep.train_seconds += time.perf_counter() - self.t0
        if pl_module.probed is not None:  # the statistics stay on the device: no sync here
            pre, hidden = pl_module.probed
            self.deferred = self.deferred or DeviceProbes(pl_module.net)
            self.deferred.add(step, self.weights, self.before, pre, hidden, size)
            pl_module.probed = self.before = self.weights = None
        pl_module.probe_now = self.rank0 and rep.probe_due(step + 1)
        if not self.rank0:
            return
        epoch_end = batch_idx + 1 == rep.per_epoch
        if rep.record(step, outputs["loss"].detach(), outputs["correct"], size, None, epoch_end):
            self.send(trainer, self.flush(trainer.current_epoch + 1))

    # evaluation
    def on_validation_start(self, trainer, pl_module):
        self.eval_t0 = time.perf_counter()

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self._evaluated(trainer, pl_module, pl_module.dev_result, epoch_end=False)

    def on_train_epoch_end(self, trainer, pl_module):
        """The manual engine also evaluates at each epoch end: do it where Lightning's schedule did not."""
        stopped = self.control.halted() or (self.rep.failed and self.rep.world == 1)  # DDP: all or none
        if trainer.global_step != self.last_eval_step and not stopped:
            self.eval_t0 = time.perf_counter()
            result = pl_module.dev_pass(trainer.val_dataloaders)
            self._evaluated(trainer, pl_module, result, epoch_end=True)

    def _evaluated(self, trainer, pl_module, res: DevResult, epoch_end: bool):
        self.last_eval_step = trainer.global_step
        if not self.rank0:
            return
        rep, epoch = self.rep, trainer.current_epoch + 1
        self.send(trainer, self.flush(epoch))
        if rep.failed or self.control.stop.is_set():
            return
        rows = rep.snapshot_due()
        if rows is not None:  # the same dev rows at every snapshot: one small forward pass
            ds, net = rep.ds, pl_module.net
            snap = evaluate(net, ds.x_dev[rows], ds.y_dev[rows], pl_module.device, np.arange(len(rows)))
            res = dataclasses.replace(res, hidden=snap.hidden, probs=snap.probs)
        epoch_end = epoch_end or rep.steps_done % rep.per_epoch == 0
        self.send(trainer, rep.evaluated(epoch, epoch_end, res, time.perf_counter() - self.eval_t0))


# --- the generator --------------------------------------------------------------------------------------
_ACCELERATORS = {"cpu": "cpu", "cuda": "gpu", "mps": "mps"}
_DONE = object()  # the end of the event queue


def train_lightning(
    cfg: RunConfig,
    ds: Dataset,
    *,
    stop: threading.Event | None = None,
    run_id: str | None = None,
    model: FeedForwardClassifier | None = None,
) -> Iterator:
    """Train with Lightning's Trainer and yield the manual engine's events (nothing on ranks other than 0)."""
    device = resolve_device(cfg.train.device)  # a missing device is a ValueError, as in the manual engine
    control = _Control(stop or threading.Event())
    net = model or build_model(cfg, ds)
    rng = np.random.default_rng(cfg.train.seed)  # as the manual loop: snapshot rows first, then epoch orders
    world, run_id = max(1, cfg.train.devices), run_id or new_run_id()
    rep = Reporter(
        cfg, ds, net, run_id=run_id, device=device, path="autograd", engine="lightning", rng=rng, world=world
    )
    events: queue.Queue = queue.Queue()
    emitter = _Emitter(rep, events.put, control)
    root = tempfile.TemporaryDirectory(prefix="ffnlp-lightning-")
    try:
        trainer = _trainer(cfg, device, emitter, root.name)
    except ValueError:
        root.cleanup()
        raise
    lit = LitClassifier(net, cfg, control, ds.n_classes)
    loaders = (
        loader(ds.x_train, ds.y_train, cfg.train.batch_size, rng, True),
        loader(ds.x_dev, ds.y_dev, DEV_CHUNK, rng, False),
    )
    worker = threading.Thread(
        target=_fit, args=(trainer, lit, loaders, emitter), name="ffnlp-lightning-fit", daemon=True
    )
    worker.start()
    try:
        while (event := _next_event(events, trainer, control)) is not _DONE:
            yield event
    finally:
        if worker.is_alive():  # the consumer went away: stop the Trainer before its next batch
            control.abort.set()
            trainer.should_stop = True
            worker.join()
        root.cleanup()


def _trainer(cfg: RunConfig, device: torch.device, emitter: _Emitter, root: str) -> pl.Trainer:
    """The Trainer for this config; settings Lightning refuses are a ValueError (a setting to change)."""
    t = cfg.train
    callbacks = [emitter]
    if t.early_stopping_patience:
        callbacks.append(EarlyStopping("val_loss", patience=t.early_stopping_patience, verbose=False))
    try:
        with _quiet():
            trainer = pl.Trainer(
                accelerator=_ACCELERATORS[device.type],
                devices=t.devices if t.devices > 1 else ([device.index] if device.index is not None else 1),
                strategy=t.strategy,
                precision=t.precision or "32-true",
                max_epochs=t.epochs,
                val_check_interval=emitter.rep.eval_every,
                check_val_every_n_epoch=None,  # every eval_every steps, counted across epochs (as manual)
                num_sanity_val_steps=0,
                use_distributed_sampler=False,  # _EpochBatches shards the rows itself
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,  # its table is in lightning_summary() and the Started event
                default_root_dir=root,
                callbacks=callbacks,
            )
    except Exception as exc:  # e.g. a precision this device cannot do
        raise ValueError(f"Lightning refused the settings: {exc}") from exc
    if t.devices > 1 and type(trainer.strategy.launcher).__name__ != "_SubprocessScriptLauncher":
        # spawned processes could not hand their events back to this generator
        raise ValueError(f"strategy {t.strategy!r} is not supported here; use --strategy ddp")
    return trainer


def _fit(trainer: pl.Trainer, lit: LitClassifier, loaders, emitter: _Emitter) -> None:
    """Trainer.fit in the helper thread; the last events, and then _DONE, go on the queue."""
    rep, control = emitter.rep, emitter.control
    try:
        torch.set_flush_denormal(True)  # tiny Adam moments would otherwise slow CPU math 10-100x
        with _quiet():
            trainer.fit(lit, train_dataloaders=loaders[0], val_dataloaders=loaders[1])
        if emitter.rank0:
            emitter.send(trainer, emitter.flush(trainer.current_epoch + 1))
            if not rep.failed:
                emitter.emit(rep.finished(control.stop.is_set()))
    except Exception as exc:  # a crash (or out of memory) marks this run failed; the process goes on
        if emitter.rank0 and not rep.failed:
            emitter.emit(rep.crashed(exc))
    finally:
        emitter.emit(_DONE)


def _next_event(events: queue.Queue, trainer: pl.Trainer, control: _Control):
    """The next event from the helper thread, passing the stop flag on to the Trainer while waiting."""
    while True:
        try:
            return events.get(timeout=0.1)
        except queue.Empty:
            if control.halted():
                trainer.should_stop = True


@contextlib.contextmanager
def _quiet():
    """Lightning's INFO lines (GPU available, tips, `Trainer.fit` stopped) stay out of the console; runs in
    several threads share one count, and the last one out restores the levels."""
    global _quiet_count
    with _quiet_lock:
        if _quiet_count == 0:
            _quiet.saved = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
        _quiet_count += 1
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_count -= 1
            for name, level in _quiet.saved.items() if _quiet_count == 0 else ():
                logging.getLogger(name).setLevel(level)
