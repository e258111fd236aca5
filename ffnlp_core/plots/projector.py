"""The classroom (projector) version of any figure: every text larger by one factor (titles, ticks, axis
titles, legends, cell labels; a long title wraps instead of being cut), the legend at the foot of the
figure below the x-axis title with room of its own (so the two never overlap), the margins and the
height grown to match. The pages apply it at ?classroom=1 (pages/_helpers.py `chart`)."""

from __future__ import annotations

import copy
import textwrap

import plotly.graph_objects as go

SCALE = 1.5  # a projected chart is read from the back of the room
BASE_FONT = 12  # Plotly's default text size
BASE_TITLE = 17  # Plotly's default title size
TITLE_CHARS = 32  # a half-width chart's title at projector size: longer ones wrap (Plotly clips them)


def projector(fig: go.Figure, scale: float = SCALE) -> go.Figure:
    """A copy of `fig` for a projector (the original is left as it is: figures may be cached)."""
    out = go.Figure(copy.deepcopy(fig))
    layout = out.layout
    font = round((layout.font.size or BASE_FONT) * scale)
    title = round((layout.title.font.size or BASE_TITLE) * scale)
    # The legend sits at the very bottom of the figure, under the x-axis title, one row per entry at
    # worst (long run names wrap): the bottom margin holds the ticks, the axis title and those rows.
    entries = sum(1 for t in out.data if t.name and t.showlegend is not False)
    shown = layout.showlegend is not False and entries > 1 or layout.showlegend is True
    rows = min(entries, 6) if shown else 0
    axis_room = round(2.6 * font) + 20
    text = _wrap(layout.title.text)
    title_room = round(40 * scale) + 22 + (text.count("<br>") * round(title * 1.3) if text else 0)
    legend_room = round(rows * font * 1.5)
    out.update_layout(
        font=dict(size=font),
        title=dict(text=text, font=dict(size=title), yref="container", y=1, yanchor="top", pad=dict(t=22)),
        legend=dict(
            orientation="h",
            x=0,
            xanchor="left",
            y=0,
            yanchor="bottom",
            yref="container",
            font=dict(size=font),
        ),
        height=round((layout.height or 450) * 1.25) + legend_room,
        margin=dict(l=round(50 * scale) + 10, r=20, t=title_room, b=axis_room + legend_room),
    )
    for axis in list(out.layout):  # xaxis, yaxis, xaxis2, ...: tick labels and titles
        if axis.startswith(("xaxis", "yaxis")):
            out.layout[axis].update(tickfont=dict(size=font), title=dict(font=dict(size=font)))
    for annotation in out.layout.annotations or ():
        annotation.update(font=dict(size=round((annotation.font.size or BASE_FONT) * scale)))
    for trace in out.data:
        if "textfont" in trace:
            trace.update(textfont=dict(size=font))
    return out


def _wrap(text: str | None) -> str | None:
    """A long title on lines of at most TITLE_CHARS characters (<br> between them); others as they are."""
    if not text or len(text) <= TITLE_CHARS or "<br>" in text:
        return text
    return "<br>".join(textwrap.wrap(text, TITLE_CHARS, break_long_words=False))
