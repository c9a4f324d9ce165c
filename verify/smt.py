"""Back end: Z3, for what the normal form cannot decide. The only module of the checker core that imports z3.

Encoding, per size assignment, of every output element of both sides:
- inputs are Real constants (finite reals);
- `max` is exact: `If(a >= b, a, b)`;
- `exp` is an uninterpreted function Real -> Real with ground axioms on the terms that occur:
  `exp(t) > 0`, `t = 0 -> exp(t) = 1`, `s < t -> exp(s) < exp(t)` (monotone) and, for every pair of
  occurring terms whose arguments sum to a third, `exp(s) * exp(t) = exp(s + t)`. Real `exp` satisfies all of
  them, so an `unsat` (no counterexample under the axioms) is a proof for real exp. A `sat` model may use a
  function that is not exp: it is only a candidate, replayed in mpmath before anything is called REFUTED;
- division carries definedness: every scalar is a pair (value, defined), `x / y` is defined iff both are and
  `y != 0`. The query asks for a point where the sides differ in definedness, or are both defined and differ;
- infinities (mask elements of a fixed mask pattern, `Const -inf`, and what they propagate to) are tracked
  exactly, outside Z3: a scalar is either a finite pair (value, defined) or `Inf(sign, defined)`. Whether a
  value is infinite is then known statically, so each operation follows the semantics of the reference
  evaluator case by case (x + -inf = -inf, -inf - -inf undefined, max(-inf, x) = x, exp(-inf) = 0,
  fin(-inf) = 0, c * -inf by the sign of a numeral c, 0 * -inf undefined). An infinity times or divided by a
  finite value whose sign is not a numeral is not encoded (`NotEncodable`): left to the normal form and
  search, so the verdict is UNKNOWN, never a guess. Masks are never real unknowns here: `decide` takes one
  fixed pattern (each element 0 or -inf) at a time, from `masks.patterns`;
- `exp2(x)` is `exp(x * LN2)` (exact over the reals) with LN2 a Real constant known only to lie in
  (0.693147, 0.693148), which contains log(2): a proof holds for every value there, log(2) included. `log2`, like
  `log`, is not encoded.
- `tanh` is an uninterpreted function with ground axioms real tanh satisfies on the occurring terms:
  `-1 < tanh(t) < 1`, `tanh(0) = 0`, `s < t -> tanh(s) < tanh(t)`, `s = -t -> tanh(s) = -tanh(t)`.
- `eq(a, b)` is `If(a = b, 1, 0)`; `where(c, a, b)` is `If(c != 0, a, b)` in value and in definedness (defined
  iff c is and the branch taken is). With an infinite operand the comparison is decided statically where it
  can be (an infinity is not equal to any finite value); a where whose condition Z3 cannot simplify to a
  constant, choosing between an infinity and a finite value, is not encoded.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import z3

from .claims import Claim, side_values, symbolic_inputs
from .evaluate import ObjectAlgebra


class Outcome(enum.Enum):
    """What `decide` found: a proof, a model (a candidate counterexample, to be replayed), or neither."""
    PROVED = "proved"
    MODEL = "model"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Answer:
    """Z3's answer at one size assignment (and mask pattern): `model` (inputs as float arrays) with MODEL,
    `reason` with UNKNOWN."""
    outcome: Outcome
    model: dict[str, np.ndarray] = field(default_factory=dict)
    reason: str = ""

    @property
    def proved(self) -> bool:
        return self.outcome is Outcome.PROVED


class NotEncodable(Exception):
    pass


class Inf:
    """+inf or -inf (sign +1 / -1), defined when `defined` holds (a Z3 Bool)."""

    def __init__(self, sign: int, defined):
        self.sign, self.defined = sign, defined


def _numeral_sign(value) -> int | None:
    v = z3.simplify(value)
    if z3.is_rational_value(v):
        f = Fraction(v.numerator_as_long(), v.denominator_as_long())
        return (f > 0) - (f < 0)
    return None


class Z3Algebra(ObjectAlgebra):
    name = "z3"

    def __init__(self):
        super().__init__()
        self.exp_fn = z3.Function("exp", z3.RealSort(), z3.RealSort())
        self.exp_args: list = []
        self.tanh_fn = z3.Function("tanh", z3.RealSort(), z3.RealSort())
        self.tanh_args: list = []
        self.ln2 = z3.Real("ln2!")
        self.uses_ln2 = False
        self.vars: dict[str, tuple] = {}

    def input(self, name: str, index: tuple):
        var = z3.Real(f"{name}[{','.join(map(str, index))}]")
        self.vars[str(var)] = (name, index)
        return (var, z3.BoolVal(True))

    def const(self, value):
        if math.isnan(value):
            raise NotEncodable(f"constant {value}")
        if math.isinf(value):
            return Inf(1 if value > 0 else -1, z3.BoolVal(True))
        return (z3.RealVal(Fraction(value)), z3.BoolVal(True))

    def scalar(self, op, *x):
        if op in ("eq", "where"):
            return self._guard(op, *x)
        if any(isinstance(v, Inf) for v in x):
            return self._infinite(op, *x)
        return self._finite(op, *x)

    def _infinite(self, op, *x):
        """An operation with an infinite operand, as the reference evaluator (mpmath) computes it."""
        ok = z3.And(*[v.defined if isinstance(v, Inf) else v[1] for v in x])
        undefined = (z3.RealVal(0), z3.BoolVal(False))
        a = x[0]
        b = x[1] if len(x) > 1 else None
        match op:
            case "exp":
                return (z3.RealVal(0), ok) if a.sign < 0 else Inf(1, ok)
            case "fin":
                return (z3.RealVal(0), ok) if a.sign < 0 else Inf(1, ok)
            case "exp2":
                return (z3.RealVal(0), ok) if a.sign < 0 else Inf(1, ok)
            case "tanh":
                return (z3.RealVal(a.sign), ok)
            case "log" | "log2":
                raise NotEncodable(op)
            case "sub":
                b = Inf(-b.sign, b.defined) if isinstance(b, Inf) else (-b[0], b[1])
                return self._infinite("add", a, b)
            case "add":
                if isinstance(a, Inf) and isinstance(b, Inf):
                    return Inf(a.sign, ok) if a.sign == b.sign else undefined
                return Inf((a if isinstance(a, Inf) else b).sign, ok)
            case "max":
                if isinstance(a, Inf) and isinstance(b, Inf):
                    return Inf(max(a.sign, b.sign), ok)
                inf, other = (a, b) if isinstance(a, Inf) else (b, a)
                return Inf(1, ok) if inf.sign > 0 else (other[0], ok)
            case "mul":
                if isinstance(a, Inf) and isinstance(b, Inf):
                    return Inf(a.sign * b.sign, ok)
                inf, other = (a, b) if isinstance(a, Inf) else (b, a)
                sign = _numeral_sign(other[0])
                if sign is None:
                    raise NotEncodable("an infinity times a value of unknown sign")
                return undefined if sign == 0 else Inf(inf.sign * sign, ok)
            case "div":
                if isinstance(a, Inf) and isinstance(b, Inf):
                    return undefined
                if isinstance(b, Inf):
                    return (z3.RealVal(0), ok)          # finite / inf = 0
                sign = _numeral_sign(b[0])
                if sign is None:
                    raise NotEncodable("an infinity divided by a value of unknown sign")
                return undefined if sign == 0 else Inf(a.sign * sign, ok)
        raise ValueError(op)

    def _finite(self, op, *x):
        vals = [v for v, _ in x]
        ok = z3.And(*[d for _, d in x]) if len(x) > 1 else x[0][1]
        match op:
            case "add":
                return (vals[0] + vals[1], ok)
            case "sub":
                return (vals[0] - vals[1], ok)
            case "mul":
                return (vals[0] * vals[1], ok)
            case "div":
                return (vals[0] / vals[1], z3.And(ok, vals[1] != 0))
            case "max":
                return (z3.If(vals[0] >= vals[1], vals[0], vals[1]), ok)
            case "exp":
                self.exp_args.append(vals[0])
                return (self.exp_fn(vals[0]), ok)
            case "fin":
                return (vals[0], ok)  # no -inf is ever encoded, so fin is the identity here
            case "exp2":
                arg = vals[0] * self.ln2
                self.uses_ln2 = True
                self.exp_args.append(arg)
                return (self.exp_fn(arg), ok)
            case "tanh":
                self.tanh_args.append(vals[0])
                return (self.tanh_fn(vals[0]), ok)
            case "log" | "log2":
                raise NotEncodable(op)
        raise ValueError(op)

    @staticmethod
    def _defined(v):
        return v.defined if isinstance(v, Inf) else v[1]

    def _guard(self, op, *x):
        if op == "eq":
            a, b = x
            ok = z3.And(self._defined(a), self._defined(b))
            if isinstance(a, Inf) or isinstance(b, Inf):
                same = isinstance(a, Inf) and isinstance(b, Inf) and a.sign == b.sign
                return (z3.RealVal(1 if same else 0), ok)
            return (z3.If(a[0] == b[0], z3.RealVal(1), z3.RealVal(0)), ok)
        c, a, b = x
        if isinstance(c, Inf):
            truth = z3.BoolVal(True)
        else:
            truth = z3.simplify(c[0] != 0)
        ok_c = self._defined(c)
        if z3.is_true(truth) or z3.is_false(truth):
            taken = a if z3.is_true(truth) else b
            if isinstance(taken, Inf):
                return Inf(taken.sign, z3.And(ok_c, taken.defined))
            return (taken[0], z3.And(ok_c, taken[1]))
        if isinstance(a, Inf) or isinstance(b, Inf):
            if isinstance(a, Inf) and isinstance(b, Inf) and a.sign == b.sign:
                return Inf(a.sign, z3.And(ok_c, z3.If(truth, a.defined, b.defined)))
            raise NotEncodable("a where choosing between an infinity and a finite value on a symbolic condition")
        return (z3.If(truth, a[0], b[0]), z3.And(ok_c, z3.If(truth, a[1], b[1])))

    def axioms(self, limit: int = 40) -> list:
        args = list({a.sexpr(): a for a in self.exp_args}.values())
        out = []
        for a in args:
            out.append(self.exp_fn(a) > 0)
            out.append(z3.Implies(a == 0, self.exp_fn(a) == 1))
        small = args[:limit]
        for i, a in enumerate(small):
            for b in small[i + 1:]:
                out.append(z3.Implies(a < b, self.exp_fn(a) < self.exp_fn(b)))
                out.append(z3.Implies(b < a, self.exp_fn(b) < self.exp_fn(a)))
                for c in small:
                    out.append(z3.Implies(a + b == c, self.exp_fn(a) * self.exp_fn(b) == self.exp_fn(c)))
        if self.uses_ln2:
            out.append(z3.And(self.ln2 > z3.RealVal(Fraction("0.693147")), self.ln2 < z3.RealVal(Fraction("0.693148"))))
        targs = list({a.sexpr(): a for a in self.tanh_args}.values())
        for a in targs:
            out += [self.tanh_fn(a) > -1, self.tanh_fn(a) < 1, z3.Implies(a == 0, self.tanh_fn(a) == 0)]
        for i, a in enumerate(targs[:limit]):
            for b in targs[i + 1:limit]:
                out.append(z3.Implies(a < b, self.tanh_fn(a) < self.tanh_fn(b)))
                out.append(z3.Implies(b < a, self.tanh_fn(b) < self.tanh_fn(a)))
                out.append(z3.Implies(a == -b, self.tanh_fn(a) == -self.tanh_fn(b)))
        return out


def _differ(a, b):
    """The two results differ: in definedness, or both defined and different (an infinity differs from every
    finite value and from the other infinity)."""
    da = a.defined if isinstance(a, Inf) else a[1]
    db = b.defined if isinstance(b, Inf) else b[1]
    if isinstance(a, Inf) or isinstance(b, Inf):
        same = isinstance(a, Inf) and isinstance(b, Inf) and a.sign == b.sign
        return da != db if same else z3.Or(da != db, z3.And(da, db))
    return z3.Or(da != db, z3.And(da, db, a[0] != b[0]))


def decide(claim: Claim, sizes: dict[str, int], timeout_ms: int = 5000, fixed=None) -> Answer:
    """A proof, a model or neither at `sizes`. `fixed`: one pattern (0 or -inf per element) for every mask
    input; masks are never unknown reals."""
    if claim.masks and not fixed:
        return Answer(Outcome.UNKNOWN, reason="z3 encoding: a mask needs a fixed pattern")
    alg = Z3Algebra()
    inputs = symbolic_inputs(claim, sizes, alg, fixed)
    try:
        lv, rv = side_values(claim, sizes, alg, inputs)
    except NotEncodable as exc:
        return Answer(Outcome.UNKNOWN, reason=f"z3 encoding: {exc}")
    differences = [_differ(a, b) for a, b in zip(lv.ravel(), rv.ravel())]
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    solver.add(*alg.axioms())
    solver.add(z3.Or(*differences))
    answer = solver.check()
    if answer == z3.unsat:
        return Answer(Outcome.PROVED)
    if answer == z3.unknown:
        return Answer(Outcome.UNKNOWN, reason=f"z3: {solver.reason_unknown()}")
    model = solver.model()
    values = {}
    for name, ranks in claim.inputs:
        if fixed and name in fixed:
            values[name] = np.array(fixed[name], dtype=float)
            continue
        arr = np.zeros(tuple(sizes[r] for r in ranks))
        for idx in np.ndindex(*arr.shape):
            v = model.eval(inputs[name][idx][0], model_completion=True)
            arr[idx] = _to_float(v)
        values[name] = arr
    return Answer(Outcome.MODEL, model=values)


def _to_float(v) -> float:
    if z3.is_rational_value(v):
        return float(Fraction(v.numerator_as_long(), v.denominator_as_long()))
    if z3.is_algebraic_value(v):
        return float(Fraction(v.approx(20).as_fraction()))
    return 0.0


def version() -> str:
    return z3.get_version_string()


def exp_axioms_problem(timeout_ms: int = 10_000) -> str | None:
    """Why every proof of this encoding would be vacuous (its exp axioms unsatisfiable on their own), or None."""
    alg = Z3Algebra()
    a, b = alg.input("a", (0,)), alg.input("b", (0,))
    zero = alg.const(0.0)
    terms = [a, b, alg.scalar("add", a, b), alg.scalar("sub", a, b), alg.scalar("sub", b, a), zero,
             alg.scalar("mul", a, b)]
    for t in terms:
        alg.scalar("exp", t)
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    solver.add(*alg.axioms())
    answer = solver.check()
    if answer != z3.sat:
        return f"the exp axioms of the z3 encoding are {answer} on their own: every z3 proof would be vacuous"
    return None
