"""Tests for ffnlp_core.runs.bundle: a downloaded model uploaded again predicts identically; a file that
is not one of ours (wrong parts, wrong shapes, pickles) is refused with a reason and never unpickled; and
crafted files (zip bombs, vocabularies, classes or networks beyond the settings' bounds, F64 or NaN weights,
ngram_max=10**6) are refused in one line before anything large is read or allocated."""

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


# ---- hostile files: refused before anything large is read or allocated -----------------------------------


def zip_with(parts: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return buf.getvalue()


def peak_bytes(fn) -> tuple[int, Exception | None]:
    """Peak Python memory (tracemalloc: bytes objects included) while fn runs, and what it raised."""
    import tracemalloc

    tracemalloc.start()
    raised = None
    try:
        fn()
    except Exception as exc:
        raised = exc
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, raised


def with_model_json(bundle: bytes, edit) -> bytes:
    parts = unzip(bundle)
    info = json.loads(parts["model.json"])
    edit(info)
    parts["model.json"] = json.dumps(info).encode()
    return zip_with(parts)


def with_tensors(bundle: bytes, edit) -> bytes:
    from safetensors.torch import load, save

    parts = unzip(bundle)
    tensors = load(parts["model.safetensors"])
    edit(tensors)
    parts["model.safetensors"] = save(tensors)
    return zip_with(parts)


def test_a_bzip2_zip_bomb_is_refused_before_any_byte_is_unpacked(bundle):
    parts = unzip(bundle)
    parts["model.json"] = b" " * (64 << 20)  # 64 MB of spaces: a few hundred bytes packed with bzip2
    bomb = zip_with(parts, zipfile.ZIP_BZIP2)
    assert len(bomb) < len(bundle) + 4096
    peak, raised = peak_bytes(lambda: import_bundle(bomb))
    assert isinstance(raised, BundleError)
    assert "compression method 12" in str(raised) and "deflate" in str(raised)
    assert peak < 4 << 20  # nothing near the 64 MB was unpacked


def test_a_deflate_part_over_its_cap_is_refused_from_its_header_and_its_reading(bundle, monkeypatch):
    import ffnlp_core.runs.bundle as bundle_module

    parts = unzip(bundle)
    parts["model.json"] = b" " * (16 << 20)  # 16 MB of spaces, ~16 KB packed
    bomb = zip_with(parts)
    monkeypatch.setitem(bundle_module.MAX_PART_BYTES, "model.json", 1 << 20)
    peak, raised = peak_bytes(lambda: import_bundle(bomb))
    assert str(raised) == "model.json is 16.8 MB unpacked; at most 1.0 MB"
    assert peak < 4 << 20


def lie_about_size(data: bytes, name: str, size: int) -> bytes:
    """The zip with `name`'s unpacked size in both its local and central headers set to `size`."""
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        local = z.getinfo(name).header_offset
    out[local + 22 : local + 26] = size.to_bytes(4, "little")
    at = out.find(b"PK\x01\x02")
    while at >= 0:
        n = int.from_bytes(out[at + 28 : at + 30], "little")
        if out[at + 46 : at + 46 + n] == name.encode():
            out[at + 24 : at + 28] = size.to_bytes(4, "little")
        at = out.find(b"PK\x01\x02", at + 4)
    return bytes(out)


def test_a_part_whose_header_understates_its_size_is_read_no_further(bundle):
    parts = unzip(bundle)
    parts["model.json"] = b" " * (64 << 20)
    liar = lie_about_size(zip_with(parts), "model.json", 1000)  # says 1 KB, unpacks to 64 MB
    peak, raised = peak_bytes(lambda: import_bundle(liar))
    assert isinstance(raised, BundleError) and "Bad CRC-32 for file 'model.json'" in str(raised)
    assert peak < 4 << 20


def test_a_zip_of_many_entries_is_refused_before_its_directory_is_parsed(bundle):
    parts = unzip(bundle) | {f"pad{i}.txt": b"" for i in range(14)}  # 17 entries; ours has 3
    with pytest.raises(BundleError) as err:
        import_bundle(zip_with(parts))
    assert str(err.value) == (
        "the zip holds 17 entries; a model bundle holds 3 files (upload one downloaded from ffnlp)"
    )


def test_a_vocabulary_over_the_settings_bound_is_refused(bundle, monkeypatch):
    import ffnlp_core.data.features as features

    monkeypatch.setattr(features, "MAX_VOCABULARY", 100)  # the real bound: 1,000,000 (max vocabulary)
    huge = with_model_json(
        bundle, lambda info: info["vectorizer"].update(vocabulary=[f"w{i}" for i in range(101)])
    )
    with pytest.raises(BundleError) as err:
        import_bundle(huge)
    assert str(err.value) == (
        "model.json's vectorizer is not valid: the vocabulary must be a list of 1 to 100 words, got 101"
    )
    assert features.MAX_VOCABULARY == 100 and features._BOUNDS["max_features"]["max"] == 1_000_000


def test_a_network_too_large_for_a_bundle_is_refused_before_its_weights_are_read(bundle):
    parts = unzip(bundle)
    cfg = json.loads(parts["config.json"])
    cfg["model"]["hidden_sizes"] = [4096]  # 200,000 words x 4096: 3.3 GB of float32 weights
    parts["config.json"] = json.dumps(cfg).encode()
    info = json.loads(parts["model.json"])
    info["vectorizer"]["vocabulary"] = [f"w{i}" for i in range(200_000)]
    parts["model.json"] = json.dumps(info).encode()
    peak, raised = peak_bytes(lambda: import_bundle(zip_with(parts)))
    assert str(raised) == (
        "the network in config.json and model.json needs 3,277 MB of weights (200,000 words, hidden [4096]); "
        "a bundle holds at most 537 MB"
    )
    assert peak < 200 << 20  # model.json parsed; no network, no weights


@pytest.mark.parametrize(
    "classes, message",
    [
        ([f"c{i}" for i in range(4_000)], "model.json must list 2 to 50 classes, got 4,000"),
        (["only one"], "model.json must list 2 to 50 classes, got 1"),
        (["a", "a"], "model.json lists a class twice"),
        (["a", "x" * 1001], "every class in model.json must be a text of 1 to 1000 characters"),
        ("ab", "model.json must list 2 to 50 classes, got str"),
    ],
    ids=["4000-classes", "one-class", "twice", "long-name", "not-a-list"],
)
def test_classes_outside_the_apps_bounds_are_refused(bundle, classes, message):
    with pytest.raises(BundleError) as err:
        import_bundle(with_model_json(bundle, lambda info: info.update(classes=classes)))
    assert str(err.value) == message


@pytest.mark.parametrize(
    "setting, value, message",
    [
        ("ngram_max", 10**6, "ngram_max must be a whole number from 1 to 2, got 1000000"),
        ("ngram_max", 1.5, "ngram_max must be a whole number from 1 to 2, got 1.5"),
        ("min_df", 0, "min_df must be a whole number from 1 to 1000000, got 0"),
        ("max_features", 10, "the vocabulary must be a list of 1 to 10 words, got 78"),
        ("kind", "word2vec", "unknown vectorizer 'word2vec'; use one of ['counts', 'binary', 'tfidf']"),
        ("decode_entities", "yes", "decode_entities must be true or false, got 'yes'"),
    ],
)
def test_vectorizer_settings_outside_the_apps_bounds_are_refused(bundle, setting, value, message):
    with pytest.raises(BundleError) as err:
        import_bundle(with_model_json(bundle, lambda info: info["vectorizer"].update({setting: value})))
    assert str(err.value) == f"model.json's vectorizer is not valid: {message}"


def test_vocabulary_entries_longer_than_the_ngrams_or_repeated_are_refused(bundle):
    def edit(words):
        return with_model_json(bundle, lambda info: info["vectorizer"].update(vocabulary=words))

    with pytest.raises(BundleError, match="'jerk chicken' is not 1 or fewer words"):
        import_bundle(edit(["jerk chicken"] + [f"w{i}" for i in range(77)]))
    with pytest.raises(BundleError, match="holds a word twice"):
        import_bundle(edit(["jerk"] * 78))


@pytest.mark.parametrize(
    "dtype, name", [(torch.float64, "F64"), (torch.int64, "I64"), (torch.float16, "F16")]
)
def test_weights_of_another_dtype_are_refused(bundle, dtype, name):
    crafted = with_tensors(bundle, lambda t: t.update({k: v.to(dtype) for k, v in t.items()}))
    with pytest.raises(BundleError) as err:
        import_bundle(crafted)
    assert str(err.value).endswith(f"holds {name} numbers; a model file holds float32 (F32) weights only")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_weights_that_are_not_finite_are_refused(bundle, bad):
    def edit(t):
        t["layer_1.weight"][0, :3] = bad

    with pytest.raises(BundleError) as err:
        import_bundle(with_tensors(bundle, edit))
    assert (
        str(err.value) == "layer_1.weight holds 3 NaN or infinite numbers; a trained model's are all finite"
    )


def test_a_safetensors_header_claiming_a_huge_length_is_refused_unread(bundle):
    parts = unzip(bundle)
    parts["model.safetensors"] = (10**12).to_bytes(8, "little") + parts["model.safetensors"][8:]
    with pytest.raises(BundleError) as err:
        import_bundle(zip_parts(parts))
    assert "its header claims 1,000,000,000,000 bytes" in str(err.value)


def test_tensor_byte_ranges_must_match_their_shapes(bundle):
    from ffnlp_core.runs.bundle import check_weights, read_header

    weights = unzip(bundle)["model.safetensors"]
    header = read_header(weights)
    header["output_layer.bias"]["data_offsets"][1] += 4  # one float more than its shape holds
    expected = {k: tuple(v["shape"]) for k, v in header.items()}
    with pytest.raises(BundleError, match=r"output_layer.bias's bytes .* do not match its shape \(2,\)"):
        check_weights(header, expected, len(weights))


@pytest.mark.parametrize("hidden", [[], [7], [5, 3, 4]])
@pytest.mark.parametrize("activation", ["none", "relu", "tanh", "sigmoid", "gelu"])
def test_expected_shapes_are_the_networks_own(hidden, activation):
    from ffnlp_core.nn.model import FeedForwardClassifier
    from ffnlp_core.runs.bundle import expected_shapes

    model = FeedForwardClassifier(11, hidden, activation, n_classes=3)
    assert expected_shapes(11, hidden, 3) == {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_every_refusal_is_one_line(bundle, monkeypatch):
    crafted = [
        zip_with(unzip(bundle) | {"model.json": b" " * 1000}, zipfile.ZIP_BZIP2),
        with_model_json(bundle, lambda info: info["vectorizer"].update(ngram_max=10**6)),
        with_tensors(bundle, lambda t: t.update({k: v.double() for k, v in t.items()})),
        with_model_json(bundle, lambda info: info.update(classes=["a\nb", "c"] * 30)),
    ]
    for data in crafted:
        with pytest.raises(BundleError) as err:
            import_bundle(data)
        assert "\n" not in str(err.value)
