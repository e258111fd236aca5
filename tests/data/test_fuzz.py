"""A seeded fuzz test of the upload path: generated and mutated CSV files (tests/data/csv_fuzz.py) go through
read_table -> to_labeled -> build_dataset in a worker process; any traceback other than a DataError, a hang
(no answer within PER_CASE_SECONDS) or a wrong number of classes or rows fails the test.

FFNLP_FUZZ_SEED and FFNLP_FUZZ_CASES change the seed and the count (a failure prints the seed and the
case number; the failing files are written to the test's tmp_path).
"""

from __future__ import annotations

import multiprocessing
import os
import time

from csv_fuzz import generate, serve

SEED = int(os.environ.get("FFNLP_FUZZ_SEED", "15"))
CASES = int(os.environ.get("FFNLP_FUZZ_CASES", "300"))
PER_CASE_SECONDS = 20.0  # the slowest well-formed case (a 400 KB field) takes well under a second
TOTAL_SECONDS = 240.0  # the whole run; ~300 cases take about 30 s on 2 busy cores


class Worker:
    """A process running csv_fuzz.serve; restarted after a hang."""

    def __init__(self):
        self.context = multiprocessing.get_context("spawn")  # no fork of a process holding torch's threads
        self.start()

    def start(self) -> None:
        self.conn, child = self.context.Pipe()
        self.process = self.context.Process(target=serve, args=(child,), daemon=True)
        self.process.start()
        assert self.conn.poll(60) and self.conn.recv() == "ready"

    def ask(self, data: bytes, timeout: float):
        """upload()'s answer for `data`, or None when none came within `timeout` (the worker restarted)."""
        self.conn.send(data)
        if self.conn.poll(timeout):
            return self.conn.recv()
        self.process.kill()
        self.process.join()
        self.start()
        return None

    def close(self) -> None:
        self.conn.send(None)
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


def check(sample, answer) -> str | None:
    """Why `answer` is wrong for `sample`, or None."""
    if answer is None:
        return f"hang (no answer in {PER_CASE_SECONDS:.0f} s)"
    kind, *rest = answer
    if kind == "traceback":
        return "traceback:\n" + rest[0]
    if kind == "refused":
        message = rest[0]
        if len(message.splitlines()) != 1 or "\ue000" in message or "\ue001" in message:
            return f"a refusal that is not one clean line: {message!r}"
        if sample.classes:
            return f"refused, but it must build a data set of {sample.classes} classes: {message}"
        return None
    classes, rows = rest
    if sample.classes == 0:
        return f"built a data set of {classes} classes and {rows} rows, but it must be refused"
    if sample.classes is not None and (classes, rows) != (sample.classes, sample.rows):
        return f"{classes} classes and {rows} rows, expected {sample.classes} classes and {sample.rows} rows"
    return None


def test_fuzzed_uploads_give_a_clean_error_or_the_right_data_set(tmp_path, record_property):
    counts = dict.fromkeys(["refused", "trained", "traceback", "hang", "wrong"], 0)
    known = dict.fromkeys(["must train", "must refuse", "either"], 0)
    failures = []
    worker = Worker()
    started = time.monotonic()
    try:
        for number, sample in enumerate(generate(SEED, CASES)):
            assert time.monotonic() - started < TOTAL_SECONDS, f"over {TOTAL_SECONDS} s after {number} cases"
            known[{None: "either", 0: "must refuse"}.get(sample.classes, "must train")] += 1
            answer = worker.ask(sample.data, PER_CASE_SECONDS)
            kind = "hang" if answer is None else answer[0]
            counts[kind] += 1
            if problem := check(sample, answer):
                if kind in ("refused", "trained"):
                    counts["wrong"] += 1
                failures.append(f"{sample.description}\n  -> {problem}")
                (tmp_path / f"case{number}.csv").write_bytes(sample.data)
    finally:
        worker.close()
    seconds = time.monotonic() - started
    summary = (
        f"fuzz seed {SEED}: {CASES} files in {seconds:.1f} s: {counts['refused']} clean errors, "
        f"{counts['trained']} trained, {counts['traceback']} tracebacks, {counts['hang']} hangs, "
        f"{counts['wrong']} wrong answers (of them {known['must train']} had to train, "
        f"{known['must refuse']} had to be refused, {known['either']} mutated: either)"
    )
    print(summary)
    record_property("fuzz", summary)
    assert not failures, f"{summary}\nfiles in {tmp_path}\n" + "\n".join(failures[:10])
    # the generator reaches both outcomes, and each well-formed kind of file
    assert counts["trained"] >= CASES // 5 and counts["refused"] >= CASES // 5
    assert known["must train"] >= CASES // 5 and known["must refuse"] >= CASES // 50
