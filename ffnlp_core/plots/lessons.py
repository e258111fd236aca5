"""Figures of the lessons' measurements (Plotly, no Streamlit): several runs' curves on shared axes for the
zero_grad lesson, and the per-device bars of the GPU lesson. The numbers come from inspect/lessons.py."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..inspect.lessons import total_grad_norm
from . import curves as plots


def overlay_figures(views: dict[str, dict]) -> tuple[go.Figure, go.Figure, go.Figure]:
    """Several runs on shared axes: train loss (smoothed) and dev loss, dev accuracy, total gradient norm."""
    loss, acc, grad = go.Figure(), go.Figure(), go.Figure()
    for i, (name, v) in enumerate(views.items()):
        color = plots.COLORS[i % len(plots.COLORS)]
        c, e = v["curves"], v["evals"]
        if len(c["step"]):
            s, sm = plots.downsample(c["step"], plots.smooth(c["loss"]))
            loss.add_trace(go.Scatter(x=s, y=sm, name=f"{name}: train loss", line=dict(color=color)))
        if len(e.get("step", [])):
            loss.add_trace(
                go.Scatter(
                    x=e["step"], y=e["dev_loss"], name=f"{name}: dev loss", line=dict(color=color, dash="dot")
                )
            )
            acc.add_trace(
                go.Scatter(
                    x=e["step"], y=e["dev_accuracy"], name=f"{name}: dev accuracy", line=dict(color=color)
                )
            )
        norm = total_grad_norm(v["grads"])
        if len(norm):
            s, n = plots.downsample(v["grads"]["step"], norm)
            grad.add_trace(go.Scatter(x=s, y=n, name=f"{name}: ||gradient||", line=dict(color=color)))
    loss.update_layout(title="Loss", xaxis_title="step", yaxis_title="cross-entropy", **plots.LAYOUT)
    acc.update_layout(title="Dev accuracy", xaxis_title="step", yaxis_range=[0, 1.02], **plots.LAYOUT)
    grad.update_layout(
        title="Gradient norm (all weights, log scale)",
        xaxis_title="step",
        yaxis=dict(type="log", dtick=1, exponentformat="power"),
        **plots.LAYOUT,
    )
    return loss, acc, grad


def gpu_figure(analysis: dict) -> go.Figure:
    """Bars per device: ms per matmul iteration and training examples/s, labelled with the ratio to the CPU."""
    rows = analysis["rows"]
    names = [r["device"] for r in rows]
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("normalize(t @ t), ms per iteration", "one epoch, examples/s")
    )
    ms = [r["matmul ms/iteration"] for r in rows]
    fig.add_trace(
        go.Bar(
            x=names,
            y=ms,
            text=[f"{r['speed-up vs CPU (matmul)']:.1f}x" for r in rows],
            marker_color=plots.COLORS[0],
        ),
        row=1,
        col=1,
    )
    rates = [r["epoch examples/s"] or 0 for r in rows]
    ratio = [f"{r['speed-up vs CPU (epoch)']:.1f}x" if r["speed-up vs CPU (epoch)"] else "" for r in rows]
    fig.add_trace(go.Bar(x=names, y=rates, text=ratio, marker_color=plots.COLORS[2]), row=1, col=2)
    fig.update_layout(showlegend=False, **plots.LAYOUT)
    return fig
