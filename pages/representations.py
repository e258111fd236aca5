"""Representations (/representations): the hidden states h0, h1, ... of the run's dev sample projected to
2-D (PCA at once, UMAP once compiled), next to the raw bag-of-words input; colour by gold, predicted,
correct or probability; a slider over the snapshots; selected points listed as plain text; and the
separation score of every layer across layers and over training."""

import pandas as pd
import streamlit as st

from ffnlp_core.inspect import projection as pj
from ffnlp_core.inspect import umap_service
from ffnlp_core.plots import representations as rplots
from pages import _common as ui

ws = ui.workspace()
st.title("Representations")
st.caption(
    "Each dev comment is a point, placed so that comments a layer treats alike lie close together. "
    "The lecture's question: what must h0 and h1 look like for the last layer to tell the classes apart?"
)
run = ui.current_run(ws)
if run is None:
    st.info("No run yet: train one on the Train page first.", icon=":material/play_circle:")
    ui.page_link("pages/train.py", label="Go to Train", icon=":material/play_circle:")
    st.stop()
snaps = run.read(lambda h: list(h.snapshots))
hidden = [f"h{i}" for i in range(len(snaps[-1].hidden) if snaps else len(run.cfg.model.hidden_sizes))]
options = [pj.INPUT, *hidden]
prefs = ws.extras.setdefault("repr", {"layers": [pj.INPUT, *dict.fromkeys(hidden[:1] + hidden[-1:])]})


def put(name):
    return lambda v: prefs.__setitem__(name, v)


def layer_label(name: str) -> str:
    """The panel's name: "input", or "h1 (100 units)" (hidden layer h{i} is what layer_{i} outputs)."""
    sizes = run.cfg.model.hidden_sizes
    if name == pj.INPUT or int(name[1:]) >= len(sizes):
        return name
    return f"{name} ({sizes[int(name[1:])]} units)"


if "repr_layers" in st.session_state:  # a run with fewer layers than the last one
    st.session_state["repr_layers"] = [x for x in st.session_state["repr_layers"] if x in options]
ui.synced(
    st.multiselect,
    "repr_layers",
    [x for x in prefs["layers"] if x in options],
    put("layers"),
    label="Layers, side by side",
    options=options,
    format_func=layer_label,
)
c2, c3, c4 = st.columns([2, 2, 1.3], vertical_alignment="bottom")
with c2:
    ui.synced(
        st.radio,
        "repr_method",
        prefs.get("method", "pca"),
        put("method"),
        label="Projection",
        options=list(pj.METHODS),
        format_func=str.upper,
        horizontal=True,
        help="\n\n".join(pj.METHODS.values()),
    )
with c3:
    ui.synced(
        st.selectbox,
        "repr_color",
        prefs.get("color", "gold"),
        put("color"),
        label="Colour by",
        options=list(rplots.COLOR_MODES),
        format_func=rplots.COLOR_MODES.get,
    )
with c4:
    if st.button(
        "Project", key="repr_project", type="primary", icon=":material/scatter_plot:", width="stretch"
    ):
        prefs["on"] = True
layers, method, color = (st.session_state[k] for k in ("repr_layers", "repr_method", "repr_color"))
if method == "umap":
    umap_service.start_warm_up()  # normally started with the app; a no-op when it already ran


def umap_waiting() -> bool:
    """UMAP is wanted and still compiling or computing: the view polls until it is there."""
    return method == "umap" and (
        umap_service.umap_status()["state"] == "compiling" or umap_service.WORKER.busy()
    )


running = not run.done
umap_now = umap_service.WORKER.finished, umap_service.umap_status()["state"]  # before the view asks for more


def draw(run, snaps) -> None:
    """The scatter panels, the selected comments and the separation charts."""
    steps = [s.step for s in snaps]
    by_step = {s.step: s for s in snaps}
    if not run.done or len(steps) == 1:  # while it trains: the newest (the snapshot list keeps changing)
        index = len(steps) - 1
        if not run.done:
            st.caption("Showing the newest snapshot while the run trains; a slider over training follows.")
    else:
        if st.session_state.get("repr_snapshot") not in steps or prefs.get("slider_run") != run.run_id:
            st.session_state["repr_snapshot"] = steps[-1]  # a new run starts on its newest snapshot
            prefs["slider_run"] = run.run_id
        st.select_slider(
            "Snapshot",
            steps,
            key="repr_snapshot",
            format_func=lambda s: f"step {s:,} · epoch {by_step[s].epoch}",
        )
        index = steps.index(st.session_state["repr_snapshot"])
    snap = snaps[index]
    rows, gold = snap.dev_rows, run.dev_labels()[snap.dev_rows]
    texts = [run.dev_text(int(i)) for i in rows]
    points = pj.cached(
        (run.run_id, "points", snap.step),
        lambda: rplots.point_data(rows, texts, gold, snap.probs, run.class_names),
    )
    raw, why = pj.input_rows(run, rows) if pj.INPUT in layers else (None, "")
    shown = [x for x in layers if x != pj.INPUT or raw is not None]
    status = umap_service.umap_status()
    progress = st.empty()  # always there, so the panels keep their places (and their drawn charts) after it
    if method == "umap" and status["state"] != "ready":
        progress.progress(status["fraction"], text=umap_service.status_text(status))
    per_row = min(3, max(1, len(shown)))  # any number of layers, at most three panels a row
    cols = [c for i in range(0, len(shown), per_row) for c in st.columns(per_row)]
    picked = []
    for col, layer in zip(cols, shown, strict=False):
        try:
            coords, used = pj.embedding(run.run_id, snaps, index, layer, method, raw=raw)
        except RuntimeError as exc:
            coords, used = pj.embedding(run.run_id, snaps, index, layer, "pca", raw=raw)
            col.caption(str(exc))
        what = f"SVD to {pj.SVD_DIMS} dims, then " if layer == pj.INPUT else ""
        title = f"{layer_label(layer)} · {what}{used.upper()}"
        event = ui.chart(
            col,
            rplots.scatter_figure(coords, points, color, title),
            key=f"repr_plot_{layer}",
            on_select="rerun",
            selection_mode=("points", "box", "lasso"),
        )
        picked += event.selection.points if event else []
        if used != method and status["state"] == "ready":
            col.caption("UMAP is being computed: PCA shown meanwhile.")
    if why:
        st.caption(why)
    st.caption(
        f"{len(rows):,} dev comments at step {snap.step:,}. Hover a point to read its comment; "
        "click, or drag a box or lasso, to list comments below."
    )
    chosen = rplots.selected_rows(picked)
    if chosen:
        table = rplots.selection_table(chosen, rows, gold, points, run.class_names, run.dev_text)
        st.caption(f"{len(chosen):,} comments selected (double-click the chart to clear).")
        with st.container(key="repr_selected"):
            st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")
    table = pj.separation_table(run.run_id, snaps, gold, raw=raw)
    a, b = st.columns(2)
    ui.chart(a, rplots.layers_figure(table, index, hidden, pj.chance(gold)), key="repr_separation_layers")
    ui.chart(b, rplots.training_figure(table, hidden, pj.chance(gold), index), key="repr_separation_training")
    with st.container(key="repr_separation_reading"):
        st.markdown(pj.separation_sentence(table, index, hidden, pj.chance(gold)))
    st.caption(
        f"Separation: for up to {pj.SCORE_ROWS:,} of these comments, do most of the {pj.KNN_K} nearest "
        "others in that layer's full space carry the same gold label? Dotted: always guessing the most "
        "common class."
    )
    if run.ds is None and len(snaps) == 1:
        st.caption("A run read back from disk keeps only its newest snapshot: no slider over training.")


# Every 2 s while the run trains (a redraw can take over a second on a busy 2-core machine); while UMAP is
# on its way, redrawn as soon as a projection is there (`rerun_when` below).
@ui.live_fragment(ui.poll_seconds(2) if running else None, 2)
def view() -> None:
    with st.container(key="repr_view"):
        now = ui.current_run(ws)
        now.touch()
        snaps = now.read(lambda h: list(h.snapshots))
        st.markdown(f"Run `{now.run_id}` · {ui.status_line(now)}")
        if not prefs.get("on"):
            st.info("Press **Project** to place the captured dev comments.", icon=":material/scatter_plot:")
            return
        if not snaps:
            rows = now.cfg.train.snapshot_rows
            st.info(f"No hidden states yet: {rows:,} dev rows are captured at each evaluation (Train page).")
        else:
            draw(now, snaps)
        if running and now.done:
            st.rerun()  # stop polling


view()
if not running and umap_waiting():  # asked now (by the view) or earlier: redraw as each projection lands
    ui.rerun_when(lambda: (umap_service.WORKER.finished, umap_service.umap_status()["state"]) != umap_now)
