"""What gradient probes cost: the same run with a probe at every step against probes effectively off.

Same data, config and process for every variant; the variants alternate within each repeat so that drift
in machine load hits them alike. The figure is examples/s over training steps only (the engine's
`train_seconds`: no loading, vectorizing or dev evaluation). On a shared machine the best of the repeats
is the steadiest estimate of each variant's own speed, so the ratio is best against best; the median of
the per-repeat ratios is printed beside it. One BLAS/torch thread by default, as the app's jobs run.
Target: probes on keep >= 80% of the examples/s of probes off.

    python benchmarks/bench_probes.py            # Davidson tweets, 6 sigmoid layers of 100, 1 epoch
    python benchmarks/bench_probes.py --hidden 100,100,100 --activation none --repeats 5

Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ffnlp_core.config import RunConfig
from ffnlp_core.data.dataset import build_dataset, load_source
from ffnlp_core.events import Failed, Finished
from ffnlp_core.train.loop import train
from ffnlp_core.train.plan import build_model, schedule

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "davidson_labeled_tweets.csv"
OFF = 10**9  # only step 1 is probed (the engine always probes the first step)
TARGET = 0.80


def config(args: argparse.Namespace, probe_every: int) -> RunConfig:
    cfg = RunConfig()
    d, t = cfg.data, cfg.train
    d.source, d.text_column, d.label_column, d.min_df = str(args.csv), args.text_column, args.label_column, 2
    cfg.model.hidden_sizes = [int(h) for h in args.hidden.split(",") if h.strip()]
    cfg.model.activation = args.activation
    t.epochs, t.device, t.probe_every, t.fast = args.epochs, "cpu", probe_every, not args.plain
    return cfg.validate()


def examples_per_second(cfg: RunConfig, ds) -> float:
    last = None
    for event in train(cfg, ds, model=build_model(cfg, ds)):
        if isinstance(event, Finished | Failed):
            last = event
    if not isinstance(last, Finished):
        raise RuntimeError(f"the run did not finish: {getattr(last, 'reason', last)}")
    return last.summary["examples_per_second"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--csv", default=DEFAULT_CSV, type=Path)
    p.add_argument("--text-column", default="tweet")
    p.add_argument("--label-column", default="class")
    p.add_argument("--hidden", default="100,100,100,100,100,100")
    p.add_argument("--activation", default="sigmoid")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--repeats", type=int, default=11)
    p.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (the app's jobs use 1)")
    p.add_argument("--plain", action="store_true", help="the plain autograd path instead of the fast path")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        return run(args)


def run(args: argparse.Namespace) -> int:

    base = config(args, 1)
    ds = build_dataset(load_source(base.data), base.data)
    auto_every = schedule(config(args, 0), ds.x_train.shape[0])[3]
    # probe_every=0 (auto) probes every step below 2,000 steps: then it is the same setting, measured once
    auto = "every step" if auto_every == 1 else f"auto (every {auto_every})"
    variants = {"every step": 1, auto: 0, "off": OFF} if auto_every > 1 else {"every step": 1, "off": OFF}
    examples_per_second(config(args, OFF), ds)  # warm-up: kernels compiled, caches filled
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(args.repeats):
        names = list(variants) if r % 2 == 0 else list(variants)[::-1]  # alternate the order
        for name in names:
            rates[name].append(examples_per_second(config(args, variants[name]), ds))
    best = {name: max(v) for name, v in rates.items()}
    paired = {
        name: statistics.median(a / b for a, b in zip(v, rates["off"], strict=True))
        for name, v in rates.items()
    }
    off = best["off"]
    print(
        f"{ds.x_train.shape[0]:,} train rows, hidden {args.hidden}, {args.activation}, "
        f"{args.epochs} epoch(s), {args.repeats} repeats, path {'autograd' if args.plain else 'fast-cpu'}"
    )
    for name in variants:
        runs = ", ".join(f"{v:,.0f}" for v in rates[name])
        print(
            f"  probes {name:<18} best {best[name]:>8,.0f} examples/s  ratio {best[name] / off:.3f}"
            f"  (median of paired ratios {paired[name]:.3f}; runs {runs})"
        )
    on_ratio = best["every step"] / off
    verdict = "meets" if on_ratio >= TARGET else "misses"
    print(f"auto (probe_every=0) probes every {auto_every} step(s) in this run")
    print(
        f"probes at every step keep {on_ratio:.1%} of the speed without them: {verdict} the {TARGET:.0%} target"
    )
    result = {
        "benchmark": "probes",
        "train_rows": int(ds.x_train.shape[0]),
        "hidden": args.hidden,
        "activation": args.activation,
        "path": "autograd" if args.plain else "fast-cpu",
        "repeats": args.repeats,
        "threads": args.threads,
        "best_examples_per_second": {
            "every_step": best["every step"],
            "auto": best[auto],
            "off": off,
        },
        "auto_probe_every": auto_every,
        "ratio_every_step": on_ratio,
        "ratio_auto": best[auto] / off,
        "median_paired_ratio_every_step": paired["every step"],
        "median_paired_ratio_auto": paired[auto],
        "target": TARGET,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
