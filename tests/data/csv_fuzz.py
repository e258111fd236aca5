"""A seeded generator of odd CSV uploads for tests/data/test_fuzz.py, and the worker process that reads them.

`generate(seed, n)` yields Samples: a random well-formed file (delimiter, quoting, encoding and BOM, line
endings, text style, label style, extra and duplicate columns, empty cells, huge fields, one class or too
many), each with what must happen (how many classes and rows if it trains, or that it is refused), then for
part of them a byte-level mutation (flips, truncation, NUL bytes, stray quotes, spans cut or doubled) after
which only "a clean error or a data set" is required. `serve(conn)` runs each file through the upload path
(read_table -> to_labeled -> build_dataset) in a process of its own, so a hang can be timed out and killed.
"""

from __future__ import annotations

import csv
import io
import random
import traceback
from collections import Counter
from dataclasses import dataclass, field

from ffnlp_core.data.columns import MAX_CLASSES

WORDS = (  # noqa: SIM905
    "the film was good bad great awful plot acting music scene ending story slow fast funny boring "
    "loved hated watch again never always friend family night day really quite movie cast"
).split()
LATIN = ["café", "naïve", "crème", "brûlée", "über", "señor", "façade", "jalapeño", "smörgåsbord"]
UNICODE = ["😀", "🎬", "映画", "とても", "良い", "Привет", "мир", "שלום", "مرحبا"]
UNICODE += ["𝒻𝓊𝓃", "ﬁne"]  # outside the BMP, a ligature
ODD = ['"quoted"', "a,b", "x;y", "p|q", "tab\there", "line\nbreak", "&amp; &#128514;", "[link](http://x.y)"]
ODD += ["**bold**", "$x$", ":red[no]", "<b>hi</b>", "back\\slash", "cr\rin", "  padded  "]
TEXT_COLUMNS = [
    "text",
    "comment",
    "tweet",
    "Review Text",
    "  text  ",
    "bad\r\nname",
    "[answers](https://x.y)",
]
LABEL_COLUMNS = ["label", "class", "sentiment", "target", "Label", "category"]
MISSING_LABELS = ["", "NA", "nan", "null", "None", "n/a", " "]
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1252", "latin-1"]


@dataclass
class Sample:
    """One generated file and what must come of it."""

    data: bytes
    description: str
    classes: int | None  # classes of the data set it must build; 0: it must be refused; None: either
    rows: int | None = None  # rows kept when it builds, where known
    notes: list[str] = field(default_factory=list)


# ---- labels --------------------------------------------------------------------------------------------


def _label_names(rng: random.Random, style: str, k: int) -> list[list[str]]:
    """For each of k classes, the spellings of its label (all of one class are the same class)."""
    if style == "words":
        pool = ["pos", "neg", "neutral", "toxic", "ok", "spam", "ham", "négatif", "😀", "a b", "x,y"]
        pool.append('"q"')
        names = rng.sample(pool, k) if k <= len(pool) else [f"class_{i}" for i in range(k)]
        return [[name] for name in names]
    if style == "ints":
        start = rng.choice([0, 1, -3, 100])
        return [[str(start + i)] for i in range(k)]
    if style == "int-spellings":  # "1" and "1.0" are one class
        return [[str(i), f"{i}.0"] for i in range(k)]
    if style == "big-ints":  # beyond int64 and float64: exact
        base = 12345678901234567890
        return [[str(base + i)] for i in range(k)]
    if style == "sci":  # 1e20, 2e20, ...: also spelled out in full
        return [[f"{i + 1}e20", str((i + 1) * 10**20)] for i in range(k)]
    if style == "bools":
        return [["true", "True", "TRUE"], ["false", "False", "FALSE"]][:k]
    if style == "padded":
        return [[f"  c{i}  ", f"c{i}"] for i in range(k)]
    raise ValueError(style)


def _label_style(rng: random.Random, k: int) -> str:
    styles = ["words", "ints", "big-ints", "sci", "padded"]
    if k <= 20:
        styles.append("int-spellings")  # two spellings a class: at most 2k distinct strings
    if k == 2:
        styles.append("bools")
    return rng.choice(styles)


# ---- texts ---------------------------------------------------------------------------------------------


def _text(rng: random.Random, style: str, i: int) -> str:
    words = rng.choices(WORDS, k=rng.randint(2, 12))
    if style == "latin":
        words += rng.choices(LATIN, k=2)
    elif style == "unicode":
        words += rng.choices(UNICODE, k=3)
    elif style == "odd":
        words += rng.choices(ODD, k=2)
    rng.shuffle(words)
    return " ".join(words) + f" number{i}"  # every text distinct, as comments are


# ---- a well-formed file --------------------------------------------------------------------------------


def _well_formed(rng: random.Random) -> Sample:
    shapes = ["normal", "one class", "many classes", "max classes", "numeric text"]
    shape = rng.choices(shapes, [16, 2, 2, 1, 1])[0]
    k = {"one class": 1, "many classes": rng.randint(51, 70), "max classes": 50}.get(shape, rng.randint(2, 8))
    per_class = rng.randint(2, 12) if shape != "normal" else rng.randint(3, 40)
    n = k * per_class
    label_style = _label_style(rng, k) if shape == "normal" else rng.choice(["words", "ints"])
    spellings = _label_names(rng, label_style, k)
    text_style = rng.choice(["ascii", "latin", "unicode", "odd"])
    classes = [i % k for i in range(n)]
    rng.shuffle(classes)
    texts = [_text(rng, text_style, i) for i in range(n)]
    if shape == "numeric text":  # scores where the text should be: refused, never swapped with the label
        texts = [f"{rng.uniform(-1e6, 1e6):.3f}" for _ in range(n)]
    labels = [rng.choice(spellings[c]) for c in classes]
    notes = [shape, f"{k} classes", f"labels {label_style}", f"texts {text_style}"]

    kept = [True] * n
    if shape == "normal" and rng.random() < 0.3:  # empty texts and missing labels: those rows dropped
        for i in rng.sample(range(n), rng.randint(1, max(1, n // 5))):
            kept[i] = False
            if rng.random() < 0.5:
                texts[i] = rng.choice(["", "   ", "\t"])
            else:
                labels[i] = rng.choice(MISSING_LABELS)
        notes.append(f"{kept.count(False)} rows emptied")
    if rng.random() < 0.1:
        i = rng.choice([i for i in range(n) if kept[i]])  # a kept row: an emptied one stays empty
        texts[i] = " ".join(rng.choices(WORDS, k=rng.randint(20_000, 60_000)))  # a field of 100-400 KB
        notes.append("huge field")

    text_column, label_column = rng.choice(TEXT_COLUMNS), rng.choice(LABEL_COLUMNS)
    header, columns = [text_column, label_column], [texts, labels]
    if rng.random() < 0.5:
        header, columns = header[::-1], columns[::-1]
    extras = ["none", "none", "id", "index", "empty trailing"]
    if shape == "normal":  # with one class or too many, another short column would become the label
        extras += ["source", "duplicate text"]
    extra = rng.choice(extras)
    if extra == "id":
        header, columns = ["id", *header], [[str(1000 + i) for i in range(n)], *columns]
    elif extra == "index":  # a spreadsheet export: an unnamed column numbering the rows
        header, columns = ["", *header], [[str(i) for i in range(n)], *columns]
    elif extra == "source":  # another short column of few values: a label candidate ranked after the label
        header.append("source")
        columns.append([rng.choice(["web", "app", "mail"]) for _ in range(n)])
    elif extra == "duplicate text":  # pandas renames the second one "text.1"
        header.append(text_column)
        columns.append([t.upper() for t in texts])
    elif extra == "empty trailing":  # every line ends with a delimiter
        header.append("")
        columns.append([""] * n)
    notes.append(f"extra column {extra}")
    records = [header, *map(list, zip(*columns, strict=True))]

    data = _serialize(rng, records, notes)
    kept_classes = Counter(c for c, keep in zip(classes, kept, strict=True) if keep)
    refused = (
        shape == "numeric text"
        or len(kept_classes) < 2
        or len(kept_classes) > MAX_CLASSES
        or min(kept_classes.values()) < 2
    )
    description = ", ".join(notes)
    if refused:
        return Sample(data, description, 0, notes=notes)
    return Sample(data, description, len(kept_classes), sum(kept), notes)


def _serialize(rng: random.Random, records: list[list[str]], notes: list[str]) -> bytes:
    delimiter = rng.choice([",", ",", ";", "\t", "|"])
    quoting = rng.choice([csv.QUOTE_MINIMAL, csv.QUOTE_MINIMAL, csv.QUOTE_ALL])
    newline = rng.choice(["\n", "\r\n", "\r", "mixed"])
    lines = []
    for record in records:  # "\r\n" as the writer's terminator: a field holding "\r" or "\n" is quoted
        out = io.StringIO()
        csv.writer(out, delimiter=delimiter, quoting=quoting, lineterminator="\r\n").writerow(record)
        lines.append(out.getvalue()[:-2])
    breaks = [rng.choice(["\n", "\r\n", "\r"]) if newline == "mixed" else newline for _ in lines]
    if rng.random() < 0.15:
        breaks[rng.randrange(len(breaks))] *= 3  # blank lines say nothing
    text = "".join(line + end for line, end in zip(lines, breaks, strict=True))
    encoding = rng.choice(ENCODINGS)
    if encoding in ("cp1252", "latin-1", "utf-16-le", "utf-16-be") and not _latin(text):
        encoding = "utf-8"  # these cannot hold the text, or (without a BOM) are recognised by Latin text
    notes += [f"delimiter {delimiter!r}", f"quoting {quoting}", f"newline {newline!r}", encoding]
    return text.encode(encoding)


def _latin(text: str) -> bool:
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


# ---- byte-level mutations ------------------------------------------------------------------------------


def _flip(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 20)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def _truncate(rng, data):
    return data[: rng.randrange(len(data))]


def _nul(rng, data):
    at = rng.randrange(len(data))
    return data[:at] + b"\x00" * rng.randint(1, 4) + data[at:]


def _stray_quote(rng, data):
    at = rng.randrange(len(data))
    return data[:at] + b'"' + data[at:]


def _cut_span(rng, data):
    at = rng.randrange(len(data))
    return data[:at] + data[at + rng.randint(1, 200) :]


def _double_span(rng, data):
    at = rng.randrange(len(data))
    return data[:at] + data[at : at + rng.randint(1, 500)] + data[at:]


def _swap_delimiter(rng, data):
    old, new = rng.sample([b",", b";", b"\t", b"|"], 2)
    return data.replace(old, new, rng.randint(1, 50))


def _garbage(rng, data):
    junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    return junk + data if rng.random() < 0.5 else data + junk


def _bom(rng, data):
    return rng.choice([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00"]) + data


MUTATIONS = {
    "byte flips": _flip,
    "truncated": _truncate,
    "NUL bytes": _nul,
    "stray quote": _stray_quote,
    "span cut": _cut_span,
    "span doubled": _double_span,
    "delimiters swapped": _swap_delimiter,
    "garbage": _garbage,
    "wrong BOM": _bom,
}


def generate(seed: int, n: int):
    """n Samples, the same for the same seed: about 40% well-formed, the rest mutated at byte level."""
    rng = random.Random(seed)
    for i in range(n):
        sample = _well_formed(rng)
        if rng.random() < 0.6 and sample.data:
            name = rng.choice(list(MUTATIONS))
            sample.data = MUTATIONS[name](rng, sample.data)
            sample.classes, sample.rows = None, None
            sample.description = f"{name} of: {sample.description}"
        sample.description = f"#{i} {sample.description}"
        yield sample


# ---- the worker ----------------------------------------------------------------------------------------


def upload(data: bytes) -> tuple:
    """The upload path of the Data page: ("trained", classes, rows), ("refused", message) for a DataError,
    or ("traceback", text) for anything else."""
    from ffnlp_core.config import DataConfig
    from ffnlp_core.data.dataset import build_dataset
    from ffnlp_core.data.errors import DataError
    from ffnlp_core.data.labels import to_labeled
    from ffnlp_core.data.reading import read_table

    try:
        table = read_table(data, name="upload.csv")
        ds = build_dataset(to_labeled(table), DataConfig())
    except DataError as exc:
        return ("refused", str(exc))
    except Exception:  # noqa: BLE001 - what the fuzz test is looking for
        return ("traceback", traceback.format_exc())
    return ("trained", ds.n_classes, len(ds.labeled.texts))


def serve(conn) -> None:
    """Read files from `conn` until None; answer each with upload()'s tuple."""
    import warnings

    warnings.simplefilter("ignore")  # a warning is not a failure; a traceback is
    conn.send("ready")
    while (data := conn.recv()) is not None:
        conn.send(upload(data))
