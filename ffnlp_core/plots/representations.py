"""The Representations page's figures: the 2-D scatter of a layer's hidden states (hover: the comment,
HTML-escaped, cut to ~200 characters), the points' facts, a selection's rows, and the separation charts."""

from __future__ import annotations

import html
import textwrap

import numpy as np
import plotly.graph_objects as go

from ..inspect.projection import (
    INPUT,
    KNN_K,
)
from .curves import COLORS, LAYOUT

HOVER_CHARS = 200


SVG_POINTS = 2000  # up to this many points per panel are drawn as SVG, more with WebGL


# --- figures ------------------------------------------------------------------------------------------
COLOR_MODES: dict[str, str] = {
    "gold": "gold label",
    "predicted": "predicted label",
    "correct": "correct / wrong",
    "probability": "predicted probability",
}


def hover_text(text: str | None, width: int = 60) -> str:
    """A comment for a Plotly hover label: whitespace collapsed, cut to HOVER_CHARS, wrapped, HTML-escaped
    line by line (Plotly renders a subset of HTML in hover labels: '<script>' must stay literal text)."""
    if text is None:
        return "(comment not stored)"
    text = " ".join(str(text).split())
    if len(text) > HOVER_CHARS:
        text = text[: HOVER_CHARS - 1].rstrip() + "…"
    return "<br>".join(html.escape(line) for line in textwrap.wrap(text, width) or [""])


def point_data(rows, texts, gold, probs, class_names) -> dict:
    """The facts behind every point (the same rows in every panel): rows, gold, pred, prob (n, C), the
    escaped hover text and class names, and `custom`: Plotly customdata (row, text, gold, predicted, p)."""
    probs = np.asarray(probs, np.float32)
    gold, pred = np.asarray(gold, np.int64), probs.argmax(axis=1)
    names = [html.escape(str(c)) for c in class_names]
    hover = [hover_text(t) for t in texts]
    p_pred = probs[np.arange(len(pred)), pred]
    custom = np.empty((len(pred), 5), object)
    custom[:, 0] = np.asarray(rows, np.int64)
    custom[:, 1] = hover
    custom[:, 2] = [names[g] if 0 <= g < len(names) else "?" for g in gold]
    custom[:, 3] = [names[p] for p in pred]
    custom[:, 4] = np.round(p_pred, 3)
    return {
        "rows": np.asarray(rows),
        "gold": gold,
        "pred": pred,
        "probs": probs,
        "names": names,
        "custom": custom,
    }


HOVER = (
    "%{customdata[1]}<br><b>gold</b> %{customdata[2]} · <b>predicted</b> %{customdata[3]}"
    " (p = %{customdata[4]:.2f})<extra>dev row %{customdata[0]}</extra>"
)


def scatter_figure(coords: np.ndarray, points: dict, color_by: str = "gold", title: str = "") -> go.Figure:
    """2-D scatter of one panel; one trace per colour group (so the legend names them)."""
    fig = go.Figure()
    x, y = coords[:, 0], coords[:, 1]
    marker = dict(size=5, opacity=0.75)
    trace = go.Scatter if len(x) <= SVG_POINTS else go.Scattergl  # WebGL only where SVG gets slow
    names, gold, pred = points["names"], points["gold"], points["pred"]
    if color_by == "probability":
        binary = len(names) == 2
        p = points["probs"][:, 1] if binary else points["custom"][:, 4].astype(np.float32)
        label = f"P({names[1]})" if binary else "P(predicted)"
        fig.add_trace(
            trace(
                x=x, y=y, mode="markers", customdata=points["custom"], hovertemplate=HOVER, name=label,
                marker=dict(**marker, color=p, cmin=0, cmax=1, colorscale="RdBu_r",
                            colorbar=dict(title=label, thickness=12)),
            )
        )  # fmt: skip
    else:
        if color_by == "correct":
            groups = [("correct", gold == pred, COLORS[2]), ("wrong", gold != pred, COLORS[1])]
        else:
            ids = gold if color_by == "gold" else pred
            groups = [(n, ids == c, COLORS[c % len(COLORS)]) for c, n in enumerate(names)]
        # The largest group is drawn first, so a minority class sits on top instead of under the majority;
        # the legend keeps the classes' own order.
        order = sorted(range(len(groups)), key=lambda i: -int(groups[i][1].sum()))
        for i in order:
            name, mask, color = groups[i]
            fig.add_trace(
                trace(
                    x=x[mask], y=y[mask], mode="markers", name=name, customdata=points["custom"][mask],
                    hovertemplate=HOVER, marker=dict(**marker, color=color), legendrank=1000 + i,
                )
            )  # fmt: skip
    fig.update_layout(
        **{**LAYOUT, "height": 400, "legend": dict(orientation="h", y=-0.02)},
        title=dict(text=title, font=dict(size=13)),
        dragmode="select",
        hoverlabel=dict(align="left"),
    )
    fig.update_xaxes(showticklabels=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, zeroline=False, scaleanchor="x", scaleratio=1)
    return fig


def selected_rows(points: list[dict]) -> list[int]:
    """Dev rows of the points a Plotly selection event lists (customdata[0]), in order, without repeats."""
    rows = [int(p["customdata"][0]) for p in points if p.get("customdata")]
    return list(dict.fromkeys(rows))


def selection_table(chosen: list[int], rows, gold, points: dict, names: list[str], text) -> dict:
    """The selected comments as table columns (plain text: shown in a data frame, never as Markdown);
    `text(row)` gives the comment behind a dev row."""
    at = {int(r): j for j, r in enumerate(rows)}
    return {
        "dev row": chosen,
        "comment": [text(i) for i in chosen],
        "gold": [names[int(gold[at[i]])] for i in chosen],
        "predicted": [names[int(points["pred"][at[i]])] for i in chosen],
        "p(predicted)": [float(points["custom"][at[i], 4]) for i in chosen],
    }


CHANCE_NOTE = dict(annotation_text="majority class", annotation_position="bottom right")


def layers_figure(table: dict, index: int, layers: list[str], chance_level: float) -> go.Figure:
    """The separation score of the input and each hidden layer at one snapshot."""
    xs = ([INPUT] if np.isfinite(table[INPUT]) else []) + layers
    ys = [table[INPUT] if name == INPUT else table[name][index] for name in xs]
    # the values sit mid-bar and the dotted line has no label here (the caption names it): nothing overlaps
    values = [f"{v:.2f}" for v in ys]
    fig = go.Figure(go.Bar(x=xs, y=ys, marker_color=COLORS[0], text=values, insidetextanchor="middle"))
    fig.add_hline(y=chance_level, line_dash="dot", line_color=COLORS[8])
    step = int(table["step"][index])
    fig.update_layout(
        **LAYOUT, title=f"Separation per layer at step {step:,}", yaxis_range=[0, 1.05],
        yaxis_title=f"{KNN_K}-NN accuracy (gold)",
    )  # fmt: skip
    return fig


def training_figure(table: dict, layers: list[str], chance_level: float, index: int = -1) -> go.Figure:
    """The separation score of each hidden layer over training (the input's as a dashed line); a grey
    vertical line marks the snapshot shown."""
    fig = go.Figure()
    if len(table["step"]):
        fig.add_vline(x=int(table["step"][index]), line_color="rgba(71,85,105,0.35)", line_width=6)
    for i, name in enumerate(layers):
        fig.add_trace(
            go.Scatter(x=table["step"], y=table[name], mode="lines+markers", name=name,
                       line=dict(color=COLORS[(i + 2) % len(COLORS)]))
        )  # fmt: skip
    if np.isfinite(table[INPUT]):
        note = dict(annotation_text="input", annotation_position="top left")
        fig.add_hline(y=table[INPUT], line_dash="dash", line_color=COLORS[0], **note)
    fig.add_hline(y=chance_level, line_dash="dot", line_color=COLORS[8], **CHANCE_NOTE)
    fig.update_layout(
        **LAYOUT, title="Separation over training", xaxis_title="step", yaxis_range=[0, 1.05],
        yaxis_title=f"{KNN_K}-NN accuracy (gold)",
    )  # fmt: skip
    return fig
