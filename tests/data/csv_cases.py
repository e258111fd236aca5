"""CSV files as bytes for the data tests, and the check that a bad file's DataError says what, where and what to do."""

import pytest

from ffnlp_core.data.errors import DataError
from ffnlp_core.data.labels import load_labeled


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

TWO_CLASSES = ["good film,pos", "bad film,neg", "great plot,pos", "weak plot,neg"]


def assert_data_error(raw: bytes, columns: dict, expected: list[str]) -> None:
    """load_labeled(raw) as 'upload.csv' raises a DataError whose message holds every expected fragment."""
    with pytest.raises(DataError) as caught:
        load_labeled(raw, name="upload.csv", **columns)
    message = str(caught.value)
    for fragment in expected:
        assert fragment in message
