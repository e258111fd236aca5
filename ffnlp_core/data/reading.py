"""Reading a student's CSV file: bytes -> decoded text -> delimiter -> DataFrame of strings -> Table.

A path is checked before it is read (a regular file, at most MAX_FILE_BYTES, the upload limit). read_table
guesses the encoding (a BOM, else UTF-16 told by its NUL bytes, else UTF-8, else Windows-1252) and the
delimiter, checks that the first line is a header, drops unnamed index columns, and asks columns.py which
columns hold the text and the label. Row numbers in messages count as a spreadsheet does: the header is
row 1, the first data row is row 2.
"""

from __future__ import annotations

import io
import math
import os
import re
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .columns import LABEL_HINTS, MAX_CLASSES, infer_columns, rank_label_columns
from .errors import DataError, shown

DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
EXCEL_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")  # xlsx (a zip archive), old xls

# A quoted field (with "" escapes), a delimiter or a line break: enough to count fields outside quotes.
_TOKEN = re.compile(r'"[^"]*(?:""[^"]*)*"|[,;\t|]|\r\n|\n|\r')
_SNIFF_CHARS = 1_000_000
_SNIFF_RECORDS = 20
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_GUESSED = ("utf-16-le", "utf-16-be")  # encodings guessed without a BOM: checked once decoded
_SNIFF_BYTES = 65_536  # where BOM-less UTF-16 is recognised
MAX_FILE_BYTES = 200 * 2**20  # the upload limit (server.maxUploadSize = 200 in .streamlit/config.toml)


@dataclass
class Table:
    """A CSV file as read, with the columns guessed to hold the text and the label."""

    frame: pd.DataFrame  # every column as strings; an unnamed index column dropped
    encoding: str  # "utf-8", "utf-8-sig", "utf-16", "cp1252", ...
    delimiter: str  # ",", ";", "\t" or "|"
    text_column: str
    label_column: str
    label_candidates: list[str]  # best first: the inferred label column leads
    notes: list[str]  # how the file was read, for display
    name: str = "the file"  # how messages call the file, e.g. "upload.csv"


def _too_big(size: int, name: str) -> DataError:
    return DataError(
        f"{shown(name)} is {size / 2**20:,.0f} MB, over the {MAX_FILE_BYTES // 2**20} MB limit for a CSV "
        "file. Use fewer rows (a random sample keeps the classes' shares) or drop the columns you do not "
        "need."
    )


def _read_source(source: bytes | str | os.PathLike, name: str) -> tuple[bytes, str]:
    """The file's bytes. A path is checked before anything is read: a folder, a device such as /dev/zero or
    a FIFO (which would block) is refused, and so is a file over MAX_FILE_BYTES."""
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) > MAX_FILE_BYTES:
            raise _too_big(len(source), name)
        return bytes(source), name
    path = Path(source)
    name = path.name if name == "the file" else name
    try:
        mode = path.stat().st_mode  # stat never blocks, even on a FIFO
        if not stat.S_ISREG(mode):
            raise DataError(
                f"{shown(path)} is not a regular file (it is {_kind(mode)}), so it is not read. "
                "Give the path of a CSV file."
            )
        # O_NONBLOCK: if the path was swapped for a FIFO since the stat, opening it does not wait for a writer
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise DataError(f"{shown(path)} is not a regular file, so it is not read. Give a CSV file.")
            if info.st_size > MAX_FILE_BYTES:
                raise _too_big(info.st_size, name)
            raw = file.read(MAX_FILE_BYTES + 1)  # bounded, should the file grow while it is read
    except OSError as error:
        raise DataError(
            f"Could not open {shown(path)}: {error.strerror}. Check the path and try again."
        ) from None
    if len(raw) > MAX_FILE_BYTES:
        raise _too_big(len(raw), name)
    return raw, name


def _kind(mode: int) -> str:
    kinds = [
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((kind for test, kind in kinds if test(mode)), "not a file")


def _utf16_without_bom(raw: bytes) -> str | None:
    """ "utf-16-le" or "utf-16-be" when most byte pairs of a sample have a NUL on the same side and none on
    the other, as in UTF-16 text of mostly Latin letters, digits and punctuation; else None."""
    sample = raw[: _SNIFF_BYTES - _SNIFF_BYTES % 2]
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    pairs = len(sample) // 2
    if odd >= 0.5 * pairs and even <= 0.01 * odd:
        return "utf-16-le"  # "t\0e\0x\0t\0"
    if even >= 0.5 * pairs and odd <= 0.01 * even:
        return "utf-16-be"  # "\0t\0e\0x\0t"
    return None


def _is_text(text: str) -> bool:
    """No control characters but tabs and line breaks (a wrong guess of UTF-16 decodes into them)."""
    return not _CONTROL.search(text)


def _decode(raw: bytes, name: str) -> tuple[str, str]:
    """Return (text, encoding): a BOM decides, else UTF-16 if the NUL bytes say so, else UTF-8, else
    Windows-1252 (latin-1 as a last resort)."""
    if raw.startswith(EXCEL_MAGIC):
        raise DataError(
            f"{shown(name)} looks like an Excel workbook, not a CSV file; save it as CSV "
            "(File > Save As > CSV UTF-8) and upload that file."
        )
    if raw.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        encodings = ["utf-32"]
    elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings = ["utf-16"]  # with utf-32 and BOM-less utf-16, the only cases where NUL bytes belong
    elif b"\x00" not in raw:
        encodings = ["utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "utf-8", "cp1252", "latin-1"]
    else:
        encodings = [encoding] if (encoding := _utf16_without_bom(raw)) else []
    for encoding in encodings:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text and (encoding not in _GUESSED or _is_text(text[:_SNIFF_CHARS])):
            return text, encoding
    if encodings:  # utf-16 or utf-32 by its BOM or its NUL bytes, but not valid text in it
        raise DataError(
            f"{shown(name)} looks like {encodings[0].upper()} text but does not decode as it (cut off, "
            "damaged, or holding NUL characters). Save it again as CSV UTF-8 and upload that file."
        )
    raise DataError(
        f"{shown(name)} contains binary data (NUL bytes), so it is not a text CSV file. "
        "Export your data as CSV (comma-separated text, UTF-8) and upload that file; if it is UTF-16 text, "
        "save it again as CSV UTF-8."
    )


def _sniff_delimiter(text: str) -> str:
    """The delimiter the header line uses that splits the next records into as many fields."""
    records: list[dict[str, int]] = []
    counts, start = dict.fromkeys(DELIMITERS, 0), 0
    sample = text[:_SNIFF_CHARS]
    for token in _TOKEN.finditer(sample):
        if token.group() in DELIMITERS:
            counts[token.group()] += 1
        elif token.group()[0] in "\r\n":
            if sample[start : token.start()].strip():  # blank lines say nothing
                records.append(counts)
            counts, start = dict.fromkeys(DELIMITERS, 0), token.end()
            if len(records) == _SNIFF_RECORDS:
                break
    else:  # no break: the last record may lack a line break
        if sample[start:].strip():
            records.append(counts)
    if not records:
        return ","
    header = records[0]

    def score(delimiter: str) -> tuple[bool, int, int]:
        fields = header[delimiter]
        return fields > 0, sum(record[delimiter] == fields for record in records), fields

    return max(DELIMITERS, key=score)  # ties go to the comma, listed first


def _parse(text: str, delimiter: str, name: str) -> pd.DataFrame:
    with warnings.catch_warnings():
        # pandas only warns (and drops data) when the first data row has more fields than the header
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            return pd.read_csv(
                io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False, index_col=False
            )
        except pd.errors.ParserWarning:
            problem = "row 2 (the first data row) has more fields than the header"
        except pd.errors.ParserError as error:
            problem = _parser_problem(str(error))
    raise DataError(
        f"{shown(name)} could not be read as CSV: {problem}. Text containing a {DELIMITERS[delimiter]} "
        'must be wrapped in double quotes, a quote inside quoted text is written twice (""), '
        "and every column needs a name in the header."
    )


def _parser_problem(message: str) -> str:
    if match := re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message):
        expected, line, saw = match.groups()
        return f"line {line} has {saw} fields where the header has {expected}"
    if match := re.search(r"EOF inside string starting at row (\d+)", message):
        return f'the quote (") opened in row {int(match.group(1)) + 1} is never closed'
    return shown(message.strip(), 200)


def _tidy_columns(frame: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Strip spaces around column names; drop unnamed columns that are a row index or empty."""
    names = [str(column).strip() for column in frame.columns]
    if len(set(names)) == len(names):
        frame.columns = names
    for column in list(frame.columns):
        if column and not column.startswith("Unnamed:"):
            continue
        values = frame[column].str.strip()
        if (values == "").all():
            notes.append(f"dropped the empty column '{column}' (it has no name and no values)")
        elif _is_row_index(values):
            notes.append(f"dropped the unnamed column '{column}': it numbers the rows (0, 1, 2, ...)")
        else:
            continue
        frame = frame.drop(columns=column)
    return frame


def _is_row_index(values: pd.Series) -> bool:
    numbers = pd.to_numeric(values, errors="coerce")
    whole = numbers.notna().all() and (numbers == numbers.round()).all()
    return bool(whole and numbers.is_unique and numbers.is_monotonic_increasing)


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _check_header(frame: pd.DataFrame, name: str) -> None:
    """Refuse a first line that is data rather than column names."""
    for column in frame.columns:
        if not column or column.startswith("Unnamed:"):
            continue
        values = frame[column].str.strip()
        if _is_number(column):
            why = "a number"
        elif len(column.split()) >= 8 or len(column) > 80:
            why = "a whole sentence"
        elif (
            column.lower() not in LABEL_HINTS and values.nunique() <= MAX_CLASSES and (values == column).any()
        ):
            why = "also one of the values in that column"
        else:
            continue
        raise DataError(
            f"The first line of {shown(name)} looks like data, not a header: the column name "
            f"'{shown(column, 40)}' is {why}. "
            "Add a header line naming the columns as the first line of the file, for example `text,label` "
            "(or, if that line is the header, rename that column)."
        )


def read_table(source: bytes | str | os.PathLike, *, name: str = "the file") -> Table:
    """Read a CSV (a path, or the bytes of an upload) and guess its text and label columns."""
    raw, name = _read_source(source, name)
    text, encoding = _decode(raw, name) if raw.strip() else ("", "utf-8")
    if not text.strip():
        raise DataError(
            f"{shown(name)} is empty. Upload a CSV file with a header line such as `text,label` "
            "followed by one row per example."
        )
    delimiter = _sniff_delimiter(text)
    notes = [f"read as {encoding} with {DELIMITERS[delimiter]} delimiters"]
    frame = _tidy_columns(_parse(text, delimiter, name), notes)
    _check_header(frame, name)
    if frame.empty:
        columns = ", ".join(f"'{shown(column)}'" for column in frame.columns[:10])
        raise DataError(
            f"{shown(name)} has a header line ({columns}) but no data rows. Add one row per example."
        )
    notes.append(f"{len(frame):,} rows and {frame.shape[1]} columns")
    text_column, label_column = infer_columns(frame, name=name)
    candidates = rank_label_columns(frame, text_column)
    return Table(frame, encoding, delimiter, text_column, label_column, candidates, notes, name)
