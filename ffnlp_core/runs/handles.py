"""Runs as the pages read them: `RunHandle` is the one reading interface (status, config, history, the
comments behind the dev rows, the model), `Job` a run of this server process (live, or recent and still in
memory), `StoredRun` a run read back from disk (a broken part leaves it `unreadable` with its reason,
never raises). `outcome` is the one place a finished run's status and reason are decided, for runs
trained in this process and in worker processes alike.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .. import events
from ..config import RunConfig
from .folders import HALF_WRITTEN, RunReadError
from .history import RunHistory
from .store import RunStore

if TYPE_CHECKING:  # the web server imports this module before torch or scikit-learn (a fast first page)
    from ..data.dataset import Dataset
    from ..nn.model import FeedForwardClassifier

DONE = ("finished", "stopped", "failed", "diverged", "interrupted", "unreadable")


def end_status(history: RunHistory, reason: str = "") -> tuple[str, str]:
    """(status, reason) from a run's own events: `diverged` (the engine's divergence check ended it),
    `failed` (an error, out of memory), `stopped`, `finished`."""
    failure = history.failure
    if failure is not None:
        return events.end_status(failure), failure.reason
    if history.stopped:
        return "stopped", reason or "stopped by the user"
    if history.summary is not None:
        return "finished", ""
    return "failed", reason or "the run ended without a result"


def outcome(
    history: RunHistory, reason: str = "", crash: str | None = None, write_problem: str | None = None
) -> tuple[str, str]:
    """(status, reason) of a run whose events have ended: `reason` is what the server already knows (a
    stop's cause, a worker's crash report), `crash` the way its worker process died, if it did, and
    `write_problem` why its runs folder refused a save (the run was stopped for it)."""
    if crash is not None:
        return "failed", crash
    if write_problem is not None:
        return "failed", write_problem
    return end_status(history, reason)


class RunHandle:
    """What every page may read of a run, live or stored."""

    run_id: str
    cfg: RunConfig
    history: RunHistory
    status: str = "queued"
    reason: str = ""
    owner: str = ""
    label: str = ""
    created: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    version: int = 0  # bumps with every event: pages redraw only when it changed
    _model: FeedForwardClassifier | None = None

    @property
    def done(self) -> bool:
        return self.status in DONE

    @property
    def class_names(self) -> list[str]:
        raise NotImplementedError

    @property
    def vectorizer(self):
        raise NotImplementedError

    @property
    def model(self) -> FeedForwardClassifier | None:
        raise NotImplementedError

    def dev_text(self, i: int) -> str | None:
        """The comment behind dev row i (None where it is not known)."""
        raise NotImplementedError

    def dev_labels(self) -> np.ndarray | None:
        """Gold label ids of the dev rows, indexed by dev position (-1 where unknown)."""
        raise NotImplementedError

    def read(self, fn: Callable[[RunHistory], object]):
        """Run fn on the history (fn must copy what it keeps)."""
        return fn(self.history)

    def nbytes(self) -> int:
        """Bytes this run holds in memory (history arrays, hidden snapshots, a loaded model)."""
        return self.read(lambda h: h.nbytes()) + model_bytes(self._model)

    def touch(self) -> None:
        """A page looked at this run (heartbeat)."""

    def request_stop(self) -> None:
        """Ask the run to stop (nothing to do once it is over)."""


class Job(RunHandle):
    """One run of this process: its history is filled by a training thread or a worker's listener."""

    def __init__(self, run_id: str, cfg: RunConfig, ds: Dataset, owner: str, label: str, model=None):
        self.run_id, self.cfg, self.ds, self.owner, self.label = run_id, cfg, ds, owner, label
        self._model: FeedForwardClassifier | None = model
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.history = RunHistory()
        self.created = time.time()
        self.last_poll = time.monotonic()
        self.thread: threading.Thread | None = None
        self.write_problem: str | None = None  # why the runs folder refused a save (the run then fails)
        self.on_disk = False  # its final state is saved: memory may let it go and read it back
        self.saved_at = self.checkpoint_at = time.monotonic()  # its last periodic save, weights checkpoint
        self.stop_checked_at = self.saved_at  # its last look for a stop asked on another server

    @property
    def model(self) -> FeedForwardClassifier | None:
        return self._model

    @model.setter
    def model(self, model: FeedForwardClassifier | None) -> None:
        self._model = model

    def touch(self) -> None:
        self.last_poll = time.monotonic()

    def steps_trained(self) -> int:
        return self.read(lambda h: h.steps_done)

    def last_seen(self) -> float:
        """Wall-clock time of the last poll (last_poll is monotonic)."""
        return time.time() - (time.monotonic() - self.last_poll)

    @property
    def class_names(self) -> list[str]:
        return list(self.ds.class_names)

    @property
    def vectorizer(self):
        return self.ds.vectorizer

    def dev_text(self, i: int) -> str | None:
        return self.ds.dev_text(i)

    def dev_labels(self) -> np.ndarray | None:
        return self.ds.y_dev

    def read(self, fn: Callable[[RunHistory], object]):
        with self.lock:
            return fn(self.history)

    def add(self, event) -> None:
        """Fold one engine event into the history (the training thread or a worker's listener)."""
        with self.lock:
            self.history.add(event)
            self.version += 1

    def request_stop(self) -> None:
        self.stop_event.set()  # in process mode this is the worker slot's multiprocessing.Event

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run is over (for tests and the CLI-like uses)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def load_weights(self, state: dict) -> None:
        """Refresh the server's copy of a worker's model (the playground and exports read it)."""
        import torch

        from ..nn.model import FeedForwardClassifier

        tensors = {k: torch.from_numpy(v if v.flags.writeable else v.copy()) for k, v in state.items()}
        model = self._model
        if model is None:
            model = FeedForwardClassifier.from_config(self.cfg.model, self.ds.vocab_size, self.ds.n_classes)
            model.eval()
        with torch.no_grad():
            model.load_state_dict(tensors)
        self._model = model

    def snapshot_texts(self) -> dict:
        """The comments and gold labels of the dev rows the hidden snapshots cover (hover text after a
        restart, kept on disk as texts.json)."""
        rows = self.read(lambda h: h.snapshots[-1].dev_rows.copy() if h.snapshots else np.zeros(0, np.int64))
        ds = self.ds
        return {
            "classes": list(ds.class_names),
            "dev": {str(int(i)): [ds.dev_text(int(i)), int(ds.y_dev[int(i)])] for i in rows},
        }


class StoredRun(RunHandle):
    """A run read back from disk (finished, or interrupted by a restart)."""

    def __init__(self, store: RunStore, run_id: str):
        """Raises RunReadError (a ValueError) only when config.json is missing or broken."""
        self.read_at = time.monotonic()  # a run another server trains is read again when stale
        status = store.status(run_id)
        self.run_id, self.store = run_id, store
        self.status = status.get("status", "interrupted")
        self.reason = status.get("reason", "" if status else HALF_WRITTEN)
        self.owner, self.label = status.get("owner", ""), status.get("label", "")
        self.created = status.get("created", 0.0)
        self.started_at, self.finished_at = status.get("started"), status.get("finished")
        self.cfg = store.config(run_id)
        try:
            self.history = store.load_history(run_id)
        except RunReadError as exc:  # an empty history and the reason, never a parser's error
            self.history = RunHistory()
            self.status, self.reason = "unreadable", str(exc)
        self.ds = None  # the data set is not kept on disk; the snapshot rows' texts are (texts.json)
        self._model = self._vectorizer = None
        self.model_problem: str | None = None  # why the saved model could not be loaded
        self._texts = store.load_texts(run_id)  # {"classes": [...], "dev": {row: [text, label]}}

    @classmethod
    def from_disk(cls, store: RunStore, run_id: str) -> StoredRun | None:
        """The run saved under run_id; None when there is no usable config.json (or a bad run id). A broken
        history is still a run: status "unreadable", with why."""
        try:
            return cls(store, run_id) if (store.folder(run_id) / "config.json").exists() else None
        except (RunReadError, ValueError, OSError):
            return None

    def request_stop(self) -> None:
        """A live run of another server sharing the runs folder: ask that server to stop it."""
        if self.status in ("queued", "running"):
            with contextlib.suppress(OSError):
                self.store.request_stop(self.run_id)

    @property
    def class_names(self) -> list[str]:
        return list(
            self._texts.get("classes") or (self.history.started.classes if self.history.started else [])
        )

    @property
    def vectorizer(self):
        self._load_model()
        return self._vectorizer

    def dev_text(self, i: int) -> str | None:
        item = self._texts.get("dev", {}).get(str(int(i)))
        return item[0] if isinstance(item, list) and item and isinstance(item[0], str) else None

    def dev_labels(self) -> np.ndarray | None:
        try:
            dev = {int(k): int(item[1]) for k, item in self._texts.get("dev", {}).items()}
        except (ValueError, TypeError, IndexError):  # a texts.json edited by hand: no labels, no crash
            return None
        if not dev or min(dev) < 0:
            return None
        labels = np.full(max(dev) + 1, -1, np.int64)
        for k, label in dev.items():
            labels[k] = label
        return labels

    @property
    def model(self):
        """The saved weights, loaded on first use (safetensors: nothing is unpickled); None when there
        are none or they cannot be read (model_problem says why)."""
        self._load_model()
        return self._model

    def _load_model(self) -> None:
        tried = self._model is not None or self.model_problem is not None
        if tried or not self.store.has_model(self.run_id):
            return
        try:
            self._model, self._vectorizer, _ = self.store.load_model(self.run_id)
        except (RunReadError, OSError) as exc:
            self.model_problem = str(exc)


def model_bytes(model) -> int:
    """Bytes of a network's parameters and buffers (0 for None)."""
    if model is None:
        return 0
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())
