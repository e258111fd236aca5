"""Hidden representations in 2-D: PCA or UMAP of the hidden states h0..h{k-1} that a run snapshots.

- `project(X, method, seed, reference=...)`: deterministic 2-D (or 3-D) coordinates; a sparse bag-of-words
  input goes through TruncatedSVD (50 dims) first; `reference` rotates the result onto an earlier embedding
  of the same rows (orthogonal Procrustes), so points do not jump between snapshots.
- `separation(X, gold)`: how well the layer separates the gold classes, as leave-one-out 11-NN accuracy.
- A bounded LRU cache keyed by (run, snapshot step, layer, method); UMAP runs in a process of its own,
  fed by a background thread, and `warm_up_umap()` compiles its numba code there at app start (the first
  call otherwise compiles for ~35 s, minutes on a busy machine); `umap_ready()`, `umap_status()`.
- The Plotly scatter (hover: the comment, HTML-escaped, cut to ~200 characters) and the separation charts.
No Streamlit, no torch.
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
import scipy.sparse as sp

from .. import settings
from ..events import HiddenSnapshot

METHODS: dict[str, str] = {
    "pca": "PCA: the two directions of largest variance (linear, instant)",
    "umap": "UMAP: keeps each comment's nearest neighbours together (nonlinear, a few seconds)",
}
INPUT = "input"  # the layer name of the raw bag-of-words input
SVD_DIMS = 50  # the sparse input is reduced to this many dimensions before PCA / UMAP
KNN_K = 11  # odd: no ties between two classes
SCORE_ROWS = 1000  # the separation score uses at most this many rows (seeded subset)
EXPECTED_WARM_SECONDS = 35.0


# --- projections ----------------------------------------------------------------------------------
def reduce_input(x, seed: int = 0, dims: int = SVD_DIMS) -> np.ndarray:
    """Sparse bag-of-words rows (n, vocab) -> (n, <= dims) float32 by TruncatedSVD (no dense vocab copy)."""
    from sklearn.decomposition import TruncatedSVD

    x = sp.csr_matrix(x, dtype=np.float32)
    k = min(dims, x.shape[1] - 1, x.shape[0] - 1)
    if k < 1:
        return np.asarray(x.toarray(), np.float32)
    svd = TruncatedSVD(k, algorithm="arpack", random_state=seed)  # 3-4x faster than randomized here
    return svd.fit_transform(x).astype(np.float32)


def _pca(x: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """Top principal components; each axis's sign fixed (largest loading positive) so reruns agree."""
    out = np.zeros((len(x), n_components), np.float32)
    k = min(n_components, x.shape[1], len(x))
    xc = x - x.mean(axis=0, dtype=np.float64).astype(np.float32)
    if k < 1 or not np.any(xc):  # constant rows (e.g. a dead ReLU layer): a single point
        return out
    if x.shape[1] <= 1024:  # (d, d) covariance: much faster than an SVD of the (n, d) rows
        _, vecs = np.linalg.eigh((xc.T @ xc).astype(np.float64))
        axes = vecs[:, ::-1][:, :k]  # (d, k), largest variance first
    else:
        from sklearn.utils.extmath import randomized_svd

        axes = randomized_svd(xc, k, random_state=seed)[2].T
    axes = axes * np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(k)])
    out[:, :k] = xc @ axes.astype(np.float32)
    return out


def _umap_here(x: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """UMAP in this process (the UMAP process runs it; see _UmapProcess)."""
    import umap

    if len(x) < 2 * n_components + 6:  # too few rows for a neighbour graph
        return _pca(x, n_components, seed)
    init = _pca(x, n_components, seed).astype(np.float64)
    if np.ptp(init, axis=0).min() == 0:
        init = "random"
    model = umap.UMAP(
        n_neighbors=min(15, len(x) - 1),
        n_components=n_components,
        init=init,  # PCA start: no spectral step, and the same orientation as the PCA view
        n_epochs=200,
        random_state=seed,
        n_jobs=1,  # with a seed umap-learn runs single-threaded anyway (and warns)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit_transform(x).astype(np.float32)


def align(y: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Rotate/reflect the centred y onto the reference (same rows): orthogonal Procrustes, no scaling."""
    yc = y - y.mean(axis=0)
    rc = reference - reference.mean(axis=0)
    u, _, vt = np.linalg.svd(yc.T.astype(np.float64) @ rc)  # (c, c)
    return (yc @ (u @ vt)).astype(np.float32)


def project(X, method: str = "pca", seed: int = 0, n_components: int = 2, reference=None) -> np.ndarray:
    """(n, features) dense or sparse -> (n, n_components) float32, the same for the same seed."""
    if method not in METHODS:
        raise ValueError(f"unknown projection {method!r}; use one of {list(METHODS)}")
    x = reduce_input(X, seed) if sp.issparse(X) else np.ascontiguousarray(X, np.float32)
    y = UMAP_PROCESS.umap(x, n_components, seed) if method == "umap" else _pca(x, n_components, seed)
    return y if reference is None else align(y, np.asarray(reference, np.float32))


# --- separation score -----------------------------------------------------------------------------
def separation(X, gold: np.ndarray, k: int = KNN_K, max_rows: int = SCORE_ROWS, seed: int = 0) -> float:
    """Leave-one-out k-NN accuracy of the gold labels (Euclidean) on at most max_rows rows: the share of
    comments whose k nearest other comments in this space mostly carry the same gold label."""
    gold = np.asarray(gold, np.int64)
    n = len(gold)
    rows = np.arange(n)
    if n > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(n, max_rows, replace=False))
    x = X[rows] if sp.issparse(X) else np.asarray(X, np.float32)[rows]
    g, m = gold[rows], len(rows)
    if m < 2:
        return float("nan")
    sq = np.asarray(x.multiply(x).sum(axis=1)).ravel() if sp.issparse(x) else (x * x).sum(axis=1)
    gram = (x @ x.T).toarray() if sp.issparse(x) else x @ x.T
    dist = sq[None, :] - 2 * np.asarray(gram, np.float32)  # (m, m) squared distance minus each row's |x|²
    np.fill_diagonal(dist, np.inf)  # leave one out
    k = min(k, m - 1)
    near = g[np.argpartition(dist, k - 1, axis=1)[:, :k]]  # (m, k) gold labels of the k nearest
    votes = np.stack([(near == c).sum(axis=1) for c in range(int(gold.max()) + 1)], axis=1)
    return float(np.mean(votes.argmax(axis=1) == g))


def chance(gold: np.ndarray) -> float:
    """The accuracy of always guessing the most common class: the floor for the separation score."""
    gold = np.asarray(gold, np.int64)
    return float(np.bincount(gold).max() / len(gold)) if len(gold) else float("nan")


# --- cache and background worker ------------------------------------------------------------------
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


class _Worker:
    """One background thread computing UMAP projections, newest request first (the slider moves on)."""

    MAX_QUEUED = 16

    def __init__(self):
        self.cond = threading.Condition()
        self.jobs: OrderedDict = OrderedDict()
        self.running = None
        self.failed: dict = {}
        self.thread: threading.Thread | None = None

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


WORKER = _Worker()


# --- the UMAP process ----------------------------------------------------------------------------
class _UmapProcess:
    """umap-learn in a process of its own: numba compiles there for ~35 s (more on a busy machine) and
    holds that process's GIL, not the server's (in a thread the server stalled for 0.3-3.5 s at a time)."""

    def __init__(self):
        self.lock, self.conn, self.proc = threading.Lock(), None, None

    def umap(self, x: np.ndarray, n_components: int, seed: int) -> np.ndarray:
        return self.ask(("umap", x, n_components, seed))

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
                conn.send(("ok", _umap_here(*message[1:])))
            else:
                rows, dims, seed = message[1:]
                rng = np.random.default_rng(seed)
                for stage, n in (
                    ("importing umap-learn", 0),
                    ("small data sets", 300),
                    ("large data sets", rows),
                ):
                    conn.send(("stage", stage))
                    if n:
                        _umap_here(rng.random((n, dims), dtype=np.float32), 2, seed)
                    else:
                        import umap  # noqa: F401
                conn.send(("ok", None))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


UMAP_PROCESS = _UmapProcess()
_WARM = {"state": "idle", "stage": "", "started": 0.0, "seconds": 0.0, "error": ""}
_WARM_LOCK = threading.Lock()


def warm_up_umap(rows: int = 5000, dims: int = 20, seed: int = 0) -> bool:
    """Start the UMAP process and compile umap-learn's numba code there, on random data shaped like the
    real calls: 300 rows (exact neighbours, under 4,096 rows) and `rows` rows (nearest-neighbour descent).
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


# --- a run's snapshots ------------------------------------------------------------------------------
def layer_names(snapshot: HiddenSnapshot) -> list[str]:
    return [f"h{i}" for i in range(len(snapshot.hidden))]


def layer_matrix(snapshot: HiddenSnapshot, layer: str) -> np.ndarray:
    """(n, width) float32 hidden states of one layer ("h0", "h1", ...)."""
    return np.asarray(snapshot.hidden[int(layer[1:])], np.float32)


def aligned_pca(run_id: str, snapshots: list[HiddenSnapshot], index: int, layer: str, seed: int = 0):
    """PCA of snapshot `index`, rotated onto the previous snapshot's aligned PCA, and so on back to the
    first: consecutive snapshots move as little as a rotation/reflection allows. Cached link by link."""
    ref = None
    for j in range(index + 1):
        key = (run_id, tuple(s.step for s in snapshots[: j + 1]), layer, "pca", seed)
        x = snapshots[j]
        ref = cached(key, lambda x=x, ref=ref: project(layer_matrix(x, layer), "pca", seed, reference=ref))
    return ref


def embedding(run_id, snapshots, index, layer, method, seed=0, raw=None) -> tuple[np.ndarray, str]:
    """(coords, method shown) for one panel. UMAP is computed in the background and rotated onto the PCA
    view; until it is there (or while umap-learn compiles) the PCA view is returned."""
    if layer == INPUT:  # the input does not change during training: one projection per run
        base = cached((run_id, INPUT, "pca", seed), lambda: project(raw, "pca", seed))
        key, matrix = (run_id, INPUT, "umap", seed), (lambda: raw)
    else:
        base = aligned_pca(run_id, snapshots, index, layer, seed)
        snap = snapshots[index]
        key, matrix = (run_id, snap.step, layer, "umap", seed), (lambda: layer_matrix(snap, layer))
    if method != "umap" or not umap_ready():
        return base, "pca"
    found = WORKER.request(key, lambda: project(matrix(), "umap", seed))
    return (base, "pca") if found is None else (align(found, base), "umap")


def separation_table(run_id, snapshots, gold: np.ndarray, raw=None, seed: int = 0) -> dict:
    """{"step": (s,), "epoch": (s,), "h0": (s,), ..., "input": float or nan}: the score of every layer at
    every snapshot (cached per run, step and layer)."""
    table = {"step": np.array([s.step for s in snapshots]), "epoch": np.array([s.epoch for s in snapshots])}
    for layer in layer_names(snapshots[-1]) if snapshots else []:
        table[layer] = np.array(
            [
                cached(
                    (run_id, s.step, layer, "knn", seed),
                    lambda s=s, layer=layer: separation(layer_matrix(s, layer), gold),
                )
                for s in snapshots
            ]
        )
    table[INPUT] = (
        float("nan") if raw is None else cached((run_id, INPUT, "knn", seed), lambda: separation(raw, gold))
    )
    return table
