"""A Streamlit browser session without the browser: speaks the app's websocket protocol, for load tests.

One `WsSession` is one tab. It does what Streamlit's frontend does for our pages, and nothing more:
- connects to `/_stcore/stream` and asks for a full script run of a url path (`/train`, `/data`, ...);
- keeps every widget id it has seen (ids end with the widget key) and sends back the values it set, so
  "set train_epochs to 20, then click train_start" is two reruns, as in the browser;
- runs each fragment's `run_every` timer (`auto_rerun` messages; cleared at every full run and by
  `stop_auto_rerun`), which is how live views refresh;
- keeps the hashes of cacheable messages and sends them with each rerun, as the frontend's message cache
  does, so the server can answer with references.

It records what a load test needs: the text of the elements on screen (markdown, alerts, progress), and
how long each script run took from request to `script_finished`. Costs a few ms of CPU per message: 30 of
them in one asyncio loop weigh far less than 30 Chromiums, so the server, not the clients, is measured.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

TEXT_FIELDS = {"markdown": "body", "alert": "body", "progress": "text", "heading": "body", "text": "body"}


class WsSession:
    """One simulated tab on a Streamlit server at `base` (http://host:port)."""

    def __init__(self, base: str, query: dict | None = None):
        self.base = base.rstrip("/")
        self.query = dict(query or {})
        self.ws = None
        self.page_name = ""  # asked for by url path until the server told us the page's hash
        self.page_hash = ""
        self.pages: dict[str, str] = {}  # url path -> page script hash (from the navigation message)
        self.widget_ids: dict[str, str] = {}  # key -> full widget id
        self.values: dict[str, WidgetState] = {}  # widget id -> the value this tab set
        self.texts: dict[tuple, tuple[str, str, str]] = {}  # delta path -> (fragment id, run id, text)
        self.cache: dict[str, ForwardMsg] = {}  # hash -> cacheable message, for the server's references
        self.timers: dict[str, tuple[float, asyncio.Task]] = {}
        self.run_times: list[tuple[str, float, float]] = []  # (kind, started, seconds) per finished run
        self.errors: list[str] = []
        # (kind, t0, done) of the runs asked for and not finished yet: full runs and fragment runs apart
        self._pending: list[tuple[str, float, asyncio.Future]] = []  # full runs asked for: (kind, t0, done)
        self._fragments: dict[str, list[float]] = {}  # fragment id -> when each of its reruns was asked for
        self._serving: list[float] = []  # the requests the fragment run in progress answers
        self._reader: asyncio.Task | None = None
        self._run_id = ""
        self._closing = False

    # --- connection ----------------------------------------------------------------------------
    async def open(self, path: str = "/", timeout: float = 120) -> float:
        """Connect and run the page at `path`; returns the seconds until that run finished."""
        host = self.base.split("://", 1)[1]
        self.ws = await websockets.connect(
            f"ws://{host}/_stcore/stream",
            subprotocols=["streamlit"],
            origin=self.base,
            max_size=None,
            open_timeout=timeout,
        )
        self._reader = asyncio.create_task(self._read())
        return await self.goto(path, timeout)

    async def close(self) -> None:
        self._closing = True
        for _, task in self.timers.values():
            task.cancel()
        self.timers.clear()
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()

    # --- what a user does ----------------------------------------------------------------------
    async def goto(self, path: str, timeout: float = 120) -> float:
        """Navigate to a url path (a full run of that page)."""
        name = path.strip("/")
        self.page_hash = self.pages.get(name, "")
        self.page_name = "" if self.page_hash else name
        return await self._rerun("page", timeout=timeout)

    async def wait_for_widget(self, key: str, timeout: float = 120) -> float:
        """Seconds until the page shows the widget `key`: in a server's first seconds a page that needs the
        data is drawn first as its title and a notice, and reruns itself (a fragment's timer) once the
        built-in data is counted."""
        t0 = time.monotonic()
        while key not in self.widget_ids:
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"no widget with key {key!r} after {timeout:.0f} s")
            await asyncio.sleep(0.05)
        return time.monotonic() - t0

    async def set_int(self, key: str, value: int, timeout: float = 120) -> float:
        wid = self._id(key)
        self.values[wid] = WidgetState(id=wid, int_value=value)
        return await self._rerun("widget", timeout=timeout)

    async def click(self, key: str, timeout: float = 120) -> float:
        wid = self._id(key)
        return await self._rerun("click", extra=[WidgetState(id=wid, trigger_value=True)], timeout=timeout)

    def text(self) -> str:
        """Every element text on screen, in page order."""
        return "\n".join(self.texts[k][2] for k in sorted(self.texts))

    # --- protocol ------------------------------------------------------------------------------
    def _id(self, key: str) -> str:
        if key not in self.widget_ids:
            raise KeyError(f"no widget with key {key!r} on this page (seen: {sorted(self.widget_ids)})")
        return self.widget_ids[key]

    async def _rerun(self, kind, fragment_id="", extra=(), timeout=None, wait=True) -> float:
        msg = BackMsg()
        rs = msg.rerun_script
        rs.query_string = urllib.parse.urlencode(self.query)
        rs.page_name = self.page_name
        rs.page_script_hash = self.page_hash
        rs.fragment_id = fragment_id
        rs.is_auto_rerun = bool(fragment_id)
        rs.widget_states.widgets.extend([*self.values.values(), *extra])
        rs.cached_message_hashes.extend(self.cache)
        t0 = time.monotonic()
        done = asyncio.get_running_loop().create_future()
        if fragment_id:
            self._fragments.setdefault(fragment_id, []).append(t0)
        else:
            self._pending.append((kind, t0, done))
        await self.ws.send(msg.SerializeToString())
        if not wait:
            return 0.0
        await asyncio.wait_for(done, timeout)
        return time.monotonic() - t0

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                fmsg = ForwardMsg()
                fmsg.ParseFromString(data)
                self._handle(fmsg)
        except (websockets.ConnectionClosed, asyncio.CancelledError):
            pass
        except Exception as exc:  # a load test reports it; it must not hang on it
            self.errors.append(f"{type(exc).__name__}: {exc}")
        if not self._closing:  # a tab the server dropped would look frozen: say so
            self.errors.append(f"the server closed the connection (code {self.ws.close_code})")

    def _handle(self, fmsg: ForwardMsg) -> None:
        kind = fmsg.WhichOneof("type")
        if kind == "ref_hash":  # "you have this one": the cached message, at this message's place
            cached = self.cache.get(fmsg.ref_hash)
            if cached is None:
                self.errors.append(f"reference to a message never received: {fmsg.ref_hash}")
                return
            full = ForwardMsg()
            full.CopyFrom(cached)
            full.metadata.CopyFrom(fmsg.metadata)
            fmsg, kind = full, full.WhichOneof("type")
        elif fmsg.metadata.cacheable and fmsg.hash:
            self.cache[fmsg.hash] = fmsg
        if kind == "new_session":
            self._run_id = fmsg.metadata.run.script_run_id  # the deltas that follow belong to this run
            # A fragment run answers every rerun of its fragments asked for before it started (the server
            # merges them); one asked for meanwhile waits for the next run.
            self._serving = [
                t for fid in fmsg.metadata.run.fragment_ids for t in self._fragments.pop(fid, [])
            ]
            if not fmsg.metadata.run.fragment_ids:  # a full run: the frontend drops every timer
                for _, task in self.timers.values():
                    task.cancel()
                self.timers.clear()
                self._fragments.clear()  # fragment reruns asked for before it will not come
        elif kind == "navigation":
            # st.navigation: the page this run drew; the frontend asks for it by hash from now on
            self.pages = {p.url_pathname: p.page_script_hash for p in fmsg.navigation.app_pages}
            self.page_hash, self.page_name = fmsg.navigation.page_script_hash, ""
        elif kind == "delta":
            self._delta(fmsg)
        elif kind == "auto_rerun":
            self._auto_rerun(fmsg.auto_rerun.fragment_id, fmsg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fid in fmsg.stop_auto_rerun.fragment_ids:
                if fid in self.timers:
                    self.timers.pop(fid)[1].cancel()
        elif kind == "script_finished":
            if fmsg.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                return  # the rerun that replaced it reports
            # What this run did not draw again is gone from the screen (of its fragments, for a fragment run).
            run = fmsg.metadata.run
            fragments = set(run.fragment_ids)
            for path, (fid, rid, _) in list(self.texts.items()):
                if rid != run.script_run_id and (not fragments or fid in fragments):
                    del self.texts[path]
            now = time.monotonic()
            if fmsg.script_finished == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
                self.run_times.extend(("fragment", t0, now - t0) for t0 in self._serving)
                self._serving = []
                return
            # Full runs finish in the order they were asked for; the server also starts some on its own
            # (st.rerun), which finish with no request waiting: nothing to time then.
            if self._pending:
                kind_, t0, done = self._pending.pop(0)
                self.run_times.append((kind_, t0, now - t0))
                if not done.done():
                    done.set_result(True)

    def _delta(self, fmsg: ForwardMsg) -> None:
        path = tuple(fmsg.metadata.delta_path)
        delta = fmsg.delta
        if delta.WhichOneof("type") != "new_element":
            return
        el = delta.new_element
        which = el.WhichOneof("type")
        if which is None:
            return
        inner = getattr(el, which)
        wid = getattr(inner, "id", "")
        if isinstance(wid, str) and wid.startswith("$$ID-"):
            self.widget_ids[wid.split("-", 2)[2]] = wid
        field = TEXT_FIELDS.get(which)
        if field:
            self.texts[path] = (delta.fragment_id, self._run_id, getattr(inner, field))
        else:
            self.texts.pop(path, None)

    def _auto_rerun(self, fragment_id: str, interval: float) -> None:
        old = self.timers.get(fragment_id)
        if old is not None and old[0] == interval:
            return
        if old is not None:
            old[1].cancel()

        async def tick():
            while True:
                await asyncio.sleep(interval)
                try:
                    await self._rerun("fragment", fragment_id=fragment_id, wait=False)
                except websockets.ConnectionClosed:
                    return  # the reader reports it

        self.timers[fragment_id] = (interval, asyncio.create_task(tick()))
