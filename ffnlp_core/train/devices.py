"""Devices: which one `auto` picks, how a device is named in events, and which are present here."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; an explicit choice that does not exist is an error."""
    has_mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available here; use 'cpu' or 'auto'")
    if name == "mps" and not has_mps:
        raise ValueError(
            "device 'mps' was asked for but Apple's MPS is not available here; use 'cpu' or 'auto'"
        )
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
    return str(device)


def available_devices() -> list[tuple[str, str]]:
    """(key, label) for each device present: CPU always, then CUDA GPUs with their names, then MPS."""
    found = [("cpu", "CPU")]
    if torch.cuda.is_available():
        found.append(("cuda", f"CUDA: {torch.cuda.get_device_name(0)}"))
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        found.append(("mps", "Apple MPS"))
    return found
