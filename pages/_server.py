"""The objects one server process shares with every session: the job manager, the workspaces, and the
start-up work that runs in the background once the first page is drawn (`after_first_page`).

Nothing here imports torch: the job manager's worker processes import it, a probe process lists the
devices (`devices()`), and the warm-up thread imports it once the pages are quiet.

On a 2-core server two imports at once only slow each other down, and an import in a background thread
holds the GIL that the page being drawn needs: the warm-up waits, before each heavy step, until no page
run is in progress and none began or ended for a moment (`page_running`, `_quiet`).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
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


_LAST_PAGE = [0.0]  # time.monotonic() when a page run last began or ended, server-wide
_RUNNING = [0]  # page runs in progress (app.py's `page_running`)
_RUNNING_LOCK = threading.Lock()


def page_started() -> None:
    """Called as every page run begins: the warm-up lets the pages that users wait for go first."""
    _LAST_PAGE[0] = time.monotonic()


@contextlib.contextmanager
def page_running():
    """Around app.py's page.run(): the warm-up does not start a heavy step while a page is drawn, and it
    starts once the first page's script has run, however it ended (st.stop included)."""
    with _RUNNING_LOCK:
        _RUNNING[0] += 1
    page_started()
    try:
        yield
    finally:
        with _RUNNING_LOCK:
            _RUNNING[0] -= 1
        page_started()  # its elements are still being drawn in the browser: count from the end
        after_first_page()


def _quiet(seconds: float = 1.5, at_most: float = 30.0, busy=lambda: False) -> None:
    """Wait until no page run is in progress and none began or ended for `seconds` (a page and its drawing
    in the browser), and `busy()` is false, at most `at_most` seconds."""
    deadline = time.monotonic() + at_most
    while time.monotonic() < deadline and (
        _RUNNING[0] or time.monotonic() - _LAST_PAGE[0] < seconds or busy()
    ):
        time.sleep(0.1)


_ROOT = Path(__file__).resolve().parent.parent
_PROBE = (  # at low priority: after the pages and the browsers beside them
    "import json, os\nif hasattr(os, 'nice'): os.nice(10)\n"
    "from ffnlp_core.train.devices import available_devices\nprint(json.dumps(available_devices()))"
)


def devices(timeout: float = 0.1) -> list[tuple[str, str]] | None:
    """(key, label) of the devices present (ffnlp_core.train.devices.available_devices), without importing
    torch here: asked of a probe process once per server (torch imported there, at low priority), or
    directly once this process has torch anyway. None while the probe has not answered within `timeout`
    seconds (a server's first seconds); CPU only if it failed."""
    if "torch" in sys.modules:
        from ffnlp_core.train.devices import available_devices

        return available_devices()
    probe = _device_probe()
    try:
        return probe.result(timeout=timeout)
    except TimeoutError:  # concurrent.futures' own since Python 3.11
        return None
    except Exception:  # noqa: BLE001  (a probe that failed: training on the CPU still works)
        return [("cpu", "CPU")]


@st.cache_resource(show_spinner=False)
def _device_probe() -> Future:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="ffnlp-devices").submit(_probe_devices)


def _probe_devices() -> list[tuple[str, str]]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [(str(k), str(label)) for k, label in json.loads(out.stdout.strip().splitlines()[-1])]


def after_first_page() -> None:
    """Start the server's start-up work once (`page_running` calls it when the first page's script ends)."""
    _start_up()


@st.cache_resource(show_spinner=False)
def _start_up() -> threading.Thread:
    from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

    thread = threading.Thread(target=warm_up, name="ffnlp-warmup", daemon=True)
    add_script_run_ctx(thread, get_script_run_ctx())  # it calls manager(): Streamlit's caches want one
    thread.start()
    return thread


def warm_up() -> None:
    """What the next pages need, in the order a student meets it, one thing at a time, each heavy step
    after a moment without page runs (`_quiet`): the default data set being built (pandas, scikit-learn;
    Data), the charts (plotly; Data, Model, Train), the device list (a probe process: Train), torch in
    this process (Try it, models read back), the job manager (its worker processes import torch: a first
    Start then does not wait for them), the fast path's kernels where runs train in this process (thread
    mode; worker processes compile their own), UMAP's numba code in its own process (a long compile), and
    last Lightning (4 s of import, only for the Lessons page's ModelSummary, on request)."""
    from pages import _datasets

    _datasets.wait_idle()
    _quiet()
    import ffnlp_core.plots.curves  # noqa: F401

    _device_probe()  # its own process
    _quiet()
    from ffnlp_core.train.devices import available_devices  # imports torch

    available_devices()

    _quiet()
    if manager().mode == "thread":
        from ffnlp_core.train import kernels

        kernels.warm_up()
    _quiet()
    from ffnlp_core.inspect import umap_service

    umap_service.warm_up_umap()  # umap-learn missing or failing: it says so, and PCA is shown
    # nor while projections are computed, or may soon be (5 s after the compile or a projection): the UMAP
    # process runs at nice 19, and this import's 4 s at normal priority, started as the compile ended, made
    # the first projection of a page that was waiting for UMAP take 4.2 s instead of 0.8 s
    _quiet(3.0, at_most=120.0, busy=lambda: umap_service.WORKER.quiet_for() < 5.0)
    import ffnlp_core.train.lit_module  # noqa: F401  (Lightning)
