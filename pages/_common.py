"""Shared UI helpers for every page: the server-wide job manager, the user's workspace (its key lives in
the URL so a reload finds it again), widgets synced to the workspace config, and the live run status.

Pages stay thin: widgets, layout and calls into ffnlp_core. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import threading
import time

import streamlit as st

from ffnlp_core.data import samples
from ffnlp_core.data.dataset import build_dataset
from ffnlp_core.data.labels import to_labeled
from ffnlp_core.data.reading import read_table
from ffnlp_core.runs.manager import Job, JobManager, StoredRun
from ffnlp_core.session import urlstate
from ffnlp_core.session.workspace import Workspace, Workspaces

POLL_SECONDS = 1.0  # how often a live view refreshes on a quiet server ...
POLL_PER_ACTIVE_RUN, MAX_POLL_SECONDS = 0.2, 5.0  # ... and how it slows as runs pile up (25+ runs: 5 s)


@st.cache_resource(show_spinner=False)
def manager() -> JobManager:
    """One JobManager per server process, shared by every session (never tied to a session's lifetime)."""
    # Training runs in worker processes: the pages never wait on a training loop for Python's GIL, and a
    # crashed run (even one the kernel kills) takes down only itself. FFNLP_WORKERS=thread for AppTest.
    jm = JobManager()  # FFNLP_WORKERS (ffnlp_core.settings): worker processes by default
    threading.Thread(target=_warm_up, args=(jm.mode,), name="ffnlp-warmup", daemon=True).start()
    return jm


def poll_seconds(factor: float = 1.0) -> float:
    """The live views' refresh interval: 1 s on a quiet server, longer while many runs train or wait, so
    that a class of 30 pages refreshing at once cannot starve the server (every refresh reruns a page)."""
    running, queued = manager().active_count()
    return factor * min(MAX_POLL_SECONDS, max(POLL_SECONDS, POLL_PER_ACTIVE_RUN * (running + queued)))


LIVE_AT_ONCE = 2  # live views computing at the same moment, server-wide


@st.cache_resource(show_spinner=False)
def _live_gate() -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(LIVE_AT_ONCE)


def live_fragment(run_every: float | None, factor: float = 1.0):
    """`st.fragment(run_every=...)` for views that refresh while a run trains, kept cheap for the server.

    Every refresh reruns the view in its own thread of the one server process. Two measures keep a class
    of 30 refreshing pages from starving it (measured: before them, the health check took 17-24 s and a
    new visitor's page did not load within a minute while 30 runs started):
    - a refresh recomputes its interval (`poll_seconds(factor)`); when the server got busier (or quieter)
      than when the view was drawn, one full rerun redraws the view with the new interval, since a
      fragment's interval is fixed when it is defined;
    - at most LIVE_AT_ONCE refreshes compute at the same moment; the others sleep on a semaphore instead
      of taking turns on the GIL with the server's event loop.
    """

    def decorate(fn):
        @functools.wraps(fn)
        def admitted(*args, **kwargs):
            if run_every is not None:
                now = poll_seconds(factor)
                busier = now > 1.5 * run_every and now > POLL_SECONDS * factor
                if busier or now < run_every / 1.5:
                    st.rerun()
            gate = _live_gate()
            got = gate.acquire(timeout=30)  # never wait forever: a late refresh runs anyway
            try:
                return fn(*args, **kwargs)
            finally:
                if got:
                    gate.release()

        return st.fragment(admitted, run_every=run_every)

    return decorate


def _warm_up(mode: str) -> None:
    """After the first page: import torch (the Train page, Try it and model reloads need it here), compile the fast path's
    kernels where runs train in this process (thread mode; worker processes compile their own), and warm
    UMAP's numba code in the UMAP process."""
    from ffnlp_core.train.devices import available_devices

    available_devices()  # imports torch: the Train page's device list is then at hand

    if mode == "thread":
        from ffnlp_core.train import kernels

        kernels.warm_up()
    try:
        from ffnlp_core.inspect import projection

        projection.warm_up_umap()
    except ImportError:
        pass


def leave_legacy_pages_mode() -> None:
    """The first run after the server starts is wrapped in Streamlit's legacy pages/ mode (the folder exists):
    it would run a page file without app.py's frame and list every file in pages/. st.navigation turns that
    mode off for good, but only once app.py runs; when a page is the first thing run, switch it off here and
    rerun, so even the very first visitor gets the frame and the real navigation."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


@st.cache_resource(show_spinner=False)
def workspaces() -> Workspaces:
    return Workspaces()


def workspace() -> Workspace:
    """The user's workspace; its id rides in the URL (?sid=...) so reloads and new tabs find it."""
    leave_legacy_pages_mode()
    fresh = "sid" not in st.session_state  # a new browser session: a reload, a new tab, an opened link
    sid = st.session_state.get("sid") or st.query_params.get("sid")
    ws = workspaces().get(sid)
    st.session_state["sid"] = ws.sid
    restore_from_url(ws)
    run = st.query_params.get("run")
    if fresh and run and run != ws.run_id and current_run(ws, run) is not None:
        ws.remember_run(run)  # a reloaded tab or a shared link: reattach to that run
    if ws.table is None:
        load_default_data(ws)
    return ws


def restore_from_url(ws: Workspace) -> None:
    """?classroom=1 / 0 turns the classroom view on / off; ?cfg=... (a shared setup) is restored once."""
    flag = urlstate.classroom_flag(st.query_params)
    if flag is not None:
        ws.classroom = flag
    if urlstate.PARAM not in st.query_params:
        return
    try:
        changed = urlstate.apply_to_workspace(ws, st.query_params, build=shared_dataset)
    except urlstate.UrlStateError as exc:
        st.error(
            "This link's setup could not be used; your current settings stay.", icon=":material/link_off:"
        )
        st.code(str(exc), language=None, wrap_lines=True)  # plain text: a link is not ours to trust
        return
    if changed:
        ws.dataset_key = dataset_key(ws)
        for k in [k for k in st.session_state if k.startswith(("data_", "model_", "train_"))]:
            del st.session_state[k]  # the widgets show the restored settings


@st.cache_data(show_spinner=False, max_entries=4)
def builtin_table(name: str):
    return read_table(samples.sample_csv_bytes(name), name=f"built-in {name}")


def load_default_data(ws: Workspace) -> None:
    """A new workspace starts on the built-in comments, so Train works without visiting Data first."""
    name = samples.DEFAULT_SAMPLE
    table = builtin_table(name)
    cfg = ws.config.data
    cfg.source, cfg.text_column, cfg.label_column = f"builtin:{name}", table.text_column, table.label_column
    ws.table, ws.upload_key, ws.data_name = table, f"builtin:{name}", f"built-in: {name}"
    ws.dataset_key = dataset_key(ws)
    ws.pending = _builds().start(ws.dataset_key, table, cfg)  # read (and waited for) when a page needs it


def shared_dataset(table, cfg, upload_key: str):
    """The data set for a table (from the file `upload_key` names) and data settings, built once per
    server for everyone.

    A class opens the app at the same moment, every new session on the same built-in data (and students
    often upload the same file): building the bag of words per session was half of the server's script
    time in the 30-session load test. `dataset_key` names everything the data set depends on (the upload
    key holds the file's hash), and nothing changes a Dataset after it is built (the noise lab builds
    its own), so sessions can share one. DataError propagates and is not cached. Same signature as
    urlstate.apply_to_workspace's `build`.
    """
    return _builds().start(_key(upload_key, cfg), table, cfg).result()


class _Builds:
    """Data sets being built or built, server-wide, by key (the 8 most recently used are kept, each for an
    hour): a build runs in a background thread, so a page that does not need the data yet (Home's first
    view: scikit-learn alone takes a second to import) draws at once, and pages that do wait for it."""

    MAX, TTL = 8, 3600.0

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ffnlp-dataset")
        self.items: dict[tuple, tuple[float, object]] = {}
        self.lock = threading.Lock()

    def start(self, key: tuple, table, cfg):
        """The Future of the data set for key (started now unless already building or built)."""
        now = time.monotonic()
        with self.lock:
            created, fut = self.items.pop(key, (now, None))
            stale = fut is not None and (now - created > self.TTL or (fut.done() and fut.exception()))
            if fut is None or stale:  # a DataError is not kept: the next try builds again
                created, fut = now, self.pool.submit(build_dataset_of, table, cfg)
            self.items[key] = (created, fut)  # the newest at the end
            while len(self.items) > self.MAX:
                self.items.pop(next(iter(self.items)))
            return fut


def build_dataset_of(table, cfg):
    return build_dataset(to_labeled(table, cfg.text_column, cfg.label_column), cfg)


@st.cache_resource(show_spinner=False)
def _builds() -> _Builds:
    return _Builds()


def dataset_key(ws: Workspace) -> tuple:
    """What a dataset is built from: rebuild only when one of them changes."""
    return _key(ws.upload_key, ws.config.data)


def _key(upload_key: str, cfg) -> tuple:
    # The file's identity and every data setting (noise lab fields included: a shared link may carry them).
    return (upload_key, *dataclasses.astuple(cfg))


def page_link(path: str, **kwargs) -> None:
    """st.page_link to pages this app has; plain text where the page is not in the navigation (a page run
    on its own, as in AppTest)."""
    from pathlib import Path

    from streamlit.errors import StreamlitPageNotFoundError

    if not (Path(__file__).parent.parent / path).exists():
        return
    try:
        st.page_link(path, **kwargs)
    except StreamlitPageNotFoundError:
        st.caption(kwargs.get("label", path))


def keep_url(ws: Workspace) -> None:
    """Write the session and run ids into the URL on every page (navigation drops them), so a reload or a
    copied link finds the same workspace and run. Called at the end of app.py.

    Streamlit 1.67 under st.navigation shows a query-param change in the address bar only after the next
    browser action, so the same values are also written with history.replaceState from a tiny frame.
    The script carries only our own ids (letters, digits, '-' and '_'), never user text.
    """
    want = {"sid": ws.sid, **({"run": ws.run_id} if ws.run_id else {})}
    for k, v in want.items():
        if st.query_params.get(k) != v:
            st.query_params[k] = v
    if not all(_SAFE_ID.fullmatch(v) for v in want.values()):
        return
    script = (
        "function fix(){const w=window.parent;const u=new URL(w.location.href);let c=false;"
        f"for(const [k,v] of Object.entries({json.dumps(want)}))"
        "{if(u.searchParams.get(k)!==v){u.searchParams.set(k,v);c=true}}"
        "if(c)w.history.replaceState(w.history.state,'',u.toString());}"
        "fix();for(const t of [200,600,1500,3000])setTimeout(fix,t);"  # after Streamlit's own late URL write
    )
    with st.sidebar:  # a same-origin frame as tall as its (empty) body; it reloads when the ids change
        st.iframe(f"<script>{script}</script>", height="content")


_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def current_run(ws: Workspace, run_id: str | None = None) -> Job | StoredRun | None:
    """The run the pages show (live in memory, or read back from disk after a restart)."""
    run_id = run_id or ws.run_id
    if not run_id:
        return None
    return manager().open_run(run_id)


def synced(widget, key: str, current, apply, **kwargs):
    """A widget whose value lives in the workspace: initialised from `current`, written back via `apply`."""
    if key not in st.session_state:
        st.session_state[key] = current

    def on_change():
        apply(st.session_state[key])

    return widget(key=key, on_change=on_change, **kwargs)


def need_data(ws: Workspace):
    """Stop the page with a pointer to the Data page when no data is loaded."""
    if ws.dataset is None:
        st.info("No data yet: load the built-in comments or your own CSV first.")
        page_link("pages/data.py", label="Go to Data", icon=":material/table:")
        st.stop()
    return ws.dataset


def status_line(run, position: bool = True) -> str:
    """One line about a run: status, progress, speed, accuracy (and its place in the queue, for a page's
    own live view: the sidebar refreshes more slowly, and two different positions on one screen would
    contradict each other)."""
    h = run.read(lambda h: (h.steps_done, h.total_steps, h.examples_per_second, h.last_eval(), h.epoch))
    done, total, rate, ev, epoch = h
    parts = [f"**{run.status}**"]
    if run.status == "queued":
        parts.append(
            f"position {manager().queue_position(run)} in the queue" if position else "waiting to start"
        )
    if total:
        parts.append(f"step {done:,}/{total:,} · epoch {epoch}")
    if rate:
        parts.append(f"{rate:,.0f} examples/s")
    if ev:
        parts.append(f"dev acc {ev['dev_accuracy']:.3f}")
    return " · ".join(parts)


def sidebar_status(ws: Workspace) -> None:
    """The run's status and a Stop button in the sidebar of every page, refreshed while it runs."""
    run = current_run(ws)
    running = run is not None and not run.done

    @live_fragment(poll_seconds(3) if running else None, factor=3)  # a page's own live view refreshes faster
    def _panel():
        run_now = current_run(ws)
        if run_now is None:
            st.caption("No run yet.")
            return
        run_now.touch()
        st.markdown(f"Run `{run_now.run_id}`  \n" + status_line(run_now, position=False))
        if run_now.status == "failed" and run_now.reason:
            st.error(run_now.reason, icon=":material/error:")
        if not run_now.done:
            if st.button("Stop", key="sidebar_stop", icon=":material/stop:", width="stretch"):
                manager().stop(run_now.run_id)
                time.sleep(0.1)
                st.rerun()
        elif running:  # it just ended: one full rerun so every page stops polling
            st.rerun()

    with st.sidebar:
        st.divider()
        st.caption("Current run")
        _panel()


def fmt_count(n: int) -> str:
    return f"{n:,}"
