"""Fault injection on the job manager (issue 15): a runs folder that refuses writes (full or read-only,
injected by patching the store's one write function: tests may run as root, where chmod stops nothing),
a killed or broken save, a broken run folder, and finished runs leaving memory past the byte budget."""

from __future__ import annotations

import errno
import re
import time

import pytest
from run_configs import config

from ffnlp_core.runs import store as store_module
from ffnlp_core.runs import writer as writer_module
from ffnlp_core.runs.handles import StoredRun
from ffnlp_core.runs.manager import JobManager
from ffnlp_core.runs.store import RunStore

FULL = r"^the runs folder is full \(\d+ MB free\): free space or set FFNLP_RUNS_DIR$"


class Disk:
    """The runs folder's free space, as the store's writes see it."""

    def __init__(self, monkeypatch):
        self.real = store_module._write_atomic
        self.refuse: set[str] | None = None  # file names refused (None: none; "*": every one)
        self.moments = None  # refuse only this many more writes (a moment of full disk)
        self.code = errno.ENOSPC
        self.refused: list[str] = []
        monkeypatch.setattr(store_module, "_write_atomic", self.write)

    def fill(self, names="*", moments=None, code=errno.ENOSPC) -> None:
        self.refuse, self.moments, self.code = (
            {names} if isinstance(names, str) else set(names),
            moments,
            code,
        )

    def free(self) -> None:
        self.refuse = None

    def write(self, path, data) -> None:
        refused = self.refuse is not None and ("*" in self.refuse or path.name in self.refuse)
        if refused and (self.moments is None or self.moments > 0):
            self.moments = None if self.moments is None else self.moments - 1
            self.refused.append(path.name)
            raise OSError(self.code, "No space left on device" if self.code == errno.ENOSPC else "refused")
        self.real(path, data)


@pytest.fixture
def disk(monkeypatch):
    return Disk(monkeypatch)


def wait_for(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_moment_of_full_disk_fails_that_run_alone_and_the_queue_moves_on(manager, ds, disk, monkeypatch):
    monkeypatch.setattr(writer_module, "SAVE_EVERY_SECONDS", 0.0)  # a periodic save at every event
    m = manager(max_concurrent=1)
    victim = m.submit(config(epochs=1000), ds, owner="a")
    waiting = m.submit(config(), ds, owner="b")
    assert wait_for(lambda: victim.read(lambda h: h.steps_done) >= 5)
    disk.fill(moments=1)  # the next write (a periodic save) is refused, then there is space again
    assert victim.wait(10) and waiting.wait(30)
    assert victim.status == "failed" and victim.reason.startswith("the runs folder is full (")
    assert waiting.status == "finished"  # the slot was freed: the next run started and finished
    assert m.active_count() == (0, 0)
    on_disk = m.store.status(victim.run_id)
    assert (on_disk["status"], on_disk["reason"]) == ("failed", victim.reason)  # memory and disk agree
    assert m.store.load_history(victim.run_id).steps_done == victim.read(lambda h: h.steps_done)
    assert disk.refused == ["history.npz"]  # the one refused write was a periodic save (one file)


def test_a_refused_final_save_fails_the_run_in_memory_and_on_disk(manager, ds, disk):
    m = manager()
    disk.fill("model.safetensors")  # the weights do not fit; the small status file does
    job = m.submit(config(), ds)
    assert job.wait(30)
    assert job.status == "failed"
    assert job.reason.startswith("the runs folder is full (") and job.reason.endswith("set FFNLP_RUNS_DIR")
    assert (m.store.status(job.run_id)["status"], m.store.status(job.run_id)["reason"]) == (
        "failed",
        job.reason,
    )
    assert m.store_problem == job.reason


def test_a_final_status_that_cannot_be_written_is_failed_in_memory_then_on_disk(manager, ds, disk):
    m = manager(memory_mb=0.001)  # a budget nothing fits in: yet an unsaved run must stay in memory
    job = m.submit(config(epochs=1000), ds)
    assert wait_for(lambda: job.read(lambda h: h.steps_done) >= 5)
    disk.fill()
    m.stop(job.run_id)
    assert job.wait(10)
    assert job.status == "failed" and job.reason.startswith("the runs folder is full (")  # never 'stopped'
    assert m.store.status(job.run_id)["status"] == "running"  # disk could not be told
    assert m.get(job.run_id) is job  # the only copy: not evicted
    disk.free()
    assert m.check_store() is None
    on_disk = m.store.status(job.run_id)
    assert (on_disk["status"], on_disk["reason"]) == ("failed", job.reason)
    assert m.store.load_history(job.run_id).steps_done == job.read(lambda h: h.steps_done)
    assert m.get(job.run_id) is None  # saved now, so it leaves memory (the budget is tiny)
    assert m.open_run(job.run_id).status == "failed"


def test_the_manager_starts_on_a_full_runs_folder_and_recovers_by_itself(tmp_path, ds, disk):
    store = RunStore(tmp_path / "runs")
    store.create("20990101-000000-dead00", config())
    store.set_status("20990101-000000-dead00", "running")  # left live by a server that died
    disk.fill()
    m = JobManager(RunStore(tmp_path / "runs"), mode="thread", heartbeat_timeout=4.0)  # watchdog: 1 s
    try:
        assert m.store_problem is not None and re.match(FULL, m.store_problem)
        refused = m.submit(config(), ds)  # fails at once with the reason, no exception into the page
        assert refused.status == "failed" and refused.reason == m.store_problem
        assert m.active_count() == (0, 0)
        disk.free()
        assert wait_for(lambda: m.store_problem is None, 5)  # no restart, no call: the watchdog probes
        orphan = m.store.status("20990101-000000-dead00")
        assert orphan["status"] == "interrupted" and "restarted" in orphan["reason"]
        assert m.store.status(refused.run_id)["status"] == "failed"  # its creation is written now
        after = m.submit(config(), ds)
        assert wait_for(lambda: after.touch() or after.done) and after.status == "finished"
    finally:
        m.shutdown()


def test_a_read_only_runs_folder_says_so(manager, ds, disk):
    disk.fill(code=errno.EROFS)
    m = manager()
    assert (
        m.store_problem
        == f"the runs folder {m.store.root} is read-only: make it writable or set FFNLP_RUNS_DIR"
    )
    job = m.submit(config(), ds)
    assert job.status == "failed" and job.reason == m.store_problem


def test_a_full_disk_in_process_mode_keeps_the_listener_and_its_worker(manager, ds, disk, monkeypatch):
    monkeypatch.setattr(writer_module, "SAVE_EVERY_SECONDS", 0.0)
    m = manager(mode="process", max_concurrent=1)
    victim = m.submit(config(epochs=1000), ds)
    assert wait_for(lambda: victim.read(lambda h: h.steps_done) >= 5, 60)
    slot = m.slots[0]
    pid = slot.proc.pid
    disk.fill(moments=1)
    assert victim.wait(15)
    assert victim.status == "failed" and victim.reason.startswith("the runs folder is full (")
    assert m.store.status(victim.run_id)["status"] == "failed"
    assert slot.listener.is_alive() and slot.job is None
    after = m.submit(config(), ds)
    assert after.wait(60) and after.status == "finished"
    assert m.slots[0].proc.pid == pid  # the same worker trained it: nothing had to restart


def test_a_message_the_server_cannot_handle_does_not_kill_the_listener(manager, ds, monkeypatch):
    from ffnlp_core.runs.handles import Job

    def broken(self, state):
        raise MemoryError("no room for the weights")

    monkeypatch.setattr(Job, "load_weights", broken)
    m = manager(mode="process", max_concurrent=1)
    first = m.submit(config(), ds)
    assert first.wait(60) and first.status == "finished" and first.model is None  # no weights: no model
    assert m.slots[0].listener.is_alive()
    assert m.submit(config(), ds).wait(60)


def test_a_killed_worker_is_failed_in_memory_and_on_disk(manager, ds):
    m = manager(mode="process", max_concurrent=1)
    victim = m.submit(config(epochs=500), ds)
    assert wait_for(lambda: victim.read(lambda h: h.steps_done) >= 5, 60)
    m.slots[0].proc.kill()
    assert victim.wait(15) and victim.status == "failed"
    on_disk = m.store.status(victim.run_id)
    assert (on_disk["status"], on_disk["reason"]) == ("failed", victim.reason)
    assert "exit code -9" in on_disk["reason"]


# --- broken folders through open_run ------------------------------------------------------------------


def test_open_run_never_raises_on_a_broken_folder(manager, ds):
    m = manager()
    job = m.submit(config(), ds)
    assert job.wait(30)
    root, good = m.store.root, job.run_id
    for name in ("truncated", "no-model-json", "bad-weights", "bad-config", "no-status"):
        (root / name).mkdir()
        for part in (root / good).iterdir():
            (root / name / part.name).write_bytes(part.read_bytes())
    with open(root / "truncated" / "history.npz", "r+b") as f:
        f.truncate(200)
    (root / "no-model-json" / "model.json").unlink()
    (root / "bad-weights" / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header")
    (root / "bad-config" / "config.json").write_text('{"model": []}')
    (root / "no-status" / "status.json").unlink()

    truncated = m.open_run("truncated")
    assert isinstance(truncated, StoredRun) and truncated.status == "unreadable"
    assert truncated.reason.startswith("history.npz cannot be read (BadZipFile")
    assert truncated.read(lambda h: (h.steps_done, h.summary, len(h.snapshots))) == (0, None, 0)
    no_json = m.open_run("no-model-json")
    assert no_json.status == "finished" and no_json.model is None and no_json.vectorizer is None
    bad = m.open_run("bad-weights")
    assert bad.model is None and bad.model_problem.startswith("the saved model cannot be read")
    assert bad.read(lambda h: h.steps_done) == 100  # the rest of the run still reads
    assert m.open_run("bad-config") is None
    half = m.open_run("no-status")
    assert half.status == "interrupted" and half.reason.startswith("a half-written run folder")
    assert m.open_run("never-made") is None
    listed = {r["id"]: r["status"] for r in m.store.list_runs()}
    assert listed == {
        good: "finished",
        "no-model-json": "finished",
        "bad-weights": "finished",
        "truncated": "unreadable",
        "bad-config": "unreadable",
        "no-status": "interrupted",
    }


# --- memory bounded by bytes ----------------------------------------------------------------------------


def test_finished_runs_leave_memory_past_the_byte_budget_and_read_back_from_disk(manager, ds):
    m = manager(memory_mb=10_000)
    first, second = m.submit(config(), ds), m.submit(config(), ds)
    assert first.wait(30) and second.wait(30)
    assert m.get(first.run_id) is first and m.get(second.run_id) is second  # both fit the huge budget
    sizes = first.nbytes(), second.nbytes()
    assert min(sizes) > 100_000  # 24 hidden snapshots of 3 layers of 100 units, 300 rows, a model
    m.memory_bytes = sizes[1] + sizes[0] // 2  # room for the newest only
    m._evict()
    assert m.get(first.run_id) is None and m.get(second.run_id) is second
    back = m.open_run(first.run_id)
    assert isinstance(back, StoredRun) and back.status == "finished"
    assert back.read(lambda h: (h.steps_done, h.summary)) == first.read(lambda h: (h.steps_done, h.summary))
    assert back.read(lambda h: len(h.snapshots)) == 1  # disk keeps the newest snapshot
    assert m.memory_in_use() <= m.memory_bytes + back.nbytes()


def test_a_live_run_stays_in_memory_whatever_the_budget(manager, ds):
    m = manager(memory_mb=0.001, max_concurrent=2)
    live = m.submit(config(epochs=1000), ds)
    done = m.submit(config(), ds)
    assert done.wait(30)
    assert m.get(done.run_id) is None  # finished and saved: gone from memory at once
    assert m.get(live.run_id) is live and not live.done
    m.stop(live.run_id)
    assert live.wait(5) and m.get(live.run_id) is None
    for rid in (live.run_id, done.run_id):
        m.open_run(rid)
    assert len(m._stored) == 1  # runs read back are held within the budget too (the newest always)


def test_pruning_spares_the_runs_of_a_session_seen_recently(tmp_path, ds):
    store = RunStore(tmp_path / "runs", max_runs=2, max_per_owner=1, min_age_seconds=0)
    m = JobManager(store, mode="thread", max_concurrent=1)
    try:
        runs = [m.submit(config(), ds, owner=f"student-{i}") for i in range(4)]
        anonymous = [m.submit(config(), ds) for _ in range(3)]
        assert all(j.wait(30) for j in runs + anonymous)
        left = {r["id"] for r in m.store.list_runs()}
        assert {j.run_id for j in runs} <= left  # each student submitted just now: all four are kept
        assert sum(j.run_id in left for j in anonymous) == 1  # "" is no session: past the limits, pruned
    finally:
        m.shutdown()
