"""Runs on disk, so nothing trained is lost: a folder per run under `runs/` (or FFNLP_RUNS_DIR).

    runs/<run id>/config.json        the RunConfig
    runs/<run id>/status.json        status, reason, owner, times, summary
    runs/<run id>/history.npz        curves, evaluations, gradient probes, last hidden snapshot and their
                                     metadata (one file: one save is one atomic write)
    runs/<run id>/model.safetensors, model.json   weights (never pickled) + vocabulary and class names
                                     (model.json never changes during a run; a model needs both)
    runs/<run id>/texts.json         the comments behind the snapshot's dev rows

Writes are atomic (temp file + rename) and raise OSError; status.json is written last, so a folder without
it is one whose first save was cut short. `write_problem` turns one into a sentence a
teacher can act on. Reads are defensive (folders.py): a broken folder is listed as `unreadable` with its
reason, a folder without status.json (a save cut short) as `interrupted` with what it holds, and loading
a broken part raises `RunReadError` (a ValueError) with its reason, never a parser's own error.

Pruning (see `prune`) keeps runs younger than a day and every run of a session active in the last hours,
counting per session (FFNLP_MAX_RUNS_PER_SESSION) and per server (FFNLP_MAX_RUNS).
The model bundle users download and upload again is in bundle.py.
"""

from __future__ import annotations

import contextlib
import errno
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
from .folders import RunReadError, config_problem, listing, read_json, status_problem
from .history import RunHistory

if TYPE_CHECKING:  # torch, safetensors and scikit-learn are imported where weights are read or written
    from ..data.features import BagOfWords
    from ..nn.model import FeedForwardClassifier

LIVE = ("queued", "running")
MIN_AGE_SECONDS = 24 * 3600.0  # a run younger than this is never pruned
ACTIVE_OWNER_SECONDS = 6 * 3600.0  # nor a run of a session seen this recently (the job manager tracks it)
FULL = (errno.ENOSPC, errno.EDQUOT)
READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)
META_KEY = "__meta__"  # history.npz: the JSON metadata, as bytes


def default_root() -> Path:
    return settings.runs_dir()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):  # a full disk must not keep a half-written temp file
            tmp.unlink()
        raise


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

    def __init__(
        self,
        root: str | Path | None = None,
        max_runs: int | None = None,
        max_per_owner: int | None = None,
        min_age_seconds: float = MIN_AGE_SECONDS,
    ):
        for name, value in (("max_runs", max_runs), ("max_per_owner", max_per_owner)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (0 would delete every run), got {value}")
        self.root = Path(root) if root is not None else default_root()
        self.max_runs = max_runs or settings.max_runs()
        self.max_per_owner = max_per_owner or settings.max_runs_per_session()
        self.min_age_seconds = min_age_seconds
        with contextlib.suppress(OSError):  # a read-only place: the job manager says so (write_problem)
            self.root.mkdir(parents=True, exist_ok=True)

    def folder(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
            raise ValueError(f"bad run id {run_id!r}")
        return self.root / run_id

    def write_problem(self, exc: OSError) -> str:
        """What a failed write means for the teacher, and what to do."""
        if exc.errno in FULL:
            try:
                free = f"{shutil.disk_usage(self.root).free / 1e6:.0f} MB free"
            except OSError:
                free = "free space unknown"
            return f"the runs folder is full ({free}): free space or set FFNLP_RUNS_DIR"
        if exc.errno in READ_ONLY:
            return f"the runs folder {self.root} is read-only: make it writable or set FFNLP_RUNS_DIR"
        return f"the runs folder {self.root} cannot be written ({exc}): check it or set FFNLP_RUNS_DIR"

    def probe(self) -> None:
        """Write and remove a small file: raises OSError while the runs folder cannot take writes."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / ".write-probe"
        _write_atomic(path, b"\0" * 4096)
        path.unlink()

    # --- writing --------------------------------------------------------------------------------
    def create(self, run_id: str, cfg: RunConfig, owner: str = "", label: str = "") -> None:
        folder = self.folder(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        _write_json(folder / "config.json", cfg.to_dict())
        self.set_status(run_id, "queued", owner=owner, label=label, created=time.time())

    def set_status(self, run_id: str, status: str, **fields) -> None:
        try:
            current = read_json(self.folder(run_id) / "status.json")
        except RunReadError:
            current = {}  # missing or broken: start again rather than fail the run
        current = current if isinstance(current, dict) else {}
        current.update(fields, status=status, updated=time.time())
        _write_json(self.folder(run_id) / "status.json", current)

    def save_history(self, run_id: str, history: RunHistory) -> None:
        self.save_history_parts(run_id, history.to_arrays(), history.meta())

    def save_history_parts(self, run_id: str, arrays: dict, meta: dict) -> None:
        """Write RunHistory.to_arrays() and .meta() (taken under a job's lock, written outside it)."""
        buf = io.BytesIO()
        packed = np.frombuffer(json.dumps(meta, default=_json_default).encode(), np.uint8)
        # one file, so one atomic write (never curves of one save beside the metadata of another);
        # uncompressed: written every few seconds while a run trains
        np.savez(buf, **arrays, **{META_KEY: packed})
        _write_atomic(self.folder(run_id) / "history.npz", buf.getvalue())

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
        try:
            texts = read_json(self.folder(run_id) / "texts.json")
        except RunReadError:
            return {}
        ok = isinstance(texts, dict) and isinstance(texts.get("dev", {}), dict)
        return texts if ok else {}

    def status(self, run_id: str) -> dict:
        """status.json; {} when there is none, {"status": "unreadable", "reason": ...} when it is broken."""
        path = self.folder(run_id) / "status.json"
        if not path.exists():
            return {}
        try:
            status = read_json(path)
        except RunReadError as exc:
            return {"status": "unreadable", "reason": str(exc)}
        problem = status_problem(status)
        return {"status": "unreadable", "reason": problem} if problem else status

    def config(self, run_id: str) -> RunConfig:
        config = read_json(self.folder(run_id) / "config.json")
        problem = config_problem(config)
        if problem:
            raise RunReadError(problem)
        return RunConfig.from_dict(config)

    def load_history(self, run_id: str) -> RunHistory:
        """The saved history (empty when none was saved yet); RunReadError when it is broken."""
        folder = self.folder(run_id)
        meta_path, arr_path = folder / "meta.json", folder / "history.npz"
        if not arr_path.exists():
            return RunHistory()
        try:
            with np.load(arr_path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            packed = arrays.pop(META_KEY, None)
            if packed is not None:
                meta = json.loads(packed.tobytes().decode())
            else:  # a folder written before the metadata moved into history.npz (meta.json beside it)
                meta = read_json(meta_path) if meta_path.exists() else {}
            return RunHistory.from_saved(meta, arrays)
        except Exception as exc:  # BadZipFile, EOFError, ValueError, KeyError...: a truncated or odd file
            raise RunReadError(f"history.npz cannot be read ({type(exc).__name__}: {exc})") from None

    def has_model(self, run_id: str) -> bool:
        folder = self.folder(run_id)
        return (folder / "model.safetensors").exists() and (folder / "model.json").exists()

    def load_model(self, run_id: str) -> tuple[FeedForwardClassifier, BagOfWords, list[str]]:
        """The saved network, vectorizer and classes; RunReadError says what is missing or broken."""
        folder = self.folder(run_id)
        info = read_json(folder / "model.json")
        cfg = self.config(run_id)
        try:
            return rebuild(cfg, info, (folder / "model.safetensors").read_bytes())
        except Exception as exc:  # BundleError, a missing file, a vocabulary that is not one...
            raise RunReadError(f"the saved model cannot be read ({type(exc).__name__}: {exc})") from None

    def list_runs(self) -> list[dict]:
        """Every run on disk, newest first: id, status, label, owner, created, summary, config. A broken
        folder is listed too (status `unreadable` or `interrupted`, with a reason) and never hides others."""
        try:
            folders = [f for f in self.root.iterdir() if f.is_dir() and not f.name.startswith(".")]
        except OSError:
            return []
        runs = [listing(folder) for folder in folders]
        return sorted(runs, key=lambda r: r["created"], reverse=True)

    # --- servers sharing this folder (see writer.py) ---------------------------------------------
    def beat(self, server: str) -> None:
        folder = self.root / ".servers"
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(folder / server, str(time.time()).encode())

    def unbeat(self, server: str) -> None:
        (self.root / ".servers" / server).unlink(missing_ok=True)

    def servers_alive(self, within: float) -> set[str]:
        """Servers whose heartbeat file is younger than `within` seconds."""
        try:
            beats = list((self.root / ".servers").iterdir())
        except OSError:
            return set()
        now, alive = time.time(), set()
        for path in beats:
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime < within:
                    alive.add(path.name)
        return alive

    def request_stop(self, run_id: str) -> None:
        """Ask the server training this run to stop it (its writer looks every second)."""
        _write_atomic(self.folder(run_id) / "stop.request", b"")

    def stop_requested(self, run_id: str) -> bool:
        return (self.folder(run_id) / "stop.request").exists()

    def mark_interrupted(self, only: set[str] | None = None) -> list[str]:
        """After a server restart: runs that were queued or running (of `only`, if given) cannot go on;
        say so. Raises OSError when the runs folder refuses the write (the job manager tries again)."""
        marked = []
        for run in self.list_runs():
            if run.get("status") in LIVE and (only is None or run["id"] in only):
                self.set_status(
                    run["id"],
                    "interrupted",
                    reason="the server training this run stopped or restarted while it was live",
                )
                marked.append(run["id"])
        return marked

    def prune(self, keep: set[str] = frozenset(), active_owners: set[str] = frozenset()) -> list[str]:
        """Delete old runs past the limits: first each owner's oldest past `max_per_owner`, then the
        server's oldest past `max_runs`. Never a live or kept run, a run younger than `min_age_seconds`,
        or a run of an owner in `active_owners` (sessions seen in the last hours; the owner "" of CLI
        and test runs is no session). Unreadable folders are neither counted nor removed: a person
        should look at them."""
        runs = [r for r in self.list_runs() if r["status"] != "unreadable"]  # newest first
        now = time.time()

        def protected(run: dict) -> bool:
            return (
                run["id"] in keep
                or run.get("status") in LIVE
                or now - run["created"] < self.min_age_seconds
                or (run.get("owner") != "" and run.get("owner") in active_owners)
            )

        doomed, per_owner = set(), {}
        for run in runs:
            owner = run.get("owner", "")
            per_owner[owner] = per_owner.get(owner, 0) + 1
            if per_owner[owner] > self.max_per_owner and not protected(run):
                doomed.add(run["id"])
        left = [r for r in runs if r["id"] not in doomed]
        for run in reversed(left[self.max_runs :]):  # oldest first
            if not protected(run):
                doomed.add(run["id"])
        for run_id in doomed:
            shutil.rmtree(self.folder(run_id), ignore_errors=True)
        return sorted(doomed)


def torch_load_weights_only(path: str | Path):
    """The only way ffnlp reads a .pt file: tensors only, never arbitrary pickled objects."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)
