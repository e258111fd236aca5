"""The Ray backend for runs (FFNLP_WORKERS=ray): a `RaySlot` is a worker slot whose training process is a
Ray actor, placed by Ray on any node of the cluster with a free CPU (and a GPU for a CUDA run).

It offers the manager what a `WorkerSlot` offers (`conn.recv()` of the same messages as worker.py's
protocol, `stop`, `ready`, `job`, `send_run`, `lost_reason`, `close`), so the queue, the heartbeat, the
saves and the restart of a lost worker are the manager's, unchanged. Events come back through a Ray
streaming generator; stopping is one actor call that sets the run's flag between batches; an actor
whose process or node died ends its run as failed, with the reason. A data set goes into Ray's object
store once (`dataset_ref`), and every run on it reads that one copy.

Ray is imported only here and only when a slot is made: the default install has no Ray
(requirements-cluster.txt adds it). The cluster is FFNLP_RAY_ADDRESS, or else a local Ray instance on
127.0.0.1 with a bounded number of CPUs, started by the first slot.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .. import settings
from .worker import prepare_worker, run_messages, slim

if TYPE_CHECKING:
    from ..data.dataset import Dataset
    from .handles import Job

PING_SECONDS = 5.0  # an idle actor is asked this often whether it is still alive (a node may leave)
NAMESPACE = "ffnlp"
_CONNECT = threading.Lock()
_REFS: dict[int, tuple[weakref.ref, object]] = {}  # id(data set) -> (the data set, its ObjectRef)
PUTS = {"count": 0}  # data sets put into the object store (the tests check: one per data set)
# Ray turns 127.0.0.1 into the machine's public address and listens there unless this is "0" (its switch
# for single-machine use); read when Ray is imported, so set before that, for a local instance only.
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def ray_address() -> str:
    """FFNLP_RAY_ADDRESS: a running cluster ("host:port" or "auto"); empty: a local instance."""
    return settings.ray_address()


def connect():
    """The `ray` module, connected to the cluster (once per process; an existing connection is kept)."""
    if not ray_address():  # a local instance: reachable from this machine only (127.0.0.1)
        os.environ.setdefault(LOOPBACK_ONLY, "0")
    import ray

    with _CONNECT:
        if not ray.is_initialized():
            # Ray's workers import ffnlp_core from the same checkout: each node needs it at this path.
            root = str(Path(__file__).resolve().parents[2])
            path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
            common = dict(
                namespace=NAMESPACE, runtime_env={"env_vars": {"PYTHONPATH": path}}, log_to_driver=False
            )
            address = ray_address()
            if address:
                ray.init(address=address, **common)
            else:  # a local instance, reachable from this machine only, with bounded CPUs
                cpus = settings.max_concurrent() or os.cpu_count() or 1
                in_lasting_thread(
                    lambda: ray.init(
                        num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1", **common
                    )
                )
    return ray


def in_lasting_thread(start: Callable[[], object]) -> None:
    """Run `start` (which starts a local Ray instance) in a thread that lives as long as this process.

    Ray ties its node processes (gcs_server, raylet, ...) to the *thread* that started them (Linux's
    PR_SET_PDEATHSIG fires when that thread ends), and the first slot may be made by a short-lived thread
    (a Streamlit script run): started from there, the whole instance is killed seconds later."""
    started, failed = threading.Event(), []

    def keep() -> None:
        try:
            start()
        except BaseException as exc:  # handed to the caller
            failed.append(exc)
        finally:
            started.set()
        if not failed:
            threading.Event().wait()  # never returns: the instance lives until the process exits

    threading.Thread(target=keep, name="ffnlp-ray-local", daemon=True).start()
    started.wait()
    if failed:
        raise failed[0]


def dataset_ref(ds: Dataset):
    """The data set (without its texts) in Ray's object store: put once, shared by every run on it."""
    ray = connect()
    key = id(ds)
    with _CONNECT:
        hit = _REFS.get(key)
        if hit is not None and hit[0]() is ds:
            return hit[1]
        ref = ray.put(slim(ds))
        PUTS["count"] += 1
        _REFS[key] = (weakref.ref(ds, lambda _, key=key: _REFS.pop(key, None)), ref)
        return ref


class Trainer:
    """The actor's body: one training process, set up once, one run at a time (plus stop and ping calls,
    which is why the actor is threaded)."""

    def __init__(self, threads: int):
        prepare_worker(threads)
        self.lock = threading.Lock()
        self.flags: dict[str, threading.Event] = {}
        self.stopped: set[str] = set()  # a stop may arrive before its run starts

    def ready(self) -> int:
        return os.getpid()

    def stop(self, run_id: str) -> None:
        with self.lock:
            self.stopped.add(run_id)
            flag = self.flags.get(run_id)
        if flag is not None:
            flag.set()

    def train(self, run_id: str, cfg_dict: dict, ds) -> Iterator[tuple]:
        flag = threading.Event()
        with self.lock:
            self.flags[run_id] = flag
            if run_id in self.stopped:
                flag.set()
        try:
            yield from run_messages(run_id, cfg_dict, ds, flag)
        finally:
            with self.lock:
                self.flags.pop(run_id, None)
                self.stopped.discard(run_id)


_ACTOR = None


def _actor_class():
    global _ACTOR
    if _ACTOR is None:
        ray = connect()
        _ACTOR = ray.remote(max_concurrency=3)(Trainer)
    return _ACTOR


def wants_gpu(job: Job) -> bool:
    return job.cfg.train.device == "cuda"


class RayStop:
    """The run's stop flag, as the manager and the pages use it (set, clear, is_set): `set` also tells
    the actor, which stops the run at its next batch."""

    def __init__(self, slot: RaySlot):
        self.slot = slot
        self.flag = threading.Event()

    def set(self) -> None:
        self.flag.set()
        self.slot.tell_stop()

    def clear(self) -> None:
        self.flag.clear()

    def is_set(self) -> bool:
        return self.flag.is_set()


class RaySlot:
    """A Ray actor ready to train, and the thread that passes its messages to `listen(slot)`."""

    def __init__(self, index: int, threads: int, listen: Callable[[RaySlot], None], failures: int = 0):
        self.ray = connect()
        self.index, self.failures, self.threads = index, failures, threads
        self.ready = threading.Event()
        self.job: Job | None = None
        self.stop = RayStop(self)
        self.lost = "the Ray worker actor ended unexpectedly"
        self.run_id: str | None = None
        self.gpu_actor = None  # a CUDA run's own actor (num_gpus=1), gone when the run ends
        self.actor = _actor_class().options(num_cpus=threads, name=None).remote(threads)
        self.conn = RayChannel(self)
        self.listener = threading.Thread(
            target=listen, args=(self,), name=f"ffnlp-ray-listen-{index}", daemon=True
        )
        self.listener.start()

    def current_actor(self):
        return self.gpu_actor if self.gpu_actor is not None else self.actor

    def send_run(self, job: Job) -> None:
        """Hand the actor a run (its events then stream back through `conn`)."""
        self.run_id = job.run_id
        if wants_gpu(job):
            if self.ray.cluster_resources().get("GPU", 0) < 1:
                msg = "this run asks for CUDA, but no node of the Ray cluster has a GPU; use 'cpu' or 'auto'"
                self.conn.runs.put(iter([("crash", msg, ""), ("done",)]))
                return
            self.gpu_actor = _actor_class().options(num_cpus=self.threads, num_gpus=1).remote(self.threads)
        train = self.current_actor().train.options(num_returns="streaming")
        self.conn.runs.put(train.remote(job.run_id, job.cfg.to_dict(), dataset_ref(job.ds)))
        if self.stop.is_set():  # stopped while it was being handed over
            self.tell_stop()

    def tell_stop(self) -> None:
        if self.run_id is not None:
            with contextlib.suppress(Exception):  # a dead actor: its run ends through `conn` anyway
                self.current_actor().stop.remote(self.run_id)

    def end_run(self) -> None:
        """The run's stream ended: a CUDA run's own actor goes, freeing its GPU."""
        self.run_id = None
        if self.gpu_actor is not None:
            with contextlib.suppress(Exception):
                self.ray.kill(self.gpu_actor)
            self.gpu_actor = None

    def lost_reason(self) -> str:
        return self.lost

    def kill(self) -> None:
        for actor in (self.gpu_actor, self.actor):
            if actor is not None:
                with contextlib.suppress(Exception):
                    self.ray.kill(actor, no_restart=True)

    def close(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.job is not None and time.monotonic() < deadline:  # let a stopped run send its end
            time.sleep(0.05)
        self.conn.closed.set()
        self.kill()
        if self.listener is not threading.current_thread():
            self.listener.join(max(0.1, deadline - time.monotonic()))


class RayChannel:
    """The slot's side of the protocol: `recv()` returns the next message, as a worker's pipe does, and
    raises EOFError once the actor is gone (after noting why in `slot.lost`)."""

    def __init__(self, slot: RaySlot):
        self.slot = slot
        self.runs: queue.Queue = queue.Queue()  # streams (or plain message lists) of runs handed over
        self.closed = threading.Event()
        self.stream = None
        self.greeted = False

    def recv(self) -> tuple:
        ray = self.slot.ray
        try:
            if not self.greeted:  # the actor's constructor imports torch and compiles the kernels
                self._wait(self.slot.actor.ready.remote())
                self.greeted = True
                return ("ready",)
            while True:
                if self.stream is None:
                    self.stream = self._next_run()
                try:
                    ref = next(self.stream)
                except StopIteration:
                    self.stream = None
                    self.slot.end_run()
                    continue
                return ref if isinstance(ref, tuple) else self._wait(ref)
        except ray.exceptions.RayError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            self.slot.lost = (
                f"the Ray worker running this run was lost ({type(exc).__name__}: its process was killed "
                f"or its node left the cluster){': ' + first[:200] if first else ''}"
            )
            self.slot.kill()
            raise EOFError from exc

    def _wait(self, ref):
        """ray.get, but giving up when the slot is closed (a pending actor never blocks a shutdown)."""
        ray = self.slot.ray
        while True:
            done, _ = ray.wait([ref], timeout=0.5)
            if done:
                return ray.get(ref)
            if self.closed.is_set():
                raise EOFError

    def _next_run(self) -> Iterator:
        """Wait for the next run handed over; an idle actor is pinged now and then (its node may die)."""
        last_ping = time.monotonic()
        while True:
            if self.closed.is_set():
                raise EOFError
            try:
                return self.runs.get(timeout=0.5)
            except queue.Empty:
                pass
            if time.monotonic() - last_ping > PING_SECONDS:
                self._wait(self.slot.actor.ready.remote())
                last_ping = time.monotonic()
