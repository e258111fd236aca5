"""The objects one server process shares with every session: the job manager, the workspaces, and the
start-up work that runs in the background once the first page is drawn (`after_first_page`).

Nothing here imports torch: the job manager's worker processes import it, and so does the warm-up
thread, after the first page.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING

import streamlit as st

if TYPE_CHECKING:
    from ffnlp_core.runs.manager import JobManager
    from ffnlp_core.session.workspace import Workspaces


@st.cache_resource(show_spinner=False)
def manager() -> JobManager:
    """One JobManager per server process, shared by every session (never tied to a session's lifetime).

    Training runs in worker processes by default (FFNLP_WORKERS, read by the job manager): the pages never
    wait on a training loop for Python's GIL, and a crashed run (even one the kernel kills) takes down
    only itself. The page tests set FFNLP_WORKERS=thread."""
    from ffnlp_core.runs.manager import JobManager

    return JobManager()


@st.cache_resource(show_spinner=False)
def workspaces() -> Workspaces:
    from ffnlp_core.session.workspace import Workspaces

    return Workspaces()


_LAST_PAGE = [0.0]  # time.monotonic() when a page run last began, server-wide


def page_started() -> None:
    """Called as every page run begins: the warm-up lets the pages that users wait for go first."""
    _LAST_PAGE[0] = time.monotonic()


def _quiet(seconds: float = 1.0, at_most: float = 10.0) -> None:
    """Wait until no page run began for `seconds` (a page and its drawing), at most `at_most` seconds."""
    deadline = time.monotonic() + at_most
    while time.monotonic() < deadline and time.monotonic() - _LAST_PAGE[0] < seconds:
        time.sleep(0.1)


def after_first_page() -> None:
    """Start the server's start-up work once (called at the end of app.py, when the first page is drawn)."""
    _start_up()


@st.cache_resource(show_spinner=False)
def _start_up() -> threading.Thread:
    from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

    thread = threading.Thread(target=warm_up, name="ffnlp-warmup", daemon=True)
    add_script_run_ctx(thread, get_script_run_ctx())  # it calls manager(): Streamlit's caches want one
    thread.start()
    return thread


def warm_up() -> None:
    """What the next pages need, in the order a student meets it, one thing at a time (on a 2-core server
    two imports at once only slow each other down), each heavy step after a moment without page runs:
    the default data set being built (scikit-learn; Data), the charts (plotly; Data, Model, Train), torch
    (Train's device list, Try it, models read back), Lightning (Lessons' summary), the job manager (its
    worker processes import torch: a first Start then does not wait for them), the fast path's kernels
    where runs train in this process (thread mode; worker processes compile their own), and UMAP's numba
    code in its own process (a long compile: last)."""
    from pages import _datasets

    _datasets.wait_idle()
    import ffnlp_core.plots.curves  # noqa: F401
    from ffnlp_core.train.devices import available_devices

    _quiet()
    available_devices()  # imports torch
    _quiet()
    import ffnlp_core.train.lit_module  # noqa: F401  (Lightning)

    _quiet()
    if manager().mode == "thread":
        from ffnlp_core.train import kernels

        kernels.warm_up()
    _quiet()
    with contextlib.suppress(ImportError):  # umap-learn missing: PCA only
        from ffnlp_core.inspect import umap_service

        umap_service.warm_up_umap()
