"""The model file users download and upload again (Compare runs): a zip with the weights as safetensors
(never pickled), the run's config.json and model.json (vocabulary, classes); and the network rebuilt from
those parts, checked before it is used (`BundleError` says what is wrong, in one line). The run store writes
and reads a saved run's model with the same two pieces (`weights_bytes`, `rebuild`).

An upload is checked before anything large is allocated: the zip's entry count, every part's compression
method and packed and unpacked size (read in bounded chunks, so a zip bomb stops at the cap), config.json
and model.json against the bounds the app's own settings declare (layers, widths, vocabulary, classes,
n-grams), and the safetensors header (parsed here: names, float32 only, the shapes the config and
model.json give) before any tensor is read or the network built; the weights must then be finite.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from typing import TYPE_CHECKING

from ..config import MAX_NAMED_CLASSES, ConfigError, RunConfig
from ..nn.shapes import layer_names

if TYPE_CHECKING:  # torch, safetensors and scikit-learn are imported where weights are read or written
    from ..data.features import BagOfWords
    from ..nn.model import FeedForwardClassifier

MAX_BUNDLE_BYTES = 512 * 1024 * 1024  # the upload itself
MAX_ENTRIES = 16  # zip entries (ours has 3): the directory is parsed into objects on opening
MAX_PART_BYTES = {  # each part, packed and unpacked
    "config.json": 1024 * 1024,
    "model.json": 64 * 1024 * 1024,  # a 1,000,000-word tf-idf vocabulary is about 40 MB
    "model.safetensors": MAX_BUNDLE_BYTES,
}
MAX_HEADER_BYTES = 1024 * 1024  # the safetensors JSON header (ours: well under 1 KB)
MAX_CLASS_CHARS = 1000  # characters in one class label
READ_CHUNK = 1024 * 1024
COMPRESSIONS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}  # bounded output per read
WEIGHT_DTYPE = "F32"  # the only dtype a model file holds (safetensors' name for float32)


class BundleError(ValueError):
    """An uploaded model file that cannot be used, with what is wrong."""


def weights_bytes(model: FeedForwardClassifier) -> bytes:
    from safetensors.torch import save as save_safetensors

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return save_safetensors(tensors)


def expected_shapes(vocab_size: int, hidden_sizes: list[int], n_classes: int) -> dict[str, tuple[int, ...]]:
    """The network's tensors and their shapes, from its sizes alone (no torch): the first layer reads the
    sparse input and stores its weight as (in, out), the others as nn.Linear does, (out, in)."""
    widths = [vocab_size, *hidden_sizes, n_classes]
    shapes = {}
    for i, name in enumerate(layer_names(len(hidden_sizes))):
        n_in, n_out = widths[i], widths[i + 1]
        shapes[f"{name}.weight"] = (n_in, n_out) if i == 0 else (n_out, n_in)
        shapes[f"{name}.bias"] = (n_out,)
    return shapes


def check_model_info(info: dict) -> tuple[dict, list[str]]:
    """model.json's vectorizer state and classes, within the app's bounds (nothing is built yet)."""
    from ..data.features import BagOfWords

    if not isinstance(info, dict) or not {"vectorizer", "classes"} <= set(info):
        raise BundleError("model.json must be an object with 'vectorizer' and 'classes'")
    classes = info["classes"]
    if not isinstance(classes, list) or not 2 <= len(classes) <= MAX_NAMED_CLASSES:
        n = f"{len(classes):,}" if isinstance(classes, list) else type(classes).__name__
        raise BundleError(f"model.json must list 2 to {MAX_NAMED_CLASSES} classes, got {n}")
    if not all(isinstance(c, str) and 0 < len(c) <= MAX_CLASS_CHARS for c in classes):
        raise BundleError(f"every class in model.json must be a text of 1 to {MAX_CLASS_CHARS} characters")
    if len(set(classes)) != len(classes):
        raise BundleError("model.json lists a class twice")
    try:
        BagOfWords.check_state(info["vectorizer"])
    except ValueError as exc:
        raise BundleError(f"model.json's vectorizer is not valid: {exc}") from None
    return info["vectorizer"], list(classes)


def _listed(names: list[str], most: int = 5) -> str:
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return f"{[n[:60] for n in names[:most]]}{more}"


def read_header(weights: bytes) -> dict[str, dict]:
    """The safetensors header (name -> dtype, shape, data_offsets), parsed here with its length bounded:
    8 bytes little-endian length, then that much JSON."""
    if len(weights) < 8:
        raise BundleError("the weights file is not a valid safetensors file (shorter than 8 bytes)")
    n = int.from_bytes(weights[:8], "little")
    if n > MAX_HEADER_BYTES or 8 + n > len(weights):
        raise BundleError(
            f"the weights file is not a valid safetensors file (its header claims {n:,} bytes, the file "
            f"has {len(weights):,}; at most {MAX_HEADER_BYTES:,})"
        )
    try:
        header = json.loads(weights[8 : 8 + n].decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise BundleError(
            f"the weights file is not a valid safetensors file ({type(exc).__name__})"
        ) from None
    if not isinstance(header, dict) or not all(isinstance(v, dict) for v in header.values()):
        raise BundleError("the weights file is not a valid safetensors file (its header is not a table)")
    header.pop("__metadata__", None)
    return header


def check_weights(header: dict[str, dict], expected: dict[str, tuple[int, ...]], data_bytes: int) -> None:
    """The header against the tensors the config and model.json give: names, shapes, float32, and byte
    ranges that fit the file (so loading allocates exactly what the configuration says)."""
    found = {k: v.get("shape") for k, v in header.items()}
    found = {k: tuple(s) if isinstance(s, list) else s for k, s in found.items()}
    if found != expected:
        missing = sorted(set(expected) - set(found))
        unexpected = sorted(set(found) - set(expected))
        wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        raise BundleError(
            "the weights do not match the configuration: "
            + (f"missing {_listed(missing)}; " if missing else "")
            + (f"unexpected {_listed(unexpected)}; " if unexpected else "")
            + "; ".join(f"{k} is {str(found[k])[:60]}, expected {expected[k]}" for k in wrong)
        )
    for name, entry in header.items():
        if entry.get("dtype") != WEIGHT_DTYPE:
            raise BundleError(
                f"{name} holds {str(entry.get('dtype'))[:20]} numbers; a model file holds float32 ({WEIGHT_DTYPE}) "
                "weights only"
            )
        span = entry.get("data_offsets")
        size = 4 * math.prod(expected[name])
        ok = isinstance(span, list) and len(span) == 2 and all(isinstance(o, int) for o in span)
        if not ok or span[1] - span[0] != size or not 0 <= span[0] <= span[1] <= data_bytes:
            raise BundleError(f"{name}'s bytes in the weights file do not match its shape {expected[name]}")
    if sum(4 * math.prod(s) for s in expected.values()) != data_bytes:
        raise BundleError("the weights file holds more or fewer bytes than its tensors")


def rebuild(
    cfg: RunConfig, info: dict, weights: bytes
) -> tuple[FeedForwardClassifier, BagOfWords, list[str]]:
    """The network, vectorizer and classes from a validated config, model.json and the weights' bytes;
    every part is checked against the others before the network is built."""
    state, classes = check_model_info(info)
    expected = expected_shapes(len(state["vocabulary"]), cfg.model.hidden_sizes, len(classes))
    header = read_header(weights)
    check_weights(header, expected, len(weights) - 8 - int.from_bytes(weights[:8], "little"))

    import torch
    from safetensors.torch import load as load_safetensors

    from ..data.features import BagOfWords
    from ..nn.model import FeedForwardClassifier

    try:
        tensors = load_safetensors(weights)  # plain tensors: nothing is unpickled
    except Exception as exc:
        raise BundleError(f"the weights file is not a valid safetensors file ({exc})") from exc
    for name, t in tensors.items():
        bad = int((~torch.isfinite(t)).sum())
        if bad:
            raise BundleError(
                f"{name} holds {bad:,} NaN or infinite numbers; a trained model's are all finite"
            )
    vec = BagOfWords.from_state(state)
    model = FeedForwardClassifier.from_config(cfg.model, vec.vocab_size, len(classes))
    built = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if built != expected:  # expected_shapes and the model must agree (tests/runs/test_bundle.py checks)
        raise BundleError(f"internal: the network's tensors {built} are not those expected {expected}")
    model.load_state_dict(tensors)
    model.eval()
    return model, vec, classes


def export_bundle(
    cfg: RunConfig, model: FeedForwardClassifier, vectorizer: BagOfWords, classes: list[str]
) -> bytes:
    """A zip with model.safetensors, config.json and model.json (vocabulary, classes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("model.safetensors", weights_bytes(model))
        z.writestr("config.json", cfg.to_json())
        z.writestr("model.json", json.dumps({"vectorizer": vectorizer.state(), "classes": list(classes)}))
    return buf.getvalue()


def _check_directory(data: bytes) -> None:
    """At most MAX_ENTRIES entries and no zip64, read from the end-of-directory record before zipfile parses
    the directory (a 512 MB file of empty entries would be millions of objects)."""
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65535))
    if at < 0 or at + 22 > len(data):
        return  # not a zip: zipfile says so
    entries = int.from_bytes(data[at + 10 : at + 12], "little")
    zip64 = at >= 20 and data[at - 20 : at - 16] == b"PK\x06\x07"
    if zip64 or entries > MAX_ENTRIES:
        what = "a zip64 archive" if zip64 else f"{entries:,} entries"
        raise BundleError(
            f"the zip holds {what}; a model bundle holds 3 files (upload one downloaded from ffnlp)"
        )


def _read_part(z: zipfile.ZipFile, name: str, cap: int) -> bytes:
    """One part, refused before reading when its header says it is too large or packed in a way whose
    output per read is unbounded (bzip2, lzma), and read in chunks up to `cap` (headers can lie)."""
    info = z.getinfo(name)
    if info.compress_type not in COMPRESSIONS:
        raise BundleError(
            f"{name} is packed with compression method {info.compress_type}; a model bundle uses deflate "
            "(upload one downloaded from ffnlp)"
        )
    if max(info.file_size, info.compress_size) > cap:
        raise BundleError(f"{name} is {info.file_size / 1e6:,.1f} MB unpacked; at most {cap / 1e6:,.1f} MB")
    out, size = [], 0
    with z.open(info) as f:
        while chunk := f.read(READ_CHUNK):
            size += len(chunk)
            if size > cap:
                raise BundleError(f"{name} unpacks to more than {cap / 1e6:,.1f} MB; refused")
            out.append(chunk)
    return b"".join(out)


def import_bundle(data: bytes) -> tuple[RunConfig, FeedForwardClassifier, BagOfWords, list[str]]:
    """Read a bundle made by `export_bundle`, validating every part before it is used; BundleError says
    what is wrong."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(
            f"the file is {len(data) / 1e6:.0f} MB; a model bundle is at most {MAX_BUNDLE_BYTES // 10**6} MB"
        )
    _check_directory(data)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = set(z.namelist())
            need = {"model.safetensors", "config.json", "model.json"}
            if not need <= names:
                raise BundleError(
                    f"the zip lacks {sorted(need - names)}; upload a model downloaded from ffnlp"
                )
            try:
                cfg = RunConfig.from_json(
                    _read_part(z, "config.json", MAX_PART_BYTES["config.json"]).decode()
                )
                cfg.validate()
                info = json.loads(_read_part(z, "model.json", MAX_PART_BYTES["model.json"]).decode())
            except (ConfigError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
                if isinstance(exc, BundleError):
                    raise
                raise BundleError(f"the bundle's config is not valid: {exc}") from exc
            state, classes = check_model_info(info)
            expected = expected_shapes(len(state["vocabulary"]), cfg.model.hidden_sizes, len(classes))
            need_bytes = sum(4 * math.prod(s) for s in expected.values())
            cap = MAX_PART_BYTES["model.safetensors"]
            if need_bytes > cap:
                raise BundleError(
                    f"the network in config.json and model.json needs {need_bytes / 1e6:,.0f} MB of weights "
                    f"({len(state['vocabulary']):,} words, hidden {cfg.model.hidden_sizes}); a bundle holds "
                    f"at most {cap / 1e6:,.0f} MB"
                )
            weights = _read_part(z, "model.safetensors", min(cap, 8 + MAX_HEADER_BYTES + need_bytes))
    except zipfile.BadZipFile as exc:
        raise BundleError(f"this is not a model bundle (a .zip downloaded from ffnlp): {exc}") from exc
    except (NotImplementedError, RuntimeError, EOFError, OSError) as exc:  # encrypted, unknown method, cut
        raise BundleError(f"the zip cannot be read ({type(exc).__name__}: {exc})") from exc
    try:
        model, vec, classes = rebuild(cfg, info, weights)
    except BundleError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BundleError(f"the bundle's model.json is not valid ({type(exc).__name__}: {exc})") from exc
    return cfg, model, vec, classes
