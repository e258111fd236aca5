"""Page tests (AppTest) of Data (/data): the built-in sets, an upload with its columns guessed, and
refused files and settings that keep the previous data (also across sessions), and, in the app's
frame, the notice while a server's first seconds still count the built-in comments."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("app_env")

APP = Path(__file__).resolve().parents[2] / "app.py"
EXCEL = ("book.csv", b"PK\x03\x04" + b"\0" * 100, "text/csv")  # an Excel workbook renamed .csv


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_data_defaults_to_the_builtin_comments_and_switches_sets(open_page):
    at = open_page("data")
    assert metric(at, "Comments kept") == "4,000"
    assert at.selectbox(key="data_text_column").value == "text"
    assert at.selectbox(key="data_label_column").value == "label"
    at.selectbox(key="data_sample").set_value("topics").run()
    assert not at.exception
    assert metric(at, "Comments kept") == "3,000"
    classes = {row["class"] for row in at.dataframe[0].value.to_dict("records")}
    assert classes == {"food", "music", "sports", "tech"}


def test_a_page_that_needs_the_data_shows_its_title_at_once_and_the_page_once_the_data_is_there(monkeypatch):
    """In the app's frame (app.py), a server's first seconds: Data is drawn at once as its title and a
    notice, without running the page's script (its imports would wait on the build's), then itself; the
    browser loads Plotly's code ahead only once the data is there."""
    from streamlit.testing.v1 import AppTest

    from pages import _datasets, _server

    gate, read = threading.Event(), _datasets._read_builtin
    monkeypatch.setattr(_server, "after_first_page", lambda: None)  # no warm-up thread in a page test
    monkeypatch.setattr(_datasets, "_read_builtin", lambda name: (gate.wait(30), read(name))[1])
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception and "counting words…" in [c.value for c in at.caption]  # Home draws anyway
    assert "PlotlyChart." not in warm_script(at)  # its 1.6 s of browser work would delay the next click
    at.switch_page("pages/data.py").run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Data"]
    assert [i.value for i in at.info] == ["Reading the built-in comments and counting words…"]
    assert not at.metric and not at.selectbox
    gate.set()
    _datasets.wait_idle()
    at.run()
    assert not at.exception and not at.info
    assert metric(at, "Comments kept") == "4,000"
    assert warm_script(at).count("PlotlyChart.") == 1  # the data is there: charts are loaded ahead


def warm_script(at) -> str:
    """The script of the sidebar's frame (`pages/_browser.keep_url`): the element code it loads ahead."""
    (frame,) = at.sidebar.get("iframe")
    return frame.proto.srcdoc


def test_data_upload_picks_columns_and_a_bad_file_keeps_the_previous_data(open_page):
    at = open_page("data")
    at.segmented_control(key="data_mode").set_value("upload").run()
    rows = ["id;review;stars"] + [
        f"{i};{'great fun' if i % 2 else 'awful and slow'} {i};{i % 2}" for i in range(60)
    ]
    at.file_uploader(key="data_upload").set_value(("reviews.csv", "\n".join(rows).encode(), "text/csv")).run()
    assert not at.exception
    assert at.selectbox(key="data_text_column").value == "review"
    assert at.selectbox(key="data_label_column").value == "stars"
    assert metric(at, "Comments kept") == "60"
    # the core's message is shown and the previous data stays
    at.file_uploader(key="data_upload").set_value(EXCEL).run()
    assert any("Excel" in e.value for e in at.error)
    assert metric(at, "Comments kept") == "60"


def test_data_min_df_too_high_is_refused_with_a_message(open_page):
    at = open_page("data")
    at.number_input(key="data_min_df").set_value(5000).run()  # more than the 3,200 training comments
    assert any("min\\_df" in e.value for e in at.error)  # Markdown-escaped: shown as "min_df"
    assert metric(at, "Comments kept") == "4,000"  # the previous data set is still there


def test_a_refused_upload_never_shows_another_sessions_data(open_page, workspace_of):
    # The same column names as the built-in data: only the files tell the two sessions' data apart.
    rows = ["text,label"] + [f"{'great fun' if i % 2 else 'awful and slow'} {i},{i % 2}" for i in range(60)]
    first = open_page("data")
    first.segmented_control(key="data_mode").set_value("upload").run()
    first.file_uploader(key="data_upload").set_value(
        ("reviews.csv", "\n".join(rows).encode(), "text/csv")
    ).run()
    first.file_uploader(key="data_upload").set_value(EXCEL).run()
    assert metric(first, "Comments kept") == "60"
    # Another student uploads the same broken file: they keep their own (built-in) data.
    second = open_page("data")
    second.segmented_control(key="data_mode").set_value("upload").run()
    second.file_uploader(key="data_upload").set_value(EXCEL).run()
    assert any("Excel" in e.value for e in second.error)
    assert metric(second, "Comments kept") == "4,000"
    assert workspace_of(second).dataset.x_train.shape[0] == 3200
    second.run()  # the refused file is not read again, and its message stays while it is in the box
    assert any("Excel" in e.value for e in second.error)
    assert metric(second, "Comments kept") == "4,000"


def test_classes_named_on_data_reach_the_dataset_the_config_and_a_share_link(open_page, workspace_of):
    from ffnlp_core.session import urlstate

    at = open_page("data")
    at.segmented_control(key="data_mode").set_value("upload").run()
    rows = ["text,label"] + [f"{'awful slow' if i % 3 == 0 else 'great fun'} {i},{i % 3}" for i in range(90)]
    at.file_uploader(key="data_upload").set_value(("three.csv", "\n".join(rows).encode(), "text/csv")).run()
    assert not at.exception
    ws = workspace_of(at)
    assert ws.dataset.class_names == ["0", "1", "2"]
    at.text_input(key="data_class_name_0").set_value("hate speech").run()
    at.text_input(key="data_class_name_2").set_value("neither").run()
    assert not at.exception
    assert ws.config.data.class_names == {"0": "hate speech", "2": "neither"}
    assert ws.dataset.class_names == ["hate speech", "1", "neither"]
    classes = {row["class"] for row in at.dataframe[0].value.to_dict("records")}
    assert classes == {"hate speech", "1", "neither"}  # the examples table uses the names
    value, _ = urlstate.encode(ws.config)
    assert urlstate.decode(value).data.class_names == {"0": "hate speech", "2": "neither"}
    at.text_input(key="data_class_name_2").set_value("hate speech").run()  # two classes, one name
    assert any("same name" in e.value for e in at.error)


def test_user_values_in_an_error_stay_text_never_markdown(open_page):
    """A column name holding Markdown ('[answers](https://example.org)') is named in the error as typed."""
    at = open_page("data")
    at.segmented_control(key="data_mode").set_value("upload").run()
    rows = ["comment,[answers](https://example.org)"] + [f"some words number {i},same" for i in range(40)]
    at.file_uploader(key="data_upload").set_value(("md.csv", "\n".join(rows).encode(), "text/csv")).run()
    assert at.error, "the file should be refused"
    shown = " ".join(e.value for e in at.error)
    assert "\\[answers\\]\\(https\\://example.org\\)" in shown, shown  # escaped: shown as typed
    from pages._helpers import plain

    assert plain("[answers](https://example.org)") == "\\[answers\\]\\(https\\://example.org\\)"
    assert plain("# big\n1. item :red[x]") == "\\# big\n1\\. item \\:red\\[x\\]"
    assert plain("Cannot start: batch size 3.5") == "Cannot start: batch size 3.5"  # plain prose unchanged
