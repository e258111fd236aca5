"""Screenshots of every page, in the normal view and at ?classroom=1, into one folder:

    python benchmarks/screenshots.py /tmp/shots [--width 1280] [--height 720] [--epochs 3]

A fresh `streamlit run app.py` (temp runs folder, UMAP on) and one Chromium window at --width x --height
(1280x720: the projector's size). One short run is trained first (Train page, built-in comments) so
that Train, Gradients, Representations (Project clicked), Try it and Compare runs have something to show;
then each page is opened in the same workspace (?sid=...), once with ?classroom=0 and once with
?classroom=1, and saved as <page>_normal.png and <page>_classroom.png (the whole page, not only the
window: the window is made as tall as the page for the picture, after the check for cut-short buttons
at --width x --height). The folder also gets index.txt: one line per file with the page's title and
its buttons whose text is cut short. Look at every file.

Needs Debian's Chromium (/usr/bin/chromium, never `playwright install`) and the dev requirements.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from bench_app import Served  # noqa: E402
from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from helpers import click, nav, query, train_run, wait_for, wait_idle  # noqa: E402

PAGES = [  # (file name, url path)
    ("home", "/"),
    ("data", "/data"),
    ("model", "/model"),
    ("train", "/train"),
    ("gradients", "/gradients"),
    ("representations", "/representations"),
    ("playground", "/playground"),
    ("lessons", "/lessons"),
    ("lab", "/lab"),
    ("compare", "/compare"),
]
CUT = """() => [...document.querySelectorAll('[data-testid=stMain] button')].filter(b => b.getClientRects().length)
  .flatMap(b => [...b.querySelectorAll('p')].filter(p => p.scrollWidth > p.clientWidth + 1))
  .map(p => p.textContent.trim())"""
HEIGHT = """() => Math.ceil(Math.max(...[...document.querySelectorAll('[data-testid=stMain], section')]
  .map(e => e.scrollHeight)))"""
TITLE = "() => (document.querySelector('[data-testid=stMain] h1') || {}).innerText || ''"


def settle(page, seconds: float = 1.0) -> None:
    """Idle, and the charts drawn (a page's Plotly code loads after the script run ends)."""
    wait_idle(page, timeout=120)
    wait_for(lambda: not page.locator("[data-testid=stSkeleton]").count(), timeout=60)
    time.sleep(seconds)
    wait_idle(page, timeout=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    args.folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ffnlp-shots-"))
    server = Served("app.py", ROOT, {"FFNLP_RUNS_DIR": str(tmp / "runs"), "FFNLP_UMAP": "1"}, tmp / "log")
    lines = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": args.width, "height": args.height}).new_page()
            page.goto(server.url("/"))
            settle(page)
            train_run(page, args.epochs, timeout=300)
            sid = query(page)["sid"]
            nav(page, "Representations")
            click(page, "repr_project")  # the workspace keeps it on for the screenshots below
            settle(page)
            for mode, flag in (("normal", 0), ("classroom", 1)):
                for name, path in PAGES:
                    page.goto(server.url(f"{path}?sid={sid}&classroom={flag}"))
                    settle(page)
                    cut = page.evaluate(CUT)  # at the window's size
                    out = args.folder / f"{name}_{mode}.png"
                    # Streamlit scrolls inside its main area: a window as tall as that content shows it all
                    tall = page.evaluate(HEIGHT)
                    page.set_viewport_size({"width": args.width, "height": max(args.height, tall)})
                    settle(page, 0.5)
                    page.screenshot(path=str(out))
                    page.set_viewport_size({"width": args.width, "height": args.height})
                    lines.append(f"{out.name}\t{page.evaluate(TITLE)}\tcut buttons: {len(cut)} {cut}")
                    print(lines[-1], flush=True)
            browser.close()
    finally:
        server.stop()
    (args.folder / "index.txt").write_text("\n".join(lines) + "\n")
    print(f"{len(lines)} screenshots in {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
