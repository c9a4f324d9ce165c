"""The derivation chain 3-pass -> 2-pass -> 1-pass: bounded and unbounded certificates, mutated twins,
numeric cross-checks at realistic sizes, certificates and the cache."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli, write

from verify import cli, numerics, refute
from verify.claims import equiv_claim
from verify.errors import ParseError
from verify.gate import check_by_kind
from verify.options import Options
from verify.reader import read_file, read_text
from verify.sizes import Bound
from verify.targets import read_chain
from verify.verdict import Verdict


def _chain(tmp_path, text: str) -> Path:
    for name in ("attention.egg", "attention_2pass.egg"):
        write(tmp_path / "ch" / name, (ROOT / "proofs" / name).read_text())
    return write(tmp_path / "ch" / "c.chain.toml", text)


ROOT = Path(__file__).resolve().parent.parent
PROOFS = ROOT / "proofs"
FAST = Options(isolate=False, sympy=False)


def program(name):
    return read_file(PROOFS / name).program


def mutated(name, old, new):
    text = (PROOFS / name).read_text()
    assert old in text, old
    return read_text(text.replace(old, new), f"<{name} mutated>").program


@pytest.mark.slow
def test_whole_chain_certified_for_all_sizes():
    claims = read_chain(PROOFS / "attention.chain.toml")
    assert [c.name for c in claims][0].startswith("3-pass")
    for claim in claims:
        result = check_by_kind(claim, FAST)
        assert result.verdict is Verdict.CERTIFIED, result.detail
        # the rule-level lift decides (every rank symbolic); the model induction is its second opinion
        assert str(result.bound) == "all sizes (E, P, M, F, M1, M0 symbolic)"
        assert "M1<=8" in result.method and "M0<=4" in result.method and "second opinion: induction" in result.method
        assert "lemmas proved" in result.engines["induction"]


# Each chain step with a mutated twin that must be refuted at the chain's bound.
TWINS = [
    ("attention.egg", "attention_2pass.egg", "(M_sub_m1p LM GM)", "(M_sub_m1p GM LM)"),           # sign flip
    ("attention.egg", "attention_2pass.egg", "(M_mul_m1m0p SLN PRM)", "SLN"),                      # drop PRM on CN
    ("attention.egg", "attention_2pass.egg", "(R_add_m0 SLN)", "(R_max_m0 SLN)"),                  # wrong reduce op
    ("attention_2pass.egg", "attention_2pass_deferred.egg", "(M_div_fp AV_acc GD)", "(M_div_fp AV_acc (R_add_m1 SLD))"),
    ("attention_2pass_deferred.egg", "attention_1pass.egg",
     "(M_add_fm1p SLNV (M_mul_fm1p (S_prev_m1 \"RNV\") PRM))", "(M_add_fm1p SLNV (S_prev_m1 \"RNV\"))"),  # no rescale
    ("attention_2pass_deferred.egg", "attention_1pass.egg",
     "(M_sub_m1p (S_shift_m1 RM (Const -inf)) RM)", "(M_sub_m1p RM (S_shift_m1 RM (Const -inf)))"),     # flipped PRM
    ("attention_2pass_deferred.egg", "attention_1pass.egg", "(M_sub_m1m0p BQK RM)", "(M_sub_m1m0p BQK LM)"),  # local max
]


@pytest.mark.slow
@pytest.mark.parametrize("before,after,old,new", TWINS, ids=[f"{a}->{b}:{n[:24]}" for a, b, _, n in TWINS])
def test_mutated_step_is_refuted(before, after, old, new):
    claim = equiv_claim(program(before), mutated(after, old, new))
    result = check_by_kind(claim, Options(bound=Bound.parse("M1=8,M0=4,F=2"), isolate=False, sympy=False))
    assert result.verdict is Verdict.REFUTED
    cx = result.counterexample
    inputs = {name: np.array(t.values, dtype=float) for name, t in cx.inputs.items()}
    assert refute.replay(claim, cx.sizes, inputs)[2] is not None


def test_missing_rescale_needs_a_later_larger_score():
    """Dropping the numerator rescale is right whenever the running max never changes."""
    claim = equiv_claim(program("attention.egg"), mutated(
        "attention_1pass.egg", "(M_add_fm1p SLNV (M_mul_fm1p (S_prev_m1 \"RNV\") PRM))",
        "(M_add_fm1p SLNV (S_prev_m1 \"RNV\"))"))
    result = check_by_kind(claim, FAST)
    cx = result.counterexample
    assert cx.sizes["m1"] >= 2
    # with scores that never increase across tiles the mutant agrees with 3-pass
    sizes = {"e": 1, "f": 1, "p": 1, "m1": 2, "m0": 1, "m": 2}
    falling = {"Q": np.array([[1.0]]), "K": np.array([[3.0, 1.0]]), "V": np.array([[1.0, 2.0]])}
    assert refute.check_values(claim, sizes, falling)


def test_chain_must_connect(tmp_path):
    for name in ("attention.egg", "attention_2pass.egg", "attention_1pass.egg"):
        (tmp_path / name).write_text((PROOFS / name).read_text())
    (tmp_path / "broken.chain.toml").write_text(
        'start = "attention.egg"\nend = "attention_1pass.egg"\n'
        '[[step]]\nname = "a"\nfrom = "attention.egg"\nto = "attention_2pass.egg"\n'
        '[[step]]\nname = "b"\nfrom = "attention_1pass.egg"\nto = "attention_2pass.egg"\n'
    )
    with pytest.raises(ParseError, match="no earlier step reached"):
        read_chain(tmp_path / "broken.chain.toml")


def test_unknown_induction_group_is_an_error(tmp_path):
    (tmp_path / "a.egg").write_text((PROOFS / "attention.egg").read_text())
    (tmp_path / "x.chain.toml").write_text('[[step]]\nname = "s"\nfrom = "a.egg"\nto = "a.egg"\nunbounded = ["nope"]\n')
    out, err = io.StringIO(), io.StringIO()
    assert cli.run(["check", str(tmp_path / "x.chain.toml")], out, err) == 2
    assert "unknown induction group" in err.getvalue()


def test_numeric_crosscheck_at_realistic_sizes():
    rows = numerics.crosscheck([PROOFS / "attention.egg", PROOFS / "attention_1pass.egg"],
                               E=16, M=256, P=8, F=4, tiles=(4, 32))
    assert {row.dtype for row in rows} == {"float64", "float32"}
    for row in rows:
        bound = 1e-12 if row.dtype == "float64" else 1e-4
        assert row.max_abs_error < bound, row


@pytest.mark.slow
def test_dropping_the_max_shift_overflows_in_float32_and_is_flagged():
    demo = numerics.large_scores([PROOFS / "attention.egg", PROOFS / "attention_noshift.egg"])
    rows = {(r.program, r.dtype): r.max_abs_error for r in demo}
    judged = {r.program for r in demo if r.judged}
    assert judged == {"attention.egg"}        # the unshifted exp is not provably <= 0: shown, not judged
    assert rows[("attention_noshift.egg", "float64")] < 1e-9
    assert math.isnan(rows[("attention_noshift.egg", "float32")])
    assert rows[("attention.egg", "float32")] < 1e-5
    (claim,) = [c for c in read_chain(PROOFS / "variants.chain.toml") if "without the max shift" in c.name]
    result = check_by_kind(claim, FAST)
    assert result.verdict is Verdict.CERTIFIED
    assert any("exp argument unbounded above" in w for w in result.warnings)
    plain = check_by_kind(read_chain(PROOFS / "attention.chain.toml")[0], FAST)
    assert not any("exp argument" in w for w in plain.warnings)
    # the chain's F=2: f is pinned in the bounded check and reported there; the lift makes every rank symbolic,
    # so it is covered and no warning remains
    assert "F<=2" in plain.engines["parallel ranks"] and str(plain.bound).startswith("all sizes (")
    assert not any("not checked as such" in w for w in plain.warnings)


@pytest.mark.slow
def test_certificates_and_cache(tmp_path):
    certs, cache = tmp_path / "certs", tmp_path / "cache"
    argv = ["check", str(ROOT / "rules" / "tiling.egg"), "--no-sympy", "--json", "--cache-dir", str(cache),
            "--certificates", str(certs)]
    out = io.StringIO()
    assert cli.run(argv, out, io.StringIO()) == 0
    first = json.loads(out.getvalue())
    files = sorted(certs.glob("*.json"))
    assert len(files) == len(first)
    cert = json.loads(files[0].read_text())
    for key in ("content_hash", "encoding_version", "bound", "method", "verdict", "solvers", "seconds"):
        assert key in cert
    assert cert["verdict"] == "CERTIFIED" and "z3" in cert["solvers"]
    out = io.StringIO()
    assert cli.run(argv, out, io.StringIO()) == 0
    second = json.loads(out.getvalue())
    assert all("cache" in r["engines"] for r in second)
    assert [r["verdict"] for r in second] == [r["verdict"] for r in first]
    # read-only mode reads hits but writes nothing new
    out = io.StringIO()
    assert cli.run(["check", str(ROOT / "rules" / "softmax.egg"), "--no-sympy", "--json", "--cache", "ro",
                    "--cache-dir", str(cache)], out, io.StringIO()) == 0
    assert not any("cache" in r["engines"] for r in json.loads(out.getvalue()))
    assert len(list(cache.rglob("*.json"))) == len(first)


@pytest.mark.slow
def test_masked_naive_recurrence_is_refuted_with_the_masked_tile():
    claim = equiv_claim(read_file(PROOFS / "masked" / "attention_masked.egg").program,
                        read_file(PROOFS / "masked" / "attention_1pass_naive.egg").program)
    from verify.claims import with_assumptions

    claim = with_assumptions(claim, ["B unmasked along m"])
    result = check_by_kind(claim, Options(bound=Bound.parse("M1=2,M0=2"), isolate=False, sympy=False))
    assert result.verdict is Verdict.REFUTED
    cx = result.counterexample
    mask = np.array(cx.inputs["B"].values, dtype=object)
    assert "-inf" in mask.ravel().tolist()            # the masked tile is in the counterexample
    assert cx.rhs_value == "nan" and cx.lhs_value != "nan"


@pytest.mark.slow
def test_masked_guarded_recurrence_is_certified_under_the_precondition():
    (claim,) = read_chain(PROOFS / "masked.chain.toml")
    assert claim.assumptions == (("B", "m"),)
    result = check_by_kind(claim, FAST)
    assert result.verdict is Verdict.CERTIFIED
    assert "mask patterns" in result.engines["normal form"]


@pytest.mark.slow
def test_log_sum_exp_and_a_wrong_one():
    (claim,) = read_chain(PROOFS / "lse.chain.toml")
    assert check_by_kind(claim, FAST).verdict is Verdict.CERTIFIED
    wrong = mutated("variants/lse_1pass.egg", "(M_add_p (S_last_m1 RM) (M_log_p (S_last_m1 RD)))",
                    "(M_add_p (R_max_m1 LM) (M_log_p (R_add_m1 SLD)))")
    result = check_by_kind(equiv_claim(program("variants/lse_3pass.egg"), wrong), FAST)
    assert result.verdict is Verdict.REFUTED


@pytest.mark.slow
@pytest.mark.parametrize("chain", ["variants.chain.toml", "scaled.chain.toml"])
def test_variant_chains_certified(chain):
    claims = read_chain(PROOFS / chain)
    assert claims
    for claim in claims:
        assert check_by_kind(claim, FAST).verdict is Verdict.CERTIFIED, claim.name


@pytest.mark.slow
def test_interrupted_certificate_writing_leaves_no_partial_file(tmp_path, monkeypatch):
    """Ctrl-C while certificates are written: the files written so far are whole, and no temporary file or
    half-written certificate remains."""
    from verify import certificates

    claims = read_chain(PROOFS / "attention.chain.toml")[:2]
    results = [check_by_kind(c, FAST) for c in claims]
    real_dump = certificates.json.dumps
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_dump(*args, **kwargs)

    monkeypatch.setattr(certificates.json, "dumps", interrupted)
    real_replace = os.replace
    with pytest.raises(KeyboardInterrupt):
        certificates.write_certificates(zip(claims, results), tmp_path, "test")
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 1 and files[0].endswith(".json") and not files[0].startswith(".tmp")
    json.loads((tmp_path / files[0]).read_text())            # whole, parseable

    # an interrupt between the write and the rename removes the temporary file
    monkeypatch.setattr(certificates.json, "dumps", real_dump)

    def interrupted_replace(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        certificates.write_certificates(zip(claims, results), tmp_path / "again", "test")
    assert not list((tmp_path / "again").glob("*"))
    monkeypatch.setattr(os, "replace", real_replace)


def test_cache_does_not_answer_for_a_claim_without_its_assumption(tmp_path):
    """The cache key covers a claim's assumptions: dropping one must re-check, not reuse the verdict."""
    from dataclasses import replace

    from verify.cache import cache_key
    from verify.driver import ENCODING_VERSION

    (claim,) = read_chain(PROOFS / "masked.chain.toml")
    bare = replace(claim, assumptions=())
    assert cache_key(claim, Bound(), ENCODING_VERSION, True) != cache_key(bare, Bound(), ENCODING_VERSION, True)
    lifted = read_chain(PROOFS / "attention.chain.toml")[0]
    assert cache_key(lifted, Bound(), ENCODING_VERSION, True) != cache_key(replace(lifted, unbounded=()), Bound(),
                                                                      ENCODING_VERSION, True)


def test_duplicate_chain_step_names_are_a_located_error(tmp_path):
    chain = _chain(tmp_path, 'start = "attention.egg"\nend = "attention_2pass.egg"\n'
                             '[[step]]\nname = "s"\nfrom = "attention.egg"\nto = "attention_2pass.egg"\n'
                             '[[step]]\nname = "s"\nfrom = "attention_2pass.egg"\nto = "attention.egg"\n')
    code, out, err = run_cli("check", "--cache", "off", chain)
    assert code == 2 and f"{chain}:8: parse error: step name 's' is used twice (first at line 4)" in err, (code, err)


@pytest.mark.slow
def test_a_chain_step_may_name_a_reached_program_by_another_path(tmp_path):
    chain = _chain(tmp_path, 'start = "attention.egg"\nend = "attention_2pass.egg"\n'
                             '[[step]]\nname = "s"\nfrom = "../ch/attention.egg"\nto = "attention_2pass.egg"\n'
                             'bound = "M1=1..1,M0=1..1"\n')
    code, out, err = run_cli("check", "--cache", "off", "--no-sympy", chain)
    assert code == 0 and "CERTIFIED" in out, (code, out, err)
