"""Home (/): what ffnlp is, the steps to follow, and the current data, model and run at a glance."""

import streamlit as st

from ffnlp_core.nn.shapes import count_parameters
from pages import _common as ui

ws = ui.workspace(wait_for_data=False)  # the data card says "counting words…" meanwhile
st.title("ffnlp: how a feedforward network learns to read comments")
st.write(
    "Load labeled comments, build a network, train it live and look inside: which layers learn, "
    "how the hidden representations separate the classes, and which words drive each prediction."
)

steps = [
    (
        "pages/data.py",
        "1. Data",
        "Use the built-in comments or upload a CSV of your own (text + label).",
        ":material/table:",
    ),
    ("pages/model.py", "2. Model", "Choose depth, widths, activation and dropout.", ":material/hub:"),
    (
        "pages/train.py",
        "3. Train",
        "Pick optimizer, learning rate, batch size; watch loss and accuracy live.",
        ":material/play_circle:",
    ),
    (
        "pages/gradients.py",
        "4. Look inside",
        "Gradient flow per layer, hidden representations, word effects.",
        ":material/stacked_line_chart:",
    ),
]
cols = st.columns(len(steps))
for col, (path, title, text, icon) in zip(cols, steps, strict=True):
    with col.container(border=True):
        ui.page_link(path, label=title, icon=icon)
        st.caption(text)

st.subheader("At a glance")
c1, c2, c3 = st.columns(3)


@st.fragment(run_every=None if ws.dataset_ready else 1.0)
def data_card() -> None:
    """The data at a glance; on a server's first page the bag of words may still be counted meanwhile."""
    st.markdown("**Data**")
    if not ws.dataset_ready:
        st.text(ws.dataset_name or ws.data_name)
        st.caption("counting words…")
        return
    if ws.dataset is None:
        st.caption("Nothing loaded yet.")
        return
    s = ws.dataset.summary()
    st.text(ws.dataset_name or ws.data_name)
    st.caption(
        f"{s['train_examples'] + s['dev_examples']:,} comments · {len(s['classes'])} classes · "
        f"vocabulary {s['vocab_size']:,}"
    )
    if not ready_at_start:
        st.rerun()  # ready now: one full rerun stops the polling and fills in the model card


ready_at_start = ws.dataset_ready
with c1.container(border=True):
    data_card()
with c2.container(border=True):
    st.markdown("**Model**")
    m = ws.config.model
    hidden = ", ".join(str(h) for h in m.hidden_sizes) or "none (logistic regression)"
    st.caption(f"hidden layers: {hidden} · activation {m.activation} · dropout {m.dropout:g}")
    if ws.dataset_ready and ws.dataset is not None:
        total = sum(count_parameters(ws.dataset.vocab_size, m.hidden_sizes, ws.dataset.n_classes))
        st.caption(f"{total:,} parameters")
with c3.container(border=True):
    st.markdown("**Run**")
    run = ui.current_run(ws)
    if run is None:
        st.caption("No run yet.")
    else:
        st.markdown(ui.status_line(run))
