"""Checked, not trusted: run generated code next to the reference evaluator (and torch's SDPA).

Used by tests/test_codegen.py and bench/kernels.py (`--accuracy`, the README's table of errors). Needs numpy
only to build inputs and evaluate the reference; running generated code needs torch (the verify[codegen] extra).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import ir
from ..reader import read_file
from . import generate
from .validate import call, make_inputs, module, reference, rel_error

__all__ = ["against_torch", "call", "load", "make_inputs", "module", "reference", "rel_error", "sdpa"]


def load(path, target: str = "torch") -> tuple[dict, ir.Program]:
    source = read_file(path)
    return module(generate(source.program, target, source.text), str(path)), source.program


def sdpa(Q, K, V, mask=None, scale=1.0) -> np.ndarray:
    """torch's scaled_dot_product_attention in the cascades' layout: Q[e,p], K[e,m], V[f,m], mask B[m,p]."""
    import torch

    q, k, v = (torch.from_numpy(np.ascontiguousarray(x.T))[None, None] for x in (Q, K, V))
    m = None if mask is None else torch.from_numpy(np.ascontiguousarray(mask.T))[None, None]
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=scale)[0, 0].numpy().T


def against_torch(path: str, inputs: dict) -> np.ndarray:
    """torch's answer: SDPA for an attention program (masked, scaled where it is), torch.logsumexp of the scores
    for the log-sum-exp ones (proofs/variants/lse_*.egg)."""
    if "lse" in Path(path).name:
        import torch

        return torch.logsumexp(torch.from_numpy(inputs["Q"].T @ inputs["K"]), dim=1).numpy()
    return sdpa(inputs["Q"], inputs["K"], inputs["V"], inputs.get("B"), float(inputs.get("tau", 1.0)))
