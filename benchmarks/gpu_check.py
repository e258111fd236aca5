"""One prepared check for a GPU machine (run it with a hard time limit; it aims at < 4 minutes on an H100):

    python benchmarks/gpu_check.py            # JSON lines on stdout, one per measurement
    python benchmarks/gpu_check.py --quick    # a short smoke run (the tests use it on the CPU)
    python benchmarks/gpu_check.py --davidson PATH   # the davidson CSV elsewhere

1. the device: name, memory, torch and Lightning versions;
2. the lecture's micro-benchmark, normalize(t @ t) on a 1000x1000 tensor, on the CPU and on CUDA, and the
   ratio (CUDA is synchronized before the clock is read);
3. one training epoch with each engine (manual autograd loop, Lightning) on CUDA, with the CPU as the
   baseline in the same run, on the built-in data and on the davidson CSV when it is there
   (../shared/data/davidson_labeled_tweets.csv, ./shared/data/..., or $FFNLP_DAVIDSON): examples/s and dev
   accuracy of each, and the CUDA/CPU ratio.

Every part catches its own errors and prints them as {"part": ..., "error": ...}: the rest still runs.
Without CUDA it says so and measures the CPU only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BUDGET_SECONDS = 165.0  # no part starts after this (each is capped at 45 s): done well within 4 minutes
EPOCH_CAP_SECONDS = 45.0  # one epoch of one engine on one device at most this long
MATMUL_SECONDS = 8.0  # the micro-benchmark stops after this long per device
ARGS = argparse.Namespace(quick=False, davidson=None)
T0 = time.monotonic()


def emit(part: str, **fields) -> None:
    print(json.dumps({"part": part, **fields}, default=float), flush=True)


def guarded(part: str, fn, *args, **kwargs):
    """Run one part; on an error print it and go on; past the time budget skip it."""
    if time.monotonic() - T0 > BUDGET_SECONDS:
        emit(part, skipped=f"past the {BUDGET_SECONDS:.0f} s budget")
        return None
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        emit(part, error=f"{type(exc).__name__}: {exc}", where=traceback.format_exc(limit=2)[-400:])
        return None


def device_info() -> bool:
    import torch

    has_cuda = torch.cuda.is_available()
    fields = {"torch": torch.__version__, "cuda": has_cuda}
    for package in ("lightning", "torchmetrics", "numba", "sklearn"):  # what the engines need
        try:
            fields[package] = __import__(package).__version__
        except ImportError as exc:
            fields[package] = f"missing: {exc}"
    if has_cuda:
        props = torch.cuda.get_device_properties(0)
        fields.update(
            name=props.name, memory_gib=round(props.total_memory / 2**30, 1), count=torch.cuda.device_count()
        )
    else:
        fields["note"] = "no CUDA GPU here: CPU figures only"
    emit("device", cpu_threads=torch.get_num_threads(), **fields)
    return has_cuda


def matmul_benchmark(device: str, size: int = 1000, repeats: int = 300, max_seconds: float = 8.0) -> dict:
    """The lecture's loop t = normalize(t @ t, dim=1) (as ffnlp_core.inspect.gpu_lesson.matmul_benchmark, but needing
    torch only, so it runs even where the app's other dependencies are missing)."""
    import torch
    from torch.nn import functional as F

    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    t = torch.rand((size, size), generator=torch.Generator().manual_seed(0)).to(dev)
    t = F.normalize(t @ t, dim=1)  # warm-up
    sync()
    start, n = time.perf_counter(), 0
    while n < repeats:
        t = F.normalize(t @ t, dim=1)
        n += 1
        if n % 10 == 0:
            sync()  # GPU calls return before the work is done: wait before reading the clock
            if time.perf_counter() - start > max_seconds:
                break
    sync()
    seconds = time.perf_counter() - start
    head = t[0, :3].cpu().numpy().tolist()  # .cpu() before numpy
    return {"device": device, "iterations": n, "seconds_per_iteration": seconds / n, "result_head": head}


def micro_benchmark(devices: list[str]) -> None:
    results = {}
    for device in devices:
        r = guarded(f"matmul:{device}", matmul_benchmark, device, 1000, 300, MATMUL_SECONDS)
        if r:
            results[device] = r
            emit("matmul", **r)
    if "cpu" in results and "cuda" in results:
        c, g = results["cpu"], results["cuda"]
        diff = max(abs(a - b) for a, b in zip(c["result_head"], g["result_head"], strict=True))
        emit(
            "matmul_ratio",
            cpu_ms=1000 * c["seconds_per_iteration"],
            cuda_ms=1000 * g["seconds_per_iteration"],
            speedup=c["seconds_per_iteration"] / g["seconds_per_iteration"],
            max_abs_difference_of_results=diff,
        )


def davidson_path() -> Path | None:
    if ARGS.davidson:
        return Path(ARGS.davidson) if Path(ARGS.davidson).is_file() else None
    candidates = [os.environ.get("FFNLP_DAVIDSON", "")]
    candidates += [str(ROOT.parent / "shared" / "data" / "davidson_labeled_tweets.csv")]
    candidates += [str(ROOT / "shared" / "data" / "davidson_labeled_tweets.csv")]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def load(name: str):
    from ffnlp_core.config import RunConfig
    from ffnlp_core.data.dataset import build_dataset, load_source

    cfg = RunConfig()
    if name == "davidson":  # the lecture's setup: --text-column tweet --label-column class --min-df 2
        path = davidson_path()
        if path is None:
            emit(
                "data",
                data=name,
                skipped="davidson_labeled_tweets.csv not found (../shared/data or $FFNLP_DAVIDSON)",
            )
            return None
        cfg.data.source, cfg.data.text_column, cfg.data.label_column, cfg.data.min_df = (
            str(path),
            "tweet",
            "class",
            2,
        )
    t0 = time.perf_counter()
    ds = build_dataset(load_source(cfg.data), cfg.data)
    emit(
        "data",
        data=name,
        train=ds.x_train.shape[0],
        dev=ds.x_dev.shape[0],
        vocab=ds.vocab_size,
        seconds=time.perf_counter() - t0,
    )
    return cfg, ds


def one_epoch(name: str, cfg, ds, device: str, engine: str, fast: bool) -> dict:
    import copy

    from ffnlp_core.events import Failed, Finished
    from ffnlp_core.train.loop import train

    cfg = copy.deepcopy(cfg)
    cfg.train.device, cfg.train.engine, cfg.train.fast, cfg.train.epochs = device, engine, fast, 1
    cfg.train.snapshot_rows = 200
    stop = threading.Event()
    timer = threading.Timer(EPOCH_CAP_SECONDS, stop.set)  # a slow baseline ends early, its rate still counts
    timer.start()
    t0 = time.perf_counter()
    last = None
    try:
        for event in train(cfg, ds, stop=stop):
            if isinstance(event, (Finished, Failed)):
                last = event
    finally:
        timer.cancel()
    s = last.summary
    fields = {
        "data": name,
        "device": s["device"],
        "engine": engine,
        "path": s["path"],
        "examples_per_second": s["examples_per_second"],
        "dev_accuracy": s["dev_accuracy"],
        "train_seconds": s["train_seconds"],
        "wall_seconds": time.perf_counter() - t0,
        "steps": s["steps"],
    }
    if isinstance(last, Failed):
        fields["failed"] = last.reason
    elif last.stopped:
        fields["stopped_after_seconds"] = (
            EPOCH_CAP_SECONDS  # partial epoch: dev accuracy of the last evaluation
        )
    emit("epoch", **fields)
    return fields


def epochs(name: str, loaded, has_cuda: bool) -> None:
    cfg, ds = loaded
    runs = [("cuda", "manual", False), ("cuda", "lightning", False)] if has_cuda else []
    runs += [("cpu", "manual", True), ("cpu", "manual", False), ("cpu", "lightning", False)]  # CPU baselines
    out = {}
    for device, engine, fast in runs:
        r = guarded(f"epoch:{name}:{device}:{engine}", one_epoch, name, cfg, ds, device, engine, fast)
        if r:
            out[(device, engine, r["path"])] = r
    for engine in ("manual", "lightning"):
        cpu, gpu = out.get(("cpu", engine, "autograd")), out.get(("cuda", engine, "autograd"))
        if cpu and gpu:
            emit(
                "epoch_ratio",
                data=name,
                engine=engine,
                cuda_over_cpu_examples_per_second=gpu["examples_per_second"] / cpu["examples_per_second"],
                dev_accuracy_cpu=cpu["dev_accuracy"],
                dev_accuracy_cuda=gpu["dev_accuracy"],
            )


def main(argv: list[str] | None = None) -> int:
    global ARGS, EPOCH_CAP_SECONDS, MATMUL_SECONDS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short caps: a smoke run")
    parser.add_argument("--davidson", help="path of davidson_labeled_tweets.csv")
    ARGS = parser.parse_args(argv)
    if ARGS.quick:
        EPOCH_CAP_SECONDS, MATMUL_SECONDS = 15.0, 1.0
    has_cuda = bool(guarded("device", device_info))
    guarded("matmul", micro_benchmark, ["cpu", "cuda"] if has_cuda else ["cpu"])
    loaded = {name: guarded(f"data:{name}", load, name) for name in ("builtin", "davidson")}
    for name, data in loaded.items():
        if data is not None:
            epochs(name, data, has_cuda)
    emit("done", seconds=time.monotonic() - T0, cuda=has_cuda)
    return 0


if __name__ == "__main__":
    sys.exit(main())
