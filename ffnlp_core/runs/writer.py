"""Everything the job manager writes to the runs folder, and what happens when the folder refuses a write.

`RunWriter` is the one place a run reaches the disk: its creation, its start, the periodic saves while it
trains (history every SAVE_EVERY_SECONDS, weights every CHECKPOINT_SECONDS, so a killed server or worker
loses at most that much), its final save (status last: `status.json` is what says a folder is complete)
and pruning after it. A write the folder refuses (full, read-only) never raises into the manager: it fails
only the run that wrote, with a sentence the teacher can act on (`problem`), and the writer keeps what it
could not write (runs a previous server left live, finished runs' final saves) until `recover` finds the
folder taking writes again.

Several web servers may share one runs folder (FFNLP_RUNS_DIR on a shared disk, FFNLP_WORKERS=ray): each
writer names its server in the status of the runs it starts and touches `.servers/<server>` every
BEAT_SECONDS; a live run is an orphan (marked `interrupted`) only once its server has been silent for
DEAD_AFTER_SECONDS, and a Stop pressed on another server reaches the run through a `stop.request` file.

`FolderSaver` is the command line's `--save`: the same files for one run folder, checkpointed while the
run trains (status `interrupted` with what the checkpoint holds, until the final save replaces it), so a
kill -9 loses at most CHECKPOINT_SECONDS of training.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .handles import Job, end_status
from .history import RunHistory
from .store import ACTIVE_OWNER_SECONDS, LIVE, RunStore

if TYPE_CHECKING:
    from collections.abc import Callable

SAVE_EVERY_SECONDS = 5.0  # the history of a training run
CHECKPOINT_SECONDS = 30.0  # its weights (a model can be large: less often)
# end states whose last (finite) weights are saved
KEEP_WEIGHTS = ("finished", "stopped", "failed", "diverged")
BEAT_SECONDS = 10.0  # a server says it is alive this often (.servers/<server>)
DEAD_AFTER_SECONDS = 60.0  # a server silent this long has stopped: its live runs are orphans
STOP_CHECK_SECONDS = 1.0  # a training run looks for a stop asked on another server this often


class RunWriter:
    """The job manager's writes, guarded: `problem` is why the runs folder refuses writes now (or None)."""

    def __init__(self, store: RunStore):
        self.store = store
        self.problem: str | None = None
        self.unsaved: dict[str, Job] = {}  # finished runs whose final save the runs folder refused
        self.server = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.beat_at = self.scan_at = 0.0
        self.beat()
        # runs a stopped server left live: marked interrupted now, or once the folder takes writes
        self.orphans = self.find_orphans()

    # --- servers sharing the folder -------------------------------------------------------------
    def beat(self) -> None:
        """Say this server is alive (a folder that refuses it: the other checks say so)."""
        self.beat_at = time.monotonic()
        with contextlib.suppress(OSError):
            self.store.beat(self.server)

    def find_orphans(self) -> set[str]:
        """Live runs on disk whose server is gone (or unnamed: saved before servers were named)."""
        self.scan_at = time.monotonic()
        alive = self.store.servers_alive(DEAD_AFTER_SECONDS)
        return {
            r["id"]
            for r in self.store.list_runs()
            if r.get("status") in LIVE and r.get("server") != self.server and r.get("server") not in alive
        }

    def tick(self) -> None:
        """The watchdog's call: beat, and now and then look for runs that other servers left live."""
        now = time.monotonic()
        if now - self.beat_at >= BEAT_SECONDS:
            self.beat()
        if now - self.scan_at >= DEAD_AFTER_SECONDS / 2:
            with contextlib.suppress(OSError):
                self.orphans |= self.find_orphans()

    def close(self) -> None:
        """This server stops: its heartbeat goes (runs it leaves live are orphans at once)."""
        with contextlib.suppress(OSError):
            self.store.unbeat(self.server)

    def refused(self, exc: OSError) -> str:
        """The runs folder refused a write: remember why and return it."""
        self.problem = self.store.write_problem(exc)
        return self.problem

    def pending(self) -> bool:
        """Something waits for the folder to take writes again."""
        return self.problem is not None or bool(self.unsaved) or bool(self.orphans)

    def recover(self) -> str | None:
        """Probe the folder; once it takes writes, write what it refused before. Returns `problem`."""
        try:
            self.store.probe()
            if self.orphans:
                self.store.mark_interrupted(only=self.orphans)
                self.orphans = set()
            for job in list(self.unsaved.values()):
                self._write_final(job, job.status, job.reason, job.finished_at or time.time())
                del self.unsaved[job.run_id]
                job.on_disk = True
        except OSError as exc:
            self.refused(exc)
        else:
            self.problem = None
        return self.problem

    # --- a run's life ---------------------------------------------------------------------------
    def create(self, job: Job) -> str | None:
        """The run's folder (config, status `queued`); the reason when the folder refused it."""
        try:
            self.store.create(job.run_id, job.cfg, owner=job.owner, label=job.label)
            self.store.set_status(job.run_id, "queued", server=self.server)
        except OSError as exc:
            return self.refused(exc)
        return None

    def started(self, job: Job, started: float) -> str | None:
        try:
            self.store.set_status(job.run_id, "running", started=started, server=self.server)
        except OSError as exc:
            return self.refused(exc)
        return None

    def while_training(self, job: Job) -> None:
        """The periodic save, when due: the history, and the weights every CHECKPOINT_SECONDS. When the
        folder refuses it the run stops and fails with the reason (job.write_problem)."""
        now = time.monotonic()
        if now - job.stop_checked_at >= STOP_CHECK_SECONDS:
            job.stop_checked_at = now
            if self.store.stop_requested(job.run_id) and not job.stop_event.is_set():
                job.reason = "stopped from another server"
                job.request_stop()
        if job.write_problem is not None or now - job.saved_at < SAVE_EVERY_SECONDS:
            return
        job.saved_at = now
        try:
            self._save_history(job)
            if job.model is not None and now - job.checkpoint_at >= CHECKPOINT_SECONDS:
                job.checkpoint_at = now
                self._save_model(job)
        except OSError as exc:
            job.write_problem = self.refused(exc)
            job.request_stop()

    def finish(self, job: Job, status: str, reason: str, keep: set[str], active: Callable[[], set[str]]):
        """Save a run that ended, status last (so `done` means it is on disk too), then prune. Never raises:
        a refused write fails the run with that reason, in memory and, where it still fits, on disk; the
        run then waits in `unsaved` for `recover`. Returns the (status, reason, finished_at) to record."""
        finished_at = time.time()
        try:
            self._write_final(job, status, reason, finished_at)
            job.on_disk = True
        except OSError as exc:
            status, reason = "failed", self.refused(exc)
            self.unsaved[job.run_id] = job
            # a status file is small: it may fit where the history did not (if not, memory says failed
            # while disk still says live, and recover writes the status later)
            with contextlib.suppress(OSError):
                self.store.set_status(job.run_id, status, reason=reason, finished=finished_at)
        except Exception as exc:  # e.g. a model that cannot be serialised: still one run's failure
            status, reason = "failed", f"the run could not be saved ({type(exc).__name__}: {exc})"
            self.unsaved[job.run_id] = job
        with contextlib.suppress(OSError):  # nothing is lost when pruning fails; the next run tries again
            self.store.prune(keep=keep, active_owners=active())
        return status, reason, finished_at

    def _write_final(self, job: Job, status: str, reason: str, finished_at: float) -> None:
        """Every file of a finished run, status last (raises OSError)."""
        if not (self.store.folder(job.run_id) / "config.json").exists():  # its creation was refused
            self.store.create(job.run_id, job.cfg, owner=job.owner, label=job.label)
        self._save_history(job)
        if status in KEEP_WEIGHTS:  # a crashed worker's last weights too (≤ 2 s old), when they are finite
            self._save_model(job)
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

    def _save_history(self, job: Job) -> None:
        with job.lock:
            arrays, meta = job.history.to_arrays(), job.history.meta()
        self.store.save_history_parts(job.run_id, arrays, meta)

    def _save_model(self, job: Job) -> None:
        """The live weights, unless there are none yet or they are not finite (a diverged run)."""
        model = job.model
        if model is None or not job.steps_trained() or not _finite(model):
            return
        # (a worker's weights arrive on the thread that calls this: they never change while being written)
        self.store.save_model(job.run_id, model, job.ds.vectorizer, job.ds.class_names)


class Owners:
    """When each session (owner) was last active: pruning spares its runs for ACTIVE_OWNER_SECONDS."""

    def __init__(self):
        self.seen: dict[str, float] = {}  # owner -> wall time of its last submission or poll

    def note(self, owner: str, when: float | None = None) -> None:
        if owner:
            when = time.time() if when is None else when
            self.seen[owner] = max(self.seen.get(owner, 0.0), when)

    def active(self, jobs) -> set[str]:
        """Owners seen in the last ACTIVE_OWNER_SECONDS, the polls of `jobs` counted in."""
        for job in jobs:
            self.note(job.owner, job.last_seen())
        since = time.time() - ACTIVE_OWNER_SECONDS
        return {owner for owner, seen in self.seen.items() if seen > since}


class FolderSaver:
    """The CLI's --save: `add(event)` as the run trains (a checkpoint every `every` seconds, 0: none),
    then `finish()`. OSError reaches the caller (the CLI says so in one line)."""

    def __init__(self, folder: str | Path, cfg, ds, model, every: float = CHECKPOINT_SECONDS):
        folder = Path(folder)
        self.store = RunStore(folder.parent if str(folder.parent) else Path("."))
        self.run_id, self.cfg, self.ds, self.model, self.every = folder.name, cfg, ds, model, every
        self.history = RunHistory()
        self.store.create(self.run_id, cfg, owner="cli", label="cli")
        self.saved_at = time.monotonic()
        self.checkpoints = 0

    def add(self, event) -> None:
        self.history.add(event)
        if self.every and time.monotonic() - self.saved_at >= self.every:
            self.checkpoint()

    def checkpoint(self) -> None:
        """What was trained so far, readable as an interrupted run should the command never end."""
        self.saved_at = time.monotonic()
        steps = self.history.steps_done
        self._write(
            "interrupted",
            f"the command ended before the run did: this checkpoint holds its first {steps:,} steps",
        )
        self.checkpoints += 1

    def finish(self) -> str:
        """The final save; returns the run's end status."""
        status, reason = end_status(self.history)
        self._write(status, reason)
        return status

    def _write(self, status: str, reason: str) -> None:
        self.store.save_history(self.run_id, self.history)
        if self.history.steps_done and _finite(self.model):
            self.store.save_model(self.run_id, self.model, self.ds.vectorizer, self.ds.class_names)
        self.store.set_status(
            self.run_id, status, reason=reason, summary=self.history.summary, label="cli", owner="cli"
        )


def _finite(model) -> bool:
    import torch

    with torch.no_grad():
        return all(bool(torch.isfinite(p).all()) for p in model.parameters())
