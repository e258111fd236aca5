"""Tests for ffnlp_core.settings: one default per FFNLP_* setting, and a clear refusal of nonsense."""

from pathlib import Path

import pytest

from ffnlp_core import settings

NAMES = ("FFNLP_WORKERS", "FFNLP_MAX_CONCURRENT", "FFNLP_RUNS_DIR", "FFNLP_MAX_RUNS", "FFNLP_UMAP")


@pytest.fixture
def clean(monkeypatch):
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_defaults(clean):
    assert settings.workers() == "process"
    assert settings.max_concurrent() is None
    assert settings.runs_dir() == Path("runs")
    assert settings.max_runs() == 200
    assert settings.umap_enabled() is True


def test_values_are_read_when_asked(clean):
    clean.setenv("FFNLP_WORKERS", "thread")
    clean.setenv("FFNLP_MAX_CONCURRENT", "3")
    clean.setenv("FFNLP_RUNS_DIR", "/tmp/x")
    clean.setenv("FFNLP_MAX_RUNS", "7")
    clean.setenv("FFNLP_UMAP", "0")
    assert settings.workers() == "thread" and settings.max_concurrent() == 3
    assert settings.runs_dir() == Path("/tmp/x") and settings.max_runs() == 7
    assert settings.umap_enabled() is False


@pytest.mark.parametrize(
    ("name", "value", "reader"),
    [
        ("FFNLP_WORKERS", "threads", settings.workers),
        ("FFNLP_MAX_CONCURRENT", "0", settings.max_concurrent),
        ("FFNLP_MAX_RUNS", "many", settings.max_runs),
        ("FFNLP_MAX_RUNS", "-1", settings.max_runs),
        ("FFNLP_UMAP", "yes", settings.umap_enabled),
    ],
)
def test_nonsense_is_refused_naming_the_variable(clean, name, value, reader):
    clean.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        reader()
