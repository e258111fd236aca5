"""Train (/train): optimizer and schedule, Start/Stop, and the run streaming in live: progress, loss and
accuracy charts, then the final figures, the confusion matrix and this session's runs to compare."""

import copy
import time

import pandas as pd
import streamlit as st

from ffnlp_core.config import ENGINES
from ffnlp_core.inspect.overfitting import overfitting
from ffnlp_core.plots import curves as plots
from pages import _common as ui
from pages import _metrics as run_metrics
from pages import _run_panel as panel
from pages._widgets import setting

ws = ui.workspace()
ds = ui.need_data(ws)
t = ws.config.train
st.title("Train")

# --- settings -----------------------------------------------------------------------------------
c = st.columns(4)
with c[0]:
    setting(ws, "train", "optimizer")
    setting(ws, "train", "seed")
with c[1]:
    setting(ws, "train", "lr")
    setting(ws, "train", "weight_decay")
with c[2]:
    setting(ws, "train", "batch_size")
    setting(ws, "train", "epochs")
    setting(ws, "train", "pace_seconds")
with c[3]:
    setting(ws, "train", "eval_every")
    found = ui.devices()  # None: still being listed (a server's first seconds)
    devices = dict(found or [("cpu", "CPU")])
    if found is None and t.device not in devices and t.device != "auto":
        devices[t.device] = t.device  # e.g. from a shared link: kept until the list says whether it is here
    setting(ws, "train", "device", options=devices, current=t.device if t.device in devices else "cpu")
with st.container(key="advanced_train"), st.expander("Advanced", expanded=False):
    a = st.columns(4)
    with a[0]:
        setting(ws, "train", "engine", format_func=lambda k: f"{k}: {ENGINES[k]}")
    with a[1]:
        setting(
            ws,
            "train",
            "fast",
            label="CPU fast path",
            help="Hand-derived backprop with lazy row updates (same function and gradients as autograd).",
        )
    with a[2]:
        setting(ws, "train", "snapshot_rows")
    with a[3]:
        setting(ws, "train", "probe_every")

run = panel.buttons(ws, "train", lambda: (copy.deepcopy(ws.config), ds, ws.dataset_name))
running = run is not None and not run.done


# --- live view ----------------------------------------------------------------------------------
# Until the first loss point is on screen the page polls fast; then it settles to the usual interval (one
# full rerun switches it), which keeps a class of 30 cheap for the server.
# (Not on a busy server: there the interval stretches instead, see ui.poll_seconds.)
FAST_POLL_SECONDS, FAST_WINDOW_SECONDS = 0.25, 5.0
interval = ui.poll_seconds()
fresh = (
    running
    and interval <= ui.POLL_SECONDS
    and time.time() - run.created < FAST_WINDOW_SECONDS
    and run.read(lambda h: h.steps_done) == 0
)


def training(run) -> int:
    """Progress, live charts and, once it is over, the final figures; returns the steps done."""
    snap = run.read(
        lambda h: {
            "curves": h.curves(),
            "evals": h.eval_table(),
            "confusion": None if h.confusion is None else h.confusion.copy(),
            "summary": h.summary,
            "started": h.started,
        }
    )
    done = panel.progress(run)
    with st.container(key="train_charts"):
        left_col, right_col = st.columns(2)
        ui.chart(left_col, plots.loss_figure(snap["curves"], snap["evals"]), key="train_loss_chart")
        ui.chart(right_col, plots.accuracy_figure(snap["curves"], snap["evals"]), key="train_accuracy_chart")
    if run.done and snap["summary"]:
        s = snap["summary"]
        m = st.columns(5)
        m[0].metric("Dev accuracy", f"{s['dev_accuracy']:.3f}")
        m[1].metric("Train accuracy", f"{s['train_accuracy']:.3f}", help="over the last epoch")
        m[2].metric("Dev loss", f"{s['dev_loss']:.3f}")
        rate = s["examples_per_second"]  # "118k", not "118,814": fits a fifth of a projector's width
        m[3].metric(
            "Examples/s",
            f"{rate / 1000:,.0f}k" if rate >= 10_000 else f"{rate:,.0f}",
            help=f"{rate:,.0f}; time in training steps only",
        )
        m[4].metric("Steps", f"{s['steps']:,}")
        found = overfitting(snap["evals"], run.cfg.train.early_stopping_patience)
        if found:
            with st.container(key="train_overfitting"):
                st.warning(found["text"], icon=":material/trending_up:")
        if snap["confusion"] is not None and snap["started"] is not None:
            left, right = st.columns(2)
            ui.chart(
                left,
                plots.confusion_figure(snap["confusion"], snap["started"].classes),
                key="train_confusion",
            )
            with right:
                run_metrics.panel(run, snap["confusion"], "train")
    return done


@ui.live_fragment((FAST_POLL_SECONDS if fresh else interval) if running else None)
def live_view() -> None:
    run = ui.current_run(ws)
    if run is None:
        st.info("Press Start to train the network on the current data.", icon=":material/play_circle:")
        return
    run.touch()
    done = training(run) if run.status != "queued" else panel.progress(run)
    if running and run.done:
        st.rerun()  # the run just ended: a full rerun stops the polling and enables Start
    if fresh and (done or time.time() - run.created > FAST_WINDOW_SECONDS):
        st.rerun()  # the first points are drawn: back to the usual polling interval


live_view()

# --- this session's runs ------------------------------------------------------------------------
rows = []
for rid in reversed(ws.run_ids):
    r = ui.manager().open_run(rid)
    if r is None:
        continue
    s = r.read(lambda h: h.summary) or {}
    m, tr = r.cfg.model, r.cfg.train
    rows.append(
        {
            "run": rid,
            "status": r.status,
            "hidden": ", ".join(map(str, m.hidden_sizes)) or "none",
            "activation": m.activation,
            "optimizer": tr.optimizer,
            "lr": tr.lr,
            "batch": tr.batch_size,
            "epochs": tr.epochs,
            "dev accuracy": s.get("dev_accuracy"),
            "examples/s": round(s["examples_per_second"]) if s else None,
        }
    )
if rows:
    st.subheader("This session's runs")
    picked = st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        key="train_history",
        on_select="rerun",
        selection_mode="single-row",
    )
    sel = picked.selection.rows if picked is not None else []
    if sel and rows[sel[0]]["run"] != ws.run_id:
        ws.remember_run(rows[sel[0]]["run"])
        st.rerun()
