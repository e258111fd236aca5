"""Students' CSV files in, texts and integer labels out, plus a stratified train/dev split.

read_table guesses the encoding, the delimiter and which columns hold the text and the label;
to_labeled turns the chosen columns into LabeledTexts; stratified_split keeps every class on both sides.
Every problem with the user's data is a DataError that says what was wrong, where, and what to do.
Row numbers in messages count as a spreadsheet does: the header is row 1, the first data row is row 2.
"""

from __future__ import annotations

import io
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

MAX_CLASSES = 50  # more distinct labels than this is refused with a clear message
MIN_ROWS_PER_CLASS = 2  # a class needs rows in both train and dev

DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
LABEL_HINTS = ("label", "labels", "class", "target", "y", "category", "sentiment", "toxic", "is_toxic")
MISSING = frozenset({"", "nan", "na", "n/a", "null", "none"})  # compared lower-cased and stripped
EXCEL_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")  # xlsx (a zip archive), old xls

# A quoted field (with "" escapes), a delimiter or a line break: enough to count fields outside quotes.
_TOKEN = re.compile(r'"[^"]*(?:""[^"]*)*"|[,;\t|]|\r\n|\n|\r')
_SNIFF_CHARS = 1_000_000
_SNIFF_RECORDS = 20


class DataError(ValueError):
    """A problem with the user's data, phrased so a student can act on it (what, where, what to do)."""


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


@dataclass
class LabeledTexts:
    """The kept rows of a table as texts and integer labels 0..len(class_names)-1."""

    texts: list[str]
    labels: np.ndarray  # (n,) int64
    class_names: list[str]  # index = label id
    row_numbers: np.ndarray  # (n,) int64, 0-based position among the file's data rows
    text_column: str
    label_column: str
    dropped: dict[str, int]  # reason -> number of rows dropped for it
    notes: list[str]


# ---- reading -------------------------------------------------------------------------------------------


def _read_source(source: bytes | str | os.PathLike, name: str) -> tuple[bytes, str]:
    if isinstance(source, bytes | bytearray):
        return bytes(source), name
    path = Path(source)
    name = path.name if name == "the file" else name
    try:
        return path.read_bytes(), name
    except OSError as error:
        raise DataError(f"Could not open {path}: {error.strerror}. Check the path and try again.") from None


def _decode(raw: bytes, name: str) -> tuple[str, str]:
    """Return (text, encoding): a BOM decides, else UTF-8, else Windows-1252 (latin-1 as a last resort)."""
    if raw.startswith(EXCEL_MAGIC):
        raise DataError(
            f"{name} looks like an Excel workbook, not a CSV file; save it as CSV "
            "(File > Save As > CSV UTF-8) and upload that file."
        )
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings = ["utf-16"]  # the only case where NUL bytes belong in text
    elif b"\x00" not in raw:
        encodings = ["utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "utf-8", "cp1252", "latin-1"]
    else:
        encodings = []
    for encoding in encodings:
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise DataError(
        f"{name} contains binary data (NUL bytes), so it is not a text CSV file. "
        "Export your data as CSV (comma-separated text, UTF-8) and upload that file."
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
        f"{name} could not be read as CSV: {problem}. Text containing a {DELIMITERS[delimiter]} must be "
        'wrapped in double quotes, a quote inside quoted text is written twice (""), '
        "and every column needs a name in the header."
    )


def _parser_problem(message: str) -> str:
    if match := re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message):
        expected, line, saw = match.groups()
        return f"line {line} has {saw} fields where the header has {expected}"
    if match := re.search(r"EOF inside string starting at row (\d+)", message):
        return f'the quote (") opened in row {int(match.group(1)) + 1} is never closed'
    return message.strip()


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
        shown = column if len(column) <= 40 else column[:37] + "..."
        raise DataError(
            f"The first line of {name} looks like data, not a header: the column name '{shown}' is {why}. "
            "Add a header line naming the columns as the first line of the file, for example `text,label` "
            "(or, if that line is the header, rename that column)."
        )


def read_table(source: bytes | str | os.PathLike, *, name: str = "the file") -> Table:
    """Read a CSV (a path, or the bytes of an upload) and guess its text and label columns."""
    raw, name = _read_source(source, name)
    text, encoding = _decode(raw, name) if raw.strip() else ("", "utf-8")
    if not text.strip():
        raise DataError(
            f"{name} is empty. Upload a CSV file with a header line such as `text,label` "
            "followed by one row per example."
        )
    delimiter = _sniff_delimiter(text)
    notes = [f"read as {encoding} with {DELIMITERS[delimiter]} delimiters"]
    frame = _tidy_columns(_parse(text, delimiter, name), notes)
    _check_header(frame, name)
    if frame.empty:
        columns = ", ".join(f"'{column}'" for column in frame.columns)
        raise DataError(f"{name} has a header line ({columns}) but no data rows. Add one row per example.")
    notes.append(f"{len(frame):,} rows and {frame.shape[1]} columns")
    text_column, label_column = infer_columns(frame, name=name)
    candidates = _label_candidates(frame, text_column)
    return Table(frame, encoding, delimiter, text_column, label_column, candidates, notes, name)


# ---- guessing the columns ------------------------------------------------------------------------------


def _present(values: pd.Series) -> pd.Series:
    """The non-missing values of a column, stripped; the index still gives each one's row."""
    stripped = values.astype(str).str.strip()
    return stripped[~stripped.str.lower().isin(MISSING)]


def _numeric_share(values: pd.Series, sample: int = 5000) -> float:
    """Share of the present values that are numbers, from an evenly spaced sample (parsing is slow)."""
    present = _present(values)
    present = present.iloc[:: max(1, len(present) // sample)]
    return float(pd.to_numeric(present, errors="coerce").notna().mean()) if len(present) else 0.0


def _is_fractions(values: pd.Series) -> bool:
    """All numbers in [0, 1]: scores that to_labeled thresholds into two classes."""
    numbers = pd.to_numeric(values, errors="coerce")
    return bool(len(values) and numbers.notna().all() and numbers.between(0, 1).all())


def _label_candidates(frame: pd.DataFrame, text_column: str) -> list[str]:
    """Columns that would give 2..MAX_CLASSES classes: named like a label first, then fewest values."""
    ranked = []
    for position, column in enumerate(frame.columns):
        if column == text_column:
            continue
        present = _present(frame[column])
        distinct = present.nunique()
        if 2 <= distinct <= MAX_CLASSES or (distinct > MAX_CLASSES and _is_fractions(present)):
            hint = str(column).lower()
            rank = LABEL_HINTS.index(hint) if hint in LABEL_HINTS else len(LABEL_HINTS)
            ranked.append((rank, distinct, position, column))
    return [column for *_, column in sorted(ranked)]


def infer_columns(frame: pd.DataFrame, *, name: str = "the file") -> tuple[str, str]:
    """(text_column, label_column): the longest non-numeric column, and the most label-like other one."""
    columns = list(frame.columns)
    if len(columns) < 2:
        raise DataError(
            f"{name} has only one column ({', '.join(map(repr, columns))}), so there is nothing to use as "
            "the label. Add a label column next to the text, with a header such as `text,label`."
        )
    lengths = {}  # column -> (values mostly distinct, average length)
    for column in columns:
        present = _present(frame[column])
        if len(present) and _numeric_share(present) <= 0.5:
            mostly_distinct = present.nunique() > len(present) / 2  # labels repeat, texts rarely do
            lengths[column] = (mostly_distinct, frame[column].astype(str).str.len().mean())
    if not lengths:
        raise DataError(
            f"No column of {name} holds text: every column is mostly numbers ({', '.join(columns)}). "
            "Add a column with the sentences to classify."
        )
    text_column = max(lengths, key=lengths.get)
    candidates = _label_candidates(frame, text_column)
    if not candidates:
        found = {c: _present(frame[c]).unique() for c in columns if c != text_column}
        found = [
            f"'{c}' holds only '{v[0]}'" if len(v) == 1 else f"'{c}' has {len(v)}" for c, v in found.items()
        ]
        raise DataError(
            f"No column of {name} can be the label: a label column needs 2 to {MAX_CLASSES} distinct values, "
            f"but {'; '.join(found)}. Add a column giving each row's class (at least two classes)."
        )
    return text_column, candidates[0]


# ---- labels --------------------------------------------------------------------------------------------


def _resolve(frame: pd.DataFrame, column: str, role: str, name: str) -> str:
    """The frame's column called `column`, matching case-insensitively if needed."""
    if column in frame.columns:
        return column
    matches = [c for c in frame.columns if c.lower() == str(column).strip().lower()]
    if len(matches) == 1:
        return matches[0]
    available = ", ".join(f"'{c}'" for c in frame.columns)
    raise DataError(
        f"{name} has no column named '{column}' to use as the {role}. "
        f"Available columns: {available}. Pick one of these."
    )


def _examples(values: pd.Series, limit: int = 3) -> str:
    shown = values.drop_duplicates().head(limit)
    return ", ".join(f"'{value}' (row {position + 2})" for position, value in shown.items())


def _check_text_column(table: Table, column: str) -> None:
    values = table.frame[column]
    if _numeric_share(values) <= 0.5:
        return
    best = table.text_column
    hint = f" The column that looks most like text is '{best}'." if best != column else ""
    raise DataError(
        f"Column '{column}' of {table.name} holds numbers, not text (for example "
        f"{_examples(_present(values))}).{hint} Choose a column of sentences as the text column."
    )


def _encode_numbers(numbers: np.ndarray, column: str, name: str) -> tuple[np.ndarray, list[str], list[str]]:
    if np.all(numbers == np.round(numbers)):  # "1" and "1.0" are the same class
        classes, ids = np.unique(numbers.astype(np.int64), return_inverse=True)
        return ids.astype(np.int64), [str(c) for c in classes], []
    if np.all((numbers >= 0) & (numbers <= 1)):
        classes, ids = np.unique((numbers >= 0.5).astype(np.int64), return_inverse=True)
        note = f"labels in '{column}' are numbers between 0 and 1: thresholded at 0.5 (>= 0.5 is '1')"
        return ids.astype(np.int64), [str(c) for c in classes], [note]
    examples = ", ".join(str(x) for x in pd.unique(numbers[numbers != np.round(numbers)])[:3])
    raise DataError(
        f"Column '{column}' of {name} holds decimal numbers outside 0..1 (such as {examples}), which are "
        "scores, not classes. Round or bin them into a few classes first, or choose another label column."
    )


def _encode_labels(values: pd.Series, column: str, name: str) -> tuple[np.ndarray, list[str], list[str]]:
    """(ids, class_names, notes) for present, stripped label values."""
    numbers = pd.to_numeric(values, errors="coerce")
    is_number = numbers.notna() & np.isfinite(numbers)
    if is_number.all():
        return _encode_numbers(numbers.to_numpy(float), column, name)
    if is_number.any():
        raise DataError(
            f"Column '{column}' of {name} mixes numbers and words: numbers such as "
            f"{_examples(values[is_number])} and words such as {_examples(values[~is_number])}. "
            "Write every label the same way (for example 1 instead of 'yes'), or choose another label column."
        )
    lowered = values.str.lower()
    if lowered.isin({"true", "false"}).all():
        values = lowered.map({"true": "True", "false": "False"})
    classes, ids = np.unique(values.to_numpy(str), return_inverse=True)
    return ids.astype(np.int64), classes.tolist(), []


def _check_classes(ids: np.ndarray, class_names: list[str], column: str, name: str) -> None:
    if len(class_names) < 2:
        raise DataError(
            f"Column '{column}' of {name} has a single class, '{class_names[0]}', once rows without text or "
            "label are dropped. A classifier needs at least two classes: add rows of another class, "
            "or choose another label column."
        )
    if len(class_names) > MAX_CLASSES:
        raise DataError(
            f"Column '{column}' of {name} has {len(class_names)} distinct values, more than the {MAX_CLASSES} "
            "classes allowed; it is probably not a label column (an id, a score or free text?). "
            "Choose another label column."
        )
    counts = np.bincount(ids, minlength=len(class_names))
    small = [f"'{class_names[i]}' has {counts[i]} row" for i in np.flatnonzero(counts < MIN_ROWS_PER_CLASS)]
    if small:
        raise DataError(
            f"In column '{column}' of {name}, class {', '.join(small[:5])}: each class needs at least "
            f"{MIN_ROWS_PER_CLASS} rows to appear in both train and dev. Add rows of that class, "
            "remove its rows, or merge it into another class."
        )


def to_labeled(table: Table, text_column: str | None = None, label_column: str | None = None) -> LabeledTexts:
    """Texts and integer labels of the rows that have both; the others are counted in `dropped`."""
    frame, name = table.frame, table.name
    text_column = _resolve(frame, text_column or table.text_column, "text", name)
    label_column = _resolve(frame, label_column or table.label_column, "label", name)
    if text_column == label_column:
        raise DataError(
            f"'{text_column}' was chosen as both text and label column; pick two different columns."
        )
    _check_text_column(table, text_column)
    texts = frame[text_column].astype(str)
    labels = frame[label_column].astype(str).str.strip()
    empty_text = texts.str.strip() == ""
    missing_label = labels.str.lower().isin(MISSING) & ~empty_text  # each dropped row counted once
    dropped = {"empty text": int(empty_text.sum()), "missing label": int(missing_label.sum())}
    dropped = {reason: count for reason, count in dropped.items() if count}
    keep = ~(empty_text | missing_label)
    if not keep.any():
        raise DataError(
            f"No row of {name} is usable: {dropped.get('empty text', 0)} have no text in '{text_column}' and "
            f"{dropped.get('missing label', 0)} have no label in '{label_column}'. "
            "Fill in these columns, or choose other columns."
        )
    ids, class_names, notes = _encode_labels(labels[keep], label_column, name)
    _check_classes(ids, class_names, label_column, name)
    return LabeledTexts(
        texts=texts[keep].tolist(),
        labels=ids,
        class_names=class_names,
        row_numbers=np.flatnonzero(keep.to_numpy()).astype(np.int64),
        text_column=text_column,
        label_column=label_column,
        dropped=dropped,
        notes=notes,
    )


def load_labeled(
    source: bytes | str | os.PathLike,
    text_column: str | None = None,
    label_column: str | None = None,
    *,
    name: str = "the file",
) -> LabeledTexts:
    """read_table, then to_labeled."""
    return to_labeled(read_table(source, name=name), text_column, label_column)


# ---- splitting -----------------------------------------------------------------------------------------


def stratified_split(
    labels: np.ndarray, dev_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, dev_idx), sorted int64: about dev_fraction of each class goes to dev, at least one row."""
    if not 0 < dev_fraction < 1:
        raise DataError(f"dev_fraction must be between 0 and 1, got {dev_fraction}; 0.2 keeps 20% for dev.")
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise DataError(f"stratified_split needs a non-empty 1-D array of labels, got shape {labels.shape}.")
    rng = np.random.default_rng(seed)
    dev_parts = []
    for label, count in zip(*np.unique(labels, return_counts=True), strict=True):
        if count < 2:
            raise DataError(
                f"Class {label} has only {count} row; each class needs at least 2 rows to appear in both "
                "train and dev. Add rows of that class, or merge it into another class."
            )
        rows = rng.permutation(np.flatnonzero(labels == label))
        dev_parts.append(rows[: min(max(round(count * dev_fraction), 1), count - 1)])
    dev = np.sort(np.concatenate(dev_parts)).astype(np.int64)
    train = np.setdiff1d(np.arange(len(labels)), dev).astype(np.int64)
    return train, dev
