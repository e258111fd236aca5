"""The manual training loop, and `train`, the entry that runs a config on its engine.

    for event in train(config, dataset, stop=threading.Event()):
        ...   # Started, Steps, Gradients, Eval, HiddenSnapshot, then Finished or Failed

The loop is the lecture's (shuffle, batch, zero_grad / forward / backward / step, evaluate on dev every N
steps and at each epoch end); the step itself is done by the CPU fast path or the plain autograd path. What it
reports goes through report.Reporter, as the Lightning engine's does; the autograd path's gradient probes
reach it once per flush (they wait on the device in between, see autograd.DeviceProbes).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator

import numpy as np
import torch

from ..config import RunConfig
from ..data.dataset import Dataset
from ..nn.model import FeedForwardClassifier, parameter_summary
from .autograd import AutogradStepper
from .devices import resolve_device
from .evaluate import evaluate
from .fastpath import FastCpuStepper
from .plan import build_model, choose_path, new_run_id
from .report import Reporter


def train(
    cfg: RunConfig,
    ds: Dataset,
    *,
    stop: threading.Event | None = None,
    run_id: str | None = None,
    model: FeedForwardClassifier | None = None,
) -> Iterator:
    """Train on the config's engine and yield events; never raises for problems inside the run (they become
    a Failed event). `cfg` is what plan.prepare(cfg, ds) returned: a run is checked once, when it is
    submitted (the CLI and the job manager do it), and the engines trust it."""
    if cfg.train.engine == "lightning":
        from .lightning import train_lightning  # Lightning is slow to import: only its runs pay for it

        yield from train_lightning(cfg, ds, stop=stop, run_id=run_id, model=model)
        return
    yield from _Loop(cfg, ds, stop or threading.Event(), run_id or new_run_id(), model).run()  # manual


class _Loop:
    """State of one manual run; `run()` is the generator."""

    def __init__(self, cfg, ds, stop, run_id, model):
        self.cfg, self.ds, self.stop = cfg, ds, stop
        self.device = resolve_device(cfg.train.device)
        self.model = (model or build_model(cfg, ds)).to(self.device)
        self.path = choose_path(cfg, self.device)
        if self.path == "fast-cpu":
            self.stepper = FastCpuStepper(self.model, cfg.train, cfg.train.seed)
        else:
            # probes wait on the device and are read once per flush: a probed step never syncs the GPU
            self.stepper = AutogradStepper(self.model, cfg.train, self.device, defer_probes=True)
        self.rng = np.random.default_rng(cfg.train.seed)  # snapshot rows first, then one order per epoch
        self.rep = Reporter(
            cfg,
            ds,
            self.model,
            run_id=run_id,
            device=self.device,
            path=self.path,
            engine="manual",
            rng=self.rng,
        )

    def run(self) -> Iterator:
        torch.set_flush_denormal(True)  # tiny Adam moments would otherwise slow CPU math 10-100x
        rep = self.rep
        yield rep.started([row["params"] for row in parameter_summary(self.model)])
        try:
            for epoch in range(1, self.cfg.train.epochs + 1):
                yield from self._epoch(epoch)
                if rep.failed or self.stop.is_set():
                    break
            if not rep.failed:
                yield rep.finished(self.stop.is_set())
        except Exception as exc:  # a crash (or out of memory) marks this run failed; the process goes on
            yield rep.crashed(exc)

    def _epoch(self, epoch: int) -> Iterator:
        """Shuffle and step through the batches, yielding the epoch's events; ends early on a failure."""
        ds, rep, bs = self.ds, self.rep, self.cfg.train.batch_size
        order = self.rng.permutation(ds.x_train.shape[0])
        t0 = time.perf_counter()
        self.stepper.begin_epoch(ds.x_train, ds.y_train, order)  # rows x[order], y[order]
        rep.train_seconds += time.perf_counter() - t0
        rep.begin_epoch()
        n = len(order)
        for start in range(0, n, bs):
            if self.stop.is_set():
                break
            stop = min(start + bs, n)
            step = rep.begin_step()
            t0 = time.perf_counter()
            loss, correct, probe = self.stepper.step(start, stop, rep.probe_due(step))
            rep.train_seconds += time.perf_counter() - t0
            epoch_end = stop == n
            if rep.record(step, loss, correct, stop - start, probe, epoch_end):
                yield from self._flush(epoch)
            if not rep.failed and rep.eval_due(step, epoch_end):
                yield from self._evaluate(epoch, epoch_end)
            if rep.failed:
                return
        yield from self._flush(epoch)

    def _flush(self, epoch: int) -> list:
        """The block's events, with the probes the autograd path kept on the device since the last flush."""
        deferred = self.stepper.collect_probes() if self.path != "fast-cpu" else []  # one copy per flush
        return self.rep.flush(epoch, deferred)

    def _evaluate(self, epoch: int, epoch_end: bool) -> Iterator:
        """One pass over dev (the snapshot rows' hidden states with it, when one is due)."""
        t0 = time.perf_counter()
        rows = self.rep.snapshot_due()
        res = evaluate(self.model, self.ds.x_dev, self.ds.y_dev, self.device, rows)
        if self.path == "fast-cpu" and math.isfinite(res.loss):
            self.stepper.resync()
        yield from self.rep.evaluated(epoch, epoch_end, res, time.perf_counter() - t0)
