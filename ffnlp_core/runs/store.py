"""Runs on disk, so nothing trained is lost: a folder per run under `runs/` (or FFNLP_RUNS_DIR).

    runs/<run id>/config.json        the RunConfig
    runs/<run id>/status.json        status, reason, owner, times, summary
    runs/<run id>/history.npz, meta.json   curves, evaluations, gradient probes, last hidden snapshot
    runs/<run id>/model.safetensors, model.json   weights (never pickled) + vocabulary and class names

Writes are atomic (temp file + rename). Old finished runs are pruned past a limit, never a live one.
The model bundle users download and upload again is in bundle.py.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import settings
from ..config import RunConfig
from .bundle import rebuild, weights_bytes
from .history import RunHistory

if TYPE_CHECKING:  # torch, safetensors and scikit-learn are imported where weights are read or written
    from ..data.features import BagOfWords
    from ..nn.model import FeedForwardClassifier

LIVE = ("queued", "running")


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
        _write_atomic(folder / "model.safetensors", weights_bytes(model))
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
        return rebuild(cfg, info, (folder / "model.safetensors").read_bytes())

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
