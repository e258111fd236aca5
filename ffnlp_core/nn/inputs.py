"""The network's input: bag-of-words rows (scipy CSR) as a torch sparse CSR tensor, without a dense copy."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


def to_torch_csr(x: sp.csr_matrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """scipy CSR (rows, vocab) -> torch sparse CSR float32 on `device` (no dense copy)."""
    return torch.sparse_csr_tensor(
        torch.from_numpy(x.indptr.astype(np.int64)),
        torch.from_numpy(x.indices.astype(np.int64)),
        torch.from_numpy(x.data.astype(np.float32)),
        size=x.shape,
        check_invariants=False,
    ).to(device)
