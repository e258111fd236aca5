"""The machinery behind the projections: a bounded LRU cache (`cached`), one background thread that
computes UMAP projections newest request first (`WORKER`), and umap-learn in a process of its own
(`UMAP_PROCESS`) whose numba code `warm_up_umap()` compiles at app start (the first call otherwise
compiles for ~35 s, minutes on a busy machine); `umap_ready()`, `umap_status()`. projection.py holds the
math and asks this module for UMAP; this module never imports it. No Streamlit, no torch.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from .. import settings

EXPECTED_WARM_SECONDS = 35.0


def umap_here(x: np.ndarray, n_components: int, seed: int, init: np.ndarray | str, epochs: int) -> np.ndarray:
    """UMAP in this process (the UMAP process runs it); `init` is the starting layout (projection.py passes
    its PCA, so UMAP needs no spectral step and keeps the PCA view's orientation). The optimisation's
    `epochs` (projection.py chooses them) are nearly all of the time (2,000 rows: 4-5 ms an epoch here)."""
    import umap

    model = umap.UMAP(
        n_neighbors=min(15, len(x) - 1),
        n_components=n_components,
        init=init,
        n_epochs=epochs,
        random_state=seed,
        n_jobs=1,  # with a seed umap-learn runs single-threaded anyway (and warns)
        # NN-descent (numba) at every size: under 4,096 rows umap-learn otherwise asks scikit-learn for
        # exact distances with a Python callable per pair (2,000 rows x 100: 5 s; this way 0.8 s)
        force_approximation_algorithm=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit_transform(x).astype(np.float32)


class LRU:
    """A thread-safe bounded mapping; the least recently used entry goes first."""

    def __init__(self, size: int = 512):
        self.size, self.data, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key):
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        return None

    def put(self, key, value) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


CACHE = LRU()


def cached(key, compute: Callable[[], object]):
    value = CACHE.get(key)
    if value is None:
        value = compute()
        CACHE.put(key, value)
    return value


class BackgroundQueue:
    """One background thread computing UMAP projections, newest request first (the slider moves on)."""

    MAX_QUEUED = 16

    def __init__(self):
        self.cond = threading.Condition()
        self.jobs: OrderedDict = OrderedDict()
        self.running = None
        self.failed: dict = {}
        self.thread: threading.Thread | None = None
        self.finished = 0  # projections computed or failed so far (a page polls it to redraw at once)
        self.last_work = 0.0  # time.monotonic() when a projection (or the warm-up) last ended

    def request(self, key, compute):
        """The cached value, or None while it is computed (queued now if it was not yet)."""
        value = CACHE.get(key)
        if value is not None:
            return value
        with self.cond:
            if key in self.failed:
                raise RuntimeError(self.failed[key])
            if key != self.running:
                self.jobs[key] = self.jobs.pop(key, compute)  # move to the newest end
                while len(self.jobs) > self.MAX_QUEUED:
                    self.jobs.popitem(last=False)
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="ffnlp-umap", daemon=True)
                self.thread.start()
            self.cond.notify()
        return None

    def busy(self) -> bool:
        with self.cond:
            return bool(self.jobs) or self.running is not None

    def worked(self) -> None:
        """Count from now in `quiet_for` (the warm-up calls it as its compile ends)."""
        self.last_work = time.monotonic()

    def quiet_for(self) -> float:
        """Seconds since the last projection (or the warm-up's compile) ended; 0 while one is computed."""
        return 0.0 if self.busy() else time.monotonic() - self.last_work

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.jobs:
                    self.cond.wait()
                key, compute = self.jobs.popitem(last=True)
                self.running = key
            try:
                CACHE.put(key, compute())
            except Exception as exc:  # shown on the page; PCA stays on screen
                with self.cond:
                    self.failed[key] = f"UMAP failed: {type(exc).__name__}: {exc}"
            finally:
                with self.cond:
                    self.running = None
                    self.finished += 1
                    self.worked()


WORKER = BackgroundQueue()


# --- the UMAP process ----------------------------------------------------------------------------
class UmapProcess:
    """umap-learn in a process of its own: numba compiles there for ~35 s (more on a busy machine) and
    holds that process's GIL, not the server's (in a thread the server stalled for 0.3-3.5 s at a time)."""

    def __init__(self):
        self.lock, self.conn, self.proc = threading.Lock(), None, None

    def umap(
        self,
        x: np.ndarray,
        n_components: int,
        seed: int,
        init: np.ndarray | str,
        epochs: int,
    ) -> np.ndarray:
        return self.ask(("umap", x, n_components, seed, init, epochs))

    def ask(self, message: tuple, on_stage: Callable[[str], None] | None = None):
        with self.lock:
            if self.proc is None or not self.proc.is_alive():
                self._start()
            try:
                self.conn.send(message)
                kind, value = self.conn.recv()
                while kind == "stage":
                    if on_stage:
                        on_stage(value)
                    kind, value = self.conn.recv()
            except (EOFError, OSError) as exc:
                self.proc = None
                raise RuntimeError(f"the UMAP process ended unexpectedly ({exc!r})") from exc
        if kind == "error":
            raise RuntimeError(value)
        return value

    def _start(self) -> None:
        import multiprocessing as mp

        from ..runs.spawn import START_LOCK, bare_main

        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child,), name="ffnlp-umap", daemon=True)
        with START_LOCK, bare_main():
            self.proc.start()
        child.close()
        atexit.register(self.close)

    def close(self) -> None:
        """End the process at exit. Not under the lock: a call in flight holds it (the warm-up compiles
        for a minute), and Ctrl-C must not wait for that; its caller gets EOF and gives up."""
        proc = self.proc
        if proc is None:
            return
        proc.terminate()  # nothing in it needs to be kept: it only computes
        proc.join(2)
        if proc.is_alive():
            proc.kill()


def _serve(conn) -> None:
    """The UMAP process: answer ("umap", x, n_components, seed) and ("warm", rows, dims, seed)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    with contextlib.suppress(OSError):
        os.nice(19)  # compiling and projecting must never slow a training run down
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if message[0] == "umap":
                conn.send(("ok", umap_here(*message[1:])))
            else:
                rows, dims, seed = message[1:]
                rng = np.random.default_rng(seed)
                for stage, n in (
                    ("importing umap-learn", 0),
                    ("small data sets", 300),
                    ("large data sets", rows),
                ):
                    conn.send(("stage", stage))
                    if n:  # as projection.py calls it: float32 rows, a float64 PCA layout as the start (20
                        # epochs: the compile is what is warmed, and it does not depend on them)
                        umap_here(rng.random((n, dims), dtype=np.float32), 2, seed, rng.random((n, 2)), 20)
                    else:
                        import umap  # noqa: F401
                conn.send(("ok", None))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


UMAP_PROCESS = UmapProcess()
_WARM = {"state": "idle", "stage": "", "started": 0.0, "seconds": 0.0, "error": ""}
_WARM_LOCK = threading.Lock()


def warm_up_umap(rows: int = 5000, dims: int = 20, seed: int = 0) -> bool:
    """Start the UMAP process and compile umap-learn's numba code there, on random data shaped like the
    real calls (float32 rows, a float64 starting layout): 300 rows and `rows` rows.
    Blocks; returns at once (False) while another thread warms up. True when UMAP is ready."""
    with _WARM_LOCK:
        if _WARM["state"] in ("compiling", "ready"):
            return _WARM["state"] == "ready"
        if not settings.umap_enabled():  # e.g. page tests that never need UMAP
            _WARM.update(state="failed", error="UMAP is switched off here (FFNLP_UMAP=0)")
            return False
        _WARM.update(state="compiling", stage="starting", started=time.monotonic(), error="")
    try:
        from sklearn.decomposition import TruncatedSVD  # noqa: F401  (here too: the first click skips it)

        UMAP_PROCESS.ask(("warm", rows, dims, seed), on_stage=lambda stage: _WARM.__setitem__("stage", stage))
        state, error = "ready", ""
    except Exception as exc:  # UMAP stays unavailable; PCA works without it
        state, error = "failed", str(exc)
    WORKER.worked()  # the pages waiting for it ask for their projections now
    with _WARM_LOCK:
        _WARM.update(state=state, error=error, seconds=time.monotonic() - _WARM["started"])
    return state == "ready"


def start_warm_up() -> None:
    """Start warm_up_umap in a background thread unless it already ran or runs."""
    if _WARM["state"] == "idle":
        threading.Thread(target=warm_up_umap, name="ffnlp-umap-warmup", daemon=True).start()


def umap_ready() -> bool:
    with _WARM_LOCK:
        return _WARM["state"] == "ready"


def umap_status() -> dict:
    """state (idle, compiling, ready, failed), stage, elapsed seconds, fraction (an estimate), error."""
    with _WARM_LOCK:
        s = dict(_WARM)
    elapsed = time.monotonic() - s["started"] if s["state"] == "compiling" else s["seconds"]
    fraction = {"ready": 1.0, "idle": 0.0, "failed": 0.0}.get(s["state"])
    if fraction is None:
        fraction = min(0.95, elapsed / EXPECTED_WARM_SECONDS)
    return {**s, "elapsed": elapsed, "fraction": fraction}


def status_text(status: dict) -> str:
    """What the Representations page says while UMAP is not ready (PCA is shown meanwhile)."""
    if status["state"] == "failed":
        return f"UMAP is unavailable ({status['error']}): PCA shown."
    return (
        f"UMAP is compiling ({status['elapsed']:.0f} s so far; ~{EXPECTED_WARM_SECONDS:.0f} s on an idle "
        "machine): PCA shown meanwhile, UMAP swaps in when ready."
    )
