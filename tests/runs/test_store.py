"""Tests for ffnlp_core.runs.store: runs on disk, read back exactly and never unpickled; broken folders
listed with their reason; pruning that never takes a student's recent work; writes that fail cleanly."""

import errno
import json
import os
import time
import zipfile
from collections import namedtuple

import numpy as np
import pytest
import torch

from ffnlp_core.runs import store as store_module
from ffnlp_core.runs.history import RunHistory
from ffnlp_core.runs.store import RunReadError, RunStore

DAY = 24 * 3600.0


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


def make_runs(
    store: RunStore, cfg, statuses: list[str], owners=None, created=None, prefix="run"
) -> list[str]:
    """Runs created at times 1, 2, 3, ... (oldest first; or at `created`) with the given statuses (and
    owners); their ids."""
    ids = []
    for i, status in enumerate(statuses, start=1):
        run_id = f"{prefix}-{i:02d}"
        store.create(run_id, cfg, owner=owners[i - 1] if owners else "")
        store.set_status(run_id, status, created=created[i - 1] if created else float(i))
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


def test_list_runs_is_newest_first_and_lists_broken_folders_with_their_reason(tmp_path, shared_run):
    store = RunStore(tmp_path)
    ids = make_runs(store, shared_run.cfg, ["finished", "finished", "failed"])
    broken = {  # folder -> {file: content}
        "not-json": {"status.json": "{not json", "config.json": "{}"},
        "a-list": {"status.json": "[1, 2]", "config.json": "{}"},
        "odd-time": {"status.json": '{"status": "finished", "created": "yesterday"}', "config.json": "{}"},
        "odd-summary": {"status.json": '{"status": "finished", "summary": [0.9]}', "config.json": "{}"},
        "odd-accuracy": {
            "status.json": '{"status": "finished", "summary": {"dev_accuracy": "high"}}',
            "config.json": "{}",
        },
        "no-config": {"status.json": '{"status": "finished", "created": 5}'},
        "odd-config": {"status.json": '{"status": "finished"}', "config.json": '{"modle": {}}'},
        "odd-widths": {
            "status.json": '{"status": "finished"}',
            "config.json": '{"model": {"hidden_sizes": 8}}',
        },
    }
    for name, files in broken.items():
        (tmp_path / name).mkdir()
        for file, text in files.items():
            (tmp_path / name / file).write_text(text)
    good = saved_run(store, shared_run, "good")
    (tmp_path / "truncated").mkdir()
    for file in ("status.json", "config.json", "history.npz"):  # a copy of a good run, history cut short
        (tmp_path / "truncated" / file).write_bytes((tmp_path / good / file).read_bytes())
    with open(tmp_path / "truncated" / "history.npz", "r+b") as f:
        f.truncate(100)
    listed = {r["id"]: r for r in store.list_runs()}
    assert [r["id"] for r in store.list_runs() if r["id"].startswith("run-")] == ids[::-1]
    reasons = {name: listed[name]["reason"] for name in [*broken, "truncated"]}
    assert {listed[name]["status"] for name in reasons} == {"unreadable"}
    assert reasons["not-json"].startswith("status.json is not valid JSON")
    assert reasons["a-list"] == "status.json holds a list, not an object"
    assert reasons["odd-time"] == "status.json: created is not a time"
    assert reasons["odd-summary"] == "status.json: summary is not an object"
    assert reasons["odd-accuracy"] == "status.json: summary.dev_accuracy is not a number"
    assert reasons["no-config"] == "config.json is missing"
    assert reasons["odd-config"].startswith("config.json is not a run configuration (unknown config section")
    assert reasons["odd-widths"] == "config.json: model.hidden_sizes is not a list"
    assert reasons["truncated"].startswith("history.npz cannot be read (BadZipFile")
    assert all(listed[name]["config"] == {} for name in reasons)  # pages may index it, never a KeyError


def test_a_half_written_folder_is_listed_as_interrupted_with_what_it_holds(tmp_path, shared_run):
    store = RunStore(tmp_path)
    (tmp_path / "empty").mkdir()
    store.create("cut-short", shared_run.cfg)
    (tmp_path / "cut-short" / "status.json").unlink()  # the save stopped between config and status
    (tmp_path / "cut-short" / "history.npz").write_bytes(b"")
    (tmp_path / "cut-short" / "meta.json.tmp").write_bytes(b"")  # temp files are not what it holds
    listed = {r["id"]: r for r in store.list_runs()}
    assert listed["empty"]["status"] == "interrupted"
    assert listed["empty"]["reason"].endswith("; it holds nothing")
    assert listed["cut-short"]["status"] == "interrupted"
    assert listed["cut-short"]["reason"] == (
        "a half-written run folder (the server stopped while saving it); it holds config.json, history.npz"
    )
    assert listed["cut-short"]["config"] == shared_run.cfg.to_dict()


def test_a_broken_status_file_reads_as_unreadable_and_is_rewritten(tmp_path, shared_run):
    store = RunStore(tmp_path)
    store.create("r", shared_run.cfg)
    (tmp_path / "r" / "status.json").write_text('"just a string"')
    assert store.status("r") == {"status": "unreadable", "reason": "status.json holds a str, not an object"}
    store.set_status("r", "failed", reason="x")  # a broken file never stops a run from saying how it ended
    assert (store.status("r")["status"], store.status("r")["reason"]) == ("failed", "x")


@pytest.mark.parametrize(
    ("cut", "expected"),
    [("truncate", "BadZipFile"), ("garbage member", "ValueError"), ("empty", "EOFError")],
)
def test_a_broken_history_raises_a_read_error_with_its_reason(tmp_path, shared_run, cut, expected):
    store = RunStore(tmp_path)
    run_id = saved_run(store, shared_run)
    path = tmp_path / run_id / "history.npz"
    if cut == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif cut == "empty":
        path.write_bytes(b"")
    else:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("curve_loss.npy", b"not an array")
    with pytest.raises(RunReadError, match=rf"^history.npz cannot be read \({expected}"):
        store.load_history(run_id)


def test_a_history_and_its_metadata_are_one_file_written_at_once(tmp_path, shared_run, monkeypatch):
    store = RunStore(tmp_path)
    run_id = saved_run(store, shared_run)
    assert not (tmp_path / run_id / "meta.json").exists()
    writes = []
    real = store_module._write_atomic
    monkeypatch.setattr(
        store_module, "_write_atomic", lambda path, data: (writes.append(path.name), real(path, data))
    )
    store.save_history(run_id, fold(shared_run.events))
    assert writes == ["history.npz"]  # a save killed at any moment leaves the old file or the new one
    back = store.load_history(run_id)
    assert back.steps_done == 134 and len(back.evals) == len(fold(shared_run.events).evals)


def test_a_folder_saved_with_meta_json_beside_its_history_still_reads(tmp_path, shared_run):
    store = RunStore(tmp_path)
    run_id = saved_run(store, shared_run)
    history = fold(shared_run.events)
    np.savez(tmp_path / run_id / "history.npz", **history.to_arrays())  # the layout before: two files
    (tmp_path / run_id / "meta.json").write_text(
        json.dumps(history.meta(), default=store_module._json_default)
    )
    back = store.load_history(run_id)
    assert back.steps_done == 134 and len(back.evals) == len(history.evals)
    (tmp_path / run_id / "meta.json").unlink()  # and without it, the curves alone
    assert store.load_history(run_id).steps_done == 134


def test_weights_without_model_json_are_no_model(tmp_path, shared_run):
    store = RunStore(tmp_path)
    run_id = saved_run(store, shared_run)
    (tmp_path / run_id / "model.json").unlink()
    assert store.has_model(run_id) is False
    with pytest.raises(RunReadError, match="^model.json is missing$"):
        store.load_model(run_id)
    (tmp_path / run_id / "model.json").write_text('{"vectorizer": 3, "classes": []}')
    with pytest.raises(RunReadError, match="^the saved model cannot be read"):
        store.load_model(run_id)


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


def test_prune_never_removes_a_run_younger_than_a_day(tmp_path, shared_run):
    store = RunStore(tmp_path, max_runs=1)  # the default min_age_seconds: one day
    now = time.time()
    created = [now - 3 * DAY, now - 2 * DAY, now - DAY + 600, now - 60]
    ids = make_runs(store, shared_run.cfg, ["finished"] * 4, created=created)
    assert store.prune() == ids[:2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ids[2:]  # past the limit, and kept


def test_prune_never_removes_a_run_of_an_active_owner(tmp_path, shared_run):
    store = RunStore(tmp_path, max_runs=1, max_per_owner=1, min_age_seconds=0)
    owners = ["alice", "bob", "alice", "bob", "", ""]
    ids = make_runs(store, shared_run.cfg, ["finished"] * 6, owners=owners)
    # alice polled a run an hour ago; "" (the CLI, tests) is no session: its runs are never spared
    assert store.prune(active_owners={"alice", ""}) == [ids[1], ids[3], ids[4]]
    assert sorted(p.name for p in tmp_path.iterdir()) == [ids[0], ids[2], ids[5]]


def test_prune_counts_runs_per_owner_as_well_as_per_server(tmp_path, shared_run):
    store = RunStore(tmp_path, max_runs=100, max_per_owner=2, min_age_seconds=0)
    owners = ["a", "b", "a", "a", "a", "c"]
    ids = make_runs(store, shared_run.cfg, ["finished"] * 6, owners=owners)
    assert store.prune() == [ids[0], ids[2]]  # a's two oldest; b and c have one run each
    assert store.prune() == []
    store.max_runs = 3
    assert store.prune() == [ids[1]]  # then the server's oldest past its limit
    assert sorted(p.name for p in tmp_path.iterdir()) == [ids[3], ids[4], ids[5]]


def test_thirty_students_keep_their_first_run(tmp_path, shared_run):
    """The lesson of issue 15: 30 students x 7 runs on a server keeping 200, pruned after every run."""
    store = RunStore(tmp_path, max_runs=200)
    now = time.time() - 3600
    for k in range(7):
        owners = [f"student-{i:02d}" for i in range(30)]
        make_runs(
            store, shared_run.cfg, ["finished"] * 30, owners, [now + k * 60 + i for i in range(30)], f"r{k}"
        )
        store.prune(active_owners=set(owners))
    assert len(list(tmp_path.iterdir())) == 210 and (tmp_path / "r0-01").is_dir()


def test_prune_never_removes_or_counts_an_unreadable_folder(tmp_path, shared_run):
    store = RunStore(tmp_path, max_runs=1, min_age_seconds=0)
    ids = make_runs(store, shared_run.cfg, ["finished"] * 2)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "status.json").write_text("{")
    assert store.prune() == [ids[0]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", ids[1]]


def test_a_limit_of_zero_runs_is_refused(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="max_runs must be at least 1"):
        RunStore(tmp_path, max_runs=0)
    with pytest.raises(ValueError, match="max_per_owner must be at least 1"):
        RunStore(tmp_path, max_per_owner=0)
    monkeypatch.setenv("FFNLP_MAX_RUNS", "0")
    with pytest.raises(ValueError, match="FFNLP_MAX_RUNS must be a whole number of at least 1, got '0'"):
        RunStore(tmp_path)


def test_a_refused_write_leaves_no_temp_file_and_says_what_to_do(tmp_path, shared_run, monkeypatch):
    store = RunStore(tmp_path)
    store.create("r", shared_run.cfg)

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError) as refused:
        store.save_history("r", fold(shared_run.events))
    assert not list((tmp_path / "r").glob("*.tmp"))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(store_module.shutil, "disk_usage", lambda path: usage(10**9, 10**9, 12_300_000))
    assert store.write_problem(refused.value) == (
        "the runs folder is full (12 MB free): free space or set FFNLP_RUNS_DIR"
    )
    assert store.write_problem(OSError(errno.EROFS, "Read-only file system")) == (
        f"the runs folder {tmp_path} is read-only: make it writable or set FFNLP_RUNS_DIR"
    )
    with pytest.raises(OSError):
        store.probe()


def test_a_runs_folder_that_cannot_be_made_does_not_stop_the_store(tmp_path):
    (tmp_path / "file").write_text("")
    store = RunStore(tmp_path / "file" / "runs")  # its parent is a file: mkdir fails, later writes say so
    assert store.list_runs() == []
    with pytest.raises(OSError):
        store.probe()


def test_max_runs_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FFNLP_MAX_RUNS", "7")
    assert RunStore(tmp_path).max_runs == 7
    monkeypatch.setenv("FFNLP_RUNS_DIR", str(tmp_path / "elsewhere"))
    store = RunStore()
    assert store.root == tmp_path / "elsewhere" and store.root.is_dir()


# ---- bundles -------------------------------------------------------------------------------------------
