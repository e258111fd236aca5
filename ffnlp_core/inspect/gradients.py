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
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..config import RunConfig
from ..plots.curves import COLORS, LAYOUT, downsample

STAT_LABELS = {
    "grad_rms": "weight gradient, RMS per weight",
    "grad_norm": "weight gradient, Frobenius norm",
    "signal": "backprop signal ‖∂L/∂z‖ per example",
    "update_ratio": "update / weight ‖ΔW‖ / ‖W‖",
}
SIGMOID_MAX_SLOPE = 0.25  # sigma'(z) = sigma(z)(1 - sigma(z)) <= 1/4
COMPARE_ACTIVATIONS = ("none", "sigmoid", "tanh", "relu")
HEATMAP_COLUMNS = 300  # steps are averaged into at most this many columns
LINE_POINTS = 1000  # per layer line (SVG lines: WebGL redrawn every second blanks the charts)


# --- numbers ------------------------------------------------------------------------------------
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


def chain_rule_bound(n_hidden: int, max_slope: float = SIGMOID_MAX_SLOPE) -> np.ndarray:
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
    return "with no activation" if activation == "none" else f"with {activation}"


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
    base: RunConfig, depth: int = 6, activations=COMPARE_ACTIVATIONS, epochs: int = 1
) -> dict[str, RunConfig]:
    """Same data, same depth and width, one short run per activation (no snapshots or hard examples)."""
    width = base.model.hidden_sizes[0] if base.model.hidden_sizes else 100
    out = {}
    for act in activations:
        cfg = copy.deepcopy(base)
        cfg.model.hidden_sizes = [width] * depth
        cfg.model.activation = act
        cfg.train.epochs = epochs
        cfg.train.snapshot_rows = 0
        cfg.train.hard_examples = 0
        cfg.train.skip_zero_grad = False
        out[act] = cfg.validate()
    return out


# --- figures ------------------------------------------------------------------------------------
def _positive(values: np.ndarray) -> np.ndarray:
    """A log axis cannot show 0 or negative numbers: those become gaps."""
    values = np.asarray(values, np.float64)
    return np.where(values > 0, values, np.nan)


def _layout(fig: go.Figure, title: str, xaxis: str, yaxis: str, log: bool = True, **extra) -> go.Figure:
    fig.update_layout(title=title, xaxis_title=xaxis, yaxis_title=yaxis, **{**LAYOUT, **extra})
    if log:
        fig.update_yaxes(type="log", exponentformat="power")
    return fig


def lines_figure(table: dict, layer_names: list[str], stat: str, title: str | None = None) -> go.Figure:
    """One line per layer over the probed steps, log axis."""
    fig = go.Figure()
    step = table["step"]
    values = np.asarray(table[stat])
    for i, name in enumerate(layer_names):
        s, v = downsample(step, _positive(values[:, i]), max_points=LINE_POINTS)
        fig.add_trace(
            go.Scatter(x=s, y=v, mode="lines", name=name, line=dict(color=COLORS[i % len(COLORS)], width=1.5))
        )
    return _layout(fig, title or STAT_LABELS[stat], "step", stat.replace("_", " "))


def heatmap_figure(table: dict, layer_names: list[str], stat: str) -> go.Figure:
    """Layers (layer_0 at the bottom) × steps, colour = log10 of the statistic, steps averaged into columns."""
    step = np.asarray(table["step"])
    logv = np.log10(_positive(table[stat]))  # (n, layers)
    chunks = np.array_split(np.arange(len(step)), min(len(step), HEATMAP_COLUMNS)) if len(step) else []
    cols = [c for c in chunks if len(c)]
    with np.errstate(all="ignore"):
        z = (
            np.array([np.nanmean(logv[c], axis=0) for c in cols]).T
            if cols
            else np.zeros((len(layer_names), 0))
        )
    x = [int(step[c[-1]]) for c in cols]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=x,
            y=layer_names,
            colorscale="Viridis",
            colorbar=dict(title="log10"),
            hovertemplate="%{y}<br>step %{x}<br>log10 = %{z:.2f}<extra></extra>",
        )
    )
    return _layout(fig, f"{STAT_LABELS[stat]}: layer × step", "step", "", log=False)


def mean_bars_figure(means: np.ndarray, layer_names: list[str], stat: str) -> go.Figure:
    """Mean per layer (log axis); each bar carries its ratio to the last hidden layer."""
    ref = reference_index(layer_names)
    r = ratios_to(means, ref)
    text = ["reference" if i == ref else (f"×{v:.3g}" if math.isfinite(v) else "") for i, v in enumerate(r)]
    fig = go.Figure(
        go.Bar(
            x=layer_names,
            y=_positive(means),
            text=text,
            textposition="outside",
            cliponaxis=False,
            marker_color=[COLORS[1] if i == ref else COLORS[0] for i in range(len(layer_names))],
            hovertemplate="%{x}<br>mean %{y:.3g}<br>%{text}<extra></extra>",
        )
    )
    return _layout(fig, f"Mean per layer, × = ratio to {layer_names[ref]}", "", STAT_LABELS[stat])


def decay_figure(
    signal: np.ndarray, weight: np.ndarray, layer_names: list[str], activation: str, stat: str
) -> go.Figure:
    """Measured ratio to the last hidden layer per hidden layer, beside the sigmoid chain-rule bound."""
    ref = reference_index(layer_names)
    hidden = layer_names[: ref + 1]
    fig = go.Figure()
    for values, name, color in ((signal, "backprop signal ‖∂L/∂z‖", 0), (weight, STAT_LABELS[stat], 2)):
        fig.add_trace(
            go.Scatter(
                x=hidden,
                y=_positive(ratios_to(values, ref)[: ref + 1]),
                mode="lines+markers",
                name=f"measured: {name}",
                line=dict(color=COLORS[color], width=2),
            )
        )
    if activation == "sigmoid":
        fig.add_trace(
            go.Scatter(
                x=hidden,
                y=chain_rule_bound(len(hidden)),
                mode="lines+markers",
                name="bound: 0.25 per sigmoid layer",
                line=dict(color=COLORS[1], width=2, dash="dash"),
            )
        )
    return _layout(fig, f"Decay towards the input, relative to {layer_names[ref]}", "", "ratio")


def activation_figure(table: dict, layer_names: list[str], activation: str) -> go.Figure:
    """Dead ReLU units or saturated sigmoid/tanh activations per hidden layer over the steps."""
    stat, what = (
        ("dead_fraction", "dead ReLU units (0 for the whole batch)")
        if activation == "relu"
        else ("saturated_fraction", "saturated activations (slope < 5% of its maximum)")
    )
    fig = go.Figure()
    values = np.asarray(table.get(stat, np.zeros((0, 0))))
    hidden = layer_names[:-1]
    applies = activation in ("relu", "sigmoid", "tanh") and values.size and np.isfinite(values).any()
    if applies:
        for i, name in enumerate(hidden):
            s, v = downsample(table["step"], values[:, i], max_points=LINE_POINTS)
            fig.add_trace(go.Scatter(x=s, y=v, mode="lines", name=name, line=dict(color=COLORS[i % 9])))
    else:  # a short note instead of an empty plot
        fig.add_annotation(
            text=f"dead and saturated units are not defined {_with(activation)}",
            showarrow=False,
            x=0.5,
            y=0.5,
            xref="paper",
            yref="paper",
        )
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return _layout(fig, "Dead or saturated units", "", "", log=False, height=140)
    return _layout(fig, f"Fraction of {what}", "step", "fraction", log=False, yaxis_range=[0, 1.02])


def comparison_figure(results: dict[str, np.ndarray], layer_names: list[str], stat: str) -> go.Figure:
    """Overlaid per activation: each layer's mean relative to the last hidden layer (log axis)."""
    ref = reference_index(layer_names)
    fig = go.Figure()
    for i, (act, means) in enumerate(results.items()):
        fig.add_trace(
            go.Scatter(
                x=layer_names,
                y=_positive(ratios_to(means, ref)),
                mode="lines+markers",
                name=act,
                line=dict(color=COLORS[i % len(COLORS)], width=2),
            )
        )
    if "sigmoid" in results and ref >= 1:
        fig.add_trace(
            go.Scatter(
                x=layer_names[: ref + 1],
                y=chain_rule_bound(ref + 1),
                mode="lines",
                name="sigmoid bound 0.25/layer",
                line=dict(color="#64748b", width=1.5, dash="dash"),
            )
        )
    return _layout(fig, f"{STAT_LABELS[stat]}, relative to {layer_names[ref]}", "", "ratio")


def small_multiples_figure(tables: dict[str, dict], layer_names: list[str], stat: str) -> go.Figure:
    """One panel per activation, one line per layer over steps, shared log axis."""
    acts = list(tables)
    fig = make_subplots(rows=1, cols=max(1, len(acts)), shared_yaxes=True, subplot_titles=acts)
    for col, act in enumerate(acts, start=1):
        table = tables[act]
        values = np.asarray(table[stat])
        for i, name in enumerate(layer_names):
            s, v = downsample(table["step"], _positive(values[:, i]), max_points=500)
            fig.add_trace(
                go.Scatter(
                    x=s,
                    y=v,
                    mode="lines",
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    line=dict(color=COLORS[i % len(COLORS)], width=1.2),
                ),
                row=1,
                col=col,
            )
    fig.update_yaxes(type="log", exponentformat="power")
    margin = {**LAYOUT["margin"], "t": 70}
    fig.update_layout(
        title=f"{STAT_LABELS[stat]} per layer over steps", **{**LAYOUT, "height": 360, "margin": margin}
    )
    return fig
