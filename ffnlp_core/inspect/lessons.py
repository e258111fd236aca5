"""The lecture's lessons as experiments: the configurations each lesson trains, and the analyses that turn the
runs' numbers into the measured statement the Lessons page shows (no Streamlit here).

1. Lightning vs the manual loop: the same config on both engines.
2. The zero_grad bug: the same config with and without `optimizer.zero_grad()`; gradients accumulate.
3. Hidden layers and nonlinearity: no hidden layers, 3 linear layers, 3 ReLU layers on the interaction data,
   and what each learned on the four jerk/chicken combinations.
4. What a GPU buys: the lecture's `normalize(matmul(t, t))` micro-benchmark and one epoch per device.

The figures drawn from these analyses are in plots/lessons.py. Importing this module does not import torch
(the Lessons page reads its configurations): the functions that run a model or a device import it themselves.
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING

import numpy as np

from ..config import RunConfig
from ..data import samples
from ..runs.history import RunHistory

if TYPE_CHECKING:
    import torch


def lesson_config(**changes) -> RunConfig:
    """The lessons' base: the built-in interaction data, the lecture's network and Adam, on the CPU."""
    cfg = RunConfig()
    cfg.train.device = "cpu"
    cfg.train.snapshot_rows = 0
    sections = (cfg.data, cfg.model, cfg.train)
    for name, value in changes.items():
        owner = next(s for s in sections if hasattr(s, name))
        setattr(owner, name, copy.deepcopy(value))
    return cfg.validate()


def view(h: RunHistory) -> dict:
    """Copies of what the analyses read from a run's history (call it under the run's lock)."""
    return {
        "curves": h.curves(),
        "evals": h.eval_table(),
        "grads": h.gradient_table(),
        "summary": dict(h.summary or {}),
    }


# --- 1. Lightning vs the manual loop ---------------------------------------------------------------------
def engine_configs(base: RunConfig | None = None) -> dict[str, RunConfig]:
    """The same run on both engines (same seed, data and settings)."""
    base = base or lesson_config(activation="relu", epochs=2)
    out = {}
    for engine in ("manual", "lightning"):
        cfg = copy.deepcopy(base)
        cfg.train.engine = engine
        out[engine] = cfg
    return out


def engine_comparison(manual: dict, lightning: dict) -> dict:
    """Side-by-side figures of the two engines' summaries and the accuracy gap in points."""
    keys = ("dev_accuracy", "dev_loss", "train_loss", "steps", "examples_per_second", "path")
    rows = [{"figure": k, "manual": _fmt(manual.get(k)), "lightning": _fmt(lightning.get(k))} for k in keys]
    gap = 100 * abs(manual["dev_accuracy"] - lightning["dev_accuracy"])
    speed = manual["examples_per_second"] / max(lightning["examples_per_second"], 1e-9)
    text = (
        f"Same seed, same data: dev accuracy {manual['dev_accuracy']:.4f} (manual) vs "
        f"{lightning['dev_accuracy']:.4f} (Lightning), {gap:.2f} points apart. The manual loop trained "
        f"{speed:.1f}x as many examples per second ({manual['path']} path)."
    )
    return {"rows": rows, "gap_points": gap, "speed_ratio": speed, "text": text}


def _fmt(value) -> str:
    """A table cell: 4 decimals for fractions, thousands separators for rates."""
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4f}"
    return str(value)


# --- 2. the zero_grad bug --------------------------------------------------------------------------------
def zero_grad_configs(base: RunConfig | None = None) -> dict[str, RunConfig]:
    """correct and buggy: the same plain autograd loop, the buggy one without optimizer.zero_grad()."""
    base = base or lesson_config(activation="relu", epochs=2)
    out = {}
    for name, skip in (("correct", False), ("buggy", True)):
        cfg = copy.deepcopy(base)
        cfg.train.engine, cfg.train.fast, cfg.train.skip_zero_grad = "manual", False, skip
        out[name] = cfg
    return out


ZERO_GRAD_LOOPS = {  # the two loops the lesson trains, as the lesson shows them side by side
    "correct": (
        "for x, y in batches:\n"
        "    optimizer.zero_grad()   # clear the last step's gradients\n"
        "    loss = F.cross_entropy(model(x), y)\n"
        "    loss.backward()         # gradients of this batch only\n"
        "    optimizer.step()"
    ),
    "buggy": (
        "for x, y in batches:\n"
        "    # optimizer.zero_grad() <- forgotten\n"
        "    loss = F.cross_entropy(model(x), y)\n"
        "    loss.backward()         # ADDS to every earlier batch's gradients\n"
        "    optimizer.step()"
    ),
}


def total_grad_norm(grads: dict) -> np.ndarray:
    """||gradient of all weights|| at each probed step: the layers' norms combined, (n probes,)."""
    g = np.asarray(grads.get("grad_norm", np.zeros((0, 1))), np.float64)
    return np.sqrt((g**2).sum(axis=1))


def zero_grad_analysis(correct: dict, buggy: dict) -> dict:
    """The measured consequence of skipping zero_grad, from the two runs' views."""
    nc, nb = total_grad_norm(correct["grads"]), total_grad_norm(buggy["grads"])
    sb = buggy["grads"]["step"]
    rising = float(np.mean(np.diff(nb) > 0)) if len(nb) > 1 else float("nan")
    growth = float(nb[-1] / nb[0])
    ratio = float(nb[-1] / nc[-1])
    sc, sbm = correct["summary"], buggy["summary"]
    gap = 100 * (sc["dev_accuracy"] - sbm["dev_accuracy"])
    text = (
        f"Without zero_grad the gradient norm grew from {nb[0]:.3g} at step {sb[0]} to {nb[-1]:.3g} at step "
        f"{sb[-1]} ({growth:,.0f}x); it rose in {rising:.0%} of consecutive probed steps, because each "
        f"backward() adds to the gradients left from every earlier step. With zero_grad it stayed between "
        f"{nc.min():.3g} and {nc.max():.3g}, ending {ratio:,.0f}x smaller. Dev accuracy: {sc['dev_accuracy']:.3f} "
        f"correct vs {sbm['dev_accuracy']:.3f} buggy ({gap:+.1f} points); mean train loss of the last epoch "
        f"{sc['train_loss']:.3f} vs {sbm['train_loss']:.3f}."
    )
    return {
        "steps_correct": correct["grads"]["step"],
        "norm_correct": nc,
        "steps_buggy": sb,
        "norm_buggy": nb,
        "growth": growth,
        "rising_fraction": rising,
        "end_ratio": ratio,
        "accuracy_gap_points": gap,
        "text": text,
    }


# --- 3. hidden layers and nonlinearity ---------------------------------------------------------------
INTERACTION_MODELS = {
    "no hidden layers": dict(hidden_sizes=[], activation="none"),
    "3 linear layers": dict(hidden_sizes=[100, 100, 100], activation="none"),
    "3 layers + ReLU": dict(hidden_sizes=[100, 100, 100], activation="relu"),
}
COMBINATIONS = {
    "neither": [],
    "jerk alone": ["jerk"],
    "chicken alone": ["chicken"],
    "jerk chicken": ["jerk", "chicken"],
}


def interaction_configs(epochs: int = 4) -> dict[str, RunConfig]:
    return {name: lesson_config(epochs=epochs, **m) for name, m in INTERACTION_MODELS.items()}


def probe_comments(n: int = 24, seed: int = 7) -> dict[str, list[str]]:
    """n comments per word combination, built from the sample generator's neutral sentences (no insult,
    no kind word), the same sentence for each combination."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {name: [] for name in COMBINATIONS}
    for _ in range(n):
        base = samples._sentence(rng)  # the generator's own neutral phrases
        at = int(rng.integers(1, len(base) + 1))
        for name, words in COMBINATIONS.items():
            phrases = base[:at] + ([" ".join(words)] if words else []) + base[at:]
            out[name].append(" ".join(phrases))
    return out


def p_toxic(model, vectorizer, class_names: list[str], texts: list[str]) -> np.ndarray:
    """P(toxic) of each comment, (n,), computed on the model's own device and brought back with .cpu()."""
    import torch
    from torch.nn import functional as F

    from ..nn.inputs import to_torch_csr

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits, _ = model(to_torch_csr(vectorizer.transform(texts), device))  # (n, classes)
        p = F.softmax(logits, dim=1)[:, class_names.index("toxic")].cpu().numpy()
    model.train(was_training)
    return p


def interaction_table(
    models: dict, vectorizer, class_names: list[str], comments: dict | None = None
) -> list[dict]:
    """One row per word combination: an example comment, the rule's label, each model's mean P(toxic)."""
    comments = comments or probe_comments()
    rows = []
    for combo, texts in comments.items():
        row = {"words": combo, "example": texts[0], "rule says": samples.interaction_label(texts[0])}
        for name, model in models.items():
            row[name] = float(p_toxic(model, vectorizer, class_names, texts).mean())
        rows.append(row)
    return rows


def interaction_analysis(dev_accuracy: dict[str, float], table: list[dict]) -> dict:
    """How many combinations each model gets right, and the computed 'same ceiling' statement."""
    right = {
        name: sum((row[name] > 0.5) == (row["rule says"] == "toxic") for row in table)
        for name in dev_accuracy
    }
    none, linear, relu = (dev_accuracy[k] for k in INTERACTION_MODELS)
    ceiling_gap = 100 * abs(linear - none)
    nonlinear_gain = 100 * (relu - max(none, linear))
    same_ceiling = ceiling_gap < 3.0 and nonlinear_gain > 10.0
    text = (
        f"Dev accuracy: no hidden layers {none:.1%}, 3 linear layers {linear:.1%} ({ceiling_gap:.1f} points "
        f"apart), 3 layers + ReLU {relu:.1%} ({nonlinear_gain:+.1f} points). "
        + (
            "Stacked linear layers reach the same ceiling as none: W3 W2 W1 W0 x is still one linear map. "
            if same_ceiling
            else "This time the two linear models did not end at the same ceiling (too few epochs?). "
        )
        + "On the four word combinations: "
        + ", ".join(f"{name} {k}/4" for name, k in right.items())
        + " right (no linear map of the counts can get all four of an XOR right)."
    )
    return {
        "right": right,
        "ceiling_gap_points": ceiling_gap,
        "nonlinear_gain_points": nonlinear_gain,
        "same_ceiling": same_ceiling,
        "text": text,
    }


# --- 4. what a GPU buys --------------------------------------------------------------------------------
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
