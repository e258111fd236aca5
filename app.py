"""ffnlp: explore how feedforward neural networks learn to classify text.

Run with `streamlit run app.py`. This file is the frame around every page: page setup, navigation
(url paths /, /data, /model, /train, ...), the user's workspace and the live run status in the sidebar.
"""

from pathlib import Path

import streamlit as st

from pages import _common as ui

ui.leave_legacy_pages_mode()  # before anything is drawn (see its docstring)

st.set_page_config(page_title="ffnlp", page_icon=":material/hub:", layout="wide")

ws = ui.workspace(wait_for_data=False)  # the built-in data is read and counted in the background
if ws.classroom:  # ?classroom=1: larger type, containers keyed "advanced_..." hidden
    from ffnlp_core.session import urlstate

    st.html(f"<style>{urlstate.CLASSROOM_CSS}</style>")

PAGES = {
    "Build": [
        ("pages/home.py", "Home", ":material/home:", ""),
        ("pages/data.py", "Data", ":material/table:", "data"),
        ("pages/model.py", "Model", ":material/hub:", "model"),
        ("pages/train.py", "Train", ":material/play_circle:", "train"),
    ],
    "Look inside": [
        ("pages/gradients.py", "Gradients", ":material/stacked_line_chart:", "gradients"),
        ("pages/representations.py", "Representations", ":material/scatter_plot:", "representations"),
        ("pages/playground.py", "Try it", ":material/edit_note:", "playground"),
    ],
    "Learn": [
        ("pages/lessons.py", "Lessons", ":material/school:", "lessons"),
        ("pages/lab.py", "Noise lab", ":material/science:", "lab"),
        ("pages/compare.py", "Compare runs", ":material/compare_arrows:", "compare"),
    ],
}
DRAWN_WITHOUT_DATA = {""}  # Home (url path ""): its data card says "counting words…" meanwhile
here = Path(__file__).parent
nav = {
    section: [
        st.Page(path, title=title, icon=icon, url_path=url or None, default=not url)
        for path, title, icon, url in pages
        if (here / path).exists()
    ]
    for section, pages in PAGES.items()
}
page = st.navigation({k: v for k, v in nav.items() if v})
ui.sidebar_status(ws)
with ui.page_running():  # the warm-up starts after the first page, and waits while a page is drawn
    if page.url_path in DRAWN_WITHOUT_DATA or ui.data_ready(ws):
        page.run()
    else:  # a server's first seconds: the title at once, the page once the built-in data is there
        ui.data_on_its_way(ws, page.title)
ui.keep_url(ws)
