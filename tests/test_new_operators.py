"""exp2, log2, tanh, eq and where: the same value in every algebra, including the infinite and undefined cases, and
the engines that cannot decide them say so instead of passing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from verify import intervals, smt
from verify.evaluate import FLOAT, Mp, same_value
from verify.normal_form import NEG_INF, UNDEF, NormalForm, NotNormalizable, is_neg_inf
from verify.symbolic import SymPyAlgebra

NAN, INF = math.nan, math.inf
# (op, arguments, the reference value)
CASES = [
    ("exp2", (3.0,), 8.0), ("exp2", (-INF,), 0.0), ("exp2", (-1.0,), 0.5),
    ("log2", (8.0,), 3.0), ("log2", (0.0,), -INF), ("log2", (-1.0,), NAN), ("log2", (-INF,), NAN),
    ("tanh", (0.0,), 0.0), ("tanh", (-INF,), -1.0), ("tanh", (0.5,), math.tanh(0.5)),
    ("eq", (2.0, 2.0), 1.0), ("eq", (2.0, 3.0), 0.0), ("eq", (-INF, -INF), 1.0), ("eq", (-INF, 0.0), 0.0),
    ("eq", (NAN, 1.0), NAN),
    ("where", (1.0, 2.0, 3.0), 2.0), ("where", (0.0, 2.0, 3.0), 3.0), ("where", (-INF, 2.0, 3.0), 2.0),
    ("where", (0.0, NAN, 3.0), 3.0), ("where", (1.0, 2.0, NAN), 2.0), ("where", (NAN, 2.0, 3.0), NAN),
    ("where", (0.0, 1.0, -INF), -INF),
]


@pytest.mark.parametrize("op,args,want", CASES)
def test_float_and_mpmath(op, args, want):
    got = FLOAT.apply(op, *(np.array(a) for a in args)).item()
    assert same_value(got, want, rel=1e-12), (op, args, got)
    mp = Mp()
    val = mp.scalar(op, *(mp.const(a) for a in args))
    assert same_value(float(val), want, rel=1e-12), (op, args, val)


@pytest.mark.parametrize("op,args,want", CASES)
def test_intervals_enclose_the_value(op, args, want):
    alg = intervals.IntervalAlgebra()
    v = alg.scalar(op, *(alg.const(a) for a in args))
    if math.isnan(want):
        assert v.kind == "u"
    elif math.isinf(want):
        assert v == (intervals.POS_INF if want > 0 else intervals.NEG_INF)
    else:
        assert v.kind == "f" and float(intervals.mpmath.mpf(v.lo)) <= want <= float(intervals.mpmath.mpf(v.hi))


def test_normal_form_base2_is_exact():
    nf = NormalForm()
    x = nf.input("x", (0,))
    log2e = nf.scalar("log2", nf.scalar("exp", nf.const(1.0)))
    assert nf.equal(nf.scalar("exp2", nf.mul(x, log2e)), nf.scalar("exp", x))
    # the float constant 1.4426950408889634 is not log2(e): not proved equal
    assert not nf.equal(nf.scalar("exp2", nf.mul(x, nf.const(1.4426950408889634))), nf.scalar("exp", x))
    assert not nf.equal(nf.scalar("exp2", x), nf.scalar("exp", x))
    assert nf.equal(nf.scalar("log2", nf.const(2.0)), nf.const(1.0))
    assert is_neg_inf(nf.scalar("log2", nf.const(0.0)))
    assert nf.scalar("log2", NEG_INF) is UNDEF


def test_normal_form_guards_decide_or_refuse():
    nf = NormalForm()
    x, y = nf.input("x", (0,)), nf.input("y", (0,))
    s = nf.add(nf.exp(x), nf.exp(y))                       # a sum of exponentials: never 0
    assert nf.equal(nf.scalar("eq", s, nf.const(0.0)), nf.const(0.0))
    assert nf.equal(nf.scalar("eq", nf.add(x, y), nf.add(y, x)), nf.const(1.0))
    assert nf.equal(nf.scalar("where", nf.const(0.0), UNDEF, x), x)   # the branch not taken is not read
    assert nf.scalar("where", UNDEF, x, x) is UNDEF
    with pytest.raises(NotNormalizable):
        nf.scalar("eq", x, y)                               # x == y is undecided: no guess
    with pytest.raises(NotNormalizable):
        nf.scalar("where", x, x, y)


def test_normal_form_tanh_is_an_opaque_odd_function():
    nf = NormalForm()
    x = nf.input("x", (0,))
    assert nf.equal(nf.scalar("tanh", nf.neg(x)), nf.neg(nf.scalar("tanh", x)))
    assert not nf.equal(nf.scalar("tanh", x), x)
    assert nf.equal(nf.scalar("tanh", NEG_INF), nf.const(-1.0))


def test_sympy_and_z3_values():
    sp = SymPyAlgebra()
    assert float(sp.scalar("exp2", sp.const(3.0))) == pytest.approx(8.0)
    assert sp.scalar("where", sp.const(0.0), sp.scalar("div", sp.const(1.0), sp.const(0.0)), sp.const(2.0)) == 2
    z = smt.Z3Algebra()
    with pytest.raises(smt.NotEncodable):
        z.scalar("log2", z.input("x", (0,)))
    # a where choosing between +-inf and a finite value on a symbolic condition is refused, not guessed
    with pytest.raises(smt.NotEncodable):
        z.scalar("where", z.input("c", (0,)), z.const(-INF), z.input("x", (0,)))


def _random_term(rng, depth=0):
    """A random scalar term over x, y with the new operators among the old ones, as (op, args...) tuples."""
    if depth >= 3 or rng.random() < 0.25:
        return rng.choice(["x", "y", 0.0, 1.0, 2.0, -INF])
    op = rng.choice(["add", "sub", "mul", "div", "max", "exp", "exp2", "log2", "tanh", "eq", "where", "fin"])
    arity = {"eq": 2, "where": 3, "exp": 1, "exp2": 1, "log2": 1, "tanh": 1, "fin": 1}.get(op, 2)
    return (op, *(_random_term(rng, depth + 1) for _ in range(arity)))


def _value(alg, term, env):
    if isinstance(term, str):
        return env[term]
    if isinstance(term, float):
        return alg.const(term) if hasattr(alg, "scalar") else np.array(term)
    args = [_value(alg, a, env) for a in term[1:]]
    return alg.scalar(term[0], *args) if hasattr(alg, "scalar") else FLOAT.apply(term[0], *args)


def test_normal_form_never_proves_a_false_equality_with_the_new_operators():
    """Random pairs of terms: whenever the normal form calls them equal, they agree (undefined included) at
    random points in float64. NotNormalizable is fine (no verdict)."""
    import random

    rng = random.Random(21)
    proved = 0
    for _ in range(3000):
        a, b = _random_term(rng), _random_term(rng)
        nf = NormalForm()
        env = {"x": nf.input("x", (0,)), "y": nf.input("y", (0,))}
        try:
            if not nf.equal(_value(nf, a, env), _value(nf, b, env)):
                continue
        except NotNormalizable:
            continue
        proved += 1
        for _ in range(20):
            point = {"x": np.array(rng.uniform(-3, 3)), "y": np.array(rng.choice([0.0, rng.uniform(-3, 3)]))}
            fa, fb = _value(FLOAT, a, point).item(), _value(FLOAT, b, point).item()
            assert same_value(fa, fb, rel=1e-9), (a, b, point, fa, fb)
    assert proved > 50      # the test exercises real proofs, not only refusals
