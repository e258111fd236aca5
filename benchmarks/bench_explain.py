"""What explaining one comment costs on Try it: the occlusion before (one vectorized copy of the comment per
distinct word: cost words x length) against now (`explain.occlusion_probs`: linear in the length), on
comments of 1 KB, 10 KB and 100 KB.

The comments are real tweets joined (Davidson, ../shared/data, when present; else the built-in comments
with numbered words mixed in, so that a long comment has many distinct words as a real paste does), the
network is 3 hidden layers of 100 on that data's vocabulary (untrained: the cost does not depend on the
weights). Try it refuses comments over MAX_EXPLAIN_CHARS; the cap is lifted here to measure the scaling.
Each size runs in a fresh process for its peak RSS (ru_maxrss) above the process after loading; the
parent also checks that old and new give the same effects. One torch thread, as the app's server uses.

    python benchmarks/bench_explain.py                  # 1 KB, 10 KB, 100 KB; old style up to 100 KB
    python benchmarks/bench_explain.py --old-max 10000  # skip the slow old-style 100 KB case

Prints a table, the scaling exponent of the new times (1: linear, 2: quadratic) and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ffnlp_core.data.features import BagOfWords
from ffnlp_core.inspect import explain as ex
from ffnlp_core.nn.model import FeedForwardClassifier

DAVIDSON = Path(__file__).resolve().parents[2] / "shared" / "data" / "davidson_labeled_tweets.csv"
SIZES = (1_000, 10_000, 100_000)


def corpus() -> tuple[str, list[str]]:
    """(name, texts): Davidson's tweets when present, else the built-in comments."""
    if DAVIDSON.exists():
        import pandas as pd

        return "davidson", pd.read_csv(DAVIDSON)["tweet"].astype(str).tolist()
    from ffnlp_core.config import DataConfig
    from ffnlp_core.data.dataset import load_source

    texts = load_source(DataConfig()).texts
    return "builtin", [f"{t} w{i}" for i, t in enumerate(texts)]


def setup() -> tuple[str, ex.Predictor, list[str]]:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    name, texts = corpus()
    vec = BagOfWords().fit(texts)
    model = FeedForwardClassifier(vec.vocab_size, [100, 100, 100], "relu", n_classes=3)
    ex.MAX_EXPLAIN_CHARS = 10**7  # measured beyond Try it's cap
    return name, ex.predictor(model, vec, ["a", "b", "c"]), texts


def comment(texts: list[str], size: int) -> str:
    out, n = [], 0
    for t in texts:
        out.append(t)
        n += len(t) + 1
        if n >= size:
            break
    return " ".join(out)[:size]


def old_explain(p: ex.Predictor, text: str) -> np.ndarray:
    """The effects as explain computed them before: every occluded comment vectorized and predicted."""
    _, tokens = ex.split_pieces(p.vectorizer, text)
    words = list(dict.fromkeys(tokens))
    x = p.vectorizer.transform(ex.occlusion_texts(p.vectorizer, tokens, words))  # (1 + words, vocab)
    probs = ex.predict_rows(p, x)
    same = [(x[i + 1] != x[0]).nnz == 0 for i in range(len(words))]
    effects = probs[:1] - probs[1:]
    effects[[i for i, s in enumerate(same) if s]] = 0.0
    return effects


def measure_one(variant: str, size: int) -> dict:
    """In a fresh process: seconds and peak RSS above the loaded process for one explanation."""
    _, p, texts = setup()
    text = comment(texts, size)
    ex.explain(p, "warm up the vectorizer and torch")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    old_explain(p, text) if variant == "old" else ex.explain(p, text)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    words = len(dict.fromkeys(p.vectorizer.tokenize(text)))
    return {
        "variant": variant,
        "chars": len(text),
        "words": words,
        "seconds": seconds,
        "peak_mb": peak - before,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old-max", type=int, default=100_000, help="largest comment the old style explains")
    ap.add_argument("--child", nargs=2, metavar=("VARIANT", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure_one(args.child[0], int(args.child[1]))))
        return
    name, p, texts = setup()
    for size in SIZES[:2]:  # the two agree (where the old style is quick enough to run twice)
        text = comment(texts, size)
        diff = float(np.abs(old_explain(p, text) - ex.explain(p, text).effects).max())
        print(f"{size:>7,} chars: largest |old - new| effect difference {diff:.1e}")
    rows = []
    for size in SIZES:
        for variant in ("new", "old"):
            if variant == "old" and size > args.old_max:
                continue
            out = subprocess.run(
                [sys.executable, __file__, "--child", variant, str(size)], capture_output=True, text=True
            )
            if out.returncode != 0:
                sys.exit(out.stderr)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"\ncomments from {name}; network {p.vectorizer.vocab_size:,} words -> 100 x 3 -> 3 classes")
    print(f"{'chars':>8} {'words':>6} {'variant':>7} {'seconds':>9} {'peak MB':>8}")
    for r in rows:
        print(
            f"{r['chars']:>8,} {r['words']:>6,} {r['variant']:>7} {r['seconds']:>9.3f} {r['peak_mb']:>8.1f}"
        )
    new = {r["chars"]: r["seconds"] for r in rows if r["variant"] == "new"}
    exponent = math.log(new[SIZES[2]] / new[SIZES[1]]) / math.log(SIZES[2] / SIZES[1])
    print(f"new: time grows as length^{exponent:.2f} from 10 KB to 100 KB (1 = linear, 2 = quadratic)")
    print(json.dumps({"data": name, "rows": rows, "new_exponent": exponent}))


if __name__ == "__main__":
    main()
