"""The normal-form algebra: arithmetic on `Rat`s, the `Algebra` interface the evaluator calls, and equality
(see the package docstring)."""

from __future__ import annotations

import functools
import math
from collections import Counter
from fractions import Fraction

import numpy as np

from .polynomials import Polynomials
from .values import (
    NEG_INF,
    ONE_MONO,
    UNDEF,
    NegInf,
    NotNormalizable,
    Rat,
    exact,
    exact_add,
    exact_div,
    exact_mul,
    least_of,
    neg_inf,
    shift_least,
)


class NormalForm(Polynomials):
    """The normal-form algebra. One instance per check, so both sides share atom and polynomial ids."""

    name = "normal form"

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
        coeff = exact_mul(a.coeff, b.coeff)
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
        return Rat(exact_div(1, b.coeff), self.mono_inv(b.mono), b.den, b.num, frozenset(conds))

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
            rc = exact_div(x.coeff, base.coeff)
            rm = self.mono_mul(x.mono, inv_base)
            part, p_first, _, p_least, _ = self._expand_rel(factors[i])
            shifted = rm != ONE_MONO
            for m, c in part.items():
                if shifted:
                    m = self.mono_mul(m, rm)
                c = exact_mul(c, rc)
                old = poly.get(m)
                if old is None:
                    poly[m] = c
                    if h is not None:
                        h += hash((m, c))
                    continue
                v = exact_add(old, c)
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
            leasts.append(shift_least(p_least, dict(rm[0])) if rm[0] else p_least)
        hint = None
        if not cancelled:
            # No term cancelled: the terms of the sum are the union of the parts' terms.
            first = min((f for f, _ in firsts), key=self._order)
            hint = (first, least_of(leasts))
        top = self.factor(poly, conds, hint, h)
        if top.is_zero():
            return top
        coeff = exact_mul(base.coeff, top.coeff)
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
        poly = self.expand(a)
        powers = self._log_powers(poly)
        if powers:
            return self._exp_of_logs(poly, powers, a.conds)
        eid = self.intern(poly)
        self._name_coordinates(eid)
        return Rat(1, ((), eid), conds=a.conds)

    def _log_powers(self, poly: dict) -> list:
        """The terms k * log(f) of an exponent with k an integer and log(f) one of the log atoms that `log` makes:
        [(monomial, k, ("pid", f) or ("const", c))]. Only those leave the exponent (`_exp_of_logs`)."""
        out = []
        for mono, k in poly.items():
            if mono[1] != 0 or len(mono[0]) != 1 or mono[0][0][1] != 1 or not _integral(k):
                continue
            key = self.atom_info[mono[0][0][0]]
            if isinstance(key, tuple) and key and key[0] == "log":
                out.append((mono, int(k), ("const", key[2]) if key[1] == "const" else ("pid", key[1])))
        return out

    def _exp_of_logs(self, poly: dict, powers: list, conds) -> Rat:
        """exp(R + sum k_i log(f_i)) = exp(R) * prod f_i^k_i, for integers k_i.

        Why it is sound: `log` makes the atom log(f) only for a canonical factor f that is provably positive
        (`positive`: a sum of exponentials with positive coefficients), and log(c) only for a rational c > 0.
        For y > 0, exp(log y) = y; exp(a + b) = exp(a) * exp(b) for all reals; so exp(k log y) = y^k for every
        integer k (k < 0: 1/y^-k, y^-k > 0, so the division needs no condition). A non-integer k (y^(1/2)) or a
        log atom multiplied by anything else (x * log y) is left in the exponent, opaque as before. The factor
        f is the canonical one the log was taken of, so f^k multiplies into the form like any factor and
        cancels against an equal factor: exp(x - log(SD)) and exp(x) / SD get one form (the recomputation of
        softmax from the stored log-sum-exp, FlashAttention-2's backward)."""
        rest = dict(poly)
        out = Rat(1, ONE_MONO, conds=conds)
        for mono, k, (kind, what) in powers:
            del rest[mono]
            if kind == "const":
                part = Rat(exact(Fraction(what) ** k), ONE_MONO)
            else:
                part = Rat(1, ONE_MONO, ((what, k),), ()) if k > 0 else Rat(1, ONE_MONO, (), ((what, -k),))
            out = self.mul(out, part)
        if rest:
            eid = self.intern(rest)
            self._name_coordinates(eid)
            out = self.mul(out, Rat(1, ((), eid)))
        return out

    def log(self, a: Rat):
        """log of a provably positive value, split along its canonical form:
        log(c * exp(P) * f1.../g1...) = log(c) + P + log(f1) + ... - log(g1) - ...; log(c) for a constant and
        log(f) for a canonical positive factor are opaque atoms (a function of a canonical value, so equal
        arguments give equal atoms). log(0) = -inf. Anything not provably positive is outside the form."""
        if a.is_zero():
            return neg_inf(a.conds)
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
        if any(type(v) is NegInf for v in x):
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
        a_inf, b_inf = type(a) is NegInf, type(b) is NegInf
        match op:
            case "exp" | "fin":
                return Rat(0, ONE_MONO, conds=conds)  # exp(-inf) = 0, fin(-inf) = 0
            case "log":
                return UNDEF  # log(-inf): no real logarithm
            case "max":
                other = b if a_inf else a
                if type(other) is NegInf:
                    return neg_inf(conds)
                return Rat(other.coeff, other.mono, other.num, other.den, conds) if conds != other.conds else other
            case "add":
                return neg_inf(conds)
            case "sub" if a_inf and not b_inf:
                return neg_inf(conds)
            case "sub" if a_inf and b_inf:
                return UNDEF  # (-inf) - (-inf)
            case "mul" | "div":
                other = b if a_inf else a
                if type(other) is NegInf:
                    if op == "mul":
                        raise NotNormalizable("(-inf) * (-inf) is +inf")
                    return UNDEF  # (-inf) / (-inf)
                if op == "div" and not a_inf:
                    return Rat(0, ONE_MONO, conds=conds)  # finite / -inf = 0
                c = self._constant(other)
                if c is not None and c > 0:
                    return neg_inf(conds)
                if other.is_zero() and op == "mul":
                    return UNDEF  # 0 * (-inf)
                if other.coeff > 0 and not other.mono[0] and not other.den and all(
                    self.positive(p) for p, _ in other.num
                ):
                    return neg_inf(conds)  # -inf times a provably positive value
        raise NotNormalizable(f"{op} with -inf operand(s) leaves the finite-or--inf fragment")

    # -- deciding equality --------------------------------------------------------------------------------
    def equal(self, a, b) -> bool:
        if a is UNDEF or b is UNDEF:
            return a is b  # undefined equals undefined; a defined-somewhere value is not proved equal to it
        if type(a) is NegInf or type(b) is NegInf:
            if type(a) is not type(b):
                return False
            return self.canonical_conds(a.conds) == self.canonical_conds(b.conds)
        if self.canonical_conds(a.conds) != self.canonical_conds(b.conds):
            return False
        return self.add(a, self.neg(b)).is_zero()

    def canonical_conds(self, conds) -> frozenset:
        out: set[object] = set()
        for pid in conds:
            r = self.factor(self.poly_of[pid])
            out.update(atom for atom, _ in r.mono[0])
            out.update(("f", p) for p, _ in r.num)
        return frozenset(out)


def all_equal(algebra: NormalForm, left: np.ndarray, right: np.ndarray) -> bool:
    return all(algebra.equal(a, b) for a, b in zip(left.ravel(), right.ravel()))


def _integral(k) -> bool:
    return isinstance(k, int) or (isinstance(k, Fraction) and k.denominator == 1)
