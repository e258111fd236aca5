"""The run configs the job-manager tests submit (imported by the test files of this folder)."""

from ffnlp_core.config import RunConfig


def config(epochs: int = 1, **train) -> RunConfig:
    """The default run on the CPU, with `epochs` and the given TrainConfig fields."""
    cfg = RunConfig()
    cfg.train.epochs, cfg.train.device = epochs, "cpu"
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg
