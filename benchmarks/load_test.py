"""Load test: 30 browser sessions on one server, each starting a run at the same time.

    python benchmarks/load_test.py [--sessions 30] [--epochs 20]

Starts `streamlit run app.py` (training in 2 worker processes), opens one Chromium context per session,
clicks Start in all of them, then watches: every run must finish (none lost; the queue is shown while they
wait), pages must stay responsive (a probe session keeps navigating between pages and the slowest settle
time is reported), and the server's memory (server + worker processes) is sampled for its peak. Prints a
summary and one JSON line. Needs Debian's Chromium at /usr/bin/chromium and the dev requirements.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from conftest import CHROMIUM, CHROMIUM_ARGS, Server  # noqa: E402
from helpers import click, key, query, wait_idle  # noqa: E402


def tree_rss_mb(pid: int) -> tuple[float, int, int]:
    """(RSS of the process and its children in MB, number of processes, number of threads)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
        rss = sum(p.memory_info().rss for p in procs if p.is_running())
        threads = sum(p.num_threads() for p in procs if p.is_running())
        return rss / 1e6, len(procs), threads
    except psutil.Error:
        return 0.0, 0, 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the built-in data per run")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="ffnlp-load-"))
    server = Server(tmp / "runs")
    print(f"server up in {server.ready_seconds:.1f} s on port {server.port}")
    samples, stop_sampling = [], threading.Event()

    def sample():
        while not stop_sampling.is_set():
            samples.append(tree_rss_mb(server.proc.pid))
            time.sleep(0.5)

    threading.Thread(target=sample, daemon=True).start()
    report = {"sessions": args.sessions, "epochs": args.epochs, "cores": os.cpu_count()}
    try:
        with sync_playwright() as p:
            # The 30 sessions' Chromium runs at the lowest priority: in a class each browser is on its own
            # laptop, here all of them share this machine's cores with the server they are loading.
            nice_chromium = tmp / "chromium-nice.sh"
            nice_chromium.write_text(f'#!/bin/sh\nexec nice -n 19 {CHROMIUM} "$@"\n')
            nice_chromium.chmod(0o755)
            browser = p.chromium.launch(executable_path=str(nice_chromium), args=CHROMIUM_ARGS)
            probe_browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
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
            t_start = time.monotonic()
            for pg in pages:
                click(pg, "train_start")
            # While they train: a background thread times the server's plain HTTP answers (health check and
            # the app's page) every second, and a probe session in its own browser keeps navigating.
            http_times, http_done = [], threading.Event()

            def time_http():
                while not http_done.is_set():
                    for path in ("/_stcore/health", "/"):
                        t = time.monotonic()
                        try:
                            with urllib.request.urlopen(server.url(path), timeout=120) as r:
                                r.read()
                            http_times.append(time.monotonic() - t)
                        except OSError:
                            http_times.append(float("inf"))
                    time.sleep(1.0)

            threading.Thread(target=time_http, daemon=True).start()
            queue_seen = sum(
                1 for pg in pages if "Waiting in the queue" in pg.locator("[data-testid=stMain]").inner_text()
            )
            report["sessions_that_showed_the_queue"] = queue_seen
            probe = probe_browser.new_context().new_page()
            probe.set_default_navigation_timeout(120_000)
            settle = []
            sys.path.insert(0, str(ROOT))
            from ffnlp_core.store import RunStore

            runs_store = RunStore(tmp / "runs")
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                for path in ("/data", "/model", "/train", "/"):
                    t = time.monotonic()
                    probe.goto(server.url(path))
                    wait_idle(probe, timeout=120)
                    settle.append(time.monotonic() - t)
                statuses = [r.get("status") for r in runs_store.list_runs()]
                if len(statuses) >= args.sessions and all(
                    s in ("finished", "failed", "stopped") for s in statuses
                ):
                    break
            http_done.set()
            run_ids = {i: query(pg).get("run") for i, pg in enumerate(pages)}
            report["sessions_with_a_run_id"] = sum(1 for r in run_ids.values() if r)
            report["all_done_seconds"] = time.monotonic() - t_start
            final = {rid: runs_store.status(rid).get("status") for rid in run_ids.values() if rid}
            report["runs_finished"] = sum(1 for s in final.values() if s == "finished")
            report["runs_lost_or_failed"] = len(run_ids) - report["runs_finished"]
            report["slowest_page_settle_seconds"] = max(settle)
            report["median_page_settle_seconds"] = sorted(settle)[len(settle) // 2]
            report["page_loads_measured"] = len(settle)
            report["slowest_http_answer_seconds"] = max(http_times)
            report["median_http_answer_seconds"] = sorted(http_times)[len(http_times) // 2]
            report["http_answers_measured"] = len(http_times)
            browser.close()
            probe_browser.close()
    finally:
        stop_sampling.set()
        time.sleep(0.6)
        server.stop()
    peak = max(samples, key=lambda s: s[0]) if samples else (0, 0, 0)
    report["peak_rss_mb"] = peak[0]
    report["processes_at_peak"] = peak[1]
    report["threads_at_peak"] = peak[2]
    for k, v in report.items():
        print(f"{k:>34}: {v:.2f}" if isinstance(v, float) else f"{k:>34}: {v}")
    print(json.dumps(report))
    return 0 if report.get("runs_lost_or_failed", 1) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
