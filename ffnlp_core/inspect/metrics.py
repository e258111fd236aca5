"""Metrics a teacher can cite, on the dev split: per-class precision, recall, F1 and support, macro and
weighted F1 and accuracy (`report`, from scikit-learn's own functions), and the baselines on the same split
and features that say whether the network is worth it (`baselines`): always guessing the majority class, and
a scikit-learn logistic regression trained on the same bag of words (named `logistic regression`).

`report_from_confusion` gives the same figures from a run's confusion matrix, so a run read back from disk
(without its data set) still has them. No Streamlit, no torch.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..data.dataset import Dataset

LOGREG = "logistic regression"
MAJORITY = "majority class"
LOGREG_MAX_ITER = 1000


def report(gold, pred, class_names: list[str]) -> dict:
    """{"per_class": [{class, precision, recall, f1, support}], "macro_f1", "weighted_f1", "accuracy"}."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    gold, pred = np.asarray(gold, np.int64), np.asarray(pred, np.int64)
    labels = list(range(len(class_names)))
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
    per_class = [
        {
            "class": name,
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(s[i]),
        }
        for i, name in enumerate(class_names)
    ]
    return {
        "per_class": per_class,
        "macro_f1": float(f1_score(gold, pred, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(gold, pred, labels=labels, average="weighted", zero_division=0)),
        "accuracy": float(accuracy_score(gold, pred)) if len(gold) else float("nan"),
    }


def report_from_confusion(confusion: np.ndarray, class_names: list[str]) -> dict:
    """`report` of the (gold, predicted) pairs a confusion matrix counts (rows gold, columns predicted)."""
    c = np.asarray(confusion, np.int64)
    gold = np.repeat(np.repeat(np.arange(c.shape[0]), c.shape[1]), c.ravel())
    pred = np.repeat(np.tile(np.arange(c.shape[1]), c.shape[0]), c.ravel())
    return report(gold, pred, class_names)


_CACHE: OrderedDict[int, tuple] = OrderedDict()  # id(ds) -> (weak reference to ds, baselines), newest last
_CACHE_SIZE = 16
_LOCK = threading.Lock()


def baselines(ds: Dataset, seed: int = 0) -> dict[str, dict]:
    """{"majority class": report, "logistic regression": report} on ds's dev split; the logistic regression
    is trained on ds's training split (the same bag of words the network sees), seeded. Cached per data set."""
    with _LOCK:
        ref, found = _CACHE.get(id(ds), (None, None))
        if ref is not None and ref() is ds:
            _CACHE.move_to_end(id(ds))
            return found
    from sklearn.linear_model import LogisticRegression

    names = list(ds.class_names)
    majority = int(np.bincount(ds.y_train, minlength=len(names)).argmax())
    model = LogisticRegression(max_iter=LOGREG_MAX_ITER, random_state=seed)
    model.fit(ds.x_train, ds.y_train)
    found = {
        MAJORITY: {**report(ds.y_dev, np.full(len(ds.y_dev), majority), names), "predicts": names[majority]},
        LOGREG: report(ds.y_dev, model.predict(ds.x_dev), names),
    }
    with _LOCK:
        _CACHE[id(ds)] = (weakref.ref(ds), found)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return found


def verdict(network: dict, found: dict[str, dict]) -> str:
    """One sentence: does the network beat the majority class and the logistic regression (macro F1)?"""
    net = network["macro_f1"]
    parts = []
    for name, b in found.items():
        gap = 100 * (net - b["macro_f1"])
        word = "beats" if gap > 0.5 else "does not beat" if gap < -0.5 else "ties with"
        parts.append(f"{word} the {name} ({b['macro_f1']:.3f}, {gap:+.1f} points)")
    return f"Macro F1 {net:.3f}: the network " + " and ".join(parts) + "."


def cli_fields(confusion: np.ndarray, ds: Dataset) -> dict:
    """The CLI's --json fields from the final dev confusion matrix: per_class, macro_f1, weighted_f1 and
    baselines (each with its own accuracy, macro/weighted F1 and per-class figures)."""
    net = report_from_confusion(confusion, list(ds.class_names))
    found = baselines(ds)
    slim = {
        name: {k: b[k] for k in ("accuracy", "macro_f1", "weighted_f1", "per_class")}
        for name, b in found.items()
    }
    return {
        "per_class": net["per_class"],
        "macro_f1": net["macro_f1"],
        "weighted_f1": net["weighted_f1"],
        "baselines": slim,
    }
