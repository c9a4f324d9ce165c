"""Soundness: what the counterexamples must show, regressions, guarded engines, resource limits, mutants.

The corpus itself (tests/corpus: false rules refuted with replayed counterexamples, true ones certified, bad
input refused) runs in tests/test_corpus.py. See verify/vacuity.py, verify/crosscheck.py and verify/intervals.py
for the guards and verify/mutate.py for mutation testing.
"""

from __future__ import annotations

import re
import resource
import time
from dataclasses import replace

import numpy as np
import pytest
from test_corpus import CORPUS, OPTIONS, ROOT, claims_of, replays, run_cli  # the corpus runner's helpers

from verify import driver, intervals, isolation, mutate, refute, targets, vacuity
from verify.claims import equiv_claim, rule_claim
from verify.gate import check_by_kind, check_claims, check_paths
from verify.options import Options
from verify.reader import read_file, read_text
from verify.sizes import Bound, plan
from verify.verdict import Verdict

# -- what the counterexamples must show ---------------------------------------------------------------------

def refuted(name: str):
    (claim,) = claims_of(CORPUS / "false" / name)
    result = check_by_kind(claim, OPTIONS)
    assert result.verdict is Verdict.REFUTED
    return claim, result.counterexample


def test_layout_bug_visible_only_with_non_square_tiles():
    _, cx = refuted("layout-nonsquare.egg")
    assert cx.sizes["m1"] >= 2 and cx.sizes["m0"] >= 2 and cx.sizes["m1"] != cx.sizes["m0"]
    _, cx = refuted("layout-count-vs-size.egg")
    assert cx.sizes["m1"] != cx.sizes["m0"]


@pytest.mark.parametrize("name", ["tiles-max-sum-swap.egg", "reduce-order-mixed.egg",
                                  "layout-transpose.egg"])
def test_bugs_that_need_two_tiles_of_two(name):
    _, cx = refuted(name)
    assert cx.sizes["m1"] >= 2 and cx.sizes["m0"] >= 2


def test_plans_include_non_square_tilings_and_twos():
    claim, _ = refuted("layout-nonsquare.egg")
    tilings = {(s["m1"], s["m0"]) for s in plan(claim, Bound()).sizes()}
    assert (2, 2) in tilings and (2, 3) in tilings and (3, 2) in tilings


def one_pass_mutant(tmp_path, old: str, new: str):
    text = (ROOT / "proofs" / "attention_1pass.egg").read_text()
    assert old in text
    path = tmp_path / "mutant.egg"
    path.write_text(text.replace(old, new))
    return equiv_claim(read_file(ROOT / "proofs" / "attention.egg").program, read_file(path).program)


def test_one_pass_that_forgets_to_rescale_the_numerator(tmp_path):
    claim = one_pass_mutant(tmp_path, '(M_add_fm1p SLNV (M_mul_fm1p (S_prev_m1 "RNV") PRM))',
                            '(M_add_fm1p SLNV (S_prev_m1 "RNV"))')
    result = check_by_kind(claim, OPTIONS)
    assert result.verdict is Verdict.REFUTED
    cx = result.counterexample
    assert replays(claim, cx)
    # right whenever the running max never changes: the counterexample has a later tile with a larger score
    assert cx.sizes["m1"] >= 2
    rm = np.array([v for k, v in cx.intermediates.items() if k.endswith(".RM")][0].values, dtype=float)
    assert not np.all(rm == rm.reshape(rm.shape[0], -1)[:1].reshape((1,) + rm.shape[1:]))


@pytest.mark.slow
def test_harmless_one_pass_variants_are_certified(tmp_path):
    # any finite shift cancels (RM from 0), and RD[0] is multiplied by PRM[0] = exp(-inf - RM[1]) = 0
    for old, new in [('(S_scan_m1 "RM" (Const -inf)', '(S_scan_m1 "RM" (Const 0.0)'),
                     ('(S_scan_m1 "RD" (Const 0.0)', '(S_scan_m1 "RD" (Const 1.0)')]:
        assert check_by_kind(one_pass_mutant(tmp_path, old, new), OPTIONS).verdict is Verdict.CERTIFIED


# -- soundness bugs found while building the corpus (regressions) -------------------------------------------

def test_sixty_digits_do_not_refute_a_true_rule():
    """(exp(a*b*a) + c) - exp(a*b*a) = c: mpmath at 60 digits loses c once a*b*a is a few hundred. Before the
    interval replay this true rule was REFUTED with a = -6, b = 16, c = -13."""
    (claim,) = claims_of(CORPUS / "true" / "big-cancel.egg")
    trial = {"a": np.array([-6.0]), "b": np.array([16.0]), "c": np.array([-13.0])}
    assert refute.replay(claim, {"p": 1}, trial)[2] is not None      # the 60-digit replay is fooled ...
    assert refute.confirm(claim, {"p": 1}, trial, "test",                # ... the confirmation is not
                          prove_difference=intervals.rigorous_difference) is None


def test_rounding_residue_is_not_a_nonzero_divisor():
    """x / (exp(a)exp(b) - exp(a+b)) is undefined everywhere; 60 digits made the divisor nonzero."""
    (claim,) = claims_of(CORPUS / "true" / "undefined-both.egg")
    trial = {"a": np.array([1.36646]), "b": np.array([1.34588]), "x": np.array([0.0])}
    assert refute.confirm(claim, {"p": 1}, trial, "test", prove_difference=intervals.rigorous_difference) is None


def test_minus_inf_does_not_swallow_a_definedness_condition():
    """-inf + a/(b - 0.3) is undefined at b = 0.3 (which random search never hits); the normal form once
    returned a bare -inf and certified this false rule."""
    rule = read_text("(rewrite (M_exp_p (M_add_p (Const -inf) (M_div_p a (M_sub_p b (Const 0.3))))) "
                     "(M_mul_p a (Const 0.0)))").rules[0]
    claim = rule_claim(rule)
    assert refute.confirm(claim, {"p": 1}, {"a": np.array([1.0]), "b": np.array([0.3])}, "test",
                          prove_difference=intervals.rigorous_difference) is not None
    assert check_by_kind(claim, OPTIONS).verdict is not Verdict.CERTIFIED


def test_scalar_outputs_do_not_crash_the_object_algebras():
    """A scan over a rank-1 tensor slices it down to scalars; the normal form and Z3 once crashed on them."""
    from verify import smt

    rule = read_text('(rewrite (S_last_m1 (S_scan_m1 "R" (Const 0.0) (M_add_m1 (S_prev_m1 "R") x))) '
                     '(R_add_m1 x))').rules[0]
    assert check_by_kind(rule_claim(rule), OPTIONS).verdict is Verdict.CERTIFIED
    claim = rule_claim(read_text("(rewrite (R_add_m1 (R_max_m0 (T_split_m_m1m0 x t))) "
                                 "(R_add_m1 (R_max_m0 (T_split_m_m1m0 x t))))").rules[0])
    assert smt.decide(claim, {"m": 4, "m1": 2, "m0": 2}).outcome is smt.Outcome.PROVED


@pytest.mark.slow
def test_induction_lifts_only_the_modelled_cascades(tmp_path):
    """A 1-pass that is wrong only from M1 = 9 on, named with the 3pass=1pass lemma group: must not be
    CERTIFIED for all sizes."""
    text = (ROOT / "proofs" / "attention_1pass.egg").read_text().replace("(extract AV)", "")
    expr = "(M_sub_p C (Const 1.0))"
    for k in range(2, 9):   # (C - 1)(C - 2)...(C - 8) with C = M1: zero for M1 <= 8 only
        expr = f"(M_mul_p {expr} (M_sub_p C (Const {k}.0)))"
    text += f"""
(let ONE (M_exp_m1p (M_sub_m1p LM LM)))
(let C (R_add_m1 ONE))
(let AV2 (M_add_fp AV {expr}))
(extract AV2)
"""
    (tmp_path / "late.egg").write_text(text)
    (tmp_path / "attention.egg").write_text((ROOT / "proofs" / "attention.egg").read_text())
    (tmp_path / "c.chain.toml").write_text('bound = "M1=8,M0=2,F=1"\n[[step]]\nname = "late"\n'
                                           'from = "attention.egg"\nto = "late.egg"\n'
                                           'unbounded = ["3pass=1pass (all M1, M0)"]\n')
    (claim,) = targets.read_chain(tmp_path / "c.chain.toml")
    result = check_by_kind(claim, Options(sympy=False))
    beyond = check_by_kind(replace(claim, bound="M1=9..9,M0=1..1", unbounded=()), OPTIONS)
    assert beyond.verdict is Verdict.REFUTED
    assert not (result.verdict is Verdict.CERTIFIED and result.bound.is_all_sizes)
    assert "not lifted" in result.engines["induction"]


# -- the vacuity guard ----------------------------------------------------------------------------------------

@pytest.fixture
def fresh_guard():
    vacuity.reset_guard_cache()
    yield
    vacuity.reset_guard_cache()


@pytest.mark.slow
def test_guard_passes_and_is_cached(fresh_guard):
    ok, detail = vacuity.vacuity_guard(OPTIONS)
    assert ok, detail
    start = time.monotonic()
    assert vacuity.vacuity_guard(OPTIONS) == (ok, detail)
    assert time.monotonic() - start < 0.01


@pytest.mark.slow
def test_unsatisfiable_axioms_make_every_verdict_unknown(fresh_guard, monkeypatch):
    import z3

    from verify import smt

    monkeypatch.setattr(smt.Z3Algebra, "axioms", lambda self, limit=40: [z3.BoolVal(False)])
    ok, detail = vacuity.vacuity_guard(OPTIONS)
    assert not ok and "unsat" in detail
    claims = [rule_claim(r) for r in read_file(ROOT / "rules" / "softmax.egg").rules]
    claims += claims_of(CORPUS / "false" / "sign-sub-commute.egg")
    results = check_claims(claims, OPTIONS)
    assert all(r.verdict is Verdict.UNKNOWN and "vacuity guard failed" in r.detail for r in results)


@pytest.mark.slow
def test_a_normal_form_that_proves_everything_fails_the_guard(fresh_guard, monkeypatch):
    from verify.normal_form import NormalForm

    monkeypatch.setattr(NormalForm, "equal", lambda self, a, b: True)
    ok, detail = vacuity.vacuity_guard(OPTIONS)
    assert not ok and "the normal form proves it" in detail


def test_blind_search_and_vacuous_prover_are_caught_by_the_cross_check(monkeypatch):
    """If search misses and the prover says yes to anything, the numeric cross-check turns the false
    CERTIFIED into a loud ERROR."""
    from verify.normal_form import NormalForm

    monkeypatch.setattr(refute, "search", lambda *a, **k: None)
    monkeypatch.setattr(NormalForm, "equal", lambda self, a, b: True)
    (claim,) = claims_of(CORPUS / "false" / "drop-prm-tiled-sum.egg")
    result = check_by_kind(claim, OPTIONS)
    assert result.verdict is Verdict.ERROR and "internal error" in result.detail
    assert result.engines["numeric cross-check"].startswith("DISAGREES")
    assert replays(claim, result.counterexample)


def test_cross_check_tolerates_float_overflow_on_true_claims():
    (claim,) = claims_of(CORPUS / "true" / "softmax-no-shift.egg")
    sizes = list(plan(claim, Bound()).sizes())
    out = driver.prove_bounded(claim, OPTIONS)
    assert out.verdict is Verdict.CERTIFIED, out.detail
    sizes = sizes[-1]
    trial = {name: np.full(tuple(sizes[r] for r in ranks), 800.0) for name, ranks in claim.inputs}
    trial["s"].flat[0] = -800.0
    assert not refute.check_values(claim, sizes, trial)            # exp(800) overflows float64 ...
    assert intervals.rigorous_difference(claim, sizes, trial) is None  # ... the interval replay agrees


# -- resource limits ------------------------------------------------------------------------------------------

def _sleep(seconds):
    time.sleep(seconds)
    return "woke up"


@pytest.mark.slow
def test_timeout_kills_a_sleeping_child():
    start = time.monotonic()
    outcome = isolation.run_isolated(_sleep, (60,), 0.5)
    assert isinstance(outcome, isolation.Failure) and outcome.kind == "timeout"
    assert time.monotonic() - start < 10


@pytest.mark.slow
def test_claim_timeout_is_unknown(monkeypatch):
    monkeypatch.setattr(driver, "prove_bounded", lambda claim, options: _sleep(60))
    (claim,) = claims_of(CORPUS / "true" / "max-assoc.egg")
    start = time.monotonic()
    result = check_by_kind(claim, Options(sympy=False, timeout=0.5))
    assert result.verdict is Verdict.UNKNOWN and "timeout" in result.detail
    assert time.monotonic() - start < 10


def _address_space() -> int:
    with open("/proc/self/status") as f:
        return int(re.search(r"VmSize:\s+(\d+) kB", f.read()).group(1)) * 1024


def _hog():
    block = bytearray(16 << 30)  # 16 GiB: more than the cap
    return len(block)


@pytest.mark.slow
def test_memory_cap_stops_a_runaway_child(monkeypatch):
    before = resource.getrlimit(resource.RLIMIT_AS)
    cap = _address_space() + (512 << 20)
    outcome = isolation.run_isolated(_hog, (), 30, True, cap)
    assert isinstance(outcome, isolation.Failure) and outcome.kind == "memory"
    monkeypatch.setattr(driver, "prove_bounded", lambda claim, options: _hog())
    (claim,) = claims_of(CORPUS / "true" / "max-assoc.egg")
    result = check_by_kind(claim, Options(sympy=False, memory_limit=cap))
    assert result.verdict is Verdict.UNKNOWN and "memory limit" in result.detail
    assert resource.getrlimit(resource.RLIMIT_AS) == before   # only the child was capped


@pytest.mark.slow
def test_parallel_jobs_give_the_serial_verdicts():
    serial = check_paths([ROOT / "rules"], Options(sympy=False, jobs=1))
    parallel = check_paths([ROOT / "rules"], Options(sympy=False, jobs=2))
    assert [(r.name, r.verdict) for r in serial.results] == [(r.name, r.verdict) for r in parallel.results]
    assert len(serial.results) >= 10


# -- malformed input ------------------------------------------------------------------------------------------

def test_directory_without_egg_files(tmp_path):
    (tmp_path / "README.txt").write_text("no rules here")
    code, out, err = run_cli("check", tmp_path)
    assert code == 2 and "contains no .egg files" in err and "Traceback" not in err


@pytest.mark.parametrize("argv,needle", [
    (["--bound", "M1=0"], "bound"),
    (["--bound", "M1=10..2"], "bound"),
    (["--bound", "M1=1000000"], "absurd"),
    (["--bound", "M1=4000,M0=4000"], "size assignments"),
    (["--bound", "M1=eight"], "cannot read bound"),
    (["--bound", "=3"], "cannot read bound"),
    (["--timeout", "0"], "--timeout"),
    (["--timeout", "1e9"], "--timeout"),
    (["--jobs", "0"], "--jobs"),
])
def test_absurd_command_line_bounds(argv, needle):
    code, out, err = run_cli("check", ROOT / "rules" / "tiling.egg", "--cache", "off", "--no-sympy", *argv)
    assert code == 2, (out, err)
    assert needle in err and "Traceback" not in err + out
    assert sum("error" in line for line in err.splitlines()) == 1


# -- mutation testing -----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_mutants_of_the_rule_library_are_all_refuted_or_equivalent():
    report = mutate.run([ROOT / "rules" / "softmax.egg", ROOT / "rules" / "tiling.egg"],
                        Options(sympy=False, jobs=2, timeout=30))
    assert not report.errors
    assert len(report.checked) >= 100 and report.skipped
    assert report.score == 1.0, report.format()
    assert not report.by_verdict(Verdict.UNKNOWN) and not report.by_verdict(Verdict.ERROR)
    changes = {m.change for m in report.by_verdict(Verdict.REFUTED)}
    for needle in ("-> M_add_p", "operands flipped", "right operand dropped", "R_max_m1 -> R_add_m1",
                   "(other rank)", "(layout)"):
        assert any(needle in c for c in changes), needle
    # max-shift's rhs without its reduction is the same rule for an s constant along m: equivalent
    assert any("max-shift" in m.target and "R_max_m dropped" in m.change
               for m in report.by_verdict(Verdict.CERTIFIED))


@pytest.mark.slow
def test_mutants_of_the_one_pass_step(tmp_path):
    (tmp_path / "c.chain.toml").write_text(
        f'[[step]]\nname = "2-pass -> 1-pass"\nfrom = "{ROOT / "proofs" / "attention_2pass.egg"}"\n'
        f'to = "{ROOT / "proofs" / "attention_1pass.egg"}"\n')
    report = mutate.run([tmp_path / "c.chain.toml"], Options(sympy=False, jobs=2, timeout=30))
    assert report.score == 1.0, report.format()
    refuted = {m.change for m in report.by_verdict(Verdict.REFUTED)}
    assert any("RNV" in c and "right operand dropped" in c for c in refuted) or any(
        "RNV" in c and "left operand dropped" in c for c in refuted)
    equivalent = {m.change for m in report.by_verdict(Verdict.CERTIFIED)}
    assert any("RD" in c and "Const 0 -> 1" in c for c in equivalent)   # RD[0] is multiplied by 0


@pytest.mark.slow
def test_mutate_cli(tmp_path):
    code, out, err = run_cli("mutate", CORPUS / "true" / "max-assoc.egg", "--json")
    assert code == 0, err
    import json

    data = json.loads(out)
    assert data["score"] == 1.0 and data["refuted"] >= 5 and data["mutants"] == len(data["details"])
    code, out, _ = run_cli("mutate", CORPUS / "true" / "max-assoc.egg")
    assert code == 0 and "score:" in out and "100.0%" in out


# -- pinning parallel ranks (sizes.plan): both directions of the theorem -------------------------------------

MASKED_ROWMAX = ('; assume: B unmasked along m\n; rowmax: the row max of B is 0\n'
                 '(rewrite (M_add_p x (R_max_m (CreateTensor "B[m,p]:mask"))) x)\n')
B_MINUS_B = ('; assume: B unmasked along p\n; bsub: B - B vanishes\n'
             '(rewrite (M_add_mp x (M_sub_mp (CreateTensor "B[m,p]:mask") (CreateTensor "B[m,p]:mask"))) x)\n')


def test_a_rank_pinned_to_one_decides_every_size():
    """(If) certified with p pinned to 1, the claim holds at P = 3 for every mask pattern the assumption allows."""
    from verify import masks
    from verify.claims import side_values
    from verify.evaluate import FLOAT

    (claim,) = targets.claims_of(read_text(MASKED_ROWMAX, "<rowmax>"))
    the_plan = plan(claim, Bound())
    assert "p" in the_plan.parallel and all(s["p"] == 1 for s in the_plan.sizes())
    result = check_by_kind(claim, OPTIONS)
    assert result.verdict is Verdict.CERTIFIED and "P pinned to 1" in result.engines["parallel ranks"]
    sizes = {"m": 2, "p": 3}
    rng = np.random.default_rng(1)
    for pattern in masks.patterns(claim, sizes):
        inputs = {"B": pattern["B"], "x": rng.normal(size=(3,))}
        assert np.array_equal(*side_values(claim, sizes, FLOAT, inputs))


def test_an_assumption_along_a_rank_keeps_its_bound_and_the_false_claim_is_refuted():
    """(Only if) with `B unmasked along p`, size 1 of p is not representative: p is not pinned."""
    (claim,) = targets.claims_of(read_text(B_MINUS_B, "<bsub>"))
    the_plan = plan(claim, Bound())
    assert "p" not in the_plan.parallel and {s["p"] for s in the_plan.sizes()} == {1, 2}
    result = check_by_kind(claim, OPTIONS)
    assert result.verdict is Verdict.REFUTED and result.counterexample.sizes["p"] == 2
    assert replays(claim, result.counterexample)
    # at P = 1 the assumption forces B = 0 and the claim holds there: the false certificate pinning gave
    at_one = check_by_kind(replace(claim, bound="P=1..1"), OPTIONS)
    assert at_one.verdict is Verdict.CERTIFIED


def test_a_bound_for_a_pinned_rank_is_reported():
    (claim,) = targets.claims_of(read_text(MASKED_ROWMAX, "<rowmax>"))
    result = check_by_kind(claim, replace(OPTIONS, bound=Bound.parse("P=2")))
    assert result.verdict is Verdict.CERTIFIED
    assert any("bound P<=2 not checked as such" in w for w in result.warnings)


BOUND_ON_SPLIT_RANK = """; five: y * min(|N - 5|, 1) = y, with N = M the count of m: false exactly at M = 5, which no default tiling
; (M1, M0 <= 4) reaches
(rewrite (M_mul_p y (M_sub_p (Const 0.0) (M_max_p (M_sub_p (Const 0.0) (M_max_p (M_sub_p (R_add_m1 (R_add_m0 (T_split_m_m1m0 (M_exp_mp (M_mul_mp x (Const 0.0))) 2))) (Const 5.0)) (M_sub_p (Const 5.0) (R_add_m1 (R_add_m0 (T_split_m_m1m0 (M_exp_mp (M_mul_mp x (Const 0.0))) 2)))))) (Const -1.0)))) y)
"""


@pytest.mark.slow
def test_a_bound_on_a_split_rank_bounds_the_product_of_its_parts(tmp_path):
    """`--bound M=5..5` on a claim that splits m was dropped (the default tiles were checked and the rule
    certified); it now checks M1*M0 = 5 and refutes."""
    path = tmp_path / "five.egg"
    path.write_text(BOUND_ON_SPLIT_RANK)
    code, out, err = run_cli("check", path, "--cache", "off", "--no-sympy")
    assert code == 0 and "CERTIFIED" in out, (out, err)          # true at every default tiling
    code, out, err = run_cli("check", path, "--cache", "off", "--no-sympy", "--bound", "M=5..5")
    assert code == 1 and "REFUTED" in out and "m=5" in out, (out, err)
    code, out, err = run_cli("check", path, "--cache", "off", "--no-sympy", "--bound", "M=4..6")
    assert code == 1 and "REFUTED" in out, (out, err)


def test_a_bound_naming_a_rank_twice_is_an_error(tmp_path):
    code, out, err = run_cli("check", ROOT / "rules" / "tiling.egg", "--bound", "M1=3,M1=2", "--cache", "off")
    assert code == 2 and "twice" in err, (out, err)
