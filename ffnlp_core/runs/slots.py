"""A worker slot: one worker process (see worker.py) the job manager keeps ready, its pipe, its stop flag
and the thread that listens to it. The manager gives a slot one run at a time and replaces it when its
process dies. `make_slot` is the one place a backend is chosen: a process here, or a Ray actor
(ray_slots.py, imported only when FFNLP_WORKERS=ray, so the default install needs no Ray)."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from .spawn import START_LOCK, bare_main
from .worker import slim, worker_main

if TYPE_CHECKING:
    from .handles import Job

__all__ = ["WorkerSlot", "make_slot", "slim"]


def make_slot(mode: str, index: int, threads: int, listen: Callable, failures: int = 0):
    """A started slot of the manager's backend ('process' or 'ray'); both offer the same interface."""
    if mode == "ray":
        from .ray_slots import RaySlot

        return RaySlot(index, threads, listen, failures=failures)
    return WorkerSlot(index, threads, listen, failures=failures)


class WorkerSlot:
    """A started worker process and the thread that passes its messages to `listen(slot)`."""

    def __init__(self, index: int, threads: int, listen: Callable[[WorkerSlot], None], failures: int = 0):
        ctx = mp.get_context("spawn")  # a clean interpreter: safe with the server's threads, and with CUDA
        self.index, self.failures = index, failures
        self.conn, child = ctx.Pipe()
        self.stop = ctx.Event()
        self.ready = threading.Event()
        self.job: Job | None = None
        self.proc = ctx.Process(
            target=worker_main, args=(child, self.stop, threads), name=f"ffnlp-worker-{index}", daemon=True
        )
        with START_LOCK, bare_main():
            self.proc.start()
        child.close()
        self.listener = threading.Thread(
            target=listen, args=(self,), name=f"ffnlp-listen-{index}", daemon=True
        )
        self.listener.start()

    def send_run(self, job: Job) -> None:
        """Hand the worker a run (raises OSError/ValueError when its process died meanwhile)."""
        self.conn.send(("train", job.run_id, job.cfg.to_dict(), slim(job.ds)))

    def lost_reason(self) -> str:
        """Why the run of a worker that died failed (called once its pipe closed)."""
        self.proc.join(1.0)
        code = self.proc.exitcode
        hint = " (killed: out of memory?)" if code is not None and code < 0 else ""
        return f"the training process ended unexpectedly with exit code {code}{hint}"

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
