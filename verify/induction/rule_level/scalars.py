"""Scalar terms of the rule-level lift and their algebra: the term tuples, reductions (`Red`), linear forms,
products, definedness conditions, positivity, the extended-real simplification of -inf and the normalisations
that are identities of the reals (common factors of a sum, exp of an integer multiple of a log). `terms.py`
evaluates a claim side into these terms; `prove.py` encodes them in Z3."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from fractions import Fraction

import z3

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


def raise_(exc):
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


def positive_term(t: tuple) -> bool:
    """t is > 0 wherever it is defined: a positive constant, an exp, a product, quotient or sum of such, or a sum
    or max over a nonempty range (every size is >= 1) of such a body (group "positivity")."""
    match t:
        case ("num", v):
            return v != NEG_INF and v > 0
        case ("op", "exp", _):
            return True
        case ("op", "mul" | "div" | "add", a, b):
            return positive_term(a) and positive_term(b)
        case ("red", r):
            return r.op in ("add", "max") and positive_term(r.body)
    return False


def conditions(t: tuple, positive: list | None = None) -> list:
    """Definedness conditions of t: the terms that must be nonzero (divisors). A divisor that `positive_term`
    proves > 0 (exp(..), a sum of exponentials) is never 0, so it is no condition; it is recorded in `positive`
    (the caller names the positivity lemma). The conditions of a divisor's own terms are still collected."""
    out = []

    def go(x):
        if x[0] == "op":
            for a in x[2:]:
                go(a)
            if x[1] == "div":
                if not positive_term(x[3]):
                    out.append(x[3])
                elif positive is not None and x[3][:2] != ("op", "exp"):
                    positive.append(x[3])
        elif x[0] == "red":
            out.extend(x[1].conds)
    go(t)
    return out


def plainly_defined(t: tuple) -> bool:
    """t has no definedness condition at all: no divisor (`conditions`) and no log (whose argument a query would
    otherwise have to prove positive, `log_args`). Only such a term may be dropped by `simplify_inf`."""
    return not conditions(t) and not log_args(t)


def has_neg_inf(t) -> bool:
    if t == ("num", NEG_INF):
        return True
    if isinstance(t, tuple) and t and t[0] == "op":
        return any(has_neg_inf(a) for a in t[2:])
    if isinstance(t, tuple) and t and t[0] == "red":
        return has_neg_inf(t[1].body)
    return False


def simplify_inf(t: tuple) -> tuple:
    """Exact extended-real simplification of -inf (from a scan's init or a shift's fill) with finite operands:
    max(-inf, x) = x, -inf - x = -inf + x = -inf, exp(-inf) = 0, 0 * x = 0, x + 0 = x. Every other operand is
    finite (inputs are finite reals); any -inf left afterwards makes the encoding refuse (NotLiftable). A -inf
    inside a reduction is not simplified there (the reduction was normalised already, with exp(..) taken as a
    nonzero divisor and a positive summand, which exp(-inf) = 0 is not): refused."""
    if t[0] == "red" and has_neg_inf(t):
        raise NotLiftable("-inf inside a reduction")
    if t[0] != "op":
        return t
    args = [simplify_inf(a) for a in t[2:]]
    inf = [a == ("num", NEG_INF) for a in args]
    op = t[1]
    if op == "max" and inf[0] != inf[1]:
        return args[1] if inf[0] else args[0]
    # -inf +- x = -inf only for an x that is defined wherever the claim is (no divisor, no log): an undefined x
    # makes the sum undefined, and dropping it once certified exp(-inf - 1/(C-5)) = 0 for all sizes
    if op in ("add", "sub") and inf[0] and not inf[1]:
        return ("num", NEG_INF) if plainly_defined(args[1]) else raise_(NotLiftable("-inf with an operand that "
                                                                                    "may be undefined"))
    if op == "add" and inf[1] and not inf[0]:
        return ("num", NEG_INF) if plainly_defined(args[0]) else raise_(NotLiftable("-inf with an operand that "
                                                                                    "may be undefined"))
    if op == "exp" and inf[0]:
        return ("num", Fraction(0))
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


def exp_of_logs(t: tuple) -> tuple:
    """exp(L + k log y) = exp(L) * y^k for an integer k and a y that `positive_term` proves > 0 (then log y is a
    finite real, exp(log y) = y, and exp(a + b) = exp(a) exp(b)). This is how P = exp(S - (GM + log SD)),
    recomputed from the stored log-sum-exp, becomes exp(S - GM) / SD. Any other log stays (and is refused inside
    a reduction, see `normalise`). y keeps its own definedness conditions: it is still a factor."""
    const, terms = linear(t[2])
    logs = {k: (c, x) for k, (c, x) in terms.items()
            if x[:2] == ("op", "log") and c.denominator == 1 and positive_term(x[2])}
    if not logs:
        return t
    rest = {k: v for k, v in terms.items() if k not in logs}
    out: tuple = ("op", "exp", lin_term(const, rest)) if rest or const else ("num", Fraction(1))
    for _, (c, x) in sorted(logs.items()):
        for _ in range(abs(int(c))):
            out = mul(out, x[2]) if c > 0 else ("op", "div", out, x[2])
    return out


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


def _summands(t: tuple, sign: int = 1) -> list:
    match t:
        case ("op", "add", a, b):
            return _summands(a, sign) + _summands(b, sign)
        case ("op", "sub", a, b):
            return _summands(a, sign) + _summands(b, -sign)
    return [(sign, t)]


def pull_common_factors(lin: dict, nums: list, dens: list, dep) -> tuple[dict, list, list]:
    """Linearity through a sum inside a summand: a factor of the body that is a sum (x*a/d + y*b/(d*e)) and depends
    on the bound index has the parts common to all its terms moved out of it (exp of the first term's exponent,
    and every factor and divisor all terms share): exp(c) * u + exp(c') * v = exp(c) * (u + exp(c' - c) * v),
    x*a + x*b = x*(a + b), a/d + b/(d*e) = (1/d) * (a + b/e); all identities of the reals. The divisor d stays a
    divisor (now outside the sum), so the definedness of the body is unchanged. The moved parts join the body's
    other factors, where exponents cancel (exp(s - rm) * exp(rm) = exp(s)) and the parts independent of the bound
    index leave the reduction by linearity."""
    out_nums = []
    for f in nums:
        terms = _summands(f)
        if len(terms) < 2 or not dep(f):
            out_nums.append(f)
            continue
        fs = [factors(t) for _, t in terms]
        lin0 = dict(fs[0][1])
        common_n = _common([fn[2] for fn in fs])
        common_d = _common([fn[3] for fn in fs])
        if not lin0 and not common_n and not common_d:
            out_nums.append(f)
            continue
        inner = None
        for (sign, _), (c, li, ns, ds) in zip(terms, fs):
            part = product(sign * c, _lin_add(li, lin0, -1), _without(ns, common_n), _without(ds, common_d))
            inner = part if inner is None else ("op", "add", inner, part)
        lin = _lin_add(lin, lin0, 1)
        out_nums += common_n
        dens = dens + common_d
        out_nums.append(inner)
    return lin, out_nums, dens


def _common(lists: list) -> list:
    """The terms (by key) every list holds, with multiplicity."""
    counts = None
    first: dict = {}
    for xs in lists:
        c: dict = {}
        for x in xs:
            c[key(x)] = c.get(key(x), 0) + 1
            first.setdefault(key(x), x)
        counts = c if counts is None else {k: min(v, c.get(k, 0)) for k, v in counts.items()}
    return [first[k] for k, n in sorted((counts or {}).items()) for _ in range(n)]


def _without(xs: list, remove: list) -> list:
    left = [key(x) for x in remove]
    out = []
    for x in xs:
        if key(x) in left:
            left.remove(key(x))
        else:
            out.append(x)
    return out
