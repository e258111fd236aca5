"""Tests for ffnlp_core.inspect.overfitting: the epoch where the dev loss turned, early stopping worked out by
hand, and no verdict while the dev loss still falls."""

import numpy as np

from ffnlp_core.inspect import overfitting as of


def evals(loss, acc=None):
    n = len(loss)
    return {
        "step": np.arange(1, n + 1) * 100,
        "epoch": np.arange(1, n + 1),
        "dev_loss": np.array(loss, float),
        "dev_accuracy": np.array(acc if acc is not None else [0.5] * n, float),
    }


def test_early_stopping_stops_after_patience_evaluations_without_a_better_loss():
    loss = np.array([0.9, 0.7, 0.6, 0.65, 0.62, 0.7, 0.8])
    assert of.early_stop(loss, 2) == (4, 2)  # 0.65 and 0.62 do not beat 0.6: stop at index 4, keep 2
    assert of.early_stop(loss, 4) == (6, 2)
    assert of.early_stop(loss, 5) is None


def test_a_rising_dev_loss_names_the_epoch_and_what_early_stopping_keeps():
    found = of.overfitting(
        evals([0.9, 0.7, 0.6, 0.65, 0.7, 0.8], [0.6, 0.7, 0.75, 0.74, 0.72, 0.70]), patience=2
    )
    assert found["best_epoch"] == 3 and found["stop_index"] == 4
    assert "began to overfit around epoch 3" in found["text"]
    assert "this run's patience of 2 evaluations would have stopped at epoch 5" in found["text"]
    assert "kept the weights of epoch 3 (dev accuracy 0.750 instead of 0.700)" in found["text"]
    suggested = of.overfitting(evals([0.9, 0.7, 0.6, 0.65, 0.7, 0.8]))
    assert suggested["patience"] == of.SUGGESTED_PATIENCE and "a patience of 3" in suggested["text"]


def test_no_verdict_while_the_dev_loss_falls_or_barely_moves():
    assert of.overfitting(evals([0.9, 0.8, 0.7, 0.6, 0.5])) is None
    assert of.overfitting(evals([0.9, 0.8, 0.7, 0.6, 0.601, 0.605])) is None  # under 2 % above the best
    assert of.overfitting(evals([0.9, 0.5, 0.7])) is None  # too few evaluations
