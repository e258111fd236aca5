"""Gradient probes: the per-layer statistics one training step reports (`Probe`), and the dead / saturated
unit counts both training paths compute from the activation slopes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nn.activations import ACTIVATIONS, Activation

SATURATION = 0.05  # an activation counts as saturated where its slope is below 5% of its maximum


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


def slope_stats(act: Activation, slopes: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """Per hidden layer, from the slopes act'(z) (B, width) that backprop computes anyway: the fraction of
    dead units (an activation with dead units, e.g. ReLU: slope 0 for the whole batch) and the fraction of
    saturated activations (one that saturates, e.g. sigmoid, tanh: slope < 5% of its maximum).
    NaN where the notion does not apply."""
    k = len(slopes)
    dead = np.full(k, np.nan)
    saturated = np.full(k, np.nan)
    for i, s in enumerate(slopes):
        if act.dead_units:
            dead[i] = float(np.count_nonzero(s.max(axis=0) == 0)) / s.shape[1]
        if act.saturates:
            saturated[i] = float(np.count_nonzero(s < SATURATION * act.max_slope)) / s.size
    return dead, saturated


def activation_stats(name: str, zs: list[np.ndarray], hs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """slope_stats from the pre-activations zs and activations hs of each hidden layer (the autograd path)."""
    act = ACTIVATIONS[name]
    if not (act.dead_units or act.saturates):
        return np.full(len(zs), np.nan), np.full(len(zs), np.nan)
    f32 = [(np.asarray(z, np.float32), np.asarray(h, np.float32)) for z, h in zip(zs, hs, strict=True)]
    return slope_stats(act, [act.slope(z, h) for z, h in f32])
