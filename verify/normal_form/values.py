"""The values of the normal form (see the package docstring): -inf and undefined, exact rationals, the monomial
order's keys, and `Rat`, one normalised scalar."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction


class NotNormalizable(Exception):
    """The expression leaves the fragment the normal form decides; not a verdict."""


class NegInf:
    """-inf, defined where `conds` hold (see the module docstring)."""

    __slots__ = ("conds",)

    def __init__(self, conds=frozenset()):
        self.conds = conds

    def __repr__(self) -> str:
        return f"-inf (if {set(self.conds)})" if self.conds else "-inf"


NEG_INF = NegInf()


class PosInf:
    """+inf (flash-attn's LSE of a fully masked row), defined where `conds` hold. Only a select (`where`) may
    choose it and `eq` compare it; any arithmetic on it leaves the form (NotNormalizable)."""

    __slots__ = ("conds",)

    def __init__(self, conds=frozenset()):
        self.conds = conds

    def __repr__(self) -> str:
        return "+inf"


POS_INF = PosInf()


class Undef:
    """An undefined value (x / 0, (-inf) - (-inf), 0 * (-inf), log of -inf): undefined everywhere, since a
    failing condition makes a value undefined too. Two undefined values are equal (both are NaN)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "undefined"


UNDEF = Undef()


def is_neg_inf(v) -> bool:
    return type(v) is NegInf


def neg_inf(conds) -> NegInf:
    return NegInf(conds) if conds else NEG_INF

# A monomial: (powers, exp_id). powers is a sorted tuple of (atom_id, nonzero int); exp_id names the
# polynomial P of the factor exp(P) (0 = the zero polynomial, i.e. no exponential).
Mono = tuple
ONE_MONO: Mono = ((), 0)
SENTINEL = ((0,),)


def exact(x):
    """An exact rational in its canonical Python type: int when integral."""
    if type(x) is Fraction and x.denominator == 1:
        return x.numerator
    return x


def exact_div(a, b):
    if b == 1:
        return a
    if b == -1:
        return -a
    if type(a) is int and type(b) is int:
        q, r = divmod(a, b)
        return q if r == 0 else Fraction(a, b)
    return exact(Fraction(a) / b)


def exact_mul(a, b):
    if type(a) is int and type(b) is int:
        return a * b
    return exact(a * b)


def exact_add(a, b):
    if type(a) is int and type(b) is int:
        return a + b
    return exact(a + b)


def lex_key(items):
    """A tuple key realising the lexicographic order on sparse vectors {index: nonzero value}.

    Coordinates are compared from the highest index down. Tuple comparison of the keys equals the vector
    order, which is translation invariant (v < w iff v + u < w + u), so it orders monomials compatibly with
    multiplication. Element (i, v) is encoded as (sign v, +-i, v); the sentinel (0,) stands for "all zero
    from here on" and sorts between negative and positive elements.
    """
    out = [(1, i, v) if v > 0 else (-1, -i, v) for i, v in sorted(items, reverse=True)]
    out.append((0,))
    return tuple(out)


class Rat:
    """c * mono * prod(num) / prod(den), with conditions. num/den are sorted tuples of (poly_id, count)."""

    __slots__ = ("coeff", "mono", "num", "den", "conds", "_key", "_rid")

    def __init__(self, coeff, mono, num=(), den=(), conds=frozenset()):
        self.coeff = coeff
        self.mono = mono if coeff != 0 else ONE_MONO
        self.num = num if coeff != 0 else ()
        self.den = den if coeff != 0 else ()
        self.conds = conds
        self._key = None
        self._rid = None

    def key(self):
        if self._key is None:
            self._key = (self.coeff, self.mono, self.num, self.den)
        return self._key

    def is_zero(self) -> bool:
        return self.coeff == 0

    def __repr__(self) -> str:
        return f"Rat({self.coeff}, {self.mono}, num={self.num}, den={self.den}, conds={set(self.conds)})"



def least_powers(poly: dict) -> dict:
    """{atom: least power over the terms of poly} (an absent atom counts as power 0), nonzero entries only."""
    return least_of([powers for powers, _ in poly])


def shift_least(least: dict, by: dict) -> dict:
    """Least powers of (a polynomial with least powers `least`) * (a monomial or polynomial with `by`)."""
    if not by:
        return least
    out = dict(least)
    for atom, p in by.items():
        q = out.get(atom, 0) + p
        if q:
            out[atom] = q
        else:
            out.pop(atom, None)
    return out


def least_of(parts: list) -> dict:
    """Least powers of a sum made of `parts`: each part is a dict {atom: power} (the least powers of a
    sub-sum) or a monomial's sorted (atom, power) pairs. An atom missing from some part counts as power 0."""
    low: dict = {}
    seen: Counter = Counter()
    for part in parts:
        for atom, p in (part.items() if isinstance(part, dict) else part):
            seen[atom] += 1
            q = low.get(atom)
            if q is None or p < q:
                low[atom] = p
    n = len(parts)
    out = {}
    for atom, p in low.items():
        if seen[atom] < n:
            p = min(p, 0)
        if p:
            out[atom] = p
    return out

