"""The Gradients page's Plotly figures: per-layer lines over steps, the layer × step heatmap, mean bars with
ratios, the decay towards the input beside the chain-rule bound, dead/saturated units, and the comparison of
activations. The numbers come from inspect.gradients."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..inspect.gradients import (
    STAT_LABELS,
    _with,
    chain_rule_bound,
    ratios_to,
    reference_index,
    slope_bound,
)
from ..nn.activations import ACTIVATIONS
from .curves import COLORS, LAYOUT, downsample

HEATMAP_COLUMNS = 300  # steps are averaged into at most this many columns


LINE_POINTS = 1000  # per layer line (SVG lines: WebGL redrawn every second blanks the charts)


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
    bound = slope_bound(activation)
    if bound is not None:
        fig.add_trace(
            go.Scatter(
                x=hidden,
                y=chain_rule_bound(len(hidden), bound),
                mode="lines+markers",
                name=f"bound: {bound:g} per {activation} layer",
                line=dict(color=COLORS[1], width=2, dash="dash"),
            )
        )
    return _layout(fig, f"Decay towards the input, relative to {layer_names[ref]}", "", "ratio")


def activation_figure(table: dict, layer_names: list[str], activation: str) -> go.Figure:
    """Dead ReLU units or saturated sigmoid/tanh activations per hidden layer over the steps."""
    act = ACTIVATIONS[activation]
    stat, what = (
        ("dead_fraction", f"dead {activation} units (0 for the whole batch)")
        if act.dead_units
        else ("saturated_fraction", "saturated activations (slope < 5% of its maximum)")
    )
    fig = go.Figure()
    values = np.asarray(table.get(stat, np.zeros((0, 0))))
    hidden = layer_names[:-1]
    applies = (act.dead_units or act.saturates) and values.size and np.isfinite(values).any()
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
    for act in results:
        bound = slope_bound(act)
        if bound is None or ref < 1:
            continue
        fig.add_trace(
            go.Scatter(
                x=layer_names[: ref + 1],
                y=chain_rule_bound(ref + 1, bound),
                mode="lines",
                name=f"{act} bound {bound:g}/layer",
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
