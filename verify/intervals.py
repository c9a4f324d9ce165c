"""Interval engine: does a candidate counterexample *provably* separate the two sides?

Both sides are evaluated in interval arithmetic with outward rounding (mpmath's directed-rounding primitives),
and definedness is tracked three-valued (certainly defined, certainly undefined, unknown). A 60-digit replay
alone is not enough: `(exp(a*b) + c) - exp(a*b)` loses `c` at 60 digits once a*b is a few hundred, and
`x / (exp(a)*exp(b) - exp(a+b))` divides by a rounding residue where the true denominator is 0. Precision grows
with the magnitudes met, up to a cap; if the intervals still do not separate the sides, `rigorous_difference`
says None and the candidate is dropped (never reported).
"""

from __future__ import annotations

import math
import time
from typing import Literal

import mpmath
import numpy as np
from mpmath.libmp import (
    finf,
    fnan,
    fninf,
    from_float,
    fzero,
    mpf_add,
    mpf_cmp,
    mpf_div,
    mpf_exp,
    mpf_ln2,
    mpf_log,
    mpf_mul,
    mpf_neg,
    mpf_sign,
    mpf_sub,
    round_ceiling,
    round_floor,
    to_str,
)

from .claims import side_values
from .evaluate import ObjectAlgebra

#
# Abstract values (`Val`; not tuples, so that numpy keeps them as scalars):
#   kind "u"            certainly undefined
#   kind "t"            unknown: maybe undefined, any value
#   kind "i", lo = +-1  exactly +inf / -inf
#   kind "f", lo, hi    certainly defined and finite, lo <= value <= hi (raw mpf tuples)


ValKind = Literal["u", "t", "i", "f"]


class Val:
    __slots__ = ("kind", "lo", "hi")

    def __init__(self, kind: ValKind, lo=None, hi=None):
        self.kind, self.lo, self.hi = kind, lo, hi

    def __eq__(self, other) -> bool:
        return isinstance(other, Val) and (self.kind, self.lo, self.hi) == (other.kind, other.lo, other.hi)

    def __hash__(self) -> int:
        return hash((self.kind, self.lo, self.hi))

    def __repr__(self) -> str:
        if self.kind == "f":
            return f"[{to_str(self.lo, 12)}, {to_str(self.hi, 12)}]"
        return {"u": "undefined", "t": "unknown"}.get(self.kind, "+inf" if self.lo == 1 else "-inf")


UNDEF = Val("u")
TOP = Val("t")
NEG_INF = Val("i", -1)
POS_INF = Val("i", 1)
ZERO = Val("f", fzero, fzero)
ONE = Val("f", from_float(1.0), from_float(1.0))


def _is_zero(v: Val) -> bool:
    return v.kind == "f" and v.lo == fzero and v.hi == fzero


def _sign(v: Val) -> int | None:
    """+1 / -1 if the finite interval is certainly positive / negative, 0 if it is exactly 0, else None."""
    if _is_zero(v):
        return 0
    if mpf_sign(v.lo) > 0:
        return 1
    if mpf_sign(v.hi) < 0:
        return -1
    return None


def _min(xs):
    out = xs[0]
    for x in xs[1:]:
        if mpf_cmp(x, out) < 0:
            out = x
    return out


def _max(xs):
    out = xs[0]
    for x in xs[1:]:
        if mpf_cmp(x, out) > 0:
            out = x
    return out


class IntervalAlgebra(ObjectAlgebra):
    """Interval arithmetic with outward rounding at `prec` bits, following the evaluator's conventions."""

    name = "interval"

    def __init__(self, prec: int = 192):
        super().__init__()
        self.prec = prec
        self.max_bits = 0   # largest binary exponent met (to choose the precision of the next attempt)
        one = from_float(1.0)
        eps = (0, 1, -(prec - 3), 1)  # 2^-(prec-3): widening for exp, in case it is not correctly rounded
        self._down = mpf_sub(one, eps, prec, round_floor)
        self._up = mpf_add(one, eps, prec, round_ceiling)

    def const(self, value):
        value = float(value)
        if math.isnan(value):
            return UNDEF
        if math.isinf(value):
            return POS_INF if value > 0 else NEG_INF
        m = from_float(value)
        return Val("f", m, m)

    def _slack(self, m):
        """2^-(prec-8) * (1 + |m|): absolute widening for functions that may not round correctly."""
        bits = (m[2] + m[3]) if m != fzero else 0
        return (0, 1, max(bits, 0) - (self.prec - 8), 1)

    def _finite(self, lo, hi) -> Val:
        if lo in (fnan, fninf, finf) or hi in (fnan, fninf, finf):
            return TOP  # cannot happen with finite operands; be safe
        for m in (lo, hi):
            if m != fzero:
                self.max_bits = max(self.max_bits, m[2] + m[3])
        return Val("f", lo, hi)

    def _ln2(self) -> Val:
        return Val("f", mpf_ln2(self.prec, round_floor), mpf_ln2(self.prec, round_ceiling))

    def _tanh(self, m, rounding):
        """tanh at one end, widened outward by the slack (mpmath's tanh need not round correctly)."""
        with mpmath.mp.workprec(self.prec):
            t = mpmath.tanh(mpmath.mpf(m))._mpf_
        if rounding is round_floor:
            return mpf_sub(t, self._slack(t), self.prec, round_floor)
        return mpf_add(t, self._slack(t), self.prec, round_ceiling)

    def _guard(self, op, *x):
        if op == "where":       # only the condition and the branch taken are read
            c, a, b = x
            if c.kind in ("u", "t"):
                return c
            s = 1 if c.kind == "i" else _sign(c)
            return TOP if s is None else b if s == 0 else a
        a, b = x
        if a.kind == "u" or b.kind == "u":
            return UNDEF
        if a.kind == "t" or b.kind == "t":
            return TOP
        if a.kind == "i" or b.kind == "i":
            return ONE if a == b else ZERO
        if a.lo == a.hi == b.lo == b.hi:
            return ONE
        if mpf_cmp(a.hi, b.lo) < 0 or mpf_cmp(b.hi, a.lo) < 0:
            return ZERO
        return TOP

    def scalar(self, op, *x):
        if op in ("eq", "where"):
            return self._guard(op, *x)
        if any(v.kind == "u" for v in x):
            return UNDEF
        if any(v.kind == "t" for v in x):
            return TOP
        p = self.prec
        match op:
            case "exp":
                (a,) = x
                if a.kind == "i":
                    return ZERO if a.lo < 0 else POS_INF
                lo = mpf_mul(mpf_exp(a.lo, p, round_floor), self._down, p, round_floor)
                hi = mpf_mul(mpf_exp(a.hi, p, round_ceiling), self._up, p, round_ceiling)
                return self._finite(lo, hi)
            case "add" | "sub":
                a, b = x
                if op == "sub":
                    b = Val("i", -b.lo) if b.kind == "i" else Val("f", mpf_neg(b.hi), mpf_neg(b.lo))
                if a.kind == "i" and b.kind == "i":
                    return a if a.lo == b.lo else UNDEF
                if a.kind == "i":
                    return a
                if b.kind == "i":
                    return b
                return self._finite(mpf_add(a.lo, b.lo, p, round_floor), mpf_add(a.hi, b.hi, p, round_ceiling))
            case "mul":
                a, b = x
                if a.kind == "i" or b.kind == "i":
                    if a.kind == "i" and b.kind == "i":
                        return Val("i", a.lo * b.lo)
                    inf, other = (a, b) if a.kind == "i" else (b, a)
                    s = _sign(other)
                    if s == 0:
                        return UNDEF        # inf * 0
                    if s is None:
                        return TOP
                    return Val("i", inf.lo * s)
                ends = [(u, v) for u in (a.lo, a.hi) for v in (b.lo, b.hi)]
                lo = _min([mpf_mul(u, v, p, round_floor) for u, v in ends])
                hi = _max([mpf_mul(u, v, p, round_ceiling) for u, v in ends])
                return self._finite(lo, hi)
            case "div":
                a, b = x
                if b.kind == "i":
                    return UNDEF if a.kind == "i" else ZERO
                s = _sign(b)
                if s == 0:
                    return UNDEF            # x / 0
                if s is None:
                    return TOP              # the denominator may be 0
                if a.kind == "i":
                    return Val("i", a.lo * s)
                ends = [(u, v) for u in (a.lo, a.hi) for v in (b.lo, b.hi)]
                lo = _min([mpf_div(u, v, p, round_floor) for u, v in ends])
                hi = _max([mpf_div(u, v, p, round_ceiling) for u, v in ends])
                return self._finite(lo, hi)
            case "max":
                a, b = x
                if a == NEG_INF or b == POS_INF:
                    return b
                if b == NEG_INF or a == POS_INF:
                    return a
                return Val("f", _max([a.lo, b.lo]), _max([a.hi, b.hi]))
            case "fin":             # fin(-inf) = 0, fin(x) = x otherwise
                (a,) = x
                return ZERO if a == NEG_INF else a
            case "log":             # log(0) = -inf, log(x < 0) undefined
                (a,) = x
                if a.kind == "i":
                    return a if a.lo > 0 else UNDEF
                s = _sign(a)
                if s == 0:
                    return NEG_INF
                if s == -1:
                    return UNDEF
                if s is None:
                    return TOP
                lo, hi = mpf_log(a.lo, p, round_floor), mpf_log(a.hi, p, round_ceiling)
                return self._finite(mpf_sub(lo, self._slack(lo), p, round_floor),
                                    mpf_add(hi, self._slack(hi), p, round_ceiling))
            case "exp2":            # 2^x = exp(x * log 2), log 2 enclosed outward
                (a,) = x
                if a.kind == "i":
                    return ZERO if a.lo < 0 else POS_INF
                return self.scalar("exp", self.scalar("mul", a, self._ln2()))
            case "log2":            # log(x) / log 2
                v = self.scalar("log", x[0])
                return self.scalar("div", v, self._ln2()) if v.kind == "f" else v
            case "tanh":            # increasing, tanh(+-inf) = +-1
                (a,) = x
                if a.kind == "i":
                    return Val("f", from_float(float(a.lo)), from_float(float(a.lo)))
                return self._finite(self._tanh(a.lo, round_floor), self._tanh(a.hi, round_ceiling))
        return TOP  # an operator this replay does not know: never a proven difference


def certainly_differ(a: Val, b: Val) -> bool:
    if a.kind == "t" or b.kind == "t":
        return False
    if a.kind == "u" or b.kind == "u":
        return a.kind != b.kind
    if a.kind == "i" or b.kind == "i":
        return a != b
    return mpf_cmp(a.hi, b.lo) < 0 or mpf_cmp(b.hi, a.lo) < 0


def _settled(v: Val, prec: int) -> bool:
    """Is the value as sharp as this precision can make it (so more precision cannot separate it)?"""
    if v.kind != "f":
        return v.kind != "t"
    width = mpf_sub(v.hi, v.lo, 64, round_ceiling)
    scale = _max([mpf_neg(v.lo) if mpf_sign(v.lo) < 0 else v.lo, mpf_neg(v.hi) if mpf_sign(v.hi) < 0 else v.hi,
                  from_float(1.0)])
    limit = mpf_mul(scale, (0, 1, -(prec // 2), 1), 64, round_floor)
    return mpf_cmp(width, limit) <= 0


MAX_PREC = 1 << 16       # bits; exp of a few thousand needs about 10^4
RIGOROUS_SECONDS = 20.0  # a replay that takes longer gives up (the candidate is dropped)


def rigorous_difference(claim, sizes: dict[str, int], inputs: dict[str, np.ndarray],
                        seconds: float = RIGOROUS_SECONDS, only=None):
    """An output position where the two sides provably differ at these inputs (one of `only`, if given), or
    None."""
    start = time.monotonic()
    prec = 192
    for attempt in range(3):  # 192 bits; then enough for the magnitudes met; then 4x that
        alg = IntervalAlgebra(prec)
        exact = {name: _to_intervals(alg, v) for name, v in inputs.items()}
        lv, rv = side_values(claim, sizes, alg, exact)
        settled = True
        for idx in np.ndindex(*lv.shape):
            a, b = lv.item(idx), rv.item(idx)
            if (only is None or idx in only) and certainly_differ(a, b):
                return idx
            if not (_settled(a, prec) and _settled(b, prec)):
                settled = False
        if settled or prec >= MAX_PREC or time.monotonic() - start > seconds:
            return None
        prec = min(MAX_PREC, max(4 * prec, 2 * alg.max_bits + 256) if attempt == 0 else 4 * prec)
    return None


def _to_intervals(alg: IntervalAlgebra, values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    out = np.empty(values.shape, dtype=object)
    for idx in np.ndindex(*values.shape):
        out[idx] = alg.const(float(values[idx]))
    return out
