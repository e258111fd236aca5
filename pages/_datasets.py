"""The data sets of the whole server: the built-in tables, and the bags of words built once for every
session that uses the same file and settings, in a background thread.

A class opens the app at the same moment, every new session on the same built-in data (and students
often upload the same file): building the bag of words per session was half of the server's script time
in the 30-session load test. A key (`dataset_key`) names everything a data set depends on (the upload key
holds the file's hash), and nothing changes a Dataset after it is built (the noise lab builds its own),
so sessions share one. The data modules (pandas, scikit-learn) are imported only where a table is read
or a data set built: a server's first page draws without them.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import streamlit as st


@st.cache_data(show_spinner=False, max_entries=4)
def builtin_table(name: str):
    """A built-in data set as read from its CSV (a Table: columns guessed as for an upload)."""
    return _read_builtin(name)


def _read_builtin(name: str):
    from ffnlp_core.data import samples
    from ffnlp_core.data.reading import read_table

    return read_table(samples.sample_csv_bytes(name), name=f"built-in {name}")


def load_default_data(ws, wait: bool = True) -> None:
    """A new workspace starts on the built-in comments, so Train works without visiting Data first.

    The table is read and its bag of words built in the background, once for the whole server. With
    wait=False (the frame and Home, which show the data's name before its numbers) a page does not wait
    for them: `ws.pending` is the data set to come and `ws.table` stays unset, so the next page that
    asks for the workspace (and waits) fills both in.
    """
    from ffnlp_core.data.samples import DEFAULT_SAMPLE as name

    cfg, builds = ws.config.data, _builds()
    cfg.source = ws.upload_key = f"builtin:{name}"
    ws.data_name = f"built-in: {name}"
    key = ("default", json.dumps(dataclasses.asdict(cfg), sort_keys=True))
    fut = builds.start(key, _default_data, builds, name, copy.deepcopy(cfg))
    if not wait and not fut.done():
        ws.build_pending(_second(fut))
        return
    table, dataset = fut.result()
    cfg.text_column, cfg.label_column = table.text_column, table.label_column
    ws.table, ws.dataset = table, dataset
    ws.dataset_key = dataset_key(ws)


def _default_data(builds: _Builds, name: str, cfg) -> tuple:
    """(table, data set) of a built-in set; runs in the build thread, and the data set is kept under
    its own key too (a Data page that asks for the same settings gets the same object)."""
    table = _read_builtin(name)
    cfg.text_column, cfg.label_column = table.text_column, table.label_column
    return table, builds.inline(_key(cfg.source, cfg), build_dataset_of, table, cfg)


def _second(fut: Future) -> Future:
    """A Future of the second item of fut's result (its exception, if it fails)."""
    out: Future = Future()

    def done(f: Future) -> None:
        if f.exception() is not None:
            out.set_exception(f.exception())
        else:
            out.set_result(f.result()[1])

    fut.add_done_callback(done)
    return out


def shared_dataset(table, cfg, upload_key: str):
    """The data set for a table (from the file `upload_key` names) and data settings, built once per
    server for everyone. DataError propagates and is not kept. Same signature as
    urlstate.apply_to_workspace's `build`."""
    return _builds().start(_key(upload_key, cfg), build_dataset_of, table, cfg).result()


def build_dataset_of(table, cfg):
    from ffnlp_core.data.dataset import build_dataset
    from ffnlp_core.data.labels import to_labeled

    return build_dataset(to_labeled(table, cfg.text_column, cfg.label_column), cfg)


def dataset_key(ws) -> tuple:
    """What a dataset is built from: rebuild only when one of them changes."""
    return _key(ws.upload_key, ws.config.data)


def _key(upload_key: str, cfg) -> tuple:
    # The file's identity and every data setting (noise lab fields and class names included: a shared link
    # may carry them), as hashable text.
    return (upload_key, json.dumps(dataclasses.asdict(cfg), sort_keys=True))


def wait_idle() -> None:
    """Return once every build started so far has ended (the build thread runs them in order)."""
    _builds().pool.submit(lambda: None).result()


class _Builds:
    """Data sets being built or built, server-wide, by key (the 8 most recently used are kept, each for an
    hour): a build runs in a background thread, so a page that does not need the data yet draws at once,
    and pages that do wait for it."""

    MAX, TTL = 8, 3600.0

    def __init__(self):
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ffnlp-dataset")
        self.items: dict[tuple, tuple[float, Future]] = {}
        self.lock = threading.Lock()

    def start(self, key: tuple, fn, *args) -> Future:
        """The Future of fn(*args) kept under key (started now unless already building or built)."""
        return self._get(key, lambda: self.pool.submit(fn, *args))

    def inline(self, key: tuple, fn, *args):
        """fn(*args), kept under key, computed in the calling thread unless already there (for work that
        runs in the build thread itself: waiting on the pool there would wait forever)."""
        made: list[Future] = []

        def run_here() -> Future:
            made.append(Future())
            return made[0]

        fut = self._get(key, run_here)
        if made:
            try:
                fut.set_result(fn(*args))
            except Exception as exc:
                fut.set_exception(exc)
        return fut.result()

    def _get(self, key: tuple, new) -> Future:
        now = time.monotonic()
        with self.lock:
            created, fut = self.items.pop(key, (now, None))
            stale = fut is not None and (now - created > self.TTL or (fut.done() and fut.exception()))
            if fut is None or stale:  # a DataError is not kept: the next try builds again
                created, fut = now, new()
            self.items[key] = (created, fut)  # the newest at the end
            while len(self.items) > self.MAX:
                self.items.pop(next(iter(self.items)))
            return fut


@st.cache_resource(show_spinner=False)
def _builds() -> _Builds:
    return _Builds()
