"""Training speed: the lecture's loop vs ffnlp's engine, in one process, on the same split and settings.

    python benchmarks/bench_train.py [--csv PATH] [--batch-sizes 32,128,512] [--repeats 3]

Both train the lecture's network (bag of words with min_df 2, three linear layers of 100 without activation,
Adam 1e-3) for one epoch on the Davidson tweets with the binary target (hate/offensive vs neither), split
80/20 with scikit-learn's train_test_split(random_state=0). Examples/s counts training examples per second
of time spent in training steps (the lecture's: its batch loop including the DataLoader; ours: the engine's
own figure, which includes batch preparation and gradient probes but not evaluation). Runs alternate
(baseline, ours, baseline, ours, ...) and the median of each is reported; the last line is one JSON object.

Beside the speed it prints ours as GFLOP/s (the arithmetic a training example needs: for the sparse first
layer 2 x 2 x nnz x width, forward and weight gradient; for each dense layer 3 x 2 x in x out, forward,
weight gradient and input gradient; the optimizer not counted) and the machine's measured float32 matmul
peak (NumPy's BLAS, 1024 x 1024, on one thread and on all), so the figures say how much of the hardware a
run uses. `--device cuda` needs a CUDA GPU; without one it says so in one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from lecture_baseline import DEFAULT_CSV, load_davidson_like, run_baseline, split  # noqa: E402

from ffnlp_core.config import RunConfig  # noqa: E402
from ffnlp_core.data.dataset import dataset_from_split  # noqa: E402
from ffnlp_core.events import Failed, Finished  # noqa: E402
from ffnlp_core.train.loop import train  # noqa: E402


def run_ours(ds, batch_size: int, probe_every: int = 0, seed: int = 0, device: str = "cpu") -> dict:
    """One epoch with the engine's defaults (CPU fast path, gradient probes, ~10 evaluations)."""
    cfg = RunConfig()
    cfg.data.min_df = 2
    cfg.train.batch_size, cfg.train.seed, cfg.train.probe_every = batch_size, seed, probe_every
    cfg.train.device = device
    t0 = time.perf_counter()
    result = None
    for event in train(cfg, ds):
        if isinstance(event, (Finished, Failed)):
            result = event
    wall = time.perf_counter() - t0
    if not isinstance(result, Finished):
        raise RuntimeError(f"the engine run did not finish: {result}")
    s = result.summary
    return {
        "examples_per_second": s["examples_per_second"],
        "dev_accuracy": s["dev_accuracy"],
        "train_seconds": s["train_seconds"],
        "wall_seconds": wall,
        "path": s["path"],
    }


def train_flops_per_example(ds, hidden_sizes: list[int], n_classes: int) -> float:
    """FLOPs of one training example (forward and backward, see the module's docstring)."""
    nnz = ds.x_train.nnz / ds.x_train.shape[0]  # words per comment (with counts > 1 as one entry)
    widths = [*hidden_sizes, n_classes]
    dense = sum(3 * 2 * a * b for a, b in zip(widths, widths[1:], strict=False))
    return 2 * 2 * nnz * widths[0] + dense


def matmul_peak(threads: int | None, n: int = 1024, repeats: int = 5) -> float:
    """Best float32 n x n matmul rate of NumPy's BLAS, in GFLOP/s (threads None: BLAS's default)."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    out = np.empty_like(a)
    with threadpool_limits(threads, user_api="blas"):
        np.matmul(a, a, out=out)  # warm-up
        best = min(_timed(lambda: np.matmul(a, a, out=out)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", default=str(DEFAULT_CSV))
    parser.add_argument("--batch-sizes", default="32,128,512")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--device", default="cpu", help="cpu, or cuda: both the lecture's GPU loop and ours on cuda"
    )
    args = parser.parse_args(argv)
    if not Path(args.csv).exists():
        print(f"no CSV at {args.csv}; pass --csv", file=sys.stderr)
        return 2
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print(
                "--device cuda: no CUDA GPU on this machine (run it on one, or use --device cpu)",
                file=sys.stderr,
            )
            return 2
    texts, labels = load_davidson_like(args.csv, binary=True)
    train_texts, train_labels, dev_texts, dev_labels = split(texts, labels)
    cfg = RunConfig()
    cfg.data.min_df = 2
    ds = dataset_from_split(
        train_texts, train_labels, dev_texts, dev_labels, ["neither", "hate/offensive"], cfg.data
    )
    print(f"{args.csv}: {len(train_texts):,} train / {len(dev_texts):,} dev, vocabulary {ds.vocab_size:,}")
    flops = train_flops_per_example(ds, cfg.model.hidden_sizes, ds.n_classes)
    peak_1, peak_all = matmul_peak(1), matmul_peak(None)
    print(
        f"training: {flops / 1e6:.3f} MFLOP per example; float32 matmul peak here (NumPy BLAS, 1024x1024): "
        f"{peak_1:.0f} GFLOP/s on 1 thread, {peak_all:.0f} on all"
    )
    print(
        f"{'batch':>5} {'lecture ex/s':>13} {'ffnlp ex/s':>11} {'ratio':>6} {'lecture dev':>12} {'ffnlp dev':>10}"
        f" {'GFLOP/s':>8}"
    )
    report = {
        "csv": args.csv,
        "device": args.device,
        "vocab_size": ds.vocab_size,
        "repeats": args.repeats,
        "train_mflop_per_example": flops / 1e6,
        "matmul_peak_gflops": {"one_thread": peak_1, "all_threads": peak_all},
        "batches": {},
    }
    for bs in [int(b) for b in args.batch_sizes.split(",")]:
        base, ours = [], []
        run_ours(ds, bs, device=args.device)  # warm-up: kernels compiled / loaded, caches filled
        for _ in range(args.repeats):
            base.append(
                run_baseline(
                    train_texts, train_labels, dev_texts, dev_labels, batch_size=bs, device=args.device
                )
            )
            ours.append(run_ours(ds, bs, device=args.device))
        b_rate = statistics.median(r["examples_per_second"] for r in base)
        o_rate = statistics.median(r["examples_per_second"] for r in ours)
        b_acc = statistics.median(r["dev_accuracy"] for r in base)
        o_acc = statistics.median(r["dev_accuracy"] for r in ours)
        print(
            f"{bs:>5} {b_rate:>13,.0f} {o_rate:>11,.0f} {o_rate / b_rate:>5.1f}x {b_acc:>12.4f} {o_acc:>10.4f}"
            f" {o_rate * flops / 1e9:>8.1f}"
        )
        report["batches"][bs] = {
            "lecture_examples_per_second": b_rate,
            "ffnlp_examples_per_second": o_rate,
            "ratio": o_rate / b_rate,
            "lecture_dev_accuracy": b_acc,
            "ffnlp_dev_accuracy": o_acc,
            "accuracy_gap": o_acc - b_acc,
            "ffnlp_gflops": o_rate * flops / 1e9,
            "lecture_runs": [r["examples_per_second"] for r in base],
            "ffnlp_runs": [r["examples_per_second"] for r in ours],
        }
    ratios = [b["ratio"] for b in report["batches"].values()]
    gaps = [abs(b["accuracy_gap"]) for b in report["batches"].values()]
    print(
        f"slowest ratio {min(ratios):.1f}x (target 15x); largest dev accuracy gap {100 * max(gaps):.2f} points"
    )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
