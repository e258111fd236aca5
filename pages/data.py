"""Data (/data): built-in comments or an uploaded CSV, the text and label columns, the bag-of-words
settings, and what the data looks like (rows kept and dropped, class balance, vocabulary, examples)."""

import hashlib

import pandas as pd
import streamlit as st

from ffnlp_core.config import VECTORIZERS, declared
from ffnlp_core.data import samples
from ffnlp_core.data.dataset import examples_per_class, top_words
from ffnlp_core.data.errors import DataError
from ffnlp_core.data.reading import read_table
from ffnlp_core.plots import curves as plots
from pages import _common as ui
from pages import _widgets as widgets
from pages._widgets import setting

ws = ui.workspace()
cfg = ws.config.data
st.title("Data")
st.caption("Comments with a label each. The network sees each comment as a bag of words.")


def use_table(table, key: str, name: str, source: str) -> None:
    """A new file: remember it and preselect the inferred columns."""
    ws.table, ws.upload_key, ws.data_name, ws.data_error, ws.refused_upload = table, key, name, "", ""
    cfg.source, cfg.text_column, cfg.label_column = source, table.text_column, table.label_column
    cfg.class_names = {}  # a new file's classes are named afresh
    stale = [k for k in st.session_state if k.startswith("data_class_name_")]
    for k in [*stale, "data_text_column", "data_label_column"]:
        st.session_state.pop(k, None)


# --- where the comments come from --------------------------------------------------------------
mode = ui.synced(
    st.segmented_control,
    "data_mode",
    "upload" if cfg.source.startswith("upload:") else "builtin",
    lambda v: None,
    label="Source",
    options=["builtin", "upload"],
    format_func={"builtin": "Built-in comments", "upload": "Upload a CSV"}.get,
    required=True,
)
if mode == "builtin":
    current = cfg.source.split(":", 1)[1] if cfg.source.startswith("builtin:") else samples.DEFAULT_SAMPLE
    name = ui.synced(
        st.selectbox,
        "data_sample",
        current,
        lambda v: None,
        label="Built-in data set",
        options=list(samples.SAMPLES),
        format_func=lambda k: f"{k}: {samples.SAMPLES[k]}",
    )
    if ws.upload_key != f"builtin:{name}":
        use_table(ui.builtin_table(name), f"builtin:{name}", f"built-in: {name}", f"builtin:{name}")
else:
    upload = st.file_uploader(
        "CSV with one comment per row and a label column (comma, semicolon or tab separated; any encoding)",
        type=["csv", "tsv", "txt"],
        key="data_upload",
    )
    if upload is not None:
        data = upload.getvalue()
        key = f"upload:{upload.name}:{len(data)}:{hashlib.sha1(data).hexdigest()[:12]}"
        # Read a file once: not again on every rerun, whether it was taken or refused. The refused one's
        # key is kept apart from upload_key, which always names the file the current table came from.
        if key != ws.refused_upload and (key != ws.upload_key or ws.data_error):
            try:
                with st.spinner(f"Reading {upload.name}…"):
                    use_table(read_table(data, name=upload.name), key, upload.name, f"upload:{upload.name}")
            except DataError as exc:
                ws.data_error, ws.refused_upload = str(exc), key
    elif ws.table is not None and ws.upload_key.startswith("upload:"):
        st.caption(f"Using {ui.plain(ws.data_name)}, uploaded earlier. Upload another file to replace it.")

if ws.data_error:
    ui.error(ws.data_error)
    if ws.dataset is not None:
        st.caption(f"Still using the previous data: {ui.plain(ws.dataset_name)}.")
if ws.table is None:
    st.stop()

# --- columns and vectorizer ---------------------------------------------------------------------
table = ws.table
columns = list(table.frame.columns)
c1, c2 = st.columns(2)
with c1:
    text_col = ui.synced(
        st.selectbox,
        "data_text_column",
        cfg.text_column or table.text_column,
        lambda v: setattr(cfg, "text_column", v),
        label="Text column",
        options=columns,
    )
with c2:
    label_opts = table.label_candidates + [c for c in columns if c not in table.label_candidates]
    label_col = ui.synced(
        st.selectbox,
        "data_label_column",
        cfg.label_column or table.label_column,
        lambda v: setattr(cfg, "label_column", v),
        label="Label column",
        options=label_opts,
        help="Columns with few distinct values come first; pick one 0/1 column of a multi-label file.",
    )
cfg.text_column, cfg.label_column = text_col, label_col

with st.expander("Bag-of-words settings", expanded=False):
    v1, v2, v3, v4, v5 = st.columns(5)
    with v1:
        setting(
            ws,
            "data",
            "vectorizer",
            label="Values",
            help="\n".join(f"{k}: {d}" for k, d in VECTORIZERS.items()),
        )
    with v2:
        ngrams = {1: "words", 2: "words + pairs"}  # the declared range of ngram_max, named
        setting(ws, "data", "ngram_max", options=ngrams, key="data_ngrams")
    with v3:
        setting(ws, "data", "min_df")
    with v4:
        cap = declared(cfg)["max_features"]
        ui.synced(
            st.number_input,
            "data_max_features",
            cfg.max_features or 0,
            lambda v: setattr(cfg, "max_features", int(v) or None),
            label=f"{cap['label']} (0 = no limit)",
            min_value=0,
            max_value=int(cap["max"]),
            step=int(cap["step"]),
        )
    with v5:
        setting(ws, "data", "dev_fraction", key="data_dev_fraction")
    setting(ws, "data", "decode_entities")

# --- build the data set (only when something changed) -------------------------------------------
build_key = ui.dataset_key(ws)
if ws.dataset_key != build_key or ws.dataset is None:
    try:
        with st.spinner("Splitting and counting words…"):
            ws.dataset = ui.shared_dataset(table, cfg, ws.upload_key)
        ws.dataset_key, ws.data_error = build_key, ""
    except DataError as exc:
        ui.error(str(exc))
        if ws.dataset is not None:
            st.caption(
                f"Still using the previous data ({ui.plain(ws.dataset_name)}); fix the choice above to use this file."
            )
        ws.dataset_key = build_key
ds = ws.dataset
if ds is None:
    st.stop()

with st.expander("Name the classes", expanded=bool(cfg.class_names)):
    widgets.class_names(ws, ds)

# --- what the data looks like --------------------------------------------------------------------
s = ds.summary()
kept = s["train_examples"] + s["dev_examples"]
m1, m2, m3, m4 = st.columns(4)
m1.metric("Comments kept", f"{kept:,}", help=f"train {s['train_examples']:,} · dev {s['dev_examples']:,}")
m2.metric(
    "Dropped",
    f"{sum(s['dropped'].values()):,}",
    help="; ".join(f"{k}: {v}" for k, v in s["dropped"].items()) or "none",
)
m3.metric("Vocabulary", f"{s['vocab_size']:,} words")
m4.metric(
    "Sparsity",
    f"{s['sparsity']:.2%}",
    help=f"{s['words_per_comment']:.1f} distinct words per comment on average",
)
for reason, count in s["dropped"].items():
    st.caption(f"Dropped {count:,} rows: {ui.plain(reason)}.")
for note in ds.labeled.notes:
    st.caption(ui.plain(note))  # may quote the file's values

left, right = st.columns(2)
with left:
    ui.chart(st, plots.class_balance_figure(s["class_counts"], s["classes"]), key="data_balance")
with right:
    words = top_words(ds, 20)
    ui.chart(
        st,
        plots.bar_figure([w for w, _ in words], [c for _, c in words], "Most frequent words", "total"),
        key="data_top_words",
    )

st.subheader("Examples per class")
rows = [{"class": c, "comment": t} for c, texts in examples_per_class(ds).items() for t in texts]
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")  # plain text, never HTML
