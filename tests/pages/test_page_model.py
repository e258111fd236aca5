"""Page tests (AppTest) of Model (/model): the Lightning-style summary of the layers, and Apply."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("app_env")


def test_model_summary_and_apply(open_page):
    at = open_page("model")
    table = at.dataframe[0].value
    assert list(table["name"]) == ["layer_0", "layer_1", "layer_2", "output_layer"]
    assert list(table["params"]) == [f"{79 * 100:,}", f"{101 * 100:,}", f"{101 * 100:,}", f"{101 * 2:,}"]
    at.number_input(key="model_layers").set_value(2)
    at.number_input(key="model_width").set_value(16)
    at.selectbox(key="model_activation").set_value("relu")
    at.button[0].click().run()  # the form's Apply
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["name"]) == ["layer_0", "layer_1", "output_layer"]
    assert list(table["params"]) == [f"{(78 + 1) * 16:,}", f"{17 * 16:,}", f"{17 * 2:,}"]


def test_model_applies_a_weight_initialization(open_page, workspace_of):
    at = open_page("model")
    assert at.selectbox(key="model_init").value == "default"
    at.selectbox(key="model_init").set_value("xavier")
    at.button[0].click().run()
    assert not at.exception
    assert workspace_of(at).config.model.init == "xavier"
