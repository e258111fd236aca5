"""The manual training loop: one generator that trains a FeedForwardClassifier and yields plain events.

    for event in train(config, dataset, stop=threading.Event()):
        ...   # Started, Steps, Gradients, Eval, HiddenSnapshot, then Finished or Failed

The loop is the lecture's (shuffle, batch, zero_grad / forward / backward / step, evaluate on dev every N
steps and at each epoch end); the step itself is done by the CPU fast path or the plain autograd path.
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
from ..events import Eval, Failed, Finished, Gradients, HardExamples, HiddenSnapshot, Started, Steps
from ..nn.model import FeedForwardClassifier
from .autograd import AutogradStepper
from .devices import describe_device, resolve_device
from .evaluate import evaluate, hardest
from .fastpath import FastCpuStepper
from .plan import (
    FLUSH_SECONDS,
    build_model,
    choose_path,
    new_run_id,
    prepare,
    schedule,
    snapshot_every,
)
from .probes import Probe


def train(
    cfg: RunConfig,
    ds: Dataset,
    *,
    stop: threading.Event | None = None,
    run_id: str | None = None,
    model: FeedForwardClassifier | None = None,
) -> Iterator:
    """Train and yield events; never raises for problems inside the run (they become a Failed event)."""
    cfg = prepare(cfg, ds)
    if cfg.train.engine == "lightning":
        from .lightning import train_lightning

        yield from train_lightning(cfg, ds, stop=stop, run_id=run_id, model=model)
        return
    loop = _Loop(cfg, ds, stop or threading.Event(), run_id or new_run_id(), model)
    yield from loop.run()


class _Loop:
    """State of one manual run; `run()` is the generator."""

    def __init__(self, cfg, ds, stop, run_id, model):
        self.cfg, self.ds, self.stop, self.run_id = cfg, ds, stop, run_id
        self.device = resolve_device(cfg.train.device)
        self.model = (model or build_model(cfg, ds)).to(self.device)
        self.path = choose_path(cfg, self.device)
        if self.path == "fast-cpu":
            self.stepper = FastCpuStepper(self.model, cfg.train, cfg.train.seed)
        else:
            self.stepper = AutogradStepper(self.model, cfg.train, self.device)
        self.rng = np.random.default_rng(cfg.train.seed)
        n_dev = ds.x_dev.shape[0]
        k = min(cfg.train.snapshot_rows, n_dev)
        self.snapshot_rows = np.sort(self.rng.choice(n_dev, size=k, replace=False)) if k else None
        self.per_epoch, self.total, self.eval_every, self.probe_every = schedule(cfg, ds.x_train.shape[0])
        self.snap_every = snapshot_every(cfg, self.per_epoch, self.eval_every)
        self.n_evals = 0
        self.step_no = 0
        self.seen = 0
        self.train_seconds = 0.0
        self.grad_rms_sum = None
        self.n_probes = 0
        self.last_eval = None
        self.epoch_losses: list[float] = []
        self.epoch_correct = 0
        self.epoch_seen = 0
        self.window_losses: list[float] = []

    # --- the loop -------------------------------------------------------------------------------
    def run(self) -> Iterator:
        torch.set_flush_denormal(True)  # tiny Adam moments would otherwise slow CPU math 10-100x
        yield self._started()
        try:
            for epoch in range(1, self.cfg.train.epochs + 1):
                failed = yield from self._epoch(epoch)
                if failed or self.stop.is_set():
                    break
            else:
                yield Finished(stopped=False, summary=self.summary())
                return
            if not failed:
                yield Finished(stopped=True, summary=self.summary())
        except (torch.OutOfMemoryError, MemoryError) as exc:
            yield Failed(
                "out of memory",
                f"ran out of memory at step {self.step_no}: {exc}",
                self.step_no,
                self.summary(),
            )
        except Exception as exc:  # a crash marks this run failed; the process goes on
            yield Failed(
                "error", f"{type(exc).__name__} at step {self.step_no}: {exc}", self.step_no, self.summary()
            )

    def _epoch(self, epoch: int):
        """Yields the epoch's events; returns True if the run failed (diverged)."""
        ds, bs = self.ds, self.cfg.train.batch_size
        order = self.rng.permutation(ds.x_train.shape[0])
        t0 = time.perf_counter()
        self.stepper.begin_epoch(ds.x_train[order], ds.y_train[order])
        self.train_seconds += time.perf_counter() - t0
        self.epoch_losses, self.epoch_correct, self.epoch_seen = [], 0, 0
        losses, corrects, sizes, probes, probe_steps = [], [], [], [], []
        last_flush = time.perf_counter()
        n = len(order)
        for start in range(0, n, bs):
            if self.stop.is_set():
                break
            stop = min(start + bs, n)
            self.step_no += 1
            probe = self.step_no % self.probe_every == 0 or self.step_no == 1
            t0 = time.perf_counter()
            loss, correct, record = self.stepper.step(start, stop, probe)
            self.train_seconds += time.perf_counter() - t0
            losses.append(loss)
            corrects.append(correct)
            sizes.append(stop - start)
            if record is not None:
                probes.append(record)
                probe_steps.append(self.step_no)
            end_of_epoch = stop == n
            eval_due = self.step_no % self.eval_every == 0 or end_of_epoch
            quick_check = (isinstance(loss, float) and not math.isfinite(loss)) or (
                record is not None and not _finite_probe(record)
            )
            if (
                quick_check
                or eval_due
                or self.step_no == 1
                or time.perf_counter() - last_flush > FLUSH_SECONDS
            ):
                failed = yield from self._flush(epoch, losses, corrects, sizes, probes, probe_steps)
                if failed:
                    return True
                losses, corrects, sizes, probes, probe_steps = [], [], [], [], []
                last_flush = time.perf_counter()
            if eval_due and not (yield from self._evaluate(epoch, end_of_epoch)):
                return True
        if losses:
            return (yield from self._flush(epoch, losses, corrects, sizes, probes, probe_steps))
        return False

    def _flush(self, epoch, losses, corrects, sizes, probes, probe_steps):
        """Yield the block's Steps and Gradients; on the first non-finite loss or gradient, stop there and
        yield Failed("diverged") with the figures of the good steps only. Returns True when diverged."""
        loss = _as_numpy(losses)
        correct = _as_numpy(corrects)
        size = np.asarray(sizes, np.float64)
        steps = np.arange(self.step_no - len(loss) + 1, self.step_no + 1, dtype=np.int64)
        bad_steps = [int(s) for s in steps[~np.isfinite(loss)]]
        bad_steps += [s for s, p in zip(probe_steps, probes, strict=True) if not _finite_probe(p)]
        at = min(bad_steps) if bad_steps else None
        good = len(loss) if at is None else int(np.searchsorted(steps, at))
        self.seen += int(size[:good].sum())
        self.epoch_correct += int(correct[:good].sum())
        self.epoch_seen += int(size[:good].sum())
        self.epoch_losses.extend(loss[:good].tolist())
        self.window_losses.extend(loss[:good].tolist())
        if good:
            yield Steps(
                epoch=epoch,
                step=steps[:good],
                loss=loss[:good].astype(np.float32),
                accuracy=(correct[:good] / size[:good]).astype(np.float32),
                running_accuracy=self.epoch_correct / max(1, self.epoch_seen),
                examples_seen=self.seen,
                train_seconds=self.train_seconds,
                examples_per_second=self.seen / max(self.train_seconds, 1e-9),
                total_steps=self.total,
            )
        kept = [(s, p) for s, p in zip(probe_steps, probes, strict=True) if at is None or s < at]
        if kept:
            yield self._gradients(kept)
        if at is not None:
            yield self._diverged(at, "the loss or its gradients became infinite or nan")
            return True
        return False

    def _diverged(self, at: int, what: str) -> Failed:
        self.step_no = at - 1  # the summary counts the good steps only
        return Failed(
            "diverged",
            f"diverged at step {at}: {what}. Lower the learning rate (now {self.cfg.train.lr:g}) and train again.",
            at,
            self.summary(),
        )

    def _gradients(self, kept: list[tuple[int, Probe]]) -> Gradients:
        probes = [p for _, p in kept]
        grad_sq = np.stack([p.grad_sq for p in probes])
        numel = probes[0].numel
        rms = np.sqrt(grad_sq / numel)
        self.grad_rms_sum = rms.sum(axis=0) + (0 if self.grad_rms_sum is None else self.grad_rms_sum)
        self.n_probes += len(probes)
        return Gradients(
            step=np.array([s for s, _ in kept], np.int64),
            layer_names=self.model.layer_names,
            grad_rms=rms,
            grad_norm=np.sqrt(grad_sq),
            signal=np.stack([p.signal for p in probes]),
            update_ratio=np.sqrt(np.stack([p.update_sq / np.maximum(p.weight_sq, 1e-30) for p in probes])),
            dead_fraction=np.stack([p.dead for p in probes]),
            saturated_fraction=np.stack([p.saturated for p in probes]),
        )

    def _evaluate(self, epoch: int, epoch_end: bool):
        """Yield Eval (and snapshot, hard examples); returns False if the weights are no longer finite."""
        t0 = time.perf_counter()
        self.n_evals += 1
        snap = self.n_evals % self.snap_every == 0 or self.step_no == self.total
        res = evaluate(
            self.model, self.ds.x_dev, self.ds.y_dev, self.device, self.snapshot_rows if snap else None
        )
        if not math.isfinite(res.loss):
            yield self._diverged(self.step_no, "the dev loss became nan (the weights are no longer finite)")
            return False
        if self.path == "fast-cpu":
            self.stepper.resync()
        window = self.window_losses
        self.window_losses = []
        self.last_eval = Eval(
            step=self.step_no,
            epoch=epoch,
            epoch_end=epoch_end,
            dev_loss=res.loss,
            dev_accuracy=res.accuracy,
            confusion=res.confusion,
            train_loss=float(np.mean(window)) if window else float("nan"),
            train_accuracy=self.epoch_correct / max(1, self.epoch_seen),
            eval_seconds=time.perf_counter() - t0,
        )
        yield self.last_eval
        if res.hidden is not None:
            yield HiddenSnapshot(self.step_no, epoch, self.snapshot_rows, res.hidden, res.probs)
        k = self.cfg.train.hard_examples
        if k:
            rows, losses, pred = hardest(self.model, self.ds.x_train, self.ds.y_train, self.device, k)
            yield HardExamples(self.step_no, rows, losses, pred)
        return True

    # --- reporting ------------------------------------------------------------------------------
    def _started(self) -> Started:
        from ..nn.model import parameter_summary

        return Started(
            run_id=self.run_id,
            total_steps=self.total,
            steps_per_epoch=self.per_epoch,
            train_examples=int(self.ds.x_train.shape[0]),
            dev_examples=int(self.ds.x_dev.shape[0]),
            vocab_size=int(self.ds.vocab_size),
            classes=list(self.ds.class_names),
            layer_names=self.model.layer_names,
            hidden_sizes=list(self.model.hidden_sizes),
            params_per_layer=[row["params"] for row in parameter_summary(self.model)],
            device=describe_device(self.device),
            path=self.path,
            engine="manual",
            probe_every=self.probe_every,
        )

    def summary(self) -> dict:
        """The figures the CLI prints with --json (the CLI adds the whole run's `seconds`)."""
        return summarize(self, steps=self.step_no, path=self.path, engine="manual")


def summarize(run, *, steps: int, path: str, engine: str) -> dict:
    """The shared summary of a run. `run` is either engine's loop state: both keep ds, last_eval,
    epoch_losses/epoch_correct/epoch_seen, seen, train_seconds, device, grad_rms_sum and n_probes."""
    ev, ds, seconds = run.last_eval, run.ds, run.train_seconds
    grad_rms = run.grad_rms_sum / max(1, run.n_probes) if run.grad_rms_sum is not None else []
    return {
        "train_examples": int(ds.x_train.shape[0]),
        "dev_examples": int(ds.x_dev.shape[0]),
        "vocab_size": int(ds.vocab_size),
        "classes": list(ds.class_names),
        "steps": int(steps),
        "train_loss": float(np.mean(run.epoch_losses)) if len(run.epoch_losses) else float("nan"),
        "train_accuracy": float(run.epoch_correct / max(1, run.epoch_seen)),
        "dev_accuracy": float(ev.dev_accuracy) if ev else float("nan"),
        "dev_loss": float(ev.dev_loss) if ev else float("nan"),
        "train_seconds": float(seconds),
        "examples_per_second": float(run.seen / seconds) if seconds > 0 else 0.0,
        "device": describe_device(run.device),
        "grad_rms": [float(g) for g in grad_rms],
        "path": path,
        "engine": engine,
    }


def _finite_probe(p: Probe) -> bool:
    return bool(
        np.isfinite(p.grad_sq).all() and np.isfinite(p.update_sq).all() and np.isfinite(p.weight_sq).all()
    )


def _as_numpy(values: list) -> np.ndarray:
    """A list of python floats/ints or 0-d tensors (read from the device once per block) -> float64 array."""
    if values and isinstance(values[0], torch.Tensor):
        return torch.stack(values).double().cpu().numpy()
    return np.asarray(values, np.float64)
