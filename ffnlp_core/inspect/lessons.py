"""The lecture's lessons as experiments: the configurations each lesson trains, and the analyses that turn the
runs' numbers into the measured statement the Lessons page shows (no Streamlit here).

1. Lightning vs the manual loop: the same config on both engines.
2. The zero_grad bug: the same config with and without `optimizer.zero_grad()`; gradients accumulate.
3. Hidden layers and nonlinearity: no hidden layers, 3 linear layers, 3 ReLU layers on the interaction data,
   and what each learned on the four jerk/chicken combinations.
4. What a GPU buys: in gpu_lesson.py.

The figures drawn from these analyses are in plots/lessons.py. Importing this module does not import torch
(the Lessons page reads its configurations): the functions that run a model or a device import it themselves.
"""

from __future__ import annotations

import copy

import numpy as np

from ..config import RunConfig
from ..data import samples
from ..runs.history import RunHistory


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
