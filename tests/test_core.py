"""The core checker end to end: real egglog parsing, real normal form, real Z3, real SymPy, real numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli

from verify import refute
from verify.claims import equiv_claim, rule_claim
from verify.gate import check_by_kind, check_equiv
from verify.options import Options
from verify.reader import read_file, read_text
from verify.sizes import Bound, plan
from verify.verdict import Verdict

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"
OPTIONS = Options(isolate=False, sympy=False)


def claims_in(path):
    return [rule_claim(r) for r in read_file(path).rules]


def assert_replays(claim, cx):
    """A counterexample must really separate the sides when replayed from its printed inputs."""
    inputs = {name: np.array(t.values, dtype=float) for name, t in cx.inputs.items()}
    _, _, idx = refute.replay(claim, cx.sizes, inputs)
    assert idx is not None, "the counterexample does not replay"


# -- the rule library ------------------------------------------------------------------------------------------

LIBRARY = [(path, rule.name) for path in sorted((ROOT / "rules").glob("*.egg")) for rule in read_file(path).rules]


@pytest.mark.slow
@pytest.mark.parametrize("path,name", LIBRARY, ids=[n for _, n in LIBRARY])
def test_library_rule_is_certified(path, name):
    (claim,) = [c for c in claims_in(path) if c.name == name]
    result = check_by_kind(claim, OPTIONS)
    assert result.verdict is Verdict.CERTIFIED, result.detail
    assert result.counterexample is None


# -- programs: the seed's 3-pass and 2-pass ----------------------------------------------------------------------

def program(name):
    return read_file(ROOT / "proofs" / name).program


@pytest.mark.slow
def test_two_pass_equals_three_pass():
    claim = equiv_claim(program("attention.egg"), program("attention_2pass.egg"))
    result = check_by_kind(claim, OPTIONS)
    assert result.verdict is Verdict.CERTIFIED
    assert "M1<=4" in result.engines["bounded"] and "M0<=4" in result.engines["bounded"]
    assert result.bound.is_all_sizes          # lifted by its own obligations (verify/induction/rule_level/)


@pytest.mark.slow
def test_sign_flipped_correction_is_refuted(tmp_path):
    text = (ROOT / "proofs" / "attention_2pass.egg").read_text().replace("(M_sub_m1p LM GM)", "(M_sub_m1p GM LM)")
    flipped = tmp_path / "flipped.egg"
    flipped.write_text(text)
    report = check_equiv(ROOT / "proofs" / "attention.egg", flipped, OPTIONS)
    (result,) = report.results
    assert result.verdict is Verdict.REFUTED
    cx = result.counterexample
    # the bug needs at least two tiles with different maxima
    assert cx.sizes["m1"] >= 2
    assert any(name.endswith(".PRM") for name in cx.intermediates)
    claim = equiv_claim(program("attention.egg"), read_file(flipped).program)
    assert_replays(claim, cx)


def test_layout_bug_is_refuted():
    """Unsplitting with the tile ranks swapped (m0 major) is a transpose: refuted at the first 2 x 2 tiling."""
    rule = read_text("(rewrite (T_unsplit_m1m0_m (T_split_m_m1m0 x t)) (T_unsplit_m0m1_m (T_split_m_m1m0 x t)))")
    claim = rule_claim(rule.rules[0])
    result = check_by_kind(claim, OPTIONS)
    assert result.verdict is Verdict.REFUTED
    assert result.counterexample.sizes["m1"] >= 2 and result.counterexample.sizes["m0"] >= 2


@pytest.mark.slow
def test_normal_form_proves_without_z3_at_larger_bound():
    claim = equiv_claim(program("attention.egg"), program("attention_1pass.egg"))
    result = check_by_kind(claim, Options(bound=Bound.parse("M1=8,M0=4,F=2"), isolate=False, sympy=False))
    assert result.verdict is Verdict.CERTIFIED
    assert result.engines["bounded"] == "normal form at E<=2, M1<=8, M0<=4"     # no z3 in the bounded proof
    assert result.bound.is_all_sizes          # and lifted (verify/induction/rule_level/, closed forms)


@pytest.mark.slow
def test_sympy_second_opinion_is_recorded():
    claim = claims_in(ROOT / "rules" / "tiling.egg")[0]
    result = check_by_kind(claim, Options(isolate=True, sympy=True))
    assert result.verdict is Verdict.CERTIFIED
    assert result.engines["sympy"].startswith("agrees")


def test_z3_decides_what_the_normal_form_cannot():
    # max(s - c) = max(s) - c needs a fact about max that the normal form does not know
    rule = read_text("(rewrite (R_max_m (M_sub_mp s (M_max_p c c))) (M_sub_p (R_max_m s) (M_max_p c c)))").rules[0]
    result = check_by_kind(rule_claim(rule), OPTIONS)
    assert result.verdict is Verdict.CERTIFIED
    assert "z3" in result.method


# -- shapes ------------------------------------------------------------------------------------------------------

def test_pattern_variable_gets_largest_consistent_ranks():
    rule = read_text("(rewrite (R_add_m (M_mul_mp c x)) (M_mul_p c (R_add_m x)))").rules[0]
    claim = rule_claim(rule)
    assert claim.input_ranks() == {"c": ("p",), "x": ("m", "p")}
    rule = read_text("(rewrite (R_add_m (M_sub_mp c x)) (R_add_m (M_sub_mp c x)))").rules[0]
    assert rule_claim(rule).input_ranks()["c"] == ("m", "p")


def test_parallel_ranks_are_pinned():
    claim = equiv_claim(program("attention.egg"), program("attention_2pass.egg"))
    the_plan = plan(claim, Bound())
    assert set(the_plan.parallel) == {"f", "p"}
    assert all(s["m"] == s["m1"] * s["m0"] for s in the_plan.sizes())
    assert {(s["m1"], s["m0"]) for s in the_plan.sizes()} == {(a, b) for a in range(1, 5) for b in range(1, 5)}


# -- CLI ---------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_cli_json_schema_and_exit_codes(tmp_path):
    code, out, _ = run_cli("check", ROOT / "rules" / "tiling.egg", "--json", "--no-sympy")
    assert code == 0
    results = json.loads(out)
    assert {"name", "file", "line", "verdict", "bound", "method", "seconds", "counterexample"} <= set(results[0])
    assert all(r["verdict"] == "CERTIFIED" and r["counterexample"] is None for r in results)
    code, out, _ = run_cli("check", CORPUS / "false" / "div-cancel.egg", "--json", "--no-sympy")
    assert code == 1
    (result,) = json.loads(out)
    assert result["verdict"] == "REFUTED"
    assert result["counterexample"]["sizes"] and result["counterexample"]["inputs"]


@pytest.mark.slow
def test_cli_equiv_prints_readable_counterexample(tmp_path):
    text = (ROOT / "proofs" / "attention_2pass.egg").read_text().replace("(M_sub_m1p LM GM)", "(M_sub_m1p GM LM)")
    (tmp_path / "flipped.egg").write_text(text)
    code, out, _ = run_cli("equiv", ROOT / "proofs" / "attention.egg", tmp_path / "flipped.egg", "--no-sympy")
    assert code == 1
    assert "REFUTED" in out and "inputs:" in out and "lhs =" in out and "PRM" in out


@pytest.mark.parametrize("argv,needle", [
    (["check", "no/such/file.egg"], "no such file"),
    (["check", "rules", "--bound", "M1=0"], "bound"),
    (["check", "rules", "--bound", "M1=eight"], "cannot read bound"),
    (["check", "rules", "--timeout", "-3"], "--timeout"),
    (["equiv", "proofs/attention.egg", "rules/tiling.egg"], "extract"),
])
def test_bad_command_lines(argv, needle, tmp_path):
    import os

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        code, out, err = run_cli(*argv)
    finally:
        os.chdir(cwd)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err


def test_empty_directory_is_an_error(tmp_path):
    code, _, err = run_cli("check", tmp_path)
    assert code == 2 and "no .egg files" in err
