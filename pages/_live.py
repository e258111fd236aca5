"""Views that refresh while a run trains: the refresh interval (`poll_seconds`), the fragment that keeps
30 refreshing pages from starving the server (`live_fragment`), a page rerun when a result computed elsewhere
is there (`rerun_when`), the one-line run status (`status_line`)
and the sidebar's run panel on every page (`sidebar_status`)."""

from __future__ import annotations

import functools
import threading
import time

import streamlit as st

from pages._helpers import error
from pages._server import manager
from pages._state import current_run

POLL_SECONDS = 1.0  # how often a live view refreshes on a quiet server ...
POLL_PER_ACTIVE_RUN, MAX_POLL_SECONDS = 0.2, 5.0  # ... and how it slows as runs pile up (25+ runs: 5 s)
LIVE_AT_ONCE = 2  # live views computing at the same moment, server-wide


def poll_seconds(factor: float = 1.0) -> float:
    """The live views' refresh interval: 1 s on a quiet server, longer while many runs train or wait, so
    that a class of 30 pages refreshing at once cannot starve the server (every refresh reruns a page)."""
    running, queued = manager().active_count()
    return factor * min(MAX_POLL_SECONDS, max(POLL_SECONDS, POLL_PER_ACTIVE_RUN * (running + queued)))


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


def rerun_when(changed, every: float = 0.25) -> None:
    """A tiny view that checks `changed()` every `every` seconds and reruns the page once it is true: for
    results computed elsewhere (UMAP), where a long view polling itself would redraw all of it each time."""

    @st.fragment(run_every=every)
    def _check() -> None:
        if changed():
            st.rerun()

    _check()


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


def sidebar_status(ws) -> None:
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
        if run_now.status in ("failed", "diverged") and run_now.reason:
            error(run_now.reason)
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
