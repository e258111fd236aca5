"""Gradient flow: the engine's Gradients events against a hooks-free torch.autograd computation on the same
batches, the CLI's grad_rms against those events, the analysis in ffnlp_core.inspect.gradients on hand-made
arrays, and the Gradients page (AppTest) on a stored run and on the activation comparison."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from ffnlp_core import cli
from ffnlp_core.events import Finished, Gradients
from ffnlp_core.inspect import gradients as gr
from ffnlp_core.nn.activations import ACTIVATIONS
from ffnlp_core.plots import gradients as grplots
from ffnlp_core.train.loop import train
from ffnlp_core.train.plan import build_model

PAGE = Path(__file__).resolve().parents[2] / "pages" / "gradients.py"
ACTS = {"none": lambda z: z, "relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}


# --- the engine's events against torch.autograd ---------------------------------------------------
def first_gradient_rows(cfg, ds, model, n_rows: int) -> list[dict]:
    """The first n_rows probed steps of a run, one dict of per-layer arrays each."""
    rows = []
    events = train(cfg, ds, model=model)
    for ev in events:
        if isinstance(ev, Gradients):
            fields = ("step", *gr.STAT_LABELS, "dead_fraction", "saturated_fraction")
            rows += [{f: getattr(ev, f)[i] for f in fields} for i in range(len(ev.step))]
        if len(rows) >= n_rows:
            events.close()
            break
    return rows[:n_rows]


def reference_steps(cfg, ds, model, n_steps: int) -> list[dict]:
    """The same statistics computed by hand: dense forward, torch.autograd.grad, torch.optim.Adam.
    The engine shuffles with default_rng(seed).permutation (snapshot_rows=0: nothing else draws first)."""
    order = np.random.default_rng(cfg.train.seed).permutation(ds.x_train.shape[0])
    bs = cfg.train.batch_size
    layers = model.linear_layers()
    params = [p for layer in layers for p in (layer.weight, layer.bias)]
    opt = torch.optim.Adam(params, lr=cfg.train.lr)
    act = ACTS[model.activation_name]
    out = []
    for k in range(n_steps):
        rows = order[k * bs : (k + 1) * bs]
        x = torch.from_numpy(ds.x_train[rows].toarray())  # (B, vocab)
        y = torch.from_numpy(ds.y_train[rows])
        zs, hs = [], []
        h = x
        for i, layer in enumerate(layers):
            w = layer.weight if i == 0 else layer.weight.T  # layer_0 stores (in, out)
            z = h @ w + layer.bias
            zs.append(z)
            if i < len(layers) - 1:
                h = act(z)
                hs.append(h)
        loss = F.cross_entropy(zs[-1], y)
        weights = [layer.weight for layer in layers]
        grads = torch.autograd.grad(loss, params + zs)
        g_w, g_z = grads[0 : 2 * len(layers) : 2], grads[2 * len(layers) :]
        before = [w.detach().clone() for w in weights]
        for p, g in zip(params, grads[: len(params)], strict=True):
            p.grad = g
        opt.step()
        sq = np.array([float((g.double() ** 2).sum()) for g in g_w])
        numel = np.array([w.numel() for w in weights], np.float64)
        upd = [
            float((w.detach() - b).double().norm() / w.detach().double().norm())
            for w, b in zip(weights, before, strict=True)
        ]
        zs_np = [z.detach().numpy() for z in zs[:-1]]
        hs_np = [h.detach().numpy() for h in hs]
        name = model.activation_name
        dead = [float((z <= 0).all(axis=0).mean()) if name == "relu" else np.nan for z in zs_np]
        limit = {"sigmoid": 0.05 * 0.25, "tanh": 0.05}.get(name)
        slope = (lambda h: h * (1 - h)) if name == "sigmoid" else (lambda h: 1 - h * h)
        sat = [float((slope(h) < limit).mean()) if limit else np.nan for h in hs_np]
        out.append(
            {
                "grad_rms": np.sqrt(sq / numel),
                "grad_norm": np.sqrt(sq),
                "signal": np.array([float((g * len(rows)).norm(dim=1).mean()) for g in g_z]),
                "update_ratio": np.array(upd),
                "dead_fraction": np.array(dead),
                "saturated_fraction": np.array(sat),
            }
        )
    return out


@pytest.mark.parametrize(
    ("activation", "fast"),
    [("sigmoid", True), ("relu", True), ("tanh", True), ("none", True), ("sigmoid", False)],
)
def test_gradients_events_equal_autograd_on_the_same_batches(interaction, make_config, activation, fast):
    cfg = make_config(
        hidden_sizes=[7, 6, 5],
        activation=activation,
        batch_size=24,
        lr=0.01,
        probe_every=1,
        snapshot_rows=0,
        fast=fast,
        seed=3,
    )
    model = build_model(cfg, interaction)
    ref_model = copy.deepcopy(model)  # the initial weights, before the engine trains them
    got = first_gradient_rows(cfg, interaction, model, 2)
    want = reference_steps(cfg, interaction, ref_model, 2)
    assert [int(r["step"]) for r in got] == [1, 2]
    for field in gr.STAT_LABELS:
        np.testing.assert_allclose(got[0][field], want[0][field], rtol=2e-4, err_msg=field)
    for field in ("dead_fraction", "saturated_fraction"):
        np.testing.assert_allclose(got[0][field], want[0][field], atol=1e-9, err_msg=field)
    # step 2 reads the next rows of the shuffled order, with the weights after step 1
    for field in ("grad_rms", "grad_norm", "signal"):
        np.testing.assert_allclose(got[1][field], want[1][field], rtol=5e-4, err_msg=f"step 2 {field}")
    if not fast:  # the plain path's Adam is torch's: the second update matches too
        np.testing.assert_allclose(got[1]["update_ratio"], want[1]["update_ratio"], rtol=5e-4)
    # the statistics actually vary by layer (a constant would not pass for a reason)
    assert np.ptp(np.log(got[0]["grad_rms"])) > 0.1


def test_cli_json_grad_rms_is_the_mean_of_the_engine_probes(capsys):
    argv = [
        "train",
        "--hidden",
        "6,5",
        "--activation",
        "sigmoid",
        "--batch-size",
        "128",
        "--probe-every",
        "1",
    ]
    assert cli.main([*argv, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    cfg = cli.config_from_args(cli.build_parser().parse_args(argv))
    from ffnlp_core.data.dataset import build_dataset, load_source

    ds = build_dataset(load_source(cfg.data), cfg.data)
    events = list(train(cfg, ds, model=build_model(cfg, ds)))
    rms = np.concatenate([e.grad_rms for e in events if isinstance(e, Gradients)])
    assert rms.shape == (summary["steps"], 3)  # probed at every step
    np.testing.assert_allclose(summary["grad_rms"], rms.mean(axis=0), rtol=1e-5)
    assert [e for e in events if isinstance(e, Finished)][0].summary["grad_rms"] == pytest.approx(
        summary["grad_rms"], rel=1e-5
    )


# --- analysis on hand-made arrays -----------------------------------------------------------------
LAYERS = ["layer_0", "layer_1", "layer_2", "output_layer"]


def test_layer_means_ignore_nan_and_report_missing_layers():
    table = {"grad_rms": np.array([[1.0, 2.0, np.nan, 4.0], [3.0, 4.0, np.nan, 8.0]])}
    means = gr.layer_means(table, "grad_rms")
    np.testing.assert_allclose(means[[0, 1, 3]], [2.0, 3.0, 6.0])
    assert np.isnan(means[2])
    assert gr.layer_means({"grad_rms": np.zeros((0, 4))}, "grad_rms").shape == (4,)


def test_ratios_are_relative_to_the_last_hidden_layer():
    assert gr.reference_index(LAYERS) == 2
    assert gr.reference_index(["output_layer"]) == 0
    np.testing.assert_allclose(gr.ratios_to(np.array([1.0, 3.0, 4.0, 40.0]), 2), [0.25, 0.75, 1.0, 10.0])
    assert np.isnan(gr.ratios_to(np.array([1.0, 0.0]), 1)).all()


def test_chain_rule_bound_is_a_quarter_per_sigmoid_layer():
    np.testing.assert_allclose(
        gr.chain_rule_bound(6, ACTIVATIONS["sigmoid"].max_slope),
        [0.25**5, 0.25**4, 0.25**3, 0.25**2, 0.25, 1.0],
    )
    assert gr.chain_rule_bound(1, 0.25).tolist() == [1.0]


@pytest.mark.parametrize(
    ("r", "text"),
    [
        (1 / 12, "1/12"),
        (0.0738, "1/14"),
        (0.7, "1/1.4"),
        (2.31, "2.3×"),
        (49.3, "49×"),
        (0.0, "no measurable share"),
    ],
)
def test_fmt_ratio(r, text):
    assert gr.fmt_ratio(r) == text


def test_verdict_is_computed_from_the_numbers():
    means = np.array([2.0, 5.0, 24.0, 90.0])
    assert gr.verdict("sigmoid", LAYERS, means, "grad_rms", 620) == (
        "With sigmoid, layer_0 gets 1/12 of the gradient of layer_2 (weight gradient, RMS per weight, "
        "mean over 620 probes)."
    )
    more = gr.verdict("relu", LAYERS, np.array([60.0, 5.0, 24.0, 90.0]), "grad_norm", 7)
    assert more.startswith("With relu, layer_0 gets 2.5× the gradient of layer_2") and "Frobenius" in more
    assert "no activation" in gr.verdict("none", LAYERS, means, "grad_rms", 1)
    assert "no deeper layer" in gr.verdict("relu", ["layer_0", "output_layer"], np.ones(2), "grad_rms", 3)


def test_comparison_verdict_names_where_it_fades_most_and_least():
    results = {
        "none": np.array([0.8, 1.0, 1.0, 5.0]),
        "sigmoid": np.array([0.05, 0.2, 1.0, 9.0]),
        "relu": np.array([1.5, 1.2, 1.0, 4.0]),
    }
    text = gr.comparison_verdict(results, LAYERS, "grad_rms", "After training")
    assert text.startswith(
        "After training, layer_0's gradient is 1/1.2 with no activation, 1/20 with sigmoid and 1.5× with relu"
    )
    assert text.endswith("it fades most with sigmoid and least with relu, 30× apart.")
    same = gr.comparison_verdict({"a": np.ones(4), "b": np.ones(4)}, LAYERS, "signal")
    assert same.endswith("about the same for every activation.")


def test_compare_configs_share_everything_but_the_activation(make_config):
    base = make_config(hidden_sizes=[64, 32], activation="relu", epochs=5, snapshot_rows=500, lr=0.02)
    cfgs = gr.compare_configs(base, depth=6)
    assert list(cfgs) == list(gr.COMPARE_ACTIVATIONS)
    for act, cfg in cfgs.items():
        assert cfg.model.activation == act and cfg.model.hidden_sizes == [64] * 6
        assert cfg.train.epochs == 1 and cfg.train.snapshot_rows == 0 and cfg.train.lr == 0.02
        assert cfg.data == base.data
    assert base.model.hidden_sizes == [64, 32]  # the edited config is not touched


def fake_table(n: int = 50) -> dict:
    step = np.arange(1, n + 1)
    decay = np.array([0.01, 0.1, 1.0, 10.0])
    return {
        "step": step,
        "grad_rms": np.outer(1 + 0.1 * np.sin(step), decay),
        "grad_norm": np.outer(np.ones(n), decay * 3),
        "signal": np.outer(np.ones(n), [0.02, 0.1, 0.5, 1.0]),
        "update_ratio": np.full((n, 4), 1e-3),
        "dead_fraction": np.tile([0.0, 0.25, 0.5], (n, 1)),
        "saturated_fraction": np.full((n, 3), np.nan),
    }


def test_figures_carry_the_numbers():
    t = fake_table()
    lines = grplots.lines_figure(t, LAYERS, "grad_rms")
    assert [tr.name for tr in lines.data] == LAYERS and lines.layout.yaxis.type == "log"
    heat = grplots.heatmap_figure(t, LAYERS, "grad_rms")
    z = np.asarray(heat.data[0].z)
    assert z.shape == (4, 50)
    np.testing.assert_allclose(z[:, 0], np.log10(t["grad_rms"][0]), rtol=1e-9)
    long = {k: np.repeat(v, 20, axis=0) for k, v in t.items()}  # 1,000 probes -> averaged columns
    assert np.asarray(grplots.heatmap_figure(long, LAYERS, "grad_rms").data[0].z).shape == (
        4,
        grplots.HEATMAP_COLUMNS,
    )
    means = gr.layer_means(t, "grad_norm")
    bars = grplots.mean_bars_figure(means, LAYERS, "grad_norm")
    assert list(bars.data[0].text) == ["×0.01", "×0.1", "reference", "×10"]
    decay = grplots.decay_figure(gr.layer_means(t, "signal"), means, LAYERS, "sigmoid", "grad_norm")
    np.testing.assert_allclose(decay.data[0].y, [0.04, 0.2, 1.0])
    np.testing.assert_allclose(decay.data[2].y, [1 / 16, 1 / 4, 1.0])
    assert len(grplots.decay_figure(means, means, LAYERS, "relu", "grad_rms").data) == 2  # no bound
    relu = grplots.activation_figure(t, LAYERS, "relu")
    np.testing.assert_allclose(relu.data[2].y, 0.5)
    assert "not defined" in grplots.activation_figure(t, LAYERS, "none").layout.annotations[0].text
    comp = grplots.comparison_figure({"sigmoid": means, "relu": means * 2}, LAYERS, "grad_norm")
    assert [tr.name for tr in comp.data] == ["sigmoid", "relu", "sigmoid bound 0.25/layer"]
    multi = grplots.small_multiples_figure({"sigmoid": t, "relu": t}, LAYERS, "grad_rms")
    assert len(multi.data) == 8


def test_the_explanation_covers_each_kind_of_activation_in_words():
    sig = gr.explanation("sigmoid")
    assert "at most 0.25" in sig and "far from the output get less and less" in sig
    assert "at most 1" in gr.explanation("tanh") and "saturate" in gr.explanation("tanh")
    relu = gr.explanation("relu", "kaiming", 0.47)
    assert "does not saturate" in relu and "stay level or even grow" in relu and "Kaiming/He" in relu
    assert "47% of the units are dead" in relu
    assert "Dead units" in gr.explanation("relu")  # no measurement: said in general
    none = gr.explanation("none", "default")
    assert "linear" in none and "Glorot & Bengio" in none


def test_the_dead_share_is_the_mean_over_hidden_layers_for_relu_only():
    table = {"step": np.array([1, 2]), "dead_fraction": np.array([[0.4, 0.6, 0.0], [0.2, 0.4, 0.0]])}
    assert gr.dead_share(table, "relu") == pytest.approx(0.4)  # (0.3 + 0.5) / 2; the output layer left out
    assert gr.dead_share(table, "sigmoid") is None
