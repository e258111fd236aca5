"""Background training runs for a multi-user web app.

A `Job` is one run: a worker thread that consumes the engine's events into a lock-guarded `RunHistory`,
a stop `Event`, a status and a heartbeat. The `JobManager` owns every job by run id, starts at most
`max_concurrent` at a time (the rest wait in a FIFO queue and know their position), stops jobs nobody
has polled for a while, saves every run to the `RunStore` and keeps only a bounded number in memory.
Pages never touch a worker: they read copies under the lock and set the stop flag.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing as mp
import os
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from .. import settings
from ..config import RunConfig
from ..train.plan import build_model, new_run_id
from .history import RunHistory
from .spawn import START_LOCK, bare_main
from .store import RunStore
from .worker import worker_main

if TYPE_CHECKING:  # the web server imports this module before torch or scikit-learn (a fast first page)
    from ..data.dataset import Dataset
    from ..nn.model import FeedForwardClassifier

SAVE_EVERY_SECONDS = 5.0


DONE = ("finished", "stopped", "failed", "interrupted")


class Job:
    """One run in this process."""

    def __init__(self, run_id: str, cfg: RunConfig, ds: Dataset, owner: str, label: str, model=None):
        self.run_id, self.cfg, self.ds, self.owner, self.label = run_id, cfg, ds, owner, label
        self.model: FeedForwardClassifier | None = model
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.history = RunHistory()
        self.status = "queued"
        self.reason = ""
        self.created = time.time()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.last_poll = time.monotonic()
        self.thread: threading.Thread | None = None
        self.version = 0  # bumps with every event: pages redraw only when it changed

    def touch(self) -> None:
        """A page looked at this run (heartbeat)."""
        self.last_poll = time.monotonic()

    # --- the data behind the run, for pages that show comments ---------------------------------
    @property
    def class_names(self) -> list[str]:
        return list(self.ds.class_names)

    @property
    def vectorizer(self):
        return self.ds.vectorizer

    def dev_text(self, i: int) -> str | None:
        """The comment behind dev row i."""
        return self.ds.dev_text(i)

    def dev_labels(self) -> np.ndarray | None:
        """Gold label ids of every dev row, indexed by dev position."""
        return self.ds.y_dev

    def read(self, fn: Callable[[RunHistory], object]):
        """Run fn on the history under the lock (fn must copy what it keeps)."""
        with self.lock:
            return fn(self.history)

    @property
    def done(self) -> bool:
        return self.status in DONE

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


class _Slot:
    """A worker process (see worker.py), its pipe, its stop flag and the thread that listens to it."""

    def __init__(self, manager: JobManager, index: int, failures: int = 0):
        ctx = mp.get_context("spawn")  # a clean interpreter: safe with the server's threads, and with CUDA
        self.index, self.failures = index, failures
        self.conn, child = ctx.Pipe()
        self.stop = ctx.Event()
        self.ready = threading.Event()
        self.job: Job | None = None
        self.last_save = 0.0
        self.proc = ctx.Process(
            target=worker_main,
            args=(child, self.stop, manager.threads_per_job),
            name=f"ffnlp-worker-{index}",
            daemon=True,
        )
        with START_LOCK, bare_main():
            self.proc.start()
        child.close()
        self.listener = threading.Thread(
            target=manager._listen, args=(self,), name=f"ffnlp-listen-{index}", daemon=True
        )
        self.listener.start()

    def close(self, timeout: float) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(("exit",))
        self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.terminate()
        # The listener ends on the pipe's EOF; it must be gone before the interpreter finalizes: a daemon
        # thread still dropping tensors then aborts the whole process (torch needs the GIL to free them).
        if self.listener is not threading.current_thread():
            self.listener.join(timeout)


_LIVE_MANAGERS: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    """Stop the training threads before the interpreter goes (a thread inside torch at exit aborts it)."""
    for manager in list(_LIVE_MANAGERS):
        if not manager._closed.is_set():
            manager.shutdown(timeout=5.0)


def _slim(ds: Dataset) -> Dataset:
    """The data set without its texts: what a worker needs to train (smaller to send)."""
    return replace(ds, labeled=replace(ds.labeled, texts=[]))


def _load_weights(job: Job, state: dict) -> None:
    """Refresh the server's copy of a worker's model (the playground and exports read it)."""
    import torch

    from ..nn.model import FeedForwardClassifier

    tensors = {k: torch.from_numpy(v) for k, v in state.items()}
    model = job.model
    if model is None:
        model = FeedForwardClassifier.from_config(job.cfg.model, job.ds.vocab_size, job.ds.n_classes)
        model.eval()
    with torch.no_grad():
        model.load_state_dict(tensors)
    job.model = model


def _snapshot_texts(job: Job) -> dict:
    """The comments and gold labels of the dev rows the hidden snapshots cover (hover text after a restart)."""
    rows = job.read(lambda h: h.snapshots[-1].dev_rows.copy() if h.snapshots else np.zeros(0, np.int64))
    ds = job.ds
    return {
        "classes": list(ds.class_names),
        "dev": {str(int(i)): [ds.dev_text(int(i)), int(ds.y_dev[int(i)])] for i in rows},
    }


class StoredRun:
    """A run read back from disk (finished, or interrupted by a restart): same reading interface as Job."""

    def __init__(self, store: RunStore, run_id: str):
        status = store.status(run_id)
        self.run_id, self.store = run_id, store
        self.status = status.get("status", "interrupted")
        self.reason = status.get("reason", "")
        self.owner, self.label = status.get("owner", ""), status.get("label", "")
        self.created = status.get("created", 0.0)
        self.cfg = store.config(run_id)
        self.history = store.load_history(run_id)
        self.ds = None  # the data set is not kept on disk; the snapshot rows' texts are (texts.json)
        self.version = 0
        self._model = None
        self._texts = store.load_texts(run_id)  # {"classes": [...], "dev": {row: [text, label]}}

    @property
    def class_names(self) -> list[str]:
        return list(
            self._texts.get("classes") or (self.history.started.classes if self.history.started else [])
        )

    @property
    def vectorizer(self):
        if self.store.has_model(self.run_id):
            return self.store.load_model(self.run_id)[1]
        return None

    def dev_text(self, i: int) -> str | None:
        item = self._texts.get("dev", {}).get(str(int(i)))
        return item[0] if item else None

    def dev_labels(self) -> np.ndarray | None:
        dev = self._texts.get("dev", {})
        if not dev:
            return None
        n = max(int(k) for k in dev) + 1
        labels = np.full(n, -1, np.int64)
        for k, (_, label) in dev.items():
            labels[int(k)] = label
        return labels

    done = True

    def touch(self) -> None:
        pass

    def request_stop(self) -> None:
        pass

    def read(self, fn: Callable[[RunHistory], object]):
        return fn(self.history)

    @property
    def model(self):
        """The saved weights, loaded on first use (safetensors: nothing is unpickled)."""
        if self._model is None and self.store.has_model(self.run_id):
            self._model = self.store.load_model(self.run_id)[0]
        return self._model


class JobManager:
    """Registry, queue and workers for every run of this server process."""

    def __init__(
        self,
        store: RunStore | None = None,
        max_concurrent: int | None = None,
        heartbeat_timeout: float = 300.0,
        max_in_memory: int = 40,
        threads_per_job: int = 1,
        mode: str | None = None,
    ):
        self.mode = mode or settings.workers()
        if self.mode not in ("thread", "process"):
            raise ValueError(f"worker mode must be 'thread' or 'process', got {self.mode!r}")
        self.store = store or RunStore()
        self.store.mark_interrupted()
        cores = os.cpu_count() or 1
        self.threads_per_job = threads_per_job
        # FFNLP_MAX_CONCURRENT: the server's own limit, read here as FFNLP_WORKERS is (default: the cores)
        self.max_concurrent = max_concurrent or settings.max_concurrent() or max(1, cores // threads_per_job)
        self.heartbeat_timeout = heartbeat_timeout
        self.max_in_memory = max_in_memory
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self._stored: OrderedDict[str, StoredRun] = OrderedDict()  # runs read back from disk, LRU
        self.queue: deque[Job] = deque()
        self.running: set[str] = set()
        self.lock = threading.RLock()
        self._closed = threading.Event()
        # One thread per job and no BLAS thread pools: concurrent runs must not oversubscribe the cores.
        if self.mode == "thread":  # training in this process; worker processes set their own
            import torch

            torch.set_num_threads(threads_per_job)
        self._blas = threadpool_limits(limits=threads_per_job)
        self.slots: list[_Slot] = []
        if self.mode == "process":  # started now, so the first run does not wait for torch to import
            self.slots = [_Slot(self, i) for i in range(self.max_concurrent)]
        self._watchdog = threading.Thread(target=self._watch, name="ffnlp-watchdog", daemon=True)
        self._watchdog.start()
        _LIVE_MANAGERS.add(self)

    # --- submitting and reading -----------------------------------------------------------------
    def submit(self, cfg: RunConfig, ds: Dataset, owner: str = "", label: str = "", model=None) -> Job:
        cfg.validate()
        run_id = new_run_id()
        job = Job(run_id, cfg, ds, owner, label, model)
        self.store.create(run_id, cfg, owner=owner, label=label)
        with self.lock:
            self.jobs[run_id] = job
            self.queue.append(job)
            self._dispatch()
        return job

    def get(self, run_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(run_id)

    def open_run(self, run_id: str) -> Job | StoredRun | None:
        """A live or recent run from memory, else the saved run from disk, else None."""
        job = self.get(run_id)
        if job is not None:
            return job
        with self.lock:
            if run_id in self._stored:
                self._stored.move_to_end(run_id)
                return self._stored[run_id]
        try:
            if not (self.store.folder(run_id) / "config.json").exists():
                return None
            stored = StoredRun(self.store, run_id)
        except (ValueError, OSError, KeyError):
            return None
        with self.lock:
            self._stored[run_id] = stored
            while len(self._stored) > 20:
                self._stored.popitem(last=False)
        return stored

    def queue_position(self, job: Job) -> int:
        """1 for the next run to start; 0 when not queued."""
        with self.lock:
            for i, queued in enumerate(self.queue, start=1):
                if queued is job:
                    return i
        return 0

    def jobs_of(self, owner: str) -> list[Job]:
        with self.lock:
            return [j for j in self.jobs.values() if j.owner == owner]

    def stop(self, run_id: str) -> None:
        job = self.get(run_id)
        if job is None:
            return
        job.request_stop()
        with self.lock:
            if job in self.queue:  # never started: it ends here
                self.queue.remove(job)
                self._finish(job, "stopped", "stopped before it started")

    def starting_workers(self) -> int:
        """Worker processes not ready yet (just after a server start, or replacing a crashed one)."""
        with self.lock:
            return sum(1 for s in self.slots if not s.ready.is_set())

    def active_count(self) -> tuple[int, int]:
        """(running, queued)."""
        with self.lock:
            return len(self.running), len(self.queue)

    # --- workers --------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        """Start queued runs while there is room (a free thread, or a free and ready worker process)."""
        sends = []
        with self.lock:
            while self.queue and len(self.running) < self.max_concurrent and not self._closed.is_set():
                slot = None
                if self.mode == "process":
                    slot = next((s for s in self.slots if s.job is None and s.ready.is_set()), None)
                    if slot is None:
                        break  # a worker is (re)starting; its "ready" message dispatches again
                job = self.queue.popleft()
                job.status, job.started_at = "running", time.time()
                self.running.add(job.run_id)
                self.store.set_status(job.run_id, "running", started=job.started_at)
                if slot is None:
                    job.thread = threading.Thread(
                        target=self._work, args=(job,), name=f"ffnlp-{job.run_id}", daemon=True
                    )
                    job.thread.start()
                else:
                    slot.stop.clear()
                    job.stop_event = slot.stop
                    slot.job = job
                    sends.append((slot, job))
        for slot, job in sends:  # pickling the data set can take a moment: not under the lock
            try:
                slot.conn.send(("train", job.run_id, job.cfg.to_dict(), _slim(job.ds)))
            except (OSError, ValueError):  # the worker died meanwhile: the run goes back to the queue front
                with self.lock:
                    if slot.job is job:
                        slot.job = None
                        self.running.discard(job.run_id)
                        job.status = "queued"
                        self.queue.appendleft(job)

    def _work(self, job: Job) -> None:
        status, reason = "failed", "the worker ended unexpectedly"
        from ..train.loop import train  # thread mode: training in this process

        try:
            if job.model is None:
                job.model = build_model(job.cfg, job.ds)
            last_save = time.monotonic()
            for event in train(job.cfg, job.ds, stop=job.stop_event, run_id=job.run_id, model=job.model):
                with job.lock:
                    job.history.add(event)
                    job.version += 1
                if time.monotonic() - last_save > SAVE_EVERY_SECONDS:
                    self._save(job)
                    last_save = time.monotonic()
            h = job.history
            if h.failure is not None:
                status, reason = "failed", h.failure.reason
            elif h.stopped:
                status, reason = "stopped", job.reason or "stopped by the user"
            else:
                status, reason = "finished", ""
        except Exception as exc:  # isolation: one broken run never takes the server down
            status, reason = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            with self.lock:
                self.running.discard(job.run_id)
                self._finish(job, status, reason)
                self._dispatch()

    # --- worker processes ------------------------------------------------------------------------
    def _listen(self, slot: _Slot) -> None:
        """Fold one worker's messages into the job it runs; restart the worker if its process dies."""
        while True:
            try:
                msg = slot.conn.recv()
            except (EOFError, OSError):
                break
            kind, job = msg[0], slot.job
            if kind == "ready":
                slot.ready.set()
                self._dispatch()
            elif job is None:
                continue
            elif kind == "event":
                with job.lock:
                    job.history.add(msg[1])
                    job.version += 1
                if time.monotonic() - slot.last_save > SAVE_EVERY_SECONDS:
                    self._save(job)
                    slot.last_save = time.monotonic()
            elif kind == "weights":
                _load_weights(job, msg[1])
            elif kind == "crash":
                job.reason = msg[1]
            elif kind == "done":
                self._end(slot, job, None)
        was_ready = slot.ready.is_set()
        slot.ready.clear()  # never dispatch to a dead worker
        if self._closed.is_set():
            return
        slot.proc.join(1.0)
        code = slot.proc.exitcode
        if slot.job is not None:
            hint = " (killed: out of memory?)" if code is not None and code < 0 else ""
            self._end(slot, slot.job, f"the training process ended unexpectedly with exit code {code}{hint}")
        # Replace the dead worker (its "ready" dispatches the queue again); a worker that dies before it is
        # even ready points at a broken environment: back off, and after 3 such deaths train in threads.
        slot.failures = 0 if was_ready else slot.failures + 1
        if slot.failures >= 3:
            with self.lock:
                self.mode = "thread"
            self._dispatch()
            return
        if self._closed.wait(min(10.0, 0.5 * 2**slot.failures)):
            return  # shut down meanwhile: no new worker
        with self.lock:
            fresh = _Slot(self, slot.index, failures=slot.failures)
            self.slots[self.slots.index(slot)] = fresh

    def _end(self, slot: _Slot, job: Job, crash: str | None) -> None:
        """A worker finished (or lost) its run: record the outcome, free the slot, start the next run."""
        h = job.history
        if crash is not None:
            status, reason = "failed", crash
        elif h.failure is not None:
            status, reason = "failed", h.failure.reason
        elif h.stopped:
            status, reason = "stopped", job.reason or "stopped by the user"
        elif h.summary is not None:
            status, reason = "finished", ""
        else:
            status, reason = "failed", job.reason or "the run ended without a result"
        with self.lock:
            slot.job = None
            self.running.discard(job.run_id)
            self._finish(job, status, reason)
        self._dispatch()

    def _finish(self, job: Job, status: str, reason: str) -> None:
        """Save the run, then mark it done (so `done` means it is on disk too)."""
        finished_at = time.time()
        try:
            self._save(job)
            if job.model is not None and status in ("finished", "stopped"):
                self.store.save_model(job.run_id, job.model, job.ds.vectorizer, job.ds.class_names)
            self.store.save_texts(job.run_id, _snapshot_texts(job))
            summary = job.read(lambda h: h.summary)
            self.store.set_status(job.run_id, status, reason=reason, finished=finished_at, summary=summary)
            self.store.prune(keep=set(self.running) | {q.run_id for q in self.queue})
        except OSError:
            pass  # a full disk must not kill the server; the run stays in memory
        job.reason, job.finished_at = reason, finished_at
        job.status = status
        self._evict()

    def _save(self, job: Job) -> None:
        with job.lock:
            arrays, meta = job.history.to_arrays(), job.history.meta()
        self.store.save_history_parts(job.run_id, arrays, meta)

    def _evict(self) -> None:
        """Forget the oldest finished runs past max_in_memory (they stay on disk)."""
        with self.lock:
            done = [rid for rid, j in self.jobs.items() if j.done]
            for rid in done[: max(0, len(self.jobs) - self.max_in_memory)]:
                del self.jobs[rid]

    def _watch(self) -> None:
        """Stop runs whose page has not polled for heartbeat_timeout seconds (the tab was closed)."""
        while not self._closed.wait(min(5.0, self.heartbeat_timeout / 4)):
            now = time.monotonic()
            with self.lock:
                stale = [
                    j for j in self.jobs.values() if not j.done and now - j.last_poll > self.heartbeat_timeout
                ]
            for job in stale:
                job.reason = f"stopped: no page looked at it for {self.heartbeat_timeout:.0f} s (tab closed?)"
                self.stop(job.run_id)

    def shutdown(self, timeout: float = 10.0) -> None:
        self._closed.set()
        with self.lock:
            jobs = list(self.jobs.values())
            for job in list(self.queue):
                self.queue.remove(job)
                self._finish(job, "stopped", "the server is shutting down")
        for job in jobs:
            job.request_stop()
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout)
        for slot in self.slots:
            slot.close(timeout)
