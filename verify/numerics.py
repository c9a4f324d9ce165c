"""Numerical safety: what real-number equivalence does not promise.

Two checks live here:
- `exp_overflow_warning`: a static look at every `exp` a side computes (in the normal form, at a small size).
  An argument is *bounded above by 0* when it is `x - max(S)` with x in S, or `max(A) - max(S)` with A a subset
  of S (the max shift of a softmax, a local max against a running or global max), or a constant <= 0. A claim
  whose right side exponentiates an argument that is not bounded while its left side does not is
  "real-equivalent; exp argument unbounded above": equal over the reals, overflowing in float32 for scores
  above about 88 (exp(88.7) is the largest float32).
- `crosscheck`: the programs evaluated at realistic sizes by the reference evaluator, in float64 and float32,
  against an independent attention written directly in numpy (and torch's scaled_dot_product_attention when
  torch is installed, as an optional extra).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import ir
from .claims import Claim, Side, symbolic_inputs
from .evaluate import FloatAlgebra
from .normal_form import NormalForm, Rat, is_neg_inf


class _ExpWatch(NormalForm):
    def __init__(self):
        super().__init__()
        self.arguments: list[Rat] = []

    def exp(self, a):
        self.arguments.append(a)
        return super().exp(a)


def _max_args(alg: NormalForm, atom_id: int):
    info = alg.atom_info[atom_id]
    return info[2] if info and info[0] == "max" and len(info) > 2 else None


def _bounded_above_by_zero(alg: NormalForm, arg) -> bool:
    if is_neg_inf(arg):
        return True
    if arg.den or arg.num and len(arg.num) > 1:
        return False
    poly = alg.expand(arg)
    if not poly:
        return True
    if len(poly) == 1:
        ((mono, coeff),) = poly.items()
        if not mono[0] and mono[1] == 0:
            return coeff <= 0
    # look for a term -1 * max(S); the rest must be an element of S, or max(A) with A a subset of S
    for mono, coeff in poly.items():
        if coeff != -1 or mono[1] != 0 or len(mono[0]) != 1 or mono[0][0][1] != 1:
            continue
        members = _max_args(alg, mono[0][0][0])
        if members is None:
            continue
        rest = {m: c for m, c in poly.items() if m != mono}
        rest_rat = alg.factor(rest)
        if rest_rat.key() in {member.key() for member in members}:
            return True
        if rest_rat.coeff == 1 and not rest_rat.num and len(rest_rat.mono[0]) == 1 and rest_rat.mono[1] == 0:
            inner = _max_args(alg, rest_rat.mono[0][0][0])
            keys = {m.key() for m in members}
            if inner is not None and all(x.key() in keys for x in inner):
                return True
    return False


def unbounded_exps(claim: Claim, side: Side, sizes) -> int:
    """exp arguments not provably <= 0. A mask is never an unknown real: it is taken all 0 (unmasked), the
    pattern with the largest exp arguments (a -inf element only lowers them)."""
    alg = _ExpWatch()
    unmasked = {name: np.zeros(tuple(sizes[r] for r in ranks)) for name, ranks in claim.inputs if name in claim.masks}
    side.evaluate(sizes, alg, symbolic_inputs(claim, sizes, alg, unmasked))
    return sum(not _bounded_above_by_zero(alg, a) for a in alg.arguments)


def exp_overflow_warning(claim: Claim, sizes) -> str | None:
    try:
        left = unbounded_exps(claim, claim.lhs, sizes)
        right = unbounded_exps(claim, claim.rhs, sizes)
    except Exception:  # noqa: BLE001 - outside the normal form's fragment: no opinion, no warning
        return None
    if right and not left:
        return ("real-equivalent; exp argument unbounded above on the right-hand side (the left side keeps every "
                "exp argument <= 0): float32 overflows for scores above about 88")
    if left and not right:
        return "real-equivalent; exp argument unbounded above on the left-hand side (the right side is safe)"
    return None


# -- realistic sizes -------------------------------------------------------------------------------------------

def reference_attention(Q, K, V):
    """softmax(Q^T K) V^T, written directly in numpy, independent of the evaluator. Shapes Q[e,p], K[e,m], V[f,m]."""
    scores = Q.T @ K                                   # [p, m]
    scores = scores - scores.max(axis=1, keepdims=True)
    weights = np.exp(scores)
    weights /= weights.sum(axis=1, keepdims=True)
    return (weights @ V.T).T                           # [f, p]


def torch_attention(Q, K, V):
    try:
        import torch
    except ImportError:
        return None
    q = torch.from_numpy(Q.T.copy())[None, None]
    k = torch.from_numpy(K.T.copy())[None, None]
    v = torch.from_numpy(V.T.copy())[None, None]
    # scaled_dot_product_attention divides by sqrt(E); undo it, since the cascades leave the scale out
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=1.0)
    return out[0, 0].numpy().T


@dataclass
class Row:
    program: str
    tiles: str
    dtype: str
    max_abs_error: float
    against: str


def attention_only(program) -> None:
    """The realistic-size comparison is against attention: the program must read exactly Q, K, V (with their
    conventional ranks) and extract one [f, p] output. Anything else is a located error, not a crash."""
    from .errors import Location, UsageError
    from .shapes import program_ranks

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


def run_program(path, sizes, inputs, dtype=np.float64) -> np.ndarray:
    from .evaluate import evaluate
    from .reader import read_file

    program = read_file(path).program
    attention_only(program)
    name = program.output_names()[0]
    out = evaluate(program.bindings, [name], sizes, {k: v.astype(dtype) for k, v in inputs.items()},
                   FloatAlgebra(dtype))[name]
    return out.aligned(("f", "p"))


def crosscheck(paths, E=64, M=1024, P=128, F=64, tiles=(8, 32, 128), seed=0, scale=1.0) -> list[Row]:
    rng = np.random.default_rng(seed)
    Q = rng.normal(size=(E, P)) * scale
    K = rng.normal(size=(E, M))
    V = rng.normal(size=(F, M))
    inputs = {"Q": Q, "K": K, "V": V}
    ref = reference_attention(Q, K, V)
    refs = {"numpy reference": ref}
    t = torch_attention(Q, K, V)
    if t is not None:
        refs["torch sdpa"] = t
    rows = []
    tiles = [t for t in tiles if M % t == 0] or [1]   # tile counts that divide M
    for path in paths:
        for m1 in tiles:
            sizes = {"e": E, "f": F, "p": P, "m": M, "m1": m1, "m0": M // m1}
            for dtype in (np.float64, np.float32):
                got = run_program(path, sizes, inputs, dtype).astype(np.float64)
                for label, expected in refs.items():
                    err = float(np.nanmax(np.abs(got - expected))) if np.isfinite(got).all() else float("inf")
                    rows.append(Row(Path(path).name, f"M1={m1}, M0={M // m1}", np.dtype(dtype).name, err, label))
            if "tiles" not in Path(path).read_text() and "T_split" not in Path(path).read_text():
                break  # an untiled program: one row per dtype is enough
    return rows


def overflow_demo(shifted="proofs/attention.egg", unshifted="proofs/attention_noshift.egg", E=64, M=256, P=16,
                  F=8, seed=0) -> list[Row]:
    """Scores around 100: the max-shifted program stays accurate in float32, the unshifted one overflows."""
    rng = np.random.default_rng(seed)
    K = rng.normal(size=(E, M))
    Q = K[:, :P] / np.linalg.norm(K[:, :P], axis=0) * 10.0   # each query aligned with a key: score ~ 100
    V = rng.normal(size=(F, M))
    ref = reference_attention(Q, K, V)
    rows = []
    sizes = {"e": E, "f": F, "p": P, "m": M}
    for path in (shifted, unshifted):
        for dtype in (np.float64, np.float32):
            got = run_program(path, sizes, {"Q": Q, "K": K, "V": V}, dtype).astype(np.float64)
            err = float(np.max(np.abs(got - ref))) if np.isfinite(got).all() else float("nan")
            rows.append(Row(Path(path).name, f"max score {float((Q.T @ K).max()):.0f}", np.dtype(dtype).name, err,
                            "numpy reference"))
    return rows
