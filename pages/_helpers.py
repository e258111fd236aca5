"""Small helpers every page uses: links to other pages, the stop when no data is loaded, the notice while
the built-in data is counted, widgets synced to the workspace config, charts (projector-sized in the
classroom view), and number formatting."""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st

PAGES_ROOT = Path(__file__).resolve().parent.parent  # page paths ("pages/data.py") are relative to it


def page_link(path: str, **kwargs) -> None:
    """st.page_link to pages this app has; plain text where the page is not in the navigation (a page run
    on its own, as in AppTest)."""
    from streamlit.errors import StreamlitPageNotFoundError

    if not (PAGES_ROOT / path).exists():
        return
    try:
        st.page_link(path, **kwargs)
    except StreamlitPageNotFoundError:
        st.caption(kwargs.get("label", path))


def need_data(ws):
    """Stop the page with a pointer to the Data page when no data is loaded."""
    if ws.dataset is None:
        st.info("No data yet: load the built-in comments or your own CSV first.")
        page_link("pages/data.py", label="Go to Data", icon=":material/table:")
        st.stop()
    return ws.dataset


def data_ready(ws, seconds: float = 0.1) -> bool:
    """The workspace's data set is there, after waiting up to `seconds` for one still being built (a
    server's first seconds: reading and counting the built-in comments, pandas and scikit-learn, ~3-5 s on
    2 cores)."""
    from concurrent.futures import wait

    if ws.pending is not None:
        wait([ws.pending], timeout=seconds)
    return ws.dataset_ready


def data_on_its_way(ws, title: str) -> None:
    """Instead of a page that needs the data while it is still being built (app.py): the page's title and a
    notice, drawn at once; a small fragment polls and reruns the app (the page itself) once the data is
    there. The page's script does not run meanwhile, so its imports (pandas, ...) do not wait on the build
    thread's."""
    st.title(title)

    @st.fragment(run_every=1.0)  # each poll is a script run: the page settles between them
    def _poll() -> None:
        if ws.dataset_ready:
            st.rerun()
        st.info("Reading the built-in comments and counting words…", icon=":material/hourglass_top:")

    _poll()


def synced(widget, key: str, current, apply, **kwargs):
    """A widget whose value lives in the workspace: initialised from `current`, written back via `apply`."""
    if key not in st.session_state:
        st.session_state[key] = current

    def on_change():
        apply(st.session_state[key])

    return widget(key=key, on_change=on_change, **kwargs)


def chart(where, fig, **kwargs):
    """Every page's charts go through here: `ui.chart(where, fig, ...)` with `where` st or a column; at
    ?classroom=1 the figure's text is made projector-sized first (plots/projector.py)."""
    from pages._state import classroom

    if classroom():
        from ffnlp_core.plots.projector import projector

        fig = projector(fig)
    return where.plotly_chart(fig, **kwargs)


_MARKDOWN = re.compile(r"([\\`*_\[\]()<>~$|])")  # inline Markdown, HTML and LaTeX: escaped anywhere
_LINE_START = re.compile(r"^(\s*)([#+\-!>]|\d+\.)", re.MULTILINE)  # headings, lists, quotes
_SHORTCODE = re.compile(r":(?=\S)")  # Streamlit's :material/...: icons, :red[...] colours, :emoji:


def plain(text: str) -> str:
    """Text for a Markdown element shown as typed: Markdown, HTML, LaTeX and Streamlit's shortcodes are
    backslash-escaped, so a user's '[answers](https://…)' in an error box stays text, never a link."""
    text = _MARKDOWN.sub(r"\\\1", str(text))
    text = _LINE_START.sub(lambda m: m.group(1) + _escape_marker(m.group(2)), text)
    return _SHORTCODE.sub(r"\\:", text)


def _escape_marker(marker: str) -> str:
    """'#' -> '\\#'; '12.' -> '12\\.' (a digit cannot be escaped, the period after it can)."""
    return marker[:-1] + "\\." if marker.endswith(".") else "\\" + marker


def error(text: str) -> None:
    """An error box whose message may hold user values (column names, file contents): shown as plain text."""
    st.error(plain(text), icon=":material/error:")


def fmt_count(n: int) -> str:
    return f"{n:,}"
