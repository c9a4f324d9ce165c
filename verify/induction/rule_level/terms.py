"""Symbolic evaluation of a claim side at symbolic sizes and symbolic indices (the rule-level lift).

Every rank r gets a symbolic size ``N_r >= 1`` (a Z3 Int; a split rank is the product of its parts,
``N_m = N_m1 * N_m0``) and every output rank a symbolic index ``0 <= i_r < N_r``. An input tensor X[r...] is an
uninterpreted function of integer indices, so the element the side reads is ``X(i...)`` whatever the sizes.
Evaluating a side gives a scalar *term* (a small Python tree, below) for the output element at the symbolic
index; the terms of both sides are then compared by `prove.py` in quantifier-free Z3 queries.

Views are index arithmetic, exactly: `Split(m -> m1, m0)` read at (i1, i0) reads m at ``i1*N_m0 + i0`` (the
definition m = m1*M0 + m0); `Unsplit(m1, m0 -> m)` read at an index that is syntactically ``a*N_m0 + b`` (made by a
Split) reads (a, b); at any other index t it reads fresh (q, r) with the hypotheses ``t = q*N_m0 + r``,
``0 <= r < N_m0``, ``0 <= q < N_m1``: the quotient and remainder of t, which exist and are unique for
``0 <= t < N_m1*N_m0``. A map is the scalar operation on the operands' terms (a broadcast operand simply does not
read the missing rank). So for a claim without reductions, the two terms are equal for all values of the
uninterpreted inputs, all sizes and all indices iff the claim holds at every size: one query covers every rank.

A reduction ``R_op_r(body)`` is evaluated with a fresh bound index ``0 <= j < N_r`` and becomes a `Red` node.
Before it is compared, it is normalised by three lemmas, each valid for every size >= 1:

- *linearity* (group "linearity", proved by induction in ``verify/induction/twopass.py``): for add, a factor of the body
  whose term does not mention j (syntactically: no index variable bound by this reduction occurs in it) leaves
  the sum: ``sum_j c*y_j = c * sum_j y_j``; exponentials are merged first (``exp(a)exp(b) = exp(a+b)``) and an
  exponent is split into the part that mentions j and the part that does not (``exp(L_j + L) = exp(L_j)exp(L)``).
  For max, an additive term not mentioning j leaves the max: ``max_j (y_j + c) = max_j y_j + c`` (finite values,
  nonempty range). A body that does not mention j at all: ``sum_j c = N*c``, ``max_j c = c``.
- *split* (groups split.sum / split.max): a reduction over the outer part of a split pair whose body is exactly
  a reduction of the same op over the inner part (either order) is ONE reduction over the split rank, with the
  bound index ``j_o*N_i + j_i``: ``sum_{m<M1*M0} g(m) = sum_{m1<M1} sum_{m0<M0} g(m1*M0+m0)``, for every summand g
  (the lemma's summand is uninterpreted) and likewise for max (nonempty ranges).
- *definedness*: x/0 is undefined and undefined propagates, so a sum over j is defined iff every term is.
  The definedness conditions of a body may not mention j (then, as N >= 1, the reduction is defined iff the
  body is); a body whose conditions vary with j is outside the shapes (`NotLiftable`).

Two reductions are then *the same value* when their ops and ranks agree and their bodies are equal for every
bound index in range (congruence of sum and max); `prove.py` checks that per pair, recursively.

Anything outside this fragment raises `NotLiftable` with the reason: masks (their -inf elements), log and fin,
infinite constants (outside the scan shapes), scans (unless `scan.py` or `closed.py` supplies how to read them:
`prefix`, `last` and `scan_eval` below).
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import z3

from ... import ir
from .scalars import (  # noqa: F401  (NEG_INF, NotLiftable, Red, canon, ...: re-exported for prove/scan/closed)
    NEG_INF,
    NotLiftable,
    Red,
    canon,
    conditions,
    exp_of_logs,
    factors,
    fresh,
    has_neg_inf,
    is_one,
    key,
    lin_term,
    linear,
    log_args,
    mul,
    plainly_defined,
    positive_term,
    product,
    pull_common_factors,
    raise_,
    simplify_inf,
)


class Env:
    """Symbolic sizes, the index registry and the hypotheses of one claim's evaluation."""

    def __init__(self, splits, bindings: dict | None = None):
        self.splits = list(splits)            # every view (rank, outer, inner); a rank may be split several ways
        self.bindings = bindings or {}
        self.sizes: dict[str, z3.ArithRef] = {}
        self.hyps: list = []                  # facts about sizes and derived indices (true for every size)
        self.composite: dict[int, tuple] = {} # id of an index a*N_i + b -> (a, b, inner rank)
        self.keep: list = []                  # keep composite index expressions alive (ids stay unique)
        self.depends: dict[str, frozenset] = {}   # derived index variable -> the variables it is made from
        self.lemmas: set[str] = set()
        self.allow_inf = False
        # scan shape (scan.py): the iterative rank, the state index that S_last reads, and a prefix size
        self.last: dict[str, z3.ArithRef] = {}
        self.prefix: dict[str, tuple] = {}    # rank -> ("one",) | ("upto", n) | ("step", t)
        self.scan_eval: Callable[[Env, ir.Expr, dict], tuple] | None = None   # for Scan/Prev/Shift nodes
        self.closed: dict = {}                # scan -> (closed form, bindings), once proved (closed.py)

    def size(self, rank: str) -> z3.ArithRef:
        if rank not in self.sizes:
            n = z3.Int(f"N_{rank}")
            self.sizes[rank] = n
            self.hyps.append(n >= 1)
            for whole, o, i in self.splits:
                if rank in (whole, o, i):
                    self.size(whole), self.size(o), self.size(i)
                    fact = self.sizes[whole] == self.sizes[o] * self.sizes[i]
                    if not any(fact.eq(h) for h in self.hyps):
                        self.hyps.append(fact)
        return self.sizes[rank]

    def index_vars(self, e: z3.ExprRef) -> frozenset:
        out: set[str] = set()
        stack = [e]
        while stack:
            x = stack.pop()
            if z3.is_const(x) and x.decl().kind() == z3.Z3_OP_UNINTERPRETED:
                name = x.decl().name()
                if not name.startswith("N_"):
                    out.add(name)
                    out |= self.depends.get(name, frozenset())
            else:
                stack.extend(x.children())
        return frozenset(out)

    # -- evaluation ----------------------------------------------------------------------------------------
    def eval(self, expr: ir.Expr, idx: dict[str, z3.ArithRef]) -> tuple:
        match expr:
            case ir.Input(name=name, ranks=ranks, kind=kind):
                if kind == "mask":
                    raise NotLiftable(f"input {name} is a mask (its elements may be -inf): the lemmas are about "
                                      f"finite reals")
                missing = [r for r in ranks if r not in idx]
                if missing:
                    raise NotLiftable(f"input {name} is read without an index for {', '.join(missing)}")
                return ("in", name, tuple(idx[r] for r in ranks))
            case ir.Const(value=v):
                if v != v or v in (float("inf"), NEG_INF):
                    if not self.allow_inf:
                        raise NotLiftable(f"the constant {v} is not finite (only the scan shape handles -inf)")
                    return ("num", NEG_INF) if v == NEG_INF else raise_(NotLiftable(f"constant {v}"))
                return ("num", Fraction(v))
            case ir.Ref(name=name):
                if name not in self.bindings:
                    raise NotLiftable(f"reference to {name}, which this side does not bind")
                return self.eval(self.bindings[name].expr, idx)
            case ir.Map(op=op, args=args):
                if op == "fin":
                    raise NotLiftable("fin is outside the shapes (no lemma about it)")
                term = ("op", op, *(self.eval(a, idx) for a in args))
                return exp_of_logs(term) if op == "exp" else term
            case ir.Reduce(op=op, rank=rank, arg=arg):
                mode = self.prefix.get(rank)
                if mode is not None and mode[0] == "one":        # a prefix of one element: the element
                    return self.eval(arg, {**idx, rank: z3.IntVal(0)})
                size = self.size(rank) if mode is None else z3.simplify(mode[1])
                j = fresh(f"j_{rank}")
                body = self.eval(arg, {**idx, rank: j})
                if has_neg_inf(body):    # normalise takes exp(..) as a nonzero divisor and a positive summand
                    raise NotLiftable("-inf inside a reduction")
                red = Red(op, rank, size, j, frozenset({j.decl().name()}), [j >= 0, j < size], body)
                term = self.normalise(red)
                if mode is not None and mode[0] == "step":       # S(t+1) = S(t) op g(t): the definition
                    return ("op", op, term, self.eval(arg, {**idx, rank: mode[1]}))
                return term
            case ir.Split(rank=rank, outer=o, inner=i, arg=arg):
                if o not in idx or i not in idx:
                    raise NotLiftable(f"split of {rank} read without indices for {o}, {i}")
                t = idx[o] * self.size(i) + idx[i]
                self.composite[t.get_id()] = (idx[o], idx[i], i)
                self.keep.append(t)
                inner = {k: v for k, v in idx.items() if k not in (o, i)}
                inner[rank] = t
                return self.eval(arg, inner)
            case ir.Unsplit(outer=o, inner=i, rank=rank, arg=arg):
                if rank not in idx:
                    raise NotLiftable(f"unsplit to {rank} read without an index for it")
                t = idx[rank]
                known = self.composite.get(t.get_id())
                if known is not None and known[2] == i:
                    a, b = known[0], known[1]
                else:
                    a, b = fresh(f"q_{o}"), fresh(f"r_{i}")
                    deps = self.index_vars(t)
                    self.depends[a.decl().name()] = deps
                    self.depends[b.decl().name()] = deps
                    # A definition of the fresh a, b (floor division of t by N_i), true for *every* integer t, so
                    # these facts restrict no size even in a later query where t is a step variable the query does
                    # not bound (the range of a holds only where t is in range: an implication, not a fact; as
                    # a plain fact it once forced N_a >= 2 into the final comparison of a scan claim).
                    in_range = z3.And(t >= 0, t < self.size(o) * self.size(i))
                    self.hyps += [t == a * self.size(i) + b, b >= 0, b < self.size(i),
                                  z3.Implies(in_range, z3.And(a >= 0, a < self.size(o)))]
                rest = {k: v for k, v in idx.items() if k != rank}
                return self.eval(arg, {**rest, o: a, i: b})
            case ir.Last(rank=rank, arg=arg) if rank in self.last:     # a prefix's end (scan.py, closed.py)
                return self.eval(arg, {**idx, rank: self.last[rank]})
            case ir.Last(rank=rank) if self.closed and self.scan_eval is not None and isinstance(
                    _deref_ref(expr.arg, self.bindings), ir.Scan):
                return self.scan_eval(self, expr, idx)
            case ir.Scan() | ir.Prev() | ir.Shift() | ir.Last():
                if self.scan_eval is not None:
                    return self.scan_eval(self, expr, idx)
                raise NotLiftable("an iterative rank (scan) outside the scan shape")
        raise NotLiftable(f"no shape for {type(expr).__name__}")

    # -- dependence and normalisation --------------------------------------------------------------------
    def term_vars(self, t: tuple) -> frozenset:
        match t[0]:
            case "in":
                out: frozenset = frozenset()
                for i in t[2]:
                    out |= self.index_vars(i)
                return out
            case "num":
                return frozenset()
            case "cnt":
                return self.index_vars(t[1])
            case "op":
                out = frozenset()
                for a in t[2:]:
                    out |= self.term_vars(a)
                return out
            case "red":
                r: Red = t[1]
                out = self.index_vars(r.size) | self.term_vars(r.body)
                for c in r.conds:
                    out |= self.term_vars(c)
                return out - r.bvars
        raise AssertionError(t)

    def normalise(self, red: Red) -> tuple:
        dep = lambda t: bool(self.term_vars(t) & red.bvars)   # noqa: E731
        if log_args(red.body):
            raise NotLiftable(f"log inside the {red.op}-reduction over {red.rank} (a log of 0 is -inf: only a log "
                              f"whose argument an obligation proves positive is encoded)")
        positive: list = []
        conds = conditions(red.body, positive)
        if positive:
            self.lemmas.add("positivity")       # a divisor that is a sum of exponentials is never 0
        if any(dep(c) for c in conds):
            raise NotLiftable(f"a definedness condition (a divisor) of the {red.op}-reduction over {red.rank} "
                              f"varies along {red.rank}")
        red.conds = conds
        if red.op == "add":
            coef, lin, nums, dens = factors(red.body)
            lin, nums, dens = pull_common_factors(lin, nums, dens, dep)
            ldep = {k: v for k, v in lin.items() if k != "" and dep(v[1])}
            lind = {k: v for k, v in lin.items() if k not in ldep}
            out_t = product(coef, lind, [f for f in nums if not dep(f)], [f for f in dens if not dep(f)])
            body = product(Fraction(1), ldep, [f for f in nums if dep(f)], [f for f in dens if dep(f)])
            if not dep(body):
                if conds:       # N * c would lose the divisors factoring dropped (a/(b/c): c): keep the sum
                    return ("red", red)
                self.lemmas.add("linearity")
                return mul(("cnt", red.size), out_t)   # sum_j c = N * c
            swapped = self._interchange(red, body)
            if swapped is not None:
                return mul(out_t, swapped)
            red.body = body
            self._flatten(red)
            if not is_one(out_t):
                self.lemmas.add("linearity")
            return mul(out_t, ("red", red))
        if red.op == "max":
            const, terms = linear(red.body)
            tdep = {k: v for k, v in terms.items() if dep(v[1])}
            if not tdep:
                return red.body                    # max over a nonempty range of a constant
            tind = {k: v for k, v in terms.items() if k not in tdep}
            red.body = lin_term(Fraction(0), tdep)
            self._flatten(red)
            if not tind and not const:
                return ("red", red)
            self.lemmas.add("linearity")
            return ("op", "add", ("red", red), lin_term(const, tind))
        raise NotLiftable(f"reduction {red.op}")

    def _interchange(self, red: Red, body: tuple) -> tuple | None:
        """sum_r C(r) * sum_s g(r, s) = sum_s sum_r C(r) * g(r, s) (group "interchange": finite sums over
        independent ranges commute, proved by induction in verify/induction/twopass.py), taken when the inner rank
        s sorts before r, so that nested sums get one order (outer rank first in the alphabet) whichever order
        a side wrote them in: D = sum_f dO * (sum_m P * V) and sum_m P * (sum_f dO * V) become one sum. Only
        for one inner sum of a body without definedness conditions and a size that does not depend on r."""
        if red.conds or conditions(body):
            return None
        coef, lin, nums, dens = factors(body)
        inner = [f for f in nums if f[0] == "red" and f[1].op == "add" and f[1].rank < red.rank
                 and not f[1].conds and not (self.index_vars(f[1].size) & red.bvars)]
        pairs = [{o, i} for _, o, i in self.splits]
        inner = [f for f in inner if {red.rank, f[1].rank} not in pairs           # a split pair: `_flatten`'s
                 and not {red.rank, f[1].rank} & set(self.prefix)]                 # a scan's prefix: scan.py's
        if len(inner) != 1 or any(x[0] == "red" and x is not inner[0] and self.term_vars(x) & red.bvars
                                  for x in nums):
            return None
        s_red: Red = inner[0][1]
        rest = product(coef, lin, [f for f in nums if f is not inner[0]], dens)
        self.lemmas.update(("interchange", "linearity"))     # rest * sum_s g = sum_s rest * g, then interchange
        new_r = Red("add", red.rank, red.size, red.bound, red.bvars, red.hyps, mul(rest, s_red.body), red.lemmas)
        t_r = self.normalise(new_r)
        new_s = Red("add", s_red.rank, s_red.size, s_red.bound, s_red.bvars, s_red.hyps, t_r, s_red.lemmas)
        return self.normalise(new_s)

    def _flatten(self, red: Red) -> None:
        inner = red.body
        if inner[0] != "red" or inner[1].op != red.op:
            return
        ir_: Red = inner[1]
        for whole, o, i in self.splits:
            if {red.rank, ir_.rank} == {o, i} and not {whole, o, i} & set(self.prefix):
                jo, ji = (red.bound, ir_.bound) if red.rank == o else (ir_.bound, red.bound)
                red.rank = whole
                red.size = self.size(whole)
                red.bound = jo * self.size(i) + ji
                red.bvars = red.bvars | ir_.bvars
                red.hyps = red.hyps + ir_.hyps
                red.conds = red.conds + [c for c in ir_.conds]
                red.body = ir_.body
                split_lemma = f"split.{'sum' if red.op == 'add' else 'max'}"
                red.lemmas = tuple(sorted(set(red.lemmas) | set(ir_.lemmas) | {split_lemma}))
                self.lemmas.add(f"split.{'sum' if red.op == 'add' else 'max'}")
                self._flatten(red)          # a two-level tiling flattens twice
                return


def _deref_ref(expr, bindings):
    while isinstance(expr, ir.Ref) and expr.name in bindings:
        expr = bindings[expr.name].expr
    return expr
