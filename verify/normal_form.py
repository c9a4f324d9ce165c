"""Back end: the normal form, our fast prover for sums, products, quotients, max and exp.

Every scalar is brought to a canonical form over the reals:

    value = c * m * (f1 * f2 * ...) / (g1 * g2 * ...)        subject to the conditions  h1 != 0, h2 != 0, ...

- an *atom* is an input element (finite real) or a max-term: `max` of a set of normal forms, flattened,
  deduplicated, with -inf dropped (max is associative, commutative, idempotent, and -inf is its identity);
  the set is unordered, so `max(a, b)` and `max(b, a)` are the same atom;
- `m` is a Laurent monomial in atoms times `exp(P)` for a polynomial P (`exp(a) * exp(b) = exp(a + b)` and
  `exp(0) = 1`: every exp is merged into one exponent per monomial, so PRM-style corrections cancel);
- each f_i, g_i is a polynomial with two or more terms, scaled so that its first term (canonical order) is
  `1 * exp(0)`; exponentials may be factored out freely because exp is never 0, atoms only when every term
  has them. Equal factors in the numerator and the denominator cancel: `(X / D) * D = X`, which holds
  because division by D was only allowed under the condition D != 0 (recorded below, or implied by D > 0);
- a division by anything that is not provably positive (a sum of exponentials with positive coefficients is)
  records the condition `divisor != 0`. The value is *undefined* where a condition fails.

Two sides are proved equal when their conditions are the same set and `lhs - rhs` normalises to 0: then
they are undefined at the same points and equal everywhere else. Anything the form cannot express (an
undefined constant, `+inf`, `-inf` times a value of unknown sign) raises `NotNormalizable`; the driver then
falls back to numeric search and Z3 and never concludes CERTIFIED from this module.

-inf is a separate value `NEG_INF` (inputs are finite, so an atom is never -inf): `max(-inf, x) = x`,
`-inf + x = -inf`, `exp(-inf) = 0`, `-inf * c = -inf` for a constant c > 0.
"""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import numpy as np

from .evaluate import ObjectAlgebra


class NotNormalizable(Exception):
    """The expression leaves the fragment the normal form decides; not a verdict."""


class _NegInf:
    __slots__ = ()

    def __repr__(self) -> str:
        return "-inf"


NEG_INF = _NegInf()

# A monomial: (powers, exp_id). powers is a sorted tuple of (atom_id, nonzero int); exp_id names the
# polynomial P of the factor exp(P) (0 = the zero polynomial, i.e. no exponential).
Mono = tuple
ONE_MONO: Mono = ((), 0)


class Rat:
    """c * mono * prod(num) / prod(den), with conditions. num/den are sorted tuples of (poly_id, count)."""

    __slots__ = ("coeff", "mono", "num", "den", "conds", "_key")

    def __init__(self, coeff, mono, num=(), den=(), conds=frozenset()):
        self.coeff = coeff
        self.mono = mono if coeff != 0 else ONE_MONO
        self.num = num if coeff != 0 else ()
        self.den = den if coeff != 0 else ()
        self.conds = conds
        self._key = None

    def key(self):
        if self._key is None:
            self._key = (self.coeff, self.mono, self.num, self.den)
        return self._key

    def is_zero(self) -> bool:
        return self.coeff == 0

    def __repr__(self) -> str:
        return f"Rat({self.coeff}, {self.mono}, num={self.num}, den={self.den}, conds={set(self.conds)})"


class NormalForm(ObjectAlgebra):
    """The normal-form algebra. One instance per check, so both sides share atom and polynomial ids."""

    name = "normal form"

    def __init__(self):
        super().__init__()
        self.atoms: dict[object, int] = {}
        self.atom_info: list[object] = [None]
        self.polys: dict[frozenset, int] = {frozenset(): 0}
        self.poly_of: list[dict] = [{}]
        self.positive_poly: list[bool] = [False]

    # -- interning ---------------------------------------------------------------------------------------
    def atom(self, key) -> int:
        found = self.atoms.get(key)
        if found is None:
            found = len(self.atom_info)
            self.atoms[key] = found
            self.atom_info.append(key)
        return found

    def intern(self, poly: dict) -> int:
        key = frozenset(poly.items())
        found = self.polys.get(key)
        if found is None:
            found = len(self.poly_of)
            self.polys[key] = found
            self.poly_of.append(poly)
            self.positive_poly.append(all(c > 0 and not m[0] for m, c in poly.items()))
        return found

    def input(self, name: str, index: tuple) -> Rat:
        return self.from_atom(self.atom(("in", name, index)))

    def from_atom(self, atom_id: int) -> Rat:
        return Rat(Fraction(1), (((atom_id, 1),), 0))

    def const(self, value):
        if value == -math.inf:
            return NEG_INF
        if not math.isfinite(value):
            raise NotNormalizable(f"constant {value}")
        return Rat(Fraction(value), ONE_MONO)

    # -- monomials and polynomials -----------------------------------------------------------------------
    def exp_add(self, a: int, b: int, sign: int = 1) -> int:
        if b == 0:
            return a
        if a == 0 and sign == 1:
            return b
        out = dict(self.poly_of[a])
        for m, c in self.poly_of[b].items():
            v = out.get(m, 0) + sign * c
            if v:
                out[m] = v
            else:
                out.pop(m, None)
        return self.intern(out)

    def mono_mul(self, a: Mono, b: Mono) -> Mono:
        if not b[0]:
            powers = a[0]
        elif not a[0]:
            powers = b[0]
        else:
            merged = dict(a[0])
            for atom, p in b[0]:
                q = merged.get(atom, 0) + p
                if q:
                    merged[atom] = q
                else:
                    del merged[atom]
            powers = tuple(sorted(merged.items()))
        return (powers, self.exp_add(a[1], b[1]))

    def mono_inv(self, a: Mono) -> Mono:
        return (tuple((atom, -p) for atom, p in a[0]), self.exp_add(0, a[1], -1))

    def poly_mul(self, p: dict, q: dict) -> dict:
        out: dict = {}
        for m1, c1 in p.items():
            for m2, c2 in q.items():
                m = self.mono_mul(m1, m2)
                v = out.get(m, 0) + c1 * c2
                if v:
                    out[m] = v
                else:
                    out.pop(m, None)
        return out

    def expand(self, r: Rat, extra: tuple = ()) -> dict:
        """The numerator c * mono * prod(num) * prod(extra factors) as one polynomial."""
        poly = {r.mono: r.coeff}
        for pid, count in tuple(r.num) + tuple(extra):
            for _ in range(count):
                poly = self.poly_mul(poly, self.poly_of[pid])
        return poly

    def factor(self, poly: dict, conds=frozenset()) -> Rat:
        """A polynomial as c * m * f with f normalised (first term 1 * exp(0)); a monomial stays a monomial."""
        if not poly:
            return Rat(Fraction(0), ONE_MONO, conds=conds)
        if len(poly) == 1:
            (m, c), = poly.items()
            return Rat(c, m, conds=conds)
        # Common atom powers (the least power of each atom over all terms) come out as a monomial.
        atoms = None
        for m in poly:
            here = dict(m[0])
            atoms = here if atoms is None else {a: min(p, here.get(a, 0)) for a, p in atoms.items()}
            atoms = {a: p for a, p in atoms.items() if p}
        first = min(poly, key=_mono_order)
        out_mono = (tuple(sorted(atoms.items())), first[1])
        inv = self.mono_inv(out_mono)
        c0 = poly[first]
        scaled = {self.mono_mul(m, inv): c / c0 for m, c in poly.items()}
        return Rat(c0, out_mono, ((self.intern(scaled), 1),), (), conds)

    # -- arithmetic --------------------------------------------------------------------------------------
    @staticmethod
    def _counter(items) -> Counter:
        return Counter(dict(items))

    @staticmethod
    def _items(counter: Counter) -> tuple:
        return tuple(sorted((k, v) for k, v in counter.items() if v > 0))

    def mul(self, a: Rat, b: Rat) -> Rat:
        conds = a.conds | b.conds
        if a.is_zero() or b.is_zero():
            return Rat(Fraction(0), ONE_MONO, conds=conds)
        num = self._counter(a.num) + self._counter(b.num)
        den = self._counter(a.den) + self._counter(b.den)
        common = num & den
        num, den = num - common, den - common
        return Rat(a.coeff * b.coeff, self.mono_mul(a.mono, b.mono), self._items(num), self._items(den), conds)

    def inverse(self, b: Rat) -> Rat:
        if b.is_zero():
            raise NotNormalizable("division by the constant 0")
        conds = set(b.conds)
        for atom, _ in b.mono[0]:
            conds.add(self.intern({(((atom, 1),), 0): Fraction(1)}))
        for pid, _ in b.num:
            if not self.positive_poly[pid]:
                conds.add(pid)
        return Rat(1 / b.coeff, self.mono_inv(b.mono), b.den, b.num, frozenset(conds))

    def add(self, a: Rat, b: Rat) -> Rat:
        conds = a.conds | b.conds
        if a.is_zero():
            return Rat(b.coeff, b.mono, b.num, b.den, conds)
        if b.is_zero():
            return Rat(a.coeff, a.mono, a.num, a.den, conds)
        da, db = self._counter(a.den), self._counter(b.den)
        lcm = da | db
        poly = self.expand(a, self._items(lcm - da))
        for m, c in self.expand(b, self._items(lcm - db)).items():
            v = poly.get(m, 0) + c
            if v:
                poly[m] = v
            else:
                poly.pop(m, None)
        top = self.factor(poly, conds)
        if top.is_zero():
            return top
        den = self._counter(top.den) + lcm
        num = self._counter(top.num)
        common = num & den
        return Rat(top.coeff, top.mono, self._items(num - common), self._items(den - common), conds)

    def neg(self, a: Rat) -> Rat:
        return Rat(-a.coeff, a.mono, a.num, a.den, a.conds)

    def exp(self, a: Rat) -> Rat:
        if a.den:
            # exp of a proper quotient: an opaque positive atom (sound, not complete).
            return Rat(Fraction(1), (((self.atom(("exp", a.key())), 1),), 0), conds=a.conds)
        poly = {m: c for m, c in self.expand(a).items() if c}  # exp(0) = 1: a zero argument is no exponent
        return Rat(Fraction(1), ((), self.intern(poly)), conds=a.conds)

    def max(self, a: Rat, b: Rat) -> Rat:
        args: dict = {}
        conds = a.conds | b.conds
        for x in (a, b):
            info = self._max_args(x)
            if info is None:
                args[x.key()] = x
            else:
                args.update(info)
        if len(args) == 1:
            (only,) = args.values()
            return Rat(only.coeff, only.mono, only.num, only.den, conds)
        if all(not x.mono[0] and x.mono[1] == 0 and not x.num and not x.den for x in args.values()):
            best = max(args.values(), key=lambda x: x.coeff)
            return Rat(best.coeff, best.mono, conds=conds)
        key = frozenset(args)
        atom_id = self.atom(("max", key))
        if len(self.atom_info[atom_id]) == 2:
            self.atom_info[atom_id] = ("max", key, tuple(args.values()))
        return Rat(Fraction(1), (((atom_id, 1),), 0), conds=conds)

    def _max_args(self, x: Rat):
        if x.coeff == 1 and not x.num and not x.den and x.mono[1] == 0 and len(x.mono[0]) == 1:
            (atom_id, power), = x.mono[0]
            info = self.atom_info[atom_id]
            if power == 1 and info[0] == "max":
                return {v.key(): v for v in info[2]}
        return None

    # -- the algebra interface used by the evaluator ------------------------------------------------------
    def scalar(self, op, *x):
        if any(v is NEG_INF for v in x):
            return self._with_neg_inf(op, *x)
        match op:
            case "add":
                return self.add(x[0], x[1])
            case "sub":
                return self.add(x[0], self.neg(x[1]))
            case "mul":
                return self.mul(x[0], x[1])
            case "div":
                return self.mul(x[0], self.inverse(x[1]))
            case "max":
                return self.max(x[0], x[1])
            case "exp":
                return self.exp(x[0])
        raise ValueError(op)

    def _constant(self, r: Rat):
        return r.coeff if not r.mono[0] and r.mono[1] == 0 and not r.num and not r.den else None

    def _with_neg_inf(self, op, *x):
        a = x[0]
        b = x[1] if len(x) > 1 else None
        match op:
            case "exp":
                return Rat(Fraction(0), ONE_MONO)
            case "max":
                return b if a is NEG_INF else a
            case "add" if a is not NEG_INF or b is not NEG_INF:
                return NEG_INF
            case "add":
                return NEG_INF
            case "sub" if a is NEG_INF and b is not NEG_INF:
                return NEG_INF
            case "mul" | "div":
                other = b if a is NEG_INF else a
                if other is NEG_INF:
                    if op == "mul":
                        raise NotNormalizable("(-inf) * (-inf) is +inf")
                    raise NotNormalizable("(-inf) / (-inf) is undefined")
                if op == "div" and a is not NEG_INF:
                    return Rat(Fraction(0), ONE_MONO, conds=a.conds)  # finite / -inf = 0
                c = self._constant(other)
                if c is not None and c > 0:
                    return NEG_INF
                if other.coeff > 0 and not other.mono[0] and not other.den and all(
                    self.positive_poly[p] for p, _ in other.num
                ):
                    return NEG_INF  # -inf times a provably positive value
        raise NotNormalizable(f"{op} with -inf operand(s) leaves the finite-or--inf fragment")

    # -- deciding equality --------------------------------------------------------------------------------
    def equal(self, a, b) -> bool:
        if a is NEG_INF or b is NEG_INF:
            return a is b
        if self.canonical_conds(a.conds) != self.canonical_conds(b.conds):
            return False
        return self.add(a, self.neg(b)).is_zero()

    def canonical_conds(self, conds) -> frozenset:
        out = set()
        for pid in conds:
            r = self.factor(self.poly_of[pid])
            out.update(atom for atom, _ in r.mono[0])
            out.update(("f", p) for p, _ in r.num)
        return frozenset(out)


def _mono_order(m: Mono):
    return (len(m[0]), m[0], m[1])


def all_equal(algebra: NormalForm, left: np.ndarray, right: np.ndarray) -> bool:
    return all(algebra.equal(a, b) for a, b in zip(left.ravel(), right.ravel()))
