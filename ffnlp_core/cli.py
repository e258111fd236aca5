"""Headless command line over the same engine the app uses:

    python -m ffnlp_core train --csv PATH --text-column tweet --label-column class --epochs 1 --json

Progress (a tqdm bar of steps) goes to stderr; with --json, stdout is one JSON object. Bad input: one line on
stderr, exit 2. The run's settings are checked once, by plan.prepare, once the data is loaded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

from tqdm import tqdm

from .config import ACTIVATIONS, DEVICES, ENGINES, OPTIMIZERS, VECTORIZERS, ConfigError, RunConfig
from .nn.initializers import INITIALIZERS

CHECKPOINT_SECONDS = 30.0  # as the app's runs (runs/writer.py); a float here keeps this module light


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ffnlp_core", description="Train a feedforward text classifier."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train on a CSV of labeled comments (or the built-in data)")
    t.add_argument("--csv", help="CSV file; without it the built-in data set is used")
    t.add_argument("--sample", default="interaction", help="built-in data set when --csv is not given")
    t.add_argument("--text-column")
    t.add_argument("--label-column")
    t.add_argument("--hidden", default="100,100,100", help="hidden widths, input to output ('' for none)")
    t.add_argument("--activation", default="none", choices=list(ACTIVATIONS))
    t.add_argument("--dropout", type=float, default=0.0)
    t.add_argument(
        "--init",
        default="default",
        choices=list(INITIALIZERS),
        help="weight initialization (default: PyTorch's)",
    )
    t.add_argument("--optimizer", default="adam", choices=list(OPTIMIZERS))
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument(
        "--eval-every", type=int, default=0, help="steps between dev evaluations (0: ~10 per epoch)"
    )
    t.add_argument("--device", default="auto", choices=list(DEVICES))
    t.add_argument("--engine", default="manual", choices=list(ENGINES))
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--dev-fraction", type=float, default=0.2)
    t.add_argument("--vectorizer", default="counts", choices=list(VECTORIZERS))
    t.add_argument("--ngrams", type=int, default=1, choices=[1, 2])
    t.add_argument("--min-df", type=int, default=1)
    t.add_argument("--max-features", type=int)
    t.add_argument("--probe-every", type=int, default=0, help="steps between gradient probes (0: auto)")
    t.add_argument(
        "--plain", action="store_true", help="the plain autograd loop instead of the CPU fast path"
    )
    t.add_argument("--skip-zero-grad", action="store_true", help="reproduce the lecture's bug")
    t.add_argument("--patience", type=int, default=0, help="Lightning: early stopping on dev loss")
    t.add_argument("--devices", type=int, default=1, help="Lightning: number of devices (processes)")
    t.add_argument("--strategy", default="auto", help="Lightning: e.g. ddp")
    t.add_argument("--precision", default=None, help="Lightning: e.g. 32-true, 16-mixed, bf16-mixed")
    t.add_argument("--save", help="folder to save the trained run (config, metrics, weights)")
    t.add_argument(
        "--checkpoint-seconds",
        type=float,
        default=CHECKPOINT_SECONDS,
        help="with --save: write what was trained this often, so a killed run keeps it (0: at the end only)",
    )
    t.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    return parser


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The arguments as a RunConfig, not yet checked (plan.prepare checks it against the data)."""
    cfg = RunConfig()
    d, m, t = cfg.data, cfg.model, cfg.train
    d.source = args.csv or f"builtin:{args.sample}"
    d.text_column, d.label_column = args.text_column, args.label_column
    d.dev_fraction, d.vectorizer, d.ngram_max = args.dev_fraction, args.vectorizer, args.ngrams
    d.min_df, d.max_features = args.min_df, args.max_features
    try:
        m.hidden_sizes = [int(h) for h in args.hidden.split(",") if h.strip()]
    except ValueError as exc:
        raise ConfigError(
            f"--hidden must be comma-separated whole numbers like 100,100,100, got {args.hidden!r}"
        ) from exc
    m.activation, m.dropout, m.init = args.activation, args.dropout, args.init
    t.optimizer, t.lr, t.weight_decay = args.optimizer, args.lr, args.weight_decay
    t.batch_size, t.epochs, t.eval_every = args.batch_size, args.epochs, args.eval_every
    t.device, t.engine, t.seed, t.probe_every = args.device, args.engine, args.seed, args.probe_every
    t.fast, t.skip_zero_grad, t.early_stopping_patience = not args.plain, args.skip_zero_grad, args.patience
    if args.engine == "lightning":  # the manual engine trains on one device and ignores these, as before
        t.devices, t.strategy, t.precision = args.devices, args.strategy, args.precision
    return cfg


class Progress:
    """A tqdm bar of steps on stderr: rate, time left, loss and dev accuracy. Piped (not a terminal), it
    writes a plain line every few seconds instead of redrawing one."""

    def __init__(self, total: int, stream=None):
        stream = stream or sys.stderr
        tty = stream.isatty()
        self.dev = None
        self.bar = tqdm(
            total=total,
            unit="step",
            file=stream if tty else _Lines(stream),
            mininterval=0.2 if tty else PIPED_SECONDS,
            dynamic_ncols=tty,
            ascii=not tty,  # a log file keeps plain characters
            leave=True,
        )

    def update(self, steps) -> None:
        """After a Steps block: the bar at its last step, with its loss and the last dev accuracy."""
        postfix = {"loss": f"{float(steps.loss[-1]):.3f}"}
        if self.dev is not None:
            postfix["dev acc"] = f"{self.dev:.3f}"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.set_description(f"epoch {steps.epoch}", refresh=False)
        self.bar.update(int(steps.step[-1]) - self.bar.n)

    def close(self) -> None:
        self.bar.close()  # draws the last state once more


PIPED_SECONDS = 5.0  # a piped log gets a progress line at most this often


class _Lines:
    """A stream for tqdm when stderr is not a terminal: each redraw ("\\r" + bar) becomes one clean line."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").rstrip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def cmd_train(args: argparse.Namespace) -> int:
    from .data.dataset import build_dataset, load_source
    from .data.errors import DataError
    from .events import Eval, Failed, Finished, Started, Steps, end_status
    from .train.loop import train
    from .train.plan import build_model, prepare

    t0 = time.perf_counter()
    try:
        check_outputs(args)  # before any work: a bad --save must not cost a whole run
        cfg = config_from_args(args)
        ds = build_dataset(load_source(cfg.data), cfg.data)
        cfg = prepare(cfg, ds)  # the one check of the run's settings
    except (DataError, ConfigError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    progress, result, last_eval = None, None, None
    model = build_model(cfg, ds)
    saver = None
    if args.save:
        from .runs.writer import FolderSaver

        try:
            saver = FolderSaver(args.save, cfg, ds, model, every=args.checkpoint_seconds)
        except OSError as exc:
            print(f"error: --save {args.save}: {exc}", file=sys.stderr)
            return 2
    stop, caught = threading.Event(), []
    restore = _stop_on_signals(stop, caught)  # Ctrl-C / SIGTERM: the engine's own stop, within a step
    try:
        for event in train(cfg, ds, model=model, stop=stop):
            if saver is not None:
                saver.add(event)  # checkpoints every --checkpoint-seconds
            if isinstance(event, Started):
                print(
                    f"training on {event.device} ({event.path}), {event.train_examples} examples, "
                    f"vocabulary {event.vocab_size}, {event.total_steps} steps",
                    file=sys.stderr,
                )
                progress = Progress(event.total_steps)  # rank 0 alone: the other ranks get no events
            elif isinstance(event, Steps):
                progress.update(event)
            elif isinstance(event, Eval):
                progress.dev, last_eval = event.dev_accuracy, event
            elif isinstance(event, (Finished, Failed)):
                result = event
    except ValueError as exc:  # e.g. a device that does not exist
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        restore()
        if progress is not None:
            progress.close()
    if result is None:  # a non-zero rank of a distributed run: rank 0 reports
        return 0
    summary = dict(result.summary, seconds=time.perf_counter() - t0)
    if caught:
        summary["stopped"] = f"interrupted by {caught[0]}: what was trained is kept"
        print(f"stopped by {caught[0]} after {summary.get('steps', 0):,} steps", file=sys.stderr)
    if last_eval is not None and isinstance(result, Finished):
        from .inspect.metrics import cli_fields

        summary.update(cli_fields(last_eval.confusion, ds))  # per class, macro/weighted F1, baselines
    summary["status"] = "stopped" if caught and isinstance(result, Finished) else end_status(result)
    if saver is not None:
        try:
            saver.finish()
        except OSError as exc:  # the result is still printed; the folder keeps its last checkpoint
            summary["save_error"] = str(exc)
            print(f"error: --save {args.save}: {exc}", file=sys.stderr)
    if isinstance(result, Failed):
        summary["failed"] = result.reason
        print(f"error: {result.reason}", file=sys.stderr)
    if args.json:
        print(json.dumps(_finite(summary), allow_nan=False))  # strict JSON: NaN/inf become null
    else:
        print(
            f"dev accuracy {summary['dev_accuracy']:.4f}, train accuracy {summary['train_accuracy']:.4f}, "
            f"{summary['examples_per_second']:,.0f} examples/s, {summary['seconds']:.1f} s",
            file=sys.stderr,
        )
    if caught:
        return 128 + int(getattr(signal, caught[0]))  # the shell's convention: 130 for Ctrl-C, 143 for TERM
    return 1 if isinstance(result, Failed) else 0


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse an unusable --save (or --csv) before training; ValueError says what to change."""
    seconds = getattr(args, "checkpoint_seconds", 0.0)
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"--checkpoint-seconds must be 0 or more, got {seconds:g}")
    if args.csv:
        path = Path(args.csv)
        if path.exists() and not path.is_file():  # a folder, /dev/zero, a FIFO: never read them
            raise ValueError(f"--csv {args.csv}: not a regular file")
    if args.save:
        folder = Path(args.save).expanduser()
        if folder.name in ("", ".", "..") or folder.name.startswith("."):
            raise ValueError(f"--save {args.save!r}: give a new folder name for the run, e.g. runs/my-run")
        if folder.exists() and any(folder.iterdir()):
            raise ValueError(f"--save {args.save}: the folder exists and is not empty; choose a new one")
        parent = folder.parent if str(folder.parent) else Path(".")
        if parent.exists() and not os.access(parent, os.W_OK):
            raise ValueError(f"--save {args.save}: cannot write in {parent}")


def _stop_on_signals(stop: threading.Event, caught: list):
    """SIGINT and SIGTERM set the run's stop flag (the engine ends after the current step and reports what
    it trained); returns a function that puts the previous handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}

    def handler(signum, frame):
        caught.append(signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def _finite(value):
    """Non-finite floats (a run that diverged before any evaluation) -> None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train":
        return cmd_train(args)
    return 2
