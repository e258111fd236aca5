"""Tests for ffnlp_core.data.table: reading users' CSV files, turning columns into labels, splitting."""

import time
from pathlib import Path

import numpy as np
import pytest

from ffnlp_core.data.table import (
    MAX_CLASSES,
    DataError,
    LabeledTexts,
    Table,
    infer_columns,
    load_labeled,
    read_table,
    stratified_split,
    to_labeled,
)

DAVIDSON = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "davidson_labeled_tweets.csv"


def csv(*lines: str, encoding: str = "utf-8") -> bytes:
    """The bytes of a CSV file made of `lines`, each ending in a newline."""
    return "".join(line + "\n" for line in lines).encode(encoding)


SMALL = csv(
    "id,text,label",
    "1,I loved this film,pos",
    "2,Terrible acting and a dull plot,neg",
    "3,What a wonderful day,pos",
    "4,Never again,neg",
)


# ---- reading -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [
        ("text,label\ncafé au lait,1\nnaïve crème brûlée,0\n".encode(), "utf-8"),
        (b"\xef\xbb\xbf" + "text,label\ncafé au lait,1\nnaïve crème brûlée,0\n".encode(), "utf-8-sig"),
        ("text,label\ncafé au lait,1\nnaïve crème brûlée,0\n".encode("utf-16"), "utf-16"),
        (b"\xfe\xff" + "text,label\ncafé au lait,1\nnaïve crème brûlée,0\n".encode("utf-16-be"), "utf-16"),
        ("text,label\ncafé au lait,1\nnaïve crème brûlée,0\n".encode("cp1252"), "cp1252"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16-le-bom", "utf-16-be-bom", "cp1252"],
)
def test_encodings_decode_accents(raw, encoding):
    table = read_table(raw)
    assert table.encoding == encoding
    assert list(table.frame.columns) == ["text", "label"]
    assert table.frame["text"].tolist() == ["café au lait", "naïve crème brûlée"]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"], ids=["comma", "semicolon", "tab", "pipe"])
def test_delimiters_are_sniffed(delimiter):
    # every text holds the other delimiters, unquoted where they do not clash with the real one
    texts = ["a, b; c | d\te", "one, two; three", "x | y, z"]
    lines = ["text" + delimiter + "label"]
    for i, text in enumerate(texts):
        cell = '"' + text + '"' if delimiter in text else text
        lines.append(cell + delimiter + str(i % 2))
    table = read_table(csv(*lines))
    assert table.delimiter == delimiter
    assert table.frame["text"].tolist() == texts
    assert table.frame["label"].tolist() == ["0", "1", "0"]


def test_quoted_multiline_field_with_embedded_quotes_round_trips():
    text = 'She said "stop".\nThen, on a new line; she left | "again"\n\nEnd.'
    raw = csv("text,label", '"' + text.replace('"', '""') + '",1', "plain,0", "another one,1", "last,0")
    labeled = load_labeled(raw)
    assert labeled.texts[0] == text
    assert labeled.texts[1:] == ["plain", "another one", "last"]
    assert labeled.labels.tolist() == [1, 0, 1, 0]


@pytest.mark.parametrize("newline", ["\r\n", "\r"], ids=["crlf", "cr"])
def test_windows_and_old_mac_line_endings(newline):
    raw = newline.join(["text,label", "hello there,a", "good bye,b", "hi,a", "bye,b", ""]).encode()
    assert load_labeled(raw).texts == ["hello there", "good bye", "hi", "bye"]


@pytest.mark.parametrize("index_header", ["", "Unnamed: 0"])
def test_unnamed_index_column_is_dropped(index_header):
    raw = csv(index_header + ",text,label", "0,first text,a", "1,second text,b", "2,third text,a")
    table = read_table(raw)
    assert list(table.frame.columns) == ["text", "label"]
    assert any("unnamed" in note for note in table.notes)


def test_empty_trailing_column_is_dropped_and_names_stripped():
    table = read_table(csv(" text , label ,", "first text,a,", "second text,b,", "third text,a,"))
    assert list(table.frame.columns) == ["text", "label"]
    assert table.label_column == "label"


def test_unnamed_column_that_is_not_an_index_is_kept():
    table = read_table(csv(",text,label", "x,first text,a", "y,second text,b", "x,third text,a"))
    assert list(table.frame.columns) == ["Unnamed: 0", "text", "label"]


def test_extra_columns_are_kept_as_strings():
    table = read_table(SMALL)
    assert list(table.frame.columns) == ["id", "text", "label"]
    assert table.frame["id"].tolist() == ["1", "2", "3", "4"]


def test_labels_are_not_mangled_when_read():
    table = read_table(csv("text,code", "first text,01", "second text,True", "third text,01"))
    assert table.frame["code"].tolist() == ["01", "True", "01"]


def test_very_long_field():
    long_text = "word " * 20_000  # 100,000 characters
    labeled = load_labeled(csv("text,label", long_text + ",1", "short,0", "tiny,1", "small,0"))
    assert len(labeled.texts[0]) == 100_000
    assert labeled.texts[0] == long_text


def test_many_rows_read_quickly():
    lines = ["text,label"] + [f"this is example sentence number {i},{i % 3}" for i in range(160_000)]
    raw = csv(*lines)
    start = time.perf_counter()
    labeled = load_labeled(raw)
    elapsed = time.perf_counter() - start
    assert len(labeled.texts) == 160_000
    assert labeled.class_names == ["0", "1", "2"]
    assert elapsed < 5.0


def test_read_table_from_path_uses_the_file_name(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_bytes(SMALL)
    assert read_table(path).text_column == "text"
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(DataError, match="empty.csv"):
        read_table(str(tmp_path / "empty.csv"))


# ---- errors --------------------------------------------------------------------------------------------

TWO_CLASSES = ["good film,pos", "bad film,neg", "great plot,pos", "weak plot,neg"]

ERROR_CASES = {
    "empty file": (b"", {}, ["upload.csv", "empty", "text,label"]),
    "whitespace only": (b"  \n\n \t\n", {}, ["upload.csv", "empty"]),
    "header only": (csv("text,label"), {}, ["no data rows", "'text'", "'label'"]),
    "no header, number cell": (csv("I loved it,1", "I hated it,0"), {}, ["'1'", "a number", "text,label"]),
    "no header, sentence cell": (
        csv("this film was a complete waste of my time and money,neg", "lovely,pos", "awful,neg"),
        {},
        ["sentence", "text,label"],
    ),
    "no header, label value": (csv("great fun,pos", *TWO_CLASSES), {}, ["'pos'", "text,label"]),
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
    "single class": (csv("text,label", "good,pos", "fine,pos", "nice,pos"), {}, ["'label' holds only 'pos'"]),
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
    "binary content": (b"text,label\n\x00\x01\x02\xff\x00abc\x00\n", {}, ["binary", "CSV"]),
    "xlsx workbook": (b"PK\x03\x04" + b"\x00" * 40, {}, ["Excel workbook", "CSV UTF-8"]),
    "xls workbook": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 40, {}, ["Excel workbook", "CSV UTF-8"]),
    "one column": (csv("text", "good film", "bad film"), {}, ["only one column", "'text'", "text,label"]),
    "all rows dropped": (
        csv("text,label,group", ",pos,a", "  ,neg,b", "hello,,a", "bye,NA,b"),
        {"label_column": "label"},
        ["No row", "2 have no text in 'text'", "2 have no label in 'label'"],
    ),
    "no column holds text": (csv("a,b", "1,0", "2,1", "3,0"), {}, ["holds text", "mostly numbers"]),
    "no column can be the label": (
        csv("text,id", *[f"sentence {i},{i}" for i in range(60)]),
        {},
        ["can be the label", "'id' has 60"],
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
    "row with an extra field": (
        csv("text,label", "good,pos", "bad,neg", "one, two,pos"),
        {},
        ["line 4 has 3 fields where the header has 2", "double quotes"],
    ),
    "quote never closed": (
        csv("text,label", "good,pos", '"bad,neg', "fine,pos"),
        {},
        ["opened in row 3 is never closed"],
    ),
}


@pytest.mark.parametrize(("raw", "columns", "expected"), ERROR_CASES.values(), ids=ERROR_CASES.keys())
def test_data_errors_say_what_and_where(raw, columns, expected):
    with pytest.raises(DataError) as caught:
        load_labeled(raw, name="upload.csv", **columns)
    message = str(caught.value)
    for fragment in expected:
        assert fragment in message


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


# ---- guessing the columns ------------------------------------------------------------------------------


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


# ---- labels --------------------------------------------------------------------------------------------


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


# ---- splitting -----------------------------------------------------------------------------------------


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


# ---- the Davidson tweets -------------------------------------------------------------------------------


@pytest.mark.skipif(not DAVIDSON.exists(), reason=f"the Davidson data set is not at {DAVIDSON}")
def test_davidson_tweets_are_inferred():
    table = read_table(DAVIDSON)
    assert "Unnamed: 0" not in table.frame.columns
    assert (table.text_column, table.label_column) == ("tweet", "class")
    labeled = to_labeled(table)
    assert len(labeled.texts) == 24_783
    assert labeled.class_names == ["0", "1", "2"]
    assert labeled.dropped == {}
