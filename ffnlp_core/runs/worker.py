"""The training process: one per concurrent run slot, started once and reused.

Runs the engine outside the web server's process, so training never competes with the pages for Python's
GIL, and a crash (even one that kills the process, e.g. the kernel's out-of-memory killer) takes down only
its own run. It speaks a tiny protocol over a multiprocessing Pipe:

    parent -> child:  ("train", run_id, RunConfig dict, Dataset)   |   ("exit",)
    child -> parent:  ("ready", pid) once, then per run: ("event", event)*, ("weights", state dict)*, ("done",)

Stopping is a shared multiprocessing.Event, checked by the engine between batches. The Ray backend
(ray_slots.py) runs the same `prepare_worker` and `run_messages` inside a Ray actor.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from collections.abc import Iterator
from dataclasses import replace

WEIGHTS_EVERY_SECONDS = 2.0  # at most this often, the live model in the server is refreshed at an evaluation
NICENESS = 10  # training yields the CPU to the web server: pages stay responsive while every core trains


def slim(ds):
    """The data set without its texts: what a worker needs to train (smaller to send)."""
    return replace(ds, labeled=replace(ds.labeled, texts=[]))


def prepare_worker(threads: int) -> None:
    """Set a fresh training process up: lower priority, bounded thread pools, the Numba kernels compiled."""
    with contextlib.suppress(OSError, AttributeError):  # not on every platform
        os.nice(NICENESS)
    import torch
    from threadpoolctl import threadpool_limits

    from ..train import kernels

    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)
    kernels.warm_up()


def run_messages(run_id: str, cfg_dict: dict, ds, stop) -> Iterator[tuple]:
    """One run as the protocol's messages: ("event", e)*, ("weights", state)*, maybe ("crash", ...), ("done",)."""
    from ..config import RunConfig
    from ..events import Eval, Failed, Finished
    from ..train.loop import train
    from ..train.plan import build_model

    try:
        cfg = RunConfig.from_dict(cfg_dict)
        model = build_model(cfg, ds)
        last = 0.0
        for event in train(cfg, ds, stop=stop, run_id=run_id, model=model):
            yield ("event", event)
            final = isinstance(event, (Finished, Failed))
            if final or (isinstance(event, Eval) and time.monotonic() - last > WEIGHTS_EVERY_SECONDS):
                yield ("weights", {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})
                last = time.monotonic()
    except Exception as exc:  # the engine turns errors into Failed events; this is a last resort
        yield ("crash", f"{type(exc).__name__}: {exc}", traceback.format_exc(limit=3))
    yield ("done",)


def worker_main(conn, stop, threads: int) -> None:
    """Entry point of a worker process (spawned: imports happen here, not in the server)."""
    prepare_worker(threads)
    conn.send(("ready",))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return  # the server went away
        if msg[0] == "exit":
            return
        _, run_id, cfg_dict, ds = msg
        for out in run_messages(run_id, cfg_dict, ds, stop):
            conn.send(out)
