"""Model (/model): depth, widths, activation, dropout and weight initialization; a Lightning-style summary, a diagram, and where
the parameters sit. Changing a network that has already been trained asks before starting over."""

import pandas as pd
import streamlit as st

from ffnlp_core.config import ACTIVATIONS, MAX_HIDDEN_LAYERS, MAX_HIDDEN_WIDTH, ModelConfig, declared
from ffnlp_core.nn.shapes import count_parameters
from ffnlp_core.plots import curves as plots
from pages import _common as ui

ws = ui.workspace()
ds = ui.need_data(ws)
st.title("Model")
st.caption(
    "A feedforward network: the bag of words goes through the hidden layers, then the output layer scores each class."
)

current = ws.config.model


def trained_run():
    """The workspace's latest finished run, if its network differs from the one being edited."""
    run = ui.current_run(ws)
    return run if run is not None and run.status in ("finished", "stopped") else None


@st.dialog("Start over with a new network?")
def confirm(new: ModelConfig, run_id: str) -> None:
    st.write(
        f"Run `{run_id}` trained the current network. A new shape means new, untrained weights. "
        "The trained run is kept: it stays in your run history and on the Compare page."
    )
    a, b = st.columns(2)
    if a.button("Use the new network", type="primary", key="model_confirm_yes"):
        ws.config.model = new
        st.rerun()
    if b.button("Keep the trained one", key="model_confirm_no"):
        for k in [k for k in st.session_state if k.startswith("model_")]:
            del st.session_state[k]  # the form shows the kept network again
        st.rerun()


DECLARED = declared(ModelConfig)
with st.form("model_form", border=True):
    f1, f2, f3, f4, f5 = st.columns(5)
    n_layers = f1.number_input(
        "Hidden layers",
        0,
        MAX_HIDDEN_LAYERS,
        len(current.hidden_sizes),
        key="model_layers",
        help="0 hidden layers is logistic regression.",
    )
    width = f2.number_input(
        "Width of each layer",
        1,
        MAX_HIDDEN_WIDTH,
        current.hidden_sizes[0] if current.hidden_sizes else 100,
        key="model_width",
    )
    activation = f3.selectbox(
        "Activation",
        list(ACTIVATIONS),
        index=list(ACTIVATIONS).index(current.activation),
        key="model_activation",
        help="\n".join(f"{k}: {v}" for k, v in ACTIVATIONS.items()),
    )
    drop = DECLARED["dropout"]
    dropout = f4.slider(
        drop["label"], drop["min"], drop["max"], float(current.dropout), drop["step"], key="model_dropout"
    )
    inits = DECLARED["init"]
    init = f5.selectbox(
        inits["label"],
        list(inits["choices"]),
        index=list(inits["choices"]).index(current.init),
        key="model_init",
        help=inits["help"] + "\n\n" + "\n".join(f"{k}: {v}" for k, v in inits["choices"].items()),
    )
    uneven = len(set(current.hidden_sizes)) > 1
    custom = st.text_input(
        "Or give each layer its own width (input to output)",
        ", ".join(map(str, current.hidden_sizes)) if uneven else "",
        key="model_widths",
        placeholder="e.g. 200, 100, 50 (leave empty to use the two fields above)",
    )
    submitted = st.form_submit_button("Apply", type="primary", icon=":material/check:")

if submitted:
    try:
        hidden = (
            [int(w) for w in custom.replace(";", ",").split(",") if w.strip()]
            if custom.strip()
            else [int(width)] * int(n_layers)
        )
        new = ModelConfig(hidden_sizes=hidden, activation=activation, dropout=float(dropout), init=init)
        new.validate()
    except ValueError as exc:
        ui.error(f"That network cannot be built: {exc}")
        new = current
    if new != current:
        run = trained_run()
        if run is not None and run.cfg.model == current:
            confirm(new, run.run_id)
        else:
            ws.config.model = new
            st.rerun()

m = ws.config.model
params = count_parameters(ds.vocab_size, m.hidden_sizes, ds.n_classes)
names = [f"layer_{i}" for i in range(len(m.hidden_sizes))] + ["output_layer"]
widths_in = [ds.vocab_size, *m.hidden_sizes]
widths_out = [*m.hidden_sizes, ds.n_classes]
total = sum(params)
st.subheader("Summary")
left, right = st.columns([3, 2])
with left:
    summary = pd.DataFrame(
        {
            "name": names,
            "type": ["SparseLinear"] + ["Linear"] * (len(names) - 1),
            "shape": [f"{a:,} → {b:,}" for a, b in zip(widths_in, widths_out, strict=True)],
            "params": [f"{p:,}" for p in params],
            "share": [f"{p / total:.1%}" for p in params],
        }
    )
    st.dataframe(summary, hide_index=True, width="stretch")
    st.markdown(
        f"**{total:,}** trainable parameters · **{total * 4 / 1e6:.2f} MB** in float32 · "
        f"**{params[0] / total:.0%}** of them in {names[0]} (one row of {widths_out[0]} weights per word of the vocabulary)."
    )
    if m.activation == "none" and m.hidden_sizes:
        st.info(
            "Without an activation, stacked layers collapse into one linear map: this network can only "
            "learn what logistic regression can. Try relu to model interactions between words.",
            icon=":material/lightbulb:",
        )
with right:
    st.graphviz_chart(plots.model_dot(ds.vocab_size, m.hidden_sizes, ds.n_classes, m.activation, params))
