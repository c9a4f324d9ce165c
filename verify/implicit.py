"""Implicit tiling: the reading of a rule that the seed's author meant.

The seed's rule file applies m1/m0 operators to rank-m tensors, e.g. `(rewrite (R_max_m x) (R_max_m1 (R_max_m0 x)))`:
read with strict shapes, x has rank m on the left and is reduced over m0 on the right, which is ill-ranked. The
author's reading: a rank-m tensor stands for its (m1, m0) view wherever an m1/m0 operator consumes it, and an
(m1, m0) result stands for the rank-m tensor it unsplits to. This module makes that reading explicit, so the claim
that is checked is an ordinary, strictly ranked one:

- the split pairs of a rule are the pairs its own `T_split`/`T_unsplit` operators name, and every rank pair
  (x1, x0) the rule mentions, split from x (m1, m0 from m; likewise for any rank);
- a pattern variable gets the largest rank set consistent with every occurrence, where an occurrence under an
  operator over (m1, m0) allows rank m (the two views are one tensor);
- where an operator needs m1 and m0 (a map over them, a reduce of either) and gets a rank-m operand, the operand
  is wrapped in `T_split_m_m1m0` (tile count free: the checker sweeps M1 and M0); where an operator needs m and gets
  an (m1, m0) operand, the operand is wrapped in `T_unsplit_m1m0_m`; a side whose result has (m1, m0) where the
  other side has m is unsplit.

The claim checked is then: for every size M1, M0 in the bound (m = m1*M0 + m0, m1 major, as `T_split` defines)
and every finite real value of the pattern variables at their ranks, lhs = rhs after these insertions. Split and
unsplit are bijections, so a rule whose variables are read as (m1, m0) tensors instead claims the same thing.
The reading is used when the strict reading is ill-ranked, or when it names m and m1/m0 with no split or unsplit
between them (strictly, their sizes would be unrelated: M need not be M1*M0), and the inserted splits and unsplits
make it well-ranked; `; shapes: strict` in a file or `--strict-shapes` turns it off. The verdict says so, and the
claim's description shows both sides as checked.
"""

from __future__ import annotations

import re
from dataclasses import replace

from . import ir
from .errors import ShapeError
from .printer import Printer
from .shapes import RankChecker, substitute_inputs

READING = "read with implicit tiling (m = m1*M0 + m0)"
TILE_RE = re.compile(r"([a-z][0-9]*)([01])")


def split_pairs(exprs) -> dict[str, tuple[str, str]]:
    """base rank -> (outer, inner): the view an inserted split or unsplit takes, for every base x whose tile
    ranks x1 or x0 the rule mentions (in an operator, a split or an unsplit).

    The view is always x = x1*X0 + x0 (x1 major), whatever order the rule's own splits name the ranks in: the
    reading is documented (and its verdict says) m = m1*M0 + m0. Taking the order from the rule's own
    `T_unsplit_m0m1_m` would insert the inverse `T_split_m_m0m1`, so the layout bug the rule states would cancel
    out and be certified. Ranks not named x1/x0 (`T_split_m_ab`) get no implicit view: which of a, b is major is
    not fixed by their names, and the strict reading (which shape-checks) decides."""
    pairs: dict[str, tuple[str, str]] = {}
    for r in ir.rank_names(exprs):
        m = TILE_RE.fullmatch(r)
        if m:
            pairs.setdefault(m.group(1), (m.group(1) + "1", m.group(1) + "0"))
    return pairs


class _Reading:
    def __init__(self, rule: ir.Rule, env):
        self.rule = rule
        self.pairs = split_pairs([rule.lhs, rule.rhs])
        self.checker = RankChecker(rule.file, dict(env or {}))
        self.inserted = 0

    # -- pattern variables ------------------------------------------------------------------------------------
    def logical(self, ranks) -> frozenset:
        out = set(ranks)
        for base, (outer, inner) in self.pairs.items():
            if outer in out and inner in out:
                out -= {outer, inner}
                out.add(base)
        return frozenset(out)

    def allowed(self, expr: ir.Expr, allowed: frozenset, out: dict) -> None:
        match expr:
            case ir.Var(name=name):
                here = self.logical(allowed)
                out[name] = out.get(name, here) & here
            case ir.Map(space=space, args=args):
                for arg in args:
                    self.allowed(arg, frozenset(space), out)
            case ir.Reduce(rank=r, arg=arg) | ir.Last(rank=r, arg=arg):
                self.allowed(arg, allowed | {r}, out)
            case ir.Split(rank=r, outer=o, inner=i, arg=arg):
                self.allowed(arg, (allowed - {o, i}) | {r}, out)
            case ir.Unsplit(rank=r, outer=o, inner=i, arg=arg):
                self.allowed(arg, (allowed - {r}) | {o, i}, out)
            case ir.Scan(rank=r, init=init, body=body):
                self.allowed(body, allowed, out)
                self.allowed(init, allowed - {r}, out)
            case ir.Shift(rank=r, arg=arg, init=init):
                self.allowed(arg, allowed, out)
                self.allowed(init, allowed - {r}, out)

    # -- coercions ----------------------------------------------------------------------------------------------
    def ranks(self, e: ir.Expr) -> tuple[str, ...]:
        return self.checker.ranks(e)

    def split(self, e: ir.Expr, base: str) -> ir.Expr:
        outer, inner = self.pairs[base]
        self.inserted += 1
        return ir.Split(base, outer, inner, None, e, getattr(e, "line", None))

    def unsplit(self, e: ir.Expr, base: str) -> ir.Expr:
        outer, inner = self.pairs[base]
        self.inserted += 1
        return ir.Unsplit(outer, inner, base, e, getattr(e, "line", None))

    def fit(self, e: ir.Expr, space: set) -> ir.Expr:
        """An operand of a map over `space`: split or unsplit it to the space's view of each pair."""
        got = set(self.ranks(e))
        for base, (outer, inner) in self.pairs.items():
            if base in got and base not in space and outer in space and inner in space:
                e = self.split(e, base)
                got = set(self.ranks(e))
            elif outer in got and inner in got and base in space and not (outer in space and inner in space):
                e = self.unsplit(e, base)
                got = set(self.ranks(e))
        return e

    def provide(self, e: ir.Expr, rank: str) -> ir.Expr:
        """An operand that must have `rank` (reduced, split or scanned over it)."""
        got = set(self.ranks(e))
        if rank in got:
            return e
        for base, (outer, inner) in self.pairs.items():
            if rank in (outer, inner) and base in got:
                return self.split(e, base)
            if rank == base and outer in got and inner in got:
                return self.unsplit(e, base)
        return e

    def coerce(self, e: ir.Expr) -> ir.Expr:
        match e:
            case ir.Map(space=space, args=args):
                return replace(e, args=tuple(self.fit(self.coerce(a), set(space)) for a in args))
            case ir.Reduce(rank=r, arg=arg) | ir.Last(rank=r, arg=arg):
                return replace(e, arg=self.provide(self.coerce(arg), r))
            case ir.Split(rank=r, arg=arg):
                return replace(e, arg=self.provide(self.coerce(arg), r))
            case ir.Unsplit(outer=o, inner=i, rank=r, arg=arg):
                inner = self.coerce(arg)
                got = set(self.ranks(inner))
                if r in got and not (o in got and i in got):
                    inner = self.split(inner, r)
                return replace(e, arg=inner)
        return e                                   # inputs, constants, scans: as written

    def sides(self, lhs: ir.Expr, rhs: ir.Expr) -> tuple[ir.Expr, ir.Expr]:
        lhs, rhs = self.coerce(lhs), self.coerce(rhs)
        left, right = set(self.ranks(lhs)), set(self.ranks(rhs))
        for base, (outer, inner) in self.pairs.items():
            if base in left and outer in right and inner in right:
                rhs = self.unsplit(rhs, base)
            elif base in right and outer in left and inner in left:
                lhs = self.unsplit(lhs, base)
        return lhs, rhs


def unrelated_tiling(rule: ir.Rule) -> bool:
    """Does the (strictly ranked) rule name a rank and its tile ranks (m and m1 or m0) without any split or
    unsplit between them? Then strictly their sizes are unrelated (M need not be M1*M0)."""
    pairs = split_pairs([rule.lhs, rule.rhs])
    mentioned = set(ir.rank_names((rule.lhs, rule.rhs)))
    related = {node.rank for e in (rule.lhs, rule.rhs) for node in ir.walk(e)
               if isinstance(node, (ir.Split, ir.Unsplit))}
    return any(base in mentioned and (outer in mentioned or inner in mentioned) and base not in related
               for base, (outer, inner) in pairs.items())


def implicit_rule(rule: ir.Rule, env=None) -> ir.Rule | None:
    """The rule read with implicit tiling, strictly ranked, with `var_ranks` filled; None if that reading does
    not make it well-ranked (or needs no insertion, i.e. the strict reading's error is about something else)."""
    reading = _Reading(rule, env)
    if not reading.pairs:
        return None
    order = ir.rank_names((rule.lhs, rule.rhs))
    for base, (outer, _inner) in reading.pairs.items():
        if base not in order and outer in order:
            order.insert(order.index(outer), base)
    universe = frozenset(order)
    allowed: dict[str, frozenset] = {}
    reading.allowed(rule.lhs, universe, allowed)
    reading.allowed(rule.rhs, universe, allowed)
    inputs = {name: ir.Input(name, tuple(r for r in order if r in ranks)) for name, ranks in allowed.items()}
    try:
        lhs, rhs = reading.sides(substitute_inputs(rule.lhs, inputs), substitute_inputs(rule.rhs, inputs))
        left, right = reading.ranks(lhs), reading.ranks(rhs)
    except ShapeError:
        return None
    if set(left) != set(right) or not reading.inserted:
        return None
    var_ranks = tuple((name, inputs[name].ranks) for name in sorted(inputs))
    return replace(rule, lhs=lhs, rhs=rhs, var_ranks=var_ranks)


def _views_dropped(e: ir.Expr) -> ir.Expr:
    """The term with splits and unsplits dropped and variables by name only (shape inference turns a rule's
    variables into ranked inputs): the key a printed subterm is matched to a name by."""
    def drop(n: ir.Expr) -> ir.Expr:
        if isinstance(n, (ir.Split, ir.Unsplit)):
            return n.arg
        return ir.Var(n.name) if isinstance(n, ir.Input) else n

    return ir.map_post(drop, e)


class _Abbreviating(Printer):
    """Prints a subterm by the name the rule's facts or lets give it (matched with the inserted splits and
    unsplits dropped), so a union rule reads as its author wrote it instead of one line of 1,000 characters."""

    def __init__(self, names, **kwargs):
        super().__init__(**kwargs)
        self.lookup: dict = {}
        for name, term in names:
            if not isinstance(term, (ir.Var, ir.Input)):
                self.lookup.setdefault(_views_dropped(term), name)
        self.used: dict[str, ir.Expr] = {}
        self.skip: str | None = None

    def expr(self, e: ir.Expr) -> str:
        if not isinstance(e, (ir.Var, ir.Input, ir.Split, ir.Unsplit)):
            name = self.lookup.get(_views_dropped(e))
            # a name stands for one printed term only: where the views inserted inside differ, print in full
            if name is not None and name != self.skip and self.used.setdefault(name, e) == e:
                return name
        return super().expr(e)


def describe(rule: ir.Rule) -> str:
    """`READING: checked lhs = rhs for all VARS`, pattern variables by name, and the terms the rule names by
    their names (`where NAME = ...`, each defined once)."""
    printer = _Abbreviating(rule.names, fuse=False, variables={name for name, _ in rule.var_ranks})
    lhs, rhs = printer.expr(rule.lhs), printer.expr(rule.rhs)
    where: list[str] = []
    done: set[str] = set()
    while len(done) < len(printer.used):
        name, term = next((n, t) for n, t in printer.used.items() if n not in done)
        done.add(name)
        printer.skip = name
        where.append(f"{name} = {printer.expr(term)}")
        printer.skip = None
    ranks = ", ".join(f"{n}[{','.join(r)}]" for n, r in rule.var_ranks)
    return (f"{READING}: checked {lhs} = {rhs}" + (f" for all {ranks}" if ranks else "")
            + (f"; where {', '.join(where)}" if where else ""))
