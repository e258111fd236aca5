"""The job manager's contract on the Ray backend (FFNLP_WORKERS=ray, runs/ray_slots.py): submit and stream,
the same numbers as threads, stop within a second, a killed worker actor failing only its run, the queue,
one object-store copy of a data set for all its runs, and persistence across a restart.

One local Ray instance (127.0.0.1, 2 CPUs, no dashboard) serves the whole module and is shut down at its
end; the module skips, saying why, when Ray is not installed (requirements-cluster.txt adds it)."""

from __future__ import annotations

import os
import signal
import time

import pytest
from run_configs import config

from ffnlp_core.config import RunConfig
from ffnlp_core.data.dataset import build_dataset, load_source
from ffnlp_core.runs.handles import StoredRun
from ffnlp_core.runs.manager import JobManager
from ffnlp_core.runs.store import RunStore

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before Ray's import: 127.0.0.1 only
ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -r requirements-cluster.txt")
ray_slots = pytest.importorskip("ffnlp_core.runs.ray_slots")

CPUS = 2  # the local instance's CPUs: at most two worker actors at once, whatever the machine


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """A local Ray instance for the module (what ray_slots.connect starts when FFNLP_RAY_ADDRESS is
    empty), bounded to CPUS, stopped at the end."""
    saved = {k: os.environ.pop(k, None) for k in ("FFNLP_RAY_ADDRESS", "FFNLP_MAX_CONCURRENT")}
    os.environ["FFNLP_MAX_CONCURRENT"] = str(CPUS)  # connect() sizes a local instance by this
    try:
        ray_slots.connect()
    finally:
        os.environ.pop("FFNLP_MAX_CONCURRENT")
        os.environ.update({k: v for k, v in saved.items() if v is not None})
    assert ray.cluster_resources()["CPU"] == CPUS
    assert ray.util.get_node_ip_address() == "127.0.0.1"  # nothing listens beyond this machine
    yield ray
    ray.shutdown()


def ready(m: JobManager, timeout: float = 60.0) -> JobManager:
    """The manager once its worker actors are up (each imports torch and compiles the kernels)."""
    deadline = time.monotonic() + timeout
    while m.starting_workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert m.starting_workers() == 0
    return m


def wait_steps(job, n: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while (steps := job.read(lambda h: h.steps_done)) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    return steps


def test_a_ray_run_streams_and_trains_the_same_numbers_as_a_thread(manager, ds):
    results = []
    for mode in ("thread", "ray"):
        m = manager(mode=mode, max_concurrent=1)
        job = m.submit(config(epochs=2), ds)
        assert job.wait(90), mode
        assert job.status == "finished", (mode, job.reason)
        assert job.model is not None  # the weights came back from the actor
        results.append(job.read(lambda h: (h.curves()["loss"].tolist(), h.summary["dev_accuracy"])))
        assert m.store.status(job.run_id)["status"] == "finished"
        m.shutdown()
    assert len(results[1][0]) == 200  # 2 epochs of 100 steps, every one streamed back
    assert results[0] == results[1]  # same seed, same data: the same losses and dev accuracy


def test_steps_arrive_while_running_and_stop_ends_the_run_within_a_second(manager, ds):
    m = manager(mode="ray", max_concurrent=1)
    job = m.submit(config(epochs=1000), ds)
    first = wait_steps(job, 10)
    assert first >= 10 and job.status == "running"
    later = wait_steps(job, first + 50)
    assert later >= first + 50 and job.status == "running"  # events stream in while the actor trains
    t0 = time.monotonic()
    m.stop(job.run_id)
    assert job.wait(2)
    assert time.monotonic() - t0 < 1.0
    assert job.status == "stopped"
    assert later <= job.read(lambda h: h.steps_done) < 1000 * 100


def test_a_killed_worker_actor_fails_only_its_run_and_is_replaced(manager, ds):
    m = manager(mode="ray", max_concurrent=2)
    victim = m.submit(config(epochs=500), ds)
    other = m.submit(config(epochs=3), ds)
    assert wait_steps(victim, 5) >= 5
    slot = next(s for s in m.slots if s.job is victim)
    pid = ray.get(slot.actor.ready.remote())
    assert pid != os.getpid()
    os.kill(pid, signal.SIGKILL)  # what the out-of-memory killer (or a node going away) does to it
    assert victim.wait(30)
    assert victim.status == "failed" and "Ray worker running this run was lost" in victim.reason
    assert other.wait(60) and other.status == "finished"
    assert victim.read(lambda h: h.steps_done) >= 5  # what it did before the crash is kept
    deadline = time.monotonic() + 60  # the manager replaces the slot (a new actor) after a short wait
    while (fresh := m.slots[slot.index]) is slot or not fresh.ready.is_set():
        assert time.monotonic() < deadline, "the lost slot was not replaced"
        time.sleep(0.05)
    assert ray.get(fresh.actor.ready.remote()) != pid  # a new process
    after = [m.submit(config(), ds) for _ in range(2)]  # two runs: one on each slot, the new one too
    for job in after:
        assert job.wait(90) and job.status == "finished", job.reason


def test_the_queue_and_one_object_store_copy_per_data_set(manager):
    cfg = RunConfig()
    fresh_ds = build_dataset(load_source(cfg.data), cfg.data)  # never put into the object store yet
    puts = ray_slots.PUTS["count"]
    m = ready(manager(mode="ray", max_concurrent=1))
    first = m.submit(config(epochs=300), fresh_ds, owner="a")
    second = m.submit(config(), fresh_ds, owner="b")
    third = m.submit(config(), fresh_ds, owner="b")
    assert first.status == "running" and (second.status, third.status) == ("queued", "queued")
    assert (m.queue_position(first), m.queue_position(second), m.queue_position(third)) == (0, 1, 2)
    assert m.active_count() == (1, 2)
    assert wait_steps(first, 5) >= 5
    m.stop(first.run_id)
    assert second.wait(60) and third.wait(60)
    assert (second.status, third.status) == ("finished", "finished")
    assert ray_slots.PUTS["count"] == puts + 1  # three runs, one copy of their data set


def test_ray_runs_survive_a_restart_and_interrupted_ones_say_so(tmp_path, ds):
    store_dir = tmp_path / "runs"
    m = JobManager(RunStore(store_dir), mode="ray", max_concurrent=1)
    try:
        done = m.submit(config(epochs=2), ds, owner="a", label="built-in")
        assert done.wait(90) and done.status == "finished", done.reason
    finally:
        m.shutdown()
    RunStore(store_dir).create("20990101-000000-dead00", config(), owner="a")  # a server died mid-run
    RunStore(store_dir).set_status("20990101-000000-dead00", "running")
    m2 = JobManager(RunStore(store_dir), mode="ray", max_concurrent=1)
    try:
        back = m2.open_run(done.run_id)
        assert isinstance(back, StoredRun) and back.status == "finished"
        assert back.read(lambda h: h.steps_done) == 200
        assert back.model is not None
        assert done.run_id in {r["id"] for r in m2.store.list_runs()}
        lost = m2.open_run("20990101-000000-dead00")
        assert lost.status == "interrupted" and "restarted" in lost.reason
    finally:
        m2.shutdown()
