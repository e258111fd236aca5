"""Tests of ffnlp_core.plots.curves: downsampling keeps the ends and the bound, the smoothing is a bias-corrected
moving average, live charts carry the curves they were given, and bar labels stay labels (escaped, and
never read as numbers)."""

from __future__ import annotations

import numpy as np

from ffnlp_core.plots import curves as plots


def test_downsample_keeps_first_last_and_the_bound():
    x = np.arange(10_001)
    y = x * 2.0
    xs, ys = plots.downsample(x, y, max_points=100)
    assert len(xs) <= 101 and xs[0] == 0 and xs[-1] == 10_000
    np.testing.assert_array_equal(ys, xs * 2.0)  # the y values belong to the kept x values
    assert np.all(np.diff(xs) > 0)
    short = np.arange(50)
    assert plots.downsample(short, max_points=100)[0] is short  # nothing to drop: the same array


def test_smooth_is_a_bias_corrected_moving_average():
    np.testing.assert_allclose(plots.smooth(np.full(200, 3.0)), 3.0)  # no drift towards 0 at the start
    y = np.array([0.0, 10.0, 0.0, 10.0])
    alpha = 2.0 / (10 + 1)
    acc, norm, expected = 0.0, 0.0, []
    for v in y:  # the definition, by hand
        acc = (1 - alpha) * acc + alpha * v
        norm = (1 - alpha) * norm + alpha
        expected.append(acc / norm)
    np.testing.assert_allclose(plots.smooth(y, span=10), expected)
    assert len(plots.smooth(np.zeros(0))) == 0


def test_live_figures_carry_the_curves_and_the_dev_points():
    step = np.arange(1, 301)
    curves = {"step": step, "loss": np.linspace(1, 0.1, 300), "accuracy": np.linspace(0.5, 0.9, 300)}
    evals = {"step": np.array([100, 200, 300]), "dev_loss": np.array([0.8, 0.5, 0.3])}
    evals["dev_accuracy"] = np.array([0.6, 0.7, 0.8])
    loss = plots.loss_figure(curves, evals)
    names = [t.name for t in loss.data]
    assert names == ["train loss (per step)", "train loss (smoothed)", "dev loss"]
    np.testing.assert_allclose(loss.data[0].y, curves["loss"])
    np.testing.assert_array_equal(loss.data[2].x, [100, 200, 300])
    acc = plots.accuracy_figure(curves, evals)
    assert [t.name for t in acc.data] == ["train accuracy (smoothed)", "dev accuracy"]
    assert tuple(acc.layout.yaxis.range) == (0, 1.02)
    empty = {"step": np.zeros(0, np.int64), "loss": np.zeros(0), "accuracy": np.zeros(0)}
    assert plots.loss_figure(empty, {}).data == ()  # a run with no step yet: an empty chart, no error


def test_bar_labels_that_look_like_numbers_stay_labels_and_are_escaped():
    fig = plots.bar_figure(["100", "2024", "<b>x</b>"], [5, 3, 1], "Most frequent words", "total")
    assert fig.layout.yaxis.type == "category"  # else Plotly draws "100" and "2024" on a number line
    assert list(fig.data[0].y) == ["100", "2024", "&lt;b&gt;x&lt;/b&gt;"]
    assert list(fig.data[0].x) == [5, 3, 1]


def test_numeric_class_names_get_categorical_axes_not_a_number_line():
    """Labels 0/1/2 are names: a number axis would put ticks at -0.5, 0.5, 1.5 between the classes."""
    names = ["0", "1", "2"]
    confusion = plots.confusion_figure(np.array([[5, 1, 0], [2, 7, 1], [0, 0, 4]]), names)
    assert confusion.layout.xaxis.type == "category" and confusion.layout.yaxis.type == "category"
    assert list(confusion.data[0].x) == names and confusion.layout.yaxis.autorange == "reversed"
    balance = plots.class_balance_figure([10, 20, 5], names)
    assert balance.layout.xaxis.type == "category" and list(balance.data[0].x) == names
