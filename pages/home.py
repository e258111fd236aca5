"""Home (/): what ffnlp is, the steps to follow, and the current data, model and run at a glance."""

import streamlit as st

from ffnlp_core.nn.shapes import count_parameters
from pages import _common as ui

ws = ui.workspace()
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
with c1.container(border=True):
    st.markdown("**Data**")
    if ws.dataset is None:
        st.caption("Nothing loaded yet.")
    else:
        s = ws.dataset.summary()
        st.text(ws.data_name)
        st.caption(
            f"{s['train_examples'] + s['dev_examples']:,} comments · {len(s['classes'])} classes · "
            f"vocabulary {s['vocab_size']:,}"
        )
with c2.container(border=True):
    st.markdown("**Model**")
    m = ws.config.model
    hidden = ", ".join(str(h) for h in m.hidden_sizes) or "none (logistic regression)"
    st.caption(f"hidden layers: {hidden} · activation {m.activation} · dropout {m.dropout:g}")
    if ws.dataset is not None:
        total = sum(count_parameters(ws.dataset.vocab_size, m.hidden_sizes, ws.dataset.n_classes))
        st.caption(f"{total:,} parameters")
with c3.container(border=True):
    st.markdown("**Run**")
    run = ui.current_run(ws)
    if run is None:
        st.caption("No run yet.")
    else:
        st.markdown(ui.status_line(run))
