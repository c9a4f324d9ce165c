"""Back end: the normal form, our fast prover for sums, products, quotients, max and exp.

Every scalar is brought to a canonical form over the reals:

    value = c * m * (f1 * f2 * ...) / (g1 * g2 * ...)        subject to the conditions  h1 != 0, h2 != 0, ...

- an *atom* is an input element (finite real) or a max-term: `max` of a set of normal forms, flattened,
  deduplicated, with -inf dropped (max is associative, commutative, idempotent, and -inf is its identity);
  the set is unordered, so `max(a, b)` and `max(b, a)` are the same atom; `log(c)` of a constant c > 0 and
  `log(f)` of a normalised positive factor f (below) are opaque atoms too;
- `m` is a Laurent monomial in atoms times `exp(P)` for a polynomial P (`exp(a) * exp(b) = exp(a + b)` and
  `exp(0) = 1`: every exp is merged into one exponent per monomial, so PRM-style corrections cancel);
- `c` is an exact rational (a Python int whenever it is integral, else a `Fraction`);
- each f_i, g_i is a polynomial with two or more terms, normalised so that it does not depend on how it was
  scaled: the least power of every atom over its terms (an absent atom has power 0) is factored out into `m`,
  and so is `coefficient * exp(P)` of its *first* term, leaving that term with coefficient 1 and `exp(0)`.
  Exponentials may be factored out freely because exp is never 0, atoms only with their least power (a
  negative power only arises from a division by that atom, made under the condition below).
  "First" is the least term in a monomial order that is compatible with multiplication (lexicographic on
  the exponent vector of the atoms, then on the coefficient vector of P), so multiplying a polynomial by a
  monomial never changes its normalised factor: `(X / D) * D = X` cancels however D was scaled. Equal
  factors in the numerator and the denominator cancel, which holds because division by D was only allowed
  under the condition D != 0 (recorded below, or implied by D > 0);
- a division by anything that is not provably positive (a sum of exponentials with positive coefficients is)
  records the condition `divisor != 0`. The value is *undefined* where a condition fails.

A sum over a rank (`R_add`) whose terms share one denominator is added in one step, and a max over a rank
(`R_max`) is flattened in one step; both give exactly the form that adding (or taking max) pairwise in index
order gives, without its quadratic cost.

Two sides are proved equal when their conditions are the same set and `lhs - rhs` normalises to 0: then
they are undefined at the same points and equal everywhere else. A value undefined everywhere (`x / 0`,
`(-inf) - (-inf)`, `(-inf) / (-inf)`, `0 * (-inf)`, `log(-inf)`) is `UNDEF`: it propagates through every
operation and is equal only to `UNDEF` (NaN semantics). Anything the form cannot express (a NaN or +inf
constant, `+inf`, `-inf` times a value of unknown sign, `log` of a value not provably positive) raises
`NotNormalizable`; the driver then falls back to numeric search and Z3 and never concludes CERTIFIED from
this module.

-inf is a separate value `NEG_INF` (inputs are finite, so an atom is never -inf): `max(-inf, x) = x`,
`-inf + x = -inf`, `exp(-inf) = 0`, `fin(-inf) = 0` (and `fin(x) = x` otherwise), `-inf * c = -inf` for a
constant c > 0 (or a provably positive c), `log(0) = -inf`; a provably positive value is
`c * exp(P) * f1... / g1...` with c > 0 and positive factors, and its log is
`log(c) + P + log(f1) + ... - log(g1) - ...` (atoms as above). A -inf
keeps the conditions of every value it absorbed (`-inf + x / y` is undefined where y = 0), so `NEG_INF` is the
-inf without conditions and `is_neg_inf` recognises every -inf.

Speed (see bench/run.py): polynomials are interned by content under an additive hash that a sum updates
term by term, so extending a long running sum by a few terms costs a dict copy, not a re-expansion; the
first term and the least atom powers of a sum are derived from those of its parts unless some term cancels
(then the sum is rescanned); `exp(P) * exp(Q)` is cached per pair of exponent ids.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from fractions import Fraction

import numpy as np

from .evaluate import ObjectAlgebra


class NotNormalizable(Exception):
    """The expression leaves the fragment the normal form decides; not a verdict."""


class _NegInf:
    """-inf, defined where `conds` hold (see the module docstring)."""

    __slots__ = ("conds",)

    def __init__(self, conds=frozenset()):
        self.conds = conds

    def __repr__(self) -> str:
        return f"-inf (if {set(self.conds)})" if self.conds else "-inf"


NEG_INF = _NegInf()


class _Undef:
    """An undefined value (x / 0, (-inf) - (-inf), 0 * (-inf), log of -inf): undefined everywhere, since a
    failing condition makes a value undefined too. Two undefined values are equal (both are NaN)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "undefined"


UNDEF = _Undef()


def is_neg_inf(v) -> bool:
    return type(v) is _NegInf


def _neg_inf(conds) -> _NegInf:
    return _NegInf(conds) if conds else NEG_INF

# A monomial: (powers, exp_id). powers is a sorted tuple of (atom_id, nonzero int); exp_id names the
# polynomial P of the factor exp(P) (0 = the zero polynomial, i.e. no exponential).
Mono = tuple
ONE_MONO: Mono = ((), 0)
_SENTINEL = ((0,),)


def _q(x):
    """An exact rational in its canonical Python type: int when integral."""
    if type(x) is Fraction and x.denominator == 1:
        return x.numerator
    return x


def _div(a, b):
    if b == 1:
        return a
    if b == -1:
        return -a
    if type(a) is int and type(b) is int:
        q, r = divmod(a, b)
        return q if r == 0 else Fraction(a, b)
    return _q(Fraction(a) / b)


def _mul(a, b):
    if type(a) is int and type(b) is int:
        return a * b
    return _q(a * b)


def _add(a, b):
    if type(a) is int and type(b) is int:
        return a + b
    return _q(a + b)


def _lex_key(items):
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


class NormalForm(ObjectAlgebra):
    """The normal-form algebra. One instance per check, so both sides share atom and polynomial ids."""

    name = "normal form"

    def __init__(self):
        super().__init__()
        self.atoms: dict[object, int] = {}
        self.atom_info: list[object] = [None]
        self.poly_of: list[dict] = [{}]
        self._poly_hash: list[int] = [0]
        self._by_hash: dict[int, object] = {0: 0}      # content hash -> poly id, or a list of ids on collision
        self._positive: dict[int, bool] = {}
        self._meta: dict[int, tuple] = {}              # poly id -> (first mono, its coeff, least atom powers)
        self._exp_sum: dict[tuple, int] = {}           # (a, b, sign) -> id of P_a + sign * P_b
        self._mono_id: dict[Mono, int] = {}            # coordinates of exponent polynomials, for the order
        self._exp_key: dict[int, tuple] = {}
        self._pow_key: dict[tuple, tuple] = {}
        self._rids: dict[tuple, int] = {}              # Rat.key() -> small int (ids of max arguments)
        self._max_flat: dict[int, dict] = {}           # max atom id -> {rid: argument}

    # -- interning ---------------------------------------------------------------------------------------
    def atom(self, key) -> int:
        found = self.atoms.get(key)
        if found is None:
            found = len(self.atom_info)
            self.atoms[key] = found
            self.atom_info.append(key)
        return found

    def intern(self, poly: dict, h: int | None = None) -> int:
        """The id of `poly` (by content). `h` is its content hash if the caller already knows it."""
        if h is None:
            h = sum(map(hash, poly.items()))
        found = self._by_hash.get(h)
        if found is not None:
            for pid in (found if type(found) is list else (found,)):
                if self.poly_of[pid] == poly:
                    return pid
        pid = len(self.poly_of)
        self.poly_of.append(poly)
        self._poly_hash.append(h)
        if found is None:
            self._by_hash[h] = pid
        elif type(found) is list:
            found.append(pid)
        else:
            self._by_hash[h] = [found, pid]
        return pid

    def positive(self, pid: int) -> bool:
        """A sum of exponentials (no atoms) with positive coefficients: provably > 0."""
        found = self._positive.get(pid)
        if found is None:
            found = self._positive[pid] = all(c > 0 and not m[0] for m, c in self.poly_of[pid].items())
        return found

    def input(self, name: str, index: tuple) -> Rat:
        return self.from_atom(self.atom(("in", name, index)))

    def from_atom(self, atom_id: int) -> Rat:
        return Rat(1, (((atom_id, 1),), 0))

    def const(self, value):
        if value == -math.inf:
            return NEG_INF
        if not math.isfinite(value):
            raise NotNormalizable(f"constant {value}")
        return Rat(_q(Fraction(value)), ONE_MONO)

    # -- the monomial order --------------------------------------------------------------------------------
    def _exp_order(self, eid: int) -> tuple:
        key = self._exp_key.get(eid)
        if key is None:
            ids = self._mono_id
            items = []
            for m, c in self.poly_of[eid].items():
                i = ids.get(m)
                if i is None:
                    i = ids[m] = len(ids)
                items.append((i, c))
            key = self._exp_key[eid] = _lex_key(items)
        return key

    def _order(self, m: Mono) -> tuple:
        """Sort key of a monomial: atom exponents, then the exponent polynomial (both translation invariant)."""
        pk = self._pow_key.get(m[0])
        if pk is None:
            pk = self._pow_key[m[0]] = _lex_key(m[0]) if m[0] else _SENTINEL
        return (pk, self._exp_order(m[1]) if m[1] else _SENTINEL)

    def _name_coordinates(self, eid: int) -> None:
        # Number the monomials of a new exponent in creation order: later inputs get larger coordinates,
        # so a running sum keeps its first term and is not rescaled at every step (speed only).
        ids = self._mono_id
        for m in self.poly_of[eid]:
            if m not in ids:
                ids[m] = len(ids)

    # -- monomials and polynomials -----------------------------------------------------------------------
    def exp_add(self, a: int, b: int, sign: int = 1) -> int:
        if b == 0:
            return a
        if a == 0 and sign == 1:
            return b
        key = (a, b, sign)
        found = self._exp_sum.get(key)
        if found is not None:
            return found
        out = dict(self.poly_of[a])
        for m, c in self.poly_of[b].items():
            v = out.get(m, 0) + sign * c
            if v:
                out[m] = _q(v)
            else:
                out.pop(m, None)
        found = self._exp_sum[key] = self.intern(out)
        return found

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
                v = _add(out.get(m, 0), _mul(c1, c2))
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

    def _poly_meta(self, pid: int) -> tuple:
        meta = self._meta.get(pid)
        if meta is None:
            poly = self.poly_of[pid]
            first = min(poly, key=self._order)
            meta = self._meta[pid] = (first, poly[first], _least_powers(poly))
        return meta

    def _expand_rel(self, factors) -> tuple:
        """prod(factors) as (poly, first mono, its coeff, least atom powers, content hash or None).

        The first term of a product is the product of the first terms and the least powers add up (the
        order is compatible with multiplication), so neither needs a scan. The poly may be shared: copy it
        before changing it.
        """
        if not factors:
            return {ONE_MONO: 1}, ONE_MONO, 1, {}, None
        if len(factors) == 1 and factors[0][1] == 1:
            pid = factors[0][0]
            first, c0, least = self._poly_meta(pid)
            return self.poly_of[pid], first, c0, least, self._poly_hash[pid]
        poly, first, c0, least = {ONE_MONO: 1}, ONE_MONO, 1, {}
        for pid, count in factors:
            f_first, f_c0, f_least = self._poly_meta(pid)
            for _ in range(count):
                poly = self.poly_mul(poly, self.poly_of[pid])
                first, c0 = self.mono_mul(first, f_first), _mul(c0, f_c0)
                least = _shift(least, f_least)
        return poly, first, c0, least, None

    def factor(self, poly: dict, conds=frozenset(), hint=None, h=None) -> Rat:
        """A polynomial as c * m * f with f normalised (see the module docstring); a monomial stays a monomial.

        `hint` = (first mono, least atom powers) of `poly` when the caller has derived them; `h` = its
        content hash when known. Either only saves a scan: any choice of m gives the same value.
        """
        if not poly:
            return Rat(0, ONE_MONO, conds=conds)
        if len(poly) == 1:
            (m, c), = poly.items()
            return Rat(c, m, conds=conds)
        if hint is None or hint[0] not in poly:
            first, least = min(poly, key=self._order), _least_powers(poly)
        else:
            first, least = hint
        out_mono = (tuple(sorted(least.items())), first[1])
        c0 = poly[first]
        if out_mono == ONE_MONO and c0 == 1:
            scaled = poly
        else:
            inv = self.mono_inv(out_mono)
            if c0 == 1:
                scaled = {self.mono_mul(m, inv): c for m, c in poly.items()}
            else:
                scaled = {self.mono_mul(m, inv): _div(c, c0) for m, c in poly.items()}
            first = self.mono_mul(first, inv)
            h = None
        pid = self.intern(scaled, h)
        if pid not in self._meta:
            self._meta[pid] = (first, 1, {})
        return Rat(c0, out_mono, ((pid, 1),), (), conds)

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
            return Rat(0, ONE_MONO, conds=conds)
        mono = self.mono_mul(a.mono, b.mono)
        coeff = _mul(a.coeff, b.coeff)
        if not a.num and not a.den:
            return Rat(coeff, mono, b.num, b.den, conds)
        if not b.num and not b.den:
            return Rat(coeff, mono, a.num, a.den, conds)
        num = self._counter(a.num) + self._counter(b.num)
        den = self._counter(a.den) + self._counter(b.den)
        common = num & den
        num, den = num - common, den - common
        return Rat(coeff, mono, self._items(num), self._items(den), conds)

    def inverse(self, b: Rat) -> Rat:
        if b.is_zero():
            raise NotNormalizable("division by the constant 0")
        conds = set(b.conds)
        for atom, _ in b.mono[0]:
            conds.add(self.intern({(((atom, 1),), 0): 1}))
        for pid, _ in b.num:
            if not self.positive(pid):
                conds.add(pid)
        return Rat(_div(1, b.coeff), self.mono_inv(b.mono), b.den, b.num, frozenset(conds))

    def add(self, a: Rat, b: Rat) -> Rat:
        return self._sum((a, b))

    def _sum(self, xs) -> Rat:
        """x1 + x2 + ... over the least common multiple of the denominators, normalised once.

        Computed relative to the term with the largest expansion (`base`): sum = base.c * base.m * S / lcm
        with S = sum over x of (x.c / base.c) * (x.m / base.m) * x.num * (lcm / x.den). The normalised factor
        of S is the one of the absolute numerator (the order is compatible with multiplication), so this is
        the same form, without rescaling the base's terms.
        """
        conds = frozenset().union(*(x.conds for x in xs)) if len(xs) > 2 else xs[0].conds | xs[1].conds
        nz = [x for x in xs if x.coeff != 0]
        if not nz:
            return Rat(0, ONE_MONO, conds=conds)
        if len(nz) == 1:
            x = nz[0]
            return Rat(x.coeff, x.mono, x.num, x.den, conds)
        den0 = nz[0].den
        if all(x.den == den0 for x in nz):
            lcm = self._counter(den0)
            extras = [() for _ in nz]
        else:
            dens = [self._counter(x.den) for x in nz]
            lcm = functools.reduce(lambda p, q: p | q, dens)
            extras = [self._items(lcm - d) for d in dens]
        factors = [tuple(x.num) + tuple(e) for x, e in zip(nz, extras)]
        sizes = [math.prod(len(self.poly_of[p]) ** k for p, k in f) for f in factors]
        ib = max(range(len(nz)), key=sizes.__getitem__)
        base = nz[ib]
        poly, first, c0, least, h = self._expand_rel(factors[ib])
        poly = dict(poly)
        firsts = [(first, c0)]
        leasts = [least]
        inv_base = self.mono_inv(base.mono)
        cancelled = False
        for i, x in enumerate(nz):
            if i == ib:
                continue
            rc = _div(x.coeff, base.coeff)
            rm = self.mono_mul(x.mono, inv_base)
            part, p_first, p_c0, p_least, _ = self._expand_rel(factors[i])
            shifted = rm != ONE_MONO
            for m, c in part.items():
                if shifted:
                    m = self.mono_mul(m, rm)
                c = _mul(c, rc)
                old = poly.get(m)
                if old is None:
                    poly[m] = c
                    if h is not None:
                        h += hash((m, c))
                    continue
                v = _add(old, c)
                if h is not None:
                    h -= hash((m, old))
                if v:
                    poly[m] = v
                    if h is not None:
                        h += hash((m, v))
                else:
                    del poly[m]
                    cancelled = True
            firsts.append((self.mono_mul(p_first, rm) if shifted else p_first, None))
            leasts.append(_shift(p_least, dict(rm[0])) if rm[0] else p_least)
        hint = None
        if not cancelled:
            # No term cancelled: the terms of the sum are the union of the parts' terms.
            first = min((f for f, _ in firsts), key=self._order)
            hint = (first, _least_of(leasts))
        top = self.factor(poly, conds, hint, h)
        if top.is_zero():
            return top
        coeff = _mul(base.coeff, top.coeff)
        mono = self.mono_mul(base.mono, top.mono)
        if not lcm:
            return Rat(coeff, mono, top.num, (), conds)
        num = self._counter(top.num)
        common = num & lcm
        return Rat(coeff, mono, self._items(num - common), self._items(lcm - common), conds)

    def neg(self, a: Rat) -> Rat:
        return Rat(-a.coeff, a.mono, a.num, a.den, a.conds)

    def exp(self, a: Rat) -> Rat:
        if a.den:
            # exp of a proper quotient: an opaque positive atom (sound, not complete).
            return Rat(1, (((self.atom(("exp", a.key())), 1),), 0), conds=a.conds)
        if a.is_zero():
            return Rat(1, ONE_MONO, conds=a.conds)  # exp(0) = 1
        eid = self.intern(self.expand(a))
        self._name_coordinates(eid)
        return Rat(1, ((), eid), conds=a.conds)

    def log(self, a: Rat):
        """log of a provably positive value, split along its canonical form:
        log(c * exp(P) * f1.../g1...) = log(c) + P + log(f1) + ... - log(g1) - ...; log(c) for a constant and
        log(f) for a canonical positive factor are opaque atoms (a function of a canonical value, so equal
        arguments give equal atoms). log(0) = -inf. Anything not provably positive is outside the form."""
        if a.is_zero():
            return _neg_inf(a.conds)
        if not (a.coeff > 0 and not a.mono[0] and all(self.positive(p) for p, _ in a.num + a.den)):
            raise NotNormalizable("log of a value that is not provably positive")
        parts = []
        if a.coeff != 1:
            parts.append(self.from_atom(self.atom(("log", "const", a.coeff))))
        if a.mono[1]:
            parts.append(self.factor(dict(self.poly_of[a.mono[1]])))
        for pid, count in a.num:
            parts.append(Rat(count, (((self.atom(("log", pid)), 1),), 0)))
        for pid, count in a.den:
            parts.append(Rat(-count, (((self.atom(("log", pid)), 1),), 0)))
        total = self._sum(parts) if len(parts) > 1 else parts[0] if parts else Rat(0, ONE_MONO)
        return Rat(total.coeff, total.mono, total.num, total.den, total.conds | a.conds)

    def rid(self, x: Rat) -> int:
        """A small int naming x's value (its key), so that max-sets hash quickly."""
        if x._rid is None:
            key = x.key()
            found = self._rids.get(key)
            if found is None:
                found = self._rids[key] = len(self._rids)
            x._rid = found
        return x._rid

    def _flat(self, x: Rat) -> dict:
        """The arguments of x if x is a max-term, else {x}; as {rid: value}. Do not modify the result."""
        if x.coeff == 1 and not x.num and not x.den and x.mono[1] == 0 and len(x.mono[0]) == 1:
            (atom_id, power), = x.mono[0]
            if power == 1:
                found = self._max_flat.get(atom_id)
                if found is not None:
                    return found
        return {self.rid(x): x}

    def _is_const(self, x: Rat) -> bool:
        return not x.mono[0] and x.mono[1] == 0 and not x.num and not x.den

    def _max_of(self, args: dict, conds) -> Rat:
        if len(args) == 1:
            (only,) = args.values()
            return Rat(only.coeff, only.mono, only.num, only.den, conds)
        if all(self._is_const(x) for x in args.values()):
            best = max(args.values(), key=lambda x: x.coeff)
            return Rat(best.coeff, best.mono, conds=conds)
        key = ("max", frozenset(args))
        atom_id = self.atoms.get(key)
        if atom_id is None:
            atom_id = self.atom(key)
            self.atom_info[atom_id] = ("max", key[1], tuple(args.values()))
            self._max_flat[atom_id] = args
        return Rat(1, (((atom_id, 1),), 0), conds=conds)

    def max(self, a: Rat, b: Rat) -> Rat:
        args = dict(self._flat(a))
        args.update(self._flat(b))
        return self._max_of(args, a.conds | b.conds)

    def _max_fold(self, xs) -> Rat:
        """max(...max(max(x1, x2), x3)..., xn) for finite xs, without building the n - 2 inner max-terms."""
        args = dict(self._flat(xs[0]))
        all_const = all(self._is_const(v) for v in args.values())
        for x in xs[1:]:
            more = self._flat(x)
            args.update(more)
            if all_const:
                all_const = all(self._is_const(v) for v in more.values())
                if all_const and len(args) > 1:  # pairwise max of constants is a constant
                    best = max(args.values(), key=lambda v: v.coeff)
                    args = {self.rid(best): best}
        return self._max_of(args, frozenset().union(*(x.conds for x in xs)))

    # -- the algebra interface used by the evaluator ------------------------------------------------------
    def scalar(self, op, *x):
        if any(v is UNDEF for v in x):
            return UNDEF  # undefined propagates through every operation, max included (NaN semantics)
        if any(type(v) is _NegInf for v in x):
            return self._with_neg_inf(op, *x)
        match op:
            case "add":
                return self.add(x[0], x[1])
            case "sub":
                return self.add(x[0], self.neg(x[1]))
            case "mul":
                return self.mul(x[0], x[1])
            case "div":
                if x[1].is_zero():
                    return UNDEF  # x / 0
                return self.mul(x[0], self.inverse(x[1]))
            case "max":
                return self.max(x[0], x[1])
            case "exp":
                return self.exp(x[0])
            case "fin":
                return x[0]  # fin(x) = x for finite x
            case "log":
                return self.log(x[0])
        raise ValueError(op)

    def reduce(self, op, data, axis):
        """R_add / R_max: the pairwise fold in index order, computed in one step where that is exact."""
        if op not in ("add", "max") or data.shape[axis] <= 1:
            return super().reduce(op, data, axis)
        moved = np.moveaxis(data, axis, -1)
        out = np.empty(moved.shape[:-1], dtype=object)
        for idx in np.ndindex(*out.shape):
            out[idx] = self._reduce_one(op, list(moved[idx]))
        return out

    def _reduce_one(self, op, xs):
        if not all(type(x) is Rat for x in xs):
            if op == "max":
                finite = [x for x in xs if x is not NEG_INF]
                if all(type(x) is Rat for x in finite):
                    # max(-inf, x) = x returns x itself, so a -inf without conditions drops out of the fold
                    return NEG_INF if not finite else finite[0] if len(finite) == 1 else self._max_fold(finite)
            return functools.reduce(lambda a, b: self.scalar(op, a, b), xs)
        if op == "max":
            return self._max_fold(xs)
        den0 = xs[0].den
        if all(x.den == den0 for x in xs):
            return self._sum(xs)
        return functools.reduce(self.add, xs)

    def _constant(self, r: Rat):
        return r.coeff if not r.mono[0] and r.mono[1] == 0 and not r.num and not r.den else None

    def _with_neg_inf(self, op, *x):
        a = x[0]
        b = x[1] if len(x) > 1 else None
        conds = a.conds | b.conds if b is not None else a.conds
        a_inf, b_inf = type(a) is _NegInf, type(b) is _NegInf
        match op:
            case "exp" | "fin":
                return Rat(0, ONE_MONO, conds=conds)  # exp(-inf) = 0, fin(-inf) = 0
            case "log":
                return UNDEF  # log(-inf): no real logarithm
            case "max":
                other = b if a_inf else a
                if type(other) is _NegInf:
                    return _neg_inf(conds)
                return Rat(other.coeff, other.mono, other.num, other.den, conds) if conds != other.conds else other
            case "add":
                return _neg_inf(conds)
            case "sub" if a_inf and not b_inf:
                return _neg_inf(conds)
            case "sub" if a_inf and b_inf:
                return UNDEF  # (-inf) - (-inf)
            case "mul" | "div":
                other = b if a_inf else a
                if type(other) is _NegInf:
                    if op == "mul":
                        raise NotNormalizable("(-inf) * (-inf) is +inf")
                    return UNDEF  # (-inf) / (-inf)
                if op == "div" and not a_inf:
                    return Rat(0, ONE_MONO, conds=conds)  # finite / -inf = 0
                c = self._constant(other)
                if c is not None and c > 0:
                    return _neg_inf(conds)
                if other.is_zero() and op == "mul":
                    return UNDEF  # 0 * (-inf)
                if other.coeff > 0 and not other.mono[0] and not other.den and all(
                    self.positive(p) for p, _ in other.num
                ):
                    return _neg_inf(conds)  # -inf times a provably positive value
        raise NotNormalizable(f"{op} with -inf operand(s) leaves the finite-or--inf fragment")

    # -- deciding equality --------------------------------------------------------------------------------
    def equal(self, a, b) -> bool:
        if a is UNDEF or b is UNDEF:
            return a is b  # undefined equals undefined; a defined-somewhere value is not proved equal to it
        if type(a) is _NegInf or type(b) is _NegInf:
            if type(a) is not type(b):
                return False
            return self.canonical_conds(a.conds) == self.canonical_conds(b.conds)
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


def _least_powers(poly: dict) -> dict:
    """{atom: least power over the terms of poly} (an absent atom counts as power 0), nonzero entries only."""
    return _least_of([powers for powers, _ in poly])


def _shift(least: dict, by: dict) -> dict:
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


def _least_of(parts: list) -> dict:
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


def all_equal(algebra: NormalForm, left: np.ndarray, right: np.ndarray) -> bool:
    return all(algebra.equal(a, b) for a, b in zip(left.ravel(), right.ravel()))
