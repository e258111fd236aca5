"""Tests for ffnlp_core.explain: occlusion effects are the probability differences computed directly, words
outside the vocabulary are ignored, the renderer keeps hostile text literal, and the vocabulary views
measure the whole network."""

from __future__ import annotations

import copy
import html
import re

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from ffnlp_core.data.dataset import build_dataset, load_source
from ffnlp_core.inspect import explain as ex
from ffnlp_core.nn.inputs import to_torch_csr
from ffnlp_core.train.plan import build_model

COMMENT = "Honestly, that JERK ate jerk chicken at the market, zebra!"


@torch.no_grad()
def direct(model, x: sp.csr_matrix) -> np.ndarray:
    """P(class | rows) straight from the model, in eval mode, without the explain module."""
    model.eval()
    logits, _ = model(to_torch_csr(x))
    return torch.softmax(logits, dim=1).numpy()


@pytest.fixture(scope="module")
def words_model(shared_run):
    return ex.predictor(shared_run.model, shared_run.ds.vectorizer, shared_run.ds.class_names)


@pytest.fixture(scope="module")
def pairs_run(make_config, run_events):
    """One epoch on words + word pairs (bigrams)."""
    cfg = make_config(ngram_max=2, hidden_sizes=[16], activation="relu", lr=0.01, epochs=1, snapshot_rows=0)
    ds = build_dataset(load_source(cfg.data), cfg.data)
    model = build_model(cfg, ds)
    run_events(cfg, ds, model=model)
    return ds, model


def test_occlusion_equals_predicting_without_the_word(shared_run, words_model):
    e = ex.explain(words_model, COMMENT)
    full = direct(shared_run.model, shared_run.ds.vectorizer.transform([COMMENT]))[0]
    np.testing.assert_allclose(e.probs, full, atol=1e-6)
    for word in ("jerk", "chicken", "market", "honestly"):
        # remove every occurrence from the raw text (any case) and predict again
        without = re.sub(rf"\b{word}\b", " ", COMMENT, flags=re.IGNORECASE)
        p_without = direct(shared_run.model, shared_run.ds.vectorizer.transform([without]))[0]
        np.testing.assert_allclose(e.effects[e.words.index(word)], full - p_without, atol=1e-6)
    # the key words matter: removing "chicken" moves the probabilities by more than a few points
    assert abs(e.effect("chicken", 1)) > 0.05
    assert e.effects.shape == (len(e.words), 2)


def test_with_pairs_removing_a_word_also_removes_its_pairs_and_forms_no_new_one(pairs_run):
    ds, model = pairs_run
    p = ex.predictor(model, ds.vectorizer, ds.class_names)
    text = "that guy jerk chicken at the market"
    e = ex.explain(p, text)
    x = ds.vectorizer.transform([text]).tolil()
    index = ds.vectorizer.index_
    gone = [f for f in ("jerk", "guy jerk", "jerk chicken") if f in index]
    assert "jerk chicken" in gone  # the dish is a feature of the vocabulary
    for f in gone:
        x[0, index[f]] = 0.0  # the input with jerk and every pair holding it removed, by hand
    expected = direct(model, ds.vectorizer.transform([text]))[0] - direct(model, x.tocsr())[0]
    np.testing.assert_allclose(e.effects[e.words.index("jerk")], expected, atol=1e-6)
    # "guy chicken" would appear if the word were simply deleted from the text; it must not
    assert "guy chicken" not in ex.occlusion_texts(ds.vectorizer, text.split(), ["jerk"])[1]


def test_effects_sum_to_zero_over_classes(words_model):
    e = ex.explain(words_model, COMMENT)
    np.testing.assert_allclose(e.effects.sum(axis=1), 0.0, atol=1e-6)
    assert e.probs.sum() == pytest.approx(1.0, abs=1e-6)


def test_words_outside_the_vocabulary_are_ignored_with_no_effect(words_model):
    e = ex.explain(words_model, COMMENT)
    assert e.ignored == {"ate", "zebra"}
    assert e.effect("zebra", 0) == 0.0 and e.effect("ate", 1) == 0.0
    shown = [pc for pc in e.pieces if pc.word == "zebra"]
    assert len(shown) == 1 and shown[0].ignored and shown[0].text == "zebra"
    assert not any(pc.ignored for pc in e.pieces if pc.word == "jerk")


def test_pieces_rebuild_the_comment_exactly(words_model):
    e = ex.explain(words_model, COMMENT)
    assert "".join(pc.text for pc in e.pieces) == COMMENT
    assert [pc.text for pc in e.pieces if pc.word == "jerk"] == ["JERK", "jerk"]
    assert [r["count"] for r in e.table(0) if r["word"] == "jerk"] == [2]


def test_an_empty_comment_gets_the_bias_only_prediction(shared_run, words_model):
    e = ex.explain(words_model, "")
    empty = direct(shared_run.model, shared_run.ds.vectorizer.transform([""]))[0]
    np.testing.assert_allclose(e.probs, empty, atol=1e-6)
    assert e.words == [] and e.effects.shape == (0, 2)
    assert ex.render_html(e, 0).startswith("<div")


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert('x')</script> jerk",
        '<img src=x onerror="alert(1)"> chicken',
        "jerk </span><b>bold</b> &amp; \"quotes\" 'single'",
    ],
)
def test_hostile_text_stays_literal_in_the_rendered_comment(words_model, hostile):
    e = ex.explain(words_model, hostile)
    out = ex.render_html(e, e.predicted)
    for tag in ("<script", "<img", "<b>", "</span><b>"):
        assert tag not in out
    # the visible text (markup stripped, entities decoded) is what was typed, as the vectorizer reads it:
    # an entity typed in the comment ("&amp;") is read, and shown, as its character ("&"), still as text
    visible = html.unescape(re.sub(r"<[^>]+>", "", out))
    assert visible == html.unescape(hostile)
    assert "&lt;" in out and out.count("<span") == sum(pc.word is not None for pc in e.pieces)


def test_colors_follow_the_sign_of_the_effect():
    assert ex.effect_color(0.5, 0.5).startswith("rgba(22,163,74")
    assert ex.effect_color(-0.5, 0.5).startswith("rgba(220,38,38")
    assert ex.effect_color(0.0, 0.5) == "transparent"


def test_the_predictor_is_a_frozen_copy(shared_run, words_model):
    assert words_model.model is not shared_run.model
    assert not words_model.model.training
    assert all(not p.requires_grad for p in words_model.model.parameters())


def test_the_fingerprint_changes_with_the_weights_only(shared_run):
    model = copy.deepcopy(shared_run.model)
    before = ex.weights_fingerprint(model)
    assert ex.weights_fingerprint(copy.deepcopy(model)) == before
    with torch.no_grad():
        model.output_layer.bias[0] += 0.5
    assert ex.weights_fingerprint(model) == pytest.approx(before + 0.5)


def test_solo_effects_are_one_word_comments_minus_the_empty_comment(shared_run, words_model):
    words, effects = ex.solo_effects(words_model)
    vec = shared_run.ds.vectorizer
    assert words == [w for w in vec.vocabulary_ if " " not in w]
    probs = direct(shared_run.model, vec.transform(["", "idiot", "thanks"]))
    np.testing.assert_allclose(effects[words.index("idiot")], probs[1] - probs[0], atol=1e-6)
    np.testing.assert_allclose(effects[words.index("thanks")], probs[2] - probs[0], atol=1e-6)
    toxic = shared_run.ds.class_names.index("toxic")
    top = [w for w, _ in ex.top_words(words, effects, toxic, k=6)]
    # the insults are what pushes hardest toward toxic after training
    assert len(set(top) & {"idiot", "moron", "loser", "clown", "pathetic", "stupid"}) >= 4


def test_average_effect_is_the_mean_occlusion_over_the_comments_holding_the_word(words_model):
    texts = ["that jerk at lunch", "my aunt jerk chicken today", "wow the waiter", "jerk again jerk"]
    mean, n = ex.average_effect(words_model, "jerk", texts)
    assert n == 3
    each = [ex.explain(words_model, t) for t in texts if "jerk" in t]
    np.testing.assert_allclose(
        mean, np.mean([e.effects[e.words.index("jerk")] for e in each], axis=0), atol=1e-6
    )
    none, zero = ex.average_effect(words_model, "zebra", texts)
    assert zero == 0 and np.isnan(none).all()


def test_jerk_pushes_toward_toxic_alone_and_away_beside_chicken(shared_run, words_model):
    ds = shared_run.ds
    texts = [ds.dev_text(i) for i in range(len(ds.dev_idx))]
    c = ex.company_effects(words_model, "jerk", "chicken", texts)
    toxic = ds.class_names.index("toxic")
    probs = direct(shared_run.model, ds.vectorizer.transform(["", "jerk", "chicken", "jerk chicken"]))
    np.testing.assert_allclose(c["probs"], probs, atol=1e-6)
    assert c["effect_alone"][toxic] == pytest.approx(probs[1, toxic] - probs[0, toxic], abs=1e-6)
    # the interaction the data set is built on, as the trained network measures it in dev comments
    assert c["dev_alone"][toxic] > 0.1
    assert c["dev_with_partner"][toxic] < -0.1
    assert c["n_alone"] > 50 and c["n_with_partner"] > 50


def test_a_comment_over_the_limit_is_refused_with_its_length(words_model):
    long = "jerk " * (ex.MAX_EXPLAIN_CHARS // 5 + 1)
    with pytest.raises(ValueError, match=f"at most {ex.MAX_EXPLAIN_CHARS:,}"):
        ex.explain(words_model, long)
    e = ex.explain(words_model, long[: ex.MAX_EXPLAIN_CHARS])  # at the limit: explained
    assert e.words == ["jerk"]


# --- the linear-cost occlusion gives the numbers of vectorizing every occluded comment ---------------------
CORPUS = [
    "the cat sat on the mat",
    "the dog ate the cat food",
    "a cat and a dog at the park",
    "my dog is a good dog",
    "fish &amp; chips at the park today",
    "the mat the park the dog the cat",
]
PROBES = [
    "The cat sat on the mat, the cat sat!",
    "dog dog dog park zebra",
    "cat",  # removing its only word leaves an empty row
    "zebra unicorn",  # no word the vectorizer knows
    "fish &amp; chips &#128514; the good dog ate",
    "",
]


def reference(p: ex.Predictor, text: str) -> tuple[np.ndarray, np.ndarray, set[str]]:
    """The occlusion effects as explain computed them before: one vectorized comment per distinct word."""
    _, tokens = ex.split_pieces(p.vectorizer, text)
    words = list(dict.fromkeys(tokens))
    x = p.vectorizer.transform(ex.occlusion_texts(p.vectorizer, tokens, words))
    probs = ex.predict_rows(p, x)
    same = np.array([(x[i + 1] != x[0]).nnz == 0 for i in range(len(words))], bool)
    effects = probs[:1] - probs[1:]
    effects[same] = 0.0
    return probs[0], effects, {w for w, s in zip(words, same, strict=True) if s}


@pytest.mark.parametrize("kind", ["counts", "binary", "tfidf"])
@pytest.mark.parametrize("ngram_max", [1, 2])
@pytest.mark.parametrize("hidden, activation", [([], "none"), ([6, 4], "tanh"), ([5], "relu")])
def test_occlusion_matches_vectorizing_each_occluded_comment(kind, ngram_max, hidden, activation):
    from ffnlp_core.data.features import BagOfWords
    from ffnlp_core.nn.model import FeedForwardClassifier

    torch.manual_seed(0)
    vec = BagOfWords(kind, ngram_max=ngram_max).fit(CORPUS)
    model = FeedForwardClassifier(vec.vocab_size, hidden, activation, n_classes=3, init="kaiming")
    p = ex.predictor(model, vec, ["a", "b", "c"])
    for text in PROBES:
        probs, effects, ignored = reference(p, text)
        e = ex.explain(p, text)
        np.testing.assert_allclose(e.probs, probs, atol=1e-6)
        np.testing.assert_allclose(e.effects, effects, atol=2e-6)
        assert e.ignored == ignored
    assert np.abs(ex.explain(p, PROBES[0]).effects).max() > 0.01  # the weights give real effects


def test_explaining_vectorizes_the_comment_once_not_once_per_word(words_model, monkeypatch):
    # Before, explain vectorized 1 + (distinct words) copies of the comment: cost words x length.
    text = " ".join(f"w{i} jerk" for i in range(400))  # 401 distinct words, 3,690 characters
    seen = []
    transform = type(words_model.vectorizer).transform
    monkeypatch.setattr(
        type(words_model.vectorizer),
        "transform",
        lambda self, texts: seen.append(len(texts)) or transform(self, texts),
    )
    e = ex.explain(words_model, text)
    assert len(e.words) == 401 and seen == [1]
    assert e.table(0)[0]["word"] == "jerk" and e.table(0)[0]["count"] == 400
