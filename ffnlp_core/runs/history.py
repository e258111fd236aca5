"""A run's history: the event stream folded into growing arrays, bounded in memory.

The job manager keeps one per run (behind a lock), the store saves and loads it, the CLI and the lessons
build it from the same events. Step curves are kept whole (3 numbers a step); gradient probes and hidden
snapshots are thinned when they pass their caps, always keeping the newest.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np

from ..events import Eval, Failed, Finished, Gradients, HardExamples, HiddenSnapshot, Started, Steps

MAX_GRAD_RECORDS = 4000
MAX_SNAPSHOTS = 24
GRAD_FIELDS = ("grad_rms", "grad_norm", "signal", "update_ratio", "dead_fraction", "saturated_fraction")
EVAL_FIELDS = ("step", "epoch", "dev_loss", "dev_accuracy", "train_loss", "train_accuracy")


class _Growing:
    """An append-only numpy array with amortized doubling (no quadratic copying)."""

    def __init__(self, dtype, width: int | None = None):
        shape = (64,) if width is None else (64, width)
        self.data = np.zeros(shape, dtype)
        self.n = 0

    def extend(self, values: np.ndarray) -> None:
        k = len(values)
        if self.n + k > len(self.data):
            bigger = np.zeros((max(2 * len(self.data), self.n + k), *self.data.shape[1:]), self.data.dtype)
            bigger[: self.n] = self.data[: self.n]
            self.data = bigger
        self.data[self.n : self.n + k] = values
        self.n += k

    def view(self) -> np.ndarray:
        return self.data[: self.n]

    def keep(self, index: np.ndarray) -> None:
        kept = self.data[: self.n][index]
        self.n = len(kept)
        self.data[: self.n] = kept


class RunHistory:
    """Everything a run has reported so far."""

    def __init__(self):
        self.started: Started | None = None
        self.step = _Growing(np.int64)
        self.loss = _Growing(np.float32)
        self.accuracy = _Growing(np.float32)
        self.epoch = 0
        self.examples_seen = 0
        self.train_seconds = 0.0
        self.examples_per_second = 0.0
        self.running_accuracy = math.nan
        self.evals: list[dict] = []
        self.confusion: np.ndarray | None = None
        self.grad_step = _Growing(np.int64)
        self.grads: dict[str, _Growing] = {}
        self.snapshots: list[HiddenSnapshot] = []
        self.hard: HardExamples | None = None  # the latest
        self.summary: dict | None = None
        self.failure: Failed | None = None
        self.stopped = False

    # --- folding events -------------------------------------------------------------------------
    def add(self, event) -> None:
        if isinstance(event, Started):
            self.started = event
        elif isinstance(event, Steps):
            self.step.extend(event.step)
            self.loss.extend(event.loss)
            self.accuracy.extend(event.accuracy)
            self.epoch = event.epoch
            self.examples_seen = event.examples_seen
            self.train_seconds = event.train_seconds
            self.examples_per_second = event.examples_per_second
            self.running_accuracy = event.running_accuracy
        elif isinstance(event, Gradients):
            self._add_gradients(event)
        elif isinstance(event, Eval):
            self.evals.append({k: getattr(event, k) for k in EVAL_FIELDS})
            self.confusion = event.confusion
        elif isinstance(event, HiddenSnapshot):
            self.snapshots.append(event)
            if len(self.snapshots) > MAX_SNAPSHOTS:  # drop every other older one, keep the newest
                old, newest = self.snapshots[:-1], self.snapshots[-1]
                self.snapshots = old[::2] + [newest]
        elif isinstance(event, HardExamples):
            self.hard = event
        elif isinstance(event, Finished):
            self.summary, self.stopped = event.summary, event.stopped
        elif isinstance(event, Failed):
            self.failure, self.summary = event, event.summary

    def _add_gradients(self, g: Gradients) -> None:
        if not self.grads:
            self.grads = {f: _Growing(np.float32, getattr(g, f).shape[1]) for f in GRAD_FIELDS}
        self.grad_step.extend(g.step)
        for f in GRAD_FIELDS:
            self.grads[f].extend(getattr(g, f))
        while self.grad_step.n > MAX_GRAD_RECORDS:  # thin the older half, keep the newest records whole
            n = self.grad_step.n
            index = np.concatenate([np.arange(0, n // 2, 2), np.arange(n // 2, n)])
            self.grad_step.keep(index)
            for arr in self.grads.values():
                arr.keep(index)

    # --- reading --------------------------------------------------------------------------------
    @property
    def steps_done(self) -> int:
        return int(self.step.view()[-1]) if self.step.n else 0

    @property
    def total_steps(self) -> int:
        return self.started.total_steps if self.started else 0

    @property
    def layer_names(self) -> list[str]:
        return self.started.layer_names if self.started else []

    def curves(self) -> dict[str, np.ndarray]:
        """Copies of the step curves (safe to use outside the lock)."""
        return {
            "step": self.step.view().copy(),
            "loss": self.loss.view().copy(),
            "accuracy": self.accuracy.view().copy(),
        }

    def eval_table(self) -> dict[str, np.ndarray]:
        return {k: np.array([e[k] for e in self.evals], np.float64) for k in EVAL_FIELDS}

    def gradient_table(self) -> dict[str, np.ndarray]:
        out = {"step": self.grad_step.view().copy()}
        out.update({f: a.view().copy() for f, a in self.grads.items()})
        return out

    def last_eval(self) -> dict | None:
        return self.evals[-1] if self.evals else None

    def nbytes(self) -> int:
        """Bytes held by the arrays (the hidden snapshots dominate for wide networks)."""
        grown = [self.step, self.loss, self.accuracy, self.grad_step, *self.grads.values()]
        total = sum(g.data.nbytes for g in grown)
        for snap in self.snapshots:
            total += snap.dev_rows.nbytes + snap.probs.nbytes + sum(h.nbytes for h in snap.hidden)
        return total + (self.confusion.nbytes if self.confusion is not None else 0)

    # --- saving ---------------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat arrays for np.savez (no pickling needed to read them back)."""
        arrays = {f"curve_{k}": v for k, v in self.curves().items()}
        arrays.update({f"eval_{k}": v for k, v in self.eval_table().items()})
        arrays.update({f"grad_{k}": v for k, v in self.gradient_table().items()})
        if self.confusion is not None:
            arrays["confusion"] = self.confusion
        if self.snapshots:  # the newest snapshot only: enough to show the representations after a restart
            snap = self.snapshots[-1]
            arrays["snap_meta"] = np.array([snap.step, snap.epoch], np.int64)
            arrays["snap_rows"] = snap.dev_rows
            arrays["snap_probs"] = snap.probs
            for i, h in enumerate(snap.hidden):
                arrays[f"snap_h{i}"] = h
        return arrays

    def meta(self) -> dict:
        """JSON-able facts about the run (the store writes them beside the arrays)."""
        return {
            "started": asdict(self.started) if self.started else None,
            "epoch": self.epoch,
            "examples_seen": self.examples_seen,
            "train_seconds": self.train_seconds,
            "examples_per_second": self.examples_per_second,
            "running_accuracy": None if math.isnan(self.running_accuracy) else self.running_accuracy,
            "summary": self.summary,
            "failure": asdict(self.failure) if self.failure else None,
            "stopped": self.stopped,
        }

    @classmethod
    def from_saved(cls, meta: dict, arrays: dict[str, np.ndarray]) -> RunHistory:
        h = cls()
        if meta.get("started"):
            h.started = Started(**meta["started"])
        h.epoch, h.examples_seen = meta.get("epoch", 0), meta.get("examples_seen", 0)
        h.train_seconds, h.examples_per_second = (
            meta.get("train_seconds", 0.0),
            meta.get("examples_per_second", 0.0),
        )
        ra = meta.get("running_accuracy")
        h.running_accuracy = math.nan if ra is None else ra
        h.summary, h.stopped = meta.get("summary"), meta.get("stopped", False)
        if meta.get("failure"):
            f = meta["failure"]
            h.failure = Failed(f["kind"], f["reason"], f["step"], f.get("summary") or {})
        for name, grow in (("step", h.step), ("loss", h.loss), ("accuracy", h.accuracy)):
            if f"curve_{name}" in arrays:
                grow.extend(arrays[f"curve_{name}"])
        if "eval_step" in arrays:
            n = len(arrays["eval_step"])
            h.evals = [{k: float(arrays[f"eval_{k}"][i]) for k in EVAL_FIELDS} for i in range(n)]
            for e in h.evals:
                e["step"], e["epoch"] = int(e["step"]), int(e["epoch"])
        h.confusion = arrays.get("confusion")
        if "grad_step" in arrays and len(arrays["grad_step"]):
            h.grad_step.extend(arrays["grad_step"])
            h.grads = {}
            for f in GRAD_FIELDS:
                a = arrays[f"grad_{f}"]
                h.grads[f] = _Growing(np.float32, a.shape[1])
                h.grads[f].extend(a)
        if "snap_meta" in arrays:
            hidden = [arrays[f"snap_h{i}"] for i in range(sum(k.startswith("snap_h") for k in arrays))]
            step, epoch = (int(v) for v in arrays["snap_meta"])
            h.snapshots = [HiddenSnapshot(step, epoch, arrays["snap_rows"], hidden, arrays["snap_probs"])]
        return h
