"""Try it (/playground): type a comment and see what the current model predicts and which words drove it
(each word removed in turn: how much the probability moves), explain any dev comment the same way, and see
which words push hardest toward each class through the whole network, and how a word's company changes it.
Live while the run trains: everything is measured again at each evaluation."""

import pandas as pd
import streamlit as st

from ffnlp_core.inspect import explain
from ffnlp_core.runs.worker import WEIGHTS_EVERY_SECONDS
from pages import _common as ui

# A training run's model reaches the server at most every WEIGHTS_EVERY_SECONDS: polling faster redraws
# the same numbers.
REFRESH_FACTOR = WEIGHTS_EVERY_SECONDS / ui.POLL_SECONDS

ws = ui.workspace()
st.title("Try it")
st.caption(
    "Each word's effect is measured, not guessed: the word is removed (every occurrence, and the word "
    "pairs it is in) and the network predicts again. Green raises the probability, red lowers it."
)
run = ui.current_run(ws)
if run is None:
    st.info("No model yet: train one first, or upload a downloaded model on Compare runs.")
    ui.page_link("pages/train.py", label="Go to Train", icon=":material/play_circle:")
    st.stop()
running = not run.done


def model_state(r) -> dict | None:
    """The frozen model and its vocabulary effects, measured again whenever the run's weights change."""
    model = r.model
    if model is None:
        return None
    key = (r.run_id, explain.weights_fingerprint(model))
    cache = st.session_state.get("play_cache")
    if cache is None or cache["key"] != key:
        p = explain.predictor(model, r.vectorizer, r.class_names)
        words, solo = explain.solo_effects(p)
        step = r.read(lambda h: h.evals[-1]["step"] if h.evals else 0)
        cache = {"key": key, "p": p, "words": words, "solo": solo, "step": step}
        st.session_state["play_cache"] = cache
    return cache


devs = explain.dev_comments(run, ws.dataset)
if "play_text" not in st.session_state:
    st.session_state["play_text"] = devs[0][0] if devs else ""


def use_dev() -> None:
    i = st.session_state.get("play_dev")
    if i is not None:
        st.session_state["play_text"] = devs[i][0]


st.text_area(
    "Your comment",
    key="play_text",
    height=90,
    placeholder="Type or paste a comment",
    max_chars=explain.MAX_EXPLAIN_CHARS,
)
left, right = st.columns([3, 1])
left.selectbox(
    "Or explain a dev comment",
    options=range(len(devs)),
    index=None,
    key="play_dev",
    on_change=use_dev,
    format_func=lambda i: f"[{devs[i][1]}] {devs[i][0][:140]}",
    placeholder="Pick a comment from the dev split",
)
right.selectbox(
    "Color by the effect on",
    options=["predicted", *run.class_names],
    key="play_target",
    format_func=lambda c: "the predicted class" if c == "predicted" else f"P({c})",
)


def draw_explanation(r, state: dict) -> None:
    try:
        e = explain.explain(state["p"], st.session_state.get("play_text", ""))
    except ValueError as exc:  # longer than Try it explains
        ui.error(f"Cannot explain this comment: {exc}.")
        return
    chosen = st.session_state.get("play_target", "predicted")
    target = e.predicted if chosen not in e.classes else e.classes.index(chosen)
    m, probs = st.columns([1, 2])
    m.metric(
        "Prediction",
        e.classes[e.predicted],
        f"{e.probs[e.predicted]:.1%} sure",
        delta_color="off",
        delta_arrow="off",
    )
    with probs.container(key="play_probs"):
        st.dataframe(
            pd.DataFrame({"class": e.classes, "probability": e.probs}),
            hide_index=True,
            column_config={
                "probability": st.column_config.ProgressColumn(format="%.3f", min_value=0, max_value=1)
            },
        )
    with st.container(key="play_colored", border=True):
        st.html(explain.render_html(e, target))
    st.caption(
        f"Colored by the change in P({'the predicted class' if chosen == 'predicted' else 'the chosen class'}) "
        "when the word is removed. Grey struck-out words are not in the vocabulary: the network ignores them."
        + (f" Model of step {state['step']:,} (the run is still training)." if not r.done else "")
    )
    if e.words:
        st.dataframe(pd.DataFrame(e.table(target)), hide_index=True, width="stretch")


def draw_vocabulary(state: dict) -> None:
    """The words that push hardest toward each class, a word's effect, and a word in company."""
    st.subheader("Which words push toward each class")
    st.caption(
        "For every word of the vocabulary: P(class | a comment of only that word) − P(class | an empty "
        "comment), through all the layers. Measured again at each evaluation."
    )
    p, words, solo = state["p"], state["words"], state["solo"]
    shown = p.classes[:4]
    for col, (c, name) in zip(st.columns(len(shown)), enumerate(shown), strict=True):
        top = explain.top_words(words, solo, c, k=10)
        col.dataframe(
            pd.DataFrame(top, columns=["word", f"toward {name}"]),
            hide_index=True,
            width="stretch",
        )
    texts = [t for t, _ in devs]
    word = st.text_input("Look up a word", key="play_word", placeholder="e.g. jerk").strip().lower()
    if word:
        if word not in words:
            st.warning(
                "That word is not in the vocabulary: the network never sees it.", icon=":material/search_off:"
            )
        else:
            mean, n = explain.average_effect(p, word, texts)
            table = pd.DataFrame(
                {
                    "class": p.classes,
                    "alone (vs empty comment)": solo[words.index(word)],
                    f"mean effect in the {n} dev comments holding it (by removal)": mean,
                }
            )
            with st.container(key="play_word_table"):
                st.dataframe(table, hide_index=True)
    st.markdown("**A word's effect depends on its company**")
    a, b = st.columns(2)
    first = (
        a.text_input("Word", value="jerk" if "jerk" in words else words[0], key="play_word_a").strip().lower()
    )
    partner = b.text_input("Beside", value="chicken" if "chicken" in words else words[-1], key="play_word_b")
    partner = partner.strip().lower()
    if first not in words or partner not in words:
        st.caption("Both words must be in the vocabulary.")
        return
    c = explain.company_effects(p, first, partner, texts)
    grid = pd.DataFrame(c["probs"], columns=[f"P({n})" for n in p.classes])
    grid.insert(0, "comment", [repr(t) for t in c["comments"]])
    box = st.container(key="play_company")
    box.dataframe(grid, hide_index=True)
    rows = [
        ("to an empty comment", c["effect_alone"]),
        ("to a comment holding its partner", c["effect_with_partner"]),
        (f"in {c['n_alone']} dev comments without the partner (mean, by removal)", c["dev_alone"]),
        (f"in {c['n_with_partner']} dev comments with the partner (mean, by removal)", c["dev_with_partner"]),
    ]
    effect = pd.DataFrame([e for _, e in rows], columns=[f"effect on P({n})" for n in p.classes])
    effect.insert(0, "adding the first word", [label for label, _ in rows])
    box.dataframe(effect, hide_index=True)
    st.caption(
        "A linear model gives a word one fixed push. A network with a nonlinear hidden layer can let the "
        "same word push one way alone and the other way beside its partner."
    )


@ui.live_fragment(ui.poll_seconds(REFRESH_FACTOR) if running else None, REFRESH_FACTOR)
def live() -> None:
    """One polling fragment for the whole page: it redraws with the newest model at each evaluation."""
    r = ui.current_run(ws)
    r.touch()
    state = model_state(r)
    if state is None:
        st.info("The model shows up here at the run's first evaluation.", icon=":material/hourglass_top:")
    else:
        draw_explanation(r, state)
        draw_vocabulary(state)
    if running and r.done:
        st.rerun()


live()
