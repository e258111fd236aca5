"""The figures a teacher cites for a finished run, shared by Train and Compare runs: the per-class table
(precision, recall, F1, support, with the class names), macro F1 and weighted F1, and the network beside
its baselines on the same split and bag of words (majority class, logistic regression)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ffnlp_core.inspect import metrics


def panel(run, confusion, prefix: str) -> None:
    """Draw the run's figures (keys `<prefix>_per_class`, `<prefix>_baselines`)."""
    names = list(run.class_names)
    net = metrics.report_from_confusion(confusion, names)
    st.markdown(
        f"**Per class on dev** · macro F1 **{net['macro_f1']:.3f}** · weighted F1 **{net['weighted_f1']:.3f}** "
        f"· accuracy {net['accuracy']:.3f}"
    )
    number = {k: st.column_config.NumberColumn(format="%.3f") for k in ("precision", "recall", "f1")}
    st.dataframe(
        pd.DataFrame(net["per_class"]), hide_index=True, column_config=number, key=f"{prefix}_per_class"
    )
    if run.ds is None:
        st.caption("Baselines need the run's data set in memory: train the run again to compare them.")
        return
    with st.spinner("Training the logistic-regression baseline on the same bag of words…"):
        found = metrics.baselines(run.ds)
    rows = [{"model": "this network", **{k: net[k] for k in ("accuracy", "macro_f1", "weighted_f1")}}]
    rows += [
        {"model": name, **{k: b[k] for k in ("accuracy", "macro_f1", "weighted_f1")}}
        for name, b in found.items()
    ]
    with st.container(key=f"{prefix}_baselines"):
        st.markdown("**Baselines** on the same split and bag of words")
        st.dataframe(
            pd.DataFrame(rows),
            hide_index=True,
            column_config={k: st.column_config.NumberColumn(format="%.3f") for k in rows[0] if k != "model"},
        )
        st.caption(
            metrics.verdict(net, found)
            + f" The majority class always predicts '{found[metrics.MAJORITY]['predicts']}'."
        )
