"""What the app runs in the user's browser, from one tiny same-origin frame in the sidebar: the session
and run ids written back into the address bar (`keep_url`), and, once the page is drawn, Streamlit's
code for the charts, tables, code blocks and widgets the other pages show loaded while the browser
idles (measured here: the first Plotly chart of a browser tab otherwise adds 2.5 s, its code is 4.7 MB;
the first table 1 s).

The script carries only our own ids and the names of Streamlit's own files (letters, digits, '.', '-'
and '_'), never user text.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import streamlit as st

# Streamlit's frontend loads each of these element kinds' code the first time a page shows one.
# In the order a student meets them: Data, Model (the layer diagram), Train, ..., Lessons (the code).
ELEMENT_CODE = (
    "PlotlyChart",
    "DataFrame",
    "Metric",
    "ButtonGroup",
    "Selectbox",
    "NumberInput",
    "Slider",
    "GraphVizChart",
    "Checkbox",
    "Multiselect",
    "TextArea",
    "TextInput",
    "FileUploader",
    "DownloadButton",
    "StreamlitSyntaxHighlighter",
)
# Plotly's code is evaluated in one 1.6 s task of the browser's main thread (a "longtask", measured in
# Chromium on this 2-core machine), and a click meanwhile waits for it: it is loaded ahead only once the
# data set is there. Before that (a server's first seconds) the Data page shows a notice and no chart, and
# its first chart loads it: the data's own wait, not a click's (bench_app --first-page: Data's page switch
# 3.0-5.4 s with it loaded at once, 0.5-0.6 s without).
LATE = ("PlotlyChart",)
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SAFE_FILE = re.compile(r"[A-Za-z0-9_.-]{1,120}\.js")


def keep_url(ws) -> None:
    """Write the session and run ids into the URL on every page (navigation drops them), so a reload or a
    copied link finds the same workspace and run. Called at the end of app.py.

    Streamlit 1.67 under st.navigation shows a query-param change in the address bar only after the next
    browser action, so the same values are also written with history.replaceState from a tiny frame,
    which also loads the other pages' element code (`element_code`) once the page is drawn.
    """
    want = {"sid": ws.sid, **({"run": ws.run_id} if ws.run_id else {})}
    for k, v in want.items():
        if st.query_params.get(k) != v:
            st.query_params[k] = v
    if not all(_SAFE_ID.fullmatch(v) for v in want.values()):
        return
    script = (
        "function fix(){const w=window.parent;const u=new URL(w.location.href);let c=false;"
        f"for(const [k,v] of Object.entries({json.dumps(want)}))"
        "{if(u.searchParams.get(k)!==v){u.searchParams.set(k,v);c=true}}"
        "if(c)w.history.replaceState(w.history.state,'',u.toString());}"
        "fix();for(const t of [200,600,1500,3000])setTimeout(fix,t);"  # after Streamlit's own late URL write
        + _warm_script(element_code(charts=ws.dataset_ready))
    )
    with st.sidebar:  # a same-origin frame as tall as its (empty) body; it reloads when the ids change
        st.iframe(f"<script>{script}</script>", height="content")


def _warm_script(files: tuple[str, ...]) -> str:
    """Import Streamlit's element modules in the page's own window (its module map: the page's lazy imports
    of the same files then find them loaded) when the browser is idle; a file loaded already costs nothing."""
    if not files:
        return ""
    return (
        "(function(){const w=window.parent;"
        "const main=w.document.querySelector('script[type=module][src*=\"/static/js/index.\"]');"
        "if(!main)return;"
        f"const go=()=>{{for(const f of {json.dumps(list(files))})"
        "w.eval('import('+JSON.stringify(new URL(f,main.src).href)+').catch(()=>{})');};"
        "if(w.requestIdleCallback)w.requestIdleCallback(go,{timeout:1500});else setTimeout(go,300);})();"
    )


@functools.cache
def element_code(charts: bool = True) -> tuple[str, ...]:
    """The file names of ELEMENT_CODE in this Streamlit's frontend build (none when its layout differs);
    without Plotly's (`LATE`) unless `charts`."""
    folder = Path(st.__file__).parent / "static" / "static" / "js"
    found = []
    for kind in ELEMENT_CODE if charts else [k for k in ELEMENT_CODE if k not in LATE]:
        names = sorted(p.name for p in folder.glob(f"{kind}.*.js") if _SAFE_FILE.fullmatch(p.name))
        if len(names) == 1:  # a name that is ambiguous is skipped, not guessed
            found.append(names[0])
    return tuple(found)
