"""The network's shape from its configuration alone, without building it (no torch): layer names and
parameter counts, for pages that describe a network before any run exists."""

from __future__ import annotations


def layer_names(n_hidden: int) -> list[str]:
    """Linear layers from input to output: layer_0 ... layer_{k-1}, output_layer (the lecture's names)."""
    return [f"layer_{i}" for i in range(n_hidden)] + ["output_layer"]


def count_parameters(vocab_size: int, hidden_sizes: list[int], n_classes: int) -> list[int]:
    """Parameters per linear layer (input to output): weights and biases."""
    widths = [vocab_size, *hidden_sizes, n_classes]
    return [(a + 1) * b for a, b in zip(widths[:-1], widths[1:], strict=True)]
