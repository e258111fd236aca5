"""Run configuration as data: dataclasses with the lecture's defaults, JSON in and out, validated.

The registries here (activations, optimizers, vectorizers, devices, engines) are the single list of choices:
the UI lists them, the CLI accepts them, the config stores their keys.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .nn import activations

ACTIVATIONS: dict[str, str] = {k: a.description for k, a in activations.ACTIVATIONS.items()}  # the registry's
OPTIMIZERS: dict[str, str] = {
    "adam": "Adam (the lecture's choice)",
    "adamw": "Adam with decoupled weight decay",
    "sgd": "stochastic gradient descent with momentum",
}
VECTORIZERS: dict[str, str] = {
    "counts": "how often each word occurs",
    "binary": "1 if the word occurs, else 0",
    "tfidf": "counts weighted by how rare the word is (tf-idf)",
}
DEVICES = ("auto", "cpu", "cuda", "mps")
ENGINES: dict[str, str] = {
    "manual": "our own training loop",
    "lightning": "PyTorch Lightning's Trainer",
}
MAX_HIDDEN_LAYERS = 8
MAX_SNAPSHOT_ROWS = 5000


class ConfigError(ValueError):
    """A setting that cannot work, with what to change."""


@dataclass
class DataConfig:
    """Where the comments come from and how they become bag-of-words vectors."""

    source: str = "builtin:interaction"  # "builtin:<name>" or a CSV path
    text_column: str | None = None  # None: inferred
    label_column: str | None = None  # None: inferred
    dev_fraction: float = 0.2
    split_seed: int = 0
    vectorizer: str = "counts"
    ngram_max: int = 1  # 1: words; 2: words and word pairs
    min_df: int = 1
    max_features: int | None = None
    label_noise: float = 0.0  # fraction of TRAIN labels flipped to another class (the noise lab)
    noise_seed: int = 0
    subsample_class: str | None = None  # keep only a fraction of this class's TRAIN rows (imbalance lab)
    subsample_keep: float = 1.0

    def validate(self) -> None:
        _check(
            0.0 < self.dev_fraction < 1.0, f"dev fraction must be between 0 and 1, got {self.dev_fraction}"
        )
        _check(
            self.vectorizer in VECTORIZERS,
            f"unknown vectorizer {self.vectorizer!r}; use one of {list(VECTORIZERS)}",
        )
        _check(
            self.ngram_max in (1, 2),
            f"n-grams must be 1 (words) or 2 (words and pairs), got {self.ngram_max}",
        )
        _check(self.min_df >= 1, f"min_df must be at least 1, got {self.min_df}")
        _check(
            self.max_features is None or self.max_features >= 1,
            f"max vocabulary must be at least 1 word, got {self.max_features}",
        )
        _check(0.0 <= self.label_noise < 1.0, f"label noise must be in [0, 1), got {self.label_noise}")
        _check(
            0.0 < self.subsample_keep <= 1.0,
            f"subsample fraction must be in (0, 1], got {self.subsample_keep}",
        )


@dataclass
class ModelConfig:
    """The network's shape: hidden widths (input to output), activation and dropout."""

    hidden_sizes: list[int] = field(default_factory=lambda: [100, 100, 100])
    activation: str = "none"
    dropout: float = 0.0

    def validate(self) -> None:
        _check(
            len(self.hidden_sizes) <= MAX_HIDDEN_LAYERS,
            f"at most {MAX_HIDDEN_LAYERS} hidden layers, got {len(self.hidden_sizes)}",
        )
        _check(
            all(isinstance(h, int) and 1 <= h <= 4096 for h in self.hidden_sizes),
            f"each hidden width must be a whole number from 1 to 4096, got {self.hidden_sizes}",
        )
        _check(
            self.activation in ACTIVATIONS,
            f"unknown activation {self.activation!r}; use one of {list(ACTIVATIONS)}",
        )
        _check(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")


@dataclass
class TrainConfig:
    """How to train: optimizer, schedule, evaluation, seed, device and engine."""

    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # SGD only
    batch_size: int = 32
    epochs: int = 1
    eval_every: int = 0  # steps between dev evaluations; 0: about 10 per epoch. Always at each epoch end.
    seed: int = 0
    device: str = "auto"
    engine: str = "manual"
    fast: bool = True  # CPU fast path (hand-derived backprop, lazy row updates); False: plain autograd loop
    skip_zero_grad: bool = False  # the lecture's bug, for the lessons page: gradients accumulate
    probe_every: int = (
        0  # steps between gradient probes; 0: auto (every step, or fewer so a run keeps <= 2000)
    )
    snapshot_rows: int = 2000  # dev rows whose hidden states are captured at each evaluation (0: none)
    # Lightning engine: stop after this many evaluations without a better dev loss (0: off)
    early_stopping_patience: int = 0
    hard_examples: int = 0  # at each evaluation, report the k highest-loss training comments (0: off)
    # Lightning engine, several devices: processes (1: one device), strategy ("auto", "ddp"), precision
    devices: int = 1
    strategy: str = "auto"
    precision: str | None = None  # None: full float32 ("32-true"); e.g. "16-mixed", "bf16-mixed"

    def validate(self) -> None:
        _check(
            self.optimizer in OPTIMIZERS,
            f"unknown optimizer {self.optimizer!r}; use one of {list(OPTIMIZERS)}",
        )
        _check(0.0 < self.lr <= 10.0, f"learning rate must be in (0, 10], got {self.lr}; try 0.001")
        _check(self.weight_decay >= 0.0, f"weight decay must be 0 or more, got {self.weight_decay}")
        _check(0.0 <= self.momentum < 1.0, f"momentum must be in [0, 1), got {self.momentum}")
        _check(self.batch_size >= 1, f"batch size must be at least 1, got {self.batch_size}")
        _check(self.epochs >= 1, f"train for at least 1 epoch, got {self.epochs}")
        _check(self.eval_every >= 0, f"eval interval must be 0 (auto) or more, got {self.eval_every}")
        _check(0 <= self.seed < 2**32, f"seed must be a whole number from 0 to 2^32-1, got {self.seed}")
        _check(self.probe_every >= 0, f"probe interval must be 0 (auto) or more, got {self.probe_every}")
        _check(self.device in DEVICES, f"unknown device {self.device!r}; use one of {list(DEVICES)}")
        _check(self.engine in ENGINES, f"unknown engine {self.engine!r}; use one of {list(ENGINES)}")
        _check(
            0 <= self.snapshot_rows <= MAX_SNAPSHOT_ROWS,
            f"snapshot rows must be in [0, {MAX_SNAPSHOT_ROWS}], got {self.snapshot_rows}",
        )
        _check(self.early_stopping_patience >= 0, "early-stopping patience must be 0 (off) or more")
        _check(
            0 <= self.hard_examples <= 1000, f"hard examples must be in [0, 1000], got {self.hard_examples}"
        )
        _check(self.devices >= 1, f"devices must be at least 1, got {self.devices}")
        _check(
            self.devices == 1
            and self.strategy == "auto"
            and self.precision is None
            or self.engine == "lightning",
            "several devices, a strategy or a precision need the Lightning engine (--engine lightning)",
        )


@dataclass
class RunConfig:
    """Everything that defines a run; saved as JSON beside every run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> RunConfig:
        self.data.validate()
        self.model.validate()
        self.train.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Build from a dict; unknown keys are refused (a typo must not pass silently)."""
        parts = {}
        for name, kind in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig)):
            given = dict(d.get(name) or {})
            known = {f.name for f in dataclasses.fields(kind)}
            unknown = sorted(set(given) - known)
            _check(not unknown, f"unknown {name} setting(s) {unknown}; known: {sorted(known)}")
            parts[name] = kind(**given)
        extra = sorted(set(d) - {"data", "model", "train"})
        _check(not extra, f"unknown config section(s) {extra}; use data, model, train")
        return cls(**parts)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls.from_dict(json.loads(text))


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)
