"""What a run keeps when its training process dies (issue 15): the job manager checkpoints a training
run's weights every CHECKPOINT_SECONDS, keeps a crashed worker's last weights, and a run whose loss
explodes ends as `diverged`, in memory and on disk."""

from __future__ import annotations

import time

import pytest
from run_configs import config

from ffnlp_core.runs import writer as writer_module
from ffnlp_core.runs.store import RunStore


def test_a_training_run_checkpoints_its_weights_and_a_killed_worker_keeps_them(manager, ds, monkeypatch):
    monkeypatch.setattr(writer_module, "SAVE_EVERY_SECONDS", 0.2)
    monkeypatch.setattr(writer_module, "CHECKPOINT_SECONDS", 0.5)
    m = manager(mode="process", max_concurrent=1)
    job = m.submit(config(epochs=500), ds)
    store: RunStore = m.store
    deadline = time.monotonic() + 60
    while not store.has_model(job.run_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job.status == "running" and store.has_model(job.run_id)  # on disk while it still trains
    assert store.status(job.run_id)["status"] == "running"
    slot = next(s for s in m.slots if s.job is job)
    steps_before = job.steps_trained()
    slot.proc.kill()  # the out-of-memory killer
    assert job.wait(15) and job.status == "failed" and "exit code -9" in job.reason
    assert store.status(job.run_id)["status"] == "failed"
    model, vectorizer, classes = store.load_model(job.run_id)  # its last weights, kept
    assert classes == list(ds.class_names) and model.layer_names == job.model.layer_names
    assert store.load_history(job.run_id).steps_done >= steps_before > 0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_an_exploding_loss_ends_the_run_as_diverged_in_memory_and_on_disk(manager, ds):
    m = manager()
    job = m.submit(config(optimizer="adam", lr=10.0), ds)
    assert job.wait(60)
    assert job.status == "diverged" and "the loss exploded to" in job.reason
    status = m.store.status(job.run_id)
    assert status["status"] == "diverged" and status["reason"] == job.reason
    listed = next(r for r in m.store.list_runs() if r["id"] == job.run_id)
    assert listed["status"] == "diverged"
