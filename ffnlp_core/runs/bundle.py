"""The model file users download and upload again (Compare runs): a zip with the weights as safetensors
(never pickled), the run's config.json and model.json (vocabulary, classes); and the network rebuilt from
those parts, checked before it is used (`BundleError` says what is wrong). The run store writes and reads
a saved run's model with the same two pieces (`weights_bytes`, `rebuild`).
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import TYPE_CHECKING

from ..config import ConfigError, RunConfig

if TYPE_CHECKING:  # torch, safetensors and scikit-learn are imported where weights are read or written
    from ..data.features import BagOfWords
    from ..nn.model import FeedForwardClassifier

MAX_BUNDLE_BYTES = 512 * 1024 * 1024


class BundleError(ValueError):
    """An uploaded model file that cannot be used, with what is wrong."""


def weights_bytes(model: FeedForwardClassifier) -> bytes:
    from safetensors.torch import save as save_safetensors

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return save_safetensors(tensors)


def rebuild(
    cfg: RunConfig, info: dict, weights: bytes
) -> tuple[FeedForwardClassifier, BagOfWords, list[str]]:
    from safetensors.torch import load as load_safetensors

    from ..data.features import BagOfWords
    from ..nn.model import FeedForwardClassifier

    vec = BagOfWords.from_state(info["vectorizer"])
    classes = list(info["classes"])
    model = FeedForwardClassifier.from_config(cfg.model, vec.vocab_size, len(classes))
    try:
        tensors = load_safetensors(weights)  # plain tensors: nothing is unpickled
    except Exception as exc:
        raise BundleError(f"the weights file is not a valid safetensors file ({exc})") from exc
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != found:
        missing = sorted(set(expected) - set(found))
        wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        raise BundleError(
            "the weights do not match the configuration: "
            + (f"missing {missing}; " if missing else "")
            + (f"unexpected {sorted(set(found) - set(expected))}; " if set(found) - set(expected) else "")
            + ("; ".join(f"{k} is {found[k]}, expected {expected[k]}" for k in wrong) or "")
        )
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


def import_bundle(data: bytes) -> tuple[RunConfig, FeedForwardClassifier, BagOfWords, list[str]]:
    """Read a bundle made by `export_bundle`, validating every part; BundleError says what is wrong."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(
            f"the file is {len(data) / 1e6:.0f} MB; a model bundle is at most {MAX_BUNDLE_BYTES // 10**6} MB"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = set(z.namelist())
            need = {"model.safetensors", "config.json", "model.json"}
            if not need <= names:
                raise BundleError(
                    f"the zip lacks {sorted(need - names)}; upload a model downloaded from ffnlp"
                )
            cfg = RunConfig.from_json(z.read("config.json").decode("utf-8")).validate()
            info = json.loads(z.read("model.json").decode("utf-8"))
            weights = z.read("model.safetensors")
    except zipfile.BadZipFile as exc:
        raise BundleError("this is not a model bundle (a .zip downloaded from ffnlp)") from exc
    except (
        ConfigError,
        json.JSONDecodeError,
        UnicodeDecodeError,
        KeyError,
        TypeError,
        AttributeError,
    ) as exc:
        raise BundleError(f"the bundle's config is not valid: {exc}") from exc
    try:
        model, vec, classes = rebuild(cfg, info, weights)
    except BundleError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BundleError(f"the bundle's model.json is not valid ({type(exc).__name__}: {exc})") from exc
    return cfg, model, vec, classes
