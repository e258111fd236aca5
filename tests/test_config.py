"""Tests for ffnlp_core.config: the lecture's defaults, JSON in and out, and refusals that say what to do."""

import json

import pytest

from ffnlp_core.config import (
    ACTIVATIONS,
    DEVICES,
    ENGINES,
    MAX_HIDDEN_LAYERS,
    MAX_SEED,
    MAX_SNAPSHOT_ROWS,
    OPTIMIZERS,
    VECTORIZERS,
    ConfigError,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    declared,
)


def changed() -> RunConfig:
    """A config that differs from the defaults in every section (and in types: None, lists, bools)."""
    cfg = RunConfig()
    cfg.data.source, cfg.data.text_column, cfg.data.label_column = "some.csv", "tweet", "class"
    cfg.data.vectorizer, cfg.data.ngram_max, cfg.data.min_df, cfg.data.max_features = "tfidf", 2, 3, 500
    cfg.data.dev_fraction, cfg.data.split_seed = 0.25, 7
    cfg.model.hidden_sizes, cfg.model.activation, cfg.model.dropout = [64, 8], "relu", 0.3
    cfg.train.optimizer, cfg.train.lr, cfg.train.momentum = "sgd", 0.05, 0.5
    cfg.train.batch_size, cfg.train.epochs, cfg.train.eval_every, cfg.train.seed = 16, 4, 9, 42
    cfg.train.fast, cfg.train.skip_zero_grad, cfg.train.snapshot_rows = False, True, 0
    return cfg.validate()


# ---- defaults ------------------------------------------------------------------------------------------


def test_defaults_are_the_lectures():
    cfg = RunConfig()
    assert cfg.model.hidden_sizes == [100, 100, 100]
    assert cfg.model.activation == "none"
    assert cfg.model.dropout == 0.0
    assert cfg.train.optimizer == "adam"
    assert cfg.train.lr == 1e-3
    assert cfg.train.batch_size == 32
    assert cfg.train.epochs == 1
    assert cfg.train.seed == 0
    assert cfg.data.source == "builtin:interaction"
    assert cfg.data.vectorizer == "counts"
    assert cfg.data.dev_fraction == 0.2
    assert cfg.validate() is cfg


def test_default_hidden_sizes_are_not_shared_between_configs():
    a, b = RunConfig(), RunConfig()
    a.model.hidden_sizes.append(5)
    assert b.model.hidden_sizes == [100, 100, 100]


def test_registries_hold_the_choices_the_defaults_use():
    cfg = RunConfig()
    assert cfg.model.activation in ACTIVATIONS
    assert cfg.train.optimizer in OPTIMIZERS
    assert cfg.data.vectorizer in VECTORIZERS
    assert cfg.train.device in DEVICES
    assert cfg.train.engine in ENGINES
    assert set(ACTIVATIONS) == {"none", "relu", "tanh", "sigmoid", "gelu"}


# ---- JSON in and out -----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [RunConfig, changed], ids=["defaults", "changed"])
def test_dict_round_trip_is_exact(make):
    cfg = make()
    d = cfg.to_dict()
    assert set(d) == {"data", "model", "train"}
    back = RunConfig.from_dict(d)
    assert back == cfg
    assert back.to_dict() == d


@pytest.mark.parametrize("make", [RunConfig, changed], ids=["defaults", "changed"])
def test_json_round_trip_is_exact(make):
    cfg = make()
    text = cfg.to_json()
    back = RunConfig.from_json(text)
    assert back == cfg
    assert back.to_json() == text
    assert json.loads(text)["model"]["hidden_sizes"] == cfg.model.hidden_sizes


def test_changed_values_survive_json():
    back = RunConfig.from_json(changed().to_json())
    assert back.data.max_features == 500 and back.data.text_column == "tweet"
    assert back.model.hidden_sizes == [64, 8] and back.model.dropout == 0.3
    assert back.train.lr == 0.05 and back.train.fast is False and back.train.seed == 42


def test_from_dict_fills_missing_sections_and_fields_with_defaults():
    cfg = RunConfig.from_dict({"train": {"epochs": 3}})
    assert cfg.train.epochs == 3
    assert cfg.train.lr == 1e-3
    assert cfg.model == ModelConfig() and cfg.data == DataConfig()


@pytest.mark.parametrize(
    "d, names",
    [
        ({"train": {"epochz": 3}}, ["epochz", "train"]),
        ({"model": {"hidden": [10]}}, ["hidden", "model"]),
        ({"data": {"colum": "x", "min_dff": 2}}, ["colum", "min_dff"]),
        ({"trian": {"epochs": 3}}, ["trian"]),
        ({"data": {}, "extra": 1, "optim": {}}, ["extra", "optim"]),
    ],
)
def test_from_dict_refuses_unknown_keys_and_sections_by_name(d, names):
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict(d)
    for name in names:
        assert name in str(err.value)


# ---- validation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "section, field, value, says",
    [
        ("train", "lr", 0.0, ["learning rate", "0.0", "try 0.001"]),
        ("train", "lr", 1e6, ["learning rate", "1000000.0"]),
        ("train", "lr", -0.1, ["learning rate", "-0.1"]),
        ("train", "batch_size", 0, ["batch size", "got 0"]),
        ("train", "epochs", 0, ["epoch", "got 0"]),
        ("model", "dropout", 1.0, ["dropout", "1.0"]),
        ("model", "hidden_sizes", [10] * (MAX_HIDDEN_LAYERS + 1), ["at most 8 hidden layers", "got 9"]),
        ("model", "hidden_sizes", [100, 0], ["hidden width", "[100, 0]"]),
        ("model", "hidden_sizes", [5000], ["hidden width", "[5000]"]),
        ("model", "activation", "swish", ["'swish'", "relu"]),
        ("train", "optimizer", "rmsprop", ["'rmsprop'", "adam"]),
        ("train", "device", "tpu", ["'tpu'", "cuda"]),
        ("train", "engine", "jax", ["'jax'", "lightning"]),
        ("data", "vectorizer", "word2vec", ["'word2vec'", "tfidf"]),
        ("data", "dev_fraction", 0.0, ["dev fraction", "0.0"]),
        ("data", "dev_fraction", 1.0, ["dev fraction", "1.0"]),
        ("data", "ngram_max", 3, ["n-grams", "got 3"]),
        ("data", "min_df", 0, ["min_df", "got 0"]),
        ("data", "max_features", 0, ["vocabulary", "got 0"]),
        ("train", "snapshot_rows", MAX_SNAPSHOT_ROWS + 1000, ["snapshot rows", "6000", "5000"]),
        ("train", "momentum", 1.0, ["momentum", "1.0"]),
        ("train", "weight_decay", -1.0, ["weight decay", "-1.0"]),
        ("train", "weight_decay", float("inf"), ["weight decay must be from 0.0 to 1.0", "got inf"]),
        ("train", "weight_decay", float("nan"), ["weight decay must be from 0.0 to 1.0", "got nan"]),
        ("train", "lr", float("inf"), ["learning rate", "got inf"]),
        ("train", "eval_every", -1, ["eval interval", "-1"]),
    ],
)
def test_validate_refuses_nonsense_and_says_what_was_wrong(section, field, value, says):
    cfg = RunConfig()
    setattr(getattr(cfg, section), field, value)
    with pytest.raises(ConfigError) as err:
        cfg.validate()
    for text in says:
        assert text in str(err.value)


def test_validate_accepts_the_edges_of_each_range():
    cfg = RunConfig()
    cfg.train.lr = 10.0
    cfg.train.batch_size, cfg.train.epochs = 1, 1
    cfg.model.hidden_sizes = [4096] * MAX_HIDDEN_LAYERS
    cfg.model.dropout = 0.99
    cfg.train.snapshot_rows = MAX_SNAPSHOT_ROWS
    cfg.data.dev_fraction = 0.01
    assert cfg.validate() is cfg
    cfg.model.hidden_sizes = []  # no hidden layer: logistic regression
    assert cfg.validate() is cfg


def test_each_section_validates_on_its_own():
    with pytest.raises(ConfigError, match="learning rate"):
        TrainConfig(lr=0).validate()
    with pytest.raises(ConfigError, match="activation"):
        ModelConfig(activation="step").validate()
    with pytest.raises(ConfigError, match="dev fraction"):
        DataConfig(dev_fraction=2).validate()


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


# ---- declared settings: the widgets' bounds are validate()'s bounds --------------------------------------

DECLARED = [
    (section, name, s)
    for section, kind in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig))
    for name, s in declared(kind).items()
]
SWITCHES = [(sec, name, s) for sec, name, s in DECLARED if s["choices"] is None and s["min"] is None]
RANGED = [(sec, name, s) for sec, name, s in DECLARED if s["choices"] is None and s["min"] is not None]


def _with(section, name, value):
    cfg = RunConfig()
    if section == "train" and name in ("devices",):
        cfg.train.engine = "lightning"  # several devices need the Lightning engine (a check beyond bounds)
    setattr(getattr(cfg, section), name, value)
    return cfg


def test_every_declared_field_has_a_label_and_either_choices_a_range_or_a_switch():
    assert len(DECLARED) >= 20
    for section, name, s in DECLARED:
        assert s["label"], (section, name)
        switch = isinstance(getattr(RunConfig(), section).__getattribute__(name), bool)
        assert s["choices"] is not None or s["min"] is not None or switch, (section, name)


@pytest.mark.parametrize("section, name, s", SWITCHES, ids=[f"{a}.{b}" for a, b, _ in SWITCHES])
def test_declared_switches_take_true_or_false_only(section, name, s):
    assert _with(section, name, True).validate() and _with(section, name, False).validate()
    for bad in (None, 1, "yes"):
        with pytest.raises(ConfigError, match="true or false"):
            _with(section, name, bad).validate()


@pytest.mark.parametrize("section, name, s", RANGED, ids=[f"{a}.{b}" for a, b, _ in RANGED])
def test_declared_bounds_are_accepted_and_just_outside_them_refused(section, name, s):
    lo, hi = s["min"], s["max"]
    eps = 1 if isinstance(lo, int) and isinstance(s["step"], int) else min(1e-9, lo or 1e-9)
    assert _with(section, name, lo).validate()
    with pytest.raises(ConfigError, match="must be"):
        _with(section, name, lo - eps).validate()
    if hi is not None:
        assert _with(section, name, hi).validate()
        with pytest.raises(ConfigError, match="must be"):
            _with(section, name, hi + eps).validate()


@pytest.mark.parametrize("section, name, s", [d for d in DECLARED if d[2]["choices"] is not None])
def test_declared_choices_are_accepted_and_others_refused(section, name, s):
    for choice in s["choices"]:
        assert _with(section, name, choice).validate()
    with pytest.raises(ConfigError, match="unknown"):
        _with(section, name, "no-such-choice").validate()


def test_the_seed_bound_is_one_value():
    assert declared(TrainConfig)["seed"]["max"] == MAX_SEED == 2**32 - 1
    assert _with("train", "seed", 2**32 - 1).validate()
    with pytest.raises(ConfigError, match="seed"):
        _with("train", "seed", 2**32).validate()
