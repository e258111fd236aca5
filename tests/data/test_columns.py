"""Tests for ffnlp_core.data.columns: which column is the text and which the label, and why none can be."""

from pathlib import Path

import pytest
from csv_cases import SMALL, assert_data_error, csv

from ffnlp_core.data.columns import infer_columns
from ffnlp_core.data.labels import to_labeled
from ffnlp_core.data.reading import read_table

DAVIDSON = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "davidson_labeled_tweets.csv"


def test_infer_columns_on_a_small_file():
    table = read_table(SMALL)
    assert (table.text_column, table.label_column) == ("text", "label")
    assert infer_columns(table.frame) == ("text", "label")
    assert table.label_candidates == ["label", "id"]


def test_infer_prefers_a_label_name_then_fewest_values():
    rows = [f"sentence number {i} is here,{i % 3},{i % 2},{i % 4}" for i in range(12)]
    table = read_table(csv("comment,stars,flag,target", *rows))
    assert table.text_column == "comment"
    assert table.label_column == "target"  # named like a label, although 'flag' has fewer values
    assert table.label_candidates == ["target", "flag", "stars"]
    renamed = read_table(csv("comment,stars,flag,quarter", *rows))
    assert renamed.label_column == "flag"


# ---- errors ----------------------------------------------------------------------------------------------

COLUMN_ERRORS = {
    "one column": (csv("text", "good film", "bad film"), {}, ["only one column", "'text'", "text,label"]),
    "no column holds text": (csv("a,b", "1,0", "2,1", "3,0"), {}, ["holds text", "mostly numbers"]),
    "no column can be the label": (
        csv("text,id", *[f"sentence {i},{i}" for i in range(60)]),
        {},
        ["can be the label", "'id' has 60"],
    ),
    "single class": (csv("text,label", "good,pos", "fine,pos", "nice,pos"), {}, ["'label' holds only 'pos'"]),
}


@pytest.mark.parametrize(("raw", "columns", "expected"), COLUMN_ERRORS.values(), ids=COLUMN_ERRORS.keys())
def test_column_errors_say_what_and_where(raw, columns, expected):
    assert_data_error(raw, columns, expected)


# ---- the Davidson tweets ---------------------------------------------------------------------------------


@pytest.mark.skipif(not DAVIDSON.exists(), reason=f"the Davidson data set is not at {DAVIDSON}")
def test_davidson_tweets_are_inferred():
    table = read_table(DAVIDSON)
    assert "Unnamed: 0" not in table.frame.columns
    assert (table.text_column, table.label_column) == ("tweet", "class")
    labeled = to_labeled(table)
    assert len(labeled.texts) == 24_783
    assert labeled.class_names == ["0", "1", "2"]
    assert labeled.dropped == {}
