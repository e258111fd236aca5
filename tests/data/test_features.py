"""Tests for ffnlp_core.data.features: bag-of-words against a hand-counted three-row corpus and scikit-learn."""

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from ffnlp_core.config import DataConfig
from ffnlp_core.data.dataset import build_dataset
from ffnlp_core.data.errors import DataError
from ffnlp_core.data.features import BagOfWords
from ffnlp_core.data.labels import load_labeled

# The token pattern keeps words of two or more characters, so "a" is dropped.
CORPUS = ["the cat sat", "the cat the dog", "a dog"]
VOCAB = ["cat", "dog", "sat", "the"]
COUNTS = np.array(
    [
        [1, 0, 1, 1],  # the cat sat
        [1, 1, 0, 2],  # the cat the dog
        [0, 1, 0, 0],  # a dog
    ],
    np.float32,
)


def dense(x) -> np.ndarray:
    return x.toarray()


def check_csr(x, rows: int, cols: int) -> None:
    assert sp.issparse(x) and x.format == "csr"
    assert x.dtype == np.float32
    assert x.shape == (rows, cols)
    assert x.has_sorted_indices
    for r in range(rows):  # sorted really means sorted, row by row
        idx = x.indices[x.indptr[r] : x.indptr[r + 1]]
        assert np.all(np.diff(idx) > 0)


def test_vocabulary_is_the_words_of_two_or_more_letters_sorted():
    bow = BagOfWords().fit(CORPUS)
    assert bow.vocabulary_ == VOCAB
    assert bow.vocab_size == 4
    assert bow.index_ == {"cat": 0, "dog": 1, "sat": 2, "the": 3}


def test_counts_match_the_hand_count():
    x = BagOfWords("counts").fit(CORPUS).transform(CORPUS)
    check_csr(x, 3, 4)
    np.testing.assert_array_equal(dense(x), COUNTS)


def test_binary_marks_presence_only():
    x = BagOfWords("binary").fit(CORPUS).transform(CORPUS)
    check_csr(x, 3, 4)
    np.testing.assert_array_equal(dense(x), (COUNTS > 0).astype(np.float32))
    assert dense(x)[1, 3] == 1.0  # "the" twice in row 2 counts once


def test_tfidf_matches_the_formula_by_hand():
    # scikit-learn's defaults: idf = ln((1 + n) / (1 + df)) + 1, then each row scaled to unit length.
    n = 3
    df = np.array([2, 2, 1, 2])
    idf = np.log((1 + n) / (1 + df)) + 1
    raw = COUNTS * idf
    expected = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    bow = BagOfWords("tfidf").fit(CORPUS)
    x = bow.transform(CORPUS)
    check_csr(x, 3, 4)
    np.testing.assert_allclose(dense(x), expected, rtol=1e-6)
    np.testing.assert_allclose(bow.state()["idf"], idf, rtol=1e-6)
    assert dense(x)[2, 1] == pytest.approx(1.0)  # "a dog": only "dog" is left, so it gets all the weight


def test_tfidf_matches_scikit_learn_defaults():
    reference = TfidfVectorizer().fit(CORPUS)
    x = BagOfWords("tfidf").fit(CORPUS).transform(CORPUS)
    np.testing.assert_allclose(dense(x), reference.transform(CORPUS).toarray(), rtol=1e-6)


def test_bigrams_add_the_word_pairs_left_after_tokenizing():
    bow = BagOfWords(ngram_max=2).fit(CORPUS)
    # "a dog" has only "dog" left after the 1-letter word is dropped, so it adds no pair.
    assert bow.vocabulary_ == ["cat", "cat sat", "cat the", "dog", "sat", "the", "the cat", "the dog"]
    x = bow.transform(CORPUS)
    check_csr(x, 3, 8)
    np.testing.assert_array_equal(
        dense(x),
        [
            [1, 1, 0, 0, 1, 1, 1, 0],
            [1, 0, 1, 1, 0, 2, 1, 1],
            [0, 0, 0, 1, 0, 0, 0, 0],
        ],
    )
    assert bow.analyze("The cat sat") == ["the", "cat", "sat", "the cat", "cat sat"]
    assert bow.tokenize("The Cat, a DOG!") == ["the", "cat", "dog"]


def test_min_df_drops_words_seen_in_fewer_comments():
    bow = BagOfWords(min_df=2).fit(CORPUS)
    assert bow.vocabulary_ == ["cat", "dog", "the"]  # "sat" is in one comment only
    np.testing.assert_array_equal(dense(bow.transform(CORPUS)), COUNTS[:, [0, 1, 3]])


def test_max_features_keeps_the_most_frequent_words():
    # totals: the 3, cat 2, dog 2, sat 1
    assert BagOfWords(max_features=3).fit(CORPUS).vocabulary_ == ["cat", "dog", "the"]
    assert BagOfWords(max_features=1).fit(CORPUS).vocabulary_ == ["the"]


def test_unseen_words_give_empty_rows():
    bow = BagOfWords().fit(CORPUS)
    x = bow.transform(["zebra unicorn", "", "the zebra"])
    check_csr(x, 3, 4)
    assert x[0].nnz == 0 and x[1].nnz == 0
    np.testing.assert_array_equal(dense(x)[2], [0, 0, 0, 1])


def test_fit_learns_from_train_only():
    train, dev = ["the cat sat", "the dog"], ["the zebra sat"]
    bow = BagOfWords().fit(train)
    assert "zebra" not in bow.vocabulary_
    np.testing.assert_array_equal(dense(bow.transform(dev)), [[0, 0, 1, 1]])


def test_transform_is_pure():
    bow = BagOfWords("tfidf").fit(CORPUS)
    first = dense(bow.transform(CORPUS))
    bow.transform(["lots of new words here", "zebra"])
    np.testing.assert_array_equal(dense(bow.transform(CORPUS)), first)
    assert bow.vocabulary_ == VOCAB


def test_dataset_vocabulary_comes_from_the_train_split_only():
    lines = ["text,label"]
    lines += [f"alpha common {i % 3},pos" for i in range(10)] + [
        f"beta common {i % 3},neg" for i in range(10)
    ]
    labeled = load_labeled(("\n".join(lines) + "\n").encode())
    # Give one dev row a word that no other row has: it must not reach the vocabulary.
    cfg = DataConfig(dev_fraction=0.2, split_seed=0)
    probe = build_dataset(labeled, cfg)
    only_dev = int(probe.dev_idx[0])
    labeled.texts[only_dev] = labeled.texts[only_dev] + " zebraword"
    ds = build_dataset(labeled, cfg)
    assert only_dev in ds.dev_idx
    assert "zebraword" not in ds.vectorizer.vocabulary_
    assert set(ds.vectorizer.vocabulary_) == {"alpha", "beta", "common"}
    assert ds.x_dev.shape == (4, 3) and ds.x_train.shape == (16, 3)


@pytest.mark.parametrize(
    "texts, kwargs",
    [
        (CORPUS, {"min_df": 4}),  # more comments than there are
        (["a b c", "d e", "x"], {}),  # only 1-letter tokens
        (["the cat", "the dog", "a cat"], {"min_df": 3, "ngram_max": 2}),  # nothing in 3 comments
    ],
    ids=["min_df-above-rows", "one-letter-words", "min_df-too-high"],
)
def test_empty_vocabulary_is_a_data_error_that_mentions_min_df(texts, kwargs):
    with pytest.raises(DataError) as err:
        BagOfWords(**kwargs).fit(texts)
    message = str(err.value)
    assert "min_df" in message
    assert f"now {kwargs.get('min_df', 1)}" in message


def test_unknown_kind_is_refused_on_fit():
    with pytest.raises(ValueError, match="word2vec"):
        BagOfWords("word2vec").fit(CORPUS)


@pytest.mark.parametrize("kind", ["counts", "binary", "tfidf"])
@pytest.mark.parametrize("ngram_max", [1, 2])
def test_state_round_trip_transforms_identically(kind, ngram_max):
    import json

    bow = BagOfWords(kind, ngram_max=ngram_max).fit(CORPUS)
    state = json.loads(json.dumps(bow.state()))  # what the store writes and reads
    back = BagOfWords.from_state(state)
    texts = CORPUS + ["the dog sat on the cat", "zebra", "cat cat cat"]
    a, b = bow.transform(texts), back.transform(texts)
    check_csr(b, len(texts), bow.vocab_size)
    assert back.vocabulary_ == bow.vocabulary_
    assert back.kind == kind and back.ngram_max == ngram_max
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)


def test_state_keeps_settings_and_idf_only_for_tfidf():
    s = BagOfWords("counts", ngram_max=2, min_df=1, max_features=5).fit(CORPUS).state()
    assert (s["kind"], s["ngram_max"], s["min_df"], s["max_features"]) == ("counts", 2, 1, 5)
    assert len(s["vocabulary"]) == 5 and s["idf"] is None
    t = BagOfWords("tfidf").fit(CORPUS).state()
    assert len(t["idf"]) == 4 and t["idf"][2] == pytest.approx(math.log(2) + 1)


def test_state_of_a_pruned_vocabulary_is_not_pruned_again():
    # min_df=2 was applied at fit; from_state must keep every saved word even if the rebuild sees one text.
    bow = BagOfWords(min_df=2).fit(CORPUS)
    back = BagOfWords.from_state(bow.state())
    assert back.vocabulary_ == ["cat", "dog", "the"]
    np.testing.assert_array_equal(dense(back.transform(CORPUS)), dense(bow.transform(CORPUS)))


def test_html_entities_are_decoded_before_counting_words():
    texts = ["so funny &#128514;&#128514; lol", "fish &amp; chips", "the &quot;best&quot; day"]
    on = BagOfWords().fit(texts)
    assert "128514" not in on.vocabulary_ and "amp" not in on.vocabulary_ and "quot" not in on.vocabulary_
    assert on.tokenize("fish &amp; chips") == ["fish", "chips"]
    off = BagOfWords(decode_entities=False).fit(texts)
    assert {"128514", "amp", "quot"} <= set(off.vocabulary_)  # what scraped tweets did before
    back = BagOfWords.from_state(on.state())
    assert back.decode_entities and (back.transform(texts) != on.transform(texts)).nnz == 0
    old = {k: v for k, v in off.state().items() if k != "decode_entities"}  # a state saved before the option
    assert not BagOfWords.from_state(old).decode_entities


def test_entity_numbers_leave_the_davidson_vocabulary():
    path = Path(__file__).resolve().parents[3] / "shared" / "data" / "davidson_labeled_tweets.csv"
    if not path.exists():
        pytest.skip(f"no real tweets at {path} (../shared/data)")
    labeled = load_labeled(str(path), "tweet", "class", name="davidson")
    ds = build_dataset(labeled, DataConfig(min_df=2))
    vocab = set(ds.vectorizer.vocabulary_)
    assert "128514" not in vocab and "amp" not in vocab and "8220" not in vocab
    raw = build_dataset(labeled, DataConfig(min_df=2, decode_entities=False))
    assert {"128514", "amp"} <= set(raw.vectorizer.vocabulary_)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"ngram_max": 10**6}, "ngram_max must be a whole number from 1 to 2, got 1000000"),
        ({"ngram_max": True}, "ngram_max must be a whole number from 1 to 2, got True"),
        ({"min_df": -1}, "min_df must be a whole number from 1 to 1000000, got -1"),
        ({"max_features": 2}, "the vocabulary must be a list of 1 to 2 words, got 4"),
        ({"vocabulary": []}, "the vocabulary must be a list of 1 to 1,000,000 words, got 0"),
        ({"vocabulary": "cat dog"}, "the vocabulary must be a list of 1 to 1,000,000 words, got str"),
        (
            {"vocabulary": ["cat", "dog", "the  cat", "sat"]},
            "vocabulary entry 'the  cat' is not 1 or fewer words",
        ),
        ({"vocabulary": ["cat", 7, "dog", "sat"]}, "vocabulary entry '7' is not 1 or fewer words"),
        ({"kind": "tfidf", "idf": [1.0, 2.0]}, "tf-idf needs one idf weight per vocabulary word"),
        ({"kind": "tfidf", "idf": [1.0, float("nan"), 1.0, 1.0]}, "every idf weight must be a finite number"),
        ({"kind": "tfidf", "idf": [1.0, 10**400, 1.0, 1.0]}, "every idf weight must be a finite number"),
        ({"kind": "tfidf", "idf": [1.0, -1.0, 1.0, 1.0]}, "every idf weight must be a finite number above 0"),
    ],
)
def test_a_state_outside_the_settings_bounds_is_refused_before_anything_is_built(change, message):
    # an uploaded model.json with ngram_max=10**6 used to load, then one 400-word comment cost 30 s
    state = BagOfWords().fit(CORPUS).state() | change
    with pytest.raises(ValueError) as err:
        BagOfWords.from_state(state)
    assert str(err.value).startswith(message)


def test_the_vocabulary_bound_is_the_max_vocabulary_setting():
    from ffnlp_core.config import declared
    from ffnlp_core.data import features

    assert features.MAX_VOCABULARY == declared(DataConfig)["max_features"]["max"] == 1_000_000
    BagOfWords.check_state(BagOfWords("tfidf", ngram_max=2, max_features=5).fit(CORPUS).state())  # fine
