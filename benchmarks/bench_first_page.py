"""How fast the first page and page switches are, against a bare Streamlit page measured in the same run.

    python benchmarks/bench_first_page.py [REPO] [REPEATS]      (defaults: this repository, 2)

For each of REPEATS fresh servers (`streamlit run` on 127.0.0.1, stopped after): the seconds from the
health check's first answer to the first page settled in Chromium (connected, script not running, no
skeletons, a title drawn), for a bare page (st.title + st.write) and for ffnlp's `/`; for ffnlp also the
seconds from a sidebar click to the next page settled (Data, Model, Train, Gradients, Try it, Lessons,
Home). Debian's /usr/bin/chromium via Playwright; nothing leaves the loopback interface.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from playwright.sync_api import sync_playwright

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def serve(app, cwd, env):
    p = port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            app,
            "--server.headless",
            "true",
            "--server.port",
            str(p),
            "--server.address",
            "127.0.0.1",
        ],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{p}/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    return proc, p, time.monotonic()


def settle(page, timeout=60):
    t = time.monotonic()
    page.wait_for_selector(
        "[data-testid=stApp][data-test-connection-state=CONNECTED]", timeout=timeout * 1000
    )
    while time.monotonic() - t < timeout:
        if (
            page.locator("[data-testid=stApp][data-test-script-state=notRunning]").count()
            and not page.locator("[data-testid=stSkeleton]").count()
            and page.locator("h1").count()
        ):
            return
        time.sleep(0.02)


tmp = tempfile.mkdtemp()
bare = os.path.join(tmp, "bare.py")
with open(bare, "w") as f:
    f.write("import streamlit as st\nst.title('bare')\nst.write('hello')\n")
root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
n = int(sys.argv[2]) if len(sys.argv) > 2 else 2
env = {**os.environ, "FFNLP_RUNS_DIR": os.path.join(tmp, "runs"), "FFNLP_MAX_CONCURRENT": "2"}
with sync_playwright() as pw:
    b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
    for name, app in (("bare", bare), ("ffnlp", "app.py")):
        for _ in range(n):
            proc, p, t0 = serve(app, root, env)
            try:
                ctx = b.new_context(viewport={"width": 1400, "height": 1000})
                page = ctx.new_page()
                page.goto(f"http://127.0.0.1:{p}/")
                settle(page)
                first = time.monotonic() - t0
                sw = []
                if name == "ffnlp":
                    for label in ("Data", "Model", "Train", "Gradients", "Try it", "Lessons", "Home"):
                        t = time.monotonic()
                        page.locator("[data-testid=stSidebarNav] a", has_text=label).first.click()
                        time.sleep(0.1)
                        settle(page)
                        sw.append(round(time.monotonic() - t, 2))
                print(name, "first page", round(first, 2), "s", "switches", sw, flush=True)
                ctx.close()
            finally:  # the server stops even when a page never settles
                proc.terminate()
                proc.wait(10)
    b.close()
