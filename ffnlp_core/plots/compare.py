"""Figures for comparing runs: several runs' curves overlaid on one chart, and charts saved as one offline
HTML file."""

from __future__ import annotations

import html

import plotly.graph_objects as go

from .curves import COLORS, LAYOUT, downsample, smooth


def overlay_figure(series: list[tuple[str, dict, dict]], metric: str) -> go.Figure:
    """Several runs on one chart: each run's smoothed train curve (solid) and dev curve (dotted, markers)
    in the run's own color. series: (name, curves, evals); metric: "loss" or "accuracy"."""
    fig = go.Figure()
    dev_key = "dev_loss" if metric == "loss" else "dev_accuracy"
    for i, (name, curves, evals) in enumerate(series):
        color, label = COLORS[i % len(COLORS)], html.escape(name)
        if len(curves["step"]):
            s, sm = downsample(curves["step"], smooth(curves[metric]))
            fig.add_trace(
                go.Scatter(x=s, y=sm, mode="lines", name=f"{label} train", line=dict(color=color, width=2))
            )
        if len(evals.get("step", [])):
            fig.add_trace(
                go.Scatter(
                    x=evals["step"],
                    y=evals[dev_key],
                    mode="lines+markers",
                    name=f"{label} dev",
                    line=dict(color=color, width=2, dash="dot"),
                )
            )
    title = (
        "Loss (train smoothed, dev dotted)" if metric == "loss" else "Accuracy (train smoothed, dev dotted)"
    )
    fig.update_layout(
        title=title,
        xaxis_title="step",
        yaxis_title="cross-entropy" if metric == "loss" else "accuracy",
        **{**LAYOUT, "height": 380},
    )
    return fig


def charts_html(figures: list[go.Figure], title: str) -> bytes:
    """The charts in one HTML file that works offline (plotly.js inlined, no CDN)."""
    parts = [fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figures)]
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body><h2>{html.escape(title)}</h2>{''.join(parts)}</body></html>"
    ).encode()
