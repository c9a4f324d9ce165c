"""Fuzzing the front end: whatever the input, the outcome is a parsed result or a VerifyError, never a crash.

Three generators: random bytes (as a file), random s-expressions built from egglog-ish tokens, and random
nested terms over operator names of the seed notation (valid and near-valid) for the rank checker. A term
that passes the rank checker is also planned and evaluated once in float64, which must not crash either.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verify import ir, refute
from verify.claims import rule_claim
from verify.errors import VerifyError
from verify.reader import read_file, read_text
from verify.shapes import program_ranks
from verify.sizes import Bound, plan

pytestmark = pytest.mark.slow     # hypothesis runs hundreds of examples per test

FAST = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

RANKS = ["e", "f", "m", "p", "m1", "m0", "q", "E", "m12", ""]
OPS = ["add", "sub", "mul", "div", "max", "exp", "log", "fin", "min", "pow", "none", ""]


def _outcome(thunk):
    """Run the front end; a VerifyError is a fine outcome, anything else propagates (and fails the test)."""
    try:
        return thunk()
    except VerifyError as exc:
        assert exc.format()  # it can be printed
        return None


# -- random bytes ---------------------------------------------------------------------------------------------

@FAST
@given(st.binary(max_size=400))
def test_random_bytes_as_a_file(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "fuzz.egg")
        with open(path, "wb") as f:
            f.write(data)
        _outcome(lambda: read_file(path))


@FAST
@given(st.text(max_size=300))
def test_random_text(text):
    _outcome(lambda: read_text(text, "<fuzz>"))


# -- random s-expressions -------------------------------------------------------------------------------------

@st.composite
def operator_names(draw):
    family = draw(st.sampled_from(["M", "R", "T", "S", "M_R", "X", "leaf"]))
    ranks = lambda n: "".join(draw(st.lists(st.sampled_from(RANKS), min_size=0, max_size=n)))  # noqa: E731
    match family:
        case "M":
            return f"M_{draw(st.sampled_from(OPS))}_{ranks(4)}"
        case "R":
            return f"R_{draw(st.sampled_from(OPS))}_{ranks(2)}"
        case "M_R":
            return f"M_{draw(st.sampled_from(OPS))}_{ranks(4)}_R_{draw(st.sampled_from(OPS))}_{ranks(1)}"
        case "T":
            kind = draw(st.sampled_from(["split", "unsplit", "tile"]))
            return f"T_{kind}_{ranks(2)}_{ranks(2)}"
        case "S":
            return f"S_{draw(st.sampled_from(['scan', 'prev', 'shift', 'last', 'loop']))}_{ranks(1)}"
        case "X":
            return draw(st.sampled_from(["softmax", "Const", "CreateTensor", "datatype", "let", "M", "R_", "_"]))
    return "CreateTensor"


def leaves():
    return st.one_of(
        st.sampled_from(["x", "y", "s", "c", "t", "Q", "K", "V", "A"]),
        st.sampled_from(['"Q"', '"K"', '"V"', '"X[m,p]"', '"S[m1,m0,p]"', '"B[m,p]:mask"', '"bad[M]"', '"RM"']),
        st.integers(-3, 9).map(str),
        st.sampled_from(["0.0", "1.5", "-inf", "inf", "nan", "1e400", "-0.0"]),
        st.sampled_from(["(Const -inf)", "(Const 0.0)", "(Const 1.0)", '(CreateTensor "Q")', '(CreateTensor "X[m,p]")']),
    )


def terms(max_leaves: int = 12):
    return st.recursive(
        leaves(),
        lambda inner: st.builds(lambda op, args: f"({op} {' '.join(args)})", operator_names(),
                                st.lists(inner, min_size=0, max_size=3)),
        max_leaves=max_leaves,
    )


@st.composite
def programs(draw):
    commands = []
    names = ["Q", "K", "V", "X", "Y", "Z"]
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["let", "let", "rewrite", "birewrite", "extract", "rule", "junk", "run"]))
        if kind == "let":
            commands.append(f"(let {draw(st.sampled_from(names))} {draw(terms())})")
        elif kind in ("rewrite", "birewrite"):
            commands.append(f"({kind} {draw(terms())} {draw(terms())})")
        elif kind == "extract":
            commands.append(f"(extract {draw(st.sampled_from(names + ['(M_exp_mp Q)']))})")
        elif kind == "rule":
            commands.append(f"(rule ((= v {draw(terms())})) ((union v {draw(terms())})))")
        elif kind == "run":
            commands.append("(run 3)")
        else:
            commands.append(draw(st.sampled_from(["(", ")", "(let)", "(let 3 4)", "(datatype Tensor (M_exp_mp Tensor))",
                                                  "; comment", "(include \"x.egg\")", "(check (= a b))", "\"str",
                                                  "(rewrite a)", "(extract)", "(push)", "(pop 2)"])))
    text = "\n".join(commands)
    if draw(st.booleans()) and text:
        cut = draw(st.integers(0, len(text)))
        text = text[:cut]  # truncated: unbalanced
    return text


def _check_everything(text: str):
    source = read_text(text, "<fuzz>")
    program_ranks(source.program)
    for rule in source.rules:
        claim = _outcome(lambda: rule_claim(rule))
        if claim is not None:
            _evaluate_once(claim)
    return source


def _evaluate_once(claim):
    """A claim that passed the rank checker is planned and evaluated once: a VerifyError at most."""
    def run():
        the_plan = plan(claim, Bound.parse("M=2,M1=2,M0=2,E=2,F=2,P=2,Q=2"))
        for sizes in list(the_plan.sizes())[:1]:
            rng = np.random.default_rng(0)
            trial = {name: rng.normal(size=tuple(sizes[r] for r in ranks)) for name, ranks in claim.inputs}
            refute.check_values(claim, sizes, trial)

    _outcome(run)


@FAST
@given(programs())
def test_random_s_expressions(text):
    _outcome(lambda: _check_everything(text))


# -- the rank checker on random nested terms ------------------------------------------------------------------

@st.composite
def well_named_terms(draw, depth=0):
    """Terms over *valid* operator names with random ranks: mostly ill-shaped, sometimes fine."""
    if depth >= 3 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(["x", "y", "c", '(CreateTensor "X[m,p]")', '(CreateTensor "Q")',
                                     "(Const 0.0)", "(Const -inf)"]))
    space = "".join(draw(st.lists(st.sampled_from(["e", "f", "m", "p", "m1", "m0"]), min_size=1, max_size=4,
                                  unique=True)))
    rank = draw(st.sampled_from(["e", "f", "m", "p", "m1", "m0"]))
    kind = draw(st.sampled_from(["map2", "map1", "reduce", "split", "unsplit", "scan", "shift", "last"]))
    sub = lambda: draw(well_named_terms(depth=depth + 1))  # noqa: E731
    match kind:
        case "map2":
            return f"(M_{draw(st.sampled_from(['add', 'sub', 'mul', 'div', 'max']))}_{space} {sub()} {sub()})"
        case "map1":
            return f"(M_{draw(st.sampled_from(['exp', 'log', 'fin', 'exp2', 'log2', 'tanh']))}_{space} {sub()})"
        case "reduce":
            return f"(R_{draw(st.sampled_from(['add', 'max']))}_{rank} {sub()})"
        case "split":
            return f"(T_split_m_m1m0 {sub()} t)"
        case "unsplit":
            return f"(T_unsplit_m1m0_m {sub()})"
        case "scan":
            return f'(S_scan_m1 "R" (Const 0.0) (M_add_m1{space.replace("m1", "")} (S_prev_m1 "R") {sub()}))'
        case "shift":
            return f"(S_shift_m1 {sub()} (Const -inf))"
    return f"(S_last_m1 {sub()})"


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(well_named_terms(), well_named_terms())
def test_rank_checker_on_random_terms(lhs, rhs):
    _outcome(lambda: _check_everything(f"(rewrite {lhs} {rhs})"))


# -- the whole pipeline on random well-shaped rules and their mutants -----------------------------------------

@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(well_named_terms(), st.integers(0, 10_000))
def test_pipeline_on_random_rules_and_mutants(term, pick):
    """lhs = a random well-shaped term, rhs = one random mutation of it: the checker decides without crashing,
    and no certified verdict is contradicted by the numeric cross-check (that would be an ERROR)."""
    from dataclasses import replace

    from verify import mutate
    from verify.driver import prove_bounded
    from verify.options import Options
    from verify.verdict import Verdict

    try:
        rule = read_text(f"(rewrite {term} {term})", "<fuzz>").rules[0]
        rule_claim(rule)
    except VerifyError:
        return
    ctx = mutate._Context(tuple(ir.rank_names(rule.lhs)), mutate._splits([rule.lhs]))
    found = list(mutate.mutations(rule.rhs, ctx))
    if not found:
        return
    _, new = found[pick % len(found)]
    claim = _outcome(lambda: rule_claim(replace(rule, rhs=new)))
    if claim is None:
        return
    options = Options(isolate=False, sympy=False, z3_timeout=2.0, bound=Bound.parse("M1=3,M0=3,M=3,E=2,F=2,P=2"))
    result = _outcome(lambda: prove_bounded(claim, options))
    assert result is None or result.verdict is not Verdict.ERROR, result.detail
