"""The bad-input matrix (tests/bad_inputs.py): each case gets a clear message from the core, a non-zero exit
and a one-line message from the CLI, and in the app an error while the previous data and runs stay intact.
Nonsense hyperparameters are refused with a message."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from bad_inputs import CASES
from streamlit.testing.v1 import AppTest

from ffnlp_core.cli import main as cli_main
from ffnlp_core.config import ConfigError, DataConfig, RunConfig
from ffnlp_core.data.dataset import build_dataset, load_source
from ffnlp_core.data.errors import DataError
from ffnlp_core.data.labels import load_labeled
from ffnlp_core.train.plan import check_fits

ROOT = Path(__file__).resolve().parents[1]
IDS = [c.name for c in CASES]


def load(case):
    labeled = load_labeled(case.data, case.text_column, case.label_column, name="upload.csv")
    return labeled, build_dataset(labeled, DataConfig(min_df=case.min_df))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_core(case):
    if case.error:
        with pytest.raises(DataError) as err:
            load(case)
        assert case.error in str(err.value)
        assert "upload.csv" in str(err.value) or "min_df" in str(err.value)  # where, or what to change
        return
    labeled, ds = load(case)
    assert len(labeled.texts) == case.kept
    assert labeled.dropped == (case.dropped or {})
    assert ds.n_classes == 2


def test_accents_quotes_and_long_comments_come_through_exactly():
    by_name = {c.name: c for c in CASES}
    assert load(by_name["latin-1 accents"])[0].texts[0] == "crème brûlée à la café 0"
    assert load(by_name["utf-16"])[0].texts[1] == "naïve café comment 1"
    assert load(by_name["quoted newlines and quotes"])[0].texts[2] == 'line one 2\nline "two" here'
    assert len(load(by_name["a 100,000-character comment"])[0].texts[3]) == 100_000
    assert load(by_name["utf-16 without a BOM"])[0].texts[1] == "naïve café comment 1"
    assert load(by_name["labels beyond int64"])[1].class_names == [
        "100000000000000000000",
        "200000000000000000000",
    ]


@pytest.mark.slow
def test_a_50_mb_file_loads_and_vectorizes():
    words = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "a",
        "lazy",
        "dog",
        "while",
        "students",
        "watch",
        "the",
        "loss",
        "fall",
    ]
    lines = [
        f'"{" ".join(words[(i + k) % len(words)] for k in range(14))} #{i}",{i % 2}' for i in range(620_000)
    ]
    data = ("text,label\n" + "\n".join(lines)).encode()
    assert len(data) > 50e6
    labeled = load_labeled(data, name="big.csv")
    ds = build_dataset(labeled, DataConfig(min_df=2))
    assert len(labeled.texts) == 620_000 and ds.x_train.shape[0] == 496_000


@pytest.mark.parametrize("case", [c for c in CASES if c.error], ids=[c.name for c in CASES if c.error])
def test_cli_exits_non_zero_with_one_line(case, tmp_path, capsys):
    path = tmp_path / "upload.csv"
    path.write_bytes(case.data)
    argv = ["train", "--csv", str(path), "--min-df", str(case.min_df)]
    if case.text_column:
        argv += ["--text-column", case.text_column, "--label-column", case.label_column]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and case.error in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "change, message",
    [
        ({"lr": 1e6}, "learning rate must be from 1e-06 to 10.0, got 1000000.0; try 0.001"),
        ({"lr": 0.0}, "learning rate must be from 1e-06 to 10.0, got 0.0; try 0.001"),
        ({"batch_size": 0}, "batch size must be from 1 to 100000, got 0"),
        ({"epochs": 0}, "epochs must be from 1 to 1000, got 0"),
    ],
)
def test_nonsense_hyperparameters_are_refused(change, message):
    cfg = RunConfig()
    for k, v in change.items():
        setattr(cfg.train, k, v)
    with pytest.raises(ConfigError) as err:
        cfg.validate()
    assert message in str(err.value)


def test_a_batch_larger_than_the_data_is_refused():
    cfg = RunConfig()
    cfg.train.batch_size = 10_000
    ds = build_dataset(load_source(cfg.data), cfg.data)
    with pytest.raises(ConfigError) as err:
        check_fits(cfg, ds)
    assert "larger than the 3,200 training comments" in str(err.value)


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("FFNLP_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FFNLP_WORKERS", "thread")
    monkeypatch.setenv("FFNLP_UMAP", "0")
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "pages" / "data.py"), default_timeout=60)
    at.run()
    yield at
    from pages import _common as ui

    ui.manager().shutdown()
    st.cache_resource.clear()


def kept(at) -> str:
    return next(m.value for m in at.metric if m.label == "Comments kept")


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.error and c.min_df == 1 and not c.text_column],
    ids=[c.name for c in CASES if c.error and c.min_df == 1 and not c.text_column],
)
def test_app_shows_the_message_and_keeps_the_previous_data(app, case):
    at = app
    from pages import _common as ui

    ws = ui.workspaces().get(at.session_state["sid"])
    ws.remember_run("20990101-000000-keep00")  # a run the user has: a bad file must not touch it
    assert kept(at) == "4,000"
    at.segmented_control(key="data_mode").set_value("upload").run()
    at.file_uploader(key="data_upload").set_value(("upload.csv", case.data, "text/csv")).run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert case.error in errors
    assert kept(at) == "4,000"  # still the built-in comments
    assert ws.dataset is not None and ws.dataset.summary()["train_examples"] == 3200
    assert ws.run_ids == ["20990101-000000-keep00"]


def test_app_shows_a_markdown_column_name_as_typed(app):
    """A column named like a Markdown link is shown as text in the error box, never as a link."""
    case = next(c for c in CASES if c.name == "a column name in Markdown")
    app.segmented_control(key="data_mode").set_value("upload").run()
    app.file_uploader(key="data_upload").set_value(("upload.csv", case.data, "text/csv")).run()
    errors = " ".join(e.value for e in app.error)
    assert "holds only '1'" in errors and "[answers](" not in errors
