"""The app's own speed, as a user meets it:

    python benchmarks/bench_app.py [--csv PATH] [--repeats 3]
    python benchmarks/bench_app.py --first-page [--repeats 3] [--json]

Without --first-page:

1. `streamlit run app.py` to a usable page: seconds until the server answers, and until the first page has
   rendered completely in Chromium.
2. Click Start -> first loss point on screen, for the Davidson tweets uploaded through the Data page
   (min_df 2, the lecture's network), measured in the browser.
3. Streaming costs little: the examples/s of the same run (10 epochs by default) trained in the app (worker
   process, events streamed to the page that watches it) and through the CLI, alternating.
Chromium is kept on the first core (taskset -c 0): in a class each browser runs on a student's own machine,
not on the server, and Chromium drawing the live Plotly charts in software would otherwise take a whole
core of this 2-core box from the training process (--same-priority to turn that off). The `nice -n 19`
beside it does not hold: Chromium sets its own threads back to nice 0 (seen with `ps -eLo ni,comm`); the
core pinning does hold. Prints a table and one JSON line.

With --first-page, only this (goal: first page <= 2 s, page switches <= 0.7 s):

4. A fast first page, against a bare Streamlit page measured in the same run. --repeats times each,
   alternating: a fresh `python -m streamlit run` server on a free 127.0.0.1 port, for a bare page
   (st.title + st.write, written to a temp folder and run there) and for ffnlp's app.py (repository root,
   FFNLP_RUNS_DIR in a temp folder); seconds from the first answer of /_stcore/health to the first page
   settled in a fresh Chromium context: connected, script not running, no stSkeleton, a title (h1) shown,
   all holding for --hold seconds (the time counted is when that began). Then, on each ffnlp server, page
   switches: a click on each sidebar link (Data, Model, Train, Gradients, Representations, Try it,
   Lessons, Noise lab, Compare runs, Home) to that page settled (its address, a new title), and for Data
   also to its class-balance chart drawn (a server's first seconds may show "counting words" first). Prints the
   first-page median/min/max of both, the ratio ffnlp / bare of the medians and the switches' median and
   max; --json adds one JSON object. Chromium here runs unpinned, at normal priority. Servers are stopped
   (their whole process group) at the end, also on errors; nothing goes beyond the loopback interface
   (usage stats off, no proxy for the health checks).

Needs Debian's Chromium (/usr/bin/chromium, never `playwright install`) and the dev requirements.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
sys.path.insert(0, str(ROOT))

from conftest import CHROMIUM, CHROMIUM_ARGS, Server, free_port  # noqa: E402
from helpers import CONNECTED, IDLE, click, key, nav, query, wait_for, wait_idle  # noqa: E402

from ffnlp_core.runs.store import RunStore  # noqa: E402

DEFAULT_CSV = ROOT.parent / "shared" / "data" / "davidson_labeled_tweets.csv"
LAST_STEP = """() => {
  const plot = document.querySelector('.st-key-train_charts .js-plotly-plot');
  const t = plot && plot._fullData;
  if (!t || !t.length || !t[0].x || !t[0].x.length) return 0;
  return Number(t[0].x[t[0].x.length - 1]);
}"""


BARE_APP = 'import streamlit as st\n\nst.title("A bare page")\nst.write("Nothing else on it.")\n'
SWITCHES = [
    "Data",
    "Model",
    "Train",
    "Gradients",
    "Representations",
    "Try it",
    "Lessons",
    "Noise lab",
    "Compare runs",
    "Home",
]
# Resolves once the page has been settled for `hold` ms without a break: connected, no script run, no
# skeleton, a visible h1 in the main area (other than `notTitle`), at `path` when one is given. Returns the
# title and how many ms ago the settled stretch began; rejects after `timeout` ms.
SETTLED = """({connected, idle, path, notTitle, hold, timeout}) => new Promise((resolve, reject) => {
  const settled = () => {
    if (!document.querySelector(connected) || !document.querySelector(idle)) return null;
    if (document.querySelector('[data-testid=stSkeleton]')) return null;
    if (path !== null && window.location.pathname !== path) return null;
    for (const h of document.querySelectorAll('[data-testid=stMain] h1')) {
      const text = h.innerText.trim();
      const box = h.getBoundingClientRect();
      if (text && text !== notTitle && box.width > 0 && box.height > 0) return text;
    }
    return null;
  };
  const start = performance.now();
  let since = null;
  const tick = () => {
    const now = performance.now();
    const title = settled();
    if (title === null) since = null;
    else if (since === null) since = now;
    if (since !== null && now - since >= hold) return resolve({title, ago: now - since});
    if (now - start > timeout) return reject(new Error('the page did not settle in ' + timeout + ' ms'));
    setTimeout(tick, 10);
  };
  tick();
})"""
# The Data page fully drawn (its class-balance chart on screen), not only settled.
DATA_DRAWN = ".st-key-data_balance .js-plotly-plot .main-svg"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, whatever the env


class Served:
    """`python -m streamlit run APP` on a free 127.0.0.1 port in its own process group; `health_at` is the
    time.monotonic() of the first answer of /_stcore/health."""

    def __init__(self, app: str, cwd: Path, env: dict, log: Path, timeout: float = 120.0):
        self.port = free_port()
        self.log_path = log
        self.log = open(log, "w")  # noqa: SIM115
        self.started = time.monotonic()
        self.stopped = False
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                app,
                "--server.headless",
                "true",
                "--server.port",
                str(self.port),
                "--server.address",
                "127.0.0.1",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = self.started + timeout
        while True:
            try:
                with NO_PROXY.open(self.url("/_stcore/health"), timeout=1) as r:
                    if r.status == 200:
                        self.health_at = time.monotonic()
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"streamlit did not answer its health check; see {log}")
            time.sleep(0.02)
        self.answers_seconds = self.health_at - self.started

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        # what is left of its process group (job manager workers, a server that did not stop)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)
        self.log.close()


def settle(page, since: float, path: str | None = None, not_title: str = "", hold: float = 0.3) -> tuple:
    """Seconds from `since` (time.monotonic()) until the page settled (see SETTLED), and its title."""
    got = page.evaluate(
        SETTLED,
        {
            "connected": CONNECTED,
            "idle": IDLE,
            "path": path,
            "notTitle": not_title,
            "hold": hold * 1000,
            "timeout": 120_000,
        },
    )
    return time.monotonic() - got["ago"] / 1000 - since, got["title"]


def spread(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def first_page(repeats: int, hold: float, as_json: bool) -> int:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="ffnlp-first-page-"))
    (tmp / "bare").mkdir()
    (tmp / "bare" / "bare_app.py").write_text(BARE_APP)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally below stops the servers
    first = {"bare": [], "ffnlp": []}
    answers = {"bare": [], "ffnlp": []}
    switches: dict[str, list[float]] = {label: [] for label in SWITCHES}
    data_drawn: list[float] = []
    servers: list[Served] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for i in range(repeats):
                for name in ("bare", "ffnlp"):
                    context = browser.new_context(viewport={"width": 1400, "height": 1000})
                    page = context.new_page()  # ready before the server starts: not counted
                    if name == "bare":
                        app, cwd, env = "bare_app.py", tmp / "bare", {}
                    else:
                        app, cwd, env = "app.py", ROOT, {"FFNLP_RUNS_DIR": str(tmp / f"runs-{i}")}
                    server = Served(app, cwd, env, tmp / f"streamlit-{name}-{i}.log")
                    servers.append(server)
                    answers[name].append(server.answers_seconds)
                    page.goto(server.url("/"))
                    seconds, title = settle(page, server.health_at, hold=hold)
                    first[name].append(seconds)
                    if name == "ffnlp":
                        for label in SWITCHES:
                            link = page.locator("[data-testid=stSidebarNav] a", has_text=label).first
                            path = page.evaluate("(a) => new URL(a.href).pathname", link.element_handle())
                            t = time.monotonic()
                            link.click()
                            seconds, title = settle(page, t, path=path, not_title=title, hold=hold)
                            switches[label].append(seconds)
                            if label == "Data":  # settled may be the "counting words" notice: also its charts
                                page.wait_for_selector(DATA_DRAWN, timeout=120_000)
                                data_drawn.append(time.monotonic() - t)
                    context.close()
                    server.stop()
            browser.close()
    finally:
        for server in servers:
            server.stop()
    shutil.rmtree(tmp, ignore_errors=True)  # kept, with the servers' logs, where a measurement failed
    every_switch = [x for xs in switches.values() for x in xs]
    slowest = max(switches, key=lambda label: max(switches[label]))
    report = {
        "machine": f"{os.cpu_count()} CPU cores",
        "repeats": repeats,
        "hold_seconds": hold,
        "bare_first_page_seconds": first["bare"],
        "ffnlp_first_page_seconds": first["ffnlp"],
        "bare_first_page": spread(first["bare"]),
        "ffnlp_first_page": spread(first["ffnlp"]),
        "ffnlp_over_bare": statistics.median(first["ffnlp"]) / statistics.median(first["bare"]),
        "bare_server_answers_seconds": answers["bare"],
        "ffnlp_server_answers_seconds": answers["ffnlp"],
        "switch_seconds": switches,
        "switch_median_seconds": statistics.median(every_switch),
        "switch_max_seconds": max(every_switch),
        "switch_slowest_page": slowest,
        "data_page_drawn_seconds": data_drawn,
    }
    print(f"first page: seconds from /_stcore/health answering to settled in Chromium, {repeats} starts each")
    print(f"({report['machine']}; settled = held {hold} s; goal ffnlp <= 2 s)")
    for name in ("bare", "ffnlp"):
        f = report[f"{name}_first_page"]
        runs = " ".join(f"{x:.2f}" for x in first[name])
        print(f"  {name:>5}: median {f['median']:.2f}  min {f['min']:.2f}  max {f['max']:.2f}   [{runs}]")
    print(f"  ffnlp / bare (medians): {report['ffnlp_over_bare']:.2f}")
    for name in ("bare", "ffnlp"):
        print(f"  {name:>5} server, start to health answer: " + " ".join(f"{x:.2f}" for x in answers[name]))
    print(f"page switches in ffnlp: click to settled, {len(every_switch)} clicks (goal <= 0.7 s)")
    print(
        f"  median {report['switch_median_seconds']:.2f}  max {report['switch_max_seconds']:.2f} ({slowest})"
    )
    for label, xs in switches.items():
        print(f"  {label:>15}: " + " ".join(f"{x:.2f}" for x in xs))
    print("  Data, click to its class-balance chart drawn: " + " ".join(f"{x:.2f}" for x in data_drawn))
    if as_json:
        print(json.dumps(report))
    return 0


def cli_rate(csv: str, epochs: int) -> float:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ffnlp_core",
            "train",
            "--csv",
            csv,
            "--text-column",
            "tweet",
            "--label-column",
            "class",
            "--min-df",
            "2",
            "--epochs",
            str(epochs),
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)["examples_per_second"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", default=str(DEFAULT_CSV))
    parser.add_argument(
        "--repeats", type=int, default=3, help="training runs; with --first-page: server starts of each app"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=10,
        help="epochs per run: long enough that the run's steady state, not its first second, counts",
    )
    parser.add_argument("--settle", type=float, default=8.0, help="seconds between opening Train and Start")
    parser.add_argument("--same-priority", action="store_true", help="run Chromium at normal CPU priority")
    parser.add_argument(
        "--away",
        action="store_true",
        help="leave the Train page once the first point shows (only the sidebar polls)",
    )
    parser.add_argument(
        "--first-page",
        action="store_true",
        help="only measure the first page and page switches, against a bare Streamlit page",
    )
    parser.add_argument(
        "--hold", type=float, default=0.3, help="--first-page: seconds a page must stay settled"
    )
    parser.add_argument("--json", action="store_true", help="--first-page: print one JSON object too")
    args = parser.parse_args(argv)
    if args.first_page:
        return first_page(args.repeats, args.hold, args.json)
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="ffnlp-app-"))
    chromium = CHROMIUM
    if not args.same_priority:
        chromium = str(tmp / "chromium-nice.sh")
        Path(chromium).write_text(f'#!/bin/sh\nexec taskset -c 0 nice -n 19 {CHROMIUM} "$@"\n')
        Path(chromium).chmod(0o755)
    t0 = time.monotonic()
    server = Server(tmp / "runs")
    report = {
        "server_answers_seconds": server.ready_seconds,
        "browser_nice": not args.same_priority,
        "watching_the_train_page": not args.away,
    }
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.goto(server.url("/"))
            wait_idle(page, timeout=120)
            report["streamlit_run_to_usable_page_seconds"] = time.monotonic() - t0
            nav(page, "Data")
            key(page, "data_mode").get_by_text("Upload a CSV").click()
            wait_idle(page)
            key(page, "data_upload").locator("input[type=file]").set_input_files(args.csv)
            wait_idle(page, timeout=120)
            page.locator("summary", has_text="Bag-of-words settings").click()
            box = key(page, "data_min_df").locator("input")
            box.fill("2")
            box.press("Enter")
            wait_idle(page, timeout=120)
            nav(page, "Train")
            box = key(page, "train_epochs").locator("input")
            box.fill(str(args.epochs))
            box.press("Enter")
            wait_idle(page)
            time.sleep(args.settle)  # the worker processes are up long before a user gets here
            store = RunStore(tmp / "runs")
            first_point, app_rates, cli_rates = [], [], []
            previous_last = 0.0
            for _ in range(args.repeats):
                t = time.monotonic()
                click(page, "train_start")
                # the new run's first point: the chart restarts at step 1 (the old chart ended at previous_last)
                wait_for(
                    lambda prev=previous_last: 0 < page.evaluate(LAST_STEP) < (prev or 1e18),
                    timeout=60,
                    every=0.02,
                )
                first_point.append(time.monotonic() - t)
                run_id = query(page)["run"]
                if args.away:
                    nav(page, "Home")
                wait_for(lambda rid=run_id: store.status(rid).get("status") == "finished", timeout=120)
                app_rates.append(store.status(run_id)["summary"]["examples_per_second"])
                cli_rates.append(cli_rate(args.csv, args.epochs))
                if args.away:
                    nav(page, "Train")
                wait_idle(page)
                previous_last = page.evaluate(LAST_STEP)
            browser.close()
    finally:
        server.stop()
    report.update(
        start_to_first_loss_point_seconds=first_point,
        app_examples_per_second=app_rates,
        cli_examples_per_second=cli_rates,
        app_over_cli=statistics.median(app_rates) / statistics.median(cli_rates),
    )
    for k, v in report.items():
        print(f"{k:>38}: {v}")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
