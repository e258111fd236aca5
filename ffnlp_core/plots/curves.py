"""Pure Plotly figure builders for the training pages (testable without a browser).

Curves are downsampled to about 2,000 points per trace so that charts stay fast at 100k steps;
the smoothed line is computed on every step first, then downsampled.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

MAX_POINTS = 2000
COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777", "#65a30d", "#475569"]
LAYOUT = dict(margin=dict(l=50, r=20, t=40, b=40), height=320, legend=dict(orientation="h", y=-0.25))


def downsample(x: np.ndarray, *ys: np.ndarray, max_points: int = MAX_POINTS):
    """Every k-th point so that at most max_points remain (the last point is always kept)."""
    n = len(x)
    if n <= max_points:
        return (x, *ys)
    idx = np.unique(np.append(np.linspace(0, n - 1, max_points).astype(np.int64), n - 1))
    return (x[idx], *(y[idx] for y in ys))


def smooth(y: np.ndarray, span: int | None = None) -> np.ndarray:
    """Exponential moving average with bias correction; span defaults to ~2% of the curve (>= 10 steps)."""
    y = np.asarray(y, np.float64)
    if len(y) == 0:
        return y
    span = span or max(10, len(y) // 50)
    alpha = 2.0 / (span + 1)
    return _ema(y, alpha) / _ema(np.ones_like(y), alpha)


def _ema(y: np.ndarray, alpha: float) -> np.ndarray:
    """acc_i = (1 - alpha) acc_{i-1} + alpha y_i from acc_-1 = 0, in NumPy (scipy.signal.lfilter did this,
    but importing scipy.signal took 2.7 s of a page's first draw). In blocks where d = 1 - alpha keeps
    d**-k below 1e100: acc_k = d**(k+1) carry + alpha d**k cumsum(y_j d**-j)."""
    d = 1.0 - alpha
    if d <= 0.0:  # span 1: no smoothing
        return y.copy()
    block = max(1, int(100 / -np.log10(d)))
    out = np.empty_like(y)
    carry = 0.0
    for start in range(0, len(y), block):
        seg = y[start : start + block]
        k = np.arange(len(seg))
        acc = d ** (k + 1) * carry + alpha * d**k * np.cumsum(seg * d**-k)
        out[start : start + len(seg)] = acc
        carry = acc[-1]
    return out


def _line(x, y, name: str, color: str, width: float = 2, mode: str = "lines") -> dict:
    return dict(type="scatter", x=x, y=y, mode=mode, name=name, line=dict(color=color, width=width))


def _live_figure(traces: list[dict], title: str, y_title: str, **layout) -> go.Figure:
    """A line chart that live pages redraw every second or so: built from plain dicts without Plotly's
    per-property validation (5x cheaper; with 30 pages refreshing, figure building was the server's main
    cost). Only this module's own, fixed trace and layout keys go in."""
    lay = dict(
        title=dict(text=title),
        xaxis=dict(title=dict(text="step")),
        yaxis=dict(title=dict(text=y_title), **layout.pop("yaxis", {})),
        **LAYOUT,
        **layout,
    )
    return go.Figure(data=traces, layout=lay, _validate=False)


def loss_figure(curves: dict, evals: dict, title: str = "Loss") -> go.Figure:
    """Train loss per step (faint), its smoothed line, and dev loss at each evaluation."""
    traces = []
    step, loss = curves["step"], curves["loss"]
    if len(step):
        s, raw, sm = downsample(step, loss, smooth(loss))
        traces.append(_line(s, raw, "train loss (per step)", "rgba(37,99,235,0.25)", width=1))
        traces.append(_line(s, sm, "train loss (smoothed)", COLORS[0]))
    if len(evals.get("step", [])):
        x, y = downsample(evals["step"], evals["dev_loss"], max_points=500)
        traces.append(_line(x, y, "dev loss", COLORS[1], mode=_eval_mode(x)))
    return _live_figure(traces, title, "cross-entropy")


def accuracy_figure(curves: dict, evals: dict, title: str = "Accuracy") -> go.Figure:
    """Smoothed train accuracy per step and dev accuracy at each evaluation."""
    traces = []
    step, acc = curves["step"], curves["accuracy"]
    if len(step):
        s, sm = downsample(step, smooth(acc))
        traces.append(_line(s, sm, "train accuracy (smoothed)", COLORS[0]))
    if len(evals.get("step", [])):
        x, y = downsample(evals["step"], evals["dev_accuracy"], max_points=500)
        traces.append(_line(x, y, "dev accuracy", COLORS[1], mode=_eval_mode(x)))
    return _live_figure(traces, title, "accuracy", yaxis=dict(range=[0, 1.02]))


def confusion_figure(confusion: np.ndarray, class_names: list[str]) -> go.Figure:
    """Rows = gold class, columns = predicted class; each cell shows the count and the row share."""
    c = np.asarray(confusion, np.float64)
    share = c / np.maximum(c.sum(axis=1, keepdims=True), 1)
    text = [[f"{int(c[i, j])}<br>{share[i, j]:.0%}" for j in range(c.shape[1])] for i in range(c.shape[0])]
    names = [_short(n) for n in class_names]
    fig = go.Figure(
        go.Heatmap(
            z=share,
            x=names,
            y=names,
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            showscale=False,
            hovertemplate="gold %{y}<br>predicted %{x}<extra></extra>",
        )
    )
    fig.update_layout(
        title="Confusion matrix on dev",
        xaxis=dict(title="predicted", type="category"),  # labels 0/1/2 are names, not a number line
        yaxis=dict(title="gold", type="category", autorange="reversed"),
        **{**LAYOUT, "height": 120 + 60 * len(names)},
    )
    return fig


def class_balance_figure(counts: list[int], class_names: list[str]) -> go.Figure:
    total = max(1, sum(counts))
    names = [_short(n) for n in class_names]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=counts,
            text=[f"{c:,} ({c / total:.0%})" for c in counts],
            textposition="auto",
            marker_color=COLORS[: len(counts)] * (len(counts) // 9 + 1),
        )
    )
    fig.update_layout(
        title="Class balance", xaxis_type="category", yaxis_title="comments", **{**LAYOUT, "height": 300}
    )
    return fig


def bar_figure(labels: list[str], values: list[float], title: str, xaxis: str = "") -> go.Figure:
    """Horizontal bars, one per label, top to bottom in the given order."""
    fig = go.Figure(go.Bar(x=values, y=[_short(s) for s in labels], orientation="h", marker_color=COLORS[0]))
    fig.update_layout(
        title=title,
        xaxis_title=xaxis,
        yaxis_type="category",  # words like "100" or "2024" are labels: Plotly would guess a number axis
        yaxis_autorange="reversed",
        **{**LAYOUT, "height": 120 + 22 * len(labels)},
    )
    return fig


def model_dot(
    vocab_size: int, hidden_sizes: list[int], n_classes: int, activation: str, params: list[int]
) -> str:
    """A Graphviz DOT diagram of the layers, input at the top (st.graphviz_chart renders it)."""
    lines = [
        'digraph G { rankdir=TB; node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];'
    ]
    lines.append(f'in [label="bag of words\\n{vocab_size:,} words", fillcolor="#e0e7ff"];')
    prev = "in"
    names = [f"layer_{i}" for i in range(len(hidden_sizes))] + ["output_layer"]
    widths = [*hidden_sizes, n_classes]
    for name, width, p in zip(names, widths, params, strict=True):
        act = "" if name == "output_layer" or activation == "none" else f"\\n+ {activation}"
        color = "#fde68a" if name == "output_layer" else "#dbeafe"
        lines.append(f'{name} [label="{name}\\n{width} units{act}\\n{p:,} params", fillcolor="{color}"];')
        lines.append(f"{prev} -> {name};")
        prev = name
    lines.append(f'out [label="softmax over {n_classes} classes", fillcolor="#dcfce7"]; {prev} -> out; }}')
    return "\n".join(lines)


def _eval_mode(x) -> str:
    """Markers show each evaluation while there are few; past ~60 they would merge into a thick band."""
    return "lines+markers" if len(x) <= 60 else "lines"


def _short(text: str, n: int = 30) -> str:
    """A label for Plotly, cut to n characters and HTML-escaped: Plotly would render tags such as <b>."""
    text = str(text)
    return html.escape(text if len(text) <= n else text[: n - 1] + "…")
