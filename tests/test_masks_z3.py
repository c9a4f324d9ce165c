"""Masks are 0 or -inf in every engine: Z3 decides masked claims pattern by pattern, its infinity arithmetic
agrees with the reference evaluator, and the numeric cross-check never feeds a real number into a mask."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import z3

from verify import smt
from verify.claims import rule_claim, with_assumptions
from verify.evaluate import Mp
from verify.gate import check_by_kind
from verify.options import Options
from verify.reader import read_text
from verify.verdict import Verdict

OPTIONS = Options(isolate=False, sympy=False)
VALUES = [-math.inf, math.inf, -2.0, 0.0, 3.0]


def z3_value(x):
    """(defined, value) of an encoded scalar with numeral operands: value is a float or +-inf."""
    if isinstance(x, smt.Inf):
        return z3.is_true(z3.simplify(x.defined)), math.inf * x.sign
    defined = z3.is_true(z3.simplify(x[1]))
    v = z3.simplify(x[0])
    return defined, float(v.numerator_as_long()) / float(v.denominator_as_long())


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "max", "exp", "fin"])
def test_infinity_arithmetic_agrees_with_mpmath(op):
    alg, mp = smt.Z3Algebra(), Mp()
    arity = 1 if op in ("exp", "fin") else 2
    for args in itertools.product(VALUES, repeat=arity):
        if not any(math.isinf(a) for a in args):
            continue
        defined, value = z3_value(alg.scalar(op, *[alg.const(a) for a in args]))
        want = mp.scalar(op, *[mp.const(a) for a in args])
        if mp.mp.isnan(want):
            assert not defined, (op, args, value)
        else:
            assert defined and value == float(want), (op, args, value, want)


def test_infinity_times_an_unknown_sign_is_not_encoded():
    alg = smt.Z3Algebra()
    with pytest.raises(smt.NotEncodable):
        alg.scalar("mul", alg.const(-math.inf), alg.input("x", (0,)))


def claim_of(text, assumptions=()):
    (rule,) = read_text(text, "<mask>").rules
    return with_assumptions(rule_claim(rule), list(assumptions))


B = '(CreateTensor "B[m,p]:mask")'


def test_z3_proves_a_masked_claim_the_normal_form_cannot_and_refutes_a_wrong_one():
    true = claim_of(f"(rewrite (M_add_mp (M_max_mp (M_sub_mp x y) (Const 0.0)) (M_add_mp y {B})) "
                    f"(M_add_mp (M_max_mp x y) {B}))")
    result = check_by_kind(true, OPTIONS)
    assert result.verdict is Verdict.CERTIFIED, result.detail
    assert "mask patterns" in result.engines["z3"]
    # wrong only where B = 0 and x > y + 1: the model must come from the unmasked pattern and replay
    wrong = claim_of(f"(rewrite (M_add_mp (M_max_mp (M_sub_mp x y) (Const 0.0)) (M_add_mp y {B})) "
                     f"(M_add_mp (M_max_mp x (M_add_mp y (Const 1.0))) {B}))")
    sizes = {"m": 1, "p": 1}
    assert smt.decide(wrong, sizes, 5000, fixed={"B": np.array([[-np.inf]])}).outcome is smt.Outcome.PROVED
    answer = smt.decide(wrong, sizes, 5000, fixed={"B": np.array([[0.0]])})
    assert answer.outcome is smt.Outcome.MODEL and answer.model["B"].tolist() == [[0.0]]
    assert check_by_kind(wrong, OPTIONS).verdict is Verdict.REFUTED
    assert smt.decide(wrong, sizes, 5000).outcome is smt.Outcome.UNKNOWN       # never a real number for a mask


@pytest.mark.parametrize("rule,assume", [
    (f"(rewrite (M_add_p x (R_max_m {B})) x)", ["B unmasked along m"]),        # the row max of B is 0
    (f"(rewrite (M_mul_mp (M_exp_mp {B}) (M_exp_mp {B})) (M_exp_mp {B}))", []),  # exp(B)^2 = exp(B)
])
def test_true_mask_identities_are_certified_and_cross_checked_with_masks(rule, assume):
    result = check_by_kind(claim_of(rule, assume), OPTIONS)
    assert result.verdict is Verdict.CERTIFIED, result.detail
    assert result.engines["numeric cross-check"].startswith("agrees")


def test_the_row_max_identity_needs_its_assumption():
    result = check_by_kind(claim_of(f"(rewrite (M_add_p x (R_max_m {B})) x)"), OPTIONS)
    assert result.verdict is Verdict.REFUTED


@pytest.mark.slow
def test_a_verdict_under_an_assumption_says_so_in_the_line_and_in_json(tmp_path):
    import io
    import json

    from verify import cli

    path = tmp_path / "rowmax.egg"
    path.write_text(f"; assume: B unmasked along m\n; rowmax: the row max of B is 0\n(rewrite (M_add_p x (R_max_m {B})) x)\n")
    out = io.StringIO()
    assert cli.run(["check", str(path), "--no-sympy", "--cache", "off", "--plain"], out, io.StringIO()) == 0
    assert "CERTIFIED (M<=2; normal form; assuming B unmasked along m)" in out.getvalue()
    out = io.StringIO()
    assert cli.run(["check", str(path), "--no-sympy", "--cache", "off", "--json"], out, io.StringIO()) == 0
    assert json.loads(out.getvalue())[0]["assumptions"] == ["B unmasked along m"]
