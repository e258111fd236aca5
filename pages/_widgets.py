"""Widgets built from the config's declarations: `setting(ws, "train", "lr")` draws the field's widget
(number input, selectbox or toggle) with the label, help and bounds config.py declares once, keyed
`<section>_<field>` and synced into the workspace config; `class_names(ws, ds)`, the Data page's
editor of the names every page gives the classes (DataConfig.class_names)."""

from __future__ import annotations

import dataclasses

import streamlit as st

from ffnlp_core.config import MAX_CLASS_NAME, declared
from pages import _common as ui


def setting(ws, section: str, name: str, *, options=None, current=None, key=None, **overrides):
    """The widget for `ws.config.<section>.<name>`; `options` narrows a registry (e.g. the devices this
    machine has), `current` replaces the config's value as the widget's start, `key` the usual `<section>_<field>` key
    (where a page's key predates this factory), `overrides` go to the widget."""
    part = getattr(ws.config, section)
    decl = declared(part).get(name, {"label": name, "help": None, "choices": None})
    value = getattr(part, name) if current is None else current
    kind = type(_default(part, name))
    kwargs = {"label": decl["label"], "help": decl["help"]}
    if decl["choices"] is not None or options is not None:
        choices = options if options is not None else decl["choices"]
        names = choices if isinstance(choices, dict) else None
        widget, cast = st.selectbox, (lambda v: v)
        kwargs |= {"options": list(choices), "format_func": names.get if names else str}
    elif kind is bool:
        widget, cast = st.toggle, bool
    else:
        cast = int if kind is int else float
        widget = st.number_input
        kwargs |= {"min_value": cast(decl["min"]), "step": cast(decl["step"] or 1)}
        if decl["max"] is not None:
            kwargs["max_value"] = cast(decl["max"])
        if decl.get("format"):
            kwargs["format"] = decl["format"]
    kwargs |= overrides
    return ui.synced(
        widget, key or f"{section}_{name}", value, lambda v: setattr(part, name, cast(v)), **kwargs
    )


def _default(part, name: str):
    f = next(f for f in dataclasses.fields(part) if f.name == name)
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def class_names(ws, ds) -> None:
    """One text box per class (`data_class_name_<label value>`): the label value in the file and the name
    the pages, charts and downloads use (saved with the run's config, carried by share links). A change
    lands in the config before the page reruns, so the data set is rebuilt with it at once."""
    cfg = ws.config.data
    original = {v: k for k, v in cfg.class_names.items()}  # shown name -> label value in the file

    def rename(value: str, key: str) -> None:
        name = st.session_state[key].strip() or value
        names = {k: v for k, v in cfg.class_names.items() if k != value}
        cfg.class_names = names if name == value else {**names, value: name}

    cols = st.columns(min(4, len(ds.class_names)))
    for i, shown in enumerate(ds.class_names):
        value = original.get(shown, shown)
        key = f"data_class_name_{value}"
        cols[i % len(cols)].text_input(
            f"Label {value!r}", shown, key=key, max_chars=MAX_CLASS_NAME, on_change=rename, args=(value, key)
        )
