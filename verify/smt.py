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
- -inf constants are not encoded (`NotEncodable`): such claims are left to the normal form and search.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import z3

from .claims import Claim, aligned_pair, evaluate_both
from .evaluate import ObjectAlgebra


class NotEncodable(Exception):
    pass


class Z3Algebra(ObjectAlgebra):
    name = "z3"

    def __init__(self):
        super().__init__()
        self.exp_fn = z3.Function("exp", z3.RealSort(), z3.RealSort())
        self.exp_args: list = []
        self.vars: dict[str, tuple] = {}

    def input(self, name: str, index: tuple):
        var = z3.Real(f"{name}[{','.join(map(str, index))}]")
        self.vars[str(var)] = (name, index)
        return (var, z3.BoolVal(True))

    def const(self, value):
        if not math.isfinite(value):
            raise NotEncodable(f"constant {value}")
        return (z3.RealVal(Fraction(value)), z3.BoolVal(True))

    def scalar(self, op, *x):
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
            case "log":
                raise NotEncodable("log")
        raise ValueError(op)

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
        return out


def decide(claim: Claim, sizes: dict[str, int], timeout_ms: int = 5000):
    """('proved', None) | ('model', inputs as float arrays) | ('unknown', reason)."""
    alg = Z3Algebra()
    inputs = {}
    for name, ranks in claim.inputs:
        shape = tuple(sizes[r] for r in ranks)
        arr = np.empty(shape, dtype=object)
        for idx in np.ndindex(*shape):
            arr[idx] = alg.input(name, idx)
        inputs[name] = arr
    try:
        left, right = evaluate_both(claim, sizes, alg, inputs)
    except NotEncodable as exc:
        return "unknown", f"z3 encoding: {exc}"
    lv, rv = aligned_pair(claim, left, right)
    lv, rv = np.broadcast_arrays(lv, rv)
    differences = []
    for a, b in zip(lv.ravel(), rv.ravel()):
        (va, da), (vb, db) = a, b
        differences.append(z3.Or(da != db, z3.And(da, db, va != vb)))
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    solver.add(*alg.axioms())
    solver.add(z3.Or(*differences))
    answer = solver.check()
    if answer == z3.unsat:
        return "proved", None
    if answer == z3.unknown:
        return "unknown", f"z3: {solver.reason_unknown()}"
    model = solver.model()
    values = {}
    for name, ranks in claim.inputs:
        arr = np.zeros(tuple(sizes[r] for r in ranks))
        for idx in np.ndindex(*arr.shape):
            v = model.eval(inputs[name][idx][0], model_completion=True)
            arr[idx] = _to_float(v)
        values[name] = arr
    return "model", values


def _to_float(v) -> float:
    if z3.is_rational_value(v):
        return float(Fraction(v.numerator_as_long(), v.denominator_as_long()))
    if z3.is_algebraic_value(v):
        return float(Fraction(v.approx(20).as_fraction()))
    return 0.0


def version() -> str:
    return z3.get_version_string()
