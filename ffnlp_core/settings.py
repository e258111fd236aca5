"""Every FFNLP_* environment setting, read in one place with one default each (read when asked, so tests
can set the environment). A value that cannot work is refused with one line naming the variable;
`check()` reads them all at once (the job manager calls it when it starts).

| variable                   | default      | meaning                                                      |
|----------------------------|--------------|--------------------------------------------------------------|
| FFNLP_WORKERS              | process      | runs train in worker processes, Ray actors, or threads       |
| FFNLP_RAY_ADDRESS          | (none)       | with FFNLP_WORKERS=ray: the cluster; empty: a local instance |
| FFNLP_MAX_CONCURRENT       | one per core | runs training at once; the others wait in the queue          |
| FFNLP_RUNS_DIR             | runs         | the runs folder                                              |
| FFNLP_MAX_RUNS             | 200          | runs kept on disk by the server (a target, see store.prune)  |
| FFNLP_MAX_RUNS_PER_SESSION | 20           | runs kept on disk per session (owner)                        |
| FFNLP_RUN_MEMORY_MB        | 512          | memory for finished runs' snapshots and models in the server |
| FFNLP_UMAP                 | 1            | 0: no UMAP process (PCA only), e.g. for page tests           |

Pruning never removes a run younger than a day or a run of a session active in the last 6 hours, so the
two run limits can be exceeded for a while; they are never a reason to lose a student's work.
"""

from __future__ import annotations

import os
from pathlib import Path

WORKER_MODES = ("process", "ray", "thread")


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
    """FFNLP_WORKERS: 'process' (the default: crash-isolated training processes on this machine), 'ray'
    (Ray actors anywhere on a cluster, see runs/ray_slots.py) or 'thread' (in the server: page tests)."""
    mode = _raw("FFNLP_WORKERS") or "process"
    if mode not in WORKER_MODES:
        raise ValueError(f"FFNLP_WORKERS must be 'process', 'ray' or 'thread', got {mode!r}")
    return mode


def ray_address() -> str:
    """FFNLP_RAY_ADDRESS: a running Ray cluster ('host:port' or 'auto'); empty: a local instance."""
    raw = _raw("FFNLP_RAY_ADDRESS")
    if raw and any(c.isspace() for c in raw):
        raise ValueError(f"FFNLP_RAY_ADDRESS must be 'host:port' or 'auto', got {raw!r}")
    return raw


def max_concurrent() -> int | None:
    """FFNLP_MAX_CONCURRENT, or None: the job manager then trains one run per core."""
    return _whole("FFNLP_MAX_CONCURRENT", None)


def runs_dir() -> Path:
    """FFNLP_RUNS_DIR: a folder (created when missing); an existing file there is refused."""
    path = Path(_raw("FFNLP_RUNS_DIR") or "runs")
    if path.exists() and not path.is_dir():
        raise ValueError(f"FFNLP_RUNS_DIR must name a folder, but {str(path)!r} is a file")
    return path


def max_runs() -> int:
    """FFNLP_MAX_RUNS: runs kept on disk server-wide (0 is refused: it would delete every run)."""
    return _whole("FFNLP_MAX_RUNS", 200)


def max_runs_per_session() -> int:
    """FFNLP_MAX_RUNS_PER_SESSION: runs kept on disk per owner, beyond which its oldest go first."""
    return _whole("FFNLP_MAX_RUNS_PER_SESSION", 20)


def run_memory_mb() -> int:
    """FFNLP_RUN_MEMORY_MB: megabytes of finished runs (snapshots, models) the server keeps in memory."""
    return _whole("FFNLP_RUN_MEMORY_MB", 512)


def umap_enabled() -> bool:
    raw = _raw("FFNLP_UMAP") or "1"
    if raw not in ("0", "1"):
        raise ValueError(f"FFNLP_UMAP must be 0 or 1, got {raw!r}")
    return raw == "1"


READERS = (
    workers,
    ray_address,
    max_concurrent,
    runs_dir,
    max_runs,
    max_runs_per_session,
    run_memory_mb,
    umap_enabled,
)


def check() -> None:
    """Read every setting; a ValueError lists each refused one, one line each."""
    problems = []
    for read in READERS:
        try:
            read()
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ValueError("\n".join(problems))
