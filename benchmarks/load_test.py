"""Load test: a class of 30 sessions on one server, each starting a run at the same moment.

    python benchmarks/load_test.py [--sessions 30] [--epochs 20] [--clients ws|chromium] [--quiet 20]
        [--no-browser-probe] [--max-concurrent N] [--py-spy FILE] [--backend process|ray|both]

Starts `streamlit run app.py` (training in worker processes, one per core, as served; `--backend ray`:
in Ray actors of a local Ray instance the server starts, FFNLP_WORKERS=ray; `both`: one after the other
in the same run, the same class on each, and the figures side by side), measures a quiet
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
- resources: peak RSS of the server and its worker processes (all together, and each process's own peak
  by kind: server, worker, ray::Trainer, raylet, gcs_server, ...), their thread counts, and the load
  clients' own CPU time (they share this machine's cores with the server).

`--clients ws` (default) simulates each student's tab with `ws_session.WsSession`, which speaks
Streamlit's websocket protocol like the browser (widget values, fragment timers, message cache) at a
fraction of a browser's CPU: in a class each browser runs on its own laptop, so 30 Chromiums on the
server's own 2 cores would measure the browsers, not the server. `--clients chromium` does that anyway,
for comparison; it cannot give them a lower priority: Chromium sets its own threads back to nice 0
(seen with `ps -eLo ni,comm` under `nice -n 19`), so they compete with the server at equal weight. `--py-spy FILE` records the server's stacks (py-spy must be
installed; it is not a requirement). Prints a summary and one JSON line (with `both`: {"process": ...,
"ray": ...}); exit 1 when a run was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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


def kind(proc: psutil.Process, root: int) -> str:
    """What a process of the server's tree is: server, worker (a spawned training or UMAP process), or
    Ray's own (ray::Trainer is a worker actor, raylet, gcs_server, ...)."""
    if proc.pid == root:
        return "server"
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return "?"
    if cmd and cmd[0].startswith("ray::"):
        return cmd[0].split(".")[0].split()[0]  # ray::Trainer.train -> ray::Trainer, ray::IDLE
    if any("spawn_main" in c for c in cmd):
        return "worker"  # a training process (or the UMAP one)
    if any("resource_tracker" in c for c in cmd):
        return "resource tracker"
    if any("/ray/" in c for c in cmd):  # raylet, gcs_server, Ray's Python helpers
        exe = next((c for c in cmd if "/ray/" in c), cmd[0])
        return "ray:" + Path(exe).name.removesuffix(".py")
    return " ".join([Path(cmd[0]).name, *cmd[1:3]]).splitlines()[0][:40] if cmd else proc.name()


def tree(pid: int) -> tuple[float, int, int, list[int], dict[int, tuple[str, float]]]:
    """(RSS of a process and its children in MB, processes, threads, threads of each child,
    {pid: (kind, RSS in MB)})."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
        alive, each = [], {}
        for p in procs:
            try:
                each[p.pid] = (kind(p, pid), p.memory_info().rss / 1e6, p.num_threads())
                alive.append(p)
            except psutil.Error:  # gone meanwhile
                pass
        return (
            sum(rss for _, rss, _ in each.values()),
            len(alive),
            sum(n for _, _, n in each.values()),
            [n for q, (_, _, n) in each.items() if q != pid],
            {q: (k, rss) for q, (k, rss, _) in each.items()},
        )
    except psutil.Error:
        return 0.0, 0, 0, [], {}


def peaks_by_kind(samples: list[tuple]) -> dict[str, dict]:
    """Each process's own peak RSS (MB), grouped by kind: {kind: {"processes", "max_mb", "sum_mb"}}."""
    peak: dict[int, tuple[str, float]] = {}
    for *_, each in samples:
        for pid, (k, rss) in each.items():
            if rss > peak.get(pid, ("", 0.0))[1]:
                peak[pid] = (k, rss)
    kinds: dict[str, dict] = {}
    for k, rss in peak.values():
        row = kinds.setdefault(k, {"processes": 0, "max_mb": 0.0, "sum_mb": 0.0})
        row["processes"] += 1
        row["max_mb"] = round(max(row["max_mb"], rss), 1)
        row["sum_mb"] = round(row["sum_mb"] + rss, 1)
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1]["sum_mb"]))


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
        self.rss: list[tuple] = []  # tree() samples
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
    await asyncio.gather(*(s.wait_for_widget("train_epochs") for s in sessions))  # the data may be counted
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
    parser.add_argument(
        "--backend",
        choices=("process", "ray", "both"),
        default="process",
        help="where runs train: worker processes, Ray actors (a local Ray instance), or both in turn",
    )
    args = parser.parse_args(argv)
    backends = ("process", "ray") if args.backend == "both" else (args.backend,)
    reports = {b: run(args, b) for b in backends}
    for b, report in reports.items():
        print(f"--- backend: {b}")
        for k, v in report.items():
            if isinstance(v, dict):
                v = "  ".join(f"{a} {c:.2f}" if isinstance(c, float) else f"{a} {c}" for a, c in v.items())
            print(f"{k:>32}: {v:.2f}" if isinstance(v, float) else f"{k:>32}: {v}")
    if len(reports) > 1:
        print(side_by_side(reports))
    print(json.dumps(reports if len(reports) > 1 else reports[backends[0]]))
    return 0 if all(r["runs_lost_or_failed"] == 0 for r in reports.values()) else 1


SIDE_BY_SIDE = (  # (label, figure of a report)
    ("runs finished", lambda r: f"{r['runs_finished']}/{r['sessions']}"),
    ("all done after the clicks (s)", lambda r: f"{r['all_done_seconds']:.1f}"),
    ("server up (s)", lambda r: f"{r['server_up_seconds']:.1f}"),
    (
        "new visitor page, training: median (s)",
        lambda r: f"{r['visitor_training_seconds'].get('median', 0):.2f}",
    ),
    ("new visitor page, training: max (s)", lambda r: f"{r['visitor_training_seconds'].get('max', 0):.2f}"),
    ("new visitor page, quiet: median (s)", lambda r: f"{r['visitor_quiet_seconds'].get('median', 0):.2f}"),
    ("sessions that showed the queue", lambda r: str(r["sessions_that_showed_the_queue"])),
    ("peak RSS, all processes (MB)", lambda r: f"{r['peak_rss_mb']:.0f}"),
    ("processes at the peak", lambda r: str(r["processes_at_peak"])),
)


def side_by_side(reports: dict[str, dict]) -> str:
    """The two backends' headline figures, one row each, and each process kind's peak memory."""
    names = list(reports)
    lines = [f"{'':>40}  " + "  ".join(f"{n:>12}" for n in names)]
    for label, figure in SIDE_BY_SIDE:
        lines.append(f"{label:>40}  " + "  ".join(f"{figure(reports[n]):>12}" for n in names))
    for n in names:
        for k, row in reports[n]["peak_rss_by_kind_mb"].items():
            lines.append(
                f"{n:>8} {k:>31}  {row['processes']:>3} process(es), peak {row['max_mb']:.0f} MB each at most"
            )
    return "\n".join(lines)


def run(args: argparse.Namespace, backend: str = "process") -> dict:
    """One load test on one backend; returns the report (see the module docstring)."""
    tmp = Path(tempfile.mkdtemp(prefix="ffnlp-load-"))
    (tmp / "runs").mkdir()
    env = {"FFNLP_MAX_CONCURRENT": str(args.max_concurrent)}
    if backend == "ray":  # a local Ray instance, started by the server's first slot (127.0.0.1 only)
        env |= {"FFNLP_WORKERS": "ray", "FFNLP_RAY_ADDRESS": "", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    started_at = time.time() - 1.0
    server = Server(tmp / "runs", env=env)
    print(f"[{backend}] server up in {server.ready_seconds:.1f} s on port {server.port}", file=sys.stderr)
    store = RunStore(tmp / "runs")
    probes = Probes()
    mon = Monitor(server, probes)
    report: dict = {"backend": backend, "sessions": args.sessions, "epochs": args.epochs}
    report |= {"clients": args.clients, "cores": os.cpu_count(), "server_up_seconds": server.ready_seconds}
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
        stop_leftovers(mon.rss, server.proc.pid, started_at)
    report["load_client_cpu_seconds"] = time.process_time() - cpu0
    final = [r.get("status") for r in store.list_runs()]
    report["runs"] = len(final)
    report["runs_finished"] = sum(1 for s in final if s == "finished")
    report["runs_lost_or_failed"] = args.sessions - report["runs_finished"]
    for probe in ("visitor", "browser", "http"):
        for phase in ("quiet", "opening", "training"):
            report[f"{probe}_{phase}_seconds"] = summary(probes.of(probe, phase))
        report[f"{probe}_worst"] = probes.worst(probe)
    peak = max(mon.rss, key=lambda s: s[0]) if mon.rss else (0.0, 0, 0, [], {})
    report["peak_rss_mb"] = peak[0]
    report["processes_at_peak"], report["threads_at_peak"] = peak[1], peak[2]
    report["worker_threads_at_peak"] = peak[3]
    report["peak_rss_by_kind_mb"] = peaks_by_kind(mon.rss)
    report["errors"] = probes.errors[:5]
    return report


def stop_leftovers(samples: list[tuple], server_pid: int, since: float, wait: float = 15.0) -> None:
    """End the processes of the server's tree that outlived it (a local Ray instance's, should the server
    not have shut it down), by their pids as sampled (and started after `since`), never by name."""
    pids = {pid for *_, each in samples for pid in each if pid != server_pid}
    alive = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            orphan = proc.ppid() == 1 or proc.parent() is None or proc.parent().pid in pids
            if orphan and proc.create_time() >= since:  # not a reused pid
                alive.append(proc)
        except psutil.Error:
            pass
    deadline = time.monotonic() + wait
    while alive and time.monotonic() < deadline:  # Ray shuts its own processes down first
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.5)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
