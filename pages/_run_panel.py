"""The run panel every training page shares: Start and Stop, the line that says whether the run waits in
the queue or trains, and its progress bar. Submission happens here, once, and a refused setting is shown
on the page (ConfigError or DataError) instead of starting a run."""

from __future__ import annotations

import time

import streamlit as st

from ffnlp_core.config import ConfigError
from ffnlp_core.data.errors import DataError
from pages import _common as ui


def buttons(
    ws,
    prefix: str,
    make,
    *,
    run_id: str | None = "",
    label="Start",
    icon=":material/play_arrow:",
    remember=None,
):
    """Start (`<prefix>_start`) and Stop (`<prefix>_stop`) for the run `run_id` ("": the workspace's run;
    None: none yet).
    `make()` returns (cfg, ds, label) for a new run, or raises ConfigError / DataError; `remember(run_id)`
    is called after a submission (default: the workspace remembers it). Returns the run shown, if any."""
    jm = ui.manager()
    jm.note_owner(ws.sid)  # this session is active: pruning spares its runs
    if jm.store_problem:  # a full or read-only runs folder: runs would fail at their first save
        ui.error(f"Runs cannot be saved right now: {jm.store_problem}")
    run = ui.current_run(ws) if run_id == "" else jm.open_run(run_id) if run_id else None
    running = run is not None and not run.done

    def start() -> None:
        try:
            job = submit(ws, *make())
        except (ConfigError, DataError) as exc:
            st.session_state[f"{prefix}_error"] = f"Cannot start: {exc}"
            return
        ws.remember_run(job.run_id)
        if remember is not None:
            remember(job.run_id)

    def stop() -> None:
        if run is not None:
            ui.manager().stop(run.run_id)

    b1, b2, b3 = st.columns([1, 1, 4])
    b1.button(
        label,
        key=f"{prefix}_start",
        type="primary",
        icon=icon,
        disabled=running,
        width="stretch",
        on_click=start,
    )
    b2.button(
        "Stop",
        key=f"{prefix}_stop",
        icon=":material/stop:",
        disabled=not running,
        width="stretch",
        on_click=stop,
    )
    if st.session_state.get(f"{prefix}_error"):
        ui.error(st.session_state.pop(f"{prefix}_error"))
    if not running:  # while a run is live, its own view says how busy the server is, refreshed
        n_run, n_queued = ui.manager().active_count()
        b3.caption(
            f"Server: {n_run} run(s) training, {n_queued} waiting · at most {ui.manager().max_concurrent} at once."
        )
    return run


def submit(ws, cfg, ds, label: str | None = None):
    """The pages' one submission point; the job manager checks the settings against the data
    (ConfigError says what to change)."""
    return ui.manager().submit(cfg, ds, owner=ws.sid, label=label or ws.dataset_name)


def submit_group(ws, cfgs: dict, ds, label: str) -> dict:
    """Runs that belong together, all queued or (ConfigError) none; returns {name: run id}."""
    return {name: job.run_id for name, job in ui.manager().submit_group(cfgs, ds, ws.sid, label).items()}


def waiting(run) -> None:
    """A run in the queue: where it stands and why it waits."""
    jm = ui.manager()
    position, (n_running, _) = jm.queue_position(run), jm.active_count()
    why = (
        "the training processes are still starting (a minute at most after the server starts)"
        if jm.starting_workers()
        else f"{n_running} run(s) training; it starts when one of them ends"
    )
    st.info(f"Waiting in the queue: position {position} · {why}.", icon=":material/hourglass_top:")
    st.progress(0.0, text=f"queued · position {position} · {run.cfg.train.epochs} epoch(s) to train")


def progress(run) -> int:
    """The run's progress bar (or its place in the queue); returns the steps done."""
    if run.status == "queued":
        waiting(run)
        return 0
    done, total, rate, epoch = run.read(
        lambda h: (h.steps_done, max(1, h.total_steps), h.examples_per_second, h.epoch)
    )
    elapsed = time.time() - (run.started_at or time.time())
    left = elapsed / done * (total - done) if done and not run.done else 0
    st.progress(
        min(1.0, done / total),
        text=(
            f"{run.status} · step {done:,}/{total:,} · epoch {epoch}/{run.cfg.train.epochs} · "
            f"{rate:,.0f} examples/s" + (f" · ~{left:,.0f} s left" if left else "")
        ),
    )
    if run.status in ("failed", "diverged"):
        ui.error(run.reason)
    return done
