"""Tests for ffnlp_core.settings: one default per FFNLP_* setting, and a clear one-line refusal of
nonsense, for each setting and for all of them at start-up."""

from pathlib import Path

import pytest

from ffnlp_core import settings

NAMES = (
    "FFNLP_WORKERS",
    "FFNLP_MAX_CONCURRENT",
    "FFNLP_RUNS_DIR",
    "FFNLP_MAX_RUNS",
    "FFNLP_MAX_RUNS_PER_SESSION",
    "FFNLP_RUN_MEMORY_MB",
    "FFNLP_UMAP",
)


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
    assert settings.max_runs_per_session() == 20
    assert settings.run_memory_mb() == 512
    assert settings.umap_enabled() is True
    settings.check()


def test_values_are_read_when_asked(clean):
    clean.setenv("FFNLP_WORKERS", "thread")
    clean.setenv("FFNLP_MAX_CONCURRENT", "3")
    clean.setenv("FFNLP_RUNS_DIR", "/tmp/x")
    clean.setenv("FFNLP_MAX_RUNS", "7")
    clean.setenv("FFNLP_UMAP", "0")
    clean.setenv("FFNLP_MAX_RUNS_PER_SESSION", "5")
    clean.setenv("FFNLP_RUN_MEMORY_MB", "64")
    assert settings.workers() == "thread" and settings.max_concurrent() == 3
    assert settings.runs_dir() == Path("/tmp/x") and settings.max_runs() == 7
    assert settings.max_runs_per_session() == 5 and settings.run_memory_mb() == 64
    assert settings.umap_enabled() is False


@pytest.mark.parametrize(
    ("name", "value", "reader"),
    [
        ("FFNLP_WORKERS", "threads", settings.workers),
        ("FFNLP_MAX_CONCURRENT", "0", settings.max_concurrent),
        ("FFNLP_MAX_RUNS", "many", settings.max_runs),
        ("FFNLP_MAX_RUNS", "-1", settings.max_runs),
        ("FFNLP_MAX_RUNS", "0", settings.max_runs),  # 0 would delete every run as it finishes
        ("FFNLP_MAX_RUNS_PER_SESSION", "0", settings.max_runs_per_session),
        ("FFNLP_MAX_RUNS_PER_SESSION", "ten", settings.max_runs_per_session),
        ("FFNLP_RUN_MEMORY_MB", "1.5", settings.run_memory_mb),
        ("FFNLP_RUN_MEMORY_MB", "512MB", settings.run_memory_mb),
        ("FFNLP_UMAP", "yes", settings.umap_enabled),
    ],
)
def test_nonsense_is_refused_naming_the_variable(clean, name, value, reader):
    clean.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        reader()
    with pytest.raises(ValueError, match=f"^{name} must be [^\\n]*$"):  # one line, from check() too
        settings.check()


def test_a_runs_folder_that_is_a_file_is_refused(clean, tmp_path):
    (tmp_path / "runs").write_text("")
    clean.setenv("FFNLP_RUNS_DIR", str(tmp_path / "runs"))
    with pytest.raises(ValueError, match=r"^FFNLP_RUNS_DIR must name a folder, but '.*runs' is a file$"):
        settings.runs_dir()


def test_check_lists_every_refused_setting_one_line_each(clean):
    clean.setenv("FFNLP_WORKERS", "fork")
    clean.setenv("FFNLP_MAX_RUNS", "0")
    clean.setenv("FFNLP_RUN_MEMORY_MB", "lots")
    with pytest.raises(ValueError) as refused:
        settings.check()
    assert str(refused.value).splitlines() == [
        "FFNLP_WORKERS must be 'process', 'ray' or 'thread', got 'fork'",
        "FFNLP_MAX_RUNS must be a whole number of at least 1, got '0'",
        "FFNLP_RUN_MEMORY_MB must be a whole number of at least 1, got 'lots'",
    ]


def test_the_job_manager_refuses_nonsense_at_start_up(clean, tmp_path):
    from ffnlp_core.runs.manager import JobManager
    from ffnlp_core.runs.store import RunStore

    clean.setenv("FFNLP_MAX_RUNS_PER_SESSION", "-3")
    with pytest.raises(ValueError, match="^FFNLP_MAX_RUNS_PER_SESSION must be a whole number"):
        JobManager(RunStore(tmp_path, max_runs=5, max_per_owner=5), mode="thread")
