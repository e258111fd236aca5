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
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            pages = []
            t0 = time.monotonic()
            for _ in range(args.sessions):
                pg = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
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
            run_ids, queue_seen = {}, 0
            for i, pg in enumerate(pages):
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and not query(pg).get("run"):
                    time.sleep(0.2)
                run_ids[i] = query(pg).get("run")
                if "Waiting in the queue" in pg.locator("[data-testid=stMain]").inner_text():
                    queue_seen += 1
            report["sessions_with_a_run_id"] = sum(1 for r in run_ids.values() if r)
            report["sessions_that_showed_the_queue"] = queue_seen
            # a probe session navigates while everyone trains: the slowest page settle is the responsiveness
            probe = browser.new_context().new_page()
            probe.goto(server.url("/"))
            wait_idle(probe, timeout=120)
            settle = []
            store = ROOT / "ffnlp_core"
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
            report["all_done_seconds"] = time.monotonic() - t_start
            final = {rid: runs_store.status(rid).get("status") for rid in run_ids.values() if rid}
            report["runs_finished"] = sum(1 for s in final.values() if s == "finished")
            report["runs_lost_or_failed"] = len(run_ids) - report["runs_finished"]
            report["slowest_page_settle_seconds"] = max(settle)
            report["median_page_settle_seconds"] = sorted(settle)[len(settle) // 2]
            report["page_loads_measured"] = len(settle)
            del store
            browser.close()
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
