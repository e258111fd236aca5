"""The job manager's worker slots (worker processes or Ray actors, see slots.py) and the threads that
listen to them: each listener passes its worker's messages to the manager, and when the worker dies it
reports the lost run and starts a replacement (backing off; three workers in a row that die before they
are even ready point at a broken environment, and the manager then trains in threads)."""

from __future__ import annotations

import sys
import threading
import traceback

from .slots import WorkerSlot, make_slot


class SlotPool:
    """`count` slots of `threads` threads each, for `manager`, which offers: `_handle(slot, msg)` folds a
    message into the slot's run, `_lost(slot, reason)` ends the run of a slot whose worker died,
    `_broken()` is called once workers keep dying before they are ready, `_closed` is set at shutdown."""

    def __init__(self, mode: str, count: int, threads: int, manager):
        self.mode, self.threads = mode, threads
        self.handle, self.lost, self.broken = manager._handle, manager._lost, manager._broken
        self.closed: threading.Event = manager._closed
        self.lock = threading.Lock()
        self.slots: list[WorkerSlot] = [self._new(i) for i in range(count)]

    def free(self) -> WorkerSlot | None:
        """A ready worker without a run (None: every one is busy or (re)starting)."""
        return next((s for s in self.slots if s.job is None and s.ready.is_set()), None)

    def starting(self) -> int:
        return sum(1 for s in self.slots if not s.ready.is_set())

    def _new(self, index: int, failures: int = 0) -> WorkerSlot:
        return make_slot(self.mode, index, self.threads, self._listen, failures=failures)

    def _listen(self, slot: WorkerSlot) -> None:
        """Pass one worker's messages on; once it is gone, end its run and replace it."""
        while True:
            try:
                msg = slot.conn.recv()
            except (EOFError, OSError):
                break
            except Exception:  # a message that cannot be unpickled: skip it, keep listening
                traceback.print_exc(file=sys.stderr)
                continue
            if msg[0] == "ready":
                slot.ready.set()
            try:
                self.handle(slot, msg)
            except Exception:  # this thread must outlive any one message, or the slot is lost for good
                traceback.print_exc(file=sys.stderr)
                if msg[0] == "done" and slot.job is not None:
                    self.lost(slot, "the server could not record this run's end")
        was_ready = slot.ready.is_set()
        slot.ready.clear()  # never dispatch to a dead worker
        if self.closed.is_set():
            return
        if slot.job is not None:
            self.lost(slot, slot.lost_reason())
        slot.failures = 0 if was_ready else slot.failures + 1
        if slot.failures >= 3:
            self.broken()
            return
        if self.closed.wait(min(10.0, 0.5 * 2**slot.failures)):
            return  # shut down meanwhile: no new worker
        with self.lock:
            self.slots[self.slots.index(slot)] = self._new(slot.index, failures=slot.failures)

    def close(self, timeout: float) -> None:
        for slot in list(self.slots):
            slot.close(timeout)
