"""Gradient flow: how strongly each layer learns, read from a run's gradient probes.

Analysis (means per layer, ratios to the last hidden layer, the sigmoid chain-rule bound, verdict sentences
computed from those numbers) and the Plotly figures of the Gradients page. The input is
`RunHistory.gradient_table()`: "step" (n,) and per-layer arrays (n probes, n layers), input to output,
the same for both engines. No Streamlit, no torch.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from ..config import RunConfig
from ..nn.activations import ACTIVATIONS

STAT_LABELS = {
    "grad_rms": "weight gradient, RMS per weight",
    "grad_norm": "weight gradient, Frobenius norm",
    "signal": "backprop signal ‖∂L/∂z‖ per example",
    "update_ratio": "update / weight ‖ΔW‖ / ‖W‖",
}
COMPARE_ACTIVATIONS = ("none", "sigmoid", "tanh", "relu")


# --- numbers ------------------------------------------------------------------------------------
def slope_bound(activation: str) -> float | None:
    """The activation's maximum slope where it bounds the backprop signal below 1 per layer (sigmoid: 0.25),
    else None (ReLU, tanh, no activation: the slopes alone do not shrink it)."""
    m = ACTIVATIONS[activation].max_slope
    return m if m < 1 else None


def reference_index(layer_names: list[str]) -> int:
    """Index of the last hidden layer (the output layer when there is no hidden layer)."""
    return max(0, len(layer_names) - 2)


def layer_means(table: dict, stat: str) -> np.ndarray:
    """(n layers,) mean over the probes of one statistic; NaN where nothing was measured."""
    values = np.asarray(table.get(stat, np.zeros((0, 0))), np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        return np.full(values.shape[1] if values.ndim == 2 else 0, np.nan)
    finite = np.isfinite(values)
    counts = finite.sum(axis=0)
    sums = np.where(finite, values, 0.0).sum(axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def ratios_to(values: np.ndarray, ref: int) -> np.ndarray:
    """values / values[ref]; NaN when the reference is 0 or not finite."""
    values = np.asarray(values, np.float64)
    base = values[ref] if len(values) else np.nan
    if not np.isfinite(base) or base == 0:
        return np.full(len(values), np.nan)
    return values / base


def chain_rule_bound(n_hidden: int, max_slope: float) -> np.ndarray:
    """(n_hidden,) the most the activation slopes alone let through from the last hidden layer's
    pre-activation down to each hidden layer's: each layer passed on the way multiplies by at most
    max_slope, so layer_i gets at most max_slope ** (n_hidden - 1 - i) (the weights can scale it further)."""
    return max_slope ** np.arange(n_hidden - 1, -1, -1, dtype=np.float64)


def fmt_ratio(r: float) -> str:
    """0.0833 -> '1/12', 0.7 -> '1/1.4', 2.31 -> '2.3×', 49.3 -> '49×'."""
    if not math.isfinite(r) or r <= 0:
        return "no measurable share"
    if r >= 1:
        return f"{r:.2g}×" if r < 10 else f"{r:,.0f}×"
    d = 1 / r
    return f"1/{d:,.0f}" if d >= 10 else f"1/{d:.1f}"


def _share(r: float, ref_name: str) -> str:
    if math.isfinite(r) and r >= 1:
        return f"{fmt_ratio(r)} the gradient of {ref_name}"
    return f"{fmt_ratio(r)} of the gradient of {ref_name}"


def _with(activation: str) -> str:
    """'with relu', 'with no activation', 'with relu · xavier' (a comparison's run names)."""
    return "with no activation" + activation[4:] if activation.startswith("none") else f"with {activation}"


def verdict(activation: str, layer_names: list[str], means: np.ndarray, stat: str, n_probes: int) -> str:
    """One sentence from the numbers: how much of the last hidden layer's gradient layer_0 gets."""
    ref = reference_index(layer_names)
    if ref < 1:
        n_hidden = max(0, len(layer_names) - 1)
        return (
            f"With {n_hidden} hidden layer{'' if n_hidden == 1 else 's'} there is no deeper layer to "
            "compare with the last hidden one; add layers on the Model page."
        )
    r = float(ratios_to(means, ref)[0])
    return (
        f"{_with(activation).capitalize()}, layer_0 gets {_share(r, layer_names[ref])} "
        f"({STAT_LABELS[stat]}, mean over {n_probes:,} probes)."
    )


def dead_share(table: dict, activation: str) -> float | None:
    """The mean share of dead hidden units over the probes (activations that can die only), else None."""
    if not ACTIVATIONS[activation].dead_units:
        return None
    dead = layer_means(table, "dead_fraction")[:-1]  # the output layer has no activation
    return float(np.nanmean(dead)) if len(dead) and np.any(np.isfinite(dead)) else None


def explanation(activation: str, init: str = "default", dead_share: float | None = None) -> str:
    """Why the gradient fades (or not) toward the input with this activation, in words: saturating
    activations multiply the backprop signal by at most their maximum slope per layer; ReLU does not
    saturate, so the initialization and the weights decide, and dead units pass nothing; without an
    activation only the weights scale it."""
    a = ACTIVATIONS[activation]
    init_words = {
        "default": "PyTorch's default initialization (±1/√fan_in), which Glorot & Bengio showed shrinks it "
        "layer by layer",
        "xavier": "the Xavier/Glorot initialization, chosen to keep it level",
        "kaiming": "the Kaiming/He initialization, chosen to keep it level through ReLUs",
    }.get(init, f"the {init} initialization")
    if activation == "none":
        return (
            "Without an activation every layer is linear: only the weights scale the backprop signal, here "
            f"drawn with {init_words}; the stacked layers are still one linear map."
        )
    if a.saturates:
        return (
            f"Each {activation} layer multiplies the backprop signal by its slope, at most {a.max_slope:g} "
            "(less where units saturate), so the layers far from the output get less and less; the weights, "
            f"here drawn with {init_words}, scale it further."
        )
    dead = (
        f" {dead_share:.0%} of the units are dead here (never active on a batch) and pass nothing back."
        if dead_share is not None and math.isfinite(dead_share)
        else " Dead units (never active) pass nothing back."
    )
    return (
        f"{activation} does not saturate: its slope is 1 wherever a unit is active, so the backprop signal can "
        f"stay level or even grow toward the input, depending on the weights, here drawn with {init_words}."
        + dead
    )


def comparison_verdict(
    results: dict[str, np.ndarray], layer_names: list[str], stat: str, lead: str = "In these runs"
) -> str:
    """One sentence over several runs: layer_0's share of the last hidden layer's gradient per activation,
    and where it fades most and least. results: activation -> per-layer means."""
    ref = reference_index(layer_names)
    if ref < 1 or not results:
        return "Nothing to compare yet: the runs need at least two hidden layers and some probes."
    share = {a: float(ratios_to(m, ref)[0]) for a, m in results.items()}
    known = {a: r for a, r in share.items() if math.isfinite(r) and r > 0}
    parts = [f"{fmt_ratio(r)} {_with(a)}" for a, r in share.items()]
    listing = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    sentence = (
        f"{lead}, layer_0's gradient is {listing}, relative to {layer_names[ref]}'s ({STAT_LABELS[stat]})"
    )
    if len(known) >= 2:
        low, high = min(known, key=known.get), max(known, key=known.get)
        factor = known[high] / known[low]
        sentence += (
            f": it fades most {_with(low)} and least {_with(high)}, {fmt_ratio(factor)} apart"
            if factor >= 1.05
            else ": about the same for every activation"
        )
    return sentence + "."


def compare_configs(
    base: RunConfig, depth: int = 6, activations=COMPARE_ACTIVATIONS, epochs: int = 1, inits=("default",)
) -> dict[str, RunConfig]:
    """Same data, same depth and width, one short run per activation and initialization (no snapshots or
    hard examples), named by the activation ("relu"), or "relu · xavier" when several initializations."""
    width = base.model.hidden_sizes[0] if base.model.hidden_sizes else 100
    out = {}
    for act in activations:
        for init in inits:
            cfg = copy.deepcopy(base)
            cfg.model.hidden_sizes = [width] * depth
            cfg.model.activation, cfg.model.init = act, init
            cfg.train.epochs = epochs
            cfg.train.snapshot_rows = 0
            cfg.train.hard_examples = 0
            cfg.train.skip_zero_grad = False
            out[act if len(inits) == 1 else f"{act} · {init}"] = cfg.validate()
    return out
