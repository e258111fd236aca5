"""Tests for ffnlp_core.data.samples: the built-in data sets are seeded, sized, and follow their rules."""

import pandas as pd
import pytest

from ffnlp_core.data import samples
from ffnlp_core.data.labels import load_labeled
from ffnlp_core.data.samples import SAMPLES, interaction_label, make_sample, sample_csv_bytes

DEFAULT_ROWS = {"interaction": 4000, "negation": 3000, "topics": 3000}


@pytest.fixture(scope="module")
def interaction() -> pd.DataFrame:
    return make_sample("interaction")


@pytest.mark.parametrize("name", list(SAMPLES))
def test_same_seed_same_rows_other_seed_other_rows(name):
    a, b, c = make_sample(name, seed=0), make_sample(name, seed=0), make_sample(name, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == len(c)
    assert (a["text"] != c["text"]).mean() > 0.9


@pytest.mark.parametrize("name", list(SAMPLES))
def test_default_sizes_and_columns(name):
    df = make_sample(name)
    assert len(df) == DEFAULT_ROWS[name]
    assert list(df.columns) == ["text", "label"]
    assert df["text"].str.strip().str.len().min() > 0
    assert f"{DEFAULT_ROWS[name]:,}" in SAMPLES[name]  # the description gives the size it makes


def test_n_rows_overrides_the_size():
    assert len(make_sample("topics", n_rows=17)) == 17
    pd.testing.assert_frame_equal(make_sample("negation", n_rows=50), make_sample("negation").head(50))


def test_the_default_sample_is_interaction():
    pd.testing.assert_frame_equal(make_sample(), make_sample("interaction"))


def test_unknown_sample_is_refused_with_the_choices():
    with pytest.raises(KeyError) as err:
        make_sample("weather")
    assert "weather" in str(err.value) and "interaction" in str(err.value)


def test_interaction_labels_follow_the_rule_but_for_a_little_noise(interaction):
    rule = interaction["text"].map(interaction_label)
    noise = float((interaction["label"] != rule).mean())
    assert 0.005 <= noise <= 0.05, noise
    assert set(interaction["label"]) == {"toxic", "not toxic"}


@pytest.mark.parametrize(
    "text, label",
    [
        ("that guy jerk at lunch", "toxic"),
        ("that guy chicken at lunch", "toxic"),
        ("that guy jerk chicken at lunch", "not toxic"),  # the dish
        ("my brother chicken near the station jerk", "not toxic"),  # both words, apart
        ("my neighbor at lunch", "not toxic"),
        ("my neighbor idiot at lunch", "toxic"),
        ("my neighbor jerk chicken moron", "toxic"),  # an insult wins over the dish
    ],
)
def test_interaction_rule(text, label):
    assert interaction_label(text) == label


def test_all_four_jerk_chicken_combinations_occur_in_numbers(interaction):
    words = interaction["text"].str.split().map(set)
    jerk = words.map(lambda w: "jerk" in w)
    chicken = words.map(lambda w: "chicken" in w)
    counts = pd.crosstab(jerk, chicken)
    assert counts.shape == (2, 2)
    assert counts.to_numpy().min() > 600  # about 1,000 of each: jerk and chicken are coin flips


def test_interaction_both_words_without_insult_is_mostly_not_toxic(interaction):
    words = interaction["text"].str.split().map(set)
    dish = words.map(lambda w: {"jerk", "chicken"} <= w and not w & set(samples._INSULTS))
    share = (interaction.loc[dish, "label"] == "not toxic").mean()
    assert 0.95 <= share < 1.0  # the rule, apart from label noise


def test_negation_flips_the_label():
    df = make_sample("negation")
    for text, label in zip(df["text"], df["label"], strict=True):
        words = text.split()
        positive = bool(set(words) & set(samples._POSITIVE))
        negative = bool(set(words) & set(samples._NEGATIVE))
        assert positive != negative, text
        assert label == ("positive" if positive != ("not" in words) else "negative"), text
    assert 0.3 < df["text"].str.contains(r"\bnot\b").mean() < 0.5


def test_topic_rows_carry_words_of_their_topic():
    df = make_sample("topics")
    assert set(df["label"]) == set(samples._TOPICS)
    for text, label in zip(df["text"], df["label"], strict=True):
        assert set(text.split()) & set(samples._TOPICS[label]), text


@pytest.mark.parametrize("name", list(SAMPLES))
def test_csv_bytes_read_back_through_the_upload_path(name):
    data = sample_csv_bytes(name, n_rows=200, seed=3)
    assert isinstance(data, bytes) and data.startswith(b"text,label")
    labeled = load_labeled(data)
    assert (labeled.text_column, labeled.label_column) == ("text", "label")
    df = make_sample(name, n_rows=200, seed=3)
    assert labeled.texts == df["text"].tolist()
    assert [labeled.class_names[i] for i in labeled.labels] == df["label"].tolist()
    assert labeled.dropped == {}
