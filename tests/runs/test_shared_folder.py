"""Several web servers on one runs folder (issue 16: FFNLP_RUNS_DIR on a shared disk): a server sees the
runs another one trains, live or finished, can stop them, and never marks a live server's runs as
interrupted; runs of a server that stopped are."""

from __future__ import annotations

import time

from run_configs import config

from ffnlp_core.runs import writer as writer_module
from ffnlp_core.runs.handles import StoredRun
from ffnlp_core.runs.manager import JobManager
from ffnlp_core.runs.store import RunStore


def wait_for(predicate, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_second_server_follows_and_stops_a_run_the_first_one_trains(manager, ds, monkeypatch, tmp_path):
    monkeypatch.setattr(writer_module, "SAVE_EVERY_SECONDS", 0.2)
    a = manager()
    job = a.submit(config(epochs=1000), ds, owner="student")
    assert wait_for(lambda: job.steps_trained() > 0)
    b = manager()  # the second server starts while the run trains: it must leave that run alone
    seen = b.open_run(job.run_id)
    assert isinstance(seen, StoredRun) and seen.status == "running" and job.status == "running"
    first = seen.history.steps_done
    assert wait_for(lambda: b.open_run(job.run_id).history.steps_done > first, 10)  # it follows the run
    asked = time.monotonic()
    b.stop(job.run_id)
    assert job.wait(10) and job.status == "stopped" and job.reason == "stopped from another server"
    assert time.monotonic() - asked < 5
    assert wait_for(lambda: b.open_run(job.run_id).status == "stopped", 5)


def test_live_runs_of_a_silent_server_are_interrupted_and_of_a_live_one_are_not(tmp_path, ds):
    store = RunStore(tmp_path / "runs")
    for run_id, server in (("ghost-run", "gone-server"), ("busy-run", "other-server"), ("old-run", None)):
        store.create(run_id, config())
        store.set_status(run_id, "running", **({"server": server} if server else {}))
    store.beat("other-server")  # alive: it said so just now
    m = JobManager(store, mode="thread")
    try:
        statuses = {r["id"]: r["status"] for r in store.list_runs()}
        assert statuses == {"ghost-run": "interrupted", "busy-run": "running", "old-run": "interrupted"}
    finally:
        m.shutdown()


def test_a_server_that_shuts_down_takes_its_heartbeat_with_it(tmp_path):
    store = RunStore(tmp_path / "runs")
    m = JobManager(store, mode="thread")
    assert m.writer.server in store.servers_alive(60)
    m.shutdown()
    assert m.writer.server not in store.servers_alive(60)
