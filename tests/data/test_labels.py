"""Tests for ffnlp_core.data.labels: turning the chosen columns into integer labels, and the stratified split."""

import numpy as np
import pytest
from csv_cases import SMALL, TWO_CLASSES, assert_data_error, csv

from ffnlp_core.data.columns import MAX_CLASSES
from ffnlp_core.data.errors import DataError
from ffnlp_core.data.labels import LabeledTexts, load_labeled, stratified_split, to_labeled
from ffnlp_core.data.reading import Table, read_table


def test_integer_labels_sorted_numerically():
    raw = csv("text,label", "a a,10", "b b,2", "c c,-1", "d d,2.0", "e e,10", "f f,-1")
    labeled = load_labeled(raw)
    assert labeled.class_names == ["-1", "2", "10"]
    assert labeled.labels.tolist() == [2, 1, 0, 1, 2, 0]
    assert labeled.labels.dtype == np.int64


def test_string_labels_stripped_and_sorted():
    raw = csv("text,label", "a a, Toxic ", "b b,Not Toxic", "c c,Toxic", "d d,Not Toxic ")
    labeled = load_labeled(raw)
    assert labeled.class_names == ["Not Toxic", "Toxic"]
    assert labeled.labels.tolist() == [1, 0, 1, 0]


def test_boolean_labels():
    raw = csv("text,label", "so good,True", "so bad,false", "lovely,TRUE", "awful,False")
    labeled = load_labeled(raw)
    assert labeled.class_names == ["False", "True"]
    assert labeled.labels.tolist() == [1, 0, 1, 0]


def test_fractional_labels_are_thresholded_with_a_note():
    raw = csv("text,score", "a a,0.2", "b b,0.5", "c c,0.9", "d d,0", "e e,1")
    labeled = load_labeled(raw)
    assert labeled.class_names == ["0", "1"]
    assert labeled.labels.tolist() == [0, 1, 1, 0, 1]
    assert labeled.notes == [
        "labels in 'score' are numbers between 0 and 1: thresholded at 0.5 (>= 0.5 is '1')"
    ]


def test_multi_label_file_lists_each_column_and_the_caller_picks_one():
    raw = csv(
        "id,comment_text,toxic,insult,obscene",
        "a1,you are lovely,0,0,0",
        "a2,you are an idiot,1,1,0",
        "a3,what a nice day,0,0,0",
        "a4,go away you fool,1,1,1",
        "a5,this is rubbish,1,0,1",
    )
    table = read_table(raw)
    assert table.text_column == "comment_text"
    assert table.label_column == "toxic"
    assert {"toxic", "insult", "obscene"} <= set(table.label_candidates)
    labeled = to_labeled(table, label_column="obscene")
    assert labeled.label_column == "obscene"
    assert labeled.labels.tolist() == [0, 0, 0, 1, 1]
    assert to_labeled(table, label_column="INSULT").label_column == "insult"  # names match in any case


def test_dropped_rows_are_counted_and_row_numbers_kept():
    raw = csv(
        "text,label",
        "first,a",  # row 0
        ",b",  # 1: empty text
        "third,",  # 2: missing label
        "   ,a",  # 3: whitespace text
        "fifth,NaN",  # 4
        "sixth,null",  # 5
        "seventh,b",  # 6
        "eighth,None",  # 7
        "ninth,a",  # 8
        "tenth,b",  # 9
        "eleventh,NA",  # 10
    )
    labeled = load_labeled(raw)
    assert labeled.dropped == {"empty text": 2, "missing label": 5}
    assert labeled.row_numbers.tolist() == [0, 6, 8, 9]
    assert labeled.row_numbers.dtype == np.int64
    assert labeled.texts == ["first", "seventh", "ninth", "tenth"]
    assert labeled.labels.tolist() == [0, 1, 0, 1]


def test_load_labeled_returns_the_dataclasses():
    table = read_table(SMALL)
    labeled = to_labeled(table)
    assert isinstance(table, Table)
    assert isinstance(labeled, LabeledTexts)
    assert (labeled.text_column, labeled.label_column) == ("text", "label")
    assert labeled.dropped == {}


# ---- errors ----------------------------------------------------------------------------------------------

LABEL_ERRORS = {
    "unknown text column": (
        csv("text,label", *TWO_CLASSES),
        {"text_column": "review"},
        ["'review'", "Available columns", "'text'", "'label'"],
    ),
    "unknown label column": (
        csv("text,label", *TWO_CLASSES),
        {"label_column": "stars"},
        ["'stars'", "'label'"],
    ),
    "single class after dropping": (
        csv("text,label", "good,pos", "fine,pos", ",neg", "bad,"),
        {},
        ["single class", "'pos'"],
    ),
    "too many classes": (
        csv("text,group,code", *[f"text number {i},{i % 2},c{i}" for i in range(120)]),
        {"label_column": "code"},
        ["'code'", "120 distinct", str(MAX_CLASSES), "not a label column"],
    ),
    "class too small": (
        csv("text,label", *TWO_CLASSES, "odd one,rare"),
        {},
        ["'rare' has 1 row", "merge"],
    ),
    "all rows dropped": (
        csv("text,label,group", ",pos,a", "  ,neg,b", "hello,,a", "bye,NA,b"),
        {"label_column": "label"},
        ["No row", "2 have no text in 'text'", "2 have no label in 'label'"],
    ),
    "numbers mixed with words": (
        csv("text,label", "good,1", "great,1.0", "bad,yes", "awful,0"),
        {},
        ["'label'", "numbers and words", "'1.0'", "'yes' (row 4)"],
    ),
    "text column holds numbers": (
        csv("text,count,label", "good film,3,pos", "bad film,4,neg", "nice,5,pos", "awful,6,neg"),
        {"text_column": "count"},
        ["'count'", "numbers, not text", "'text'"],
    ),
    "decimal scores outside 0..1": (
        csv("text,label", "good,2.5", "bad,1.5", "fine,2.5", "okay,1.5"),
        {},
        ["'label'", "2.5", "Round or bin"],
    ),
    "same text and label column": (
        csv("text,label", *TWO_CLASSES),
        {"text_column": "label", "label_column": "label"},
        ["'label'", "both"],
    ),
}


@pytest.mark.parametrize(("raw", "columns", "expected"), LABEL_ERRORS.values(), ids=LABEL_ERRORS.keys())
def test_label_errors_say_what_and_where(raw, columns, expected):
    assert_data_error(raw, columns, expected)


# ---- splitting -------------------------------------------------------------------------------------------


LABELS = np.array([0] * 50 + [1] * 30 + [2] * 17 + [3] * 3)


def test_split_is_deterministic_for_a_seed():
    first, second = stratified_split(LABELS, 0.2, seed=7), stratified_split(LABELS, 0.2, seed=7)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    other = stratified_split(LABELS, 0.2, seed=8)
    assert not np.array_equal(first[1], other[1])


@pytest.mark.parametrize("dev_fraction", [0.1, 0.2, 0.5, 0.9])
def test_split_keeps_every_class_on_both_sides(dev_fraction):
    train, dev = stratified_split(LABELS, dev_fraction, seed=0)
    assert train.dtype == np.int64 and dev.dtype == np.int64
    assert np.all(np.diff(train) > 0) and np.all(np.diff(dev) > 0)  # sorted, no repeats
    assert np.intersect1d(train, dev).size == 0
    assert np.array_equal(np.union1d(train, dev), np.arange(len(LABELS)))
    assert set(LABELS[train]) == set(LABELS[dev]) == {0, 1, 2, 3}
    assert abs(len(dev) - dev_fraction * len(LABELS)) <= len(set(LABELS))  # rounding once per class


def test_split_fraction_per_class():
    train, dev = stratified_split(LABELS, 0.2, seed=3)
    assert np.bincount(LABELS[dev]).tolist() == [10, 6, 3, 1]
    assert np.bincount(LABELS[train]).tolist() == [40, 24, 14, 2]


@pytest.mark.parametrize("dev_fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_refuses_a_fraction_outside_0_1(dev_fraction):
    with pytest.raises(DataError, match="dev_fraction"):
        stratified_split(LABELS, dev_fraction)


def test_split_refuses_a_class_with_one_row():
    with pytest.raises(DataError, match="Class 3 has only 1 row"):
        stratified_split(np.array([0, 0, 1, 1, 3]))
