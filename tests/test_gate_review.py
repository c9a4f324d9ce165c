"""Findings of a review of the gate in daily use: a bound on split ranks the program never runs at, an identical
DAG that was not identical, a cached verdict that skipped the second opinion the run asked for."""

from __future__ import annotations

import io
import json

import pytest

from verify import cli, optimize
from verify.cache import KEY_ENV, cache_key
from verify.driver import ENCODING_VERSION
from verify.errors import ShapeError
from verify.gate import declared_sizes, declared_sizes_outside
from verify.reader import read_text
from verify.sizes import Bound, SizeBound
from verify.targets import claims_of
from verify.verdict import Result, Verdict

SPLIT = ('(let K (CreateTensor 1024 4 "K[m,e]"))\n(let T (T_split_m_m1m0 K {tiles}))\n'
         '(let S (R_max_m1 (R_max_m0 T)))\n(extract S)\n')
RULE = "; right: x + 0\n(rewrite (R_add_m x) (R_add_m (M_add_mp x (Const 0.0))))\n"


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.run([str(a) for a in argv], out, err)
    return code, out.getvalue(), err.getvalue()


def bounded(**ranks) -> Result:
    return Result("c", "f.egg", None, "equiv", Verdict.CERTIFIED,
                  SizeBound(tuple((r, 1, hi) for r, hi in ranks.items())), "normal form", 0.0)


def test_the_sizes_a_split_makes_of_a_declared_rank_are_declared_too():
    program = read_text(SPLIT.format(tiles=4), "p.egg").program
    assert declared_sizes(program) == {"m": 1024, "e": 4, "m1": 4, "m0": 256}
    assert declared_sizes_outside(program, [bounded(E=4, M1=2, M0=2)]) == "M0=256, M1=4"
    assert declared_sizes_outside(program, [bounded(E=4, M1=4, M0=256)]) == ""
    with pytest.raises(ShapeError, match="1024 is not a multiple of 3"):   # such a program is refused when read
        read_text(SPLIT.format(tiles=3), "q.egg")


def test_a_retiled_program_is_not_the_same_computation():
    four, eight = (read_text(SPLIT.format(tiles=n), "p.egg").program for n in (4, 8))
    assert optimize.same_computation(four, read_text(SPLIT.format(tiles=4), "q.egg").program)
    assert not optimize.same_computation(four, eight)


def test_only_certified_validations_verify_a_rewritten_program(monkeypatch, tmp_path):
    program = read_text(SPLIT.format(tiles=4), str(tmp_path / "p.egg")).program
    monkeypatch.setattr(optimize, "same_computation", lambda a, b: False)     # as if a rule had rewritten it
    for verdict in (Verdict.ERROR, Verdict.UNKNOWN, Verdict.REFUTED):
        validation = bounded(M1=2)
        validation.verdict = verdict
        monkeypatch.setattr(optimize, "validate_translation", lambda *a, v=validation, **k: [v])
        out = optimize.optimize(program, [])
        assert not out.verified and not out.unchanged and out.verdicts[0].verdict is verdict


def test_an_unchanged_program_is_reported_unchanged_not_validated(monkeypatch, tmp_path):
    program = read_text(SPLIT.format(tiles=4), str(tmp_path / "p.egg")).program
    monkeypatch.setattr(optimize, "validate_translation", lambda *a, **k: pytest.fail("validated an identity"))
    out = optimize.optimize(program, [])
    assert out.unchanged and out.verified and out.verdicts == []


def test_a_verdict_cached_without_sympy_does_not_answer_a_run_that_asks_for_it(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    (claim,) = claims_of(read_text(RULE, "r.egg"))
    assert cache_key(claim, Bound(), ENCODING_VERSION, True) != cache_key(claim, Bound(), ENCODING_VERSION, False)
    rule, cache = tmp_path / "r.egg", tmp_path / "cache"
    rule.write_text(RULE)

    def engines(*extra):
        code, out, err = run("check", rule, "--json", "--cache-dir", cache, *extra)
        assert code == 0, err
        return json.loads(out)[0]["engines"]

    assert "cache" not in engines("--no-sympy")
    assert "cache" in engines("--no-sympy")
    second = engines()
    assert "cache" not in second and "sympy" in second


@pytest.mark.slow
def test_equiv_warns_when_the_bound_misses_the_split_sizes(tmp_path):
    """A running max over tiles equals the max (CERTIFIED within the bound, not lifted); K is 1024 long in 4
    tiles, so M1=4 and M0=256 lie outside M1<=2, M0<=2."""
    a, b = tmp_path / "a.egg", tmp_path / "b.egg"
    a.write_text('(let K (CreateTensor 1024 4 "K[m,p]"))\n(let S (R_max_m K))\n(extract S)\n')
    b.write_text('(let K (CreateTensor 1024 4 "K[m,p]"))\n(let BK (T_split_m_m1m0 K 4))\n(let LM (R_max_m0 BK))\n'
                 '(let RM (S_scan_m1 "RM" (Const -inf) (M_max_m1p (S_prev_m1 "RM") LM)))\n'
                 '(let S (S_last_m1 RM))\n(extract S)\n')
    code, out, err = run("equiv", a, b, "--cache", "off", "--no-sympy", "--plain", "--bound", "M1=2,M0=2,P=2")
    assert code == 0 and "CERTIFIED (M1<=2, M0<=2" in out, (out, err)
    assert "the programs declare M0=256, M1=4, outside the bound checked" in out, (out, err)
