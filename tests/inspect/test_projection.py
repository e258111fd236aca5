"""Tests of ffnlp_core.inspect.projection (and the hidden-state capture it reads): snapshot shapes and rows, seeded
and aligned projections, the k-NN separation score, escaped hover text, the figures, the cache and the
background worker, and the Representations page itself with AppTest."""

from __future__ import annotations

import html
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from ffnlp_core.events import Eval, HiddenSnapshot
from ffnlp_core.inspect import projection as pj
from ffnlp_core.inspect import umap_service as us
from ffnlp_core.nn.inputs import to_torch_csr
from ffnlp_core.plots import representations as rplots

ROOT = Path(__file__).resolve().parents[2]


def snapshots(events) -> list[HiddenSnapshot]:
    return [e for e in events if isinstance(e, HiddenSnapshot)]


def clusters(n=120, d=6, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs 8 units apart and their labels."""
    rng = np.random.default_rng(seed)
    gold = np.arange(n) % 2
    return (rng.normal(size=(n, d)) + 8.0 * gold[:, None]).astype(np.float32), gold


# --- capture --------------------------------------------------------------------------------------
def test_snapshots_have_the_right_shapes_and_rows_at_every_evaluation(shared_run):
    snaps = snapshots(shared_run.events)
    evals = [e.step for e in shared_run.events if isinstance(e, Eval)]
    assert [s.step for s in snaps] == evals  # one snapshot per evaluation (8 here)
    n_dev = shared_run.ds.x_dev.shape[0]
    rows = snaps[0].dev_rows
    assert len(rows) == 300 and len(np.unique(rows)) == 300 and rows.min() >= 0 and rows.max() < n_dev
    for s in snaps:
        np.testing.assert_array_equal(s.dev_rows, rows)  # the same comments at every snapshot
        assert [h.shape for h in s.hidden] == [(300, 32), (300, 16), (300, 8)]
        assert all(h.dtype == np.float16 for h in s.hidden)
        assert s.probs.shape == (300, 2)
        np.testing.assert_allclose(s.probs.sum(axis=1), 1.0, atol=1e-5)
    assert pj.layer_names(snaps[-1]) == ["h0", "h1", "h2"]


def test_the_last_snapshot_holds_the_trained_models_hidden_states_of_those_rows(shared_run):
    last = snapshots(shared_run.events)[-1]
    model = shared_run.model.eval()
    with torch.no_grad():
        logits, hidden = model(to_torch_csr(shared_run.ds.x_dev[last.dev_rows]))
    for i, h in enumerate(hidden):
        np.testing.assert_allclose(pj.layer_matrix(last, f"h{i}"), h.numpy(), rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(last.probs, torch.softmax(logits, 1).numpy(), atol=1e-5)


# --- projections ----------------------------------------------------------------------------------
def test_pca_is_deterministic_centred_and_keeps_the_largest_variance():
    x, _ = clusters()
    a, b = pj.project(x, "pca", seed=3), pj.project(x.copy(), "pca", seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (120, 2) and a.dtype == np.float32
    np.testing.assert_allclose(a.mean(axis=0), 0.0, atol=1e-4)
    top = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)[:2] ** 2 / len(x)
    np.testing.assert_allclose(a.var(axis=0), top, rtol=1e-3)  # the variance along the top 2 axes


def test_sparse_input_is_reduced_by_svd_then_projected_the_same_way_each_time():
    x = sp.random(200, 400, density=0.02, format="csr", dtype=np.float32, random_state=1)
    assert pj.reduce_input(x, seed=0).shape == (200, pj.SVD_DIMS)
    a, b = pj.project(x, "pca", seed=0), pj.project(x, "pca", seed=0)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (200, 2) and np.all(np.isfinite(a))


def test_degenerate_layers_give_a_point_not_an_error():
    assert np.all(pj.project(np.zeros((50, 8)), "pca") == 0)  # a dead ReLU layer
    one = pj.project(np.arange(10.0)[:, None], "pca")  # one unit: the second axis stays 0
    assert one.shape == (10, 2) and np.all(one[:, 1] == 0) and np.ptp(one[:, 0]) == pytest.approx(9.0)
    with pytest.raises(ValueError, match="unknown projection"):
        pj.project(np.zeros((5, 2)), "tsne")


def test_align_undoes_a_rotation_and_reflection_without_changing_distances():
    y = pj.project(clusters()[0], "pca")
    theta = 0.7
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]) @ np.diag([1, -1])
    np.testing.assert_allclose(pj.align(y @ rot.astype(np.float32), y), y, atol=1e-4)
    moved = pj.project(clusters(seed=1)[0], "pca", reference=y)
    free = pj.project(clusters(seed=1)[0], "pca")
    d = lambda z: np.linalg.norm(z[:, None] - z[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(d(moved), d(free), atol=1e-3)  # a rotation only: the same picture


def moves(embeddings: list[np.ndarray]) -> np.ndarray:
    """How far the points move between consecutive snapshots (root mean square), for each pair. Procrustes
    minimises exactly this, so the aligned chain can never move more than PCA alone."""
    pairs = zip(embeddings, embeddings[1:], strict=False)
    return np.array([np.sqrt(np.mean(np.sum((b - a) ** 2, axis=1))) for a, b in pairs])


def test_aligned_snapshots_move_less_than_unaligned_ones(shared_run):
    snaps = snapshots(shared_run.events)
    for layer in ("h0", "h1", "h2"):
        free = [pj.project(pj.layer_matrix(s, layer), "pca") for s in snaps]
        chained = [pj.aligned_pca("test-align", snaps, i, layer) for i in range(len(snaps))]
        np.testing.assert_array_equal(chained[0], free[0])  # the first snapshot sets the frame
        assert np.all(moves(chained) <= moves(free) + 1e-4), layer


def test_alignment_holds_still_what_pca_alone_flips_around():
    """Snapshots of a cloud that turns a little each time, with two almost equal main axes: PCA alone picks
    its axes afresh (they swap and flip), the aligned chain follows the points."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(300, 6)) * np.array([3.0, 2.9, 0.5, 0.4, 0.3, 0.2])
    snaps = []
    for i in range(12):
        t = 0.15 * i
        turn = np.eye(6)
        turn[:2, :2] = [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
        snaps.append(
            HiddenSnapshot(i + 1, 1, np.arange(300), [(base @ turn).astype(np.float16)], np.zeros((300, 2)))
        )
    free = [pj.project(pj.layer_matrix(s, "h0"), "pca") for s in snaps]
    chained = [pj.aligned_pca("test-turn", snaps, i, "h0") for i in range(len(snaps))]
    true_move = (
        np.sqrt(np.mean(np.sum(base[:, :2] ** 2, axis=1))) * 2 * np.sin(0.075)
    )  # a 0.15 rad turn, per point
    assert moves(chained).max() < 0.1 * true_move  # the chain undoes each turn
    assert moves(free).max() > 3 * true_move  # PCA alone jumps


# --- separation -------------------------------------------------------------------------------------
def test_separation_is_the_leave_one_out_knn_accuracy():
    line = np.array([[0.0], [1], [2], [10], [11], [12]])
    assert pj.separation(line, np.array([0, 0, 0, 1, 1, 1]), k=1) == 1.0
    assert pj.separation(line, np.array([0, 1, 0, 1, 0, 1]), k=1) == 0.0  # every neighbour disagrees
    # k=3: rows 0 and 1 see (0, 1, 1) and row 2 sees (0, 0, 1): all three outvoted; rows 3-5 see only 1s
    assert pj.separation(line, np.array([0, 0, 1, 1, 1, 1]), k=3) == 0.5
    x, gold = clusters()
    assert pj.separation(sp.csr_matrix(x), gold) == pj.separation(x, gold) == 1.0
    assert pj.chance(np.array([0, 1, 1, 1])) == 0.75


def test_a_trained_nets_last_hidden_layer_separates_better_than_the_raw_input(interaction, make_config):
    from ffnlp_core.train.loop import train

    cfg = make_config(hidden_sizes=[100, 100], activation="relu", epochs=3, snapshot_rows=800, seed=0)
    snaps = snapshots(train(cfg, interaction))
    last = snaps[-1]
    gold = interaction.y_dev[last.dev_rows]
    raw = pj.separation(interaction.x_dev[last.dev_rows], gold)
    h1 = pj.separation(pj.layer_matrix(last, "h1"), gold)
    h1_first = pj.separation(pj.layer_matrix(snaps[0], "h1"), gold)
    assert h1 > raw + 0.1 and h1 > 0.9, (raw, h1)  # XOR of two words: the input's neighbours mislead
    assert h1 > h1_first  # and training is what made it so
    table = pj.separation_table("test-sep", snaps, gold, raw=interaction.x_dev[last.dev_rows])
    assert table["h1"][-1] == h1 and table[pj.INPUT] == raw and len(table["h0"]) == len(snaps)


# --- hover text and figures ---------------------------------------------------------------------------
HOSTILE = '<script>alert("x")</script> <img src=x onerror=alert(1)> & <b>bold</b>'


def test_hover_text_is_escaped_and_cut():
    h = rplots.hover_text(HOSTILE)
    assert "<script>" not in h and "<img" not in h and "<b>" not in h
    assert "&lt;script&gt;" in h and "&amp;" in h
    assert html.unescape(h.replace("<br>", " ")) == HOSTILE  # nothing lost, only escaped and wrapped
    long = " ".join(f"word{i}" for i in range(100))
    cut = html.unescape(rplots.hover_text(long).replace("<br>", " "))
    assert len(cut) <= rplots.HOVER_CHARS and cut.endswith("…") and long.startswith(cut[:-1].rstrip())
    assert rplots.hover_text(None) == "(comment not stored)"


def test_figure_customdata_carries_escaped_text_labels_and_rows():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]], np.float32)
    points = rplots.point_data(
        np.array([7, 3, 5]), [HOSTILE, "fine", None], [0, 1, 0], probs, ["ok", "<i>bad</i>"]
    )
    fig = rplots.scatter_figure(np.zeros((3, 2), np.float32), points, "gold", "h0")
    custom = np.concatenate([np.asarray(t.customdata, object) for t in fig.data])
    assert sorted(custom[:, 0].tolist()) == [3, 5, 7]
    text = " ".join(custom[:, 1])
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "&lt;i&gt;bad&lt;/i&gt;" in custom[:, 2].tolist() + custom[:, 3].tolist()  # class names too
    assert all("%{customdata[1]}" in t.hovertemplate for t in fig.data)
    row7 = custom[custom[:, 0] == 7][0]
    assert row7[2] == "ok" and row7[3] == "ok" and row7[4] == pytest.approx(0.9)


def test_colour_modes_group_the_points():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]], np.float32)
    points = rplots.point_data(np.arange(4), ["a", "b", "c", "d"], [0, 1, 1, 1], probs, ["no", "yes"])
    coords = np.arange(8, dtype=np.float32).reshape(4, 2)
    counts = lambda fig: {t.name: len(t.x) for t in fig.data}  # noqa: E731
    assert counts(rplots.scatter_figure(coords, points, "gold")) == {"no": 1, "yes": 3}
    assert counts(rplots.scatter_figure(coords, points, "predicted")) == {"no": 2, "yes": 2}
    assert counts(rplots.scatter_figure(coords, points, "correct")) == {"correct": 3, "wrong": 1}
    prob = rplots.scatter_figure(coords, points, "probability")
    assert len(prob.data) == 1 and prob.data[0].name == "P(yes)"
    np.testing.assert_allclose(prob.data[0].marker.color, probs[:, 1])


def test_selected_rows_come_from_customdata_in_order_without_repeats():
    event = [{"customdata": [5, "a"]}, {"customdata": [3, "b"]}, {"customdata": [5, "a"]}, {"x": 1}]
    assert rplots.selected_rows(event) == [5, 3]


def test_embedding_shows_pca_until_umap_is_ready(shared_run, monkeypatch):
    snaps = snapshots(shared_run.events)
    monkeypatch.setattr(pj, "umap_ready", lambda: False)
    coords, used = pj.embedding("test-embed", snaps, len(snaps) - 1, "h1", "umap")
    assert used == "pca"
    np.testing.assert_array_equal(coords, pj.aligned_pca("test-embed", snaps, len(snaps) - 1, "h1"))
    raw = shared_run.ds.x_dev[snaps[-1].dev_rows]
    coords, used = pj.embedding("test-embed", snaps, 0, pj.INPUT, "pca", raw=raw)
    np.testing.assert_array_equal(coords, pj.project(raw, "pca"))
    status = us.umap_status()
    assert set(status) >= {"state", "stage", "elapsed", "fraction", "error"} and 0 <= status["fraction"] <= 1


@pytest.mark.slow
def test_umap_is_deterministic_with_a_seed_and_keeps_clusters_apart():
    x, gold = clusters(n=200, d=10)
    a, b = pj.project(x, "umap", seed=0), pj.project(x, "umap", seed=0)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (200, 2)
    assert pj.separation(a, gold) == 1.0  # the two blobs stay apart in 2-D


def test_the_separation_sentence_names_the_best_layer_the_input_and_chance():
    table = {"h0": np.array([0.70, 0.80]), "h1": np.array([0.90, 0.97]), pj.INPUT: 0.64}
    text = pj.separation_sentence(table, 1, ["h0", "h1"], 0.59)
    assert text == (
        "The classes separate best in h1 (0.97), more than in the input (0.64); the weakest hidden layer "
        "is h0 (0.80). Always guessing the most common class scores 0.59."
    )
    table[pj.INPUT] = 0.99
    assert "no more than in the input (0.99)" in pj.separation_sentence(table, 1, ["h0", "h1"], 0.59)


def test_umap_gets_fewer_epochs_for_hidden_states_than_for_the_input(shared_run, monkeypatch):
    """The epochs measured in projection.py reach the UMAP process: 100 for a hidden layer, 150 for the SVD'd
    bag of words (whose layout lost trustworthiness at 100)."""
    snaps, asked = snapshots(shared_run.events), []
    monkeypatch.setattr(pj, "umap_ready", lambda: True)
    monkeypatch.setattr(
        us.UMAP_PROCESS, "umap", lambda x, c, s, init, epochs: asked.append(epochs) or x[:, :c]
    )
    raw = shared_run.ds.x_dev[snaps[-1].dev_rows]
    for layer in ("h1", pj.INPUT):
        key = ("test-epochs", time.time(), layer)
        while pj.embedding(key, snaps, len(snaps) - 1, layer, "umap", raw=raw)[1] != "umap":
            time.sleep(0.01)
    assert asked == [pj.UMAP_EPOCHS, pj.UMAP_INPUT_EPOCHS] == [100, 150]
