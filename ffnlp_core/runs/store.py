"""Runs on disk, so nothing trained is lost: a folder per run under `runs/` (or FFNLP_RUNS_DIR).

    runs/<run id>/config.json        the RunConfig
    runs/<run id>/status.json        status, reason, owner, times, summary
    runs/<run id>/history.npz, meta.json   curves, evaluations, gradient probes, last hidden snapshot
    runs/<run id>/model.safetensors, model.json   weights (never pickled) + vocabulary and class names

Writes are atomic (temp file + rename). Old finished runs are pruned past a limit, never a live one.
Also the model bundle (zip) users download and upload again.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import settings
from ..config import ConfigError, RunConfig
from .history import RunHistory

if TYPE_CHECKING:  # torch, safetensors and scikit-learn are imported where weights are read or written
    from ..data.features import BagOfWords
    from ..nn.model import FeedForwardClassifier

LIVE = ("queued", "running")
MAX_BUNDLE_BYTES = 512 * 1024 * 1024


class BundleError(ValueError):
    """An uploaded model file that cannot be used, with what is wrong."""


def default_root() -> Path:
    return settings.runs_dir()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_json(path: Path, obj) -> None:
    _write_atomic(path, json.dumps(obj, indent=1, default=_json_default).encode())


def _json_default(o):
    if isinstance(o, np.integer | np.floating):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class RunStore:
    """The runs folder."""

    def __init__(self, root: str | Path | None = None, max_runs: int | None = None):
        self.root = Path(root) if root is not None else default_root()
        self.max_runs = max_runs or settings.max_runs()
        self.root.mkdir(parents=True, exist_ok=True)

    def folder(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
            raise ValueError(f"bad run id {run_id!r}")
        return self.root / run_id

    # --- writing --------------------------------------------------------------------------------
    def create(self, run_id: str, cfg: RunConfig, owner: str = "", label: str = "") -> None:
        folder = self.folder(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        _write_json(folder / "config.json", cfg.to_dict())
        self.set_status(run_id, "queued", owner=owner, label=label, created=time.time())

    def set_status(self, run_id: str, status: str, **fields) -> None:
        path = self.folder(run_id) / "status.json"
        current = json.loads(path.read_text()) if path.exists() else {}
        current.update(fields, status=status, updated=time.time())
        _write_json(path, current)

    def save_history(self, run_id: str, history: RunHistory) -> None:
        self.save_history_parts(run_id, history.to_arrays(), history.meta())

    def save_history_parts(self, run_id: str, arrays: dict, meta: dict) -> None:
        """Write RunHistory.to_arrays() and .meta() (taken under a job's lock, written outside it)."""
        folder = self.folder(run_id)
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # uncompressed: written every few seconds while a run trains
        _write_atomic(folder / "history.npz", buf.getvalue())
        _write_json(folder / "meta.json", meta)

    def save_model(
        self, run_id: str, model: FeedForwardClassifier, vectorizer: BagOfWords, classes: list[str]
    ) -> None:
        folder = self.folder(run_id)
        _write_atomic(folder / "model.safetensors", _weights_bytes(model))
        _write_json(folder / "model.json", {"vectorizer": vectorizer.state(), "classes": list(classes)})

    def save_texts(self, run_id: str, texts: dict) -> None:
        """Comments behind the snapshot rows (so hover text survives a restart)."""
        _write_json(self.folder(run_id) / "texts.json", texts)

    # --- reading --------------------------------------------------------------------------------
    def load_texts(self, run_id: str) -> dict:
        path = self.folder(run_id) / "texts.json"
        try:
            return json.loads(path.read_text()) if path.exists() else {}
        except (OSError, json.JSONDecodeError):
            return {}

    def status(self, run_id: str) -> dict:
        path = self.folder(run_id) / "status.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def config(self, run_id: str) -> RunConfig:
        return RunConfig.from_dict(json.loads((self.folder(run_id) / "config.json").read_text()))

    def load_history(self, run_id: str) -> RunHistory:
        folder = self.folder(run_id)
        meta_path, arr_path = folder / "meta.json", folder / "history.npz"
        if not meta_path.exists():
            return RunHistory()
        with np.load(arr_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        return RunHistory.from_saved(json.loads(meta_path.read_text()), arrays)

    def has_model(self, run_id: str) -> bool:
        return (self.folder(run_id) / "model.safetensors").exists()

    def load_model(self, run_id: str) -> tuple[FeedForwardClassifier, BagOfWords, list[str]]:
        folder = self.folder(run_id)
        info = json.loads((folder / "model.json").read_text())
        cfg = self.config(run_id)
        return _rebuild(cfg, info, (folder / "model.safetensors").read_bytes())

    def list_runs(self) -> list[dict]:
        """Every run on disk, newest first: id, status, label, owner, created, summary, config."""
        runs = []
        for folder in self.root.iterdir():
            if not (folder / "status.json").exists():
                continue
            try:
                status = json.loads((folder / "status.json").read_text())
                config = json.loads((folder / "config.json").read_text())
            except (OSError, json.JSONDecodeError):
                continue  # a half-written folder from a crash: skip it rather than break the list
            runs.append({"id": folder.name, **status, "config": config})
        return sorted(runs, key=lambda r: r.get("created", 0), reverse=True)

    def mark_interrupted(self) -> list[str]:
        """After a server restart: runs that were queued or running cannot go on; say so."""
        marked = []
        for run in self.list_runs():
            if run.get("status") in LIVE:
                self.set_status(
                    run["id"], "interrupted", reason="the server restarted while this run was live"
                )
                marked.append(run["id"])
        return marked

    def prune(self, keep: set[str] = frozenset()) -> list[str]:
        """Delete the oldest runs past `max_runs`; never a live run or one in `keep`."""
        removed = []
        runs = self.list_runs()
        for run in runs[self.max_runs :]:
            if run["id"] in keep or run.get("status") in LIVE:
                continue
            shutil.rmtree(self.folder(run["id"]), ignore_errors=True)
            removed.append(run["id"])
        return removed


# --- model bundles (download / upload) ----------------------------------------------------------
def _weights_bytes(model: FeedForwardClassifier) -> bytes:
    from safetensors.torch import save as save_safetensors

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return save_safetensors(tensors)


def _rebuild(
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
        z.writestr("model.safetensors", _weights_bytes(model))
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
        model, vec, classes = _rebuild(cfg, info, weights)
    except BundleError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BundleError(f"the bundle's model.json is not valid ({type(exc).__name__}: {exc})") from exc
    return cfg, model, vec, classes


def save_events(folder: str | Path, cfg: RunConfig, ds, events: list, model=None) -> str:
    """For the CLI's --save: write a run folder from a finished event list."""
    folder = Path(folder)
    store = RunStore(folder.parent if folder.parent != Path("") else Path("."))
    run_id = folder.name
    history = RunHistory()
    for e in events:
        history.add(e)
    store.create(run_id, cfg, owner="cli")
    store.save_history(run_id, history)
    if model is not None:
        store.save_model(run_id, model, ds.vectorizer, ds.class_names)
    status = "failed" if history.failure else "stopped" if history.stopped else "finished"
    store.set_status(run_id, status, summary=history.summary, label="cli")
    return run_id


def torch_load_weights_only(path: str | Path):
    """The only way ffnlp reads a .pt file: tensors only, never arbitrary pickled objects."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)
