"""Gradients (/gradients): how strongly each layer learns, streamed live from the run's gradient probes:
gradient size per layer over steps, a layer × step heatmap, the mean per layer with its ratio to the last
hidden layer, update/weight ratios, dead or saturated units, and a one-click comparison of activations."""

import pandas as pd
import streamlit as st

from ffnlp_core.config import MAX_HIDDEN_LAYERS, ConfigError
from ffnlp_core.inspect import gradients as gr
from ffnlp_core.nn.initializers import INITIALIZERS
from ffnlp_core.plots import gradients as grplots
from pages import _common as ui
from pages import _run_panel as panel

ws = ui.workspace()
st.title("Gradients")
st.caption(
    "Backpropagation hands every layer its share of the error; the further a layer sits from the output, "
    "the weaker that share can get. Measured on the training batches while the run trains."
)
ui.synced(
    st.toggle,
    "gradients_frobenius",
    bool(ws.extras.get("gradients_frobenius", False)),
    lambda v: ws.extras.__setitem__("gradients_frobenius", bool(v)),
    label="Frobenius norm ‖∂L/∂W‖ instead of RMS per weight",
    help="RMS per weight compares layers of different sizes; the Frobenius norm is the length of the "
    "whole gradient matrix (layer_0 has a row per word, so it looks much bigger).",
)
STAT = "grad_norm" if ws.extras.get("gradients_frobenius") else "grad_rms"


def read(run) -> tuple[dict, list[str]]:
    return run.read(lambda h: (h.gradient_table(), list(h.layer_names)))


def draw(table: dict, layers: list[str], activation: str, init: str = "default") -> None:
    means = gr.layer_means(table, STAT)
    why = gr.explanation(activation, init, gr.dead_share(table, activation))
    verdict = gr.verdict(activation, layers, means, STAT, len(table["step"]))
    st.success(f"{verdict} {why}", icon=":material/insights:")
    a, b = st.columns(2)
    ui.chart(a, grplots.lines_figure(table, layers, STAT), key="gradients_lines")
    ui.chart(b, grplots.heatmap_figure(table, layers, STAT), key="gradients_heatmap")
    a, b = st.columns(2)
    ui.chart(a, grplots.mean_bars_figure(means, layers, STAT), key="gradients_bars")
    ui.chart(b, grplots.lines_figure(table, layers, "signal"), key="gradients_signal")
    a, b = st.columns(2)
    signal = gr.layer_means(table, "signal")
    ui.chart(a, grplots.decay_figure(signal, means, layers, activation, STAT), key="gradients_decay")
    ui.chart(b, grplots.lines_figure(table, layers, "update_ratio"), key="gradients_update")
    bound = gr.slope_bound(activation)
    if bound is not None:
        a.caption(
            f"Each {activation} layer multiplies the backprop signal by its slope, at most {bound:g}: k layers "
            f"further down it is at most {bound:g}^k of what it was (dashed). The weights can shrink or grow it "
            "further."
        )
    ui.chart(st, grplots.activation_figure(table, layers, activation), key="gradients_activations")


run = ui.current_run(ws)
running = run is not None and not run.done


@ui.live_fragment(ui.poll_seconds() if running else None)
def run_view() -> None:
    with st.container(key="gradients_view"):
        run = ui.current_run(ws)
        if run is None:
            st.info(
                "No run yet: train one on the Train page, or compare activations below.",
                icon=":material/play_circle:",
            )
            return
        run.touch()
        table, layers = read(run)
        st.markdown(f"Run `{run.run_id}` · {ui.status_line(run)}")
        if len(table.get("step", [])):
            draw(table, layers, run.cfg.model.activation, run.cfg.model.init)
        else:
            st.info("No gradient probes yet: they arrive with the first training steps.")
        if running and run.done:
            st.rerun()  # the run just ended: stop polling


run_view()

# --- comparison ---------------------------------------------------------------------------------
st.subheader("Compare activations")
st.caption(
    "Same data, same depth and width: one short run (1 epoch) per activation (and initialization), side by side."
)
saved = ws.extras.get("gradients_compare") or {}


def compare_runs() -> dict:
    return {act: ui.manager().open_run(rid) for act, rid in (saved.get("runs") or {}).items()}


def start_compare() -> None:
    depth = int(st.session_state["gradients_compare_depth"])
    acts = list(st.session_state["gradients_compare_activations"])
    inits = list(st.session_state["gradients_compare_inits"]) or ["default"]
    try:
        cfgs = gr.compare_configs(ws.config, depth, acts, inits=inits)
        runs = panel.submit_group(ws, cfgs, ws.dataset, "gradients")
    except ConfigError as exc:
        st.session_state["gradients_error"] = f"Cannot compare: {exc}"
        return
    ws.extras["gradients_compare"] = {"depth": depth, "runs": runs, "activations": acts, "inits": inits}


comparing = any(r is not None and not r.done for r in compare_runs().values())
c2, c4 = st.columns([3, 2])  # a row of their own: four activations' chips fit without being cut
c2.multiselect(
    "Activations",
    list(gr.COMPARE_ACTIVATIONS),
    default=list(saved.get("activations") or gr.COMPARE_ACTIVATIONS),
    key="gradients_compare_activations",
)
c4.multiselect(
    "Initializations",
    list(INITIALIZERS),
    default=list(saved.get("inits") or ["default"]),
    key="gradients_compare_inits",
    help="Several: one run per activation and initialization (Glorot & Bengio 2010: the default shrinks it).",
)
c1, _, c3 = st.columns([1.7, 3.1, 1.4], vertical_alignment="bottom")
c1.number_input(
    "Hidden layers", 2, MAX_HIDDEN_LAYERS, int(saved.get("depth", 6)), key="gradients_compare_depth"
)
c3.button(
    "Compare",
    key="gradients_compare_start",
    type="primary",
    icon=":material/compare_arrows:",
    width="stretch",
    on_click=start_compare,
    disabled=comparing or ws.dataset is None,
)
if st.session_state.get("gradients_error"):
    ui.error(st.session_state.pop("gradients_error"))


@ui.live_fragment(ui.poll_seconds() if comparing else None)
def compare_view() -> None:
    with st.container(key="gradients_compare"):
        runs = compare_runs()
        if not runs:
            st.info("Press Compare to train the same network once per activation.", icon=":material/science:")
            return
        rows, tables, layers = [], {}, []
        for act, r in runs.items():
            if r is None:
                rows.append({"activation": act, "status": "no longer on disk"})
                continue
            r.touch()
            table, names = read(r)
            done, total, ev = r.read(lambda h: (h.steps_done, h.total_steps, h.last_eval()))
            rows.append(
                {
                    "activation": act,
                    "status": r.status,
                    "steps": f"{done:,}/{total:,}",
                    "dev accuracy": None if ev is None else round(ev["dev_accuracy"], 3),
                    "note": r.reason,
                }
            )
            if len(table.get("step", [])):
                tables[act], layers = table, names
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        still = any(r is not None and not r.done for r in runs.values())
        if tables:
            means = {a: gr.layer_means(t, STAT) for a, t in tables.items()}
            signal = {a: gr.layer_means(t, "signal") for a, t in tables.items()}
            verdict = gr.comparison_verdict(means, layers, STAT, "So far" if still else "After training")
            st.success(verdict, icon=":material/insights:")
            a, b = st.columns(2)
            ui.chart(a, grplots.comparison_figure(means, layers, STAT), key="gradients_compare_weights")
            ui.chart(b, grplots.comparison_figure(signal, layers, "signal"), key="gradients_compare_signal")
            ui.chart(st, grplots.small_multiples_figure(tables, layers, STAT), key="gradients_compare_lines")
        if comparing and not still:
            st.rerun()  # every run ended: stop polling


compare_view()
