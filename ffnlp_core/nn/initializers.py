"""The weight-initialization registry: one record per way of drawing a network's starting weights, read by
the config (its choices and descriptions), the model (`apply`), the generated script (`code`) and the pages.

- "default": PyTorch's nn.Linear initialization, uniform in ±1/sqrt(fan_in) (biases too): the "standard"
  initialization Glorot & Bengio (2010) showed makes back-propagated gradients shrink layer by layer;
- "xavier": Glorot & Bengio's normalized initialization, uniform in ±sqrt(6 / (fan_in + fan_out)), biases 0;
- "kaiming": He et al. (2015), normal with std sqrt(2 / fan_in) (made for ReLU), biases 0.

Fans are passed explicitly: the sparse first layer stores its weight as (in, out), the transpose of
nn.Linear's, so torch's own fan inference would swap them. Importing this module does not import torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Initializer:
    name: str
    description: str
    code: str  # how the generated script draws one `layer`'s weight (its bias is set to 0); "" = default


INITIALIZERS: dict[str, Initializer] = {
    "default": Initializer(
        "default",
        "PyTorch's default: uniform ±1/√fan_in (the 'standard' initialization of Glorot & Bengio)",
        "",
    ),
    "xavier": Initializer(
        "xavier",
        "Xavier/Glorot normalized: uniform ±√(6/(fan_in+fan_out)), biases 0",
        "torch.nn.init.xavier_uniform_(layer.weight)",
    ),
    "kaiming": Initializer(
        "kaiming",
        "Kaiming/He: normal with std √(2/fan_in), made for ReLU, biases 0",
        "torch.nn.init.kaiming_normal_(layer.weight, nonlinearity='relu')",
    ),
}
DESCRIPTIONS = {k: v.description for k, v in INITIALIZERS.items()}


def apply(name: str, weight, bias, fan_in: int, fan_out: int) -> None:
    """Draw `weight` and `bias` (torch tensors, in place) the way `name` says (default: leave them)."""
    import torch

    if name not in INITIALIZERS:
        raise ValueError(f"unknown initialization {name!r}; use one of {list(INITIALIZERS)}")
    if name == "default":
        return
    with torch.no_grad():
        if name == "xavier":
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            weight.uniform_(-bound, bound)
        else:
            weight.normal_(0.0, math.sqrt(2.0 / fan_in))
        bias.zero_()
