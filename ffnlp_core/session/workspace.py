"""Per-browser-session workspaces kept on the server, so that reloading a tab loses nothing.

A workspace holds what one user has set up: the data (as a Dataset), the configuration and the runs they
started. Its key (`sid`) lives in the page URL; the registry keeps the most recently used workspaces
and forgets idle ones (their runs stay on disk).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..config import RunConfig

if TYPE_CHECKING:  # annotations only: a workspace is made before the data modules are imported
    from ..data.dataset import Dataset
    from ..data.reading import Table


@dataclass
class Workspace:
    sid: str
    config: RunConfig = field(default_factory=RunConfig)
    _dataset: Dataset | None = None  # the current, validated data (see `dataset`)
    pending: Future | None = field(default=None, repr=False)  # a data set still being built
    table: Table | None = None  # the current file as read (for choosing columns)
    data_name: str = ""  # "built-in: interaction" or the name of the file last read (it may be refused)
    dataset_name: str = ""  # the name of the data the current dataset was built from (what is in use)
    data_error: str = ""  # the last refused upload's message (the previous data stays)
    upload_key: str = ""  # identity of the file the current table came from (name + size + hash)
    refused_upload: str = ""  # identity of the last file refused (not read again on every rerun)
    dataset_key: tuple = ()  # the settings the current dataset was built with
    run_id: str = ""  # the run the pages show
    run_ids: list[str] = field(default_factory=list)  # every run started here, oldest first
    classroom: bool = False
    extras: dict = field(default_factory=dict)  # per-page state that must survive a reload (e.g. run groups)
    last_used: float = field(default_factory=time.time)

    @property
    def dataset(self) -> Dataset | None:
        """The current data set; waits for one still being built (`pending`) on first use."""
        if self.pending is not None:
            self._dataset, self.pending = self.pending.result(), None
        return self._dataset

    @dataset.setter
    def dataset(self, value: Dataset | None) -> None:
        """A new data set, built from the data `data_name` names (set that first)."""
        self._dataset, self.pending = value, None
        self.dataset_name = self.data_name if value is not None else ""

    def build_pending(self, future: Future) -> None:
        """The data set `data_name` names is being built: `dataset` waits for it on first use."""
        self.pending, self.dataset_name = future, self.data_name

    @property
    def dataset_ready(self) -> bool:
        """True when reading `dataset` does not wait (a page can draw before the bag of words is built)."""
        return self.pending is None or self.pending.done()

    def remember_run(self, run_id: str) -> None:
        self.run_id = run_id
        if run_id not in self.run_ids:
            self.run_ids.append(run_id)


class Workspaces:
    """Thread-safe registry sid -> Workspace with LRU eviction and an idle timeout."""

    def __init__(self, max_workspaces: int = 200, idle_seconds: float = 6 * 3600):
        self.max_workspaces, self.idle_seconds = max_workspaces, idle_seconds
        self._items: OrderedDict[str, Workspace] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sid: str | None) -> Workspace:
        """The workspace for sid (a new one, with a fresh sid, when unknown or missing)."""
        now = time.time()
        with self._lock:
            ws = self._items.get(sid) if sid else None
            if ws is None:
                ws = Workspace(sid=sid if _valid(sid) else secrets.token_urlsafe(9))
                self._items[ws.sid] = ws
            self._items.move_to_end(ws.sid)
            ws.last_used = now
            while len(self._items) > self.max_workspaces:
                self._items.popitem(last=False)
            for key in [k for k, w in self._items.items() if now - w.last_used > self.idle_seconds]:
                del self._items[key]
            return ws

    def __len__(self) -> int:
        return len(self._items)


def _valid(sid: str | None) -> bool:
    return bool(sid) and 6 <= len(sid) <= 40 and all(c.isalnum() or c in "-_" for c in sid)
