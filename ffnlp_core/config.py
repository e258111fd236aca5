"""Run configuration as data: dataclasses with the lecture's defaults, JSON in and out, validated.

The registries here (activations, optimizers, vectorizers, devices, engines) are the single list of choices:
the UI lists them, the CLI accepts them, the config stores their keys.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .nn import activations, initializers

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


MAX_HIDDEN_WIDTH = 4096
MAX_SEED = 2**32 - 1
MAX_NAMED_CLASSES = 50  # the most classes a file may have (data/columns.py MAX_CLASSES)
MAX_CLASS_NAME = 60  # characters in a class name


def setting(
    label: str,
    help: str | None = None,
    *,
    min: float | None = None,
    max: float | None = None,
    step: float | None = None,
    choices=None,
    what: str | None = None,
    hint: str = "",
    optional: bool = False,
    fmt: str | None = None,
) -> dict[str, Any]:
    """One field's declaration, read by validate() and by the pages' widget factory: label and help for
    the widget, the accepted range (both ends included) or registry of choices, and how an error names it.
    `optional`: None is accepted too (e.g. no vocabulary cap)."""
    return {
        "label": label,
        "help": help,
        "min": min,
        "max": max,
        "step": step,
        "choices": choices,
        "what": what or label.lower(),
        "hint": hint,
        "optional": optional,
        "format": fmt,
    }


def declared(section) -> dict[str, dict[str, Any]]:
    """The declared fields of a config section (class or instance): {field name: setting(...)}."""
    return {f.name: dict(f.metadata) for f in dataclasses.fields(section) if f.metadata}


def _check_declared(section) -> None:
    for name, s in declared(section).items():
        value = getattr(section, name)
        if value is None and s["optional"]:
            continue
        if s["choices"] is not None:
            _check(value in s["choices"], f"unknown {s['what']} {value!r}; use one of {list(s['choices'])}")
            continue
        lo, hi = s["min"], s["max"]
        if lo is None and hi is None:  # a switch
            _check(isinstance(value, bool), f"{s['what']} must be true or false, got {value!r}")
            continue
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok and (lo is None or value >= lo) and (hi is None or value <= hi)
        span = f"from {lo} to {hi}" if hi is not None else f"{lo} or more"
        hint = f"; {s['hint']}" if s["hint"] else ""
        _check(ok, f"{s['what']} must be {span}, got {value!r}{hint}")


@dataclass
class DataConfig:
    """Where the comments come from and how they become bag-of-words vectors."""

    source: str = "builtin:interaction"  # "builtin:<name>" or a CSV path
    text_column: str | None = None  # None: inferred
    label_column: str | None = None  # None: inferred
    dev_fraction: float = field(default=0.2, metadata=setting("Dev fraction", min=0.01, max=0.99, step=0.05))
    split_seed: int = field(default=0, metadata=setting("Split seed", min=0, max=MAX_SEED, step=1))
    vectorizer: str = field(default="counts", metadata=setting("Vectorizer", choices=VECTORIZERS))
    ngram_max: int = field(  # 1: words; 2: words and word pairs
        default=1, metadata=setting("N-grams", min=1, max=2, step=1, what="n-grams (1: words, 2: and pairs)")
    )
    min_df: int = field(
        default=1,
        metadata=setting(
            "min_df",
            "Keep words that occur in at least this many training comments.",
            min=1,
            max=1_000_000,
            step=1,
        ),
    )
    max_features: int | None = field(
        default=None,
        metadata=setting(
            "Max vocabulary", min=1, max=1_000_000, step=1000, what="max vocabulary", optional=True
        ),
    )
    decode_entities: bool = field(
        default=True,
        metadata=setting(
            "Decode HTML entities",
            "Read '&amp;' as '&' and '&#128514;' as the emoji before counting words (scraped tweets are full "
            "of them); off: entity numbers become words.",
        ),
    )
    label_noise: float = field(  # fraction of TRAIN labels flipped to another class (the noise lab)
        default=0.0, metadata=setting("Label noise", min=0.0, max=0.95, step=0.05)
    )
    noise_seed: int = field(default=0, metadata=setting("Noise seed", min=0, max=MAX_SEED, step=1))
    subsample_class: str | None = None  # keep only a fraction of this class's TRAIN rows (imbalance lab)
    # The names the pages, charts and downloads give the classes: label value in the file -> name
    # (e.g. {"0": "hate speech"}); labels not listed keep their own value as name.
    class_names: dict[str, str] = field(default_factory=dict)
    subsample_keep: float = field(
        default=1.0,
        metadata=setting("Keep fraction", min=0.01, max=1.0, step=0.05, what="subsample fraction"),
    )

    def validate(self) -> None:
        _check_declared(self)
        names = self.class_names
        if not isinstance(names, dict) or len(names) > MAX_NAMED_CLASSES:
            raise ConfigError(f"class names must map at most {MAX_NAMED_CLASSES} labels to names")
        for label, name in names.items():
            if not isinstance(label, str) or not isinstance(name, str) or not name.strip():
                raise ConfigError(f"the name of class {label!r} must be a non-empty text")
            if len(name) > MAX_CLASS_NAME:
                raise ConfigError(f"the name of class {label!r} is longer than {MAX_CLASS_NAME} characters")


@dataclass
class ModelConfig:
    """The network's shape: hidden widths (input to output), activation, dropout and weight initialization."""

    hidden_sizes: list[int] = field(default_factory=lambda: [100, 100, 100])
    activation: str = field(default="none", metadata=setting("Activation", choices=ACTIVATIONS))
    dropout: float = field(default=0.0, metadata=setting("Dropout", min=0.0, max=0.99, step=0.05))
    init: str = field(
        default="default",
        metadata=setting(
            "Weight initialization",
            "How the starting weights are drawn: it decides how much gradient reaches the layers far from "
            "the output (Glorot & Bengio 2010).",
            choices=initializers.DESCRIPTIONS,
            what="initialization",
        ),
    )

    def validate(self) -> None:
        _check(
            len(self.hidden_sizes) <= MAX_HIDDEN_LAYERS,
            f"at most {MAX_HIDDEN_LAYERS} hidden layers, got {len(self.hidden_sizes)}",
        )
        _check(
            all(isinstance(h, int) and 1 <= h <= MAX_HIDDEN_WIDTH for h in self.hidden_sizes),
            f"each hidden width must be a whole number from 1 to {MAX_HIDDEN_WIDTH}, got {self.hidden_sizes}",
        )
        _check_declared(self)


@dataclass
class TrainConfig:
    """How to train: optimizer, schedule, evaluation, seed, device and engine."""

    optimizer: str = field(default="adam", metadata=setting("Optimizer", choices=OPTIMIZERS))
    lr: float = field(
        default=1e-3,
        metadata=setting("Learning rate", min=1e-6, max=10.0, step=1e-4, hint="try 0.001", fmt="%.5f"),
    )
    weight_decay: float = field(
        default=0.0, metadata=setting("Weight decay", min=0.0, max=1.0, step=1e-4, fmt="%.5f")
    )
    momentum: float = field(  # SGD only
        default=0.9, metadata=setting("Momentum", "SGD only.", min=0.0, max=0.999, step=0.01)
    )
    batch_size: int = field(default=32, metadata=setting("Batch size", min=1, max=100_000, step=1))
    epochs: int = field(default=1, metadata=setting("Epochs", min=1, max=1000, step=1))
    # Spread the run over at least this many seconds, for watching it live in class (0: full speed). The
    # waiting is not training time: examples/s stays the real speed. A paced run holds its worker longer.
    pace_seconds: float = field(
        default=0.0,
        metadata=setting(
            "Pace (s)",
            "Spread the run over at least this many seconds so the class can watch the curves move "
            "(0 = full speed). The examples/s shown stay the real training speed.",
            min=0.0,
            max=600.0,
            step=5.0,
            what="pace",
        ),
    )
    # steps between dev evaluations; 0: about 10 per epoch. Always at each epoch end.
    eval_every: int = field(
        default=0,
        metadata=setting(
            "Evaluate on dev every N steps (0 = 10× per epoch)",
            min=0,
            max=1_000_000,
            step=50,
            what="eval interval",
        ),
    )
    seed: int = field(
        default=0,
        metadata=setting(
            "Seed", "Same seed, same data, same settings: same numbers.", min=0, max=MAX_SEED, step=1
        ),
    )
    device: str = field(default="auto", metadata=setting("Device", choices=DEVICES))
    engine: str = field(default="manual", metadata=setting("Engine", choices=ENGINES))
    fast: bool = True  # CPU fast path (hand-derived backprop, lazy row updates); False: plain autograd loop
    skip_zero_grad: bool = False  # the lecture's bug, for the lessons page: gradients accumulate
    # steps between gradient probes; 0: auto (every step, or fewer so a run keeps <= 2000)
    probe_every: int = field(
        default=0,
        metadata=setting(
            "Gradient probe every N steps (0 = auto)", min=0, max=100_000, step=1, what="probe interval"
        ),
    )
    # dev rows whose hidden states are captured at each evaluation (0: none)
    snapshot_rows: int = field(
        default=2000,
        metadata=setting(
            "Dev rows captured for representations",
            min=0,
            max=MAX_SNAPSHOT_ROWS,
            step=500,
            what="snapshot rows",
        ),
    )
    # Lightning engine: stop after this many evaluations without a better dev loss (0: off)
    early_stopping_patience: int = field(
        default=0,
        metadata=setting(
            "Early-stopping patience (0 = off)", min=0, max=1000, step=1, what="early-stopping patience"
        ),
    )
    hard_examples: int = field(  # at each evaluation, report the k highest-loss training comments (0: off)
        default=0, metadata=setting("Hard examples (0 = off)", min=0, max=1000, step=1, what="hard examples")
    )
    # Lightning engine, several devices: processes (1: one device), strategy ("auto", "ddp"), precision
    devices: int = field(default=1, metadata=setting("Devices", min=1, max=64, step=1))
    strategy: str = "auto"
    precision: str | None = None  # None: full float32 ("32-true"); e.g. "16-mixed", "bf16-mixed"

    def validate(self) -> None:
        _check_declared(self)
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
