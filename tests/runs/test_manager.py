"""The job manager: queue positions, stop, crash isolation (threads and worker processes), the heartbeat,
persistence across a restart and bounded disk use."""

from __future__ import annotations

import time

import pytest
from run_configs import config

from ffnlp_core.runs.handles import StoredRun
from ffnlp_core.runs.manager import JobManager
from ffnlp_core.runs.store import RunStore


def test_runs_queue_beyond_the_limit_and_report_their_position(manager, ds):
    m = manager(max_concurrent=1)
    first = m.submit(config(epochs=300), ds, owner="a")
    second = m.submit(config(), ds, owner="b")
    third = m.submit(config(), ds, owner="b")
    assert first.status == "running" and (second.status, third.status) == ("queued", "queued")
    assert (m.queue_position(first), m.queue_position(second), m.queue_position(third)) == (0, 1, 2)
    assert m.active_count() == (1, 2)
    m.stop(second.run_id)  # a queued run ends at once, never having started
    assert second.status == "stopped" and second.reason == "stopped before it started"
    assert m.queue_position(third) == 1
    m.stop(first.run_id)
    assert third.wait(30) and third.status == "finished"
    assert [j.run_id for j in m.jobs_of("b")] == [second.run_id, third.run_id]


def test_stop_ends_a_running_job_within_a_second(manager, ds):
    m = manager()
    job = m.submit(config(epochs=1000), ds)
    while job.read(lambda h: h.steps_done) < 10:
        time.sleep(0.01)
    t0 = time.monotonic()
    m.stop(job.run_id)
    assert job.wait(2)
    assert time.monotonic() - t0 < 1.0
    assert job.status == "stopped"
    assert 10 <= job.read(lambda h: h.steps_done) < 1000 * 100


def test_a_crash_inside_a_step_fails_only_that_run(manager, ds, monkeypatch):
    from ffnlp_core.train import fastpath

    real_step = fastpath.FastCpuStepper.step

    def flaky(self, start, stop, probe=False):
        if self.model.hidden_sizes == [7]:  # only the run with this shape breaks
            raise RuntimeError("boom inside a step")
        return real_step(self, start, stop, probe)

    monkeypatch.setattr(fastpath.FastCpuStepper, "step", flaky)
    m = manager(max_concurrent=2)
    broken_cfg = config(epochs=2)
    broken_cfg.model.hidden_sizes = [7]
    broken = m.submit(broken_cfg, ds)
    healthy = m.submit(config(epochs=2), ds)
    assert broken.wait(30) and healthy.wait(30)
    assert broken.status == "failed" and "boom inside a step" in broken.reason
    assert healthy.status == "finished"
    assert m.store.status(broken.run_id)["status"] == "failed"


def test_a_killed_worker_process_fails_only_its_run_and_is_replaced(manager, ds):
    m = manager(mode="process", max_concurrent=2)
    victim = m.submit(config(epochs=500), ds)
    other = m.submit(config(epochs=3), ds)
    deadline = time.monotonic() + 60
    while victim.read(lambda h: h.steps_done) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    slot = next(s for s in m.slots if s.job is victim)
    slot.proc.kill()  # what the kernel's out-of-memory killer would do
    assert victim.wait(15)
    assert victim.status == "failed" and "exit code -9" in victim.reason
    assert other.wait(60) and other.status == "finished"
    after = m.submit(config(), ds)  # the replaced worker takes new runs
    assert after.wait(60) and after.status == "finished"
    assert victim.read(lambda h: h.steps_done) >= 5  # what it did before the crash is kept


def test_process_workers_train_the_same_numbers_as_threads(manager, ds):
    results = []
    for mode in ("thread", "process"):
        m = manager(mode=mode, max_concurrent=1)
        job = m.submit(config(epochs=2), ds)
        assert job.wait(60), mode
        results.append(job.read(lambda h: (h.curves()["loss"].tolist(), h.summary["dev_accuracy"])))
        assert job.model is not None  # the server holds the trained weights in both modes
    assert results[0] == results[1]


def test_an_abandoned_run_stops_after_the_heartbeat_timeout(manager, ds):
    m = manager(heartbeat_timeout=0.6)
    job = m.submit(config(epochs=1000), ds)
    assert job.wait(10)
    assert job.status == "stopped" and "no page looked at it" in job.reason


def test_runs_survive_a_restart_and_interrupted_ones_say_so(tmp_path, ds):
    store_dir = tmp_path / "runs"
    m = JobManager(RunStore(store_dir), mode="thread", max_concurrent=1)
    done = m.submit(config(epochs=2), ds, owner="a", label="built-in")
    assert done.wait(30)
    m.shutdown()
    # simulate a server that died while a run was live
    RunStore(store_dir).create("20990101-000000-dead00", config(), owner="a")
    RunStore(store_dir).set_status("20990101-000000-dead00", "running")
    m2 = JobManager(RunStore(store_dir), mode="thread")
    try:
        back = m2.open_run(done.run_id)
        assert isinstance(back, StoredRun) and back.status == "finished"
        assert back.read(lambda h: h.steps_done) == 200
        assert back.read(lambda h: len(h.evals)) == done.read(lambda h: len(h.evals))
        assert back.model is not None
        assert back.dev_text(int(back.read(lambda h: h.snapshots[-1].dev_rows[0])))  # hover text survives
        lost = m2.open_run("20990101-000000-dead00")
        assert lost.status == "interrupted" and "restarted" in lost.reason
    finally:
        m2.shutdown()


def test_disk_use_is_bounded_but_never_drops_a_live_run(tmp_path, ds):
    # min_age_seconds=0: these runs are seconds old, and a run younger than a day is otherwise kept
    m = JobManager(
        RunStore(tmp_path / "runs", max_runs=3, min_age_seconds=0), mode="thread", max_concurrent=1
    )
    try:
        live = m.submit(config(epochs=1000), ds)
        finished = []
        for _ in range(5):
            job = m.submit(config(), ds)
            finished.append(job)
        m.stop(live.run_id)
        for job in finished:
            assert job.wait(30)
        ids = {r["id"] for r in m.store.list_runs()}
        assert len(ids) <= 3 + 1
        assert finished[-1].run_id in ids
    finally:
        m.shutdown()


def test_the_server_limit_on_concurrent_runs_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FFNLP_MAX_CONCURRENT", "3")
    managers = [
        JobManager(store=RunStore(tmp_path / f"r{i}"), mode="thread", max_concurrent=n)
        for i, n in ((1, None), (2, 1))
    ]
    try:
        assert [jm.max_concurrent for jm in managers] == [3, 1]  # an explicit argument wins
    finally:
        for jm in managers:
            jm.shutdown()
    monkeypatch.setenv("FFNLP_MAX_CONCURRENT", "zero")
    with pytest.raises(ValueError, match="FFNLP_MAX_CONCURRENT must be a whole number"):
        JobManager(store=RunStore(tmp_path / "r3"), mode="thread")
