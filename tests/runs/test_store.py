"""Tests for ffnlp_core.runs.store: runs on disk, read back exactly and never unpickled."""

import json

import numpy as np
import pytest
import torch

from ffnlp_core.runs.history import RunHistory
from ffnlp_core.runs.store import RunStore


def fold(events) -> RunHistory:
    h = RunHistory()
    for e in events:
        h.add(e)
    return h


def saved_run(store: RunStore, run, run_id: str = "run-1") -> str:
    store.create(run_id, run.cfg, owner="alice", label="relu 32-16-8")
    store.set_status(run_id, "running")
    store.save_history(run_id, fold(run.events))
    store.save_model(run_id, run.model, run.ds.vectorizer, run.ds.class_names)
    store.set_status(run_id, "finished", summary=run.events[-1].summary)
    return run_id


def make_runs(store: RunStore, cfg, statuses: list[str]) -> list[str]:
    """Runs created at times 1, 2, 3, ... (oldest first) with the given statuses; their ids."""
    ids = []
    for i, status in enumerate(statuses, start=1):
        run_id = f"run-{i:02d}"
        store.create(run_id, cfg)
        store.set_status(run_id, status, created=float(i))
        ids.append(run_id)
    return ids


def test_a_saved_run_lists_with_its_status_config_and_summary(tmp_path, shared_run):
    store = RunStore(tmp_path)
    run_id = saved_run(store, shared_run)
    runs = store.list_runs()
    assert len(runs) == 1
    run = runs[0]
    assert run["id"] == run_id and run["status"] == "finished"
    assert run["owner"] == "alice" and run["label"] == "relu 32-16-8"
    assert run["config"] == shared_run.cfg.to_dict()
    assert run["summary"] == json.loads(json.dumps(shared_run.events[-1].summary))
    assert run["created"] <= run["updated"]
    assert store.config(run_id) == shared_run.cfg
    assert store.status(run_id)["status"] == "finished"
    assert store.status("never-made") == {}


def test_a_saved_history_loads_with_the_same_values(tmp_path, shared_run):
    store = RunStore(tmp_path)
    run_id = saved_run(store, shared_run)
    h, back = fold(shared_run.events), store.load_history(run_id)
    for k, v in h.curves().items():
        np.testing.assert_array_equal(back.curves()[k], v, err_msg=k)
    for k, v in h.gradient_table().items():
        np.testing.assert_array_equal(back.gradient_table()[k], v, err_msg=k)
    assert back.evals == h.evals
    np.testing.assert_array_equal(back.confusion, h.confusion)
    assert back.summary == h.summary and back.started == h.started
    assert store.load_history("run-without-history").steps_done == 0


def test_a_saved_model_predicts_identically(tmp_path, shared_run, predict):
    store = RunStore(tmp_path)
    run_id = saved_run(store, shared_run)
    assert store.has_model(run_id)
    model, vec, classes = store.load_model(run_id)
    assert classes == ["not toxic", "toxic"]
    assert vec.vocabulary_ == shared_run.ds.vectorizer.vocabulary_
    assert model.hidden_sizes == [32, 16, 8] and model.activation_name == "relu"
    np.testing.assert_array_equal(predict(model, vec), predict(shared_run.model, shared_run.ds.vectorizer))
    original = shared_run.model.state_dict()
    for k, v in model.state_dict().items():
        assert torch.equal(v, original[k]), k


def test_weights_are_stored_as_safetensors_not_pickle(tmp_path, shared_run):
    store = RunStore(tmp_path)
    run_id = saved_run(store, shared_run)
    folder = tmp_path / run_id
    assert {p.name for p in folder.iterdir()} >= {
        "config.json",
        "status.json",
        "history.npz",
        "meta.json",
        "model.safetensors",
        "model.json",
    }
    assert not list(folder.glob("*.tmp"))  # atomic writes leave no temp files
    raw = (folder / "model.safetensors").read_bytes()
    header_len = int.from_bytes(raw[:8], "little")  # safetensors: 8-byte length, then a JSON header
    header = json.loads(raw[8 : 8 + header_len])
    assert header["layer_0.weight"]["shape"] == [78, 32]
    assert header["output_layer.weight"]["shape"] == [2, 8]
    with np.load(folder / "history.npz", allow_pickle=False) as z:  # plain arrays only
        assert "curve_loss" in z.files and z["curve_loss"].shape == (134,)


def test_set_status_keeps_earlier_fields(tmp_path, shared_run):
    store = RunStore(tmp_path)
    store.create("r", shared_run.cfg, owner="bob")
    store.set_status("r", "running", heartbeat=5)
    store.set_status("r", "finished")
    status = store.status("r")
    assert (status["status"], status["owner"], status["heartbeat"]) == ("finished", "bob", 5)


def test_list_runs_is_newest_first_and_skips_broken_folders(tmp_path, shared_run):
    store = RunStore(tmp_path)
    ids = make_runs(store, shared_run.cfg, ["finished", "finished", "failed"])
    (tmp_path / "half-written").mkdir()
    (tmp_path / "half-written" / "status.json").write_text("{not json")
    (tmp_path / "no-status").mkdir()
    assert [r["id"] for r in store.list_runs()] == ids[::-1]


@pytest.mark.parametrize("bad", ["", "../elsewhere", "a/b", "a\\b", ".hidden"])
def test_run_ids_cannot_leave_the_runs_folder(tmp_path, bad):
    with pytest.raises(ValueError, match="bad run id"):
        RunStore(tmp_path).folder(bad)


def test_mark_interrupted_ends_live_runs_with_a_reason(tmp_path, shared_run):
    store = RunStore(tmp_path)
    ids = make_runs(store, shared_run.cfg, ["queued", "running", "finished", "failed", "running"])
    marked = store.mark_interrupted()
    assert sorted(marked) == [ids[0], ids[1], ids[4]]
    statuses = {r["id"]: r for r in store.list_runs()}
    for run_id in marked:
        assert statuses[run_id]["status"] == "interrupted"
        assert "restart" in statuses[run_id]["reason"]
    assert statuses[ids[2]]["status"] == "finished" and "reason" not in statuses[ids[2]]
    assert statuses[ids[3]]["status"] == "failed"
    assert store.mark_interrupted() == []


def test_prune_keeps_the_newest_max_runs(tmp_path, shared_run):
    store = RunStore(tmp_path, max_runs=3)
    ids = make_runs(store, shared_run.cfg, ["finished"] * 6)
    removed = store.prune()
    assert sorted(removed) == ids[:3]
    assert [r["id"] for r in store.list_runs()] == ids[:2:-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ids[3:]
    assert store.prune() == []


def test_prune_never_removes_a_live_run_or_one_to_keep(tmp_path, shared_run):
    store = RunStore(tmp_path, max_runs=2)
    statuses = ["running", "queued", "finished", "finished", "finished", "finished"]
    ids = make_runs(store, shared_run.cfg, statuses)
    removed = store.prune(keep={ids[2]})
    assert sorted(removed) == [ids[3]]  # the oldest four are past the limit: 2 live, 1 kept, 1 removed
    left = {r["id"] for r in store.list_runs()}
    assert left == {ids[0], ids[1], ids[2], ids[4], ids[5]}


def test_max_runs_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FFNLP_MAX_RUNS", "7")
    assert RunStore(tmp_path).max_runs == 7
    monkeypatch.setenv("FFNLP_RUNS_DIR", str(tmp_path / "elsewhere"))
    store = RunStore()
    assert store.root == tmp_path / "elsewhere" and store.root.is_dir()


# ---- bundles -------------------------------------------------------------------------------------------
