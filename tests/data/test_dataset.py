"""Tests for ffnlp_core.data.dataset: class names given in the data settings rename the classes everywhere
the data set is read (and are refused when two classes would share a name or a name is empty)."""

import numpy as np
import pytest

from ffnlp_core.config import ConfigError, DataConfig, RunConfig
from ffnlp_core.data.dataset import build_dataset, load_source
from ffnlp_core.data.errors import DataError


def csv(n: int = 90) -> bytes:
    rows = ["text,label"] + [f"{'awful slow' if i % 3 == 0 else 'great fun'} {i},{i % 3}" for i in range(n)]
    return "\n".join(rows).encode()


def test_named_classes_keep_their_label_ids_and_rows():
    cfg = DataConfig()
    plain = build_dataset(load_source(cfg, csv(), "three.csv"), cfg)
    cfg.class_names = {"0": "hate speech", "2": "neither"}
    named = build_dataset(load_source(cfg, csv(), "three.csv"), cfg)
    assert plain.class_names == ["0", "1", "2"] and named.class_names == ["hate speech", "1", "neither"]
    np.testing.assert_array_equal(named.y_dev, plain.y_dev)
    assert named.summary()["classes"] == ["hate speech", "1", "neither"]


def test_two_classes_with_one_name_are_refused():
    cfg = DataConfig(class_names={"0": "same", "1": "same"})
    with pytest.raises(DataError, match="same name"):
        build_dataset(load_source(cfg, csv(), "three.csv"), cfg)


@pytest.mark.parametrize("names", [{"0": ""}, {"0": "x" * 61}, {"0": 3}, "0=hate"])
def test_bad_class_names_are_refused_by_the_config(names):
    cfg = RunConfig()
    cfg.data.class_names = names
    with pytest.raises(ConfigError, match="class"):
        cfg.validate()


def test_class_names_survive_the_config_round_trip():
    cfg = RunConfig()
    cfg.data.class_names = {"0": "hate speech"}
    assert RunConfig.from_json(cfg.to_json()).data.class_names == {"0": "hate speech"}
    assert RunConfig.from_dict({"data": {}, "model": {}, "train": {}}).data.class_names == {}
