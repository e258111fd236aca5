"""Tests for ffnlp_core.inspect.metrics against a confusion matrix checked by hand and against sklearn.metrics,
and the two baselines on the built-in data (majority class, logistic regression on the same bag of words)."""

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_recall_fscore_support

from ffnlp_core.inspect import metrics

# rows gold, columns predicted; classes a, b, c
CONFUSION = np.array([[5, 1, 0], [2, 6, 2], [0, 1, 3]])
# by hand: precision = column diagonal / column sum, recall = row diagonal / row sum
#   a: P 5/7 = 0.7143, R 5/6 = 0.8333, F1 2PR/(P+R) = 10/13 = 0.7692, support 6
#   b: P 6/8 = 0.75,   R 6/10 = 0.6,   F1 = 2*0.45/1.35 = 0.6667,   support 10
#   c: P 3/5 = 0.6,    R 3/4 = 0.75,   F1 = 2*0.45/1.35 = 0.6667,   support 4
#   macro F1 = (0.7692 + 0.6667 + 0.6667) / 3 = 0.7009; weighted = (6*0.7692 + 10*0.6667 + 4*0.6667) / 20 = 0.6974
#   accuracy = 14 / 20 = 0.7


def test_report_from_a_confusion_matrix_matches_the_hand_computation():
    r = metrics.report_from_confusion(CONFUSION, ["a", "b", "c"])
    rows = {row["class"]: row for row in r["per_class"]}
    assert rows["a"]["precision"] == pytest.approx(5 / 7) and rows["a"]["recall"] == pytest.approx(5 / 6)
    assert rows["a"]["f1"] == pytest.approx(10 / 13) and rows["a"]["support"] == 6
    assert rows["b"]["precision"] == pytest.approx(0.75) and rows["b"]["recall"] == pytest.approx(0.6)
    assert rows["c"]["f1"] == pytest.approx(2 / 3) and rows["c"]["support"] == 4
    assert r["macro_f1"] == pytest.approx((10 / 13 + 2 / 3 + 2 / 3) / 3)
    assert r["weighted_f1"] == pytest.approx((6 * 10 / 13 + 10 * 2 / 3 + 4 * 2 / 3) / 20)
    assert r["accuracy"] == pytest.approx(0.7)


def test_report_agrees_with_sklearn_on_random_labels_with_a_class_never_predicted():
    rng = np.random.default_rng(0)
    gold, pred = rng.integers(0, 4, 300), rng.integers(0, 3, 300)  # class 3 is never predicted
    r = metrics.report(gold, pred, ["w", "x", "y", "z"])
    p, rc, f, s = precision_recall_fscore_support(gold, pred, labels=[0, 1, 2, 3], zero_division=0)
    np.testing.assert_allclose([row["f1"] for row in r["per_class"]], f)
    np.testing.assert_allclose([row["precision"] for row in r["per_class"]], p)
    assert r["per_class"][3]["precision"] == 0.0 and r["per_class"][3]["support"] == int(s[3])
    assert r["macro_f1"] == pytest.approx(f1_score(gold, pred, average="macro", zero_division=0))


def test_baselines_on_the_builtin_data(interaction):
    found = metrics.baselines(interaction)
    assert set(found) == {metrics.MAJORITY, metrics.LOGREG}
    majority = found[metrics.MAJORITY]
    share = np.bincount(interaction.y_dev).max() / len(interaction.y_dev)
    assert majority["accuracy"] == pytest.approx(share) and majority["predicts"] == "toxic"
    assert majority["per_class"][0]["recall"] == 0.0  # never predicts "not toxic"
    # a linear model cannot learn the jerk/chicken interaction, but it reads single words
    assert 0.55 < found[metrics.LOGREG]["accuracy"] < 0.9
    assert metrics.baselines(interaction) is found  # cached per data set


def test_the_verdict_says_whether_the_network_beats_each_baseline():
    found = {"majority class": {"macro_f1": 0.37}, "logistic regression": {"macro_f1": 0.80}}
    text = metrics.verdict({"macro_f1": 0.62}, found)
    assert "beats the majority class (0.370, +25.0 points)" in text
    assert "does not beat the logistic regression (0.800, -18.0 points)" in text
