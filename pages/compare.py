"""Compare runs (/compare): this session's finished runs (every run on the server one click away) on the
same loss and accuracy charts, what differs between their configurations, the best by dev accuracy;
downloads (model, metrics CSV, charts HTML), uploading a downloaded model back, a link sharing this setup."""

import datetime as dt
import hashlib

import pandas as pd
import streamlit as st

from ffnlp_core.inspect import compare
from ffnlp_core.plots import compare as compare_plots
from ffnlp_core.plots import curves as plots
from ffnlp_core.runs.bundle import BundleError, export_bundle
from ffnlp_core.session import urlstate
from pages import _common as ui

ws = ui.workspace()
st.title("Compare runs")
st.caption("Put runs side by side: same charts, the settings that differ, and which one did best on dev.")


def show_everywhere(run_id: str) -> None:
    """Make run_id the run every page shows (the URL too, so the next run of the app keeps it)."""
    ws.remember_run(run_id)
    st.query_params["run"] = run_id
    st.rerun()


listed = [
    r
    for r in ui.manager().store.list_runs()
    if r.get("status") in compare.DONE_OK and (r.get("summary") or {}).get("dev_accuracy") is not None
]
mine = [r for r in listed if r["id"] in ws.run_ids]  # this session's runs, and runs a shared link opened
scope = st.segmented_control(
    "Runs",
    ["mine", "server"],
    default="mine",
    key="compare_scope",
    format_func={
        "mine": f"This session's ({len(mine)})",
        "server": f"Every run on this server ({len(listed)})",
    }.get,
    required=True,
)
shown = mine if scope == "mine" else listed
by_id = {r["id"]: r for r in shown}
if not shown:
    st.info(
        "No finished runs yet: train one (or two, with different settings) first."
        + (" Other sessions' runs are one click away above." if listed else "")
    )
else:
    table = pd.DataFrame(
        {
            "run": r["id"],
            "this session": r["id"] in ws.run_ids,
            "label": r.get("label", ""),
            "status": r["status"],
            "created": dt.datetime.fromtimestamp(r.get("created", 0)),
            "dev accuracy": r["summary"]["dev_accuracy"],
            "hidden": ", ".join(map(str, r["config"]["model"]["hidden_sizes"])) or "none",
            "activation": r["config"]["model"]["activation"],
        }
        for r in shown
    )
    with st.expander(f"The {len(shown)} finished runs listed", expanded=False):
        st.dataframe(table, hide_index=True, width="stretch", key="compare_all")
    chosen = st.multiselect(
        "Runs to compare",
        options=list(by_id),
        default=list(by_id)[:4] if scope == "mine" else list(by_id)[:3],
        key="compare_runs",
        format_func=lambda rid: f"{rid} · dev acc {by_id[rid]['summary']['dev_accuracy']:.3f}",
    )
    if chosen:
        series, summaries = [], {}
        for rid in chosen:
            run = ui.manager().open_run(rid)
            if run is None:
                continue
            s = compare.read_series(run)
            series.append((rid, s["curves"], s["evals"]))
            summaries[rid] = s["summary"]
        with st.container(key="compare_charts"):
            left, right = st.columns(2)
            ui.chart(left, compare_plots.overlay_figure(series, "loss"), key="compare_loss")
            ui.chart(right, compare_plots.overlay_figure(series, "accuracy"), key="compare_accuracy")
        st.markdown("**Figures to cite** (dev split; baselines on the same split and bag of words)")
        figures = pd.DataFrame(compare.figures_rows({rid: ui.manager().open_run(rid) for rid in summaries}))
        st.dataframe(figures, hide_index=True, width="stretch", key="compare_figures")
        diff = compare.config_diff({rid: by_id[rid]["config"] for rid in summaries})
        st.markdown("**What differs**")
        if diff.empty:
            st.caption("These runs have the same configuration.")
        else:
            st.dataframe(diff, hide_index=True, width="stretch", key="compare_diff")
        best = compare.best_run(summaries)
        if best:
            b1, b2 = st.columns([3, 1])
            b1.success(
                f"Best by dev accuracy: `{best}` ({summaries[best]['dev_accuracy']:.3f})",
                icon=":material/trophy:",
            )
            use = b2.button(
                "Use it",
                key="compare_use_best",
                disabled=best == ws.run_id,
                help="Show the best run on every page (Gradients, Representations, Try it, ...).",
            )
            if use:
                show_everywhere(best)

# --- downloads ----------------------------------------------------------------------------------
st.subheader("Download")
run = ui.current_run(ws)
if run is None or not run.done:
    st.caption("The current run's model, metrics and charts can be downloaded once it has finished.")
else:
    s = compare.read_series(run)
    st.caption(f"The current run: `{run.run_id}`.")
    d = st.columns(3)
    model = run.model
    if model is not None:
        d[0].download_button(
            "Model (.zip)",
            help="Weights (safetensors), configuration and vocabulary: upload it again below.",
            data=lambda: export_bundle(run.cfg, model, run.vectorizer, run.class_names),
            file_name=f"ffnlp-{run.run_id}.zip",
            mime="application/zip",
            key="compare_dl_model",
            on_click="ignore",
            icon=":material/download:",
        )
    d[1].download_button(
        "Metrics (.csv)",
        data=lambda: compare.metrics_csv(s["curves"], s["evals"]),
        file_name=f"ffnlp-{run.run_id}-metrics.csv",
        mime="text/csv",
        key="compare_dl_csv",
        on_click="ignore",
        icon=":material/download:",
    )
    d[2].download_button(
        "Charts (.html)",
        help="The loss and accuracy charts as one HTML file that works offline.",
        data=lambda: compare_plots.charts_html(
            [plots.loss_figure(s["curves"], s["evals"]), plots.accuracy_figure(s["curves"], s["evals"])],
            f"ffnlp run {run.run_id}",
        ),
        file_name=f"ffnlp-{run.run_id}-charts.html",
        mime="text/html",
        key="compare_dl_html",
        on_click="ignore",
        icon=":material/download:",
    )
    st.caption("A chart as PNG: the camera icon above any chart saves it from your browser.")

with st.container(key="advanced_compare_upload"):
    upload = st.file_uploader("Upload a model downloaded here (.zip)", type=["zip"], key="compare_upload")
    if upload is not None:
        data = upload.getvalue()
        key = f"{len(data)}:{hashlib.sha1(data).hexdigest()}"
        if ws.extras.get("imported_key") != key:
            try:
                run_id = compare.import_as_run(ui.manager().store, data, owner=ws.sid, name=upload.name)
                ws.extras.update(imported_key=key, imported_model=run_id, import_error="")
                show_everywhere(run_id)
            except BundleError as exc:
                ws.extras.update(imported_key=key, import_error=str(exc))
        if ws.extras.get("import_error"):
            st.error("This file cannot be used as a model:", icon=":material/error:")
            st.code(ws.extras["import_error"], language=None, wrap_lines=True)  # plain text, never markdown
        elif ws.extras.get("imported_model"):
            st.success(
                f"Loaded as run `{ws.extras['imported_model']}` (weights only, checked against its config). "
                "Try it, Gradients and Representations now use it.",
                icon=":material/upload:",
            )

# --- share ----------------------------------------------------------------------------------------
st.subheader("Share this setup")
classroom = st.toggle("Classroom view (larger type, advanced controls hidden)", key="compare_share_classroom")
link = urlstate.share_link(st.context.url or "http://localhost:8501/", ws.config, "model", classroom)
with st.container(key="compare_share"):
    st.code(link, language=None, wrap_lines=True)
st.caption(
    "Opening the link restores the data choice and every setting (not the trained weights), "
    "like TensorFlow Playground's URL."
)
for note in urlstate.encode(ws.config)[1]:
    st.caption(f"Note: {note}.")
