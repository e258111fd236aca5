"""Background training runs for a multi-user web app.

The `JobManager` owns every run of this server by run id (`Job`, see handles.py): it checks a run once
at submission (`plan.prepare`), starts at most `max_concurrent` at a time (the rest wait in a FIFO queue
and know their position) in worker processes or Ray actors (`SlotPool`, pool.py) or threads, folds
their events into each run's history, stops runs nobody has polled for a while, keeps finished runs in memory only
within a byte budget (FFNLP_RUN_MEMORY_MB; the others are read back from disk). Every write to the runs
folder goes through its `RunWriter` (writer.py: periodic saves and weight checkpoints, final saves,
pruning, what a full or read-only folder means). Pages never touch a worker: they read copies under the
run's lock and set its stop flag.

A runs folder that refuses a write fails only the run that wrote, with a reason the teacher can act on;
the manager still starts, says why in `store_problem`, and recovers by itself once the folder takes
writes again (the watchdog probes it).
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections import OrderedDict, deque
from typing import TYPE_CHECKING

from threadpoolctl import threadpool_limits

from .. import settings
from ..config import RunConfig
from ..train.plan import build_model, new_run_id, prepare
from .budget import evict, in_memory
from .handles import Job, RunHandle, StoredRun, outcome
from .pool import SlotPool
from .slots import WorkerSlot
from .store import RunStore
from .writer import Owners, RunWriter

if TYPE_CHECKING:  # the web server imports this module before torch or scikit-learn (a fast first page)
    from ..data.dataset import Dataset


_LIVE_MANAGERS: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    """Stop the training threads before the interpreter goes (a thread inside torch at exit aborts it)."""
    for manager in list(_LIVE_MANAGERS):
        if not manager._closed.is_set():
            manager.shutdown(timeout=5.0)


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
        memory_mb: float | None = None,
    ):
        settings.check()  # every FFNLP_* value, one line each for those refused
        self.mode = mode or settings.workers()
        if self.mode not in settings.WORKER_MODES:
            raise ValueError(f"worker mode must be one of {settings.WORKER_MODES}, got {self.mode!r}")
        self.store = store or RunStore()
        self.lock = threading.RLock()
        self.writer = RunWriter(self.store)  # also marks runs a previous server left live as interrupted
        self.owners = Owners()  # when each session was last active (pruning spares its runs)
        cores = os.cpu_count() or 1
        self.threads_per_job = threads_per_job
        # FFNLP_MAX_CONCURRENT: the server's own limit, read here as FFNLP_WORKERS is (default: the cores)
        self.max_concurrent = max_concurrent or settings.max_concurrent() or max(1, cores // threads_per_job)
        self.heartbeat_timeout = heartbeat_timeout
        self.max_in_memory = max_in_memory
        self.memory_bytes = int((memory_mb or settings.run_memory_mb()) * 2**20)
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self._stored: OrderedDict[str, StoredRun] = OrderedDict()  # runs read back from disk, LRU
        self.queue: deque[Job] = deque()
        self.running: set[str] = set()
        self._closed = threading.Event()
        self.check_store()
        # One thread per job and no BLAS thread pools: concurrent runs must not oversubscribe the cores.
        if self.mode == "thread":  # training in this process; worker processes set their own
            import torch

            torch.set_num_threads(threads_per_job)
        self._blas = threadpool_limits(limits=threads_per_job)
        self.pool: SlotPool | None = None
        if self.mode != "thread":  # started now, so the first run does not wait for torch to import
            self.pool = SlotPool(self.mode, self.max_concurrent, threads_per_job, self)
        self._watchdog = threading.Thread(target=self._watch, name="ffnlp-watchdog", daemon=True)
        self._watchdog.start()
        _LIVE_MANAGERS.add(self)

    # --- submitting and reading -----------------------------------------------------------------
    def submit(self, cfg: RunConfig, ds: Dataset, owner: str = "", label: str = "", model=None) -> Job:
        """Queue a run; its settings are checked against the data here, once (ConfigError says what to
        change), and the run trains the checked copy."""
        cfg = prepare(cfg, ds)
        run_id = new_run_id()
        job = Job(run_id, cfg, ds, owner, label, model)
        self.note_owner(owner)
        refused = self.writer.create(job)
        if refused:  # the run fails at once, with what to do; the page gets no exception
            with self.lock:
                self.jobs[run_id] = job
                self._finish(job, "failed", refused)
            return job
        with self.lock:
            self.jobs[run_id] = job
            self.queue.append(job)
            self._dispatch()
        return job

    def submit_group(self, cfgs: dict[str, RunConfig], ds: Dataset, owner: str = "", label: str = "") -> dict:
        """Queue runs that belong together (a lesson's pair, a comparison): all of them, or, when one
        setting is refused (ConfigError), none. Labelled "<label> (<name>)"; returns {name: Job}."""
        checked = {name: prepare(cfg, ds) for name, cfg in cfgs.items()}
        return {name: self.submit(cfg, ds, owner, f"{label} ({name})") for name, cfg in checked.items()}

    def get(self, run_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(run_id)

    def open_run(self, run_id: str) -> RunHandle | None:
        """A live or recent run from memory, else the saved run from disk, else None."""
        job = self.get(run_id)
        if job is not None:
            return job
        with self.lock:
            stored = self._stored.get(run_id)
            # a run another server trains (a shared runs folder) is read again once a second
            if stored is not None and (stored.done or time.monotonic() - stored.read_at < 1.0):
                self._stored.move_to_end(run_id)
                return stored
        stored = StoredRun.from_disk(self.store, run_id)
        if stored is None:
            return None
        with self.lock:
            self._stored[run_id] = stored
            self._evict()
        return stored

    def note_owner(self, owner: str) -> None:
        """A session was active now (pruning spares its runs for ACTIVE_OWNER_SECONDS)."""
        self.owners.note(owner)

    @property
    def store_problem(self) -> str | None:
        """Why the runs folder refuses writes now (None: it is fine; set by its `writer`)."""
        return self.writer.problem

    def check_store(self) -> str | None:
        """Probe the runs folder; once it takes writes again, write what it refused before (runs a
        previous server left live, finished runs' final saves). Returns `store_problem`."""
        with self.lock:
            if self.writer.recover() is None:
                self._evict()
            return self.store_problem

    def queue_position(self, job: Job) -> int:
        """1 for the next run to start; 0 when not queued."""
        with self.lock:
            return next((i for i, queued in enumerate(self.queue, start=1) if queued is job), 0)

    def jobs_of(self, owner: str) -> list[Job]:
        with self.lock:
            return [j for j in self.jobs.values() if j.owner == owner]

    def stop(self, run_id: str) -> None:
        job = self.get(run_id)
        if job is None:  # a run of another server sharing the runs folder: ask that server
            stored = self.open_run(run_id)
            if stored is not None:
                stored.request_stop()
            return
        job.request_stop()
        with self.lock:
            if job in self.queue:  # never started: it ends here
                self.queue.remove(job)
                self._finish(job, "stopped", "stopped before it started")

    def starting_workers(self) -> int:
        """Worker processes not ready yet (just after a server start, or replacing a crashed one)."""
        return self.pool.starting() if self.pool is not None else 0

    @property
    def slots(self) -> list[WorkerSlot]:
        return self.pool.slots if self.pool is not None else []

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
                if self.mode != "thread":
                    slot = self.pool.free()
                    if slot is None:
                        break  # a worker is (re)starting; its "ready" message dispatches again
                job = self.queue.popleft()
                started = time.time()
                refused = self.writer.started(job, started)
                if refused:  # this run fails, the next one may still fit
                    self._finish(job, "failed", refused)
                    continue
                job.status, job.started_at = "running", started
                self.running.add(job.run_id)
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
                slot.send_run(job)
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
            for event in train(job.cfg, job.ds, stop=job.stop_event, run_id=job.run_id, model=job.model):
                job.add(event)
                self.writer.while_training(job)
            status, reason = outcome(job.history, job.reason, write_problem=job.write_problem)
        except Exception as exc:  # isolation: one broken run never takes the server down
            status, reason = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            with self.lock:
                self.running.discard(job.run_id)
                self._finish(job, status, reason)
                self._dispatch()

    # --- worker processes ------------------------------------------------------------------------
    def _handle(self, slot: WorkerSlot, msg: tuple) -> None:
        kind, job = msg[0], slot.job
        if kind == "ready":  # (the pool marked the slot ready)
            self._dispatch()
        elif job is None:
            return
        elif kind == "event":
            job.add(msg[1])
            self.writer.while_training(job)
        elif kind == "weights":
            job.load_weights(msg[1])
        elif kind == "crash":
            job.reason = msg[1]
        elif kind == "done":
            self._end(slot, job, None)

    def _lost(self, slot: WorkerSlot, reason: str) -> None:
        if slot.job is not None:
            self._end(slot, slot.job, reason)

    def _broken(self) -> None:
        """Worker processes keep dying before they are ready: train in threads from now on."""
        with self.lock:
            self.mode = "thread"
        self._dispatch()

    def _end(self, slot: WorkerSlot, job: Job, crash: str | None) -> None:
        """A worker finished (or lost) its run: record the outcome, free the slot, start the next run."""
        with self.lock:
            slot.job = None
            self.running.discard(job.run_id)
            try:
                status, reason = outcome(job.history, job.reason, crash, job.write_problem)
            except Exception as exc:  # never leave the run "running" with its slot taken
                status, reason = "failed", f"{type(exc).__name__}: {exc}"
            self._finish(job, status, reason)
        self._dispatch()

    def _finish(self, job: Job, status: str, reason: str) -> None:
        """Save the run (writer.finish: never raises; a refused write fails the run), then mark it done,
        so `done` means it is on disk too."""
        keep = set(self.running) | {q.run_id for q in self.queue}
        status, reason, finished_at = self.writer.finish(job, status, reason, keep, self._active)
        job.reason, job.finished_at = reason, finished_at
        job.status = status
        self._evict()

    def _active(self) -> set[str]:
        with self.lock:
            return self.owners.active(self.jobs.values())

    def _evict(self) -> None:
        """Let finished runs past the memory limits go (they are on disk; see budget.py)."""
        with self.lock:
            for job in evict(self.jobs, self._stored, self.max_in_memory, self.memory_bytes):
                self.owners.note(job.owner, job.last_seen())

    def memory_in_use(self) -> int:
        """Bytes held by the runs in memory, live ones included (for the benchmark and a status line)."""
        with self.lock:
            return in_memory(self.jobs, self._stored)

    def _watch(self) -> None:
        """Stop runs whose page has not polled for heartbeat_timeout seconds (the tab was closed)."""
        while not self._closed.wait(min(5.0, self.heartbeat_timeout / 4)):
            self.writer.tick()  # this server's heartbeat; runs that stopped servers left live
            if self.writer.pending():
                self.check_store()  # recover by itself once space is back
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
        if self.pool is not None:
            self.pool.close(timeout)
        self.writer.close()
