"""Lesson 4, what a GPU buys: the lecture's `normalize(matmul(t, t))` micro-benchmark on each device, one
training epoch of the plain autograd loop per device, the analysis the Lessons page shows, and the figures
the project's own benchmark recorded on a GPU (shown, labelled as recorded, on a server without one).
Importing this module does not import torch: the functions that touch a device import it themselves."""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING

from ..config import RunConfig
from .lessons import lesson_config

if TYPE_CHECKING:
    import torch


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (GPU calls return before the work is done)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def matmul_benchmark(
    device: str = "cpu", size: int = 1000, repeats: int = 300, max_seconds: float = 3.0
) -> dict:
    """The lecture's loop, t = normalize(t @ t, dim=1), on one device: seconds per iteration (warm-up excluded;
    stops early after max_seconds), and the result's first values read back with .cpu()."""
    import torch
    from torch.nn import functional as F

    from ..train.devices import available_devices, resolve_device

    dev = resolve_device(device)
    t = torch.rand((size, size), generator=torch.Generator().manual_seed(0)).to(dev)  # made on the CPU, moved
    t = F.normalize(t @ t, dim=1)  # warm-up: kernels load, memory is allocated
    synchronize(dev)
    start, n = time.perf_counter(), 0
    while n < repeats:
        t = F.normalize(t @ t, dim=1)
        n += 1
        if n % 10 == 0:
            synchronize(dev)
            if time.perf_counter() - start > max_seconds:
                break
    synchronize(dev)
    seconds = time.perf_counter() - start
    return {
        "device": device,
        "label": dict(available_devices()).get(device, device),
        "iterations": n,
        "seconds_per_iteration": seconds / n,
        "seconds_for_300": 300 * seconds / n,
        "result_head": t[0, :3].cpu().numpy().tolist(),  # .cpu() before numpy
        "cpu_threads": torch.get_num_threads(),
    }


def accelerators() -> list[str]:
    """The devices present besides the CPU, e.g. ["cuda"] (asks torch)."""
    from ..train.devices import available_devices

    return [key for key, _ in available_devices() if key != "cpu"]


def gpu_epoch_configs(base: RunConfig | None = None) -> dict[str, RunConfig]:
    """One epoch of the same plain autograd loop on each device present (CPU always)."""
    base = base or lesson_config(epochs=1)
    out = {}
    for device in ["cpu", *accelerators()]:
        cfg = copy.deepcopy(base)
        cfg.train.device, cfg.train.fast, cfg.train.epochs = device, False, 1
        out[device] = cfg
    return out


# Recorded, not live: what the project's own benchmark measured on a GPU, for a server without one.
GPU_REFERENCE = {
    "device": "one NVIDIA H100",
    "date": "2026-11-27",
    "command": "python benchmarks/bench_train.py --device cuda",
    "data": "Davidson et al. tweets (3 classes, vocabulary 10,752), the 3×100 network",
    "rows": [
        {
            "batch size": 512,
            "lecture's loop, examples/s": 26_623,
            "ffnlp's loop, examples/s": 123_157,
            "ratio": 4.63,
        },
        {
            "batch size": 32,
            "lecture's loop, examples/s": None,
            "ffnlp's loop, examples/s": None,
            "ratio": 0.87,
        },
    ],
    "notes": (
        "At batch 32 only the ratio was recorded: ffnlp's loop ran 0.87× the lecture's (it read its gradient "
        "statistics every step, which makes the CPU wait for the GPU); small batches leave a GPU idle."
    ),
}
WHY_CPU_DIFFERS = (
    "This lesson trains with the plain PyTorch autograd loop, as on the lecture's slides, so that every device "
    "runs the same code. The Train page trains on the CPU with ffnlp's fast path instead (the sparse first "
    "layer touches only the words present; compiled kernels), which is why it reports many more examples/s "
    "on the same CPU."
)


def gpu_analysis(matmul: list[dict], epochs: dict[str, dict]) -> dict:
    """Bars (device, figure) and the ratios against the CPU; says so where there is no accelerator."""
    cpu = next(r for r in matmul if r["device"] == "cpu")
    cpu_rate = epochs.get("cpu", {}).get("examples_per_second")
    rows = []
    for r in matmul:
        s = epochs.get(r["device"], {})
        rate = s.get("examples_per_second")
        rows.append(
            {
                "device": r["label"],
                "matmul ms/iteration": 1000 * r["seconds_per_iteration"],
                "speed-up vs CPU (matmul)": cpu["seconds_per_iteration"] / r["seconds_per_iteration"],
                "epoch examples/s": rate,
                "speed-up vs CPU (epoch)": rate / cpu_rate if rate and cpu_rate else None,
                "dev accuracy": s.get("dev_accuracy"),
            }
        )
    if len(matmul) == 1:
        text = (
            f"No GPU here: only the CPU was measured, {1000 * cpu['seconds_per_iteration']:.1f} ms per "
            f"iteration ({cpu['seconds_for_300']:.1f} s for the lecture's 300). Recorded GPU figures are "
            "shown below for comparison."
        )
    else:
        best = max(rows[1:], key=lambda r: r["speed-up vs CPU (matmul)"])
        text = f"{best['device']} ran the matmul loop {best['speed-up vs CPU (matmul)']:.0f}x faster than the CPU."
    return {"rows": rows, "has_accelerator": len(matmul) > 1, "text": text}
