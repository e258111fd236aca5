"""Reading a run folder defensively: its JSON files, the checks that tell a usable folder from a broken
one, and the one-line listing of a folder (`listing`) that never raises: a broken folder is `unreadable`
with its reason, a folder without status.json (a save cut short) `interrupted` with what it holds."""

from __future__ import annotations

import contextlib
import json
import zipfile
from numbers import Real
from pathlib import Path

from ..config import RunConfig

HALF_WRITTEN = "a half-written run folder (the server stopped while saving it)"


class RunReadError(ValueError):
    """A part of a run folder that cannot be read, with why."""


def read_json(path: Path):
    """The parsed file; RunReadError says why not (missing, unreadable, not JSON)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunReadError(f"{path.name} is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunReadError(f"{path.name} cannot be read ({type(exc).__name__}: {exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunReadError(f"{path.name} is not valid JSON ({exc})") from None


def status_problem(status) -> str | None:
    """Why a parsed status.json cannot be listed (None when it can)."""
    if not isinstance(status, dict):
        return f"status.json holds a {type(status).__name__}, not an object"
    if not isinstance(status.get("status"), str):
        return "status.json has no status"
    for key in ("created", "updated", "started", "finished"):
        if status.get(key) is not None and (
            isinstance(status[key], bool) or not isinstance(status[key], Real)
        ):
            return f"status.json: {key} is not a time"
    for key in ("owner", "label", "reason"):
        if not isinstance(status.get(key, ""), str):
            return f"status.json: {key} is not text"
    summary = status.get("summary")
    if summary is not None and not isinstance(summary, dict):
        return "status.json: summary is not an object"
    accuracy = (summary or {}).get("dev_accuracy")
    if accuracy is not None and (isinstance(accuracy, bool) or not isinstance(accuracy, Real)):
        return "status.json: summary.dev_accuracy is not a number"
    return None


def config_problem(config) -> str | None:
    """Why a parsed config.json cannot be used (None when it can)."""
    if not isinstance(config, dict) or not all(isinstance(v, dict) for v in config.values()):
        return "config.json is not an object of sections"
    try:
        RunConfig.from_dict(config)
    except (ValueError, TypeError) as exc:
        return f"config.json is not a run configuration ({exc})"
    if not isinstance(config.get("model", {}).get("hidden_sizes", []), list):
        return "config.json: model.hidden_sizes is not a list"
    return None


def listing(folder: Path) -> dict:
    """One folder as `RunStore.list_runs` lists it (never raises)."""
    try:
        mtime = folder.stat().st_mtime
        held = sorted(p.name for p in folder.iterdir() if not p.name.endswith(".tmp"))
    except OSError as exc:
        return broken(folder.name, 0.0, f"the folder cannot be read ({exc})")
    if "status.json" not in held:
        config = {}
        with contextlib.suppress(RunReadError):
            config = read_json(folder / "config.json")
        run = broken(folder.name, mtime, f"{HALF_WRITTEN}; it holds {', '.join(held) or 'nothing'}")
        run["status"] = "interrupted"
        run["config"] = config if config_problem(config) is None else {}
        return run
    try:
        status, config = read_json(folder / "status.json"), read_json(folder / "config.json")
    except RunReadError as exc:
        return broken(folder.name, mtime, str(exc))
    problem = status_problem(status) or config_problem(config) or history_problem(folder, held)
    if problem:
        return broken(folder.name, mtime, problem)
    run = {"id": folder.name, "owner": "", "label": "", **status, "config": config}
    run["created"] = float(run.get("created") or mtime)
    return run


def history_problem(folder: Path, held: list[str]) -> str | None:
    """A cheap look at history.npz (its zip directory, at the end of the file: a truncated file lacks it)."""
    if "history.npz" not in held:
        return None
    try:
        zipfile.ZipFile(folder / "history.npz").close()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        return f"history.npz cannot be read ({type(exc).__name__}: {exc})"
    return None


def broken(run_id: str, created: float, reason: str) -> dict:
    return {
        "id": run_id,
        "status": "unreadable",
        "reason": reason,
        "owner": "",
        "label": "",
        "created": created,
        "config": {},
    }
