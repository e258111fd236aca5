"""Page tests (AppTest) of Home (/): the steps, and the data, model and run at a glance; the data card
says "counting words…" while the server's first bag of words is still being built."""

from __future__ import annotations

import threading

import pytest

pytestmark = pytest.mark.usefixtures("app_env")


def card_texts(at) -> str:
    return " ".join(t.value for t in at.text) + " ".join(c.value for c in at.caption)


def test_home_shows_the_steps_and_the_current_data(open_page):
    from pages import _datasets

    at = open_page("home")
    assert "feedforward network" in at.title[0].value
    assert "built-in: interaction" in card_texts(at)
    _datasets.wait_idle()  # the first page does not wait for the bag of words: the next run shows it
    at.run()
    assert not at.exception
    texts = card_texts(at)
    assert "built-in: interaction" in texts
    assert "4,000 comments" in texts and "2 classes" in texts and "vocabulary 78" in texts
    # the model card: the default 3 x 100 network on 78 words and 2 classes
    assert f"{79 * 100 + 2 * 101 * 100 + 101 * 2:,} parameters" in texts


def test_home_draws_before_the_words_are_counted(open_page, workspace_of):
    from pages import _datasets

    hold = threading.Event()
    _datasets._builds().pool.submit(hold.wait, 30)  # the build thread is busy: the data set must wait
    try:
        at = open_page("home")
        texts = card_texts(at)
        assert "built-in: interaction" in texts and "counting words…" in texts
        assert "parameters" not in texts and "comments ·" not in texts
        assert not workspace_of(at).dataset_ready
    finally:
        hold.set()
    _datasets.wait_idle()
    at.run()
    assert not at.exception
    texts = card_texts(at)
    assert "counting words…" not in texts and "4,000 comments" in texts
    ws = workspace_of(at)
    assert ws.dataset.x_train.shape == (3200, 78)
    assert ws.table is not None and ws.config.data.text_column == "text"  # filled in by the next full run


def test_home_names_the_data_in_use_after_a_refused_upload(open_page, workspace_of):
    """A file that reads but cannot be split (a class with a single comment) is refused on Data; Home keeps
    naming the data still in use, not the refused file."""
    data = open_page("data")
    data.segmented_control(key="data_mode").set_value("upload").run()
    rows = ["text,label"] + [f"comment {i},{'lonely' if i == 0 else 'common'}" for i in range(50)]
    data.file_uploader(key="data_upload").set_value(
        ("singleton.csv", "\n".join(rows).encode(), "text/csv")
    ).run()
    assert any("class" in e.value for e in data.error), [e.value for e in data.error]
    ws = workspace_of(data)
    assert ws.data_name == "singleton.csv" and ws.dataset_name == "built-in: interaction"
    home = open_page("home", sid=ws.sid)
    texts = card_texts(home)
    assert "built-in: interaction" in texts and "singleton.csv" not in texts
