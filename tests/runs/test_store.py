"""Tests for ffnlp_core.runs.store: runs on disk and model bundles, read back exactly and never unpickled."""

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
import torch

from ffnlp_core.nn.inputs import to_torch_csr
from ffnlp_core.runs.history import RunHistory
from ffnlp_core.runs.store import BundleError, RunStore, export_bundle, import_bundle

PROBE_TEXTS = [
    "that guy jerk at lunch",
    "my brother jerk chicken in the comments",
    "wow the waiter chicken tbh",
    "the landlord idiot on the bus",
    "honestly the referee at the party",
    "never seen words zebra",
]


def fold(events) -> RunHistory:
    h = RunHistory()
    for e in events:
        h.add(e)
    return h


@torch.no_grad()
def predict(model, vectorizer, texts=PROBE_TEXTS) -> np.ndarray:
    """Class probabilities (rows, classes) for raw comments."""
    model.eval()
    logits, _ = model(to_torch_csr(vectorizer.transform(texts)))
    return torch.softmax(logits, dim=1).numpy()


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


def zip_parts(parts: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return buf.getvalue()


def unzip(bundle: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as z:
        return {n: z.read(n) for n in z.namelist()}


@pytest.fixture(scope="module")
def bundle(shared_run) -> bytes:
    return export_bundle(
        shared_run.cfg, shared_run.model, shared_run.ds.vectorizer, shared_run.ds.class_names
    )


# ---- the runs folder -----------------------------------------------------------------------------------


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


def test_a_saved_model_predicts_identically(tmp_path, shared_run):
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


def test_bundle_round_trip_predicts_identically(bundle, shared_run):
    assert set(unzip(bundle)) == {"model.safetensors", "config.json", "model.json"}
    cfg, model, vec, classes = import_bundle(bundle)
    assert cfg == shared_run.cfg
    assert classes == shared_run.ds.class_names
    assert vec.vocabulary_ == shared_run.ds.vectorizer.vocabulary_
    assert not model.training
    np.testing.assert_array_equal(predict(model, vec), predict(shared_run.model, shared_run.ds.vectorizer))


def test_bundle_round_trip_with_tfidf_and_bigrams(make_config, run_events):
    from ffnlp_core.data.dataset import build_dataset, load_source
    from ffnlp_core.train.plan import build_model

    cfg = make_config(vectorizer="tfidf", ngram_max=2, hidden_sizes=[4], epochs=1, snapshot_rows=0)
    ds = build_dataset(load_source(cfg.data), cfg.data)
    model = build_model(cfg, ds)
    run_events(cfg, ds, model=model)
    _, back, vec, _ = import_bundle(export_bundle(cfg, model, ds.vectorizer, ds.class_names))
    assert "jerk chicken" in vec.vocabulary_
    np.testing.assert_array_equal(
        vec.transform(PROBE_TEXTS).toarray(), ds.vectorizer.transform(PROBE_TEXTS).toarray()
    )
    np.testing.assert_array_equal(predict(back, vec), predict(model, ds.vectorizer))


@pytest.mark.parametrize("data", [b"", b"hello, this is not a zip", bytes(range(256)) * 40])
def test_import_refuses_what_is_not_a_zip(data):
    with pytest.raises(BundleError, match="not a model bundle"):
        import_bundle(data)


@pytest.mark.parametrize("missing", ["model.safetensors", "config.json", "model.json"])
def test_import_refuses_a_zip_missing_a_part(bundle, missing):
    parts = unzip(bundle)
    del parts[missing]
    with pytest.raises(BundleError) as err:
        import_bundle(zip_parts(parts))
    assert missing in str(err.value) and "ffnlp" in str(err.value)


def test_import_refuses_a_config_that_does_not_match_the_weights(bundle):
    parts = unzip(bundle)
    cfg = json.loads(parts["config.json"])
    cfg["model"]["hidden_sizes"] = [50]
    parts["config.json"] = json.dumps(cfg).encode()
    with pytest.raises(BundleError) as err:
        import_bundle(zip_parts(parts))
    message = str(err.value)
    assert "do not match" in message
    assert "layer_0.weight is (78, 32), expected (78, 50)" in message
    assert "layer_1.weight" in message  # a layer the config does not have


def test_import_refuses_an_invalid_config(bundle):
    parts = unzip(bundle)
    cfg = json.loads(parts["config.json"])
    cfg["train"]["lr"] = 0
    parts["config.json"] = json.dumps(cfg).encode()
    with pytest.raises(BundleError, match="learning rate"):
        import_bundle(zip_parts(parts))
    parts["config.json"] = b'{"model": {"hidden": [1]}}'
    with pytest.raises(BundleError, match="hidden"):
        import_bundle(zip_parts(parts))


@pytest.mark.parametrize(
    "part, payload",
    [
        ("model.json", b'{"classes": ["not toxic", "toxic"]}'),  # no vectorizer
        ("model.json", b"[]"),
        ("config.json", b"[]"),
    ],
    ids=["model-json-without-vectorizer", "model-json-a-list", "config-json-a-list"],
)
def test_import_refuses_malformed_json_parts_with_a_bundle_error(bundle, part, payload):
    parts = unzip(bundle)
    parts[part] = payload
    with pytest.raises(BundleError):
        import_bundle(zip_parts(parts))


def test_a_pickle_renamed_as_safetensors_is_refused_and_never_run(bundle, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('ran')",))

    evil = pickle.dumps(Payload())
    pickle.loads(evil)  # the payload really works when unpickled ...
    assert marker.exists()
    marker.unlink()
    torch_style = io.BytesIO()
    torch.save({"layer_0.weight": Payload()}, torch_style)  # ... and so does a torch.save file
    for weights in (evil, torch_style.getvalue()):
        parts = unzip(bundle)
        parts["model.safetensors"] = weights
        with pytest.raises(BundleError, match="safetensors"):
            import_bundle(zip_parts(parts))
        assert not marker.exists()


def test_import_refuses_a_bundle_over_the_size_limit(monkeypatch, bundle):
    import ffnlp_core.runs.store as store

    monkeypatch.setattr(store, "MAX_BUNDLE_BYTES", len(bundle) - 1)
    with pytest.raises(BundleError, match="MB"):
        import_bundle(bundle)
