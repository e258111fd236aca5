"""Train (/train): optimizer and schedule, Start/Stop, and the run streaming in live: progress, loss and
accuracy charts, then the final figures, the confusion matrix and this session's runs to compare."""

import copy
import time

import pandas as pd
import streamlit as st

from ffnlp_core.config import ENGINES, OPTIMIZERS, ConfigError
from ffnlp_core.plots import curves as plots
from ffnlp_core.train.devices import available_devices
from ffnlp_core.train.plan import check_fits
from pages import _common as ui

ws = ui.workspace()
ds = ui.need_data(ws)
t = ws.config.train
st.title("Train")

# --- settings -----------------------------------------------------------------------------------
c = st.columns(4)
with c[0]:
    ui.synced(
        st.selectbox,
        "train_optimizer",
        t.optimizer,
        lambda v: setattr(t, "optimizer", v),
        label="Optimizer",
        options=list(OPTIMIZERS),
        format_func=lambda k: OPTIMIZERS[k],
    )
    ui.synced(
        st.number_input,
        "train_seed",
        t.seed,
        lambda v: setattr(t, "seed", int(v)),
        label="Seed",
        min_value=0,
        max_value=2**31 - 1,
        step=1,
        help="Same seed, same data, same settings: same numbers.",
    )
with c[1]:
    ui.synced(
        st.number_input,
        "train_lr",
        t.lr,
        lambda v: setattr(t, "lr", float(v)),
        label="Learning rate",
        min_value=1e-6,
        max_value=10.0,
        format="%.5f",
        step=1e-4,
    )
    ui.synced(
        st.number_input,
        "train_weight_decay",
        t.weight_decay,
        lambda v: setattr(t, "weight_decay", float(v)),
        label="Weight decay",
        min_value=0.0,
        max_value=1.0,
        format="%.5f",
        step=1e-4,
    )
with c[2]:
    ui.synced(
        st.number_input,
        "train_batch_size",
        t.batch_size,
        lambda v: setattr(t, "batch_size", int(v)),
        label="Batch size",
        min_value=1,
        max_value=100_000,
        step=1,
    )
    ui.synced(
        st.number_input,
        "train_epochs",
        t.epochs,
        lambda v: setattr(t, "epochs", int(v)),
        label="Epochs",
        min_value=1,
        max_value=1000,
        step=1,
    )
with c[3]:
    ui.synced(
        st.number_input,
        "train_eval_every",
        t.eval_every,
        lambda v: setattr(t, "eval_every", int(v)),
        label="Evaluate on dev every N steps (0 = 10× per epoch)",
        min_value=0,
        max_value=1_000_000,
        step=50,
    )
    devices = dict(available_devices())
    ui.synced(
        st.selectbox,
        "train_device",
        t.device if t.device in devices else "cpu",
        lambda v: setattr(t, "device", v),
        label="Device",
        options=list(devices),
        format_func=devices.get,
    )
with st.container(key="advanced_train"), st.expander("Advanced", expanded=False):
    a = st.columns(4)
    with a[0]:
        ui.synced(
            st.selectbox,
            "train_engine",
            t.engine,
            lambda v: setattr(t, "engine", v),
            label="Engine",
            options=list(ENGINES),
            format_func=lambda k: f"{k}: {ENGINES[k]}",
        )
    with a[1]:
        ui.synced(
            st.toggle,
            "train_fast",
            t.fast,
            lambda v: setattr(t, "fast", bool(v)),
            label="CPU fast path",
            help="Hand-derived backprop with lazy row updates (same function and gradients as autograd).",
        )
    with a[2]:
        ui.synced(
            st.number_input,
            "train_snapshot_rows",
            t.snapshot_rows,
            lambda v: setattr(t, "snapshot_rows", int(v)),
            label="Dev rows captured for representations",
            min_value=0,
            max_value=5000,
            step=500,
        )
    with a[3]:
        ui.synced(
            st.number_input,
            "train_probe_every",
            t.probe_every,
            lambda v: setattr(t, "probe_every", int(v)),
            label="Gradient probe every N steps (0 = auto)",
            min_value=0,
            max_value=100_000,
            step=1,
        )


def start() -> None:
    """Start callback: submit the run before the page draws, so the page (and the URL) show it at once."""
    cfg = copy.deepcopy(ws.config)
    try:
        cfg.validate()
        check_fits(cfg, ds)
    except ConfigError as exc:
        st.session_state["train_error"] = f"Cannot start: {exc}"
        return
    job = ui.manager().submit(cfg, ds, owner=ws.sid, label=ws.data_name)
    ws.remember_run(job.run_id)


def stop() -> None:
    run = ui.current_run(ws)
    if run is not None:
        ui.manager().stop(run.run_id)


run = ui.current_run(ws)
running = run is not None and not run.done
b1, b2, b3 = st.columns([1, 1, 4])
b1.button(
    "Start",
    key="train_start",
    type="primary",
    icon=":material/play_arrow:",
    disabled=running,
    width="stretch",
    on_click=start,
)
b2.button(
    "Stop", key="train_stop", icon=":material/stop:", disabled=not running, width="stretch", on_click=stop
)
if st.session_state.get("train_error"):
    st.error(st.session_state.pop("train_error"), icon=":material/error:")
if not running:  # while a run is live, its own view below says how busy the server is, refreshed
    with b3:
        n_run, n_queued = ui.manager().active_count()
        st.caption(
            f"Server: {n_run} run(s) training, {n_queued} waiting · at most {ui.manager().max_concurrent} at once."
        )


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


def waiting(run) -> None:
    """A run in the queue: where it stands and why it waits; no charts until it starts (nothing to draw
    yet, and a class's 28 waiting pages then cost the server little)."""
    jm = ui.manager()
    position, (n_running, _) = jm.queue_position(run), jm.active_count()
    why = (
        "the training processes are still starting (a minute at most after the server starts)"
        if jm.starting_workers()
        else f"{n_running} run(s) training; it starts when one of them ends"
    )
    st.info(f"Waiting in the queue: position {position} · {why}.", icon=":material/hourglass_top:")
    st.progress(0.0, text=f"queued · position {position} · {run.cfg.train.epochs} epoch(s) to train")


def training(run) -> int:
    """Progress, live charts and, once it is over, the final figures; returns the steps done."""
    snap = run.read(
        lambda h: {
            "curves": h.curves(),
            "evals": h.eval_table(),
            "done": h.steps_done,
            "total": h.total_steps,
            "rate": h.examples_per_second,
            "epoch": h.epoch,
            "confusion": None if h.confusion is None else h.confusion.copy(),
            "summary": h.summary,
            "started": h.started,
        }
    )
    done, total = snap["done"], max(1, snap["total"])
    elapsed = time.time() - (getattr(run, "started_at", None) or time.time())
    left = elapsed / done * (total - done) if done and not run.done else 0
    st.progress(
        min(1.0, done / total),
        text=(
            f"{run.status} · step {done:,}/{total:,} · epoch {snap['epoch']}/{run.cfg.train.epochs} · "
            f"{snap['rate']:,.0f} examples/s" + (f" · ~{left:,.0f} s left" if left else "")
        ),
    )
    if run.status == "failed":
        st.error(run.reason, icon=":material/error:")
    with st.container(key="train_charts"):
        left_col, right_col = st.columns(2)
        left_col.plotly_chart(plots.loss_figure(snap["curves"], snap["evals"]), key="train_loss_chart")
        right_col.plotly_chart(
            plots.accuracy_figure(snap["curves"], snap["evals"]), key="train_accuracy_chart"
        )
    if run.done and snap["summary"]:
        s = snap["summary"]
        m = st.columns(5)
        m[0].metric("Dev accuracy", f"{s['dev_accuracy']:.3f}")
        m[1].metric("Train accuracy", f"{s['train_accuracy']:.3f}", help="over the last epoch")
        m[2].metric("Dev loss", f"{s['dev_loss']:.3f}")
        m[3].metric("Examples/s", f"{s['examples_per_second']:,.0f}", help="time in training steps only")
        m[4].metric("Steps", f"{s['steps']:,}")
        if snap["confusion"] is not None and snap["started"] is not None:
            st.plotly_chart(
                plots.confusion_figure(snap["confusion"], snap["started"].classes), key="train_confusion"
            )
    return done


@ui.live_fragment((FAST_POLL_SECONDS if fresh else interval) if running else None)
def live_view() -> None:
    run = ui.current_run(ws)
    if run is None:
        st.info("Press Start to train the network on the current data.", icon=":material/play_circle:")
        return
    run.touch()
    done = 0
    if run.status == "queued":
        waiting(run)
    else:
        done = training(run)
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
