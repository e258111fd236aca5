"""Fixtures of the page tests (AppTest): each page runs on its own (the navigation frame is covered by
the browser tests), training in threads, runs in a temp folder, a fresh server (Streamlit's caches
cleared) per test and its job manager shut down after it."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

PAGES = Path(__file__).resolve().parents[2] / "pages"
TIMEOUT = 60


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    """The page tests' server: thread workers, runs under tmp_path, no UMAP process; yields the runs folder."""
    monkeypatch.setenv("FFNLP_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FFNLP_WORKERS", "thread")
    monkeypatch.setenv("FFNLP_UMAP", "0")  # no UMAP process / numba compile during page tests
    st.cache_resource.clear()
    st.cache_data.clear()
    yield tmp_path / "runs"
    from pages import _common as ui

    ui.manager().shutdown()
    st.cache_resource.clear()


@pytest.fixture
def open_page(app_env):
    """open_page("home", run="...") -> the page run once under AppTest (query parameters from keywords),
    checked for exceptions."""

    def open_(name: str, timeout: float = TIMEOUT, **query) -> AppTest:
        at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=timeout)
        for k, v in query.items():
            at.query_params[k] = v
        at.run()
        assert not at.exception, at.exception
        return at

    return open_


@pytest.fixture
def workspace_of():
    """workspace_of(at) -> the workspace the page `at` ran in."""

    def get(at: AppTest):
        from pages import _common as ui

        return ui.workspaces().get(at.session_state["sid"])

    return get
