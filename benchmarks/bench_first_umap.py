"""The first UMAP projection on the Representations page after a server start, as a user meets it:

    python benchmarks/bench_first_umap.py [--csv PATH] [--epochs 1] [--shot PNG] [--json]

A fresh `streamlit run app.py` (bench_app.Served: its own process group, a temp runs folder); in Chromium:
Data -> upload the CSV (default: the Davidson tweets, 24,783 rows, whose dev split gives 2,000 captured
rows), Train -> `--epochs` epochs, Start, until finished; then Representations: UMAP chosen, a click on
Project (PCA is drawn at once), and the seconds until every scatter panel is titled "... UMAP" (the UMAP
figure drawn, not the PCA shown meanwhile), counted from the click and from the moment the page last said
"UMAP is compiling" (the server's warm-up compile; from the click if it never said so): the latter is
the first UMAP the server computes on real data (goal <= 2 s); the first panel drawn with UMAP is
timed too (panels swap in one by one). Prints the figures and, with --json, one JSON object.

Needs Debian's Chromium (/usr/bin/chromium, never `playwright install`) and the dev requirements.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from bench_app import DEFAULT_CSV, Served  # noqa: E402
from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from helpers import click, key, nav, train_run, wait_for, wait_idle  # noqa: E402

STATE = """() => [
  (document.querySelector('[data-testid=stMain]') || {textContent: ''}).textContent.includes('UMAP is compiling'),
  Array.from(document.querySelectorAll('.st-key-repr_view .js-plotly-plot'))
    .map(gd => gd._fullLayout && gd._fullLayout.title ? gd._fullLayout.title.text.replace(/<[^>]*>/g, '') : '')
    .filter(t => t.includes(' · '))]"""  # still compiling?, the scatter panels' titles ("h0 (100 units) · UMAP")
POINTS = """() => { const gd = document.querySelector('.st-key-repr_view .js-plotly-plot');
  return gd && gd._fullData ? gd._fullData.reduce((n, t) => n + (t._length || 0), 0) : 0; }"""  # SVG or WebGL


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", default=str(DEFAULT_CSV))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--panels", type=int, default=3, help="scatter panels to wait for (the page's default: input, h0, h2)"
    )
    parser.add_argument("--shot", help="a screenshot of the page once every panel shows UMAP (PNG path)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="ffnlp-first-umap-"))
    server = Served("app.py", ROOT, {"FFNLP_RUNS_DIR": str(tmp / "runs"), "FFNLP_UMAP": "1"}, tmp / "log")
    report: dict = {"csv": Path(args.csv).name, "epochs": args.epochs}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1500, "height": 1400}).new_page()
            page.goto(server.url("/"))
            wait_idle(page, timeout=120)
            nav(page, "Data")
            key(page, "data_mode").get_by_text("Upload a CSV").click()
            wait_idle(page)
            key(page, "data_upload").locator("input[type=file]").set_input_files(args.csv)
            wait_idle(page, timeout=120)
            kept = "() => (document.querySelector('[data-testid=stMetricValue]') || {}).innerText || ''"
            wait_for(lambda: page.evaluate(kept) not in ("", "4,000"), timeout=120)  # the file, not built-in
            wait_idle(page, timeout=120)
            train_run(page, args.epochs, timeout=600)
            nav(page, "Representations")
            key(page, "repr_method").get_by_text("UMAP").click()
            wait_idle(page)
            t = time.monotonic()
            click(page, "repr_project")
            ready = t  # when the page last said UMAP was still compiling (the click, if it never did)
            first = None  # when the first panel showed UMAP
            while True:  # one evaluate a turn (textContent: no layout), so the polling costs the page little
                compiling, titles = page.evaluate(STATE)
                now = time.monotonic()
                if compiling:
                    ready = now
                if first is None and any(x.endswith("UMAP") for x in titles):
                    first = now
                if len(titles) == args.panels and all(x.endswith("UMAP") for x in titles):
                    break
                if now - t > 600:
                    raise TimeoutError("no UMAP on screen in 600 s")
                time.sleep(0.05)
            done = time.monotonic()
            report["click_to_umap_seconds"] = done - t
            report["umap_ready_after_health_seconds"] = ready - server.health_at
            report["first_panel_seconds"] = first - ready
            report["first_umap_seconds"] = done - ready
            report["panels"] = titles
            report["points_per_panel"] = page.evaluate(POINTS)
            if args.shot:
                page.locator(".st-key-repr_view").screenshot(path=args.shot)
            browser.close()
    finally:
        server.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"UMAP compiled (the page stopped saying so): {report['umap_ready_after_health_seconds']:.1f} s")
    print(
        f"first UMAP, compiled (or clicked) to the first panel drawn with UMAP: {report['first_panel_seconds']:.2f} s, "
        f"to every panel: {report['first_umap_seconds']:.2f} s "
        f"({len(report['panels'])} panels of {report['points_per_panel']:,} points; goal <= 2 s); "
        f"click on Project to UMAP: {report['click_to_umap_seconds']:.1f} s"
    )
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
