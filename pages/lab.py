"""Noise lab (/lab): flip a share of the training labels (seeded) or starve a class, train, and watch the
network memorize the mistakes: train accuracy climbs while dev accuracy falls. Per-class precision,
recall and F1 on dev, and the highest-loss training comments, live, with which of them were flipped."""

import copy

import numpy as np
import streamlit as st

from ffnlp_core.config import MAX_SEED, ModelConfig
from ffnlp_core.data.dataset import build_dataset
from ffnlp_core.inspect import compare
from ffnlp_core.plots import curves as plots
from pages import _common as ui
from pages import _run_panel as panel

ws = ui.workspace()
ds = ui.need_data(ws)
st.title("Noise lab")
st.caption(
    "Real labels are noisy. Flip some training labels on purpose and train for many epochs: the network "
    "first learns the rule, then memorizes the wrong labels, and gets worse on the untouched dev split."
)

c = st.columns(4)
c[0].slider("Training labels flipped", 0.0, 0.5, 0.3, 0.05, key="lab_noise", format="%.2f")
c[1].number_input("Epochs", 1, 500, 20, key="lab_epochs", help="Memorizing takes many passes over the data.")
c[2].toggle(
    "Big ReLU network",
    True,
    key="lab_big",
    help="Two ReLU layers of 256 units: big enough to memorize the flipped labels. Off: the network from the Model page.",
)
c[3].number_input("Hardest comments to list", 5, 200, 20, key="lab_hard")
with st.container(key="advanced_lab"), st.expander("Imbalance and seed", expanded=False):
    a = st.columns(3)
    a[0].number_input("Noise seed", 0, MAX_SEED, 0, key="lab_seed")
    a[1].selectbox("Keep only part of a class", ["(none)", *ds.class_names], key="lab_class")
    a[2].slider("Share of that class kept", 0.05, 1.0, 0.25, 0.05, key="lab_keep")


def make():
    """The noisy data set and its run's settings, from this page's widgets."""
    s = st.session_state
    cfg = copy.deepcopy(ws.config)
    cfg.data.label_noise, cfg.data.noise_seed = float(s["lab_noise"]), int(s.get("lab_seed", 0))
    starved = s.get("lab_class", "(none)")
    cfg.data.subsample_class = None if starved == "(none)" else starved
    cfg.data.subsample_keep = float(s.get("lab_keep", 1.0)) if cfg.data.subsample_class else 1.0
    cfg.train.epochs, cfg.train.hard_examples = int(s["lab_epochs"]), int(s["lab_hard"])
    if s["lab_big"]:
        cfg.model = ModelConfig(hidden_sizes=[256, 256], activation="relu", dropout=0.0)
    cfg.data.validate()  # before building the data set
    label = f"noise lab: {cfg.data.label_noise:.0%} flipped" + (
        f", {starved} kept {cfg.data.subsample_keep:.0%}" if cfg.data.subsample_class else ""
    )
    return cfg, build_dataset(ws.dataset.labeled, cfg.data), label


def remember(run_id: str) -> None:
    st.query_params["run"] = run_id  # the run every page (and the sidebar) shows from now on
    ws.extras["lab_run"] = run_id


lab_id = ws.extras.get("lab_run")
run = panel.buttons(
    ws, "lab", make, run_id=lab_id, label="Train", icon=":material/science:", remember=remember
)
running = run is not None and not run.done


@ui.live_fragment(ui.poll_seconds() if running else None)
def live() -> None:
    r = ui.manager().open_run(lab_id) if lab_id else None
    if r is None:
        st.info("Choose how many labels to flip and press Train.", icon=":material/science:")
        return
    r.touch()
    snap = r.read(
        lambda h: {
            "curves": h.curves(),
            "evals": h.eval_table(),
            "confusion": None if h.confusion is None else h.confusion.copy(),
            "hard": h.hard,
        }
    )
    panel.progress(r)
    lab_ds = r.ds
    if lab_ds is not None and lab_ds.train_flipped is not None:
        flipped = lab_ds.train_flipped
        st.caption(
            f"{int(flipped.sum()):,} of {len(flipped):,} training labels flipped ({flipped.mean():.1%}); "
            f"the {len(lab_ds.y_dev):,} dev labels are untouched."
        )
    ev = snap["evals"]
    if len(ev["step"]):
        best = int(np.argmax(ev["dev_accuracy"]))
        m = st.columns(3)
        m[0].metric("Train accuracy (on the labels given)", f"{ev['train_accuracy'][-1]:.3f}")
        m[1].metric(
            "Dev accuracy",
            f"{ev['dev_accuracy'][-1]:.3f}",
            f"{ev['dev_accuracy'][-1] - ev['dev_accuracy'][best]:+.3f} since its best",
        )
        m[2].metric(
            "Best dev accuracy",
            f"{ev['dev_accuracy'][best]:.3f}",
            f"at step {int(ev['step'][best]):,}",
            delta_color="off",
            delta_arrow="off",
        )
    with st.container(key="lab_charts"):
        left, right = st.columns(2)
        ui.chart(left, plots.accuracy_figure(snap["curves"], ev), key="lab_accuracy")
        ui.chart(right, plots.loss_figure(snap["curves"], ev), key="lab_loss")
    if snap["confusion"] is not None:
        st.subheader("Per class on dev")
        st.dataframe(
            compare.per_class_metrics(snap["confusion"], r.class_names),
            hide_index=True,
            column_config={
                k: st.column_config.NumberColumn(format="%.3f") for k in ("precision", "recall", "F1")
            },
            key="lab_per_class",
        )
    st.subheader("The hardest training comments")
    if snap["hard"] is None or lab_ds is None:
        st.caption("Listed at each evaluation while the run is in memory.")
    else:
        table = compare.hard_table(lab_ds, snap["hard"])
        share = lab_ds.train_flipped.mean() if lab_ds.train_flipped is not None else 0.0
        st.caption(compare.hard_reading(snap["hard"].step, int(table["flipped"].sum()), len(table), share))
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            height=min(740, 35 * (len(table) + 1) + 3),
            column_config={"loss": st.column_config.NumberColumn(format="%.2f")},
            key="lab_hard_table",
        )
    if running and r.done:
        st.rerun()


live()
