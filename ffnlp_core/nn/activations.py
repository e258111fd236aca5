"""The activation registry: one record per activation holds everything every consumer needs.

    ACTIVATIONS["relu"].f(z), .slope(z, h), .max_slope, .module(), .code, .description

The model builds `module()`, the CPU fast path computes `f` and `slope` on NumPy arrays, the gradient
analysis bounds the backprop signal by `max_slope` per layer, the probes count saturated (`saturates`) or
dead (`dead_units`) units, the generated script writes `code`, and the config and the pages list the keys
with their `description`. Adding an activation is one record here (tests walk every consumer for each).
Importing this module is cheap: NumPy only (torch and SciPy are imported where they are used).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

_SQRT2 = np.float32(np.sqrt(2.0))
_INV_SQRT_2PI = np.float32(1.0 / np.sqrt(2.0 * np.pi))


@dataclass(frozen=True)
class Activation:
    """Everything about one activation function h = f(z)."""

    name: str
    description: str
    torch_module: str  # the torch.nn class that applies it, e.g. "ReLU"
    f: Callable[[np.ndarray], np.ndarray]  # h = f(z), elementwise, float32 in and out
    slope: Callable[[np.ndarray, np.ndarray], np.ndarray | None]  # f'(z) from z and h; None: 1 everywhere
    max_slope: float  # sup over z of |f'(z)|: at most this factor per layer reaches the layer below
    saturates: bool = False  # f'(z) -> 0 for large |z|: such activations are counted as saturated
    dead_units: bool = False  # f'(z) = 0 for every z <= 0: a unit at 0 for a whole batch is dead
    code: str = ""  # how the generated training script writes it

    def module(self):
        """A fresh torch module applying this activation."""
        from torch import nn

        return getattr(nn, self.torch_module)()


def _sigmoid(z):
    from scipy.special import expit

    return expit(z)


def _erf(z):
    from scipy.special import erf

    return erf(z)


def _gelu(z):
    return z * (0.5 * (1 + _erf(z / _SQRT2)))


def _gelu_slope(z, h):
    return 0.5 * (1 + _erf(z / _SQRT2)) + z * _INV_SQRT_2PI * np.exp(-0.5 * z * z)


_RECORDS = (
    Activation(
        "none",
        "no activation: stacked layers stay one linear map (the lecture's network)",
        "Identity",
        f=lambda z: z,
        slope=lambda z, h: None,
        max_slope=1.0,
        code="torch.nn.Identity()  # no activation: the stack stays one linear map",
    ),
    Activation(
        "relu",
        "max(0, z)",
        "ReLU",
        f=lambda z: np.maximum(z, 0),
        slope=lambda z, h: (z > 0).astype(np.float32),
        max_slope=1.0,
        dead_units=True,
        code="torch.nn.ReLU()",
    ),
    Activation(
        "tanh",
        "tanh(z), output in (-1, 1)",
        "Tanh",
        f=np.tanh,
        slope=lambda z, h: 1 - h * h,
        max_slope=1.0,
        saturates=True,
        code="torch.nn.Tanh()",
    ),
    Activation(
        "sigmoid",
        "1 / (1 + e^-z), output in (0, 1); its slope is at most 0.25",
        "Sigmoid",
        f=_sigmoid,
        slope=lambda z, h: h * (1 - h),
        max_slope=0.25,
        saturates=True,
        code="torch.nn.Sigmoid()",
    ),
    Activation(
        "gelu",
        "z * Phi(z), a smooth ReLU",
        "GELU",
        f=_gelu,
        slope=_gelu_slope,
        max_slope=1.129,  # at z = 1.41 (tests check it against the slope function)
        code="torch.nn.GELU()",
    ),
)
ACTIVATIONS: dict[str, Activation] = {a.name: a for a in _RECORDS}
