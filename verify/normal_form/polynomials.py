"""Interning of atoms and polynomials, the monomial order, and the normalisation of a polynomial into a `Rat`
(the first half of the normal-form algebra; the arithmetic is in `algebra.py`)."""

from __future__ import annotations

import math
from fractions import Fraction

from ..evaluate import ObjectAlgebra
from .values import (
    NEG_INF,
    ONE_MONO,
    POS_INF,
    SENTINEL,
    Mono,
    NotNormalizable,
    Rat,
    exact,
    exact_add,
    exact_div,
    exact_mul,
    least_powers,
    lex_key,
    shift_least,
)


class Polynomials(ObjectAlgebra):
    """Atoms, polynomials and their ids; one instance per check, so both sides share them."""

    def __init__(self):
        super().__init__()
        self.atoms: dict[object, int] = {}
        self.atom_info: list[object] = [None]
        self.poly_of: list[dict] = [{}]
        self._poly_hash: list[int] = [0]
        self._by_hash: dict[int, int | list[int]] = {0: 0}      # content hash -> poly id, or a list of ids on collision
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
            for pid in (found if isinstance(found, list) else (found,)):
                if self.poly_of[pid] == poly:
                    return pid
        pid = len(self.poly_of)
        self.poly_of.append(poly)
        self._poly_hash.append(h)
        if found is None:
            self._by_hash[h] = pid
        elif isinstance(found, list):
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
        if value == math.inf:
            return POS_INF
        if not math.isfinite(value):
            raise NotNormalizable(f"constant {value}")
        return Rat(exact(Fraction(value)), ONE_MONO)

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
            key = self._exp_key[eid] = lex_key(items)
        return key

    def _order(self, m: Mono) -> tuple:
        """Sort key of a monomial: atom exponents, then the exponent polynomial (both translation invariant)."""
        pk = self._pow_key.get(m[0])
        if pk is None:
            pk = self._pow_key[m[0]] = lex_key(m[0]) if m[0] else SENTINEL
        return (pk, self._exp_order(m[1]) if m[1] else SENTINEL)

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
                out[m] = exact(v)
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
                v = exact_add(out.get(m, 0), exact_mul(c1, c2))
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
            meta = self._meta[pid] = (first, poly[first], least_powers(poly))
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
                first, c0 = self.mono_mul(first, f_first), exact_mul(c0, f_c0)
                least = shift_least(least, f_least)
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
            first, least = min(poly, key=self._order), least_powers(poly)
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
                scaled = {self.mono_mul(m, inv): exact_div(c, c0) for m, c in poly.items()}
            first = self.mono_mul(first, inv)
            h = None
        pid = self.intern(scaled, h)
        if pid not in self._meta:
            self._meta[pid] = (first, 1, {})
        return Rat(c0, out_mono, ((pid, 1),), (), conds)

