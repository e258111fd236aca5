"""Gradient probes: the per-layer statistics one training step reports (`Probe`), and the dead / saturated
unit counts both training paths compute from the activation slopes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernels

SATURATION = 0.05  # an activation counts as saturated where its slope is below 5% of its maximum


MAX_SLOPE = {"sigmoid": 0.25, "tanh": 1.0}


@dataclass
class Probe:
    """Gradient statistics of one step, per linear layer (input to output)."""

    grad_sq: np.ndarray  # sum of squared weight gradients
    numel: np.ndarray  # weights per layer
    signal: np.ndarray  # mean over examples of ||dL_i/dz||
    update_sq: np.ndarray  # sum of squared weight updates
    weight_sq: np.ndarray  # sum of squared weights after the step
    dead: np.ndarray  # per hidden layer (NaN where it does not apply)
    saturated: np.ndarray  # per hidden layer (NaN where it does not apply)


def slope_stats(act: str, slopes: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """activation_stats from the slopes act'(z) that backprop computed anyway (cheap on every step):
    a ReLU unit is dead where its slope is 0 for the whole batch."""
    k = len(slopes)
    dead = np.full(k, np.nan)
    saturated = np.full(k, np.nan)
    for i, s in enumerate(slopes):
        if act == "relu":
            dead[i] = float(np.count_nonzero(s.max(axis=0) == 0)) / s.shape[1]
        elif act in MAX_SLOPE:
            saturated[i] = float(np.count_nonzero(s < SATURATION * MAX_SLOPE[act])) / s.size
    return dead, saturated


def activation_stats(act: str, zs: list[np.ndarray], hs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per hidden layer: fraction of dead ReLU units (0 for every example of the batch) and fraction of
    saturated sigmoid/tanh activations (slope < 5% of the maximum). NaN where the notion does not apply."""
    k = len(zs)
    dead = np.full(k, np.nan)
    saturated = np.full(k, np.nan)
    if act not in ("relu", *MAX_SLOPE):
        return dead, saturated
    for i, (z, h) in enumerate(zip(zs, hs, strict=True)):
        if act == "relu":
            dead[i] = kernels.dead_fraction(np.ascontiguousarray(z, np.float32))
        if act in MAX_SLOPE:
            h32 = np.ascontiguousarray(h, np.float32)
            saturated[i] = kernels.small_slope_fraction(h32, act == "sigmoid", SATURATION * MAX_SLOPE[act])
    return dead, saturated
