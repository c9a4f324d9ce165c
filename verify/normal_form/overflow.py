"""A static look at every `exp` a side computes, in the normal form at a small size. An argument is *bounded above
by 0* when it is `x - max(S)` with x in S, or `max(A) - max(S)` with A a subset of S (the max shift of a softmax, a
local max against a running or global max), or a constant <= 0, or `r - log(f)` with exp(r) one of the positive
terms of f. A claim whose right side exponentiates an argument that is not bounded while its left side does not
is "real-equivalent; exp argument unbounded above": equal over the reals, overflowing in float32 for scores above
about 88 (exp(88.7) is the largest float32)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..claims import Claim, Side, symbolic_inputs
from .algebra import NormalForm
from .values import Rat, is_neg_inf


class _ExpWatch(NormalForm):
    def __init__(self):
        super().__init__()
        self.arguments: list[Rat] = []

    def exp(self, a):
        self.arguments.append(a)
        return super().exp(a)


def _max_args(alg: NormalForm, atom_id: int):
    info: Any = alg.atom_info[atom_id]      # an atom's key: ("max", key, arguments) for a max-term
    return info[2] if isinstance(info, tuple) and len(info) > 2 and info[0] == "max" else None


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
    if _minus_log_of_own_sum(alg, poly):
        return True
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


def _minus_log_of_own_sum(alg: NormalForm, poly: dict) -> bool:
    """`r - log(f)` with f a positive sum one of whose terms is c * exp(r), c >= 1 (the recomputation of softmax from
    the stored log-sum-exp, exp(S - GM - log SD)): f >= exp(r) as its other terms are positive, so r - log f <= 0."""
    for mono, coeff in poly.items():
        if coeff != -1 or mono[1] != 0 or len(mono[0]) != 1 or mono[0][0][1] != 1:
            continue
        key: Any = alg.atom_info[mono[0][0][0]]
        if not (isinstance(key, tuple) and len(key) == 2 and key[0] == "log" and alg.positive(key[1])):
            continue
        rest = {m: c for m, c in poly.items() if m != mono}
        if any(m[1] != 0 for m in rest):
            continue
        term = ((), alg.intern(rest)) if rest else ((), 0)
        if alg.poly_of[key[1]].get(term, 0) >= 1:
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
    except Exception:  # outside the normal form's fragment: no opinion, no warning
        return None
    if right and not left:
        return ("real-equivalent; exp argument unbounded above on the right-hand side (the left side keeps every "
                "exp argument <= 0): float32 overflows for scores above about 88")
    if left and not right:
        return "real-equivalent; exp argument unbounded above on the left-hand side (the right side is safe)"
    return None
