"""Tests for ffnlp_core.inspect.compare: the noise lab flips exactly the asked fraction and its mislabeled rows
gather among the hardest examples, per-class metrics match scikit-learn, config differences, the best run,
the metrics CSV and offline chart HTML, and a downloaded model uploaded again predicts identically."""

from __future__ import annotations

import html
import io
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import precision_recall_fscore_support

from ffnlp_core.config import RunConfig
from ffnlp_core.data.dataset import build_dataset, load_source
from ffnlp_core.events import Eval, HardExamples
from ffnlp_core.inspect import compare, explain
from ffnlp_core.plots import compare as compare_plots
from ffnlp_core.runs.bundle import BundleError, export_bundle
from ffnlp_core.runs.handles import StoredRun
from ffnlp_core.runs.history import RunHistory
from ffnlp_core.runs.store import RunStore

PROBE = ["that guy jerk at lunch", "my brother jerk chicken tbh", "wow the waiter chicken", "lol idiot", ""]


def fold(events) -> RunHistory:
    h = RunHistory()
    for e in events:
        h.add(e)
    return h


@pytest.fixture(scope="module")
def noisy_run(make_config, run_events):
    """30% of the train labels flipped, a ReLU network, 20 hardest training comments at each evaluation."""
    cfg = make_config(
        label_noise=0.3,
        noise_seed=3,
        hidden_sizes=[64],
        activation="relu",
        epochs=2,
        eval_every=0,
        hard_examples=20,
        snapshot_rows=0,
    )
    ds = build_dataset(load_source(cfg.data), cfg.data)
    return ds, run_events(cfg, ds)


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.333])
def test_the_noise_lab_flips_exactly_the_asked_fraction(interaction, fraction):
    cfg = RunConfig().data
    cfg.label_noise, cfg.noise_seed = fraction, 11
    ds = build_dataset(load_source(cfg), cfg)
    n = len(ds.y_train)
    assert int(ds.train_flipped.sum()) == round(fraction * n)
    gold = ds.labeled.labels[ds.train_idx]
    np.testing.assert_array_equal(ds.y_train != gold, ds.train_flipped)  # flipped rows and only those
    np.testing.assert_array_equal(ds.y_dev, interaction.y_dev)  # dev labels are never touched
    again = build_dataset(load_source(cfg), cfg)
    np.testing.assert_array_equal(again.train_flipped, ds.train_flipped)  # seeded


def test_subsampling_a_class_keeps_the_asked_share_of_its_train_rows(interaction):
    cfg = RunConfig().data
    cfg.subsample_class, cfg.subsample_keep = "toxic", 0.25
    ds = build_dataset(load_source(cfg), cfg)
    toxic = interaction.class_names.index("toxic")
    before = int((interaction.y_train == toxic).sum())
    assert int((ds.y_train == toxic).sum()) == round(0.25 * before)
    assert int((ds.y_train != toxic).sum()) == int((interaction.y_train != toxic).sum())


def test_mislabeled_rows_gather_among_the_hardest_training_comments(noisy_run):
    ds, events = noisy_run
    hard = [e for e in events if isinstance(e, HardExamples)]
    assert hard and all(len(h.train_rows) == 20 for h in hard)
    table = compare.hard_table(ds, hard[-1])
    np.testing.assert_array_equal(table["flipped"].to_numpy(), ds.train_flipped[hard[-1].train_rows])
    assert list(table["loss"]) == sorted(table["loss"], reverse=True)
    assert table["flipped"].mean() > 0.6  # against 30% of all training rows
    flipped = table[table["flipped"]]
    assert (flipped["trained as"] != flipped["true label"]).all()
    assert (table[~table["flipped"]]["trained as"] == table[~table["flipped"]]["true label"]).all()
    assert table.loc[0, "comment"] == ds.train_text(int(hard[-1].train_rows[0]))


def test_per_class_metrics_match_scikit_learn(noisy_run):
    ds, events = noisy_run
    ev = [e for e in events if isinstance(e, Eval)][-1]
    # rebuild gold/predicted pairs from the confusion matrix and let scikit-learn score them
    gold = np.repeat(np.arange(2), ev.confusion.sum(axis=1))
    pred = np.concatenate([np.repeat(np.arange(2), row) for row in ev.confusion])
    p, r, f, support = precision_recall_fscore_support(gold, pred, zero_division=0)
    table = compare.per_class_metrics(ev.confusion, ds.class_names)
    np.testing.assert_allclose(table["precision"], p)
    np.testing.assert_allclose(table["recall"], r)
    np.testing.assert_allclose(table["F1"], f)
    assert list(table["dev comments"]) == list(support) and support.sum() == len(ds.y_dev)
    empty = compare.per_class_metrics(np.array([[3, 0], [0, 0]]), ["a", "b"])
    assert list(empty["precision"]) == [1.0, 0.0] and list(empty["F1"]) == [1.0, 0.0]


def test_config_diff_lists_only_the_settings_that_differ():
    a, b, c = RunConfig(), RunConfig(), RunConfig()
    b.model.hidden_sizes, b.train.lr = [32], 0.01
    c.train.lr = 0.01
    diff = compare.config_diff({"r1": a.to_dict(), "r2": b.to_dict(), "r3": c.to_dict()})
    assert list(diff.columns) == ["setting", "r1", "r2", "r3"]
    assert list(diff["setting"]) == ["model.hidden_sizes", "train.lr"]
    assert diff.iloc[0].tolist() == ["model.hidden_sizes", "100, 100, 100", "32", "100, 100, 100"]
    assert diff.iloc[1].tolist() == ["train.lr", "0.001", "0.01", "0.01"]
    assert compare.config_diff({"r1": a.to_dict(), "r2": RunConfig().to_dict()}).empty


def test_best_run_is_the_highest_dev_accuracy():
    summaries = {
        "a": {"dev_accuracy": 0.8},
        "b": {"dev_accuracy": 0.91},
        "c": None,
        "d": {"dev_accuracy": float("nan")},
    }
    assert compare.best_run(summaries) == "b"
    assert compare.best_run({"c": None}) is None


def test_metrics_csv_has_every_step_and_the_evaluations(shared_run):
    h = fold(shared_run.events)
    curves, evals = h.curves(), h.eval_table()
    table = pd.read_csv(io.BytesIO(compare.metrics_csv(curves, evals)))
    assert len(table) == len(curves["step"]) and table["step"].is_monotonic_increasing
    np.testing.assert_allclose(table["train_loss"], curves["loss"], rtol=1e-6)
    at_evals = table.dropna(subset=["dev_accuracy"])
    np.testing.assert_array_equal(at_evals["step"], evals["step"])
    np.testing.assert_allclose(at_evals["dev_accuracy"], evals["dev_accuracy"], rtol=1e-6)
    assert {"epoch", "dev_loss", "eval_train_accuracy"} <= set(table.columns)


def test_overlay_and_chart_html_work_offline_and_escape_names(shared_run):
    h = fold(shared_run.events)
    hostile = "<img src=x onerror=alert(1)>"
    fig = compare_plots.overlay_figure(
        [("run-a", h.curves(), h.eval_table()), (hostile, h.curves(), h.eval_table())], "loss"
    )
    assert [t.name for t in fig.data] == [
        "run-a train",
        "run-a dev",
        f"{_esc(hostile)} train",
        f"{_esc(hostile)} dev",
    ]
    assert fig.data[0].line.color != fig.data[2].line.color and fig.data[1].line.dash == "dot"
    page = compare_plots.charts_html(
        [fig, compare_plots.overlay_figure([("run-a", h.curves(), h.eval_table())], "accuracy")], hostile
    )
    text = page.decode()
    assert len(page) > 1_000_000  # plotly.js itself is inside: no network needed to open it
    assert re.findall(r"<script[^>]*\bsrc=", text) == []  # no script is fetched from anywhere
    assert hostile not in text.split("<script")[0]  # the title is escaped


def _esc(s: str) -> str:
    return html.escape(s)


def test_a_downloaded_model_uploaded_again_predicts_identically(tmp_path, shared_run):
    ds = shared_run.ds
    bundle = export_bundle(shared_run.cfg, shared_run.model, ds.vectorizer, ds.class_names)
    store = RunStore(tmp_path)
    run_id = compare.import_as_run(store, bundle, owner="alice", name="model.zip")
    listed = {r["id"]: r for r in store.list_runs()}
    assert listed[run_id]["status"] == "finished" and listed[run_id]["label"] == "imported: model.zip"
    run = StoredRun(store, run_id)
    assert run.cfg == shared_run.cfg and run.class_names == ds.class_names
    before = explain.predict_proba(explain.predictor(shared_run.model, ds.vectorizer, ds.class_names), PROBE)
    after = explain.predict_proba(explain.predictor(run.model, run.vectorizer, run.class_names), PROBE)
    np.testing.assert_array_equal(after, before)
    assert np.abs(before[:, 1] - 0.5).max() > 0.3  # a trained model, not a constant one


def test_a_bad_upload_is_refused_and_stores_nothing(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(BundleError, match="not a model bundle"):
        compare.import_as_run(store, b"definitely not a zip", owner="alice", name="x.zip")
    assert store.list_runs() == []


def test_the_hard_comments_sentence_says_nothing_was_flipped_at_zero_noise():
    text = compare.hard_reading(120, 0, 20, 0.0)
    assert "no label was flipped" in text and "memorized" not in text
    assert "mislabeled rows gather here" in compare.hard_reading(120, 12, 20, 0.3)  # 60% vs 30%
    assert "memorized many flipped labels" in compare.hard_reading(120, 6, 20, 0.3)  # 30% vs 30%
