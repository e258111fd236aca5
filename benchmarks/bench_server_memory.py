"""The web server's memory after many wide runs: finished runs leave memory past FFNLP_RUN_MEMORY_MB.

One process, one JobManager per phase (thread mode: training happens in this process, as the page tests
run it), the same wide runs in each phase: first with the byte budget bounded (the default 512 MB), then
with it huge (every finished run's hidden snapshots and model stay, the server before issue 15). Prints
this process's RSS before and after each phase, what the manager counts as held, and the ratio of the
two phases' growth. One wide run trains first and is thrown away (torch's and the engine's one-time
allocations are not the runs' doing), and freed heap is handed back to the system (malloc_trim) before
each reading, so RSS follows what is really held. The bounded phase runs first, so memory it freed can
only make the huge phase's growth look smaller (the ratio errs low). No assertion: a figure to read.

    python benchmarks/bench_server_memory.py                     # 20 runs of 8 x 1024, 1 epoch
    python benchmarks/bench_server_memory.py --runs 5 --hidden 1024,1024 --budget-mb 128

Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ffnlp_core.config import RunConfig
from ffnlp_core.data.dataset import build_dataset, load_source
from ffnlp_core.runs.manager import JobManager
from ffnlp_core.runs.store import RunStore

HUGE_MB = 10**6


def rss_mb() -> float:
    """This process's resident memory in MiB (Linux /proc; psutil elsewhere), after a collection."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc keeps freed heap otherwise
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def config(args: argparse.Namespace) -> RunConfig:
    cfg = RunConfig()
    cfg.model.hidden_sizes = [int(w) for w in args.hidden.split(",")]
    cfg.train.epochs, cfg.train.device, cfg.train.batch_size = args.epochs, "cpu", args.batch_size
    return cfg


def phase(name: str, budget_mb: float, ds, args: argparse.Namespace) -> dict:
    """Train args.runs runs in a fresh JobManager; RSS before and after, and what it holds."""
    gc.collect()
    before = rss_mb()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        m = JobManager(
            RunStore(tmp, max_runs=10_000, max_per_owner=10_000),
            mode="thread",
            max_concurrent=args.concurrent,
            heartbeat_timeout=10**6,  # nobody polls a benchmark
            memory_mb=budget_mb,
        )
        # ids only: a page keeps a run id, never the Job (holding Jobs here would defeat the budget)
        ids = [m.submit(config(args), ds, owner="bench").run_id for _ in range(args.runs)]
        for rid in ids:
            while (job := m.get(rid)) is not None and not job.done:
                time.sleep(0.05)
            del job
        statuses = sorted({m.store.status(rid)["status"] for rid in ids})
        after = rss_mb()
        kept = [j for j in (m.get(rid) for rid in ids) if j is not None]
        held = m.memory_in_use() / 2**20
        per_run = max((j.nbytes() for j in kept), default=0) / 2**20
        in_memory = len(kept)
        del kept
        m.shutdown()
    del m
    return {
        "phase": name,
        "budget_mb": budget_mb,
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "growth_mb": round(after - before, 1),
        "held_mb": round(held, 1),
        "runs_in_memory": in_memory,
        "largest_run_mb": round(per_run, 1),
        "statuses": statuses,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--hidden", default=",".join(["1024"] * 8))
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--concurrent", type=int, default=1)
    p.add_argument("--budget-mb", type=float, default=512)
    args = p.parse_args()

    cfg = RunConfig()
    ds = build_dataset(load_source(cfg.data), cfg.data)
    phase("warm-up", HUGE_MB, ds, argparse.Namespace(**{**vars(args), "runs": 1}))
    start = rss_mb()
    rows = [phase("bounded", args.budget_mb, ds, args), phase("huge", HUGE_MB, ds, args)]
    print(
        f"{args.runs} runs of {args.hidden}, {args.epochs} epoch(s), batch {args.batch_size}; RSS after a warm-up run {start:.0f} MiB"
    )
    print(
        f"{'phase':8} {'budget MB':>10} {'RSS before':>11} {'RSS after':>10} {'growth':>8} {'held':>8} {'in memory':>10} {'s':>6}"
    )
    for r in rows:
        print(
            f"{r['phase']:8} {r['budget_mb']:>10.0f} {r['rss_before_mb']:>11.0f} {r['rss_after_mb']:>10.0f}"
            f" {r['growth_mb']:>8.0f} {r['held_mb']:>8.0f} {r['runs_in_memory']:>10} {r['seconds']:>6.0f}"
        )
    bounded, huge = rows
    ratio = huge["growth_mb"] / bounded["growth_mb"] if bounded["growth_mb"] > 0 else float("inf")
    print(
        f"growth huge / bounded: {ratio:.1f}x; bounded growth {bounded['growth_mb']:.0f} MiB for a {args.budget_mb:.0f} MB budget"
    )
    print(
        json.dumps(
            {
                "args": vars(args),
                "rss_start_mb": round(start, 1),
                "phases": rows,
                "growth_ratio": round(ratio, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
