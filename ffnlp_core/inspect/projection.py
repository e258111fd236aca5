"""Hidden representations in 2-D: PCA or UMAP of the hidden states h0..h{k-1} that a run snapshots.

- `project(X, method, seed, reference=...)`: deterministic 2-D (or 3-D) coordinates; a sparse bag-of-words
  input goes through TruncatedSVD (50 dims) first; `reference` rotates the result onto an earlier embedding
  of the same rows (orthogonal Procrustes), so points do not jump between snapshots.
- `separation(X, gold)`: how well the layer separates the gold classes, as leave-one-out 11-NN accuracy.
- A run's snapshots as panels (`embedding`, `aligned_pca`, `separation_table`), cached by (run, snapshot
  step, layer, method); UMAP is computed in the background by umap_service.py (its cache, thread and
  process), the PCA view shown until it is there. The figures are in plots/representations.py.
No Streamlit, no torch.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..events import HiddenSnapshot
from . import umap_service
from .umap_service import WORKER, cached, umap_ready

METHODS: dict[str, str] = {
    "pca": "PCA: the two directions of largest variance (linear, instant)",
    "umap": "UMAP: keeps each comment's nearest neighbours together (nonlinear, a few seconds)",
}
INPUT = "input"  # the layer name of the raw bag-of-words input
SVD_DIMS = 50  # the sparse input is reduced to this many dimensions before PCA / UMAP
KNN_K = 11  # odd: no ties between two classes
SCORE_ROWS = 1000  # the separation score uses at most this many rows (seeded subset)
# UMAP's optimisation epochs (umap-learn's default below 10,000 rows is 500). Measured on 2,000 Davidson dev
# comments (trustworthiness at 15 neighbours, 200 -> 100 epochs): hidden states 0.987/0.997/0.998 unchanged
# to 0.001 at half the time; the SVD'd bag of words drops 0.802 -> 0.783 at 100 and keeps 0.802 at 150.
UMAP_EPOCHS, UMAP_INPUT_EPOCHS = 100, 150


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


def _umap(x: np.ndarray, n_components: int, seed: int, epochs: int = UMAP_EPOCHS) -> np.ndarray:
    """UMAP (in the UMAP process) started from the PCA layout: no spectral step, and the same orientation
    as the PCA view; too few rows for a neighbour graph: the PCA layout itself."""
    init = _pca(x, n_components, seed)
    if len(x) < 2 * n_components + 6:
        return init
    start = init.astype(np.float64) if np.ptp(init, axis=0).min() > 0 else "random"
    return umap_service.UMAP_PROCESS.umap(x, n_components, seed, start, epochs)


def align(y: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Rotate/reflect the centred y onto the reference (same rows): orthogonal Procrustes, no scaling."""
    yc = y - y.mean(axis=0)
    rc = reference - reference.mean(axis=0)
    u, _, vt = np.linalg.svd(yc.T.astype(np.float64) @ rc)  # (c, c)
    return (yc @ (u @ vt)).astype(np.float32)


def project(
    X, method: str = "pca", seed: int = 0, n_components: int = 2, reference=None, epochs: int = UMAP_EPOCHS
) -> np.ndarray:
    """(n, features) dense or sparse -> (n, n_components) float32, the same for the same seed; `epochs`
    are UMAP's."""
    if method not in METHODS:
        raise ValueError(f"unknown projection {method!r}; use one of {list(METHODS)}")
    x = reduce_input(X, seed) if sp.issparse(X) else np.ascontiguousarray(X, np.float32)
    y = _umap(x, n_components, seed, epochs) if method == "umap" else _pca(x, n_components, seed)
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
        key, matrix, epochs = (run_id, INPUT, "umap", seed), (lambda: raw), UMAP_INPUT_EPOCHS
    else:
        base = aligned_pca(run_id, snapshots, index, layer, seed)
        snap = snapshots[index]
        key, epochs = (run_id, snap.step, layer, "umap", seed), UMAP_EPOCHS
        matrix = lambda: layer_matrix(snap, layer)  # noqa: E731
    if method != "umap" or not umap_ready():
        return base, "pca"
    found = WORKER.request(key, lambda: project(matrix(), "umap", seed, epochs=epochs))
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


def input_rows(run, rows) -> tuple:
    """(bag-of-words rows of a run's snapshot sample, "") or (None, why not). A run read back from disk has no
    data set: its saved vectorizer turns the stored comments back into the same input rows."""

    def build():
        if run.ds is not None:
            return run.ds.x_dev[rows], ""
        texts = [run.dev_text(int(i)) for i in rows]
        vec = run.vectorizer if all(t is not None for t in texts) else None
        if vec is None:
            return None, "The input is not shown: this run was read back from disk without its data or model."
        return vec.transform(texts), ""

    return cached((run.run_id, "raw", len(rows)), build)


def separation_sentence(table: dict, index: int, layers: list[str], chance_level: float) -> str:
    """The separation scores of one snapshot read in words: which layer separates the classes best, against
    the raw input and against always guessing the most common class."""
    scores = {name: float(table[name][index]) for name in layers if name in table}
    if not scores:
        return ""
    best = max(scores, key=scores.get)
    raw = table.get(INPUT, float("nan"))
    text = f"The classes separate best in {best} ({scores[best]:.2f})"
    if np.isfinite(raw):
        text += f", {'more' if scores[best] > raw else 'no more'} than in the input ({raw:.2f})"
    if len(scores) > 1:
        worst = min(scores, key=scores.get)
        text += f"; the weakest hidden layer is {worst} ({scores[worst]:.2f})"
    return text + f". Always guessing the most common class scores {chance_level:.2f}."
