"""Background training runs for a multi-user web app.

The `JobManager` owns every run of this server by run id (`Job`, see handles.py): it checks a run once
at submission (`plan.prepare`), starts at most `max_concurrent` at a time (the rest wait in a FIFO queue
and know their position) in worker processes (`WorkerSlot`, see slots.py) or threads, folds their events
into each run's history, stops runs nobody has polled for a while, saves every run to the `RunStore`
and keeps finished runs in memory only within a byte budget (FFNLP_RUN_MEMORY_MB; the others are read
back from disk). Pages never touch a worker: they read copies under the run's lock and set its stop flag.

A runs folder that refuses a write (full, read-only) fails only the run that wrote, with a reason the
teacher can act on; the manager still starts, says why in `store_problem`, and recovers by itself once
the folder takes writes again (the watchdog probes it).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import time
import traceback
import weakref
from collections import OrderedDict, deque
from typing import TYPE_CHECKING

from threadpoolctl import threadpool_limits

from .. import settings
from ..config import RunConfig
from ..train.plan import build_model, new_run_id, prepare
from .handles import Job, RunHandle, StoredRun, outcome
from .slots import WorkerSlot
from .store import ACTIVE_OWNER_SECONDS, LIVE, RunReadError, RunStore

if TYPE_CHECKING:  # the web server imports this module before torch or scikit-learn (a fast first page)
    from ..data.dataset import Dataset

SAVE_EVERY_SECONDS = 5.0
MAX_STORED_RUNS = 20  # runs read back from disk kept for the next page (within the byte budget too)


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
        if self.mode not in ("thread", "process"):
            raise ValueError(f"worker mode must be 'thread' or 'process', got {self.mode!r}")
        self.store = store or RunStore()
        self.lock = threading.RLock()
        self.store_problem: str | None = None  # why the runs folder refuses writes now (None: it is fine)
        self._unsaved: dict[str, Job] = {}  # finished runs whose final save the runs folder refused
        self.owner_seen: dict[str, float] = {}  # owner -> wall time of its last submission or poll
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
        # runs a previous server left live: marked interrupted now, or once the folder takes writes
        self._orphans = {r["id"] for r in self.store.list_runs() if r.get("status") in LIVE}
        self.check_store()
        # One thread per job and no BLAS thread pools: concurrent runs must not oversubscribe the cores.
        if self.mode == "thread":  # training in this process; worker processes set their own
            import torch

            torch.set_num_threads(threads_per_job)
        self._blas = threadpool_limits(limits=threads_per_job)
        self.slots: list[WorkerSlot] = []
        if self.mode == "process":  # started now, so the first run does not wait for torch to import
            self.slots = [self._new_slot(i) for i in range(self.max_concurrent)]
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
        try:
            self.store.create(run_id, cfg, owner=owner, label=label)
        except OSError as exc:  # the run fails at once, with what to do; the page gets no exception
            with self.lock:
                self.jobs[run_id] = job
                self._finish(job, "failed", self._refused(exc))
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
            if run_id in self._stored:
                self._stored.move_to_end(run_id)
                return self._stored[run_id]
        try:
            if not (self.store.folder(run_id) / "config.json").exists():
                return None
            stored = StoredRun(self.store, run_id)  # a broken history: status unreadable, with why
        except (RunReadError, ValueError, OSError):  # no usable config.json (or a bad run id)
            return None
        with self.lock:
            self._stored[run_id] = stored
            self._evict()
        return stored

    def note_owner(self, owner: str) -> None:
        """A session was active now (pruning spares its runs for ACTIVE_OWNER_SECONDS)."""
        if owner:
            self.owner_seen[owner] = time.time()

    def check_store(self) -> str | None:
        """Probe the runs folder; once it takes writes again, write what it refused before (runs a
        previous server left live, finished runs' final saves). Returns `store_problem`."""
        with self.lock:
            try:
                self.store.probe()
                if self._orphans:
                    self.store.mark_interrupted(only=self._orphans)
                    self._orphans = set()
                for job in list(self._unsaved.values()):
                    self._write_final(job, job.status, job.reason, job.finished_at or time.time())
                    del self._unsaved[job.run_id]
                    job.on_disk = True
            except OSError as exc:
                self.store_problem = self.store.write_problem(exc)
            else:
                self.store_problem = None
            if self.store_problem is None:
                self._evict()
            return self.store_problem

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
                started = time.time()
                try:
                    self.store.set_status(job.run_id, "running", started=started)
                except OSError as exc:  # this run fails, the next one may still fit
                    self._finish(job, "failed", self._refused(exc))
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
            last_save = time.monotonic()
            for event in train(job.cfg, job.ds, stop=job.stop_event, run_id=job.run_id, model=job.model):
                job.add(event)
                if time.monotonic() - last_save > SAVE_EVERY_SECONDS and job.write_problem is None:
                    self._save_while_training(job)
                    last_save = time.monotonic()
            status, reason = outcome(job.history, job.reason, write_problem=job.write_problem)
        except Exception as exc:  # isolation: one broken run never takes the server down
            status, reason = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            with self.lock:
                self.running.discard(job.run_id)
                self._finish(job, status, reason)
                self._dispatch()

    # --- worker processes ------------------------------------------------------------------------
    def _listen(self, slot: WorkerSlot) -> None:
        """Fold one worker's messages into the job it runs; restart the worker if its process dies."""
        while True:
            try:
                msg = slot.conn.recv()
            except (EOFError, OSError):
                break
            except Exception:  # a message that cannot be unpickled: skip it, keep listening
                traceback.print_exc(file=sys.stderr)
                continue
            try:
                self._handle(slot, msg)
            except Exception:  # this thread must outlive any one message, or the slot is lost for good
                traceback.print_exc(file=sys.stderr)
                if msg[0] == "done" and slot.job is not None:
                    self._end(slot, slot.job, "the server could not record this run's end")
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
            fresh = self._new_slot(slot.index, failures=slot.failures)
            self.slots[self.slots.index(slot)] = fresh

    def _handle(self, slot: WorkerSlot, msg: tuple) -> None:
        kind, job = msg[0], slot.job
        if kind == "ready":
            slot.ready.set()
            self._dispatch()
        elif job is None:
            return
        elif kind == "event":
            job.add(msg[1])
            if time.monotonic() - slot.last_save > SAVE_EVERY_SECONDS and job.write_problem is None:
                self._save_while_training(job)
                slot.last_save = time.monotonic()
        elif kind == "weights":
            job.load_weights(msg[1])
        elif kind == "crash":
            job.reason = msg[1]
        elif kind == "done":
            self._end(slot, job, None)

    def _new_slot(self, index: int, failures: int = 0) -> WorkerSlot:
        return WorkerSlot(index, self.threads_per_job, self._listen, failures=failures)

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
        """Save the run, then mark it done (so `done` means it is on disk too). Never raises: a write the
        runs folder refuses fails the run with that reason, in memory and, where it still fits, on disk;
        the run stays in memory until the folder takes its final save (check_store)."""
        finished_at = time.time()
        try:
            self._write_final(job, status, reason, finished_at)
            job.on_disk = True
        except OSError as exc:
            status, reason = "failed", self._refused(exc)
            self._unsaved[job.run_id] = job
            # a status file is small: it may fit where the history did not (if not, memory says failed
            # while disk still says live, and check_store writes the status later)
            with contextlib.suppress(OSError):
                self.store.set_status(job.run_id, status, reason=reason, finished=finished_at)
        except Exception as exc:  # e.g. a model that cannot be serialised: still one run's failure
            status, reason = "failed", f"the run could not be saved ({type(exc).__name__}: {exc})"
            self._unsaved[job.run_id] = job
        keep = set(self.running) | {q.run_id for q in self.queue}
        with contextlib.suppress(OSError):  # nothing is lost when pruning fails; the next run tries again
            self.store.prune(keep=keep, active_owners=self._active())
        job.reason, job.finished_at = reason, finished_at
        job.status = status
        self._evict()

    def _write_final(self, job: Job, status: str, reason: str, finished_at: float) -> None:
        """Every file of a finished run, status last (raises OSError)."""
        if not (self.store.folder(job.run_id) / "config.json").exists():  # its creation was refused
            self.store.create(job.run_id, job.cfg, owner=job.owner, label=job.label)
        self._save(job)
        if job.model is not None and status in ("finished", "stopped"):
            self.store.save_model(job.run_id, job.model, job.ds.vectorizer, job.ds.class_names)
        self.store.save_texts(job.run_id, job.snapshot_texts())
        summary = job.read(lambda h: h.summary)
        self.store.set_status(
            job.run_id,
            status,
            reason=reason,
            finished=finished_at,
            summary=summary,
            owner=job.owner,
            label=job.label,
            created=job.created,
        )

    def _save(self, job: Job) -> None:
        with job.lock:
            arrays, meta = job.history.to_arrays(), job.history.meta()
        self.store.save_history_parts(job.run_id, arrays, meta)

    def _save_while_training(self, job: Job) -> None:
        """A periodic save; when the runs folder refuses it the run stops and will fail with the reason."""
        try:
            self._save(job)
        except OSError as exc:
            job.write_problem = self._refused(exc)
            job.request_stop()

    def _refused(self, exc: OSError) -> str:
        """The runs folder refused a write: remember why (store_problem) and return it."""
        self.store_problem = self.store.write_problem(exc)
        return self.store_problem

    def _active(self) -> set[str]:
        """Owners seen in the last ACTIVE_OWNER_SECONDS (their runs are never pruned)."""
        with self.lock:
            for job in self.jobs.values():
                self.owner_seen[job.owner] = max(self.owner_seen.get(job.owner, 0.0), job.last_seen())
            since = time.time() - ACTIVE_OWNER_SECONDS
            return {owner for owner, seen in self.owner_seen.items() if owner and seen > since}

    def _evict(self) -> None:
        """Keep finished runs in memory only within max_in_memory and the byte budget, newest first;
        the others are on disk and come back through open_run. A live run, or one whose final save the
        runs folder refused, always stays."""
        with self.lock:
            done = [j for j in self.jobs.values() if j.done and j.on_disk]  # oldest first
            leave = {j.run_id for j in done[: max(0, len(self.jobs) - self.max_in_memory)]}
            used = 0
            for job in reversed(done):
                size = job.nbytes()
                if job.run_id in leave or used + size > self.memory_bytes:
                    leave.add(job.run_id)
                else:
                    used += size
            for rid in leave:
                job = self.jobs.pop(rid)
                self.owner_seen[job.owner] = max(self.owner_seen.get(job.owner, 0.0), job.last_seen())
            stored = list(self._stored.values())  # least recently opened first; the newest always stays
            used += sum(r.nbytes() for r in stored)
            while len(stored) > 1 and (len(stored) > MAX_STORED_RUNS or used > self.memory_bytes):
                used -= stored[0].nbytes()
                del self._stored[stored.pop(0).run_id]

    def memory_in_use(self) -> int:
        """Bytes held by the runs in memory, live ones included (for the benchmark and a status line)."""
        with self.lock:
            return sum(j.nbytes() for j in self.jobs.values()) + sum(
                r.nbytes() for r in self._stored.values()
            )

    def _watch(self) -> None:
        """Stop runs whose page has not polled for heartbeat_timeout seconds (the tab was closed)."""
        while not self._closed.wait(min(5.0, self.heartbeat_timeout / 4)):
            if self.store_problem is not None or self._unsaved or self._orphans:
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
        for slot in self.slots:
            slot.close(timeout)
