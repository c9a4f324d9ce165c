"""Adversarial fuzzing of masked claims: every CERTIFIED verdict, obtained with parallel ranks pinned to 1 and
masks enumerated at small sizes, must hold at larger sizes (M = 3, P = 3) for every mask pattern the claim's
assumption allows, on random reals. A disagreement that interval arithmetic confirms is a false certificate."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verify import intervals
from verify.claims import rule_claim, side_values, with_assumptions
from verify.driver import prove_bounded
from verify.errors import VerifyError
from verify.evaluate import FLOAT, mismatches
from verify.masks import satisfies
from verify.options import Options
from verify.reader import read_text
from verify.verdict import Verdict

pytestmark = pytest.mark.slow     # hypothesis runs hundreds of examples per test

B = '(CreateTensor "B[m,p]:mask")'


@st.composite
def masked_terms(draw, depth=0):
    """Terms of rank {m, p} (or {p} after a reduce) over x[m,p], c[p] and the mask B."""
    if depth >= 3 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(["x", B, B, "(M_exp_mp x)"]))
    kind = draw(st.sampled_from(["add", "sub", "mul", "max", "exp", "fin", "reduce"]))
    a = draw(masked_terms(depth + 1))
    if kind in ("exp", "fin"):
        return f"(M_{kind}_mp {a})"
    if kind == "reduce":
        op = draw(st.sampled_from(["add", "max"]))
        return f"(M_add_mp (R_{op}_m {a}) (M_mul_mp (Const 0.0) x))"     # back to {m, p}, x keeps it defined
    b = draw(masked_terms(depth + 1))
    return f"(M_{kind}_mp {a} {b})"


def _mask_patterns(claim, sizes):
    ranks = dict(claim.inputs)["B"]
    shape = tuple(sizes[r] for r in ranks)
    for bits in itertools.product((0.0, -np.inf), repeat=int(np.prod(shape))):
        values = np.array(bits).reshape(shape)
        if all(satisfies(values, ranks, along) for _, along in claim.assumptions):
            yield values


# identities of finite reals, some of which fail where a mask is -inf (and an assumption may rescue them)
IDENTITIES = [
    ("(M_sub_mp {t} {t})", "(M_mul_mp (Const 0.0) {t})"),
    ("(M_exp_mp (M_add_mp {t} {u}))", "(M_mul_mp (M_exp_mp {t}) (M_exp_mp {u}))"),
    ("(M_max_mp {t} {u})", "(M_max_mp {u} {t})"),
    ("(M_fin_mp {t})", "{t}"),
    ("(M_sub_mp (M_add_mp {t} {u}) {u})", "{t}"),
    ("(M_add_mp (R_max_m {t}) (M_mul_mp (Const 0.0) x))", "(M_add_mp (R_max_m (M_fin_mp {t})) (M_mul_mp (Const 0.0) x))"),
    ("(M_add_mp (R_add_m (M_exp_mp {t})) (M_mul_mp (Const 0.0) x))", "(M_add_mp (R_add_m (M_exp_mp (M_fin_mp {t}))) (M_mul_mp (Const 0.0) x))"),
    ("(M_max_mp {t} (M_add_mp x (R_max_m {t})))", "(M_max_mp (M_add_mp x (R_max_m {t})) {t})"),
]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(masked_terms(), masked_terms(), st.sampled_from(IDENTITIES), st.booleans(),
       st.sampled_from([[], ["B unmasked along m"], ["B unmasked along p"]]))
def test_certified_masked_claims_hold_at_larger_sizes(t, u, identity, flip, assume):
    lhs, rhs = (side.format(t=t, u=u) for side in identity)
    if flip:
        lhs, rhs = rhs, lhs
    try:
        claim = rule_claim(read_text(f"(rewrite (M_add_mp x {lhs}) (M_add_mp x {rhs}))", "<fuzz>").rules[0])
        if "B" not in claim.masks:
            return
        claim = with_assumptions(claim, assume)
    except VerifyError:
        return
    result = prove_bounded(claim, Options(isolate=False, sympy=False, z3_timeout=2.0))
    assert result.verdict is not Verdict.ERROR, result.detail
    if result.verdict is not Verdict.CERTIFIED:
        return
    sizes = {"m": 3, "p": 3}
    rng = np.random.default_rng(0)
    for pattern in _mask_patterns(claim, sizes):
        inputs = {"B": pattern, "x": rng.normal(size=(3, 3)) * 3}
        if mismatches(*side_values(claim, sizes, FLOAT, inputs)).any():
            assert intervals.rigorous_difference(claim, sizes, inputs) is None, (lhs, rhs, assume, pattern.tolist())
