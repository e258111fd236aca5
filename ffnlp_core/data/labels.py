"""A Table's chosen columns as texts and integer labels (LabeledTexts), and a stratified train/dev split.

to_labeled drops rows without text or label (counting them), encodes the labels (whole numbers compared
exactly and sorted numerically, fractions in [0, 1] thresholded at 0.5, words sorted) and refuses too few or
too many classes; stratified_split keeps every class on both sides. Row numbers in messages count as a
spreadsheet does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import numpy as np
import pandas as pd

from .columns import MAX_CLASSES, MISSING, numeric_share, present_values
from .errors import DataError, shown
from .reading import Table, read_table

MIN_ROWS_PER_CLASS = 2  # a class needs rows in both train and dev


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


def _resolve(frame: pd.DataFrame, column: str, role: str, name: str) -> str:
    """The frame's column called `column`, matching case-insensitively if needed."""
    if column in frame.columns:
        return column
    matches = [c for c in frame.columns if c.lower() == str(column).strip().lower()]
    if len(matches) == 1:
        return matches[0]
    available = ", ".join(f"'{shown(c)}'" for c in frame.columns[:20])
    raise DataError(
        f"{shown(name)} has no column named '{shown(column)}' to use as the {role}. "
        f"Available columns: {available}. Pick one of these."
    )


def _examples(values: pd.Series, limit: int = 3) -> str:
    first = values.drop_duplicates().head(limit)
    return ", ".join(f"'{shown(value)}' (row {position + 2})" for position, value in first.items())


def _check_text_column(table: Table, column: str) -> None:
    values = table.frame[column]
    if numeric_share(values) <= 0.5:
        return
    best = table.text_column
    hint = f" The column that looks most like text is '{shown(best)}'." if best != column else ""
    raise DataError(
        f"Column '{shown(column)}' of {shown(table.name)} holds numbers, not text (for example "
        f"{_examples(present_values(values))}).{hint} Choose a column of sentences as the text column."
    )


def _whole_number(text: str) -> int | None:
    """The exact integer a label spells ("1", "1.0", "1e20", "12345678901234567890"), or None."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite() or value != value.to_integral_value() or value.adjusted() > 400:
        return None
    return int(value)


def _encode_numbers(values: pd.Series, column: str, name: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Numeric labels: whole numbers are classes, compared exactly (never through float64 or int64, which
    merge 12345678901234567890 and 12345678901234567891 or overflow at 1e20); "1" and "1.0" are one class."""
    spellings = values.unique()  # parse each distinct spelling once
    whole = {text: _whole_number(text) for text in spellings}
    if all(number is not None for number in whole.values()):
        classes = sorted(set(whole.values()))
        position = {number: i for i, number in enumerate(classes)}
        ids = values.map({text: position[number] for text, number in whole.items()}).to_numpy(np.int64)
        return ids, [str(c) for c in classes], []
    numbers = pd.to_numeric(values).to_numpy(float)
    if np.all((numbers >= 0) & (numbers <= 1)):
        classes, ids = np.unique((numbers >= 0.5).astype(np.int64), return_inverse=True)
        note = f"labels in '{column}' are numbers between 0 and 1: thresholded at 0.5 (>= 0.5 is '1')"
        return ids.astype(np.int64), [str(c) for c in classes], [note]
    odd = [text for text, number in whole.items() if number is None][:3]
    examples = ", ".join(f"'{shown(text)}'" for text in odd)
    raise DataError(
        f"Column '{shown(column)}' of {shown(name)} holds decimal numbers outside 0..1 (such as {examples}), "
        "which are scores, not classes. Round or bin them into a few classes first, or choose another label "
        "column."
    )


def _encode_labels(values: pd.Series, column: str, name: str) -> tuple[np.ndarray, list[str], list[str]]:
    """(ids, class_names, notes) for present, stripped label values."""
    numbers = pd.to_numeric(values, errors="coerce")
    is_number = numbers.notna() & np.isfinite(numbers)
    if is_number.all():
        return _encode_numbers(values, column, name)
    if is_number.any():
        raise DataError(
            f"Column '{shown(column)}' of {shown(name)} mixes numbers and words: numbers such as "
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
            f"Column '{shown(column)}' of {shown(name)} has a single class, '{shown(class_names[0])}', once "
            "rows without text or label are dropped. A classifier needs at least two classes: add rows of "
            "another class, or choose another label column."
        )
    if len(class_names) > MAX_CLASSES:
        raise DataError(
            f"Column '{shown(column)}' of {shown(name)} has {len(class_names)} distinct values, more than "
            f"the {MAX_CLASSES} classes allowed; it is probably not a label column (an id, a score or free "
            "text?). Choose another label column."
        )
    counts = np.bincount(ids, minlength=len(class_names))
    small = [
        f"'{shown(class_names[i])}' has {counts[i]} row" for i in np.flatnonzero(counts < MIN_ROWS_PER_CLASS)
    ]
    if small:
        raise DataError(
            f"In column '{shown(column)}' of {shown(name)}, class {', '.join(small[:5])}: each class needs "
            f"at least {MIN_ROWS_PER_CLASS} rows to appear in both train and dev. Add rows of that class, "
            "remove its rows, or merge it into another class."
        )


def to_labeled(table: Table, text_column: str | None = None, label_column: str | None = None) -> LabeledTexts:
    """Texts and integer labels of the rows that have both; the others are counted in `dropped`."""
    frame, name = table.frame, table.name
    text_column = _resolve(frame, text_column or table.text_column, "text", name)
    label_column = _resolve(frame, label_column or table.label_column, "label", name)
    if text_column == label_column:
        raise DataError(
            f"'{shown(text_column)}' was chosen as both text and label column; pick two different columns."
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
            f"No row of {shown(name)} is usable: {dropped.get('empty text', 0)} have no text in "
            f"'{shown(text_column)}' and {dropped.get('missing label', 0)} have no label in "
            f"'{shown(label_column)}'. "
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
                f"Class {shown(label)} has only {count} row; each class needs at least 2 rows to appear in "
                "both train and dev. Add rows of that class, or merge it into another class."
            )
        rows = rng.permutation(np.flatnonzero(labels == label))
        dev_parts.append(rows[: min(max(round(count * dev_fraction), 1), count - 1)])
    dev = np.sort(np.concatenate(dev_parts)).astype(np.int64)
    train = np.setdiff1d(np.arange(len(labels)), dev).astype(np.int64)
    return train, dev
