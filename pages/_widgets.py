"""Widgets built from the config's declarations: `setting(ws, "train", "lr")` draws the field's widget
(number input, selectbox or toggle) with the label, help and bounds config.py declares once, keyed
`<section>_<field>` and synced into the workspace config."""

from __future__ import annotations

import dataclasses

import streamlit as st

from ffnlp_core.config import declared
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
