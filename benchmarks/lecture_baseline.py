"""The lecture's way of training a feedforward text classifier, kept as a baseline to measure against.

This file holds a faithful, deliberately unoptimised reproduction of how the lecture trains its
bag-of-words network: a CountVectorizer, every row turned into a dense float tensor, a Dataset that hands
out one ``{"X": row, "y": label}`` dict at a time, a DataLoader that stacks those dicts into batches, a
plain ``torch.nn.Module`` with ``layer_0`` … ``output_layer`` and the hand-written
``zero_grad`` / forward / ``backward`` / ``step`` loop that copies every loss and prediction out to
numpy. Next to it sits scikit-learn's ``MLPClassifier`` on the sparse matrix, the other off-the-shelf
point of comparison.

It is slow on purpose. The benchmarks import ``run_baseline`` and time it in the same process as our
engine, so any "faster" we claim is measured against what a student following the lecture would
actually run. Do not speed it up: no sparse inputs, no custom collate, no batching by hand.

Memory: the dense train matrix is n_train x vocab float32 — for the Davidson tweets with min_df=2 that is
19,826 x 10,752 x 4 bytes, about 850 MB, plus about 215 MB for the dense dev rows; one run peaks near
2.5 GB of process memory.

Public libraries only (torch, numpy, pandas, scikit-learn); nothing here imports ``ffnlp_core``.
Run ``python benchmarks/lecture_baseline.py --help`` for the command line.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "davidson_labeled_tweets.csv"
HIDDEN_SIZE = 100  # the lecture's width for layer_0 … layer_2
NEITHER_CLASS = 2  # Davidson's "neither" label; binary target is label != 2


def load_davidson_like(
    csv_path: str | Path, text_column: str = "tweet", label_column: str = "class", binary: bool = True
) -> tuple[list[str], np.ndarray]:
    """Read texts and integer labels; binary=True maps label != 2 (hate/offensive) to 1, "neither" to 0."""
    frame = pd.read_csv(csv_path)
    missing = [column for column in (text_column, label_column) if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{csv_path}: no column(s) {missing}; the file has {list(frame.columns)}. "
            "Pass text_column= and label_column= naming the text and the integer label."
        )
    texts = frame[text_column].fillna("").astype(str).tolist()
    labels = frame[label_column].to_numpy()
    if binary:
        labels = labels != NEITHER_CLASS
    return texts, labels.astype(np.int64)


def split(texts, labels, dev_fraction: float = 0.2, random_state: int = 0):
    """Plain (not stratified) train/dev split; returns (train_texts, train_labels, dev_texts, dev_labels)."""
    train_texts, dev_texts, train_labels, dev_labels = train_test_split(
        list(texts), np.asarray(labels), test_size=dev_fraction, random_state=random_state
    )
    return train_texts, train_labels, dev_texts, dev_labels


class BagOfWordsDataset(torch.utils.data.Dataset):
    """One dense bag-of-words row and its label per item, as a dict the model's forward(**batch) takes."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor):
        self.X = X  # (n, vocab) float32, dense
        self.y = y  # (n,) int64

    def __len__(self) -> int:
        return self.X.shape[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"X": self.X[index], "y": self.y[index]}


class FeedForwardClassifier(torch.nn.Module):
    """The lecture's network: three Linear(…, 100) layers with no activation, then the output layer."""

    def __init__(self, vocab_size: int, num_classes: int = 2):
        super().__init__()
        self.layer_0 = torch.nn.Linear(vocab_size, HIDDEN_SIZE)
        self.layer_1 = torch.nn.Linear(HIDDEN_SIZE, HIDDEN_SIZE)
        self.layer_2 = torch.nn.Linear(HIDDEN_SIZE, HIDDEN_SIZE)
        self.output_layer = torch.nn.Linear(HIDDEN_SIZE, num_classes)
        self.softmax = torch.nn.Softmax(dim=1)

    def forward(self, X: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        h0 = self.layer_0(X)  # (B, 100)
        h1 = self.layer_1(h0)  # (B, 100)
        h2 = self.layer_2(h1)  # (B, 100)
        py_logits = self.output_layer(h2)  # (B, num_classes)
        py_probs = self.softmax(py_logits)  # (B, num_classes)
        py = torch.argmax(py_probs, dim=1)  # (B,)
        loss = torch.nn.functional.cross_entropy(py_logits, y, reduction="mean")
        return {"py_logits": py_logits, "py_probs": py_probs, "py": py, "loss": loss}


def _dense_dataset(counts, labels) -> BagOfWordsDataset:
    """Densify a sparse count matrix the lecture's way: every row held as float32, zeros included."""
    # astype before todense keeps the peak at one float32 copy instead of an int64 one first.
    X = torch.from_numpy(np.asarray(counts.astype(np.float32).todense()))  # (n, vocab)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)  # (n,)
    return BagOfWordsDataset(X, y)


def _to(batch: dict, device) -> dict:
    """The lecture's to_gpu / to_cpu helpers: move every tensor of a batch dict."""
    return {k: v.to(device) for k, v in batch.items()}


def _train_one_epoch(model, optimizer, train_dataloader, device="cpu") -> tuple[list, list, list]:
    """The lecture's loop; returns per-step losses, labels and predictions as numpy, as it collects them.
    On a GPU it moves each batch there and the outputs back, as the lecture's GPU version does."""
    train_losses, train_ys, train_pys = [], [], []
    for train_batch in train_dataloader:
        optimizer.zero_grad()
        out = model(**_to(train_batch, device))
        train_output = _to(out, "cpu") if str(device) != "cpu" else out
        train_loss = train_output["loss"]
        train_losses.append(train_loss.detach().numpy())
        train_ys.append(train_batch["y"].detach().numpy())
        train_pys.append(train_output["py"].detach().numpy())
        out["loss"].backward()
        optimizer.step()
    return train_losses, train_ys, train_pys


def _evaluate(model, dev_dataloader, device="cpu") -> float:
    """Dev accuracy with sklearn's accuracy_score over batches run under no_grad."""
    dev_ys, dev_pys = [], []
    for dev_batch in dev_dataloader:
        with torch.no_grad():
            dev_output = _to(model(**_to(dev_batch, device)), "cpu")
        dev_ys.append(dev_batch["y"].detach().numpy())
        dev_pys.append(dev_output["py"].detach().numpy())
    return float(accuracy_score(np.concatenate(dev_ys), np.concatenate(dev_pys)))


def run_baseline(
    train_texts,
    train_labels,
    dev_texts,
    dev_labels,
    *,
    batch_size: int = 32,
    epochs: int = 1,
    lr: float = 1e-3,
    min_df: int = 2,
    seed: int = 0,
    threads: int | None = None,
    device: str = "cpu",
) -> dict:
    """Train the lecture's way and report speed over the batch loop only (DataLoader work included).
    device="cuda" is the lecture's GPU loop: the model on the GPU, each batch moved there and back."""
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        vectorizer = CountVectorizer(min_df=min_df)
        train_counts = vectorizer.fit_transform(train_texts)  # (n_train, vocab) sparse
        dev_counts = vectorizer.transform(dev_texts)
        vocab_size = len(vectorizer.vocabulary_)
        num_classes = int(max(np.max(train_labels), np.max(dev_labels))) + 1
        train_dataset = _dense_dataset(train_counts, train_labels)
        dev_dataset = _dense_dataset(dev_counts, dev_labels)

        torch.manual_seed(seed)
        model = FeedForwardClassifier(vocab_size=vocab_size, num_classes=num_classes).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)  # made after moving the model, as taught
        generator = torch.Generator().manual_seed(seed)
        train_dataloader = torch.utils.data.DataLoader(
            train_dataset, batch_size=batch_size, shuffle=True, generator=generator
        )
        dev_dataloader = torch.utils.data.DataLoader(dev_dataset, batch_size=batch_size, shuffle=False)

        train_seconds = 0.0
        steps = 0
        for _epoch in range(epochs):
            start = time.perf_counter()
            train_losses, train_ys, train_pys = _train_one_epoch(model, optimizer, train_dataloader, device)
            train_seconds += time.perf_counter() - start
            steps += len(train_losses)
        dev_accuracy = _evaluate(model, dev_dataloader, device)
    finally:
        torch.set_num_threads(previous_threads)

    n_seen = len(train_dataset) * epochs
    return {
        "examples_per_second": n_seen / train_seconds,
        "train_seconds": train_seconds,
        "dev_accuracy": dev_accuracy,
        "train_accuracy": float(accuracy_score(np.concatenate(train_ys), np.concatenate(train_pys))),
        "train_loss": float(np.mean(train_losses)),
        "vocab_size": vocab_size,
        "steps": steps,
    }


def run_mlp_classifier(
    train_texts, train_labels, dev_texts, dev_labels, *, min_df: int = 2, seed: int = 0
) -> dict:
    """One epoch of scikit-learn's MLPClassifier on the sparse counts; speed is measured over fit()."""
    vectorizer = CountVectorizer(min_df=min_df)
    train_counts = vectorizer.fit_transform(train_texts)  # (n_train, vocab) sparse, left sparse
    dev_counts = vectorizer.transform(dev_texts)
    batch_size = 32
    classifier = MLPClassifier(
        hidden_layer_sizes=(HIDDEN_SIZE, HIDDEN_SIZE, HIDDEN_SIZE),
        activation="identity",
        solver="adam",
        learning_rate_init=1e-3,
        batch_size=batch_size,
        max_iter=1,
        shuffle=True,
        random_state=seed,
    )
    with warnings.catch_warnings():
        # max_iter=1 is the point (one epoch, like the loop above), so "did not converge" is expected.
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        classifier.fit(train_counts, np.asarray(train_labels))
        train_seconds = time.perf_counter() - start

    n_train = train_counts.shape[0]
    return {
        "examples_per_second": n_train * classifier.n_iter_ / train_seconds,
        "train_seconds": train_seconds,
        "dev_accuracy": float(accuracy_score(dev_labels, classifier.predict(dev_counts))),
        "train_accuracy": float(accuracy_score(train_labels, classifier.predict(train_counts))),
        "train_loss": float(classifier.loss_),  # includes sklearn's L2 penalty (alpha=1e-4)
        "vocab_size": len(vectorizer.vocabulary_),
        "steps": -(-n_train // batch_size) * classifier.n_iter_,
    }


def _print_table(rows: list[tuple[str, dict]]) -> None:
    """A small fixed-width table: one row per way of training."""
    print(
        f"{'way of training':<34} {'examples/s':>11} {'dev acc':>8} {'train acc':>9} {'vocab':>7} {'steps':>6}"
    )
    for name, result in rows:
        print(
            f"{name:<34} {result['examples_per_second']:>11,.0f} {result['dev_accuracy']:>8.3f} "
            f"{result['train_accuracy']:>9.3f} {result['vocab_size']:>7,} {result['steps']:>6,}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Time the lecture's training loop (and optionally MLPClassifier)."
    )
    parser.add_argument(
        "--csv", type=Path, default=DEFAULT_CSV, help="Davidson-like CSV with tweet and class"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--three-class", action="store_true", help="keep the 3 classes instead of class != 2")
    parser.add_argument("--mlp", action="store_true", help="also time scikit-learn's MLPClassifier")
    parser.add_argument("--min-df", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads for the run (default: torch's)"
    )
    args = parser.parse_args(argv)

    if not args.csv.is_file():
        parser.error(f"no CSV at {args.csv}; pass --csv PATH to the Davidson tweets file")
    texts, labels = load_davidson_like(args.csv, binary=not args.three_class)
    data = split(texts, labels)

    lecture = run_baseline(
        *data,
        batch_size=args.batch_size,
        epochs=args.epochs,
        min_df=args.min_df,
        seed=args.seed,
        threads=args.threads,
    )
    rows = [(f"lecture loop (batch {args.batch_size})", lecture)]
    report = {
        "csv": str(args.csv),
        "target": "3-class" if args.three_class else "binary",
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "min_df": args.min_df,
        "seed": args.seed,
        "torch_threads": args.threads or torch.get_num_threads(),
        "lecture_loop": lecture,
    }
    if args.mlp:
        report["mlp_classifier"] = run_mlp_classifier(*data, min_df=args.min_df, seed=args.seed)
        rows.append(("MLPClassifier (batch 32, sparse)", report["mlp_classifier"]))

    _print_table(rows)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
