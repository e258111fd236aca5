"""Every FFNLP_* environment setting, read in one place with one default each (read when asked, so tests
can set the environment). A value that cannot work is refused with one line naming the variable.

| variable              | default        | meaning                                                    |
|-----------------------|----------------|------------------------------------------------------------|
| FFNLP_WORKERS         | process        | runs train in worker processes, or in threads (page tests) |
| FFNLP_MAX_CONCURRENT  | one per core   | runs training at once; the others wait in the queue        |
| FFNLP_RUNS_DIR        | runs           | the runs folder                                            |
| FFNLP_MAX_RUNS        | 200            | runs kept on disk; the oldest finished ones are pruned     |
| FFNLP_UMAP            | 1              | 0: no UMAP process (PCA only), e.g. for page tests         |
"""

from __future__ import annotations

import os
from pathlib import Path

WORKER_MODES = ("process", "thread")


def _raw(name: str) -> str:
    return os.environ.get(name, "").strip()


def _whole(name: str, default: int | None) -> int | None:
    """A whole number of at least 1, or the default when unset or empty."""
    raw = _raw(name)
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {raw!r}")
    return int(raw)


def workers() -> str:
    """FFNLP_WORKERS: 'process' (the default: crash-isolated training processes) or 'thread'."""
    mode = _raw("FFNLP_WORKERS") or "process"
    if mode not in WORKER_MODES:
        raise ValueError(f"FFNLP_WORKERS must be 'process' or 'thread', got {mode!r}")
    return mode


def max_concurrent() -> int | None:
    """FFNLP_MAX_CONCURRENT, or None: the job manager then trains one run per core."""
    return _whole("FFNLP_MAX_CONCURRENT", None)


def runs_dir() -> Path:
    return Path(_raw("FFNLP_RUNS_DIR") or "runs")


def max_runs() -> int:
    return _whole("FFNLP_MAX_RUNS", 200)


def umap_enabled() -> bool:
    raw = _raw("FFNLP_UMAP") or "1"
    if raw not in ("0", "1"):
        raise ValueError(f"FFNLP_UMAP must be 0 or 1, got {raw!r}")
    return raw == "1"
