"""Numerical safety: what real-number equivalence does not promise.

The static look at `exp` arguments (float32 overflow) is `normal_form.exp_overflow_warning`; here:
- `compare` (`verify numeric`): any program evaluated at realistic sizes by the reference evaluator, in
  float64 and float32, against a reference program in float64 and, for programs with attention's interface
  (Q, K, V, optionally a mask and a scale), an independent attention written directly in numpy and torch's
  scaled_dot_product_attention when torch is installed (an optional extra the tests never need).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import ir, predicates
from .claims import equiv_claim
from .errors import BoundError, Location, ShapeError, UsageError
from .evaluate import FloatAlgebra, evaluate
from .normal_form.overflow import unbounded_exps
from .reader import read_file
from .shapes import program_ranks
from .sizes import Bound, plan

# -- realistic sizes -------------------------------------------------------------------------------------------

def reference_attention(Q, K, V):
    """softmax(Q^T K) V^T, written directly in numpy, independent of the evaluator. Shapes Q[e,p], K[e,m], V[f,m]."""
    scores = Q.T @ K                                   # [p, m]
    scores = scores - scores.max(axis=1, keepdims=True)
    weights = np.exp(scores)
    weights /= weights.sum(axis=1, keepdims=True)
    return (weights @ V.T).T                           # [f, p]


@dataclass
class Row:
    program: str
    tiles: str
    dtype: str
    max_abs_error: float
    against: str
    # held to the float64 tolerance; a large-score row of a program with an exp argument not provably <= 0 is
    # not: it is expected to overflow there, and the row shows by how much
    judged: bool = True


def attention_only(program) -> None:
    """The realistic-size comparison is against attention: the program must read exactly Q, K, V (with their
    conventional ranks) and extract one [f, p] output. Anything else is a located error, not a crash."""
    found = {n.name: n.ranks for b in program.bindings.values() for n in ir.walk(b.expr) if isinstance(n, ir.Input)}
    wanted = {"Q": ("e", "p"), "K": ("e", "m"), "V": ("f", "m")}
    outputs = program.output_names()
    ranks = program_ranks(program)
    if found != wanted or len(outputs) != 1 or set(ranks[outputs[0]]) != {"f", "p"}:
        raise UsageError(f"verify numeric compares attention programs (inputs Q[e,p], K[e,m], V[f,m], one "
                         f"output [f,p]); {program.file} has inputs "
                         f"{', '.join(f'{n}[{chr(44).join(r)}]' for n, r in sorted(found.items())) or 'none'} and "
                         f"{len(outputs)} output(s)", Location(program.file, None),
                         "check other programs with `verify equiv` against an attention program")


def run_program(program: ir.Program, sizes, inputs, dtype=np.float64) -> np.ndarray:
    attention_only(program)
    name = program.output_names()[0]
    out = evaluate(program.bindings, [name], sizes, {k: v.astype(dtype) for k, v in inputs.items()},
                   FloatAlgebra(dtype))[name]
    return out.aligned(("f", "p"))


def crosscheck(paths, E=64, M=1024, P=128, F=64, tiles=(8, 32, 128), seed=0) -> list[Row]:
    """The attention programs at realistic sizes (see `compare`)."""
    return compare(paths, {"e": E, "m": M, "p": P, "f": F}, seed=seed, tiles=tiles)


def exps_bounded(program: ir.Program) -> bool:
    """Every exp the program computes has an argument provably <= 0 (max-shifted), at its smallest sizes."""
    claim = equiv_claim(program, program)
    sizes = next(iter(plan(claim, Bound()).sizes()))
    return unbounded_exps(claim, claim.lhs, sizes) == 0


def large_scores(paths, E=64, M=256, P=16, F=8, seed=0) -> list[Row]:
    """Attention programs at scores around 100, against numpy's max-shifted attention: a program whose exp
    arguments are all provably <= 0 stays accurate in float32; one that is not overflows (its rows are shown,
    not judged)."""
    rng = np.random.default_rng(seed)
    K = rng.normal(size=(E, M))
    Q = K[:, :P] / np.linalg.norm(K[:, :P], axis=0) * 10.0   # each query aligned with a key: score ~ 100
    V = rng.normal(size=(F, M))
    ref = reference_attention(Q, K, V)
    rows = []
    sizes = {"e": E, "f": F, "p": P, "m": M}
    for path in paths:
        program = read_file(path).program
        safe = exps_bounded(program)
        for dtype in (np.float64, np.float32):
            got = run_program(program, sizes, {"Q": Q, "K": K, "V": V}, dtype).astype(np.float64)
            err = float(np.max(np.abs(got - ref))) if np.isfinite(got).all() else float("nan")
            rows.append(Row(Path(path).name, f"max score {float((Q.T @ K).max()):.0f}", np.dtype(dtype).name, err,
                            "numpy reference", judged=safe))
    return rows


# -- any program (verify numeric) ------------------------------------------------------------------------------

REALISTIC = {"e": 64, "f": 64, "p": 128, "m": 1024}   # sizes of the conventional attention ranks
OTHER_SIZE = 32                                      # any other rank not given
TILES = (8, 32, 128)                                  # tile counts tried for a split rank not given


@dataclass
class ProgramSpec:
    path: str
    program: ir.Program
    output: str
    out_ranks: tuple[str, ...]
    inputs: tuple[tuple[str, tuple[str, ...]], ...]
    masks: tuple[str, ...]
    ranks: tuple[str, ...]
    splits: tuple           # every view (rank, outer, inner) of a split rank


def describe(path) -> ProgramSpec:
    program = read_file(path).program
    if len(program.outputs) != 1:
        raise UsageError(f"verify numeric evaluates one output; this program has {len(program.outputs)} output(s) "
                         "(extract ...)", Location(str(path), program.outputs[-1][1] if program.outputs else None),
                         "keep one (extract ...) in a copy of the program, or compare two programs with "
                         "`verify equiv`, which pairs every output")
    claim = equiv_claim(program, program)            # its inputs, masks, ranks and splits, shape-checked
    return ProgramSpec(str(path), program, program.output_names()[0], tuple(claim.out_ranks), claim.inputs, claim.masks,
                       tuple(claim.ranks()), tuple(claim.splits()))


def size_plans(spec: ProgramSpec, given: dict[str, int], tiles=TILES) -> list[dict[str, int]]:
    """Size assignments for one program: ranks from `given` (lower-case names), else the realistic defaults;
    a split rank's parts from `given`, else every tile count of TILES that divides it."""
    sizes: dict[str, int] = {}
    parts = {r for _, outer, inner in spec.splits for r in (outer, inner)}
    for r in spec.ranks:
        if r in given:
            sizes[r] = given[r]
        elif r not in parts:
            sizes[r] = REALISTIC.get(r, REALISTIC.get(r[:1], OTHER_SIZE))
    plans = [sizes]
    for rank, outer, inner in spec.splits:
        out = []
        for s in plans:
            total = s.get(rank)
            if outer in given and inner in given:
                choices = [(given[outer], given[inner])]
            elif total is None:                   # the rank is itself a part of a split: its parts must be given
                raise BoundError(f"{spec.path}: the size of {rank.upper()} is not known; give {outer.upper()} and "
                                 f"{inner.upper()}")
            elif outer in given or inner in given:
                known = given[outer] if outer in given else given[inner]
                if total % known:
                    raise BoundError(f"{spec.path}: {rank.upper()}={total} is not divisible by "
                                     f"{(outer if outer in given else inner).upper()}={known}")
                choices = [(known, total // known)] if outer in given else [(total // known, known)]
            else:
                choices = [(t, total // t) for t in tiles if total and total % t == 0 and t < total] or [(1, total)]
            for o, i in choices:
                if total is not None and o * i != total:
                    raise BoundError(f"{spec.path}: {outer.upper()}*{inner.upper()} = {o * i} but "
                                     f"{rank.upper()}={total}")
                out.append({**s, outer: o, inner: i, rank: o * i})
        plans = out
    for sizes in plans:
        _check_memory(spec, sizes)
    return plans


MAX_ELEMENTS = 1 << 28     # one tensor of 2 GiB in float64: sizes beyond that are refused, not a MemoryError


def _check_memory(spec: ProgramSpec, sizes: dict[str, int]) -> None:
    for binding in spec.program.bindings.values():
        for node in ir.walk(binding.expr):
            if isinstance(node, ir.Input | ir.Map):
                elements = math.prod(sizes.get(r, 1) for r in ir.node_ranks(node))
                if elements > MAX_ELEMENTS:
                    shown = ", ".join(f"{r.upper()}={sizes.get(r, 1)}" for r in ir.node_ranks(node))
                    raise BoundError(f"at {shown} the tensor of line {node.line} would hold {elements:,} "
                                     f"elements ({elements * 8 / 2**30:,.0f} GiB in float64)",
                                     Location(spec.path, node.line), f"give sizes with at most {MAX_ELEMENTS:,} "
                                     "elements per tensor (--sizes)")


def make_inputs(spec: ProgramSpec, sizes: dict[str, int], rng) -> dict[str, np.ndarray]:
    """Normal values for real inputs; for masks, random keep/mask patterns (0 / -inf) in which every query
    keeps at least one key; a scalar input (a scale such as tau) is 1/sqrt(E) when there is an e rank."""
    out = {}
    fixed = {n.name: n.pred for b in spec.program.bindings.values() for n in ir.walk(b.expr)
             if isinstance(n, ir.Input) and n.pred is not None}
    for name, ranks in spec.inputs:
        shape = tuple(sizes[r] for r in ranks)
        if name in fixed:       # a predicate mask or index tensor: its own values (parameters at their lowest;
            pred = fixed[name]  # a document sequence: three packed documents)
            length = max(sizes[r] for r in pred.ranks)
            params = {p.name: [i * 3 // length for i in range(length)] if p.seq else p.lo for p in pred.params}
            out[name] = predicates.pattern(pred, sizes, params)
        elif name in spec.masks:
            keep = rng.random(shape) < 0.7
            if "m" in ranks:
                index: list[slice | int] = [slice(None)] * len(shape)
                index[ranks.index("m")] = 0
                keep[tuple(index)] = True                 # every row sees a key (B unmasked along m)
            out[name] = np.where(keep, 0.0, -np.inf)
        elif not ranks:
            out[name] = np.array(1.0 / np.sqrt(sizes["e"]) if "e" in sizes else 0.5)
        else:
            out[name] = rng.normal(size=shape)
    return out


def evaluate_program(spec: ProgramSpec, sizes, inputs, dtype=np.float64) -> np.ndarray:
    out = evaluate(spec.program.bindings, [spec.output], sizes, {k: np.asarray(v).astype(dtype) for k, v in
                                                                  inputs.items()}, FloatAlgebra(dtype))[spec.output]
    return out.aligned(spec.out_ranks)


def attention_inputs(spec: ProgramSpec):
    """(mask name or None, scale name or None) if the program has attention's interface: Q[e,p], K[e,m],
    V[f,m], at most one mask over {m,p} and one scalar, output over {f,p}; else None."""
    inputs = dict(spec.inputs)
    if inputs.get("Q") != ("e", "p") or inputs.get("K") != ("e", "m") or inputs.get("V") != ("f", "m"):
        return None
    if set(spec.out_ranks) != {"f", "p"}:
        return None
    rest = {n: r for n, r in inputs.items() if n not in ("Q", "K", "V")}
    masks = [n for n in rest if n in spec.masks and set(rest[n]) == {"m", "p"}]
    scalars = [n for n in rest if not rest[n]]
    if len(rest) != len(masks) + len(scalars) or len(masks) > 1 or len(scalars) > 1:
        return None
    return (masks[0] if masks else None, scalars[0] if scalars else None)


def attention_references(spec: ProgramSpec, inputs) -> dict[str, np.ndarray]:
    """softmax(tau * Q^T K + B) V^T in numpy and, if torch imports, torch's scaled_dot_product_attention (with
    the mask as a float attn_mask and the scale); aligned to the program's output ranks."""
    mask, scale = attention_inputs(spec)
    Q, K, V = inputs["Q"], inputs["K"], inputs["V"]
    tau = float(inputs[scale]) if scale else 1.0
    bias = None
    if mask:
        ranks = dict(spec.inputs)[mask]
        bias = inputs[mask] if ranks == ("p", "m") else inputs[mask].T          # [p, m]
    scores = tau * (Q.T @ K) + (bias if bias is not None else 0.0)
    scores = scores - scores.max(axis=1, keepdims=True)
    weights = np.exp(scores)
    weights /= weights.sum(axis=1, keepdims=True)
    ref = (weights @ V.T)                                                         # [p, f]
    order = lambda a: a if spec.out_ranks == ("p", "f") else a.T                 # noqa: E731
    out = {"numpy attention": order(ref)}
    try:
        import torch
    except ImportError:
        return out
    q = torch.from_numpy(Q.T.copy())[None, None]
    k = torch.from_numpy(K.T.copy())[None, None]
    v = torch.from_numpy(V.T.copy())[None, None]
    attn_mask = torch.from_numpy(bias.copy())[None, None] if bias is not None else None
    t = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=tau)
    out["torch sdpa"] = order(t[0, 0].numpy())
    return out


def max_error(got: np.ndarray, expected: np.ndarray) -> float:
    got = np.asarray(got, dtype=np.float64)
    if not np.isfinite(got).all():
        return float("inf")
    return float(np.max(np.abs(got - expected))) if got.size else 0.0


def compare(paths, given: dict[str, int], reference: str | None = None, seed: int = 0, tiles=TILES) -> list[Row]:
    """Every program at its size plans, in float64 and float32, against: the reference program evaluated in
    float64 by the reference evaluator (`reference`, default the first program; same inputs and sizes), and,
    for programs with attention's interface, numpy attention and torch's SDPA (when torch is installed)."""
    specs = [describe(p) for p in paths]
    ref_spec = describe(reference) if reference else specs[0]
    known = {r for spec in specs + [ref_spec] for r in spec.ranks}
    unknown = sorted(r.upper() for r in given if r not in known)
    if unknown:      # a size the programs never use would be ignored: say so instead (as `check --bound` does)
        raise BoundError(f"no program here has rank {', '.join(unknown)}",
                         hint="the programs' ranks are " + ", ".join(sorted(r.upper() for r in known)))
    rows = []
    for spec in specs:
        if set(spec.out_ranks) != set(ref_spec.out_ranks) or dict(spec.inputs).keys() != dict(ref_spec.inputs).keys():
            raise ShapeError(f"{spec.path} and the reference {ref_spec.path} differ in inputs or output ranks: "
                             "compare it alone, or give --reference")
        for sizes in size_plans(spec, given, tiles):
            rng = np.random.default_rng(seed)
            inputs = make_inputs(spec, sizes, rng)
            expected = {}
            if Path(spec.path).resolve() != Path(ref_spec.path).resolve():
                ref_sizes = size_plans(ref_spec, {**given, **{r: v for r, v in sizes.items()
                                                              if r in ref_spec.ranks}})[0]
                expected[f"reference evaluator ({Path(ref_spec.path).name}, float64)"] = np.broadcast_to(
                    evaluate_program(ref_spec, ref_sizes, inputs), evaluate_program(spec, sizes, inputs).shape)
            if attention_inputs(spec) is not None:
                expected.update(attention_references(spec, inputs))
            label = ", ".join(f"{r.upper()}={v}" for r, v in sorted(sizes.items()) if r in
                              {x for view in spec.splits for x in view}) or \
                ", ".join(f"{r.upper()}={v}" for r, v in sorted(sizes.items()))
            for dtype in (np.float64, np.float32):
                got = evaluate_program(spec, sizes, inputs, dtype)
                if not expected:   # nothing independent to compare with: float32 against float64
                    if dtype is np.float64:
                        base = got
                        continue
                    rows.append(Row(Path(spec.path).name, label, "float32", max_error(got, base),
                                    "the same program in float64"))
                    continue
                for against, value in expected.items():
                    rows.append(Row(Path(spec.path).name, label, np.dtype(dtype).name, max_error(got, value),
                                    against))
    return rows
