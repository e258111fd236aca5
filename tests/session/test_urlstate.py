"""Tests for ffnlp_core.session.urlstate: a setup survives the trip through a link, garbage and paths are refused,
a workspace is restored from a link once, and the classroom flag is read."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from ffnlp_core.config import RunConfig
from ffnlp_core.session import urlstate
from ffnlp_core.session.workspace import Workspace


def link_value(compact: dict | str) -> str:
    text = compact if isinstance(compact, str) else json.dumps(compact)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def custom_config() -> RunConfig:
    cfg = RunConfig()
    cfg.data.source = "builtin:negation"
    cfg.data.ngram_max, cfg.data.vectorizer, cfg.data.min_df = 2, "tfidf", 2
    cfg.data.label_noise, cfg.data.noise_seed = 0.25, 7
    cfg.data.subsample_class, cfg.data.subsample_keep = "positive", 0.5
    cfg.model.hidden_sizes, cfg.model.activation, cfg.model.dropout = [64, 8], "relu", 0.2
    cfg.train.optimizer, cfg.train.lr, cfg.train.batch_size, cfg.train.epochs = "sgd", 0.05, 16, 7
    cfg.train.seed, cfg.train.fast, cfg.train.hard_examples = 123, False, 20
    cfg.data.max_features = 500
    return cfg.validate()


def test_a_config_round_trips_through_the_link():
    cfg = custom_config()
    value, notes = urlstate.encode(cfg)
    assert notes == []
    assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert urlstate.decode(value) == cfg


def test_the_link_holds_only_what_differs_from_the_defaults():
    cfg = RunConfig()
    cfg.model.activation = "tanh"
    value, _ = urlstate.encode(cfg)
    assert json.loads(base64.urlsafe_b64decode(value + "==")) == {"model": {"activation": "tanh"}}
    assert urlstate.decode(value) == cfg
    assert urlstate.decode(urlstate.encode(RunConfig())[0]) == RunConfig()  # "e30" = {}


def test_own_data_does_not_travel_in_a_link():
    cfg = RunConfig()
    cfg.data.source, cfg.data.text_column, cfg.data.label_column = "upload:mine.csv", "comment", "verdict"
    cfg.model.hidden_sizes = [10]
    value, notes = urlstate.encode(cfg)
    assert notes and "built-in" in notes[0]
    back = urlstate.decode(value)
    assert back.data.source == RunConfig().data.source and back.data.text_column is None
    assert back.model.hidden_sizes == [10]


@pytest.mark.parametrize(
    "value, says",
    [
        ("", "empty"),
        ("x" * 5000, "too long"),
        ("%%%not-base64%%%", "not readable"),
        (link_value("{not json"), "not readable"),
        (link_value("[1, 2]"), "not a set of settings"),
        (link_value({"weights": {"a": 1}}), "unknown part"),
        (link_value({"model": {"depth": 3}}), "unknown model setting"),
        (link_value({"model": {"hidden_sizes": "100,100"}}), r"should be list\[int\]"),
        (link_value({"train": {"lr": "fast"}}), "should be float"),
        (link_value({"train": {"epochs": True}}), "should be int"),
        (link_value({"train": {"fast": "yes"}}), "should be bool"),
        (link_value({"train": {"lr": -1.0}}), "learning rate"),
        (link_value({"model": {"activation": "softsign"}}), "unknown activation"),
        (link_value({"data": {"source": "/etc/passwd"}}), "built-in data set"),
        (link_value({"data": {"source": "builtin:nope"}}), "built-in data set"),
    ],
)
def test_garbage_is_refused_with_a_clear_message(value, says):
    with pytest.raises(urlstate.UrlStateError, match=says):
        urlstate.decode(value)


def test_share_link_points_at_a_page_without_session_or_run():
    cfg = custom_config()
    link = urlstate.share_link("http://host:8501/compare?sid=abc123&run=r1", cfg, page="model")
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "host:8501", "/model")
    query = parse_qs(parts.query)
    assert set(query) == {"cfg"}
    assert urlstate.decode(query["cfg"][0]) == cfg
    under = urlstate.share_link("https://x.org/apps/ffnlp/compare", cfg, page="train", classroom=True)
    parts = urlsplit(under)
    assert parts.path == "/apps/ffnlp/train" and parse_qs(parts.query)["classroom"] == ["1"]
    assert urlsplit(urlstate.share_link("http://h/", cfg)).path == "/model"


@pytest.mark.parametrize(
    "params, flag",
    [({"classroom": "1"}, True), ({"classroom": "true"}, True), ({"classroom": "0"}, False), ({}, None)],
)
def test_classroom_flag(params, flag):
    assert urlstate.classroom_flag(params) is flag


def test_a_link_restores_data_and_config_into_a_workspace_once():
    ws = Workspace(sid="abcdef123")
    cfg = custom_config()
    value, _ = urlstate.encode(cfg)
    assert urlstate.apply_to_workspace(ws, {"cfg": value}) is True
    assert ws.config.model == cfg.model and ws.config.train == cfg.train
    assert ws.config.data.source == "builtin:negation" and ws.upload_key == "builtin:negation"
    assert ws.dataset.class_names == ["negative", "positive"]
    # the data settings were applied when building: noise flips exactly round(0.25 * n) train labels
    assert int(ws.dataset.train_flipped.sum()) == round(0.25 * len(ws.dataset.y_train))
    assert any(" " in w for w in ws.dataset.vectorizer.vocabulary_)  # bigrams on
    ws.config.model.dropout = 0.5  # a later edit is not undone by a reload of the same link
    assert urlstate.apply_to_workspace(ws, {"cfg": value}) is False
    assert ws.config.model.dropout == 0.5


def test_a_bad_link_leaves_the_workspace_untouched():
    ws = Workspace(sid="abcdef123")
    before = ws.config.to_dict()
    with pytest.raises(urlstate.UrlStateError):
        urlstate.apply_to_workspace(ws, {"cfg": link_value({"data": {"text_column": "nope"}})})
    assert ws.config.to_dict() == before and ws.dataset is None
    assert urlstate.apply_to_workspace(ws, {}) is False
    # the same bad link is not tried again on every rerun; a good one still applies
    assert urlstate.apply_to_workspace(ws, {"cfg": link_value({"data": {"text_column": "nope"}})}) is False
    assert urlstate.apply_to_workspace(ws, {"cfg": urlstate.encode(custom_config())[0]}) is True
