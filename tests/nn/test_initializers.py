"""Tests for ffnlp_core.nn.initializers: each initialization draws the spread it promises (on the sparse first
layer too, whose weight is stored transposed), the model and the generated script apply it, and in a deep
sigmoid network the layers far from the output get a larger share of the gradient with Glorot & Bengio's
normalized initialization than with the standard one, as their 2010 paper describes."""

import math

import numpy as np
import pytest
import torch

from ffnlp_core.config import ConfigError, RunConfig
from ffnlp_core.inspect import codegen
from ffnlp_core.inspect import gradients as gr
from ffnlp_core.nn.initializers import INITIALIZERS
from ffnlp_core.nn.model import FeedForwardClassifier
from ffnlp_core.nn.shapes import layer_names
from ffnlp_core.runs.history import RunHistory


def spread(init: str, seed: int = 0) -> dict[str, tuple[float, float]]:
    torch.manual_seed(seed)
    model = FeedForwardClassifier(2000, [400, 400], "relu", 0.0, 2, init)
    return {
        n: (float(layer.weight.detach().std()), float(layer.bias.detach().abs().max()))
        for n, layer in zip(model.layer_names, model.linear_layers(), strict=True)
    }


def test_each_initialization_draws_the_spread_it_promises():
    default, xavier, kaiming = spread("default"), spread("xavier"), spread("kaiming")
    # default: uniform ±1/sqrt(fan_in) -> std 1/sqrt(3 fan_in); biases drawn too
    assert default["layer_0"][0] == pytest.approx(1 / math.sqrt(3 * 2000), rel=0.02)
    assert (
        default["layer_1"][0] == pytest.approx(1 / math.sqrt(3 * 400), rel=0.02) and default["layer_1"][1] > 0
    )
    # xavier: uniform ±sqrt(6/(in+out)) -> std sqrt(2/(in+out)); the sparse layer's fans are not swapped
    assert xavier["layer_0"][0] == pytest.approx(math.sqrt(2 / (2000 + 400)), rel=0.02)
    assert xavier["layer_1"][1] == 0.0
    # kaiming: std sqrt(2/fan_in), fan_in = the layer's inputs (2000 words for layer_0, not its 400 outputs)
    assert kaiming["layer_0"][0] == pytest.approx(math.sqrt(2 / 2000), rel=0.02)
    assert kaiming["output_layer"][0] == pytest.approx(math.sqrt(2 / 400), rel=0.05)


def test_the_config_refuses_an_unknown_initialization_and_old_configs_load_as_default():
    cfg = RunConfig()
    cfg.model.init = "orthogonal"
    with pytest.raises(ConfigError, match="initialization"):
        cfg.validate()
    assert (
        RunConfig.from_dict({"data": {}, "model": {"hidden_sizes": [8]}, "train": {}}).model.init == "default"
    )


@pytest.mark.parametrize("init", sorted(INITIALIZERS))
def test_the_generated_script_draws_the_same_initialization(init):
    cfg = RunConfig()
    cfg.model.init = init
    code = codegen.torch_script(cfg)
    if init == "default":
        assert "torch.nn.init" not in code
    else:
        assert INITIALIZERS[init].code in code and "torch.nn.init.zeros_(layer.bias)" in code
    compile(code, f"ffnlp_{init}.py", "exec")


def shares(interaction, init: str) -> np.ndarray:
    """Each layer's gradient RMS over one epoch, relative to the last hidden layer's (6 sigmoid layers)."""
    from ffnlp_core.train.loop import train
    from ffnlp_core.train.plan import build_model, prepare

    cfg = RunConfig()
    cfg.model.hidden_sizes, cfg.model.activation, cfg.model.init = [100] * 6, "sigmoid", init
    cfg.train.device, cfg.train.snapshot_rows = "cpu", 0
    cfg = prepare(cfg, interaction)
    h = RunHistory()
    for event in train(cfg, interaction, model=build_model(cfg, interaction)):
        h.add(event)
    means = gr.layer_means(h.gradient_table(), "grad_rms")
    return gr.ratios_to(means, gr.reference_index(layer_names(6)))


def test_normalized_initialization_lets_more_gradient_reach_the_deep_layers(interaction):
    """Measured here (2-core CPU): layer_2's share of layer_5's gradient ~0.003 with the default, ~0.011
    with xavier, ~0.036 with kaiming; each of layer_1 ... layer_4 gets more with xavier than with the default."""
    default, xavier = shares(interaction, "default"), shares(interaction, "xavier")
    assert np.all(xavier[1:5] > 1.5 * default[1:5]), (default, xavier)
    assert np.all(
        np.diff(default[1:6]) > 0
    )  # with the default the share shrinks layer by layer toward the input


def first_losses(interaction, init: str, fast: bool) -> np.ndarray:
    """The first 20 batch losses (plain SGD) of a 2-layer tanh net, on the CPU fast path or the plain autograd loop."""
    from ffnlp_core.events import Steps
    from ffnlp_core.train.loop import train
    from ffnlp_core.train.plan import build_model, prepare

    cfg = RunConfig()
    cfg.model.hidden_sizes, cfg.model.activation, cfg.model.init = [16, 16], "tanh", init
    cfg.train.device, cfg.train.snapshot_rows, cfg.train.fast = "cpu", 0, fast
    # plain SGD: the fast path's lazy (touched rows only) updates then equal the dense ones, Adam's would not
    cfg.train.optimizer, cfg.train.momentum, cfg.train.lr = "sgd", 0.0, 0.1
    cfg = prepare(cfg, interaction)
    events = train(cfg, interaction, model=build_model(cfg, interaction))
    losses = np.concatenate([e.loss for e in events if isinstance(e, Steps)])
    return losses[:20]


@pytest.mark.parametrize("init", ["xavier", "kaiming"])
def test_the_fast_path_trains_the_initialized_weights(interaction, init):
    """The fast path reads the torch model's own parameters, so it starts from the same drawn weights as
    the plain loop (same losses step by step) and not from PyTorch's default ones."""
    fast, plain = first_losses(interaction, init, True), first_losses(interaction, init, False)
    np.testing.assert_allclose(fast, plain, rtol=1e-4, atol=1e-5)
    assert abs(fast[0] - first_losses(interaction, "default", True)[0]) > 1e-3


def test_the_cli_flag_sets_the_initialization_and_refuses_unknown_ones(capsys):
    from ffnlp_core.cli import build_parser, config_from_args

    assert config_from_args(build_parser().parse_args(["train"])).model.init == "default"
    assert config_from_args(build_parser().parse_args(["train", "--init", "kaiming"])).model.init == "kaiming"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--init", "orthogonal"])
    assert "orthogonal" in capsys.readouterr().err
