"""The network: a feedforward text classifier over a sparse bag-of-words, with named layers.

layer_0 ... layer_{k-1} are the hidden layers and output_layer gives the class scores, as in the lecture.
The first layer reads the sparse input directly (a weighted sum of one row of weights per word present),
which is the same function as a dense `nn.Linear` but never touches the rows of absent words.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..config import ModelConfig
from . import initializers, shapes
from .activations import ACTIVATIONS


class SparseLinear(nn.Module):
    """y = x W + b for a sparse x (rows = comments, columns = words).

    `weight` is stored as (in_features, out_features), the transpose of `nn.Linear.weight`, so that each
    word's weights are one contiguous row: a batch reads only the rows of the words it contains.
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.empty(out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_features)  # nn.Linear's default initialisation
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.layout == torch.sparse_csr:
            # embedding_bag sums weight rows per comment, scaled by the counts: (B, out)
            out = F.embedding_bag(
                x.col_indices(), self.weight, x.crow_indices()[:-1], mode="sum", per_sample_weights=x.values()
            )
            return out + self.bias
        if x.is_sparse:
            return torch.sparse.mm(x, self.weight) + self.bias
        return x @ self.weight + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, sparse input"


class FeedForwardClassifier(nn.Module):
    """Bag-of-words -> hidden layers (activation, dropout) -> class scores. No hidden layers = logistic regression."""

    def __init__(
        self,
        vocab_size: int,
        hidden_sizes: list[int] | tuple[int, ...] = (100, 100, 100),
        activation: str = "none",
        dropout: float = 0.0,
        n_classes: int = 2,
        init: str = "default",
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; use one of {list(ACTIVATIONS)}")
        self.vocab_size, self.n_classes = vocab_size, n_classes
        self.hidden_sizes = list(hidden_sizes)
        self.activation_name, self.dropout_p = activation, dropout
        widths = [vocab_size, *self.hidden_sizes]
        for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layer = SparseLinear(n_in, n_out) if i == 0 else nn.Linear(n_in, n_out)
            setattr(self, f"layer_{i}", layer)
        last = widths[-1]
        self.output_layer = (
            SparseLinear(last, n_classes) if not self.hidden_sizes else nn.Linear(last, n_classes)
        )
        self.activation = ACTIVATIONS[activation].module()
        self.dropout = nn.Dropout(dropout)
        self.init_name = init
        for layer in self.linear_layers():
            initializers.apply(init, layer.weight, layer.bias, layer.in_features, layer.out_features)

    @classmethod
    def from_config(cls, cfg: ModelConfig, vocab_size: int, n_classes: int) -> FeedForwardClassifier:
        return cls(vocab_size, cfg.hidden_sizes, cfg.activation, cfg.dropout, n_classes, cfg.init)

    @property
    def layer_names(self) -> list[str]:
        """Linear layers from input to output: layer_0 ... layer_{k-1}, output_layer."""
        return shapes.layer_names(len(self.hidden_sizes))

    def linear_layers(self) -> list[nn.Module]:
        return [getattr(self, name) for name in self.layer_names]

    def forward(self, x: torch.Tensor, return_pre: bool = False):
        """x: (B, vocab) sparse CSR, sparse COO or dense. Returns (logits (B, C), [h0 ... h{k-1}] each (B, width));
        with return_pre also the pre-activations [z0 ... z{k-1}, logits] for the gradient probes."""
        hidden, pre = [], []
        h = x
        for layer in self.linear_layers()[:-1]:
            z = layer(h)  # (B, width)
            a = self.activation(z)
            hidden.append(a)
            pre.append(z)
            h = self.dropout(a)
        logits = self.output_layer(h)  # (B, n_classes)
        if return_pre:
            return logits, hidden, pre + [logits]
        return logits, hidden


def parameter_summary(model: FeedForwardClassifier) -> list[dict]:
    """One row per layer, like Lightning's ModelSummary: name, type, in/out, parameters."""
    rows = []
    for name, layer in zip(model.layer_names, model.linear_layers(), strict=True):
        n_in = layer.in_features
        n_out = layer.out_features
        rows.append(
            {
                "name": name,
                "type": type(layer).__name__,
                "in": n_in,
                "out": n_out,
                "params": sum(p.numel() for p in layer.parameters()),
            }
        )
    return rows
