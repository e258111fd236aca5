"""The reporting core both engines share: a `Reporter` turns finished steps and evaluations into events.

    rep = Reporter(cfg, ds, model, run_id=..., device=..., path="autograd", engine="manual", rng=rng)
    yield rep.started(params_per_layer)
    step = rep.begin_step()                      # ... the engine trains one batch ...
    if rep.record(step, loss, correct, size, probe, epoch_end):
        yield from rep.flush(epoch)              # Steps, Gradients (and Failed("diverged") on a bad step)
    rows = rep.snapshot_due()                    # ... the engine evaluates on dev ...
    yield from rep.evaluated(epoch, epoch_end, dev_result, seconds)   # Eval, HiddenSnapshot, HardExamples
    yield rep.finished(stop.is_set())            # or, from an except clause, rep.crashed(exc)

It holds what is reporting, not training: the schedule of evaluations, probes and snapshots, the blocks of
step figures, the divergence check (the first step whose loss, gradients, update or weights are not finite,
or whose loss exploded past EXPLODED times the loss of guessing, ends the run in Failed("diverged") with
the good steps' figures only), errors and out-of-memory as Failed,
and the summary the CLI prints. The engines keep their stepping (the manual loop) or their Trainer hooks
(Lightning), so a reporting fix lands in both at once.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from ..config import RunConfig
from ..data.dataset import Dataset
from ..events import Eval, Failed, Finished, Gradients, HardExamples, HiddenSnapshot, Started, Steps
from ..nn.model import FeedForwardClassifier
from .devices import describe_device
from .evaluate import DevResult, hardest
from .plan import FLUSH_SECONDS, schedule, snapshot_every
from .probes import Probe

BROKE = "the loss, the gradients or the weights became infinite or nan"
DEV_BROKE = "the dev loss became nan (the weights are no longer finite)"
# A batch's mean loss this many times ln(classes) (the loss of guessing uniformly: 69 for two classes)
# only comes from weights that blew up: healthy runs, even overfitting ones, stay far below it.
EXPLODED = 100.0


class Reporter:
    """The events and running figures of one run (rank 0 of a distributed run alone reports)."""

    def __init__(
        self,
        cfg: RunConfig,
        ds: Dataset,
        model: FeedForwardClassifier,
        *,
        run_id: str,
        device: torch.device,
        path: str,
        engine: str,
        rng: np.random.Generator,
        world: int = 1,
    ):
        self.cfg, self.ds, self.model, self.run_id = cfg, ds, model, run_id
        self.device, self.path, self.engine, self.world = device, path, engine, world
        # The snapshot rows are the first draw from the engine's generator, the epochs' permutations come
        # after: with one seed both engines watch the same dev rows and train on the same batches.
        n_dev = ds.x_dev.shape[0]
        k = min(cfg.train.snapshot_rows, n_dev)  # prepare() fitted it already; a direct call stays safe
        self.snapshot_rows = np.sort(rng.choice(n_dev, size=k, replace=False)) if k else None
        n_local = math.ceil(ds.x_train.shape[0] / world)  # each process trains on its share of an epoch
        self.per_epoch, self.total, self.eval_every, self.probe_every = schedule(cfg, n_local)
        self.snap_every = snapshot_every(cfg, self.per_epoch, self.eval_every)
        self.step = 0  # the step being trained (errors name it)
        self.steps_done = 0  # good steps finished (the summary counts them)
        self.n_evals = self.seen = self.epoch_correct = self.epoch_seen = self.n_probes = 0
        self.train_seconds = 0.0
        self.epoch_losses: list[float] = []
        self.window_losses: list[float] = []  # since the previous evaluation
        self.block: list[tuple] = []  # (step, loss, correct, size); loss, correct: floats or 0-d tensors
        self.probes: list[tuple[int, Probe]] = []
        self.grad_rms_sum: np.ndarray | None = None  # (layers,)
        self.last_flush = time.perf_counter()
        self.paced_from: float | None = None  # when the first step of a paced run ended
        self.last_eval: Eval | None = None
        self.failed: Failed | None = None
        self.guess_loss = math.log(max(2, len(ds.class_names)))
        self.loss_limit = EXPLODED * self.guess_loss

    # --- the schedule -----------------------------------------------------------------------------
    def begin_epoch(self) -> None:
        self.epoch_losses, self.epoch_correct, self.epoch_seen = [], 0, 0

    def begin_step(self) -> int:
        """The number of the step about to be trained (from 1)."""
        self.step = self.steps_done + 1
        return self.step

    def probe_due(self, step: int) -> bool:
        return step == 1 or step % self.probe_every == 0

    def eval_due(self, step: int, epoch_end: bool) -> bool:
        return epoch_end or step % self.eval_every == 0

    def snapshot_due(self) -> np.ndarray | None:
        """Count one evaluation; the dev rows whose hidden states it captures (None: not at this one)."""
        self.n_evals += 1
        due = self.n_evals % self.snap_every == 0 or self.steps_done == self.total
        return self.snapshot_rows if due else None

    # --- training steps ---------------------------------------------------------------------------
    def record(self, step: int, loss, correct, size: int, probe: Probe | None, epoch_end: bool) -> bool:
        """Keep one finished step; True when its block is due: the first step, an evaluation next, a
        flush interval gone, or a loss or probe already seen here to be non-finite."""
        self.steps_done = step
        self.block.append((step, loss, correct, size))
        if probe is not None:
            self.probes.append((step, probe))
        # a float loss costs nothing to test now; a tensor is read once per block, in flush()
        broke = (isinstance(loss, float) and not loss <= self.loss_limit) or (
            probe is not None and not finite_probe(probe)
        )
        self._pace(step)
        late = time.perf_counter() - self.last_flush > FLUSH_SECONDS
        return broke or late or step == 1 or self.eval_due(step, epoch_end)

    def _pace(self, step: int) -> None:
        """With TrainConfig.pace_seconds, wait until step/total of that time has passed since the first
        step (outside train_seconds: the speed reported stays the real one)."""
        pace = self.cfg.train.pace_seconds
        if not pace:
            return
        if self.paced_from is None:
            self.paced_from = time.perf_counter()
        wait = self.paced_from + pace * step / self.total - time.perf_counter()
        if wait > 0:
            time.sleep(min(wait, 2.0))

    def flush(self, epoch: int, deferred: list = ()) -> list:
        """The block's Steps and Gradients; on its first non-finite step, the good steps' figures and then
        Failed("diverged"). `deferred`: (step, Probe) pairs an engine kept on the device until now."""
        self.probes.extend(deferred)
        block, probes = self.block, self.probes
        self.block, self.probes, self.last_flush = [], [], time.perf_counter()
        if not block or self.failed:
            return []
        steps = np.array([b[0] for b in block], np.int64)
        loss = _as_numpy([b[1] for b in block])
        bad = [int(s) for s in steps[~np.isfinite(loss)]] + [s for s, p in probes if not finite_probe(p)]
        with np.errstate(invalid="ignore"):
            exploded = [int(s) for s in steps[np.isfinite(loss) & (loss > self.loss_limit)]]
        at = min(bad + exploded) if bad or exploded else None
        good = len(steps) if at is None else int(np.searchsorted(steps, at))
        events = []
        if good:
            correct = _as_numpy([b[2] for b in block[:good]])
            size = np.array([b[3] for b in block[:good]], np.float64)
            events.append(self._steps(epoch, steps[:good], loss[:good], correct, size))
        kept = [(s, p) for s, p in probes if at is None or s < at]
        if kept:
            events.append(self._gradients(kept))
        if at is not None:
            what = BROKE
            if at not in bad:
                value = float(loss[np.searchsorted(steps, at)])
                what = f"the loss exploded to {value:,.4g} (guessing gives {self.guess_loss:.2f})"
            events.append(self.diverged(at, what))
        return events

    def _steps(self, epoch, steps, loss, correct, size) -> Steps:
        """Count the good steps of a block in; all arguments (n,)."""
        self.seen += int(size.sum()) * self.world  # every process trained on as many rows
        self.epoch_correct += int(correct.sum())
        self.epoch_seen += int(size.sum())
        self.epoch_losses.extend(loss.tolist())
        self.window_losses.extend(loss.tolist())
        return Steps(
            epoch=epoch,
            step=steps,
            loss=loss.astype(np.float32),
            accuracy=(correct / size).astype(np.float32),
            running_accuracy=self.epoch_correct / max(1, self.epoch_seen),
            examples_seen=self.seen,
            train_seconds=self.train_seconds,
            examples_per_second=self.seen / max(self.train_seconds, 1e-9),
            total_steps=self.total,
        )

    def _gradients(self, kept: list[tuple[int, Probe]]) -> Gradients:
        probes = [p for _, p in kept]
        grad_sq = np.stack([p.grad_sq for p in probes])  # (n probes, layers)
        rms = np.sqrt(grad_sq / probes[0].numel)
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

    # --- evaluations ------------------------------------------------------------------------------
    def evaluated(self, epoch: int, epoch_end: bool, res: DevResult, seconds: float) -> list:
        """Eval, then HiddenSnapshot (where `res` holds hidden states) and HardExamples (where asked for);
        a nan dev loss fails the run instead."""
        if self.failed:
            return []
        step = self.steps_done
        if not math.isfinite(res.loss):
            return [self.diverged(step, DEV_BROKE)]
        window, self.window_losses = self.window_losses, []
        self.last_eval = Eval(
            step=step,
            epoch=epoch,
            epoch_end=epoch_end,
            dev_loss=res.loss,
            dev_accuracy=res.accuracy,
            confusion=res.confusion,
            train_loss=float(np.mean(window)) if window else float("nan"),
            train_accuracy=self.epoch_correct / max(1, self.epoch_seen),
            eval_seconds=seconds,
        )
        events: list = [self.last_eval]
        if res.hidden is not None:
            events.append(HiddenSnapshot(step, epoch, self.snapshot_rows, res.hidden, res.probs))
        k = self.cfg.train.hard_examples
        if k:
            device = next(self.model.parameters()).device
            rows, losses, pred = hardest(self.model, self.ds.x_train, self.ds.y_train, device, k)
            events.append(HardExamples(step, rows, losses, pred))
        return events

    # --- the start and the end --------------------------------------------------------------------
    def started(self, params_per_layer: list[int]) -> Started:
        ds, model = self.ds, self.model
        return Started(
            run_id=self.run_id,
            total_steps=self.total,
            steps_per_epoch=self.per_epoch,
            train_examples=int(ds.x_train.shape[0]),
            dev_examples=int(ds.x_dev.shape[0]),
            vocab_size=int(ds.vocab_size),
            classes=list(ds.class_names),
            layer_names=model.layer_names,
            hidden_sizes=list(model.hidden_sizes),
            params_per_layer=[int(p) for p in params_per_layer],
            device=describe_device(self.device),
            path=self.path,
            engine=self.engine,
            probe_every=self.probe_every,
        )

    def finished(self, stop_set: bool) -> Finished:
        """`stopped` when the stop flag ended the run before its last step."""
        return Finished(stopped=stop_set and self.steps_done < self.total, summary=self.summary())

    def diverged(self, at: int, what: str) -> Failed:
        self.steps_done = at - 1  # the summary counts the good steps only
        lr = self.cfg.train.lr
        reason = f"diverged at step {at}: {what}. Lower the learning rate (now {lr:g}) and train again."
        self.failed = Failed("diverged", reason, at, self.summary())
        return self.failed

    def crashed(self, exc: BaseException) -> Failed:
        """A crash marks this run failed (the process goes on), with the figures of the steps before it."""
        at = self.step
        if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
            self.failed = Failed(
                "out of memory", f"ran out of memory at step {at}: {exc}", at, self.summary()
            )
        else:
            reason = f"{type(exc).__name__} at step {at}: {exc}"
            self.failed = Failed("error", reason, at, self.summary())
        return self.failed

    def summary(self) -> dict:
        """The figures the CLI prints with --json (the CLI adds the whole run's `seconds`)."""
        ev, ds, seconds = self.last_eval, self.ds, self.train_seconds
        grad_rms = self.grad_rms_sum / max(1, self.n_probes) if self.grad_rms_sum is not None else []
        return {
            "train_examples": int(ds.x_train.shape[0]),
            "dev_examples": int(ds.x_dev.shape[0]),
            "vocab_size": int(ds.vocab_size),
            "classes": list(ds.class_names),
            "steps": int(self.steps_done),
            "train_loss": float(np.mean(self.epoch_losses)) if self.epoch_losses else float("nan"),
            "train_accuracy": float(self.epoch_correct / max(1, self.epoch_seen)),
            "dev_accuracy": float(ev.dev_accuracy) if ev else float("nan"),
            "dev_loss": float(ev.dev_loss) if ev else float("nan"),
            "train_seconds": float(seconds),
            "examples_per_second": float(self.seen / seconds) if seconds > 0 else 0.0,
            "device": describe_device(self.device),
            "grad_rms": [float(g) for g in grad_rms],
            "path": self.path,
            "engine": self.engine,
        }


def finite_probe(p: Probe) -> bool:
    """A probe is good when the gradients, the update and the weights' squared norms are all finite."""
    return bool(
        np.isfinite(p.grad_sq).all() and np.isfinite(p.update_sq).all() and np.isfinite(p.weight_sq).all()
    )


def _as_numpy(values: list) -> np.ndarray:
    """A list of python floats/ints or 0-d tensors (read from the device once per block) -> float64 array."""
    if values and isinstance(values[0], torch.Tensor):
        return torch.stack(values).double().cpu().numpy()
    return np.asarray(values, np.float64)
