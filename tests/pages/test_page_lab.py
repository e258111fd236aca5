"""Page tests (AppTest) of Noise lab (/lab): Train with some labels flipped trains a run on a noisy copy of
the data, then shows the per-class table on dev and the highest-loss training comments (read through
the page's keys and visible texts only)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("app_env")


def table_with(at, column: str):
    """The one table on the page that has `column`."""
    (table,) = [d.value for d in at.dataframe if column in d.value.columns]
    return table


def test_lab_trains_with_flipped_labels_and_lists_per_class_and_hard_comments(open_page, workspace_of):
    from pages import _common as ui

    at = open_page("lab", timeout=120)
    ws = workspace_of(at)
    at.slider(key="lab_noise").set_value(0.2)
    at.number_input(key="lab_epochs").set_value(3)
    at.button(key="lab_start").click().run()
    assert not at.exception, at.exception
    jobs = ui.manager().jobs_of(ws.sid)
    assert len(jobs) == 1
    job = jobs[0]
    assert job.wait(120) and job.status == "finished", job.reason
    assert job.cfg.data.label_noise == pytest.approx(0.2) and job.cfg.train.epochs == 3
    flipped = job.ds.train_flipped
    assert int(flipped.sum()) == round(0.2 * 3200)  # the lab's own noisy copy of the data ...
    assert ws.dataset.train_flipped is None or int(ws.dataset.train_flipped.sum()) == 0  # ... not the user's
    at.run()
    assert not at.exception, at.exception
    per_class = table_with(at, "F1")  # lab_per_class (AppTest does not expose a dataframe's key)
    assert list(per_class["class"]) == ws.dataset.class_names
    assert int(per_class["dev comments"].sum()) == 800  # the untouched dev split
    assert per_class[["precision", "recall", "F1"]].stack().between(0, 1).all()
    hard = table_with(at, "flipped")  # lab_hard_table
    assert len(hard) == at.number_input(key="lab_hard").value == 20
    assert (hard["loss"].diff().dropna() <= 1e-9).all()  # highest loss first
    # a comment is flipped exactly when the label it was trained on is not its true label
    assert ((hard["trained as"] != hard["true label"]) == hard["flipped"]).all()
    assert hard["flipped"].sum() > 0.2 * len(hard)  # mislabeled rows gather among the hardest
    texts = " ".join(c.value for c in at.caption)
    assert f"{round(0.2 * 3200):,} of 3,200 training labels flipped" in texts
