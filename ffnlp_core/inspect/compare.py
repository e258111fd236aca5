"""Runs side by side and runs taken away: overlaid curves, what differs between configs, the best run,
per-class precision/recall/F1, the noise lab's hardest training comments, and the downloads
(metrics CSV, charts as self-contained HTML, a model bundle uploaded back as a run).

Plain data in, plain data or Plotly figures out; no Streamlit. Names shown in charts are html-escaped
(Plotly renders a subset of HTML in legends and hover text).
"""

from __future__ import annotations

import io
import time

import numpy as np
import pandas as pd

from ..runs.bundle import import_bundle
from ..runs.store import RunStore

DONE_OK = ("finished", "stopped")


def read_series(run) -> dict:
    """Copies of what the charts and tables need from a Job or StoredRun."""
    return run.read(
        lambda h: {"curves": h.curves(), "evals": h.eval_table(), "summary": h.summary, "hard": h.hard}
    )


def flatten_config(cfg: dict) -> dict[str, object]:
    """{"model": {"dropout": 0.1}} -> {"model.dropout": 0.1}."""
    return {f"{section}.{k}": v for section, values in cfg.items() for k, v in values.items()}


def config_diff(configs: dict[str, dict]) -> pd.DataFrame:
    """One row per setting whose value differs between the runs (columns: setting, then one per run)."""
    flat = {rid: flatten_config(c) for rid, c in configs.items()}
    keys = sorted({k for f in flat.values() for k in f})
    rows = []
    for k in keys:
        values = [flat[rid].get(k) for rid in flat]
        if any(v != values[0] for v in values[1:]):
            rows.append({"setting": k, **{rid: _show(v) for rid, v in zip(flat, values, strict=True)}})
    return pd.DataFrame(rows, columns=["setting", *flat])


def _show(v) -> str:
    return ", ".join(map(str, v)) if isinstance(v, list) else str(v)


def best_run(summaries: dict[str, dict | None]) -> str | None:
    """The run id with the highest dev accuracy (ties: the first given); None when none has one."""
    scored = [
        (s["dev_accuracy"], rid)
        for rid, s in summaries.items()
        if s and s.get("dev_accuracy") is not None and np.isfinite(s["dev_accuracy"])
    ]
    return max(scored, key=lambda t: t[0])[1] if scored else None


def per_class_metrics(confusion: np.ndarray, class_names: list[str]) -> pd.DataFrame:
    """Precision, recall and F1 of each class from a confusion matrix (rows gold, columns predicted)."""
    c = np.asarray(confusion, np.float64)
    tp = np.diag(c)
    predicted, gold = c.sum(axis=0), c.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, gold, out=np.zeros_like(tp), where=gold > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return pd.DataFrame(
        {
            "class": list(class_names),
            "precision": precision,
            "recall": recall,
            "F1": f1,
            "dev comments": gold.astype(int),
        }
    )


def hard_table(ds, hard) -> pd.DataFrame:
    """The highest-loss training comments: text, the label trained on, the true label, the prediction,
    the loss, and whether the noise lab flipped the label (Dataset.train_flipped)."""
    rows = np.asarray(hard.train_rows, np.int64)
    names = ds.class_names
    flipped = ds.train_flipped if ds.train_flipped is not None else np.zeros(len(ds.y_train), bool)
    gold = ds.labeled.labels[ds.train_idx[rows]]
    return pd.DataFrame(
        {
            "loss": np.asarray(hard.losses, np.float64),
            "comment": [ds.train_text(int(i)) for i in rows],
            "trained as": [names[int(y)] for y in ds.y_train[rows]],
            "true label": [names[int(y)] for y in gold],
            "predicted": [names[int(y)] for y in hard.predicted],
            "flipped": flipped[rows].astype(bool),
        }
    )


# --- downloads -------------------------------------------------------------------------------------
def metrics_csv(curves: dict, evals: dict) -> bytes:
    """One row per training step (batch loss and accuracy), with the dev figures at evaluation steps."""
    steps = pd.DataFrame(
        {"step": curves["step"], "train_loss": curves["loss"], "train_accuracy": curves["accuracy"]}
    )
    ev = pd.DataFrame({k: np.asarray(v) for k, v in evals.items()}).rename(
        columns={"train_loss": "eval_train_loss", "train_accuracy": "eval_train_accuracy"}
    )
    if len(ev):
        ev["step"] = ev["step"].astype(np.int64)
        ev["epoch"] = ev["epoch"].astype(np.int64)
        table = steps.merge(ev, on="step", how="outer").sort_values("step", kind="stable")
    else:
        table = steps
    buf = io.StringIO()
    table.to_csv(buf, index=False)
    return buf.getvalue().encode("utf-8")


def import_as_run(store: RunStore, data: bytes, owner: str, name: str) -> str:
    """Store an uploaded model bundle as a finished run with no history, so every page that shows the
    current run's model can use it. BundleError (from import_bundle) when the file is not valid."""
    from ..train.plan import new_run_id

    cfg, model, vectorizer, classes = import_bundle(data)
    run_id = new_run_id()
    label = f"imported: {name}"[:120]
    store.create(run_id, cfg, owner=owner, label=label)
    store.save_model(run_id, model, vectorizer, classes)
    store.save_texts(run_id, {"classes": list(classes), "dev": {}})
    store.set_status(run_id, "finished", reason="uploaded model (weights only)", finished=time.time())
    return run_id


def hard_reading(step: int, flipped_top: int, top: int, share: float) -> str:
    """The Noise lab's sentence under its hardest training comments: `flipped_top` of the `top` highest-loss
    comments were flipped, against a share `share` of all training labels."""
    head = f"Highest loss at step {step:,}: "
    if share == 0:
        return head + (
            "no label was flipped, so these are the comments the network finds hardest on their own "
            "(ambiguous, or mislabeled in the data itself)."
        )
    if top and flipped_top / top > 1.5 * share:
        why = "mislabeled rows gather here."
    else:
        why = "the network has memorized many flipped labels, so fewer of them stand out now."
    return head + f"{flipped_top} of {top} were flipped, against {share:.0%} of all training labels: {why}"


def figures_rows(runs: dict) -> list[dict]:
    """The figures to cite for compared runs, one row each (accuracy, macro and weighted F1, F1 per class
    by name), then the baselines of the first run whose data set is in memory (same split and features)."""
    from . import metrics

    rows, baselines_of = [], None
    for rid, run in runs.items():
        confusion = run.read(lambda h: None if h.confusion is None else h.confusion.copy())
        if confusion is None:
            continue
        r = metrics.report_from_confusion(confusion, list(run.class_names))
        rows.append(_figure_row(rid, r))
        if baselines_of is None and run.ds is not None:
            baselines_of = run.ds
    if baselines_of is not None:
        rows += [_figure_row(name, b) for name, b in metrics.baselines(baselines_of).items()]
    return rows


def _figure_row(name: str, r: dict) -> dict:
    row = {"run": name, "accuracy": r["accuracy"], "macro F1": r["macro_f1"], "weighted F1": r["weighted_f1"]}
    row.update({f"F1 {c['class']}": c["f1"] for c in r["per_class"]})
    return row
