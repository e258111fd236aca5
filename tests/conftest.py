"""Shared fixtures: the built-in interaction data set and one short trained run, each built once per session."""

import dataclasses
import os
import threading
from types import SimpleNamespace

import pytest
import torch

from ffnlp_core.config import RunConfig
from ffnlp_core.data.dataset import Dataset, build_dataset, load_source
from ffnlp_core.train.loop import train
from ffnlp_core.train.plan import build_model, prepare

# Page tests never need UMAP: no UMAP process compiling numba in the background while tests run.
# (The browser-test server turns it back on: tests/browser/conftest.py.)
os.environ["FFNLP_UMAP"] = "0"

# The networks under test are tiny: with several threads each torch op is mostly thread hand-off, and on a
# busy 2-core machine (other processes running) that made evaluations 20-50x slower. One thread is steady.
torch.set_num_threads(1)

# The shared run: 2 epochs of 3,200 rows at batch 48 (67 steps an epoch, the last batch short),
# a dev evaluation every 20 steps and at each epoch end, hidden states of 300 dev rows at each evaluation.
SHARED_RUN = dict(
    hidden_sizes=[32, 16, 8],
    activation="relu",
    lr=0.01,
    batch_size=48,
    epochs=2,
    eval_every=20,
    snapshot_rows=300,
    seed=1,
)


def configure(**settings) -> RunConfig:
    """A RunConfig with the lecture's defaults, on the CPU, and `settings` put on the section that has each
    field (field names are unique across the sections)."""
    cfg = RunConfig()
    cfg.train.device = "cpu"  # tests run on the CPU, even on a machine with a GPU
    sections = [cfg.data, cfg.model, cfg.train]
    for name, value in settings.items():
        owners = [s for s in sections if name in {f.name for f in dataclasses.fields(s)}]
        assert len(owners) == 1, f"no single config section has a field {name!r}"
        setattr(owners[0], name, value)
    return cfg.validate()


def collect(cfg: RunConfig, ds: Dataset, model=None, stop: threading.Event | None = None) -> list:
    """Every event of one run, submitted as the app and the CLI submit one: checked once by prepare()."""
    return list(train(prepare(cfg, ds), ds, model=model, stop=stop))


@pytest.fixture(scope="session")
def interaction() -> Dataset:
    """The built-in interaction set (4,000 rows), split 3,200 / 800 and vectorized with the defaults."""
    cfg = RunConfig().data
    return build_dataset(load_source(cfg), cfg)


@pytest.fixture(scope="session")
def make_config():
    return configure


@pytest.fixture(scope="session")
def run_events():
    return collect


@pytest.fixture(scope="session")
def shared_run(interaction) -> SimpleNamespace:
    """The run of SHARED_RUN on the interaction set: its config, model and events."""
    cfg = configure(**SHARED_RUN)
    model = build_model(cfg, interaction)
    events = collect(cfg, interaction, model=model)
    return SimpleNamespace(cfg=cfg, ds=interaction, model=model, events=events)
