"""Shared pieces of the run tests: the probe comments a saved or uploaded model must predict exactly as
the original does, `manager(**kwargs)`: job managers (threads by default) on a temp runs folder, shut
down after the test, and `ds`: the built-in data set (run configs: run_configs.py)."""

import numpy as np
import pytest
import torch

from ffnlp_core.config import RunConfig
from ffnlp_core.data.dataset import build_dataset, load_source
from ffnlp_core.nn.inputs import to_torch_csr
from ffnlp_core.runs.manager import JobManager
from ffnlp_core.runs.store import RunStore

PROBE_TEXTS = [
    "that guy jerk at lunch",
    "my brother jerk chicken in the comments",
    "wow the waiter chicken tbh",
    "the landlord idiot on the bus",
    "honestly the referee at the party",
    "never seen words zebra",
]


@pytest.fixture
def predict():
    """predict(model, vectorizer) -> class probabilities (rows, classes) of the probe comments."""

    @torch.no_grad()
    def run(model, vectorizer, texts=PROBE_TEXTS) -> np.ndarray:
        model.eval()
        logits, _ = model(to_torch_csr(vectorizer.transform(texts)))
        return torch.softmax(logits, dim=1).numpy()

    return run


@pytest.fixture
def manager(tmp_path):
    managers = []

    def make(**kwargs):
        kwargs.setdefault("mode", "thread")
        m = JobManager(RunStore(tmp_path / "runs"), **kwargs)
        managers.append(m)
        return m

    yield make
    for m in managers:
        m.shutdown()


@pytest.fixture(scope="session")
def ds():
    cfg = RunConfig()
    return build_dataset(load_source(cfg.data), cfg.data)
