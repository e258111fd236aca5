"""Planning a run before it starts: the checks against the data (`prepare`), the model it builds, the
schedule of steps, evaluations, gradient probes and hidden-state snapshots, and the fast or plain path.

Importing this module is cheap (no torch, no scikit-learn): the web server plans runs it never trains."""

from __future__ import annotations

import copy
import math
import time
import uuid
from typing import TYPE_CHECKING

from ..config import ConfigError, RunConfig

if TYPE_CHECKING:  # annotations only
    import torch

    from ..data.dataset import Dataset
    from ..nn.model import FeedForwardClassifier

FLUSH_SECONDS = 0.25  # how often step blocks are yielded
MAX_PROBES = 2000  # gradient probes per run (auto interval), keeps memory bounded
EVALS_PER_EPOCH = 10  # with eval_every = 0
SNAPSHOTS_PER_RUN = 24  # hidden-state snapshots sent per run, spread over it (each is ~1 MB for 2,000 rows)


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def build_model(cfg: RunConfig, ds: Dataset) -> FeedForwardClassifier:
    import torch

    from ..nn.model import FeedForwardClassifier

    torch.manual_seed(cfg.train.seed)  # same seed => same initial weights
    return FeedForwardClassifier.from_config(cfg.model, ds.vocab_size, ds.n_classes)


def prepare(cfg: RunConfig, ds: Dataset) -> RunConfig:
    """The one check of a run's settings, at submission: a validated copy adjusted to this data set.
    ConfigError says what to change; the engines trust what this returns."""
    return check_fits(copy.deepcopy(cfg).validate(), ds)


def check_fits(cfg: RunConfig, ds: Dataset) -> RunConfig:
    """Refuse settings that cannot work with this data (ConfigError says what to change); returns a copy
    with what can be adjusted adjusted (more snapshot rows than the dev split has: the whole dev split)."""
    n = ds.x_train.shape[0]
    if cfg.train.batch_size > n:
        raise ConfigError(
            f"batch size {cfg.train.batch_size:,} is larger than the {n:,} training comments; use at most {n:,}"
        )
    fitted = copy.deepcopy(cfg)
    fitted.train.snapshot_rows = min(cfg.train.snapshot_rows, ds.x_dev.shape[0])
    return fitted


def choose_path(cfg: RunConfig, device: torch.device) -> str:
    """The fast path needs the CPU and a correct loop; the lecture's bug runs the plain way."""
    return (
        "fast-cpu" if cfg.train.fast and device.type == "cpu" and not cfg.train.skip_zero_grad else "autograd"
    )


def schedule(cfg: RunConfig, n_train: int) -> tuple[int, int, int, int]:
    """(steps per epoch, total steps, eval every, probe every)."""
    t = cfg.train
    per_epoch = math.ceil(n_train / t.batch_size)
    total = per_epoch * t.epochs
    eval_every = t.eval_every or max(1, per_epoch // EVALS_PER_EPOCH)
    probe_every = t.probe_every or max(1, math.ceil(total / MAX_PROBES))
    return per_epoch, total, eval_every, probe_every


def snapshot_every(cfg: RunConfig, per_epoch: int, eval_every: int) -> int:
    """Capture hidden states at every k-th evaluation (and the last), so a run sends about SNAPSHOTS_PER_RUN
    of them however long it is: a long run would otherwise stream megabytes a second to the pages."""
    expected = cfg.train.epochs * (per_epoch // eval_every + 1)
    return max(1, math.ceil(expected / SNAPSHOTS_PER_RUN))
