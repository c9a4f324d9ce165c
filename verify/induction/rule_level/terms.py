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

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import z3

from ... import ir

NEG_INF = float("-inf")


class NotLiftable(Exception):
    """The claim fits no shape with a lemma; it keeps its bounded certificate (the message says why)."""


_COUNTER = itertools.count()


def fresh(prefix: str) -> z3.ArithRef:
    return z3.Int(f"{prefix}!{next(_COUNTER)}")


@dataclass(eq=False)
class Red:
    """A reduction `op` over `rank` (size `size`) of `body`, read at bound index `bound`."""

    op: str                     # add | max
    rank: str
    size: z3.ArithRef
    bound: z3.ArithRef          # the index of `rank` the body is read at (a fresh j, or j_o*N_i + j_i)
    bvars: frozenset            # names of the index variables bound here
    hyps: list                  # ranges of the bound variables
    body: tuple
    lemmas: tuple = ()          # lemma groups used to normalise it
    conds: list = field(default_factory=list)   # definedness conditions (not mentioning the bound variables)
    const: z3.ArithRef = field(init=False)    # the reduction's value, a fresh real (`__post_init__`)
    key: str | None = None

    def __post_init__(self):
        self.const = z3.Real(f"{self.op}_{self.rank}!{next(_COUNTER)}")


# Terms:  ("in", name, (z3 Int, ...))   input element       ("num", Fraction | -inf)   constant
#         ("op", op, a, b?)              scalar operation    ("red", Red)                reduction
#         ("cnt", z3 Int)                a size, as a real (sum_j c = N * c)


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
                    return ("num", NEG_INF) if v == NEG_INF else _raise(NotLiftable(f"constant {v}"))
                return ("num", Fraction(v))
            case ir.Ref(name=name):
                if name not in self.bindings:
                    raise NotLiftable(f"reference to {name}, which this side does not bind")
                return self.eval(self.bindings[name].expr, idx)
            case ir.Map(op=op, args=args):
                if op in ("fin", "eq", "where"):
                    raise NotLiftable(f"{op} is outside the shapes (no lemma about it)")
                if op in ("exp2", "log2"):
                    # log(2) is irrational: the linear exponent forms here have rational coefficients only
                    raise NotLiftable(f"{op} is outside the shapes (its exponent would carry log 2)")
                return ("op", op, *(self.eval(a, idx) for a in args))
            case ir.Reduce(op=op, rank=rank, arg=arg):
                mode = self.prefix.get(rank)
                if mode is not None and mode[0] == "one":        # a prefix of one element: the element
                    return self.eval(arg, {**idx, rank: z3.IntVal(0)})
                size = self.size(rank) if mode is None else z3.simplify(mode[1])
                j = fresh(f"j_{rank}")
                body = self.eval(arg, {**idx, rank: j})
                if _has_neg_inf(body):    # normalise takes exp(..) as a nonzero divisor and a positive summand
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
        conds = conditions(red.body)
        if any(dep(c) for c in conds):
            raise NotLiftable(f"a definedness condition (a divisor) of the {red.op}-reduction over {red.rank} "
                              f"varies along {red.rank}")
        red.conds = conds
        if red.op == "add":
            coef, lin, nums, dens = factors(red.body)
            ldep = {k: v for k, v in lin.items() if k != "" and dep(v[1])}
            lind = {k: v for k, v in lin.items() if k not in ldep}
            out_t = product(coef, lind, [f for f in nums if not dep(f)], [f for f in dens if not dep(f)])
            body = product(Fraction(1), ldep, [f for f in nums if dep(f)], [f for f in dens if dep(f)])
            if not dep(body):
                if conds:       # N * c would lose the divisors factoring dropped (a/(b/c): c): keep the sum
                    return ("red", red)
                self.lemmas.add("linearity")
                return mul(("cnt", red.size), out_t)   # sum_j c = N * c
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


def _raise(exc):
    raise exc


# -- scalar algebra on terms ----------------------------------------------------------------------------------

def key(t: tuple) -> str:
    match t[0]:
        case "in":
            return f"{t[1]}({','.join(i.sexpr() for i in t[2])})"
        case "num":
            return str(t[1])
        case "cnt":
            return f"#{t[1].sexpr()}"
        case "op":
            return f"{t[1]}[{';'.join(key(a) for a in t[2:])}]"
        case "red":
            return canon(t[1])
        case "ninf":
            raise NotLiftable("a -inf guarded by an operand that may be undefined was left")
    raise AssertionError(t)


_FRESH = re.compile(r"\b[jqr]_[A-Za-z0-9]+![0-9]+\b")


def canon(red: Red) -> str:
    """The reduction as text, its own (and nested) bound variables renamed by first appearance: two reductions
    with the same text are the same value (alpha-equivalence). Computed once, after normalisation."""
    if red.key is None:
        bound = set(_all_bvars(red))
        text = f"red[{red.op},{red.rank},{red.size.sexpr()},{red.bound.sexpr()}|{key(red.body)}]"
        order: dict[str, str] = {}

        def sub(m):
            n = m.group(0)
            return order.setdefault(n, f"#{len(order)}") if n in bound else n
        red.key = _FRESH.sub(sub, text)
    return red.key


def _all_bvars(red: Red) -> list:
    out = list(red.bvars)
    stack = [red.body]
    while stack:
        t = stack.pop()
        if t[0] == "red":
            out += _all_bvars(t[1])
        elif t[0] == "op":
            stack.extend(t[2:])
    return out


def is_one(t: tuple) -> bool:
    return t[0] == "num" and t[1] == 1


def mul(a: tuple, b: tuple) -> tuple:
    if is_one(a):
        return b
    if is_one(b):
        return a
    return ("op", "mul", a, b)


def linear(t: tuple) -> tuple[Fraction, dict]:
    """t as const + sum coef*atom: (const, {key: (coef, atom)})."""
    match t:
        case ("num", v) if v != NEG_INF:
            return Fraction(v), {}
        case ("op", "add" | "sub", a, b):
            ca, ta = linear(a)
            cb, tb = linear(b)
            s = 1 if t[1] == "add" else -1
            out = dict(ta)
            for k, (c, x) in tb.items():
                old = out.get(k, (Fraction(0), x))[0]
                out[k] = (old + s * c, x)
            return ca + s * cb, {k: v for k, v in out.items() if v[0] != 0}
        case ("op", "mul", ("num", v), b) if v != NEG_INF:
            cb, tb = linear(b)
            return Fraction(v) * cb, {k: (Fraction(v) * c, x) for k, (c, x) in tb.items() if v != 0}
        case ("op", "mul", b, ("num", v)) if v != NEG_INF:
            return linear(("op", "mul", ("num", v), b))
    return Fraction(0), {key(t): (Fraction(1), t)}


def lin_term(const: Fraction, terms: dict) -> tuple:
    parts = [x if c == 1 else ("op", "mul", ("num", c), x) for _, (c, x) in sorted(terms.items())]
    if const or not parts:
        parts.insert(0, ("num", const))
    out = parts[0]
    for part in parts[1:]:
        out = ("op", "add", out, part)
    return out


def factors(t: tuple):
    """t as coef * exp(lin) * prod(nums) / prod(dens); lin = {key: (coef, atom)} with "" -> (const, None)."""
    match t:
        case ("num", v) if v != NEG_INF:
            return Fraction(v), {}, [], []
        case ("op", "mul" | "div", a, b):
            ca, la, na, da = factors(a)
            cb, lb, nb, db = factors(b)
            if t[1] == "mul":
                return ca * cb, _lin_add(la, lb, 1), na + nb, da + db
            if cb == 0:
                return Fraction(1), {}, [t], []
            return ca / cb, _lin_add(la, lb, -1), na + db, da + nb
        case ("op", "exp", a):
            const, terms = linear(a)
            lin = dict(terms)
            if const:
                lin[""] = (const, None)
            return Fraction(1), lin, [], []
    return Fraction(1), {}, [t], []


def _lin_add(a: dict, b: dict, sign: int) -> dict:
    out = dict(a)
    for k, (c, x) in b.items():
        old = out.get(k, (Fraction(0), x))[0]
        out[k] = (old + sign * c, x)
    return {k: v for k, v in out.items() if v[0] != 0}


def product(coef: Fraction, lin: dict, nums: list, dens: list) -> tuple:
    out: tuple = ("num", coef)
    if lin:
        const = lin.get("", (Fraction(0), None))[0]
        arg = lin_term(const, {k: v for k, v in lin.items() if k != ""})
        out = mul(out, ("op", "exp", arg))
    for f in sorted(nums, key=key):
        out = mul(out, f)
    for f in sorted(dens, key=key):
        out = ("op", "div", out, f)
    return out


def conditions(t: tuple) -> list:
    """Definedness conditions of t: the terms that must be nonzero (divisors; exp(..) is never 0)."""
    out = []

    def go(x):
        if x[0] == "op":
            for a in x[2:]:
                go(a)
            # exp(..) is never 0, and neither is a nonzero numeral (a constant softcap c in s / c)
            if x[1] == "div" and x[3][:2] != ("op", "exp") and not (x[3][0] == "num" and x[3][1] != 0):
                out.append(x[3])
        elif x[0] == "red":
            out.extend(x[1].conds)
    go(t)
    return out


def plainly_defined(t: tuple) -> bool:
    """t has no definedness condition at all: no divisor (`conditions`) and no log (whose argument a query would
    otherwise have to prove positive, `log_args`). Only such a term may be dropped by `simplify_inf`."""
    return not conditions(t) and not log_args(t)


def _has_neg_inf(t) -> bool:
    if t == ("num", NEG_INF) or (isinstance(t, tuple) and t and t[0] == "ninf"):
        return True
    if isinstance(t, tuple) and t and t[0] == "op":
        return any(_has_neg_inf(a) for a in t[2:])
    if isinstance(t, tuple) and t and t[0] == "red":
        return _has_neg_inf(t[1].body)
    return False


def _inf_guards(a: tuple) -> tuple | None:
    """None if a is not -inf; else the terms whose definedness the -inf carries (none for a plain -inf)."""
    if a == ("num", NEG_INF):
        return ()
    return a[1] if a[0] == "ninf" else None


def _zero_if(guards: tuple) -> tuple:
    """0 wherever every guard is defined, undefined elsewhere: 0 * g1 * g2 ... (0 * x is undefined where x is; the
    `0 * (defined x)` rule below never drops a guard, which is not plainly defined)."""
    out: tuple = ("num", Fraction(0))
    for g in guards:
        out = ("op", "mul", out, g)
    return out


def _absorb(guards: tuple, x: tuple) -> tuple:
    """-inf +- x: -inf where x (and the guards) are defined. ("ninf", guards) is such a guarded -inf; it only lives
    inside this simplification (exp of it is `_zero_if`, max with it keeps the guards on the other operand) and
    any that is left makes the encoding refuse (prove.py has no case for it)."""
    if plainly_defined(x):
        return ("num", NEG_INF) if not guards else ("ninf", guards)
    if log_args(x):
        raise NotLiftable("-inf with an operand that may be undefined (a log)")
    return ("ninf", guards + (x,))


def simplify_inf(t: tuple) -> tuple:
    """Exact extended-real simplification of -inf (from a scan's init or a shift's fill) with finite operands:
    max(-inf, x) = x, -inf - x = -inf + x = -inf, exp(-inf) = 0, 0 * x = 0, x + 0 = x; an x that may be undefined
    (a divisor) is kept as a guard of the -inf (`_absorb`). Every other operand is
    finite (inputs are finite reals); any -inf left afterwards makes the encoding refuse (NotLiftable). A -inf
    inside a reduction is not simplified there (the reduction was normalised already, with exp(..) taken as a
    nonzero divisor and a positive summand, which exp(-inf) = 0 is not): refused."""
    if t[0] == "red" and _has_neg_inf(t):
        raise NotLiftable("-inf inside a reduction")
    if t[0] != "op":
        return t
    args = [simplify_inf(a) for a in t[2:]]
    found = [_inf_guards(a) for a in args]
    inf = [g is not None for g in found]
    guards = [g or () for g in found]
    op = t[1]
    if op == "max" and inf[0] != inf[1]:
        gs, other = (guards[0], args[1]) if inf[0] else (guards[1], args[0])
        return other if not gs else ("op", "add", other, _zero_if(gs))
    # -inf +- x = -inf where x is defined: an undefined x makes the sum undefined (dropping x once certified
    # exp(-inf - 1/(C-5)) = 0 for all sizes), so a divisor-bearing x is kept as a guard of the -inf
    if op in ("add", "sub") and inf[0] and not inf[1]:
        return _absorb(guards[0], args[1])
    if op == "add" and inf[1] and not inf[0]:
        return _absorb(guards[1], args[0])
    if op == "exp" and inf[0]:
        return _zero_if(guards[0])
    if any(inf):
        raise NotLiftable(f"{op} with an operand -inf has no finite value")
    zero = [a == ("num", 0) for a in args]
    if op == "mul" and any(zero) and plainly_defined(args[1 if zero[0] else 0]):   # 0 * (defined x) = 0
        return ("num", Fraction(0))
    if op == "add" and zero[1]:
        return args[0]
    if op == "add" and zero[0]:
        return args[1]
    return ("op", op, *args)


def log_args(t: tuple) -> list:
    """The arguments of every log in t (outside reductions: normalise refuses a log inside one). A query proves
    each of them positive, so every log it encodes is finite; log is then an uninterpreted function (prove.py)."""
    out = []
    if t[0] == "op":
        for a in t[2:]:
            out += log_args(a)
        if t[1] == "log":
            out.append(t[2])
    return out
