"""Tests for ffnlp_core.cli (and __main__): `python -m ffnlp_core train` as a student would run it."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ffnlp_core.cli import build_parser, config_from_args, main
from ffnlp_core.config import ConfigError
from ffnlp_core.runs.store import RunStore
from ffnlp_core.train.plan import prepare

ROOT = Path(__file__).resolve().parents[1]
DAVIDSON = ROOT.parent / "shared" / "data" / "davidson_labeled_tweets.csv"
JSON_FIELDS = {
    "train_examples",
    "dev_examples",
    "vocab_size",
    "classes",
    "steps",
    "train_loss",
    "train_accuracy",
    "dev_accuracy",
    "seconds",
    "train_seconds",
    "examples_per_second",
    "device",
    "grad_rms",
}


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python -m ffnlp_core ...` from the project folder, as a student would."""
    return subprocess.run(
        [sys.executable, "-m", "ffnlp_core", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def strict_json(text: str) -> dict:
    """Parse JSON as the standard defines it: NaN and Infinity are not JSON."""

    def refuse(name):
        raise ValueError(f"{name} is not valid JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real run of the default command with --json, also saved with --save."""
    runs = tmp_path_factory.mktemp("runs")
    result = cli("train", "--epochs", "1", "--json", "--save", str(runs / "cli-run"))
    return result, runs


# ---- a real run in a subprocess ------------------------------------------------------------------------


def test_train_prints_one_json_object_and_exits_0(trained):
    result, _ = trained
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1  # progress goes to stderr; stdout is the object alone
    summary = strict_json(lines[0])
    assert isinstance(summary, dict)
    assert set(summary) >= JSON_FIELDS
    assert (summary["train_examples"], summary["dev_examples"], summary["vocab_size"]) == (3200, 800, 78)
    assert summary["classes"] == ["not toxic", "toxic"]
    assert summary["steps"] == 100  # ceil(3200 / 32) steps of the default batch, 1 epoch
    assert summary["seconds"] >= summary["train_seconds"] > 0
    assert summary["examples_per_second"] == pytest.approx(3200 / summary["train_seconds"])
    if torch.cuda.is_available():
        assert summary["device"].startswith("cuda")
    else:
        assert summary["device"] == "cpu"
    assert len(summary["grad_rms"]) == 4  # the lecture's 3 hidden layers and the output layer
    assert all(math.isfinite(g) and g > 0 for g in summary["grad_rms"])
    assert 0.5 < summary["dev_accuracy"] < 0.75  # the lecture's linear network on the interaction data
    assert 0 < summary["train_loss"] < 1


def test_train_reports_progress_on_stderr(trained):
    result, _ = trained
    assert "training on" in result.stderr and "100 steps" in result.stderr
    assert "100/100" in result.stderr and "step/s" in result.stderr  # tqdm's bar of steps, with its rate
    last = [line for line in result.stderr.splitlines() if "100/100" in line][-1]
    assert "loss=" in last and "dev acc=" in last  # the postfix: the last loss and dev accuracy
    assert "\r" not in result.stderr  # piped, the bar writes clean lines, not redraws


def test_save_writes_a_run_folder_the_store_can_read(trained):
    result, runs = trained
    summary = strict_json(result.stdout)
    store = RunStore(runs)
    listed = store.list_runs()
    assert [r["id"] for r in listed] == ["cli-run"]
    assert listed[0]["status"] == "finished" and listed[0]["owner"] == "cli"
    for key in ("dev_accuracy", "train_loss", "steps", "vocab_size"):
        assert listed[0]["summary"][key] == summary[key], key
    cfg = store.config("cli-run")
    assert cfg.model.hidden_sizes == [100, 100, 100] and cfg.train.epochs == 1
    history = store.load_history("cli-run")
    assert history.steps_done == 100 and len(history.curves()["loss"]) == 100
    assert history.last_eval()["dev_accuracy"] == summary["dev_accuracy"]
    model, vec, classes = store.load_model("cli-run")
    assert classes == ["not toxic", "toxic"] and vec.vocab_size == 78
    # the saved model gives the dev accuracy the run reported
    from ffnlp_core.data.dataset import build_dataset, load_source
    from ffnlp_core.train.evaluate import evaluate

    ds = build_dataset(load_source(cfg.data), cfg.data)
    res = evaluate(model, ds.x_dev, ds.y_dev, torch.device("cpu"))
    assert res.accuracy == pytest.approx(summary["dev_accuracy"])


def test_a_missing_file_exits_2_with_one_line_and_no_traceback():
    result = cli("train", "--csv", "no/such/file.csv", "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "file.csv" in lines[0]


@pytest.mark.slow
def test_davidson_tweets_reach_the_lectures_accuracy():
    if not DAVIDSON.exists():
        pytest.skip(f"the Davidson data set is not at {DAVIDSON} (it lives in ../shared, not in the project)")
    result = cli(
        "train",
        "--csv",
        str(DAVIDSON),
        *("--text-column", "tweet", "--label-column", "class", "--min-df", "2", "--epochs", "1", "--json"),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    summary = strict_json(result.stdout)
    print(
        f"\nDavidson, 1 epoch: dev accuracy {summary['dev_accuracy']:.4f}, vocabulary {summary['vocab_size']}, "
        f"{summary['examples_per_second']:,.0f} examples/s, {summary['seconds']:.1f} s in all"
    )
    assert summary["classes"] == ["0", "1", "2"]
    assert summary["train_examples"] + summary["dev_examples"] == 24783
    # 10,752 words as the lecture counts them; HTML entities decoded ("&amp;", "&#128514;"), ~10,425 remain
    assert 10_200 <= summary["vocab_size"] <= 10_600
    assert summary["dev_accuracy"] > 0.85


# ---- bad input: exit 2 and one line, in-process (the same main() that __main__ calls) ---------------------


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["train", *args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    "args, says",
    [
        (["--csv", "missing.csv"], ["missing.csv", "Check the path"]),
        (["--lr", "0"], ["learning rate", "0.0", "try 0.001"]),
        (["--hidden", "abc"], ["--hidden", "'abc'", "100,100,100"]),
        (["--hidden", "100,,x"], ["--hidden", "'100,,x'"]),
        (["--label-column", "nope"], ["'nope'", "'text'", "'label'"]),
        (["--text-column", "body"], ["'body'"]),
        (["--batch-size", "0"], ["batch size", "got 0"]),
        (["--dev-fraction", "1"], ["dev fraction", "1.0"]),
        (["--min-df", "100000"], ["min_df", "100000"]),
    ],
    ids=[
        "missing-csv",
        "lr-0",
        "hidden-abc",
        "hidden-gaps",
        "label-column",
        "text-column",
        "batch-0",
        "dev-1",
        "min-df",
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, tmp_path, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(capsys, *args, "--json")
    assert code == 2
    assert out == ""
    line = one_line_error(err)
    for text in says:
        assert text in line, line


def test_an_empty_csv_exits_2_with_one_line(capsys, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    code, out, err = run_main(capsys, "--csv", str(empty), "--json")
    assert code == 2 and out == ""
    assert "empty" in one_line_error(err)


def test_a_header_only_csv_exits_2_with_one_line(capsys, tmp_path):
    header = tmp_path / "header.csv"
    header.write_text("text,label\n")
    code, out, err = run_main(capsys, "--csv", str(header), "--json")
    assert code == 2 and out == ""
    one_line_error(err)


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="CUDA is present here, so asking for it is not an error"
)
def test_cuda_without_a_gpu_exits_non_zero_with_one_line(capsys):
    code, out, err = run_main(capsys, "--device", "cuda", "--hidden", "8", "--json")
    assert code != 0 and out == ""
    assert "cuda" in one_line_error(err)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's overflow warnings are the point here
def test_a_diverged_run_exits_1_and_still_prints_strict_json(capsys):
    code, out, err = run_main(capsys, "--optimizer", "sgd", "--lr", "10", "--json")
    assert code == 1
    assert "diverged at step" in err and "Traceback" not in err
    summary = strict_json(out)  # a JSON reader other than Python's refuses NaN and Infinity
    assert "diverged at step" in summary["failed"]


def test_a_csv_of_your_own_trains(capsys, tmp_path):
    rows = ["comment;verdict"]
    rows += [f"what a lovely day number {i};good" for i in range(30)]
    rows += [f"what an awful mess number {i};bad" for i in range(30)]
    path = tmp_path / "mine.csv"
    path.write_text("\n".join(rows) + "\n")
    code, out, err = run_main(
        capsys, "--csv", str(path), "--hidden", "8", "--epochs", "20", "--lr", "0.01", "--json"
    )
    assert code == 0, err
    summary = strict_json(out)
    assert summary["classes"] == ["bad", "good"]
    assert (summary["train_examples"], summary["dev_examples"]) == (48, 12)
    assert summary["dev_accuracy"] == 1.0  # "lovely" and "awful" give the label away


# ---- arguments to config -------------------------------------------------------------------------------


def test_the_defaults_are_the_lectures():
    cfg = config_from_args(build_parser().parse_args(["train"]))
    assert cfg.model.hidden_sizes == [100, 100, 100] and cfg.model.activation == "none"
    assert (cfg.train.optimizer, cfg.train.lr, cfg.train.batch_size, cfg.train.epochs) == (
        "adam",
        1e-3,
        32,
        1,
    )
    assert cfg.train.fast is True and cfg.data.source == "builtin:interaction"


def test_arguments_land_in_the_config():
    args = build_parser().parse_args(
        [
            "train",
            *("--csv", "x.csv", "--text-column", "tweet", "--label-column", "class"),
            *("--hidden", "64, 8", "--activation", "relu", "--dropout", "0.2", "--optimizer", "sgd"),
            *("--lr", "0.05", "--batch-size", "16", "--epochs", "3", "--seed", "9", "--vectorizer", "tfidf"),
            *("--ngrams", "2", "--min-df", "2", "--max-features", "500", "--plain", "--skip-zero-grad"),
        ]
    )
    cfg = config_from_args(args)
    assert (cfg.data.source, cfg.data.text_column, cfg.data.label_column) == ("x.csv", "tweet", "class")
    assert (cfg.data.vectorizer, cfg.data.ngram_max, cfg.data.min_df, cfg.data.max_features) == (
        "tfidf",
        2,
        2,
        500,
    )
    assert cfg.model.hidden_sizes == [64, 8] and cfg.model.activation == "relu" and cfg.model.dropout == 0.2
    assert (cfg.train.optimizer, cfg.train.lr, cfg.train.batch_size, cfg.train.epochs) == ("sgd", 0.05, 16, 3)
    assert cfg.train.seed == 9 and cfg.train.fast is False and cfg.train.skip_zero_grad is True


def test_an_empty_hidden_list_is_logistic_regression():
    cfg = config_from_args(build_parser().parse_args(["train", "--hidden", ""]))
    assert cfg.model.hidden_sizes == []


def test_config_errors_come_from_validation(capsys, interaction):
    cfg = config_from_args(build_parser().parse_args(["train", "--epochs", "0"]))  # not checked here
    assert cfg.train.epochs == 0
    with pytest.raises(ConfigError, match="epoch"):
        prepare(cfg, interaction)  # the one check, once the data is loaded
    code, out, err = run_main(capsys, "--epochs", "0", "--json")
    assert code == 2 and out == ""
    assert "epochs must be from 1 to 1000, got 0" in one_line_error(err)


@pytest.mark.parametrize("value", ["inf", "nan", "-0.1"])
def test_a_weight_decay_that_is_not_a_number_from_0_to_1_is_refused_in_one_line(capsys, value):
    code, out, err = run_main(capsys, "--weight-decay", value, "--json")
    assert code == 2 and out == ""
    assert f"weight decay must be from 0.0 to 1.0, got {float(value)!r}" in one_line_error(err)


def test_argparse_refuses_unknown_choices(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["train", "--activation", "swish"])
    assert exit_.value.code == 2
    assert "swish" in capsys.readouterr().err


def test_the_seed_makes_the_cli_repeatable(capsys):
    outs = []
    for _ in range(2):
        code, out, _ = run_main(capsys, "--hidden", "8", "--seed", "4", "--json")
        assert code == 0
        outs.append(strict_json(out))
    for key in ("train_loss", "dev_accuracy", "grad_rms"):
        assert outs[0][key] == outs[1][key], key
    np.testing.assert_array_equal(outs[0]["grad_rms"], outs[1]["grad_rms"])


def test_the_json_has_per_class_figures_macro_and_weighted_f1_and_both_baselines(trained):
    from sklearn.metrics import f1_score

    result, runs = trained
    summary = strict_json(result.stdout.strip().splitlines()[0])
    per_class = {row["class"]: row for row in summary["per_class"]}
    assert set(per_class) == {"not toxic", "toxic"}
    assert sum(row["support"] for row in per_class.values()) == summary["dev_examples"]
    # the same figures from the saved run's final confusion matrix, through sklearn directly
    confusion = RunStore(runs).load_history("cli-run").confusion
    gold = np.repeat([0, 0, 1, 1], confusion.ravel())
    pred = np.repeat([0, 1, 0, 1], confusion.ravel())
    assert summary["macro_f1"] == pytest.approx(f1_score(gold, pred, average="macro"))
    assert summary["weighted_f1"] == pytest.approx(f1_score(gold, pred, average="weighted"))
    assert set(summary["baselines"]) == {"majority class", "logistic regression"}
    majority = summary["baselines"]["majority class"]
    assert majority["accuracy"] == pytest.approx(475 / 800)  # always "toxic" on the 800 dev comments
    assert 0 < summary["baselines"]["logistic regression"]["macro_f1"] <= 1


@pytest.mark.parametrize("save", [".", "..", "runs/.hidden"])
def test_a_bad_save_folder_is_refused_before_training(save):
    result = cli("train", "--epochs", "50", "--save", save, timeout=60)
    assert result.returncode == 2 and "--save" in result.stderr and "Traceback" not in result.stderr
    assert "training on" not in result.stderr  # refused before the run started


def test_a_save_folder_that_is_not_empty_is_refused_before_training(tmp_path):
    (tmp_path / "old-run").mkdir()
    (tmp_path / "old-run" / "notes.txt").write_text("keep me")
    result = cli("train", "--save", str(tmp_path / "old-run"), timeout=60)
    assert result.returncode == 2 and "not empty" in result.stderr
    assert (tmp_path / "old-run" / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("path", ["/dev/zero", "."])
def test_a_csv_that_is_not_a_regular_file_is_refused_at_once(path):
    result = cli("train", "--csv", path, timeout=30)
    assert result.returncode == 2 and "not a regular file" in result.stderr


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_run_keeps_it_and_prints_the_json(tmp_path, sig):
    """Ctrl-C or SIGTERM mid-run: the engine's own stop, the run saved as stopped, the JSON printed,
    no traceback, exit 128 + the signal number."""
    import signal
    import time

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ffnlp_core",
            "train",
            "--epochs",
            "1000",
            "--json",
            "--save",
            str(tmp_path / "r"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    line = ""
    while "training on" not in line and time.monotonic() < deadline:
        line = proc.stderr.readline()
    time.sleep(1.0)  # some steps trained
    sent = time.monotonic()
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 10
    assert proc.returncode == 128 + getattr(signal, sig), err
    assert "Traceback" not in err and f"stopped by {sig}" in err
    summary = strict_json(out.strip().splitlines()[-1])
    assert 0 < summary["steps"] < 1000 * 100 and sig in summary["stopped"]
    status = RunStore(tmp_path).status("r")
    assert status["status"] == "stopped"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_an_exploding_but_finite_loss_ends_the_run_as_diverged(capsys):
    """Adam at lr 10 keeps the loss finite (about 10^8 by step 2): it used to finish with exit 0."""
    code, out, err = run_main(capsys, "--optimizer", "adam", "--lr", "10", "--json")
    summary = strict_json(out)
    assert code == 1 and summary["status"] == "diverged"
    assert "the loss exploded to" in summary["failed"] and "Lower the learning rate" in summary["failed"]
    assert summary["steps"] < 10  # caught at once, not after the whole epoch


def test_a_healthy_run_says_finished():
    summary = json.loads(cli("train", "--hidden", "8", "--json", timeout=120).stdout)
    assert summary["status"] == "finished"


def test_a_negative_checkpoint_interval_is_refused_before_training(tmp_path):
    result = cli("train", "--save", str(tmp_path / "r"), "--checkpoint-seconds", "-1", timeout=30)
    assert result.returncode == 2 and "--checkpoint-seconds" in result.stderr
    assert not (tmp_path / "r").exists()


def test_kill_9_keeps_the_last_checkpoint_readable_as_interrupted(tmp_path):
    """--save checkpoints every --checkpoint-seconds: a kill -9 loses at most that much training."""
    import signal
    import time

    folder = tmp_path / "r"
    args = ["train", "--epochs", "1000", "--save", str(folder), "--checkpoint-seconds", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ffnlp_core", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store = RunStore(tmp_path)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and store.status("r").get("status") != "interrupted":
        time.sleep(0.2)
    time.sleep(1.5)  # at least one more checkpoint after the first
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    status = store.status("r")
    assert status["status"] == "interrupted" and "checkpoint holds its first" in status["reason"]
    history = store.load_history("r")
    assert history.steps_done > 0
    model, vectorizer, classes = store.load_model("r")  # the weights of that checkpoint, readable
    assert len(classes) == 2 and vectorizer.vocab_size > 0
    listed = next(r for r in store.list_runs() if r["id"] == "r")
    assert listed["status"] == "interrupted"
