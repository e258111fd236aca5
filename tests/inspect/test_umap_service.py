"""Tests for ffnlp_core.inspect.umap_service: the LRU cache, the background queue (newest first, failures
reported) and the UMAP process, which closes at exit without waiting for a call in flight."""

import threading
import time

import numpy as np
import pytest

from ffnlp_core.inspect import umap_service as us


def test_lru_cache_computes_once_and_forgets_the_least_recent():
    lru, calls = us.LRU(size=2), []
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # "a" is now the most recent
    lru.put("c", 3)
    assert lru.get("b") is None and lru.get("a") == 1 and lru.get("c") == 3
    key = ("test-cache", time.time())
    assert us.cached(key, lambda: calls.append(1) or 42) == 42
    assert us.cached(key, lambda: calls.append(1) or 43) == 42 and calls == [1]


def test_background_worker_returns_none_then_the_value_and_reports_failures():
    key, bad = ("test-worker", time.time()), ("test-worker-bad", time.time())
    assert us.WORKER.request(key, lambda: np.full(3, 7.0)) is None
    us.WORKER.request(bad, lambda: 1 / 0)
    deadline = time.monotonic() + 10
    while us.WORKER.busy() and time.monotonic() < deadline:
        time.sleep(0.01)
    np.testing.assert_array_equal(us.WORKER.request(key, lambda: None), [7.0, 7.0, 7.0])
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        us.WORKER.request(bad, lambda: None)


def test_closing_the_umap_process_does_not_wait_for_a_call_in_flight():
    """At exit (Ctrl-C) the server closes the UMAP process; a warm-up compiling there for a minute must not
    hold the server up (it did: the close waited for the warm-up's lock, 40+ s)."""
    proc = us.UmapProcess()
    outcome: list = []

    def warm():
        try:
            outcome.append(proc.ask(("warm", 5000, 20, 0)))  # compiles umap-learn: many seconds
        except RuntimeError as exc:
            outcome.append(exc)

    caller = threading.Thread(target=warm)
    caller.start()
    deadline = time.monotonic() + 30
    while (proc.proc is None or not proc.proc.is_alive()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # the call is in flight
    child = proc.proc
    t0 = time.monotonic()
    proc.close()
    took = time.monotonic() - t0
    caller.join(10)
    assert not caller.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], RuntimeError)  # the caller gave up, said why
    assert "ended unexpectedly" in str(outcome[0])
    assert took < 5.0, f"close() waited {took:.1f} s"
    assert not child.is_alive()


def test_quiet_for_counts_from_the_last_projection_and_is_zero_while_one_runs():
    """The server's warm-up waits on it before importing Lightning (4 s at normal priority starved the
    first projection, computed at nice 19)."""
    started, release = threading.Event(), threading.Event()
    key = ("test-quiet", time.time())
    us.WORKER.request(key, lambda: started.set() or release.wait(10) or np.zeros(1))
    assert started.wait(10)
    assert us.WORKER.quiet_for() == 0.0
    release.set()
    deadline = time.monotonic() + 10
    while us.WORKER.busy() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert 0.2 <= us.WORKER.quiet_for() < 5.0
