"""Several web servers, one class: two `streamlit run app.py` servers (different ports of 127.0.0.1) train
on one local Ray head (FFNLP_WORKERS=ray, FFNLP_RAY_ADDRESS) and share one runs folder (FFNLP_RUNS_DIR),
as two servers behind a load balancer would; a tab that lands on the other server finds its run, live
or finished, and its Stop reaches the server that trains it.

The Ray head (`ray start --head --block`, 2 CPUs, 127.0.0.1 only) and both servers are started here and
stopped at the end. Skips, saying why, without Ray (requirements-cluster.txt) or without Chromium."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import ROOT, Server, free_port
from helpers import click, goto, key, query, url, wait_for, wait_idle

LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # Ray keeps 127.0.0.1 (see runs/ray_slots.py)

# the last step drawn on the loss chart (0 while there is none)
CHART_POINTS = """() => {
  const plot = document.querySelector('.st-key-train_charts .js-plotly-plot');
  const traces = plot && plot._fullData;
  if (!traces || !traces.length || !traces[0].x || !traces[0].x.length) return 0;
  const x = traces[0].x;
  return Number(x[x.length - 1]);
}"""


class RayHead:
    """`ray start --head --block` on 127.0.0.1 with 2 CPUs; `stop()` ends it and every process it
    started (the blocking command takes them down with it)."""

    def __init__(self, log: Path):
        self.port = free_port()
        self.temp = tempfile.mkdtemp(prefix="ffr", dir="/tmp")  # short: Ray's socket paths are limited
        # the cluster's own token (Ray's token authentication): the head and its clients read this file
        token = Path(self.temp) / "auth_token"
        token.write_text(secrets.token_hex(32))
        self.env = {**LOOPBACK_ONLY, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
        self.log = open(log, "w")  # noqa: SIM115
        cmd = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--num-cpus=2"]
        cmd += ["--node-ip-address=127.0.0.1", f"--port={self.port}", "--include-dashboard=false"]
        cmd += ["--disable-usage-stats", f"--temp-dir={self.temp}"]
        self.proc = subprocess.Popen(
            cmd, env={**os.environ, **self.env}, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in Path(log).read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Ray head did not start; see {log}")
            time.sleep(0.3)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, chromium_path):
    """(server A, server B): one Ray head, one runs folder, two app servers."""
    pytest.importorskip("ray", reason="Ray is not installed: pip install -r requirements-cluster.txt")
    base = tmp_path_factory.mktemp("two_servers")
    head = RayHead(base / "ray-head.log")
    env = {
        **head.env,
        "FFNLP_WORKERS": "ray",
        "FFNLP_RAY_ADDRESS": head.address,
        "FFNLP_MAX_CONCURRENT": "1",  # one worker actor per server: the head's 2 CPUs hold both
        "FFNLP_UMAP": "0",
    }
    servers = []
    try:
        for _ in range(2):
            servers.append(Server(base / "runs", env=env))
        yield tuple(servers)
    finally:
        for srv in servers:
            srv.stop()
        head.stop()


def main_text(page) -> str:
    return page.locator("[data-testid=stMain]").inner_text()


def set_number(page, name: str, value) -> None:
    box = key(page, name).locator("input")
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


def test_a_tab_that_lands_on_the_other_server_finds_its_finished_run(browser, cluster):
    a, b = cluster
    assert a.runs_dir == b.runs_dir and a.port != b.port
    tab_a = browser.new_context(viewport={"width": 1300, "height": 900}).new_page()
    tab_b = browser.new_context(viewport={"width": 1300, "height": 900}).new_page()
    try:
        goto(tab_b, b, "/train")  # server B is up and has its job manager before A's run starts
        goto(tab_a, a, "/train", timeout=60)
        set_number(tab_a, "train_epochs", 3)
        click(tab_a, "train_start")
        run_id = wait_for(lambda: query(tab_a).get("run"), timeout=30)
        # a Ray actor trains it (the first run waits for the actor to import torch)
        wait_for(lambda: "finished · step 300/300" in main_text(tab_a), timeout=120)
        steps_a = wait_for(lambda: tab_a.evaluate(CHART_POINTS), timeout=15)
        assert steps_a == 300  # 3 epochs of 100 steps
        shared = url(tab_a)
        assert f":{a.port}/" in shared and f"run={run_id}" in shared and "sid=" in shared
        # the same address on server B (a reload the load balancer sent elsewhere)
        tab_b.goto(shared.replace(f":{a.port}/", f":{b.port}/"))
        wait_idle(tab_b, timeout=60)
        assert query(tab_b)["run"] == run_id
        assert run_id in tab_b.locator("[data-testid=stSidebar]").inner_text()
        assert "finished · step 300/300" in main_text(tab_b)
        assert wait_for(lambda: tab_b.evaluate(CHART_POINTS), timeout=15) == steps_a  # the whole curve
        status = (a.runs_dir / run_id / "status.json").read_text()
        assert '"finished"' in status
    finally:
        tab_a.context.close()
        tab_b.context.close()


def test_a_live_run_of_the_other_server_is_found_and_stopped_from_there(browser, cluster):
    """Server B shows A's live run (as of its last save), its Stop reaches A, and B sees the run end."""
    a, b = cluster
    tab_a = browser.new_context(viewport={"width": 1300, "height": 900}).new_page()
    tab_b = browser.new_context(viewport={"width": 1300, "height": 900}).new_page()
    try:
        goto(tab_a, a, "/train", timeout=60)
        set_number(tab_a, "train_batch_size", 4)  # a long run: stopped by the test
        set_number(tab_a, "train_epochs", 1000)
        click(tab_a, "train_start")
        run_id = wait_for(lambda: query(tab_a).get("run"), timeout=30)
        wait_for(lambda: "running · step" in main_text(tab_a), timeout=60)
        time.sleep(6)  # server A saves a live run's history every 5 s
        tab_b.goto(url(tab_a).replace(f":{a.port}/", f":{b.port}/"))
        wait_idle(tab_b, timeout=60)
        assert query(tab_b)["run"] == run_id
        assert "running · step" in main_text(tab_b)  # found live, with the steps saved so far
        assert wait_for(lambda: tab_b.evaluate(CHART_POINTS), timeout=15) > 0
        click(tab_b, "train_stop")  # pressed on B: the run trains on A (a request through the runs folder)
        wait_for(lambda: "stopped · step" in main_text(tab_a), timeout=30)
        assert '"stopped"' in (a.runs_dir / run_id / "status.json").read_text()
        deadline = time.monotonic() + 20
        while "stopped · step" not in (shown := main_text(tab_b)):  # B reads the run's end from disk
            assert time.monotonic() < deadline, shown[-400:]
            tab_b.reload()
            wait_idle(tab_b, timeout=60)
    finally:
        tab_a.context.close()
        tab_b.context.close()
