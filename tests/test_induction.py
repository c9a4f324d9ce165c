"""Unbounded (induction) certificates in verify/induction/, with real Z3."""

import math
import time

import pytest
import z3

from verify.induction import (
    GROUP_1PASS,
    GROUP_2PASS,
    GROUP_MERGE,
    VARIANTS,
    Obligation,
    prove_all,
    prove_chain_unbounded,
)
from verify.induction.query import Query, discharge

MUTANTS = [name for name in VARIANTS if name != "correct"]


@pytest.fixture(scope="module")
def correct():
    t0 = time.perf_counter()
    groups = prove_all()
    return groups, time.perf_counter() - t0


@pytest.fixture(scope="module")
def mutants():
    return {name: prove_chain_unbounded(name) for name in MUTANTS}


def by_name(obs):
    return {o.name: o for o in obs}


@pytest.mark.slow
def test_correct_chain_every_obligation_proved(correct):
    groups, total = correct
    assert list(groups) == [GROUP_2PASS, GROUP_1PASS, GROUP_MERGE]
    for group, obs in groups.items():
        assert obs, group
        for o in obs:
            assert isinstance(o, Obligation)
            assert o.verdict == "proved", (o.name, o.result)
            assert o.result == "unsat" and o.counterexample is None
            assert o.group == group and o.statement and o.seconds >= 0
    assert total < 5.0          # target < 1 s; generous bound for a loaded machine


@pytest.mark.slow     # the module's fixtures prove a whole chain's obligations
def test_expected_obligations_present(correct):
    groups, _ = correct
    names = {o.name for obs in groups.values() for o in obs}
    for n in ("split.sum.outer.step", "split.max.outer.step", "2pass.pointwise", "running_max.step",
              "rebase.step", "invariant.base0", "invariant.base1", "invariant.step.RD", "invariant.step.RNV",
              "shift_invariance", "conclusion", "merge.associative", "merge.commutative",
              "merge.identity.left", "merge.identity.right", "merge.one_tile", "merge.step_is_1pass"):
        assert n in names


@pytest.mark.slow     # the module's fixtures prove a whole chain's obligations
def test_queries_are_quantifier_free_and_never_contain_infinity(correct):
    groups, _ = correct
    assert groups and all(groups.values())
    for obs in groups.values():
        for o in obs:
            text = o.query.lower()
            assert "forall" not in text and "exists" not in text, o.name
            assert "inf" not in text.replace("info", ""), o.name


@pytest.mark.slow
def test_flat_list_matches_groups(correct):
    groups, _ = correct
    flat = prove_chain_unbounded()
    assert [o.name for o in flat] == [o.name for obs in groups.values() for o in obs]


@pytest.mark.slow
@pytest.mark.parametrize("name", MUTANTS)
def test_every_mutant_is_refuted_with_replayed_counterexample(mutants, name):
    obs = mutants[name]
    refuted = [o for o in obs if o.verdict == "refuted"]
    assert refuted, name
    assert not [o for o in obs if o.verdict == "unknown"]
    for o in refuted:
        assert isinstance(o.counterexample, dict) and o.counterexample
        assert o.replay is not None and o.replay["disagrees"] is True, (o.name, o.replay)


@pytest.mark.slow     # the module's fixtures prove a whole chain's obligations
def test_drop_rnv_rescale_fails_exactly_the_rnv_step(mutants):
    obs = by_name(mutants["drop_rnv_rescale"])
    assert obs["invariant.step.RD"].verdict == "proved"
    step = obs["invariant.step.RNV"]
    assert step.verdict == "refuted" and step.result == "sat"
    cex = step.counterexample
    assert cex["LM_k"] > cex["RM_k"]                      # needs a later tile with a larger score
    rep = step.replay
    assert rep["AV_disagrees"] is True                    # the concrete tiles give a wrong final AV too
    assert len({len(s) for s, _ in rep["tiles"]}) == 1    # one tile size M0 for all tiles
    assert obs["invariant.base1"].verdict == "proved"     # the k = 0 step has RNV[0] = 0: no rescale needed


@pytest.mark.slow     # the module's fixtures prove a whole chain's obligations
def test_flipped_correction_fails_base_and_step(mutants):
    obs = by_name(mutants["flipped_correction"])
    base = obs["invariant.base1"]
    assert base.verdict == "refuted" and base.result == "undefined"   # 0 * exp(+inf), never sent to Z3
    assert math.isnan(base.replay["state_1 by recurrence"][1])
    for comp in ("RD", "RNV"):
        step = obs[f"invariant.step.{comp}"]
        assert step.verdict == "refuted" and step.result == "sat"
        assert step.replay["disagrees"] is True


@pytest.mark.slow     # the module's fixtures prove a whole chain's obligations
def test_merge_forgetting_rescale_breaks_the_monoid_only(mutants):
    obs = by_name(mutants["merge_forgets_rescale"])
    assert obs["merge.associative"].verdict == "refuted"
    assert obs["merge.commutative"].verdict == "refuted"
    assert obs["merge.step_is_1pass"].verdict == "refuted"
    for o in obs.values():
        if o.group != GROUP_MERGE:
            assert o.verdict == "proved", o.name


@pytest.mark.slow
@pytest.mark.parametrize("name", ["2pass_flipped_prm", "2pass_drop_prm"])
def test_2pass_mutants_fail_pointwise(mutants, name):
    o = by_name(mutants[name])["2pass.pointwise"]
    assert o.verdict == "refuted"
    assert o.replay["disagrees"] is True and o.replay["AV_disagrees"] is True


def test_unknown_is_never_a_pass(monkeypatch):
    class Stub:
        def check(self):
            return z3.unknown

        def sexpr(self):
            return "(stub)"

    monkeypatch.setattr(Query, "solver", lambda self, *a, **k: Stub())
    obs = prove_chain_unbounded()
    assert {o.verdict for o in obs if o.result != "undefined"} == {"unknown"}


def test_vacuous_hypotheses_are_not_a_proof():
    q = Query("vacuous", "x > 0 and x < 0 imply anything")
    x = q.real("x")
    q.hyp(x > 0, x < 0)
    q.goal(x == 42)
    o = discharge(q, "test")
    assert o.verdict == "unknown" and o.result == "vacuous"


def test_exp_facts_know_exp_zero_is_one():
    # a false counterexample from an exp without exp(0) = 1 would refute this correct step
    q = Query("exp0", "a = b implies exp(a - b) = 1")
    a, b = q.real("a"), q.real("b")
    q.hyp(a == b)
    q.goal(q.exp_diff("a", "b") == 1)
    assert discharge(q, "test").verdict == "proved"


def test_unknown_variant_name():
    with pytest.raises(ValueError):
        prove_chain_unbounded("no_such_variant")
