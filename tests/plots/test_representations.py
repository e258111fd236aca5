"""Tests for ffnlp_core.plots.representations: a minority class is drawn on top of the majority (its trace
comes last) while the legend keeps the classes' order, and the selection table reads the right rows."""

import numpy as np

from ffnlp_core.plots import representations as rplots


def points(gold: list[int], pred: list[int]):
    n = len(gold)
    probs = np.where(np.eye(2, dtype=bool)[pred], 0.8, 0.2).astype(np.float32)  # argmax = pred
    return rplots.point_data(
        np.arange(n), [f"comment {i}" for i in range(n)], np.array(gold), probs, ["a", "b"]
    )


def test_the_minority_class_is_drawn_last_and_the_legend_keeps_class_order():
    gold = [0] * 8 + [1] * 2
    p = points(gold, gold)
    fig = rplots.scatter_figure(np.random.default_rng(0).random((10, 2)), p, "gold")
    assert [t.name for t in fig.data] == ["a", "b"]  # 2 points of "b" drawn on top of 8 of "a"
    assert sorted(fig.data, key=lambda t: t.legendrank)[0].name == "a"
    flipped = [1] * 8 + [0] * 2
    fig = rplots.scatter_figure(np.zeros((10, 2)), points(flipped, flipped), "gold")
    assert [t.name for t in fig.data] == ["b", "a"]
    assert [t.name for t in sorted(fig.data, key=lambda t: t.legendrank)] == ["a", "b"]


def test_the_selection_table_lists_the_chosen_rows_with_their_classes():
    p = points([0, 1, 1], [0, 0, 1])
    table = rplots.selection_table(
        [2, 1], np.arange(3), np.array([0, 1, 1]), p, ["a", "b"], lambda i: f"c{i}"
    )
    assert (
        table["comment"] == ["c2", "c1"] and table["gold"] == ["b", "b"] and table["predicted"] == ["b", "a"]
    )
