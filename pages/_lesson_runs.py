"""The runs behind the Lessons page: each lesson queues its runs together (`submit`), remembers their ids
in the workspace (a reload finds them), shows their status lines while they train and draws its result
once every run is done (`live`). The lesson tabs in pages/lessons.py only say what to train and draw."""

from __future__ import annotations

import streamlit as st

from ffnlp_core.inspect import lessons
from pages import _common as ui
from pages import _run_panel as panel


@st.cache_resource(show_spinner=False)
def lesson_data():
    """The built-in interaction data set the lessons train on (shared, never modified)."""
    from ffnlp_core.data.dataset import build_dataset, load_source

    cfg = lessons.lesson_config().data
    return build_dataset(load_source(cfg), cfg)


@st.cache_data(show_spinner=False)
def model_summary() -> str:
    """Lightning's ModelSummary of the lesson network (imports Lightning in this process: on request)."""
    from ffnlp_core.train.lit_module import lightning_summary

    return lightning_summary(lessons.engine_configs()["lightning"], lesson_data())


def ids(ws) -> dict:
    """lesson -> {name: run id}, kept in the workspace (survives a reload)."""
    return ws.extras.setdefault("lessons_runs", {})


def submit(ws, lesson: str, configs: dict, what: str) -> None:
    """Queue one run per config, all or none (visible in the server queue as 'lesson: <what> (<name>)')."""
    ids(ws)[lesson] = panel.submit_group(ws, configs, lesson_data(), f"lesson: {what}")
    ws.extras.pop(f"lessons_{lesson}_result", None)


def runs(ws, lesson: str) -> dict:
    found = {name: ui.manager().open_run(rid) for name, rid in ids(ws).get(lesson, {}).items()}
    return {name: r for name, r in found.items() if r is not None}


def busy(ws, lesson: str) -> bool:
    return any(not r.done for r in runs(ws, lesson).values())


def views(found: dict) -> dict:
    return {name: r.read(lessons.view) for name, r in found.items()}


def run_button(ws, lesson: str, label: str, configs, what: str | None = None, **kwargs) -> None:
    """The lesson's one button (`lessons_<lesson>_run`): queue its runs, disabled while they train."""
    st.button(
        label,
        key=f"lessons_{lesson}_run",
        type="primary",
        disabled=busy(ws, lesson),
        on_click=submit,
        args=(ws, lesson, configs, what or lesson),
        **kwargs,
    )


def live(ws, lesson: str, draw) -> None:
    """Status lines while the lesson's runs train (polled), then draw(runs) once every run is done."""
    was_running = busy(ws, lesson)

    @ui.live_fragment(ui.poll_seconds() if was_running else None)
    def lesson_panel():
        found = runs(ws, lesson)
        if not found:
            return
        for name, r in found.items():
            r.touch()
            st.markdown(f"`{name}` · " + ui.status_line(r))
        if all(r.done for r in found.values()):
            failed = [r.reason for r in found.values() if r.status != "finished"]
            if failed:
                st.warning(
                    "Not every run finished: " + ui.plain("; ".join(failed)), icon=":material/warning:"
                )
            else:
                draw(found)
            if was_running:
                st.rerun()  # all done: one full rerun stops the polling

    lesson_panel()
