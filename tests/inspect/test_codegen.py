"""Tests for ffnlp_core.inspect.codegen: the generated scripts are self-contained, follow the config, and RUN: they
train on a small CSV written here and print a dev accuracy."""

import ast
import itertools
import re
import subprocess
import sys

import pytest

from ffnlp_core.config import ACTIVATIONS, DEVICES, OPTIMIZERS, VECTORIZERS, RunConfig
from ffnlp_core.inspect import codegen


def small_csv(path, rows: int = 300):
    """Two classes told apart by their words, in columns named like a real export."""
    lines = ["id,comment,verdict"]
    for i in range(rows):
        toxic = i % 2
        text = ("you absolute clown, jerk" if toxic else "thanks for the lovely recipe") + f" number {i % 7}"
        lines.append(f'{i},"{text}",{"toxic" if toxic else "fine"}')
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def config(**train) -> RunConfig:
    cfg = RunConfig()
    cfg.data.text_column, cfg.data.label_column = "comment", "verdict"
    cfg.model.hidden_sizes, cfg.model.activation = [16, 8], "relu"
    cfg.train.epochs, cfg.train.device, cfg.train.lr = 5, "cpu", 0.01
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg.validate()


def run_script(code: str, tmp_path, name: str, timeout: float = 240) -> subprocess.CompletedProcess:
    script = tmp_path / name
    script.write_text(code, encoding="utf-8")
    csv = small_csv(tmp_path / "comments.csv")
    work = tmp_path / "cwd"
    work.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, str(script), str(csv)], cwd=work, capture_output=True, text=True, timeout=timeout
    )


def dev_accuracy(stdout: str) -> float:
    last = stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"dev accuracy (\d\.\d{4})", last)
    assert match, f"last line is {last!r}"
    return float(match.group(1))


def test_every_registry_combination_generates_valid_self_contained_python():
    for act, vec, opt, dev in itertools.product(ACTIVATIONS, VECTORIZERS, OPTIMIZERS, DEVICES):
        cfg = config(optimizer=opt, device=dev)
        cfg.model.activation, cfg.data.vectorizer = act, vec
        for code in (codegen.torch_script(cfg), codegen.lightning_script(cfg)):
            tree = ast.parse(code)
            imported = {
                (n.module if isinstance(n, ast.ImportFrom) else a.name).split(".")[0]
                for n in ast.walk(tree)
                if isinstance(n, ast.Import | ast.ImportFrom)
                for a in n.names
            }
            assert imported <= {"sys", "numpy", "pandas", "torch", "sklearn", "lightning", "torchmetrics"}


def test_the_scripts_follow_the_config():
    cfg = config(optimizer="sgd", lr=0.05, momentum=0.8, batch_size=7, eval_every=13, seed=42)
    cfg.data.vectorizer, cfg.data.ngram_max, cfg.data.min_df = "tfidf", 2, 3
    code = codegen.torch_script(cfg)
    assert "TfidfVectorizer(ngram_range=(1, 2), min_df=3" in code
    assert "torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.8" in code
    assert "LEARNING_RATE, BATCH_SIZE, EPOCHS, EVAL_EVERY = 0.05, 7, 5, 13" in code
    assert "torch.manual_seed(42)" in code and "HIDDEN_SIZES = [16, 8]" in code
    assert "TEXT_COLUMN, LABEL_COLUMN = 'comment', 'verdict'" in code
    assert "torch.nn.ReLU()" in code and "\n        optimizer.zero_grad()  # forget" in code
    cfg.data.vectorizer = "binary"
    assert (
        "CountVectorizer(ngram_range=(1, 2), min_df=3, max_features=None, binary=True"
        in codegen.torch_script(cfg)
    )
    light = codegen.lightning_script(config(early_stopping_patience=4, device="cuda"))
    assert 'EarlyStopping("val_loss", patience=4)' in light and "accelerator='gpu'" in light


def test_the_buggy_config_generates_the_bug():
    code = codegen.torch_script(config(skip_zero_grad=True))
    assert "        # optimizer.zero_grad()  # BUG on purpose" in code
    assert "\n        optimizer.zero_grad()" not in code
    assert (
        "def optimizer_zero_grad(self, epoch, batch_idx, optimizer):\n        pass"
        in codegen.lightning_script(config(skip_zero_grad=True))
    )


def test_default_eval_interval_is_about_ten_per_epoch():
    code = codegen.torch_script(config(batch_size=32), n_rows=4000)  # 3,200 train rows: 100 steps an epoch
    assert "EPOCHS, EVAL_EVERY = 0.01, 32, 5, 10" in code


def test_the_plain_pytorch_script_trains_and_prints_a_dev_accuracy(tmp_path):
    result = run_script(codegen.torch_script(config(), n_rows=300), tmp_path, "loop.py")
    assert result.returncode == 0, result.stderr
    assert "240 train / 60 dev comments" in result.stdout
    assert len(re.findall(r"Linear\(in_features=", result.stdout)) == 3  # layer_0, layer_1, output_layer
    assert dev_accuracy(result.stdout) >= 0.95
    assert list((tmp_path / "cwd").iterdir()) == []


@pytest.mark.slow
def test_the_lightning_script_trains_and_prints_a_dev_accuracy(tmp_path):
    result = run_script(codegen.lightning_script(config(), n_rows=300), tmp_path, "lit.py")
    assert result.returncode == 0, result.stderr
    assert dev_accuracy(result.stdout) >= 0.95
    assert "layers" in result.stdout + result.stderr  # Lightning's ModelSummary lists the layers
