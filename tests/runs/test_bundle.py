"""Tests for ffnlp_core.runs.bundle: a downloaded model uploaded again predicts identically, and a file that
is not one of ours (wrong parts, wrong shapes, pickles) is refused with a reason and never unpickled."""

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
import torch

from ffnlp_core.runs.bundle import BundleError, export_bundle, import_bundle

PROBE = ["that guy jerk at lunch", "my brother jerk chicken in the comments", "never seen words zebra"]


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


def test_bundle_round_trip_predicts_identically(bundle, shared_run, predict):
    assert set(unzip(bundle)) == {"model.safetensors", "config.json", "model.json"}
    cfg, model, vec, classes = import_bundle(bundle)
    assert cfg == shared_run.cfg
    assert classes == shared_run.ds.class_names
    assert vec.vocabulary_ == shared_run.ds.vectorizer.vocabulary_
    assert not model.training
    np.testing.assert_array_equal(predict(model, vec), predict(shared_run.model, shared_run.ds.vectorizer))


def test_bundle_round_trip_with_tfidf_and_bigrams(make_config, run_events, predict):
    from ffnlp_core.data.dataset import build_dataset, load_source
    from ffnlp_core.train.plan import build_model

    cfg = make_config(vectorizer="tfidf", ngram_max=2, hidden_sizes=[4], epochs=1, snapshot_rows=0)
    ds = build_dataset(load_source(cfg.data), cfg.data)
    model = build_model(cfg, ds)
    run_events(cfg, ds, model=model)
    _, back, vec, _ = import_bundle(export_bundle(cfg, model, ds.vectorizer, ds.class_names))
    assert "jerk chicken" in vec.vocabulary_
    np.testing.assert_array_equal(vec.transform(PROBE).toarray(), ds.vectorizer.transform(PROBE).toarray())
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
    import ffnlp_core.runs.bundle as bundle_module

    monkeypatch.setattr(bundle_module, "MAX_BUNDLE_BYTES", len(bundle) - 1)
    with pytest.raises(BundleError, match="MB"):
        import_bundle(bundle)
