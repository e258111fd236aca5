"""Which column holds the text and which the label: guessed from the values, named like a label first.

A text column is mostly not numbers and its values mostly distinct; a label column has 2 to MAX_CLASSES
distinct values (or is all fractions in [0, 1], which labels.py thresholds). A value counts as missing when,
stripped and lower-cased, it is one of MISSING.
"""

from __future__ import annotations

import pandas as pd

from .errors import DataError, shown

MAX_CLASSES = 50  # more distinct labels than this is refused with a clear message
LABEL_HINTS = ("label", "labels", "class", "target", "y", "category", "sentiment", "toxic", "is_toxic")
TEXT_HINTS = ("text", "comment", "tweet", "sentence", "review", "message", "content", "body")  # substrings
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


def _quoted(values, limit: int = 10) -> list[str]:
    """'a', 'b', ... for a message: at most `limit` user values, each through `shown`."""
    return [f"'{shown(value)}'" for value in list(values)[:limit]]


def _check_not_labels(frame: pd.DataFrame, text_column: str, name: str) -> None:
    """Refuse to take as the text a column of a few repeated words (labels) while a column whose values are
    mostly different holds numbers, if either is named for its role (a 'label' of words, a 'text' of
    numbers): the text is numbers, and guessing would swap text and label."""
    present = present_values(frame[text_column])
    if present.nunique() > min(MAX_CLASSES, len(present) / 2):
        return
    named_label = str(text_column).lower() in LABEL_HINTS

    def named_text(column) -> bool:
        return any(hint in str(column).lower() for hint in TEXT_HINTS)

    for column in sorted(frame.columns, key=lambda c: not named_text(c)):  # a column named 'text' first
        values = present_values(frame[column])
        if column == text_column or not (named_label or named_text(column)):
            continue
        if len(values) and values.nunique() > len(values) / 2:
            examples = ", ".join(_quoted(values, 3))
            raise DataError(
                f"Column '{shown(column)}' of {shown(name)} holds numbers (such as {examples}), not text, "
                f"and the only column with words, '{shown(text_column)}', repeats {present.nunique()} "
                "values like a label. Put the sentences to classify in a column of their own, next to the "
                "label."
            )


def infer_columns(frame: pd.DataFrame, *, name: str = "the file") -> tuple[str, str]:
    """(text_column, label_column): the longest non-numeric column, and the most label-like other one."""
    columns = list(frame.columns)
    if len(columns) < 2:
        raise DataError(
            f"{shown(name)} has only one column ('{shown(columns[0]) if columns else ''}'), so there is "
            "nothing to use as the label. Add a label column next to the text, with a header such as "
            "`text,label`."
        )
    lengths = {}  # column -> (values mostly distinct, average length)
    for column in columns:
        present = present_values(frame[column])
        if len(present) and numeric_share(present) <= 0.5:
            mostly_distinct = present.nunique() > len(present) / 2  # labels repeat, texts rarely do
            lengths[column] = (mostly_distinct, frame[column].astype(str).str.len().mean())
    if not lengths:
        raise DataError(
            f"No column of {shown(name)} holds text: every column is mostly numbers "
            f"({', '.join(_quoted(columns))}). "
            "Add a column with the sentences to classify."
        )
    text_column = max(lengths, key=lengths.get)
    _check_not_labels(frame, text_column, name)
    candidates = rank_label_columns(frame, text_column)
    if not candidates:
        found = {c: present_values(frame[c]).unique() for c in columns if c != text_column}
        found = [
            f"'{shown(c)}' holds only '{shown(v[0])}'" if len(v) == 1 else f"'{shown(c)}' has {len(v)}"
            for c, v in found.items()
        ]
        raise DataError(
            f"No column of {shown(name)} can be the label: a label column needs 2 to {MAX_CLASSES} distinct "
            f"values, but {'; '.join(found[:10])}. Add a column giving each row's class (at least two "
            "classes)."
        )
    return text_column, candidates[0]
