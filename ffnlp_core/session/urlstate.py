"""The setup in the URL, like TensorFlow Playground: `?cfg=<urlsafe base64 of compact JSON>` holds the data
choice (a built-in set) and every setting that differs from the defaults; opening such a link restores the
setup (never weights). `?classroom=1` asks for the classroom view (larger type, advanced controls hidden).

Decoding trusts nothing: size-capped, strict base64 and JSON, known fields of the right types only,
`RunConfig.validate()`, and only built-in data sources (a link must never make the server read a path).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit, urlunsplit

from ..config import ConfigError, DataConfig, ModelConfig, RunConfig, TrainConfig
from ..data import samples
from ..data.errors import DataError

PARAM = "cfg"
CLASSROOM_PARAM = "classroom"
MAX_PARAM_CHARS = 4000
# Columns of the built-in sets are inferred; an uploaded file cannot travel in a link.
_NOT_SHARED = ("text_column", "label_column")
_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}

# The classroom view (?classroom=1), for a projector: every rem-sized text 1.44x (headings, metrics, captions,
# buttons, labels; charts are scaled by plots/projector.py), narrower page margins so that the larger text still
# fits a 1280x720 window, and no advanced controls (pages put them in containers keyed "advanced_...").
CLASSROOM_CSS = """
html { font-size: 23px; }
[data-testid="stMainBlockContainer"] { padding: 2rem 1.5rem 4rem 1.5rem; max-width: none; }
[class*="st-key-advanced"] { display: none !important; }
"""


class UrlStateError(ValueError):
    """A shared link whose setup cannot be used, with what is wrong."""


def encode(cfg: RunConfig) -> tuple[str, list[str]]:
    """The `cfg` parameter value for this setup, and notes on what a link cannot carry."""
    full, default = cfg.to_dict(), RunConfig().to_dict()
    notes: list[str] = []
    if not str(cfg.data.source).startswith("builtin:"):
        notes.append("your own data cannot travel in a link: it opens with the built-in comments")
        full["data"]["source"] = default["data"]["source"]
    compact: dict = {}
    for section, values in full.items():
        changed = {k: v for k, v in values.items() if v != default[section][k] and k not in _NOT_SHARED}
        if changed:
            compact[section] = changed
    text = json.dumps(compact, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("="), notes


def decode(value: str) -> RunConfig:
    """The RunConfig a `cfg` parameter holds (defaults for what it leaves out); UrlStateError if not valid."""
    if not value or len(value) > MAX_PARAM_CHARS:
        raise UrlStateError(f"the link's setup is empty or too long (at most {MAX_PARAM_CHARS} characters)")
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
        compact = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise UrlStateError(
            "the link's setup is not readable (it may have been cut off when copied); "
            "copy the whole link again"
        ) from exc
    if not isinstance(compact, dict):
        raise UrlStateError("the link's setup is not a set of settings")
    for section, values in compact.items():
        if section not in _SECTIONS or not isinstance(values, dict):
            raise UrlStateError(f"the link holds an unknown part {section!r}; use data, model, train")
        for name, v in values.items():
            _check_type(section, name, v)
    source = (compact.get("data") or {}).get("source", DataConfig().source)
    name = source.split(":", 1)[1] if source.startswith("builtin:") else None
    if name not in samples.SAMPLES:
        raise UrlStateError(
            f"a link can only name a built-in data set ({', '.join(samples.SAMPLES)}), not {source!r}"
        )
    try:
        return RunConfig.from_dict(compact).validate()
    except (ConfigError, TypeError) as exc:
        raise UrlStateError(f"the link's setup is not valid: {exc}") from exc


def _check_type(section: str, name: str, value) -> None:
    """Each value must have its field's type (as annotated), so validate() never meets a surprise."""
    fields = {f.name: f for f in dataclasses.fields(_SECTIONS[section])}
    if name not in fields:
        raise UrlStateError(f"the link holds an unknown {section} setting {name!r}")
    kind = str(fields[name].type)
    ok = {
        "str": isinstance(value, str),
        "str | None": value is None or isinstance(value, str),
        "int | None": value is None or (isinstance(value, int) and not isinstance(value, bool)),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "list[int]": isinstance(value, list)
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value),
        "dict[str, str]": isinstance(value, dict) and all(isinstance(v, str) for v in value.values()),
    }.get(kind, False)
    if not ok:
        raise UrlStateError(f"the link's {section}.{name} should be {kind}, got {value!r}")


def share_link(page_url: str, cfg: RunConfig, page: str = "model", classroom: bool = False) -> str:
    """A link to `page` of this app (from any page's URL) that restores `cfg`; no session or run id."""
    parts = urlsplit(page_url)
    path = parts.path.rstrip("/")
    base = path.rsplit("/", 1)[0] if path.rsplit("/", 1)[-1] in _PAGES else path
    query = {PARAM: encode(cfg)[0], **({CLASSROOM_PARAM: "1"} if classroom else {})}
    return urlunsplit((parts.scheme, parts.netloc, f"{base}/{page}", urlencode(query), ""))


_PAGES = {"data", "model", "train", "gradients", "representations", "playground", "lessons", "lab", "compare"}


def classroom_flag(params: Mapping[str, str]) -> bool | None:
    """True for ?classroom=1 (or true/on/yes), False for 0/false/off/no, None when absent or unclear."""
    value = str(params.get(CLASSROOM_PARAM, "")).strip().lower()
    return _FLAGS.get(value)


_FLAGS = {
    "1": True,
    "true": True,
    "on": True,
    "yes": True,
    "0": False,
    "false": False,
    "off": False,
    "no": False,
}


def _build(table, cfg: DataConfig, upload_key: str):
    from ..data.dataset import build_dataset  # here: a page that only reads ?classroom= imports none of it
    from ..data.labels import to_labeled

    return build_dataset(to_labeled(table, cfg.text_column, cfg.label_column), cfg)


def apply_to_workspace(ws, params: Mapping[str, str], build=_build) -> bool:
    """Restore a shared setup into a workspace: the built-in data set, its dataset and the whole config.

    Tries each distinct link once per workspace (a reload does not undo later edits) and returns True
    when it changed something. UrlStateError when the link is not usable (the settings and data stay
    as they were). The caller refreshes what depends on the UI (widget state, the dataset key).
    `build(table, data_config, upload_key)` makes the dataset (the app passes its server-wide cache: a
    class opens the same link at once).
    """
    value = params.get(PARAM)
    if not value or ws.extras.get("urlstate_applied") == value:
        return False
    ws.extras["urlstate_applied"] = value  # tried once: a refused link does not complain on every rerun
    cfg = decode(value)
    name = cfg.data.source.split(":", 1)[1]
    try:
        from ..data.reading import read_table

        table = read_table(samples.sample_csv_bytes(name), name=f"built-in {name}")
        cfg.data.text_column = cfg.data.text_column or table.text_column
        cfg.data.label_column = cfg.data.label_column or table.label_column
        dataset = build(table, cfg.data, f"builtin:{name}")
    except DataError as exc:
        raise UrlStateError(f"the link's data settings do not work: {exc}") from exc
    ws.upload_key, ws.data_name, ws.data_error = f"builtin:{name}", f"built-in: {name}", ""
    ws.config, ws.table, ws.dataset = cfg, table, dataset
    return True
