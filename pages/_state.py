"""The user's workspace and the URL that finds it again: `workspace()` (its id rides in ?sid=...),
`restore_from_url` (?classroom=, ?cfg=), `current_run` (?run=), and `leave_legacy_pages_mode` (the
frame on a server's very first run). `pages/_browser.py` writes the ids back into the address bar."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from pages import _datasets
from pages._server import manager, page_started, workspaces

if TYPE_CHECKING:
    from ffnlp_core.runs.handles import RunHandle
    from ffnlp_core.session.workspace import Workspace


def leave_legacy_pages_mode() -> None:
    """The first run after the server starts is wrapped in Streamlit's legacy pages/ mode (the folder exists):
    it would run a page file without app.py's frame and list every file in pages/. st.navigation turns that
    mode off for good, but only once app.py runs; when a page is the first thing run, switch it off here and
    rerun, so even the very first visitor gets the frame and the real navigation."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def workspace(wait_for_data: bool = True) -> Workspace:
    """The user's workspace; its id rides in the URL (?sid=...) so reloads and new tabs find it.

    A new workspace starts on the built-in data; wait_for_data=False (the frame, Home) returns before
    that is read and counted (`ws.dataset_ready` says when it is there)."""
    leave_legacy_pages_mode()
    page_started()
    fresh = "sid" not in st.session_state  # a new browser session: a reload, a new tab, an opened link
    sid = st.session_state.get("sid") or st.query_params.get("sid")
    ws = workspaces().get(sid)
    st.session_state["sid"] = ws.sid
    restore_from_url(ws)
    run = st.query_params.get("run")
    if fresh and run and run != ws.run_id and current_run(ws, run) is not None:
        ws.remember_run(run)  # a reloaded tab or a shared link: reattach to that run
    if ws.table is None:
        _datasets.load_default_data(ws, wait=wait_for_data)
    return ws


def classroom() -> bool:
    """This session's workspace is in the classroom view (?classroom=1)."""
    sid = st.session_state.get("sid")
    return bool(sid) and bool(workspaces().get(sid).classroom)


def restore_from_url(ws: Workspace) -> None:
    """?classroom=1 / 0 turns the classroom view on / off; ?cfg=... (a shared setup) is restored once."""
    from ffnlp_core.session import urlstate

    flag = urlstate.classroom_flag(st.query_params)
    if flag is not None:
        ws.classroom = flag
    if urlstate.PARAM not in st.query_params:
        return
    try:
        changed = urlstate.apply_to_workspace(ws, st.query_params, build=_datasets.shared_dataset)
    except urlstate.UrlStateError as exc:
        st.error(
            "This link's setup could not be used; your current settings stay.", icon=":material/link_off:"
        )
        st.code(str(exc), language=None, wrap_lines=True)  # plain text: a link is not ours to trust
        return
    if changed:
        ws.dataset_key = _datasets.dataset_key(ws)
        for k in [k for k in st.session_state if k.startswith(("data_", "model_", "train_"))]:
            del st.session_state[k]  # the widgets show the restored settings


def current_run(ws: Workspace, run_id: str | None = None) -> RunHandle | None:
    """The run the pages show (live in memory, or read back from disk after a restart)."""
    run_id = run_id or ws.run_id
    if not run_id:
        return None
    return manager().open_run(run_id)
