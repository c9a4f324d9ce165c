"""The rule-level lift (verify/induction/rule_level/): every rule of rules/ and every step of the derivation chain
holds for all sizes, each naming its shape; nothing false or only true at small sizes is ever lifted. Real Z3 throughout."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from verify.driver import prove_bounded
from verify.gate import check_paths
from verify.induction import lift
from verify.options import Options
from verify.targets import collect
from verify.verdict import Verdict

ROOT = Path(__file__).resolve().parents[1]
FAST = Options(sympy=False, isolate=False)

# every rule of rules/ and the shape it must be lifted by
SHAPES = {
    "split-sum-any": "reduction split", "split-max-any": "reduction split",
    "unsplit-split-any": "view/pointwise", "split-max": "reduction split", "split-sum": "reduction split",
    "unsplit-split": "view/pointwise", "split-unsplit": "view/pointwise", "split-exp": "view/pointwise",
    "split-sub": "view/pointwise", "split-mul": "view/pointwise", "split-contract": "reduction congruence",
    "exp-rescale": "view/pointwise", "factor-out-of-sum": "factor-out", "division-deferral": "factor-out",
    "shift-invariance": "factor-out", "max-shift": "factor-out", "online-sum": "scan",
    "online-weighted-sum": "scan", "running-max": "scan", "split-mul-e": "view/pointwise",
    "d-identity": "factor-out", "exp-minus-log": "reduction congruence", "recompute-from-lse": "factor-out",
    "accumulate-over-query-tiles": "reduction split", "accumulate-over-key-tiles": "reduction split",
}


def _claims(*paths):
    claims, errors, _ = collect([str(ROOT / p) for p in paths], Options())
    assert not errors
    return claims


def _write(tmp_path: Path, text: str, name: str = "r.egg") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.slow
def test_every_rule_is_lifted_by_its_shape():
    claims = _claims("rules")
    assert {c.name.split("[")[0] for c in claims} == set(SHAPES)
    for claim in claims:
        out = lift(claim)
        assert out.lifted, (claim.name, out.reason)
        assert out.shape.startswith(SHAPES[claim.name.split("[")[0]]), (claim.name, out.shape)
        assert out.obligations and all(o.verdict == "proved" for o in out.obligations)
        assert set(out.ranks) == set(claim.ranks())       # every rank symbolic: none pinned
        for name, verdict in out.lemma_obligations:
            assert verdict == "proved", name


@pytest.mark.slow
def test_split_rules_use_the_split_lemmas_and_scans_their_invariant():
    by_name = {c.name: c for c in _claims("rules")}
    assert lift(by_name["split-sum"]).lemmas == ("split.sum",)
    assert lift(by_name["split-max"]).lemmas == ("split.max",)
    assert "linearity" in lift(by_name["division-deferral"]).lemmas
    names = [o.name for o in lift(by_name["online-sum"]).obligations]
    assert any(n.startswith("scan.base") for n in names) and any(n.startswith("scan.step") for n in names)


@pytest.mark.slow
def test_gate_reports_every_rule_and_derivation_step_for_all_sizes():
    report = check_paths([str(ROOT / "rules"), str(ROOT / "proofs" / "derivation.chain.toml")], FAST)
    assert report.results and not report.errors
    for r in report.results:
        assert r.verdict is Verdict.CERTIFIED, (r.name, r.detail)
        assert r.bound.is_all_sizes, (r.name, r.bound, r.engines.get("unbounded"))
        if r.kind == "rule" or "rules/online" in r.file:
            assert r.method.startswith("unbounded: "), r.method
    steps = [r for r in report.results if r.file.endswith("derivation.chain.toml")]
    assert len(steps) == 4
    for r in steps:
        assert "shapes:" in r.method, r.method


# -- adversarial ------------------------------------------------------------------------------------------------

SMALL_ONLY = """\
; count12: with C = sum_m exp(0*x) = M, C*C + 2 = 3*C holds for M = 1 and 2 only
(rewrite (M_add_p (M_mul_p (R_add_m (M_exp_mp (M_mul_mp (Const 0.0) x))) (R_add_m (M_exp_mp (M_mul_mp (Const 0.0) x)))) (Const 2.0)) (M_mul_p (Const 3.0) (R_add_m (M_exp_mp (M_mul_mp (Const 0.0) x)))))
"""

# (M1-1)(M1-2)(M1-3)(M1-4) = 0: true for every tile count in the default bound 1..4, false at 5
def _tiles_rule() -> str:
    c = "(R_add_m1 (M_exp_m1p (M_mul_m1p (Const 0.0) (R_max_m0 (T_split_m_m1m0 x t)))))"
    sq = f"(M_mul_p {c} {c})"
    lhs = f"(M_add_p (M_add_p (M_mul_p {sq} {sq}) (M_mul_p (Const 35.0) {sq})) (Const 24.0))"
    rhs = f"(M_add_p (M_mul_p (Const 10.0) (M_mul_p {sq} {c})) (M_mul_p (Const 50.0) {c}))"
    return f"; tiles4: (M1-1)(M1-2)(M1-3)(M1-4) = 0 for a tile count M1 <= 4 only\n(rewrite {lhs} {rhs})\n"


@pytest.mark.parametrize("text", [SMALL_ONLY, "TILES"])
def test_rules_true_only_at_small_sizes_are_never_lifted(tmp_path, text):
    path = _write(tmp_path, _tiles_rule() if text == "TILES" else text)
    report = check_paths([str(path)], FAST)
    (r,) = report.results
    assert r.verdict is Verdict.CERTIFIED          # true at every size of the bound ...
    assert not r.bound.is_all_sizes    # ... and never claimed beyond it
    assert r.engines["unbounded"].startswith("not lifted")
    assert "not lifted to all sizes" in r.detail


FALSE_RULES = """\
; layout: tiling one operand with the wrong layout
(rewrite (R_add_m (M_mul_mp x y)) (R_add_m1 (R_add_m0 (M_mul_m1m0p (T_split_m_m1m0 x t) (T_split_m_m0m1 y t)))))
; localmax: the local max within tiles for the global max
(rewrite (T_split_m_m1m0 (M_sub_mp x (R_max_m x)) t) (M_sub_m1m0p (T_split_m_m1m0 x t) (R_max_m0 (T_split_m_m1m0 x t))))
; mixrank: a factor that varies along p pulled out of a sum over p
(rewrite (R_add_m (M_mul_mp x (R_add_p x))) (M_mul_p (R_add_m x) (R_add_m (R_add_p x))))
; unsplitlayout: unsplit with the other layout
(rewrite (T_unsplit_m1m0_m (T_split_m_m0m1 x t)) x)
; varying: a factor that varies along m pulled out of the sum
(rewrite (R_add_m (M_mul_mp (M_exp_mp c) x)) (M_mul_p (R_max_m (M_exp_mp c)) (R_add_m x)))
; divvary: a divisor that varies along m
(rewrite (R_add_m (M_div_mp a d)) (M_div_p (R_add_m a) (R_max_m d)))
; maxscale: max(s*c) = max(s)*c needs c >= 0
(rewrite (R_max_m (M_mul_mp s c)) (M_mul_p (R_max_m s) c))
; broadcast: a tensor broadcast along m is not a sum over m
(rewrite (R_add_m (M_add_mp x (R_max_m x))) (M_add_p (R_add_m x) (R_max_m x)))
; resplit: split with the other layout after an unsplit
(rewrite (T_split_m_m0m1 (T_unsplit_m1m0_m x) t) x)
; transposed: a sum over tiles of a transposed split
(rewrite (R_add_m1 (M_mul_m1m0p (T_split_m_m1m0 x t) (T_split_m_m1m0 y t))) (R_add_m1 (M_mul_m1m0p (T_split_m_m1m0 x t) (T_split_m_m0m1 y t))))
; nested: sum over m of a/(b/c) is undefined at c = 0, M*(c/b) is not (factoring once dropped the divisor c)
(rewrite (R_add_m (M_div_mp (M_exp_mp (M_mul_mp (Const 0.0) x)) (M_div_p b c))) (M_mul_p (R_add_m (M_exp_mp (M_mul_mp (Const 0.0) x))) (M_div_p c b)))
; tilemax: the max within the tile for the max over m
(rewrite (M_sub_mp x (R_max_m x)) (T_unsplit_m1m0_m (M_sub_m1m0p (T_split_m_m1m0 x t) (R_max_m0 (T_split_m_m1m0 x t)))))
"""

TRUE_RULES = """\
; resplit-ok: split of an unsplit
(rewrite (T_split_m_m1m0 (T_unsplit_m1m0_m x) t) x)
; broadcast-ok: a factor broadcast along m (a max over m) leaves the sum
(rewrite (R_add_m (M_mul_mp x (R_max_m x))) (M_mul_p (R_add_m x) (R_max_m x)))
; inner-first: a sum over m is the sum over m0 of the sums over m1
(rewrite (R_add_m x) (R_add_m0 (R_add_m1 (T_split_m_m1m0 x t))))
; count: a sum of a constant along m is M times it
(rewrite (R_add_m (M_mul_mp (M_exp_mp (M_mul_mp (Const 0.0) x)) c)) (M_mul_p (R_add_m (M_exp_mp (M_mul_mp (Const 0.0) x))) c))
"""


def test_true_rules_outside_rules_dir_are_lifted(tmp_path):
    claims, errors, _ = collect([str(_write(tmp_path, TRUE_RULES))], Options())
    assert not errors and len(claims) == 4
    for claim in claims:
        assert lift(claim).lifted, (claim.name, lift(claim).reason)
        assert prove_bounded(claim, FAST).verdict is Verdict.CERTIFIED


@pytest.mark.slow
def test_false_rules_fail_their_obligations(tmp_path):
    path = _write(tmp_path, FALSE_RULES)
    claims, errors, _ = collect([str(path)], Options())
    assert not errors and len(claims) == 12
    for claim in claims:
        out = lift(claim)
        assert not out.lifted, claim.name
        assert out.reason


def test_masked_claims_are_lifted_by_the_masked_argument():
    """The guarded masked 1-pass holds for every mask (tests/test_masks.py has the refusals)."""
    (claim,) = [c for c in _claims("proofs/masked.chain.toml")]
    out = lift(claim)
    assert out.lifted and out.shape.startswith("masked scans"), out.reason


SCANS = {
    # the correction flipped: exp(R[k] - R[k-1])
    "flipped": "(M_exp_m1p (M_sub_m1p R (S_shift_m1 R (Const -inf))))",
    # no correction at all (right only while R never changes)
    "dropped": "(M_exp_m1p (M_sub_m1p R R))",
    # half the correction: exp((R[k-1] - R[k]) / 2)
    "halved": "(M_exp_m1p (M_div_m1p (M_sub_m1p (S_shift_m1 R (Const -inf)) R) (Const 2.0)))",
    # the correction of the step before: exp(R[k-2] - R[k-1])
    "late": "(M_exp_m1p (M_sub_m1p (S_shift_m1 (S_shift_m1 R (Const -inf)) (Const -inf)) (S_shift_m1 R (Const 0.0))))",
}


def test_a_changed_fill_that_is_multiplied_by_zero_is_still_lifted(tmp_path):
    """exp(shift(R, 0) - R) differs from the correction only at k = 0, where it multiplies the initial 0."""
    rhs = (ROOT / "rules/online/online-sum.rhs.egg").read_text().replace(
        "(S_shift_m1 R (Const -inf))", "(S_shift_m1 R (Const 0.0))")
    (tmp_path / "lhs.egg").write_text((ROOT / "rules/online/online-sum.lhs.egg").read_text())
    (tmp_path / "rhs.egg").write_text(rhs)
    (tmp_path / "c.chain.toml").write_text('[[step]]\nname = "s"\nfrom = "lhs.egg"\nto = "rhs.egg"\n')
    (claim,) = collect([str(tmp_path / "c.chain.toml")], Options())[0]
    assert lift(claim).lifted
    assert prove_bounded(claim, FAST).verdict is Verdict.CERTIFIED


@pytest.mark.parametrize("name", sorted(SCANS))
def test_scans_with_wrong_corrections_fail_base_or_step(tmp_path, name):
    rhs = (ROOT / "rules/online/online-sum.rhs.egg").read_text()
    old = "(M_exp_m1p (M_sub_m1p (S_shift_m1 R (Const -inf)) R))"
    assert old in rhs
    (tmp_path / "lhs.egg").write_text((ROOT / "rules/online/online-sum.lhs.egg").read_text())
    (tmp_path / "rhs.egg").write_text(rhs.replace(old, SCANS[name]))
    (tmp_path / "c.chain.toml").write_text('[[step]]\nname = "s"\nfrom = "lhs.egg"\nto = "rhs.egg"\n')
    (claim,) = collect([str(tmp_path / "c.chain.toml")], Options())[0]
    out = lift(claim)
    assert not out.lifted, out.reason
    assert prove_bounded(claim, FAST).verdict is Verdict.REFUTED


@pytest.mark.slow
def test_no_nonequivalent_mutant_passes_its_obligations():
    """Every mutant of rules/ (rule files and the scan rules' programs) that the lift proves is CERTIFIED by the bounded
    checker too (an equivalent mutant); every non-equivalent one fails its obligations."""
    from verify.mutate import collect_mutants

    report = collect_mutants([str(ROOT / "rules")], Options())
    checked = lifted = 0
    for m in report.mutants:
        if m.claim is None:
            continue
        checked += 1
        out = lift(m.claim)
        if out.lifted:
            lifted += 1
            assert prove_bounded(m.claim, FAST).verdict is Verdict.CERTIFIED, m.label
    assert checked > 300 and lifted < checked // 5


@pytest.mark.slow
def test_unbounded_agrees_with_the_bounded_checker_at_512():
    """Every lifted rule is CERTIFIED by the bounded checker at 512 (tiles M1 = 512, or an unsplit rank of 512).
    max-shift is outside the normal form (max of differences): Z3 decides it at M = 8, and at M = 512 the numeric
    search finds no counterexample (the bounded checker's Z3 times out there: that is not counted as agreement)."""
    from verify import refute
    from verify.intervals import rigorous_difference
    from verify.sizes import Bound, effective_bound, plan

    assert _claims("rules")
    for claim in _claims("rules"):
        assert lift(claim).lifted
        ranks = set(claim.ranks())
        outer = sorted(r for r in ranks if r.endswith("1") and r[:-1] + "0" in ranks)
        plain = sorted(r for r in claim.structural_ranks() if not r[-1].isdigit() and r not in {view[0] for view in claim.splits()})
        big = (outer + plain)[:1]            # one rank at 512, every other structural rank at 2
        size = 8 if claim.name == "max-shift" else 512
        spec = ",".join([f"{r.upper()}={size}..{size}" for r in big]
                        + [f"{r.upper()}=2..2" for r in (outer + plain)[1:]]
                        + [f"{r[:-1].upper()}0=2..2" for r in outer])
        if not spec:
            continue
        result = prove_bounded(claim, Options(sympy=False, isolate=False, bound=Bound.parse(spec)))
        assert result.verdict is Verdict.CERTIFIED, (claim.name, spec, result.detail)
        if size != 512:
            bound = Bound.parse(spec.replace(f"{size}..{size}", "512..512"))
            sizes = list(plan(claim, effective_bound(claim, bound)).sizes())
            assert refute.search(claim, sizes, prove_difference=rigorous_difference) is None


# -- the model-based lift, kept as a second opinion ----------------------------------------------------------

MODEL_SHA256 = {   # the cascades verify/induction/'s lemmas describe; a change here must be reviewed
    "attention.egg": "11f4b3b3964850fa3fcfacb0268d1708d4ac4adbe1fbadface0e75230f7389f8",
    "attention_1pass.egg": "eb1696607845397f4295fd1417e9a845f2b1ae6f889a177cb02e4d1c66af2f39",
    "attention_2pass.egg": "831422cdaef8c3c25dd8cde1d5b937e2d222cc7f7087cca0e749238ae5806287",
    "attention_2pass_deferred.egg": "923d32645d85b0f2bc0c2ce464107ef8cf5184fad0b06e4cf61e802d8847f158",
    "attention_splitkv.egg": "ca0b81ef016cab72d5148b4f61a42d5bf4f88fced412c4bd100cf17dd5bff931",
}


def test_model_files_are_pinned_by_content_hash():
    import hashlib

    from verify import induction

    models = ROOT / "verify" / "models"
    found = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(models.glob("*.egg"))}
    assert found == MODEL_SHA256
    assert set(induction.REQUIRES) == set(MODEL_SHA256)
    assert {m for ms in induction.MODELS.values() for m in ms} == set(MODEL_SHA256)


def _certified(claim):
    from verify.sizes import SizeBound
    from verify.verdict import Result

    return Result(claim.name, claim.file, claim.line, claim.kind, Verdict.CERTIFIED, SizeBound((("M1", 1, 8),)),
                  "normal form", 0.0)


@pytest.mark.slow
def test_a_model_lift_needs_every_lemma_group_of_its_argument():
    """split-KV is lifted only with the 2-pass, 1-pass and merge groups (n-ary merge -> fold -> 1-pass -> 3-pass)."""
    import dataclasses

    from verify import induction
    from verify.driver import lift_to_all_sizes
    from verify.targets import read_chain

    (claim,) = [c for c in read_chain(ROOT / "proofs" / "variants.chain.toml") if "split-KV" in c.name]
    assert set(claim.unbounded) == set(induction.GROUPS)
    alone = dataclasses.replace(claim, unbounded=(induction.GROUP_MERGE,))
    out = lift_to_all_sizes(alone, FAST, _certified(alone))
    assert str(out.bound) == "M1<=8" and "also needs the lemma group(s)" in out.engines["induction"]
    out = lift_to_all_sizes(claim, FAST, _certified(claim))
    assert str(out.bound) == "all sizes, by induction", out.engines
    assert "merge.nary.step" in out.engines["induction"]


@pytest.mark.slow
def test_the_nary_merge_lemma_fails_for_a_merge_that_forgets_a_rescale():
    from verify.induction import prove_all

    merge = {o.name: o.verdict for o in prove_all("merge_forgets_rescale")["merge operator"]}
    assert merge["merge.nary.step"] == "refuted"
    assert {o.name: o.verdict for o in prove_all()["merge operator"]}["merge.nary.step"] == "proved"


# -- programs: the variants bounded before are lifted by their own obligations -------------------------------

LIFTED_STEPS = {
    "3-pass -> 3-pass without the max shift": "factor-out",
    "3-pass -> 2-pass tiling the query rank p too": "reduction split",
    "3-pass -> 2-pass with a two-level tiling of m": "reduction split",
    "3-pass -> 3-pass tiling the embedding rank e": "reduction split",
    "3-pass -> split-KV (FlashDecoding) with a tree of merges": "reduction split",
    "3-pass -> 2-pass (normalise in tiles)": "reduction split",
    "2-pass -> 2-pass with deferred division": "reduction split",
}


@pytest.mark.slow
def test_variant_programs_are_lifted_with_every_rank_symbolic():
    claims = {c.name: c for c in _claims("proofs/variants.chain.toml", "proofs/attention.chain.toml")}
    for name, shape in LIFTED_STEPS.items():
        out = lift(claims[name])
        assert out.lifted, (name, out.reason)
        assert out.shape.startswith(shape)
        assert set(out.ranks) == set(claims[name].ranks())
    splitkv = lift(claims["3-pass -> split-KV (FlashDecoding) with a tree of merges"])
    assert {"C1", "C0", "J"} <= set(splitkv.bound_text().split("(")[1].rstrip(")").replace(",", "").split())
    # masks: the guarded masked 1-pass is lifted by the masked argument, every rank symbolic
    (masked,) = _claims("proofs/masked.chain.toml")
    out = lift(masked)
    assert out.lifted and out.shape.startswith("masked scans") and set(out.ranks) == set(masked.ranks())


@pytest.mark.slow
def test_variants_chain_reports_all_sizes():
    """variants.chain.toml by each step's own obligations, variants_rules.chain.toml by its rules."""
    report = check_paths([str(ROOT / "proofs" / "variants.chain.toml"),
                          str(ROOT / "proofs" / "variants_rules.chain.toml")], FAST)
    assert report.results and not report.errors
    for r in report.results:
        assert r.verdict is Verdict.CERTIFIED, r.detail
        assert r.bound.is_all_sizes, (r.name, r.bound)


WRONG_PROGRAM = """\
(let Q (CreateTensor "Q"))
(let K (CreateTensor "K"))
(let V (CreateTensor "V"))
(let BK (T_split_m_m1m0 K 4))
(let BV (T_split_m_m1m0 V 4))
(let BQK (M_mul_em1m0p_R_add_e Q BK))
(let LM (R_max_m0 BQK))
(let GM (R_max_m1 LM))
(let SLN (M_exp_m1m0p (M_sub_m1m0p BQK LM)))
(let SLD (R_add_m0 SLN))
(let PRM (M_exp_m1p (M_sub_m1p GM LM)))
(let CN (M_mul_fm1m0p_R_add_m0 SLN BV))
(let N (R_add_m1 (M_mul_fm1p CN PRM)))
(let D (R_add_m1 (M_mul_m1p SLD PRM)))
(let AV (M_div_fp N D))
(extract AV)
"""


@pytest.mark.slow
@pytest.mark.parametrize("change", ["flip", "local"])
def test_wrong_two_pass_programs_are_not_lifted(tmp_path, change):
    """A flipped rescale exp(GM - LM), or a local max in place of the global one: never lifted."""
    text = WRONG_PROGRAM if change == "flip" else WRONG_PROGRAM.replace(
        "(M_sub_m1p GM LM)", "(M_sub_m1p LM GM)").replace("(M_sub_m1m0p BQK LM)", "(M_sub_m1m0p BQK GM)").replace(
        "(let GM (R_max_m1 LM))", "(let GM (R_max_m0 (R_max_m1 BQK)))")
    (tmp_path / "a.egg").write_text((ROOT / "proofs" / "attention.egg").read_text())
    (tmp_path / "b.egg").write_text(text)
    (tmp_path / "c.chain.toml").write_text('[[step]]\nname = "s"\nfrom = "a.egg"\nto = "b.egg"\n')
    (claim,) = collect([str(tmp_path / "c.chain.toml")], Options())[0]
    assert not lift(claim).lifted
    assert prove_bounded(claim, FAST).verdict is Verdict.REFUTED
    # and the right one is
    (tmp_path / "b.egg").write_text(WRONG_PROGRAM.replace("(M_sub_m1p GM LM)", "(M_sub_m1p LM GM)"))
    (claim,) = collect([str(tmp_path / "c.chain.toml")], Options())[0]
    assert lift(claim).lifted


@pytest.mark.slow
def test_parallel_jobs_with_the_lift_in_a_fresh_process():
    """--jobs 2 runs claims in threads of one process; z3 runs there only once, before any thread starts (a
    race on z3's global context crashed the process: 'ASSERTION VIOLATION ... ast.cpp')."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "verify.cli", "check", "rules", "--jobs", "2", "--no-sympy",
                           "--cache", "off"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "ASSERTION" not in done.stderr
    assert done.stdout.count("CERTIFIED (all sizes") == len(_claims("rules")) == 31


@pytest.mark.slow
def test_a_program_that_counts_its_tiles_is_not_lifted(tmp_path):
    """The 2-pass plus (C-1)(C-2)...(C-8), C = sum over tiles of exp(LM - LM) = M1: equal to the 3-pass for
    M1 <= 8 only. Its own obligations must fail (z3 may pick M1 = 9), though the plain 2-pass lifts."""
    from dataclasses import replace

    from verify.sizes import Bound

    text = (ROOT / "proofs" / "attention_2pass_deferred.egg").read_text().replace("(extract AV)", "")
    expr = "(M_sub_p C (Const 1.0))"
    for k in range(2, 9):
        expr = f"(M_mul_p {expr} (M_sub_p C (Const {k}.0)))"
    text += f"(let ONE (M_exp_m1p (M_sub_m1p LM LM)))\n(let C (R_add_m1 ONE))\n(let AV2 (M_add_fp AV {expr}))\n" \
            "(extract AV2)\n"
    (tmp_path / "late.egg").write_text(text)
    (tmp_path / "attention.egg").write_text((ROOT / "proofs" / "attention.egg").read_text())
    (tmp_path / "c.chain.toml").write_text('[[step]]\nname = "late"\nfrom = "attention.egg"\nto = "late.egg"\n')
    (claim,) = collect([str(tmp_path / "c.chain.toml")], Options())[0]
    out = lift(claim)
    assert not out.lifted and "not proved" in out.reason
    bounded = prove_bounded(claim, Options(sympy=False, isolate=False, bound=Bound.parse("M1=8,M0=2,F=1")))
    assert bounded.verdict is Verdict.CERTIFIED
    beyond = prove_bounded(replace(claim), Options(sympy=False, isolate=False,
                                                   bound=Bound.parse("M1=9..9,M0=1..1,F=1")))
    assert beyond.verdict is Verdict.REFUTED


ONEPASS_BUGS = {
    "drop the numerator rescale": ("(M_mul_fm1p (S_prev_m1 \"RNV\") PRM)", "(S_prev_m1 \"RNV\")"),
    "flip the correction": ("(M_sub_m1p (S_shift_m1 RM (Const -inf)) RM)", "(M_sub_m1p RM (S_shift_m1 RM (Const -inf)))"),
    "local max for the running max": ("(M_sub_m1m0p BQK RM)", "(M_sub_m1m0p BQK LM)"),
}


@pytest.mark.slow
def test_the_one_pass_cascade_is_lifted_by_closed_forms_and_its_bugs_are_not(tmp_path):
    (claim,) = [c for c in _claims("proofs/attention.chain.toml") if c.name.startswith("2-pass -> 1-pass")]
    out = lift(claim)
    assert out.lifted and out.shape.startswith("scans by closed forms"), out.reason
    names = [o.name for o in out.obligations]
    for scan in ("RM", "RD", "RNV"):
        assert any(n.startswith(f"scan.base ({scan}[0]") for n in names)
        assert any(n.startswith(f"scan.step ({scan}[t]") for n in names)
    text = (ROOT / "proofs" / "attention_1pass.egg").read_text()
    (tmp_path / "a.egg").write_text((ROOT / "proofs" / "attention_2pass_deferred.egg").read_text())
    (tmp_path / "c.chain.toml").write_text('[[step]]\nname = "s"\nfrom = "a.egg"\nto = "b.egg"\n')
    for bug, (old, new) in ONEPASS_BUGS.items():
        assert old in text, bug
        (tmp_path / "b.egg").write_text(text.replace(old, new))
        (claim,) = collect([str(tmp_path / "c.chain.toml")], Options())[0]
        assert not lift(claim).lifted, bug
        assert prove_bounded(claim, FAST).verdict is Verdict.REFUTED, bug


@pytest.mark.slow
def test_one_pass_program_mutants_that_lift_are_equivalent():
    """A sample of the 2-pass -> 1-pass step's mutants (every third): each one the lift proves is CERTIFIED by
    the bounded checker too. (All 673 mutants of attention, scaled and derivation chains: 20 lifted, all
    equivalent, 240 s; all 986 of attention, variants and derivation before closed forms: 33, all equivalent.)"""
    from verify.mutate import collect_mutants

    report = collect_mutants([str(ROOT / "proofs" / "attention.chain.toml")], Options())
    sample = [m for m in report.mutants if m.claim is not None and "2-pass -> 1-pass" in m.target][::3]
    assert len(sample) > 20
    for m in sample:
        if lift(m.claim).lifted:
            assert prove_bounded(m.claim, FAST).verdict is Verdict.CERTIFIED, m.label


def test_equal_scans_over_differently_bound_lets_are_not_confused(tmp_path):
    """Both sides scan `(M_max_m1p (S_prev_m1 "RM") L)`, the same IR, but L is a max on one side and a sum on the
    other: each scan must be read through the lets of its own side (it once was not: a false lift)."""
    common = '(let B (CreateTensor "B[m1,m0,p]"))\n(let X (CreateTensor "X[m1,p]"))\n'
    scan = '(let RM (S_scan_m1 "RM" (Const -inf) (M_max_m1p (S_prev_m1 "RM") L)))\n' \
           '(let G (M_add_p (S_last_m1 RM) (R_max_m1 X)))\n(extract G)\n'
    (tmp_path / "a.egg").write_text(common + "(let L (R_max_m0 B))\n" + scan)
    (tmp_path / "b.egg").write_text(common + "(let L (R_add_m0 B))\n" + scan)
    (tmp_path / "c.chain.toml").write_text('[[step]]\nname = "s"\nfrom = "a.egg"\nto = "b.egg"\n')
    (claim,) = collect([str(tmp_path / "c.chain.toml")], Options())[0]
    assert prove_bounded(claim, FAST).verdict is Verdict.REFUTED
    assert not lift(claim).lifted


LOG_RULES = """\
; logdiff: log x - log x = 0 (undefined for x < 0, and -inf - -inf at x = 0)
(rewrite (M_sub_p (M_log_p x) (M_log_p x)) (M_mul_p (Const 0.0) x))
; logsum: a log inside a sum
(rewrite (R_add_m (M_log_mp (M_exp_mp x))) (R_add_m (M_log_mp (M_exp_mp x))))
"""


@pytest.mark.slow
def test_logs_are_lifted_only_when_their_arguments_are_provably_positive(tmp_path):
    claims, errors, _ = collect([str(_write(tmp_path, LOG_RULES))], Options())
    assert not errors
    by_name = {c.name: c for c in claims}
    out = lift(by_name["logdiff"])
    assert not out.lifted and "not proved" in out.reason
    out = lift(by_name["logsum"])
    assert not out.lifted and "log inside" in out.reason
    (lse,) = _claims("proofs/lse.chain.toml")
    assert lift(lse).lifted


def _equiv(tmp_path, lhs: str, rhs: str, *extra) -> tuple[int, str]:
    """`verify equiv` of two program texts (no cache, no SymPy): exit status and everything printed."""
    import io

    from verify import cli

    a, b = tmp_path / "a.egg", tmp_path / "b.egg"
    a.write_text(lhs)
    b.write_text(rhs)
    out, err = io.StringIO(), io.StringIO()
    code = cli.run([str(x) for x in ("equiv", a, b, "--cache", "off", "--no-sympy", *extra)], out, err)
    return code, out.getvalue() + err.getvalue()

SCAN_SUMS_ITS_STATE_OVER_P = """(let Y (CreateTensor "Y[m1,p]"))
(let NP (R_add_p (M_exp_m1p (M_mul_m1p (Const 0.0) Y))))
(let AL (M_mul_m1 (M_sub_m1 NP (Const 1.0)) (M_sub_m1 NP (Const 2.0))))
(let X (S_scan_m1 "X" (Const 0.0)
  (M_add_m1p (M_add_m1p Y (S_prev_m1 "X"))
    (M_mul_m1p AL (M_sub_m1p (R_add_p (M_mul_m1p (S_prev_m1 "X") (M_exp_m1p (M_mul_m1p (Const 0.0) Y))))
                             (M_mul_m1p NP (S_prev_m1 "X")))))))
(let Z (S_last_m1 X))
(extract Z)
"""


@pytest.mark.slow
def test_a_scan_that_reads_its_state_inside_a_reduction_over_another_rank_is_not_lifted(tmp_path):
    """X[t,p] = Y + X[t-1,p] + (P-1)(P-2)(sum_p' X[t-1,p'] - P X[t-1,p]) is the prefix sum only for P <= 2. The
    lift held the previous state as one term at the output index, so inside sum_p it read X[t-1,p] for every p'
    and certified this for all sizes. Now it stays bounded, and P = 3 refutes."""
    rhs = '(let Y (CreateTensor "Y[m1,p]"))\n(let Z (R_add_m1 Y))\n(extract Z)\n'
    code, out = _equiv(tmp_path, SCAN_SUMS_ITS_STATE_OVER_P, rhs)
    assert "CERTIFIED (all sizes" not in out and "CERTIFIED (M1<=2, P<=2" in out, out
    code, out = _equiv(tmp_path, SCAN_SUMS_ITS_STATE_OVER_P, rhs, "--bound", "P=3,M1=2")
    assert code == 1 and "REFUTED" in out, out


# Claims true at the default bound and false beyond it, each once lifted to all sizes.
PREFIX_SUM = '(let X (CreateTensor "X[a,b]"))\n(extract (R_add_a X))\n'
COUNT_C = "(let N (R_add_c (M_add_c (Const 1.0) (Const 0.0))))\n"
SCAN_PLUS_G = ('(let S (S_scan_a "S" (Const 0.0) (M_add_ab (S_prev_a "S") (M_add_ab X G))))\n'
               "(extract (S_last_a S))\n")
ZERO_TIMES_LOG = ('(let X (CreateTensor "X[a,b]"))\n' + COUNT_C
                  + "(let G (M_mul_ab (Const 0.0) (M_log_ab (M_sub_ab (Const 4.5) N))))\n" + SCAN_PLUS_G)
INF_MINUS_UNDEFINED = ('(let X (CreateTensor "X[a,b]"))\n' + COUNT_C
                       + "(let G (M_exp_ab (M_sub_ab (Const -inf) (M_div_ab (Const 1.0) (M_sub_ab N (Const 5.0))))))\n"
                       + SCAN_PLUS_G)
UNSPLIT_FACTS = """(let Y (CreateTensor "Y[c,d]"))
(let C0 (CreateTensor "C0[a]"))
(let X (CreateTensor "X[a,p]"))
(let C (M_add_a C0 (M_mul_a (Const 0.0) (T_unsplit_cd_a Y))))
(let PRM (M_exp_a (M_sub_a (S_shift_a C (Const -inf)) C)))
(let RD (S_scan_a "RD" (Const 0.0) (M_add_ap X (M_mul_ap (S_prev_a "RD") PRM))))
(let NA (R_add_a (M_add_a (Const 1.0) (Const 0.0))))
(let NE (R_add_e (M_add_e (Const 1.0) (Const 0.0))))
(let G (M_mul_p (M_max_p (Const 0.0) (M_sub_p (Const 2.0) NA)) (M_max_p (Const 0.0) (M_sub_p NE (Const 4.5)))))
(extract (M_add_p (S_last_a RD) G))
"""
UNSPLIT_FACTS_RHS = "\n".join(UNSPLIT_FACTS.splitlines()[:6]) + "\n(extract (S_last_a RD))\n"


@pytest.mark.slow
@pytest.mark.parametrize("lhs,rhs,refuting", [
    (ZERO_TIMES_LOG, PREFIX_SUM, "C=5..5"),             # 0*log(4.5 - C): simplify_inf dropped the log's domain
    (INF_MINUS_UNDEFINED, PREFIX_SUM, "C=5..5"),        # -inf - 1/(C-5): dropped the undefined operand
    (UNSPLIT_FACTS, UNSPLIT_FACTS_RHS, "C=1..1,D=1..1,E=5..5"),   # unsplit index facts leaked (forced A >= 2)
], ids=["zero-times-log", "inf-minus-undefined", "unsplit-facts-leak"])
def test_claims_false_beyond_the_bound_are_not_lifted(tmp_path, lhs, rhs, refuting):
    code, out = _equiv(tmp_path, lhs, rhs)
    assert "CERTIFIED" in out and "CERTIFIED (all sizes" not in out, out
    code, out = _equiv(tmp_path, lhs, rhs, "--bound", refuting)
    assert code == 1 and "REFUTED" in out, out


# A shift of a shift (wrong for t < depth, from M1 = 5 on) and -inf inside a reduction.
def _nested_shifts(fill_a: str, body: str) -> str:
    lines = ['(let x (CreateTensor "x[m1,p]"))', '(let y (CreateTensor "y[m1,p]"))',
             f"(let A1 (S_shift_m1 y (Const {fill_a})))", "(let B1 (S_shift_m1 y (Const 0.0)))"]
    for i in range(2, 6):
        lines += [f"(let A{i} (S_shift_m1 A{i - 1} (Const 0.0)))", f"(let B{i} (S_shift_m1 B{i - 1} (Const 0.0)))"]
    lines += [f'(let R (S_scan_m1 "R" (Const 0.0) (M_add_m1p (S_prev_m1 "R") {body})))', "(let D (S_last_m1 R))",
              "(extract D)"]
    return "\n".join(lines) + "\n"


SUM_X = '(let x (CreateTensor "x[m1,p]"))\n(let D (R_add_m1 x))\n(extract D)\n'


@pytest.mark.slow
@pytest.mark.parametrize("lhs", [
    _nested_shifts("1.0", "(M_add_m1p x (M_sub_m1p A5 B5))"),          # 1 at t = 4: sum(x) + 1
    _nested_shifts("-inf", "(M_mul_m1p x (M_exp_m1p (M_sub_m1p A5 A5)))"),   # undefined at t = 4
], ids=["finite", "undefined"])
def test_a_shift_of_a_shift_is_not_lifted(tmp_path, lhs):
    code, out = _equiv(tmp_path, lhs, SUM_X, "--bound", "M1=4")
    assert "CERTIFIED" in out and "CERTIFIED (all sizes" not in out, out
    code, out = _equiv(tmp_path, lhs, SUM_X, "--bound", "M1=5..5")
    assert code == 1 and "REFUTED" in out, out


def test_minus_inf_inside_a_reduction_is_not_lifted():
    """exp(Z)/exp(Z) with Z a shift filled with -inf: 0/0 at the base; the lift cancelled it inside the sum."""
    from verify.claims import equiv_claim
    from verify.reader import read_text

    lhs = read_text('(let x (CreateTensor "x[m1,e,p]"))\n(let y (CreateTensor "y[m1,e,p]"))\n'
                    "(let Z (S_shift_m1 y (Const -inf)))\n"
                    "(let S (R_add_e (M_div_m1ep (M_mul_m1ep x (M_exp_m1ep Z)) (M_exp_m1ep Z))))\n"
                    '(let R (S_scan_m1 "R" (Const 0.0) (M_add_m1p (S_prev_m1 "R") S)))\n'
                    "(let D (S_last_m1 R))\n(extract D)\n", "lhs.egg").program
    rhs = read_text('(let x (CreateTensor "x[m1,e,p]"))\n(let D (R_add_m1 (R_add_e x)))\n(extract D)\n',
                    "rhs.egg").program
    result = lift(equiv_claim(lhs, rhs))
    assert not result.lifted and "-inf inside a reduction" in result.reason
