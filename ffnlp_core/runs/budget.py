"""What of the runs stays in the web server's memory: finished runs within a count and a byte budget
(FFNLP_RUN_MEMORY_MB), newest first; the others are on disk and come back through JobManager.open_run.
A live run, or one whose final save the runs folder refused, always stays."""

from __future__ import annotations

from collections import OrderedDict

from .handles import Job, StoredRun

MAX_STORED_RUNS = 20  # runs read back from disk kept for the next page (within the byte budget too)


def evict(
    jobs: OrderedDict[str, Job], stored: OrderedDict[str, StoredRun], max_in_memory: int, memory_bytes: int
) -> list[Job]:
    """Drop from `jobs` (oldest first) and `stored` (least recently opened first; the newest always stays)
    what the limits leave no room for; returns the jobs dropped."""
    done = [j for j in jobs.values() if j.done and j.on_disk]  # oldest first
    leave = {j.run_id for j in done[: max(0, len(jobs) - max_in_memory)]}
    used = 0
    for job in reversed(done):
        size = job.nbytes()
        if job.run_id in leave or used + size > memory_bytes:
            leave.add(job.run_id)
        else:
            used += size
    dropped = [jobs.pop(rid) for rid in leave]
    runs = list(stored.values())
    used += sum(r.nbytes() for r in runs)
    while len(runs) > 1 and (len(runs) > MAX_STORED_RUNS or used > memory_bytes):
        used -= runs[0].nbytes()
        del stored[runs.pop(0).run_id]
    return dropped


def in_memory(jobs: OrderedDict[str, Job], stored: OrderedDict[str, StoredRun]) -> int:
    """Bytes held by the runs in memory, live ones included."""
    return sum(j.nbytes() for j in jobs.values()) + sum(r.nbytes() for r in stored.values())
