"""Odd input gets right answers or clear refusals (issue 15, item 7): labels beyond int64, a numeric text
column, UTF-16 without a BOM, files that are not regular files or too big, line breaks and Markdown in
column names. Each case is checked through the data API and, where it reads a file, through the CLI."""

from __future__ import annotations

import os
import pickle
import re
import threading

import pytest

from ffnlp_core.cli import main as cli_main
from ffnlp_core.config import DataConfig
from ffnlp_core.data import reading
from ffnlp_core.data.dataset import build_dataset
from ffnlp_core.data.errors import DataError, markdown_safe, shown
from ffnlp_core.data.labels import load_labeled
from ffnlp_core.data.reading import read_table

TEXTS = [f"comment number {i} about things" for i in range(20)]


def labeled_csv(labels: list[str], encoding: str = "utf-8") -> bytes:
    """20 rows of text, the labels taking turns."""
    lines = ["text,label", *(f"{text},{labels[i % len(labels)]}" for i, text in enumerate(TEXTS))]
    return "\n".join(lines).encode(encoding)


def error_of(raw_or_path, **columns) -> DataError:
    with pytest.raises(DataError) as caught:
        load_labeled(raw_or_path, name="upload.csv", **columns)
    return caught.value


def cli_error(path, capsys, *args) -> str:
    """The CLI's one line on stderr for a refused file (exit 2)."""
    assert cli_main(["train", "--csv", str(path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "Traceback" not in err
    return err


# ---- labels: whole numbers compared exactly ------------------------------------------------------------


@pytest.mark.parametrize(
    "labels, names",
    [
        (["1e20", "2e20"], ["100000000000000000000", "200000000000000000000"]),
        (["12345678901234567890", "98765432109876543210"], ["12345678901234567890", "98765432109876543210"]),
        # float64 holds neither exactly: through it these two were one class
        (["12345678901234567890", "12345678901234567891"], ["12345678901234567890", "12345678901234567891"]),
        (["-9223372036854775809", "9223372036854775808"], ["-9223372036854775809", "9223372036854775808"]),
    ],
    ids=["1e20-2e20", "beyond-int64", "one-apart", "just-past-int64"],
)
def test_huge_whole_number_labels_are_separate_classes_with_their_exact_names(labels, names):
    labeled = load_labeled(labeled_csv(labels))
    assert labeled.class_names == names
    assert labeled.labels.tolist() == [i % 2 for i in range(20)]  # row 0 has labels[0], the smaller one
    ds = build_dataset(labeled, DataConfig())
    assert ds.n_classes == 2 and ds.class_names == names


def test_huge_labels_train_through_the_cli(tmp_path, capsys):
    path = tmp_path / "big.csv"
    path.write_bytes(labeled_csv(["1e20", "2e20"]))
    argv = ["train", "--csv", str(path), "--hidden", "4", "--batch-size", "4", "--json"]
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert '"100000000000000000000"' in out and '"200000000000000000000"' in out


def test_spellings_of_one_whole_number_are_one_class():
    labeled = load_labeled(labeled_csv(["1", "1.0", "1e0", "2", "2.00", "+2"]))
    assert labeled.class_names == ["1", "2"]
    assert labeled.labels.tolist() == [0, 0, 0, 1, 1, 1] * 3 + [0, 0]


# ---- a numeric text column -----------------------------------------------------------------------------


def test_a_numeric_text_column_is_not_swapped_with_the_label(tmp_path, capsys):
    lines = ["text,label", *(f"{i * 7.5},{['pos', 'neg'][i % 2]}" for i in range(20))]
    raw = "\n".join(lines).encode()
    message = str(error_of(raw))
    # the column called text is named as the numbers, the column called label as the label-like one
    assert "Column 'text' of upload.csv holds numbers (such as '0.0', '7.5', '15.0'), not text" in message
    assert "'label', repeats 2 values like a label" in message
    assert "decimal numbers" not in message and "another label column" not in message
    path = tmp_path / "upload.csv"
    path.write_bytes(raw)
    assert "Column 'text' of" in cli_error(path, capsys)


def test_the_numbers_named_as_text_are_named_even_beside_an_id_column():
    lines = ["id,text,label", *(f"{100 + i},{i * 7.5},{['pos', 'neg'][i % 2]}" for i in range(20))]
    assert "Column 'text' of upload.csv holds numbers" in str(error_of("\n".join(lines).encode()))


def test_a_short_repeated_text_beside_an_id_is_still_read_as_text():
    """Neither named for its role: words of a small vocabulary, one per row, are the text as before."""
    words = ["pineapple", "blueberry", "raspberry", "cranberry", "tangerine"]
    lines = ["id,word,kind", *(f"{100 + i},{words[i % 5]},{['yes', 'no'][i % 2]}" for i in range(20))]
    labeled = load_labeled("\n".join(lines).encode())
    assert (labeled.text_column, labeled.label_column) == ("word", "kind")
    assert labeled.class_names == ["no", "yes"]


# ---- UTF-16 without a BOM ------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_bom_is_read_exactly(encoding, tmp_path, capsys):
    texts = [f"naïve café comment {i}, “quoted”" for i in range(20)]
    raw = ("text,label\n" + "\n".join(f'"{t}",{i % 2}' for i, t in enumerate(texts))).encode(encoding)
    assert not raw.startswith((b"\xff\xfe", b"\xfe\xff"))
    table = read_table(raw)
    assert table.encoding == encoding
    labeled = load_labeled(raw)
    assert labeled.texts == texts and labeled.class_names == ["0", "1"]


def test_binary_data_with_nul_bytes_is_still_binary():
    message = str(error_of(b"text,label\n\x00\x01\x02\xff\x00abc\x00\n" * 3))
    assert "binary data (NUL bytes)" in message


def test_utf16_cut_in_the_middle_of_a_character_is_refused_clearly():
    raw = labeled_csv(["pos", "neg"], "utf-16-le")[:-1]  # an odd number of bytes
    assert "looks like UTF-16-LE text but does not decode" in str(error_of(raw))


# ---- files that are not regular files, or too big: refused before reading ------------------------------


def refused_quickly(path) -> str:
    """The DataError message for reading `path`, which must come within 5 s (a FIFO would block forever)."""
    result = []

    def read():
        try:
            read_table(path)
        except DataError as exc:
            result.append(str(exc))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), f"reading {path} did not return"
    assert result, f"{path} was read without an error"
    return result[0]


def test_dev_zero_is_refused_before_reading(capsys):
    assert "/dev/zero is not a regular file (it is a device)" in refused_quickly("/dev/zero")
    assert "not a regular file" in cli_error("/dev/zero", capsys)


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    assert "is not a regular file (it is a named pipe)" in refused_quickly(fifo)


def test_a_folder_is_refused(tmp_path):
    assert "is not a regular file (it is a folder)" in refused_quickly(tmp_path)


def test_a_file_over_the_upload_limit_is_refused_before_reading(tmp_path, capsys):
    path = tmp_path / "huge.csv"
    with open(path, "wb") as file:  # sparse: 200 MB + 1 byte that take no disk and must never be read
        file.truncate(reading.MAX_FILE_BYTES + 1)
    message = refused_quickly(path)
    assert "huge.csv is 200 MB, over the 200 MB limit for a CSV file" in message
    assert "over the 200 MB limit" in cli_error(path, capsys)


def test_bytes_over_the_upload_limit_are_refused(monkeypatch):
    monkeypatch.setattr(reading, "MAX_FILE_BYTES", 1000)
    assert "over the 0 MB limit" in str(error_of(labeled_csv(["a", "b"]) * 10))
    assert len(load_labeled(labeled_csv(["a", "b"])).texts) == 20  # 720 bytes: under it


# ---- user values in messages: one line, safe for Markdown ----------------------------------------------


def one_class_csv(label_column: str) -> bytes:
    """A file whose only label candidate, `label_column`, holds one class: the message names the column."""
    header = '"' + label_column.replace('"', '""') + '"'
    return ("text," + header + "\n" + "\n".join(f"{t},1" for t in TEXTS)).encode()


@pytest.mark.parametrize(
    "name, written",
    [
        ("bad\r\nname", r"bad\r\nname"),
        ("bad\nname", r"bad\nname"),
        ("bad\rname", r"bad\rname"),
        ("tab\tand\x0bvt\u2028ls", r"tab\tand\u000bvt\u2028ls"),
    ],
)
def test_a_column_name_with_line_breaks_gives_a_one_line_message(name, written, tmp_path, capsys):
    error = error_of(one_class_csv(name))
    message = str(error)
    assert len(message.splitlines()) == 1 and len(error.markdown.splitlines()) == 1
    assert f"'{written}' holds only '1'" in message
    path = tmp_path / "upload.csv"
    path.write_bytes(one_class_csv(name))
    cli_error(path, capsys)  # one line there too


def test_a_markdown_column_name_is_escaped_for_pages_and_plain_for_the_cli():
    error = error_of(one_class_csv("[answers](https://x.y)"))
    assert "'[answers](https://x.y)' holds only '1'" in str(error)  # the CLI prints it as typed
    md = markdown_safe(error)
    assert md == error.markdown
    assert r"'\[answers\]\(https\:\/\/x\.y\)' holds only '1'" in md
    assert "[answers](" not in md and "https://" not in md  # neither a link nor a bare URL
    assert "`" not in str(error) or "`" in md  # the message's own code spans are kept


def test_markdown_escaping_keeps_the_messages_own_code_spans():
    raw = (
        b'"a first comment that is really data",1\n'
        + "\n".join(f'"{t}",{i % 2}' for i, t in enumerate(TEXTS)).encode()
    )
    error = error_of(raw)
    assert "`text,label`" in error.markdown  # ours: kept as code
    assert "upload\\.csv" in error.markdown  # the file name is a user value


@pytest.mark.parametrize(
    "value",
    ["**bold**", "$x^2$", ":red[alarm]", "<b>hi</b>", "# heading", "`code`", "![img](x.png)", "a_b_c", "\\"],
)
def test_every_markdown_character_of_a_user_value_is_escaped(value):
    md = DataError(f"column '{shown(value)}' is odd").markdown
    inner = md[len("column '") : -len("' is odd")]
    assert inner.replace("\\", "") == value.replace("\\", "")
    assert re.fullmatch(r"(?:\\[!-/:-@\[-`{-~]|[^!-/:-@\[-`{-~])*", inner), inner  # each punctuation escaped


def test_markdown_safe_escapes_any_other_message_whole():
    assert markdown_safe(ValueError("see [x](https://y.z)\nnow")) == r"see \[x\]\(https\:\/\/y\.z\) now"


def test_the_markdown_survives_pickling():
    error = error_of(one_class_csv("[a](b)"))
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and again.markdown == error.markdown


def test_long_user_values_are_cut_and_never_leak_the_marks():
    error = error_of(one_class_csv("x" * 70))
    assert "'" + "x" * 57 + "...'" in str(error)
    assert "\ue000" not in str(error) and "\ue001" not in str(error)


def test_the_readers_file_limit_is_the_servers_upload_limit():
    """One limit: a file the upload widget takes is one the reader reads (.streamlit/config.toml)."""
    import tomllib
    from pathlib import Path

    from ffnlp_core.data.reading import MAX_FILE_BYTES

    config = tomllib.loads((Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 2**20 == MAX_FILE_BYTES
