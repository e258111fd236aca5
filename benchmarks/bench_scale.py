"""Scale: a 160,000-comment CSV (the size of the Jigsaw toxicity set), built by sampling and recombining the
Davidson tweets, loaded, vectorized and trained for one epoch, with the time and the peak memory of each phase.

    python benchmarks/bench_scale.py [--csv PATH] [--rows 160000] [--sizes 40000,80000,160000]

Each size runs in a fresh subprocess so that its peak RSS is its own. Times growing about linearly with the
rows (ratio ~2 per doubling) show that no step grows quadratically. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "davidson_labeled_tweets.csv"


def make_csv(source: Path, rows: int, path: Path, seed: int = 0) -> None:
    """New comments: the first half of one tweet + the second half of another; the label of the first."""
    frame = pd.read_csv(source)
    tweets, labels = frame["tweet"].astype(str).to_numpy(), frame["class"].to_numpy()
    rng = np.random.default_rng(seed)
    a, b = rng.integers(len(tweets), size=rows), rng.integers(len(tweets), size=rows)
    texts = [
        " ".join(
            tweets[i].split()[: max(1, len(tweets[i].split()) // 2)]
            + tweets[j].split()[len(tweets[j].split()) // 2 :]
        )
        for i, j in zip(a, b, strict=True)
    ]
    pd.DataFrame({"comment_text": texts, "toxic": (labels[a] != 2).astype(int)}).to_csv(path, index=False)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def measure(path: str) -> dict:
    """Runs inside the child process: load, vectorize, train one epoch; time and peak RSS after each."""
    sys.path.insert(0, str(ROOT))
    from ffnlp_core.config import RunConfig
    from ffnlp_core.data.dataset import build_dataset
    from ffnlp_core.data.labels import load_labeled
    from ffnlp_core.events import Finished
    from ffnlp_core.train.loop import train

    out = {"start_mb": peak_mb()}
    t = time.perf_counter()
    labeled = load_labeled(path, "comment_text", "toxic")
    out.update(load_s=time.perf_counter() - t, load_peak_mb=peak_mb(), rows=len(labeled.texts))
    cfg = RunConfig()
    cfg.data.min_df = 2
    cfg.train.device = "cpu"
    t = time.perf_counter()
    ds = build_dataset(labeled, cfg.data)
    out.update(vectorize_s=time.perf_counter() - t, vectorize_peak_mb=peak_mb(), vocab_size=ds.vocab_size)
    t = time.perf_counter()
    summary = next(e.summary for e in train(cfg, ds) if isinstance(e, Finished))
    out.update(
        train_wall_s=time.perf_counter() - t,
        train_s=summary["train_seconds"],
        examples_per_second=summary["examples_per_second"],
        dev_accuracy=summary["dev_accuracy"],
        train_peak_mb=peak_mb(),
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", default=str(DEFAULT_CSV))
    parser.add_argument("--sizes", default="40000,80000,160000")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child)))
        return 0
    if not Path(args.csv).exists():
        print(f"no CSV at {args.csv}; pass --csv", file=sys.stderr)
        return 2
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        print(
            f"{'rows':>8} {'file MB':>8} {'load s':>7} {'vectorize s':>12} {'train s':>8} {'ex/s':>9} "
            f"{'peak RSS MB':>12} {'vocab':>7} {'dev acc':>8}"
        )
        for rows in [int(s) for s in args.sizes.split(",")]:
            path = Path(tmp) / f"comments_{rows}.csv"
            make_csv(Path(args.csv), rows, path)
            proc = subprocess.run(
                [sys.executable, __file__, "--child", str(path)],
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                check=True,
            )
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            r["file_mb"] = path.stat().st_size / 1e6
            peak = max(r["load_peak_mb"], r["vectorize_peak_mb"], r["train_peak_mb"])
            r["peak_mb"] = peak
            results[rows] = r
            print(
                f"{rows:>8,} {r['file_mb']:>8.1f} {r['load_s']:>7.2f} {r['vectorize_s']:>12.2f} {r['train_wall_s']:>8.2f} "
                f"{r['examples_per_second']:>9,.0f} {peak:>12,.0f} {r['vocab_size']:>7,} {r['dev_accuracy']:>8.4f}"
            )
    sizes = sorted(results)
    growth = {
        f"{a}->{b}": {k: results[b][k] / results[a][k] for k in ("load_s", "vectorize_s", "train_wall_s")}
        for a, b in zip(sizes[:-1], sizes[1:], strict=True)
    }
    for step, g in growth.items():
        print(f"growth {step}: " + ", ".join(f"{k} x{v:.2f}" for k, v in g.items()))
    print(json.dumps({"results": results, "growth": growth}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
