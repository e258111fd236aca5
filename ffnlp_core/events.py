"""The plain events a training run streams: floats, ints and numpy arrays, never live tensors.

The manual engine, the Lightning engine, the job manager, the pages, the CLI and the tests all speak these.
Step-level figures come in blocks (`Steps`, `Gradients`) so that streaming costs little even at
thousands of steps per second.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Started:
    run_id: str
    total_steps: int
    steps_per_epoch: int
    train_examples: int
    dev_examples: int
    vocab_size: int
    classes: list[str]
    layer_names: list[str]  # linear layers, input to output
    hidden_sizes: list[int]
    params_per_layer: list[int]
    device: str  # e.g. "cpu", "cuda:0 (NVIDIA H100)"
    path: str  # "fast-cpu" (hand-derived backprop) or "autograd"
    engine: str  # "manual" or "lightning"
    probe_every: int


@dataclass(frozen=True)
class Steps:
    """A block of consecutive training steps."""

    epoch: int
    step: np.ndarray  # (n,) int64, global step numbers starting at 1
    loss: np.ndarray  # (n,) float32, mean train loss of each batch
    accuracy: np.ndarray  # (n,) float32, accuracy of each batch
    running_accuracy: float  # train accuracy over this epoch so far
    examples_seen: int
    train_seconds: float  # time spent in training steps so far (no loading, vectorizing or evaluation)
    examples_per_second: float  # examples_seen / train_seconds
    total_steps: int


@dataclass(frozen=True)
class Gradients:
    """Per-layer gradient statistics at probed steps; arrays are (n probes, n layers), layers input to output."""

    step: np.ndarray  # (n,)
    layer_names: list[str]
    grad_rms: np.ndarray  # root-mean-square of the weight gradient, per parameter
    grad_norm: np.ndarray  # Frobenius norm of the weight gradient
    signal: np.ndarray  # mean over examples of ||dL_i/dz|| at the layer's pre-activation z
    update_ratio: np.ndarray  # ||delta W|| / ||W|| of the optimizer step
    dead_fraction: np.ndarray  # (n, hidden layers): units that output 0 for the whole batch (ReLU)
    saturated_fraction: np.ndarray  # (n, hidden layers): activations whose slope < 5% of its maximum


@dataclass(frozen=True)
class Eval:
    step: int
    epoch: int
    epoch_end: bool
    dev_loss: float
    dev_accuracy: float
    confusion: np.ndarray  # (C, C) counts, rows = gold class, columns = predicted class
    train_loss: float  # mean train loss since the previous evaluation
    train_accuracy: float  # running train accuracy of the current epoch
    eval_seconds: float


@dataclass(frozen=True)
class HiddenSnapshot:
    """Hidden states h0..h{k-1} of a fixed dev sample, captured at an evaluation."""

    step: int
    epoch: int
    dev_rows: np.ndarray  # (n,) positions in the dev split (Dataset.dev_text(i) gives the comment)
    hidden: list[np.ndarray] = field(repr=False)  # each (n, width) float16
    probs: np.ndarray = field(repr=False)  # (n, C) float32 predicted probabilities


@dataclass(frozen=True)
class HardExamples:
    """The training comments with the highest loss at an evaluation (where mislabeled rows gather)."""

    step: int
    train_rows: np.ndarray  # (k,) positions in the train split (Dataset.train_text(i) gives the comment)
    losses: np.ndarray  # (k,) each comment's own cross-entropy, highest first
    predicted: np.ndarray  # (k,) predicted class ids


@dataclass(frozen=True)
class Finished:
    stopped: bool  # True when the stop flag ended the run early
    summary: dict  # the CLI's JSON fields (see report.Reporter.summary)


@dataclass(frozen=True)
class Failed:
    kind: str  # "diverged", "error", "out of memory"
    reason: str  # a sentence for the user, e.g. "diverged at step 12: the loss became nan"
    step: int
    summary: dict  # the last good figures


Event = Started | Steps | Gradients | Eval | HiddenSnapshot | HardExamples | Finished | Failed


def end_status(final: Finished | Failed) -> str:
    """The status a run's last event means, as every consumer names it: finished, stopped, diverged
    (the engine's divergence check ended it) or failed (an error, out of memory)."""
    if isinstance(final, Failed):
        return "diverged" if final.kind == "diverged" else "failed"
    return "stopped" if final.stopped else "finished"
