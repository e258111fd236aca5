"""Page tests (AppTest) of Try it (/playground): no model yet points to Train; after a finished run the
prediction shows a class of the data and the word table lists the words of the typed comment."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("app_env")


def test_playground_without_a_run_points_to_train(open_page):
    at = open_page("playground")
    assert "No model yet" in at.info[0].value
    assert not at.metric


def test_playground_predicts_a_typed_comment_and_lists_its_words(open_page, workspace_of):
    from pages import _common as ui

    at = open_page("playground")
    ws = workspace_of(at)
    cfg = ws.config.__class__.from_dict(ws.config.to_dict())
    cfg.model.hidden_sizes, cfg.model.activation, cfg.train.epochs, cfg.train.device = [16], "relu", 3, "cpu"
    job = ui.manager().submit(cfg, ws.dataset, owner=ws.sid)
    ws.remember_run(job.run_id)
    assert job.wait(120) and job.status == "finished", job.reason
    at.run()
    assert not at.exception, at.exception
    at.text_area(key="play_text").set_value("honestly that guy is a jerk zzzunknown").run()
    assert not at.exception, at.exception
    (prediction,) = [m for m in at.metric if m.label == "Prediction"]
    assert prediction.value in ws.dataset.class_names
    assert prediction.delta.endswith("sure")
    probs = next(d.value for d in at.dataframe if "probability" in d.value.columns)
    assert list(probs["class"]) == ws.dataset.class_names
    assert probs["probability"].sum() == pytest.approx(1.0, abs=1e-4)
    assert probs["class"][probs["probability"].idxmax()] == prediction.value
    words = next(d.value for d in at.dataframe if "word" in d.value.columns and "effect" in d.value.columns)
    # one row per word as the vectorizer cuts the comment ("a" is too short to be a word)
    assert sorted(words["word"]) == sorted(["honestly", "that", "guy", "is", "jerk", "zzzunknown"])
    known = dict(zip(words["word"], words["in vocabulary"], strict=True))
    assert known["jerk"] and not known["zzzunknown"]  # a word the network never saw is flagged
