"""Checked, not trusted: run generated code next to the reference evaluator (and torch's SDPA).

Used by tests/test_codegen.py and bench/kernels.py (`--accuracy`, the README's table of errors). Needs numpy
only to build inputs and evaluate the reference; running generated code needs torch (the verify[codegen] extra).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np

from .. import ir
from ..evaluate import FloatAlgebra, evaluate
from ..reader import read_file
from ..shapes import program_ranks
from . import generate
from .lower import layout


def module(code: str, name: str) -> dict:
    """Execute generated code; returns its namespace (one function per extracted output)."""
    namespace: dict = {}
    exec(compile(code, f"<generated from {name}>", "exec"), namespace)
    return namespace


def load(path, target: str = "torch") -> tuple[dict, ir.Program]:
    source = read_file(path)
    return module(generate(source.program, target, source.text), str(path)), source.program


def make_inputs(program: ir.Program, output: str, sizes: dict, seed: int = 0, masked_rows=()) -> dict:
    """Normal inputs; masks keep 60% of the keys (and none for the queries in `masked_rows`); scalars 0.125."""
    rng = np.random.default_rng(seed)
    out = {}
    for node in layout(program, output, program_ranks(program)).inputs:
        shape = tuple(sizes[r] for r in node.ranks)
        if node.kind == "mask":
            mask = np.where(rng.random(shape) < 0.4, -np.inf, 0.0)
            for p in masked_rows:                   # every key masked for these queries
                mask[:, p] = -np.inf
            out[node.name] = mask
        elif not node.ranks:
            out[node.name] = np.array(0.125)
        else:
            out[node.name] = rng.normal(size=shape)
    return out


def reference(program: ir.Program, output: str, sizes: dict, tiles: dict, inputs: dict, dtype=np.float64):
    """The reference evaluator's result, with the generated function's tile keywords turned into sizes."""
    plan = layout(program, output, program_ranks(program)).sizes
    full = dict(sizes)
    for rank in plan.order:
        if rank in plan.tiles:
            kw, default, _ = plan.tiles[rank]
            full[rank] = tiles.get(kw, default)
        elif rank in plan.inner:
            whole, outer = plan.inner[rank]
            full[rank] = full[whole] // full[outer]
        elif rank in plan.product:
            a, b = plan.product[rank]
            full[rank] = full[a] * full[b]
    data = {k: v.astype(dtype) for k, v in inputs.items()}
    return evaluate(program.bindings, [output], full, data, FloatAlgebra(dtype))[output].aligned(
        program_ranks(program)[output]).astype(np.float64)


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want| over the defined elements; inf when the undefined (NaN) elements differ."""
    if not np.array_equal(np.isnan(got), np.isnan(want)):
        return float("inf")
    defined = ~np.isnan(want)
    if not defined.any():
        return 0.0
    return float(np.max(np.abs(got[defined] - want[defined])) / max(np.max(np.abs(want[defined])), 1e-300))


def call(fn, inputs: dict, dtype, **kwargs) -> np.ndarray:
    """Call a generated function on torch copies of `inputs` in `dtype`; the result as float64 numpy."""
    import torch

    args = {name: torch.from_numpy(np.array(inputs[name], dtype=dtype))
            for name in inspect.signature(fn).parameters if name in inputs}
    return fn(**args, **kwargs).double().numpy()


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
