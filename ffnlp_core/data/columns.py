"""Which column holds the text and which the label: guessed from the values, named like a label first.

A text column is mostly not numbers and its values mostly distinct; a label column has 2 to MAX_CLASSES
distinct values (or is all fractions in [0, 1], which labels.py thresholds). A value counts as missing when,
stripped and lower-cased, it is one of MISSING.
"""

from __future__ import annotations

import pandas as pd

from .errors import DataError

MAX_CLASSES = 50  # more distinct labels than this is refused with a clear message
LABEL_HINTS = ("label", "labels", "class", "target", "y", "category", "sentiment", "toxic", "is_toxic")
MISSING = frozenset({"", "nan", "na", "n/a", "null", "none"})  # compared lower-cased and stripped


def present_values(values: pd.Series) -> pd.Series:
    """The non-missing values of a column, stripped; the index still gives each one's row."""
    stripped = values.astype(str).str.strip()
    return stripped[~stripped.str.lower().isin(MISSING)]


def numeric_share(values: pd.Series, sample: int = 5000) -> float:
    """Share of the present values that are numbers, from an evenly spaced sample (parsing is slow)."""
    present = present_values(values)
    present = present.iloc[:: max(1, len(present) // sample)]
    return float(pd.to_numeric(present, errors="coerce").notna().mean()) if len(present) else 0.0


def _is_fractions(values: pd.Series) -> bool:
    """All numbers in [0, 1]: scores that to_labeled thresholds into two classes."""
    numbers = pd.to_numeric(values, errors="coerce")
    return bool(len(values) and numbers.notna().all() and numbers.between(0, 1).all())


def rank_label_columns(frame: pd.DataFrame, text_column: str) -> list[str]:
    """Columns that would give 2..MAX_CLASSES classes: named like a label first, then fewest values."""
    ranked = []
    for position, column in enumerate(frame.columns):
        if column == text_column:
            continue
        present = present_values(frame[column])
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
        present = present_values(frame[column])
        if len(present) and numeric_share(present) <= 0.5:
            mostly_distinct = present.nunique() > len(present) / 2  # labels repeat, texts rarely do
            lengths[column] = (mostly_distinct, frame[column].astype(str).str.len().mean())
    if not lengths:
        raise DataError(
            f"No column of {name} holds text: every column is mostly numbers ({', '.join(columns)}). "
            "Add a column with the sentences to classify."
        )
    text_column = max(lengths, key=lengths.get)
    candidates = rank_label_columns(frame, text_column)
    if not candidates:
        found = {c: present_values(frame[c]).unique() for c in columns if c != text_column}
        found = [
            f"'{c}' holds only '{v[0]}'" if len(v) == 1 else f"'{c}' has {len(v)}" for c, v in found.items()
        ]
        raise DataError(
            f"No column of {name} can be the label: a label column needs 2 to {MAX_CLASSES} distinct values, "
            f"but {'; '.join(found)}. Add a column giving each row's class (at least two classes)."
        )
    return text_column, candidates[0]
