"""Tests for ffnlp_core.data.reading: encodings, delimiters, quoting, unnamed columns and header checks."""

import time

import pytest
from csv_cases import SMALL, TWO_CLASSES, assert_data_error, csv

from ffnlp_core.data.errors import DataError
from ffnlp_core.data.labels import load_labeled
from ffnlp_core.data.reading import read_table


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


# ---- errors ----------------------------------------------------------------------------------------------

READING_ERRORS = {
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
    "binary content": (b"text,label\n\x00\x01\x02\xff\x00abc\x00\n", {}, ["binary", "CSV"]),
    "xlsx workbook": (b"PK\x03\x04" + b"\x00" * 40, {}, ["Excel workbook", "CSV UTF-8"]),
    "xls workbook": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 40, {}, ["Excel workbook", "CSV UTF-8"]),
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


@pytest.mark.parametrize(("raw", "columns", "expected"), READING_ERRORS.values(), ids=READING_ERRORS.keys())
def test_reading_errors_say_what_and_where(raw, columns, expected):
    assert_data_error(raw, columns, expected)


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)
