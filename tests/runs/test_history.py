"""Tests for ffnlp_core.runs.history: folding a run's events into bounded arrays, and saving them without pickle."""

import io
import json
import math

import numpy as np

from ffnlp_core.events import Eval, Failed, Finished, Gradients, HiddenSnapshot, Started, Steps
from ffnlp_core.runs.history import EVAL_FIELDS, GRAD_FIELDS, MAX_GRAD_RECORDS, MAX_SNAPSHOTS, RunHistory


def fold(events) -> RunHistory:
    h = RunHistory()
    for e in events:
        h.add(e)
    return h


def of(events, kind) -> list:
    return [e for e in events if isinstance(e, kind)]


def gradients(steps: np.ndarray, layers: int = 3) -> Gradients:
    """Synthetic probes whose every figure is its step number (so rows can be checked after thinning)."""
    n = len(steps)
    per_layer = np.repeat(steps[:, None].astype(np.float64), layers, axis=1)
    per_hidden = per_layer[:, : layers - 1]
    return Gradients(
        step=steps.astype(np.int64),
        layer_names=[f"layer_{i}" for i in range(layers - 1)] + ["output_layer"],
        grad_rms=per_layer,
        grad_norm=per_layer * 2,
        signal=per_layer * 3,
        update_ratio=per_layer * 4,
        dead_fraction=np.zeros((n, layers - 1)),
        saturated_fraction=per_hidden,
    )


def snapshot(step: int) -> HiddenSnapshot:
    rows = np.arange(5)
    return HiddenSnapshot(
        step, 1, rows, [np.full((5, 3), step, np.float16)], np.full((5, 2), 0.5, np.float32)
    )


def save_and_load(h: RunHistory) -> RunHistory:
    """What the store does: arrays through np.savez (no pickle), meta through JSON."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **h.to_arrays())
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return RunHistory.from_saved(json.loads(json.dumps(h.meta())), arrays)


# ---- folding a real run --------------------------------------------------------------------------------


def test_folding_a_run_gives_curves_of_every_step(shared_run):
    events = shared_run.events
    h = fold(events)
    curves = h.curves()
    np.testing.assert_array_equal(curves["step"], np.arange(1, 135))
    np.testing.assert_array_equal(curves["loss"], np.concatenate([e.loss for e in of(events, Steps)]))
    np.testing.assert_array_equal(curves["accuracy"], np.concatenate([e.accuracy for e in of(events, Steps)]))
    assert h.steps_done == h.total_steps == 134
    assert h.epoch == 2 and h.examples_seen == 6400
    assert h.layer_names == ["layer_0", "layer_1", "layer_2", "output_layer"]
    assert h.running_accuracy == of(events, Steps)[-1].running_accuracy
    assert h.summary == events[-1].summary and h.stopped is False and h.failure is None


def test_folding_a_run_gives_the_eval_table(shared_run):
    evals = of(shared_run.events, Eval)
    h = fold(shared_run.events)
    table = h.eval_table()
    assert set(table) == set(EVAL_FIELDS)
    np.testing.assert_array_equal(table["step"], [e.step for e in evals])
    np.testing.assert_array_equal(table["epoch"], [e.epoch for e in evals])
    np.testing.assert_array_equal(table["dev_accuracy"], [e.dev_accuracy for e in evals])
    np.testing.assert_array_equal(table["train_loss"], [e.train_loss for e in evals])
    np.testing.assert_array_equal(h.confusion, evals[-1].confusion)
    assert h.last_eval()["dev_accuracy"] == evals[-1].dev_accuracy


def test_folding_a_run_gives_the_gradient_table(shared_run):
    grads = of(shared_run.events, Gradients)
    table = fold(shared_run.events).gradient_table()
    assert set(table) == {"step", *GRAD_FIELDS}
    np.testing.assert_array_equal(table["step"], np.arange(1, 135))
    for f in GRAD_FIELDS:
        expected = np.concatenate([getattr(g, f) for g in grads]).astype(np.float32)
        np.testing.assert_array_equal(table[f], expected, err_msg=f)
    assert table["grad_rms"].shape == (134, 4) and table["dead_fraction"].shape == (134, 3)


def test_folding_a_run_keeps_its_snapshots(shared_run):
    snaps = of(shared_run.events, HiddenSnapshot)
    h = fold(shared_run.events)
    assert len(snaps) == 8 <= MAX_SNAPSHOTS
    assert [s.step for s in h.snapshots] == [s.step for s in snaps]


def test_curves_are_copies():
    h = fold(
        [
            Steps(
                1,
                np.array([1]),
                np.array([0.5], np.float32),
                np.array([1.0], np.float32),
                1.0,
                1,
                0.1,
                10.0,
                5,
            )
        ]
    )
    h.curves()["loss"][0] = 99
    assert h.curves()["loss"][0] == 0.5


def test_an_empty_history_reads_as_nothing_yet():
    h = RunHistory()
    assert h.steps_done == 0 and h.total_steps == 0 and h.layer_names == []
    assert h.last_eval() is None
    assert len(h.curves()["step"]) == 0
    assert math.isnan(h.running_accuracy)


# ---- bounds --------------------------------------------------------------------------------------------


def test_snapshots_are_thinned_and_the_newest_kept():
    h = RunHistory()
    for step in range(1, 101):
        h.add(snapshot(step))
        assert len(h.snapshots) <= MAX_SNAPSHOTS
        assert h.snapshots[-1].step == step
    steps = [s.step for s in h.snapshots]
    assert steps == sorted(steps) and steps[-1] == 100
    assert steps[0] <= 25  # thinning keeps the early part of the run too, not only the last 24
    assert len(h.snapshots) >= MAX_SNAPSHOTS // 2


def test_gradient_records_are_thinned_and_the_newest_kept_whole():
    h = RunHistory()
    block = 100
    last = 10 * MAX_GRAD_RECORDS  # 40,000 probes in blocks of 100
    for start in range(1, last, block):
        h.add(gradients(np.arange(start, start + block)))
        assert h.grad_step.n <= MAX_GRAD_RECORDS
    table = h.gradient_table()
    steps = table["step"]
    assert steps[-1] == last
    assert np.all(np.diff(steps) > 0)
    np.testing.assert_array_equal(steps[-block:], np.arange(last - block + 1, last + 1))  # newest whole
    for f in GRAD_FIELDS:  # every kept row still belongs to its step
        scale = {"grad_norm": 2, "signal": 3, "update_ratio": 4}.get(f, 1)
        if f == "dead_fraction":
            assert np.all(table[f] == 0)
        else:
            np.testing.assert_array_equal(table[f][:, 0], steps * scale, err_msg=f)


def test_a_single_oversized_gradient_block_is_still_bounded():
    h = RunHistory()
    h.add(gradients(np.arange(1, 3 * MAX_GRAD_RECORDS + 1)))
    assert h.grad_step.n <= MAX_GRAD_RECORDS, h.grad_step.n
    assert h.gradient_table()["step"][-1] == 3 * MAX_GRAD_RECORDS


# ---- saving --------------------------------------------------------------------------------------------


def test_save_and_load_round_trip(shared_run):
    h = fold(shared_run.events)
    back = save_and_load(h)
    for k, v in h.curves().items():
        np.testing.assert_array_equal(back.curves()[k], v, err_msg=k)
    for k, v in h.eval_table().items():
        np.testing.assert_array_equal(back.eval_table()[k], v, err_msg=k)
    assert back.evals == h.evals
    for k, v in h.gradient_table().items():
        np.testing.assert_array_equal(back.gradient_table()[k], v, err_msg=k)
    np.testing.assert_array_equal(back.confusion, h.confusion)
    assert back.started == h.started
    assert back.summary == h.summary
    assert (back.epoch, back.examples_seen, back.stopped) == (2, 6400, False)
    assert back.train_seconds == h.train_seconds and back.running_accuracy == h.running_accuracy
    assert back.steps_done == 134 and back.layer_names == h.layer_names
    # only the newest snapshot is saved: enough to draw the representations after a restart
    newest, saved = h.snapshots[-1], back.snapshots
    assert len(saved) == 1 and (saved[0].step, saved[0].epoch) == (newest.step, newest.epoch)
    np.testing.assert_array_equal(saved[0].dev_rows, newest.dev_rows)
    np.testing.assert_array_equal(saved[0].probs, newest.probs)
    assert len(saved[0].hidden) == 3
    for a, b in zip(saved[0].hidden, newest.hidden, strict=True):
        assert a.dtype == np.float16
        np.testing.assert_array_equal(a, b)


def test_a_loaded_history_keeps_growing(shared_run):
    back = save_and_load(fold(shared_run.events))
    back.add(gradients(np.array([135]), layers=4))
    assert back.gradient_table()["step"][-1] == 135 and back.grad_step.n == 135


def test_a_failed_run_round_trips_with_its_reason():
    started = Started(
        "r1", 10, 10, 8, 2, 5, ["a", "b"], ["output_layer"], [], [12], "cpu", "fast-cpu", "manual", 1
    )
    steps = Steps(
        1,
        np.array([1, 2]),
        np.array([0.7, 0.6], np.float32),
        np.array([0.5, 1], np.float32),
        0.75,
        8,
        0.01,
        800.0,
        10,
    )
    summary = {"steps": 3, "train_loss": 0.65, "dev_accuracy": float("nan")}
    failed = Failed("diverged", "diverged at step 3: the loss became nan", 3, summary)
    h = fold([started, steps, failed])
    back = save_and_load(h)
    assert back.failure.kind == "diverged" and back.failure.reason == failed.reason and back.failure.step == 3
    assert back.summary["train_loss"] == 0.65 and math.isnan(back.summary["dev_accuracy"])
    assert back.evals == [] and back.snapshots == [] and back.confusion is None
    np.testing.assert_array_equal(back.curves()["loss"], np.array([0.7, 0.6], np.float32))
    assert len(back.gradient_table()["step"]) == 0


def test_a_stopped_run_round_trips_as_stopped():
    h = fold([Finished(stopped=True, summary={"steps": 4})])
    back = save_and_load(h)
    assert back.stopped is True and back.summary == {"steps": 4} and back.failure is None
