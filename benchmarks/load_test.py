"""Load test: a class of 30 sessions on one server, each starting a run at the same moment.

    python benchmarks/load_test.py [--sessions 30] [--epochs 20] [--clients ws|chromium] [--quiet 20]
        [--no-browser-probe] [--max-concurrent N] [--py-spy FILE]

Starts `streamlit run app.py` (training in worker processes, one per core, as served), measures a quiet
baseline for `--quiet` seconds, then opens one session per student on /train, sets the epochs and clicks
Start in all of them at once. The sessions stay on the page as a student would, their live views
refreshing, until every run is over. Meanwhile it measures, each figure per phase (quiet / opening /
training) so the loaded figures have their baseline from the same run:
- runs: every run must finish (none lost or failed), each session's own page must say so, and the
  sessions that waited must have shown the queue;
- responsiveness, three ways, about once a second each: a new visitor (a fresh websocket session: request
  -> page drawn, i.e. `script_finished`), a real Chromium navigating /data, /model, /train, / (time until
  the page settled), and plain HTTP answers (health check and the app's page); the worst of each with
  its phase and time;
- resources: peak RSS of the server and its worker processes, their thread counts, and the load clients'
  own CPU time (they share this machine's cores with the server).

`--clients ws` (default) simulates each student's tab with `ws_session.WsSession`, which speaks
Streamlit's websocket protocol like the browser (widget values, fragment timers, message cache) at a
fraction of a browser's CPU: in a class each browser runs on its own laptop, so 30 Chromiums on the
server's own 2 cores would measure the browsers, not the server. `--clients chromium` does that anyway,
for comparison; it cannot give them a lower priority: Chromium sets its own threads back to nice 0
(seen with `ps -eLo ni,comm` under `nice -n 19`), so they compete with the server at equal weight. `--py-spy FILE` records the server's stacks (py-spy must be
installed; it is not a requirement). Prints a summary and one JSON line; exit 1 when a run was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
sys.path.insert(0, str(ROOT))

from conftest import CHROMIUM, CHROMIUM_ARGS, Server  # noqa: E402
from helpers import click, key, wait_idle  # noqa: E402
from ws_session import WsSession  # noqa: E402

from ffnlp_core.runs.store import RunStore  # noqa: E402

QUEUE_TEXT = "Waiting in the queue"
PROBE_PATHS = ("/data", "/model", "/train", "/")
DONE = ("finished", "failed", "stopped", "interrupted")


def tree(pid: int) -> tuple[float, int, int, list[int]]:
    """(RSS of a process and its children in MB, processes, threads, threads of each child)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
        alive = [p for p in procs if p.is_running()]
        rss = sum(p.memory_info().rss for p in alive)
        return (
            rss / 1e6,
            len(alive),
            sum(p.num_threads() for p in alive),
            [p.num_threads() for p in alive[1:]],
        )
    except psutil.Error:
        return 0.0, 0, 0, []


def summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    v = sorted(values)
    return {
        "n": len(v),
        "median": statistics.median(v),
        "p95": v[min(len(v) - 1, int(0.95 * len(v)))],
        "max": v[-1],
    }


class Probes:
    """Page responses measured while the test runs, each tagged with the phase it started in: "quiet"
    (the server alone, the baseline of the same run), "opening" (the class loads /train), "training"
    (from the Start clicks until every run is over), "after"."""

    def __init__(self):
        self.t0 = time.monotonic()
        self.phases: list[tuple[float, str]] = [(self.t0, "quiet")]
        self.samples: list[tuple[str, str, float, float]] = []  # (probe, phase, seconds since start, s)
        self.errors: list[str] = []

    def set_phase(self, name: str) -> None:
        self.phases.append((time.monotonic(), name))

    def add(self, probe: str, started: float, seconds: float) -> None:
        phase = next(name for t, name in reversed(self.phases) if t <= started)
        self.samples.append((probe, phase, started - self.t0, seconds))

    def of(self, probe: str, phase: str | None = None) -> list[float]:
        return [s for p, ph, _, s in self.samples if p == probe and (phase is None or ph == phase)]

    def worst(self, probe: str) -> dict:
        rows = [r for r in self.samples if r[0] == probe]
        if not rows:
            return {}
        _, phase, at, sec = max(rows, key=lambda r: r[3])
        return {"seconds": sec, "phase": phase, "at_second": at}


class Monitor:
    """Server-side figures sampled in threads: RSS of the process tree, and plain HTTP answer times."""

    def __init__(self, server: Server, probes: Probes):
        self.server, self.probes, self.stop = server, probes, threading.Event()
        self.rss: list[tuple[float, int, int, list[int]]] = []
        threading.Thread(target=self._sample, daemon=True).start()
        threading.Thread(target=self._time_http, daemon=True).start()

    def _sample(self) -> None:
        while not self.stop.is_set():
            self.rss.append(tree(self.server.proc.pid))
            time.sleep(0.5)

    def _time_http(self) -> None:
        while not self.stop.is_set():
            for path in ("/_stcore/health", "/"):
                t = time.monotonic()
                try:
                    with urllib.request.urlopen(self.server.url(path), timeout=120) as r:
                        r.read()
                    self.probes.add("http", t, time.monotonic() - t)
                except OSError:
                    self.probes.add("http", t, float("inf"))
            self.stop.wait(1.0)


def browser_probe(server: Server, probes: Probes, stop: threading.Event) -> None:
    """A real Chromium (its own thread) navigating the pages, before and while the class trains."""
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
            page.set_default_navigation_timeout(120_000)
            while not stop.is_set():
                for path in PROBE_PATHS:
                    t = time.monotonic()
                    page.goto(server.url(path))
                    wait_idle(page, timeout=120)
                    probes.add("browser", t, time.monotonic() - t)
                    if stop.wait(1.0):
                        break
            browser.close()
    except Exception as exc:  # reported, never hangs the test
        probes.errors.append(f"browser probe: {type(exc).__name__}: {exc}")


def visitor_probe(server: Server, probes: Probes, stop: threading.Event) -> None:
    """A new visitor once a second (its own thread and event loop): a fresh websocket session,
    request -> page drawn."""

    async def visit(i: int) -> None:
        visitor = WsSession(server.url(""))
        t = time.monotonic()
        try:
            await visitor.open(PROBE_PATHS[i % len(PROBE_PATHS)], timeout=300)
            probes.add("visitor", t, time.monotonic() - t)
        finally:
            await visitor.close()

    async def loop() -> None:
        i = 0
        while not stop.is_set():
            try:
                await visit(i)
            except Exception as exc:
                probes.errors.append(f"visitor probe: {type(exc).__name__}: {exc}")
            i += 1
            await asyncio.sleep(1.0)

    asyncio.run(loop())


async def ws_class(server: Server, args, store: RunStore, report: dict, probes: Probes) -> None:
    """The class as websocket sessions, after a quiet baseline; waits for every run."""
    await asyncio.sleep(args.quiet)
    probes.set_phase("opening")
    sessions = [WsSession(server.url("")) for _ in range(args.sessions)]
    t0 = time.monotonic()
    await asyncio.gather(*(s.open("/train") for s in sessions))
    await asyncio.gather(*(s.set_int("train_epochs", args.epochs) for s in sessions))
    report["open_seconds"] = time.monotonic() - t0
    probes.set_phase("training")
    t_start = time.monotonic()
    clicks = await asyncio.gather(*(s.click("train_start") for s in sessions))
    report["start_click_seconds"] = summary(list(clicks))
    saw_queue: set[int] = set()
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        for i, s in enumerate(sessions):
            if QUEUE_TEXT in s.text():
                saw_queue.add(i)
        statuses = [r.get("status") for r in store.list_runs()]
        if len(statuses) >= args.sessions and all(st in DONE for st in statuses):
            break
        await asyncio.sleep(0.5)
    report["all_done_seconds"] = time.monotonic() - t_start
    probes.set_phase("after")
    # Every session must show its own run as finished (not just the store): what a student sees.
    # (the slowest live view refreshes every 5 s, the sidebar every 15 s)
    showing = 0
    for _ in range(40):
        showing = sum(1 for s in sessions if "**finished**" in s.text())
        if showing == len(sessions):
            break
        await asyncio.sleep(0.5)
    report["sessions_showing_finished"] = showing
    report["sessions_not_showing_finished"] = [  # what such a page shows instead, and its refresh timers
        {"text": s.text()[-300:], "timers": sorted(t for t, _ in s.timers.values())}
        for s in sessions
        if "**finished**" not in s.text()
    ][:3]
    report["sessions_that_showed_the_queue"] = len(saw_queue)
    frag = [sec for s in sessions for kind, _, sec in s.run_times if kind == "fragment"]
    report["live_refresh_seconds"] = summary(frag)
    report["ws_errors"] = [e for s in sessions for e in s.errors][:5]
    for s in sessions:
        await s.close()


def chromium_class(server: Server, args, store: RunStore, report: dict, probes: Probes, tmp: Path) -> None:
    """The class as 30 Chromium contexts on this machine: the browsers' cost included (at the server's
    priority: `nice` does not hold for Chromium, see the module docstring)."""
    from playwright.sync_api import sync_playwright

    time.sleep(args.quiet)
    probes.set_phase("opening")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages = []
        t0 = time.monotonic()
        for _ in range(args.sessions):
            pg = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
            pg.set_default_navigation_timeout(120_000)
            pg.goto(server.url("/train"))
            pages.append(pg)
        for pg in pages:
            wait_idle(pg, timeout=120)
            box = key(pg, "train_epochs").locator("input")
            box.fill(str(args.epochs))
            box.press("Enter")
        for pg in pages:
            wait_idle(pg, timeout=120)
        report["open_seconds"] = time.monotonic() - t0
        probes.set_phase("training")
        t_start = time.monotonic()
        for pg in pages:
            click(pg, "train_start")
        saw_queue: set[int] = set()
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            # The last sessions to click wait longest: look at them first (a sweep over 30 starved
            # browsers takes a while, and a session that already trains no longer shows the queue).
            for i in reversed(range(len(pages))):
                if i not in saw_queue and pages[i].get_by_text(QUEUE_TEXT).count():
                    saw_queue.add(i)
            statuses = [r.get("status") for r in store.list_runs()]
            if len(statuses) >= args.sessions and all(st in DONE for st in statuses):
                break
            time.sleep(1.0)
        report["all_done_seconds"] = time.monotonic() - t_start
        probes.set_phase("after")
        report["sessions_that_showed_the_queue"] = len(saw_queue)
        browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the built-in data per run")
    parser.add_argument("--clients", choices=("ws", "chromium"), default="ws")
    parser.add_argument("--quiet", type=float, default=20, help="seconds of baseline before the class")
    parser.add_argument("--no-browser-probe", action="store_true", help="skip the real-Chromium probe")
    parser.add_argument(
        "--py-spy", metavar="FILE", help="record the server with py-spy (raw format) into FILE"
    )
    parser.add_argument(
        "--max-concurrent", default="", help="runs training at once (default: one per core, as served)"
    )
    parser.add_argument("--timeout", type=float, default=900)
    report = run(parser.parse_args(argv))
    for k, v in report.items():
        if isinstance(v, dict):
            v = "  ".join(f"{a} {b:.2f}" if isinstance(b, float) else f"{a} {b}" for a, b in v.items())
        print(f"{k:>32}: {v:.2f}" if isinstance(v, float) else f"{k:>32}: {v}")
    print(json.dumps(report))
    return 0 if report["runs_lost_or_failed"] == 0 else 1


def run(args: argparse.Namespace) -> dict:
    """One load test; returns the report (see the module docstring)."""
    tmp = Path(tempfile.mkdtemp(prefix="ffnlp-load-"))
    (tmp / "runs").mkdir()
    server = Server(tmp / "runs", env={"FFNLP_MAX_CONCURRENT": str(args.max_concurrent)})
    print(f"server up in {server.ready_seconds:.1f} s on port {server.port}", file=sys.stderr)
    store = RunStore(tmp / "runs")
    probes = Probes()
    mon = Monitor(server, probes)
    report: dict = {"sessions": args.sessions, "epochs": args.epochs, "clients": args.clients}
    report["cores"] = os.cpu_count()
    spy = None
    if args.py_spy:
        spy = subprocess.Popen(
            ["py-spy", "record", "-p", str(server.proc.pid), "-r", "100", "-f", "raw", "-t", "--nonblocking"]
            + ["-o", args.py_spy],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    cpu0 = time.process_time()
    stop = threading.Event()
    threads = [threading.Thread(target=visitor_probe, args=(server, probes, stop))]
    if not args.no_browser_probe and Path(CHROMIUM).exists():
        threads.append(threading.Thread(target=browser_probe, args=(server, probes, stop)))
    try:
        for t in threads:
            t.start()
        if args.clients == "ws":
            asyncio.run(ws_class(server, args, store, report, probes))
        else:
            chromium_class(server, args, store, report, probes, tmp)
        stop.set()
        for t in threads:
            t.join(180)
    finally:
        stop.set()
        mon.stop.set()
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            spy.wait(30)
        time.sleep(0.6)
        server.stop()
    report["load_client_cpu_seconds"] = time.process_time() - cpu0
    final = [r.get("status") for r in store.list_runs()]
    report["runs"] = len(final)
    report["runs_finished"] = sum(1 for s in final if s == "finished")
    report["runs_lost_or_failed"] = args.sessions - report["runs_finished"]
    for probe in ("visitor", "browser", "http"):
        for phase in ("quiet", "opening", "training"):
            report[f"{probe}_{phase}_seconds"] = summary(probes.of(probe, phase))
        report[f"{probe}_worst"] = probes.worst(probe)
    peak = max(mon.rss, key=lambda s: s[0]) if mon.rss else (0.0, 0, 0, [])
    report["peak_rss_mb"] = peak[0]
    report["processes_at_peak"], report["threads_at_peak"] = peak[1], peak[2]
    report["worker_threads_at_peak"] = peak[3]
    report["errors"] = probes.errors[:5]
    return report


if __name__ == "__main__":
    sys.exit(main())
