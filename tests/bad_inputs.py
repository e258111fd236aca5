"""The bad-input matrix shared by the core, CLI, app and browser tests: CSV bytes for each case a class
throws at the app, with what must happen (a DataError whose message contains `error`, or data that loads)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    error: str | None = None  # a phrase the DataError message must contain; None: it must load
    text_column: str | None = None
    label_column: str | None = None
    min_df: int = 1
    kept: int | None = None  # rows kept when it loads
    dropped: dict | None = None


def rows(n: int, label=lambda i: i % 2, text=lambda i: f"comment number {i} about things") -> list[str]:
    return [f'"{text(i)}",{label(i)}' for i in range(n)]


def csv(lines: list[str], header: str = "text,label", encoding: str = "utf-8", newline: str = "\n") -> bytes:
    return newline.join([header, *lines]).encode(encoding)


CASES = [
    Case("empty file", b"", error="empty"),
    Case("header only", b"text,label\n", error="no data rows"),
    Case("no header", csv(rows(20), header='"a first comment that is really data",1'), error="header"),
    Case("binary renamed .csv", bytes(range(256)) * 40, error="binary"),
    Case("excel workbook", b"PK\x03\x04" + b"\x14\x00\x06\x00" * 200, error="Excel"),
    Case("old excel", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 500, error="Excel"),
    Case("utf-16", csv(rows(20, text=lambda i: f"naïve café comment {i}"), encoding="utf-16"), kept=20),
    Case(
        "latin-1 accents",
        csv(rows(20, text=lambda i: f"crème brûlée à la café {i}"), encoding="latin-1"),
        kept=20,
    ),
    Case(
        "semicolon separated",
        b"text;label\n" + "\n".join(f"comment {i}, with a comma;{i % 2}" for i in range(20)).encode(),
        kept=20,
    ),
    Case(
        "tab separated",
        b"text\tlabel\n" + "\n".join(f"comment {i}, with a comma\t{i % 2}" for i in range(20)).encode(),
        kept=20,
    ),
    Case(
        "quoted newlines and quotes",
        csv(rows(20, text=lambda i: f'line one {i}\nline ""two"" here')),
        kept=20,
    ),
    Case("one class only", csv(rows(20, label=lambda i: 1)), error="holds only '1'"),
    Case("100 classes", csv(rows(300, label=lambda i: f"class{i % 100}")), error="has 100"),
    Case(
        "a class with one row",
        csv(rows(20, label=lambda i: "rare" if i == 0 else ["pos", "neg"][i % 2])),
        error="'rare'",
    ),
    Case(
        "labels mix 1, 1.0 and yes", csv(rows(21, label=lambda i: ["1", "1.0", "yes"][i % 3])), error="mixes"
    ),
    Case(
        "nan labels",
        csv(rows(24, label=lambda i: "" if i % 4 == 0 else i % 2)),
        kept=18,
        dropped={"missing label": 6},
    ),
    Case(
        "empty and whitespace texts",
        csv(rows(24, text=lambda i: "   " if i % 6 == 0 else ("" if i % 6 == 1 else f"words {i}"))),
        kept=16,
        dropped={"empty text": 8},
    ),
    Case(
        "a 100,000-character comment",
        csv(rows(20, text=lambda i: ("long words here " * 6250) if i == 3 else f"short {i}")),
        kept=20,
    ),
    Case(
        "numeric column chosen as text",
        b"count,text,label\n" + b"\n".join(f"{i},comment {i},{i % 2}".encode() for i in range(20)),
        error="numbers",
        text_column="count",
        label_column="label",
    ),
    Case("vocabulary empty after min_df", csv(rows(20)), error="min_df", min_df=50),
    Case(
        "utf-16 without a BOM",
        csv(rows(20, text=lambda i: f"naïve café comment {i}"), encoding="utf-16-le"),
        kept=20,
    ),
    Case("labels beyond int64", csv(rows(20, label=lambda i: ["1e20", "2e20"][i % 2])), kept=20),
    Case(
        "numbers where the text should be",
        csv([f"{i * 7.5},{['pos', 'neg'][i % 2]}" for i in range(20)]),
        error="holds numbers",
    ),
    Case(
        "a column name with a line break",
        csv(rows(20, label=lambda i: 1), header='text,"bad\r\nname"'),
        error="holds only '1'",
    ),
    Case(
        "a column name in Markdown",
        csv(rows(20, label=lambda i: 1), header="text,[answers](https://x.y)"),
        error="holds only '1'",
    ),
]
