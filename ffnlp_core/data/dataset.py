"""From labeled comments to a training-ready data set: seeded stratified split, then bag-of-words fitted
on the train split only. Everything the engine and the pages need about the data lives in `Dataset`."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from ..config import DataConfig
from . import samples
from .errors import DataError, shown
from .features import BagOfWords
from .labels import LabeledTexts, load_labeled, stratified_split


@dataclass
class Dataset:
    """Train and dev splits as sparse bag-of-words matrices, with the texts kept for display."""

    labeled: LabeledTexts
    vectorizer: BagOfWords
    train_idx: np.ndarray  # positions in `labeled`
    dev_idx: np.ndarray
    x_train: sp.csr_matrix  # (train rows, vocab) float32
    y_train: np.ndarray  # (train rows,) int64
    x_dev: sp.csr_matrix
    y_dev: np.ndarray
    train_flipped: np.ndarray | None = None  # (train rows,) bool: labels changed by the noise lab

    @property
    def class_names(self) -> list[str]:
        return self.labeled.class_names

    @property
    def n_classes(self) -> int:
        return len(self.labeled.class_names)

    @property
    def vocab_size(self) -> int:
        return self.x_train.shape[1]

    def dev_text(self, i: int) -> str:
        """The comment behind dev row i."""
        return self.labeled.texts[int(self.dev_idx[i])]

    def train_text(self, i: int) -> str:
        return self.labeled.texts[int(self.train_idx[i])]

    def summary(self) -> dict:
        """Plain figures for the Data page, the CLI and run records."""
        nnz = self.x_train.nnz
        cells = max(1, self.x_train.shape[0] * self.x_train.shape[1])
        return {
            "train_examples": int(self.x_train.shape[0]),
            "dev_examples": int(self.x_dev.shape[0]),
            "vocab_size": int(self.vocab_size),
            "classes": list(self.class_names),
            "sparsity": 1.0 - nnz / cells,
            "words_per_comment": nnz / max(1, self.x_train.shape[0]),
            "class_counts": np.bincount(self.labeled.labels, minlength=self.n_classes).tolist(),
            "dropped": dict(self.labeled.dropped),
        }


def load_source(cfg: DataConfig, upload: bytes | None = None, name: str = "the file") -> LabeledTexts:
    """Comments and labels from an upload (bytes), a built-in set ("builtin:<name>") or a CSV path."""
    if upload is not None:
        return load_labeled(upload, cfg.text_column, cfg.label_column, name=name)
    if cfg.source.startswith("builtin:"):
        key = cfg.source.split(":", 1)[1]
        if key not in samples.SAMPLES:
            raise DataError(
                f"unknown built-in data set '{shown(key)}'; choose one of {list(samples.SAMPLES)}"
            )
        return load_labeled(
            samples.sample_csv_bytes(key), cfg.text_column, cfg.label_column, name=f"built-in {key}"
        )
    return load_labeled(cfg.source, cfg.text_column, cfg.label_column, name=cfg.source)


def build_dataset(labeled: LabeledTexts, cfg: DataConfig) -> Dataset:
    """Split (stratified, seeded), apply the noise/imbalance lab to the train split, vectorize (train only)."""
    cfg.validate()
    labeled = named(labeled, cfg.class_names)
    train_idx, dev_idx = stratified_split(labeled.labels, cfg.dev_fraction, cfg.split_seed)
    train_idx = subsample_class(train_idx, labeled, cfg.subsample_class, cfg.subsample_keep, cfg.noise_seed)
    y_train, flipped = flip_labels(
        labeled.labels[train_idx], len(labeled.class_names), cfg.label_noise, cfg.noise_seed
    )
    texts = labeled.texts
    vec = BagOfWords(cfg.vectorizer, cfg.ngram_max, cfg.min_df, cfg.max_features, cfg.decode_entities)
    vec.fit([texts[i] for i in train_idx])
    x_train = vec.transform([texts[i] for i in train_idx])
    x_dev = vec.transform([texts[i] for i in dev_idx])
    return Dataset(
        labeled=labeled,
        vectorizer=vec,
        train_idx=train_idx,
        dev_idx=dev_idx,
        x_train=x_train,
        y_train=y_train,
        x_dev=x_dev,
        y_dev=labeled.labels[dev_idx].astype(np.int64),
        train_flipped=flipped,
    )


def named(labeled: LabeledTexts, names: dict[str, str]) -> LabeledTexts:
    """The labeled texts with their classes renamed (label value -> name; others keep their value)."""
    if not names:
        return labeled
    renamed = [names.get(c, c).strip() for c in labeled.class_names]
    if len(set(renamed)) < len(renamed):
        same = ", ".join(f"'{shown(n)}'" for n in sorted({n for n in renamed if renamed.count(n) > 1})[:5])
        raise DataError(f"two classes would have the same name ({same}); give each class its own name")
    return replace(labeled, class_names=renamed)


def flip_labels(
    labels: np.ndarray, n_classes: int, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exactly round(fraction * n) labels, chosen at random (seeded), each moved to another class at random."""
    labels = labels.astype(np.int64).copy()
    flipped = np.zeros(len(labels), bool)
    k = int(round(fraction * len(labels)))
    if k == 0 or n_classes < 2:
        return labels, flipped
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(labels), size=k, replace=False)
    shift = rng.integers(1, n_classes, size=k)  # 1..C-1: never the same class
    labels[rows] = (labels[rows] + shift) % n_classes
    flipped[rows] = True
    return labels, flipped


def subsample_class(
    train_idx: np.ndarray, labeled: LabeledTexts, name: str | None, keep: float, seed: int
) -> np.ndarray:
    """Keep only `keep` of the train rows of class `name` (at least 1), to make the data imbalanced."""
    if name is None or keep >= 1.0:
        return train_idx
    if name not in labeled.class_names:
        classes = ", ".join(f"'{shown(c)}'" for c in labeled.class_names)
        raise DataError(f"no class named '{shown(name)}' to subsample; the classes are {classes}")
    c = labeled.class_names.index(name)
    of_class = train_idx[labeled.labels[train_idx] == c]
    n_keep = max(1, int(round(keep * len(of_class))))
    kept = np.random.default_rng(seed).choice(of_class, size=n_keep, replace=False)
    return np.sort(np.concatenate([train_idx[labeled.labels[train_idx] != c], kept]))


def top_words(ds: Dataset, n: int = 20) -> list[tuple[str, float]]:
    """The n most frequent vocabulary entries in the training split (by summed feature value)."""
    totals = np.asarray(ds.x_train.sum(axis=0)).ravel()
    order = np.argsort(-totals, kind="stable")[:n]
    vocab = ds.vectorizer.vocabulary_
    return [(vocab[i], float(totals[i])) for i in order]


def examples_per_class(ds: Dataset, k: int = 5, seed: int = 0) -> dict[str, list[str]]:
    """Up to k comments of each class, chosen at random (seeded) from the whole data set."""
    rng = np.random.default_rng(seed)
    labels = ds.labeled.labels
    out = {}
    for c, name in enumerate(ds.class_names):
        rows = np.flatnonzero(labels == c)
        pick = rng.choice(rows, size=min(k, len(rows)), replace=False) if len(rows) else []
        out[name] = [ds.labeled.texts[int(i)] for i in pick]
    return out


def dataset_from_split(
    train_texts: list[str],
    train_labels: np.ndarray,
    dev_texts: list[str],
    dev_labels: np.ndarray,
    class_names: list[str],
    cfg: DataConfig,
) -> Dataset:
    """A Dataset from a split made elsewhere (benchmarks compare against other code on the same split)."""
    texts = list(train_texts) + list(dev_texts)
    labels = np.concatenate([train_labels, dev_labels]).astype(np.int64)
    n_train = len(train_texts)
    labeled = LabeledTexts(
        texts=texts,
        labels=labels,
        class_names=list(class_names),
        row_numbers=np.arange(len(texts), dtype=np.int64),
        text_column="text",
        label_column="label",
        dropped={},
        notes=[],
    )
    vec = BagOfWords(cfg.vectorizer, cfg.ngram_max, cfg.min_df, cfg.max_features, cfg.decode_entities).fit(
        train_texts
    )
    return Dataset(
        labeled=labeled,
        vectorizer=vec,
        train_idx=np.arange(n_train, dtype=np.int64),
        dev_idx=np.arange(n_train, len(texts), dtype=np.int64),
        x_train=vec.transform(train_texts),
        y_train=np.asarray(train_labels, np.int64),
        x_dev=vec.transform(dev_texts),
        y_dev=np.asarray(dev_labels, np.int64),
    )
