"""Tests of pages/_datasets.py through the pages: sessions on the same data, and a class opening the same
shared link, get one data set built once for the whole server."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("app_env")


def test_sessions_on_the_same_data_share_one_dataset(open_page, workspace_of):
    first, second = open_page("train"), open_page("train")
    a, b = workspace_of(first), workspace_of(second)
    assert a.sid != b.sid
    assert a.dataset is b.dataset  # built once for the whole server, not once per session
    assert a.dataset.x_train.shape == (3200, 78)


def test_a_shared_link_opened_by_a_class_builds_its_dataset_once(open_page, workspace_of):
    from ffnlp_core.config import RunConfig
    from ffnlp_core.session import urlstate

    cfg = RunConfig()
    cfg.data.label_noise, cfg.data.noise_seed = 0.25, 3  # same data, same words: only the noise differs
    value, _ = urlstate.encode(cfg.validate())
    linked = [workspace_of(open_page("train", cfg=value)) for _ in range(2)]
    assert linked[0].sid != linked[1].sid and linked[0].dataset is linked[1].dataset
    noisy = linked[0].dataset
    assert int(noisy.train_flipped.sum()) == round(0.25 * len(noisy.y_train))
    plain = workspace_of(open_page("train")).dataset  # no link: the data without noise, not the noisy one
    assert plain is not noisy and int(plain.train_flipped.sum()) == 0
