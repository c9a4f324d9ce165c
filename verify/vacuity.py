"""Vacuity guard, run once per process before a check run: the exp axioms of the Z3 encoding must be satisfiable
(else every Z3 "proof" would be vacuous), and canary false identities must be refuted by the whole pipeline,
with neither the normal form nor Z3 claiming to prove them. It reports (ok, detail); when it fails, the driver
turns every verdict of the run into UNKNOWN (`driver.apply_guard`)."""

from __future__ import annotations

import numpy as np

from . import driver, smt
from .claims import Claim, rule_claim
from .intervals import rigorous_difference
from .isolation import Failure, run_isolated
from .options import Options
from .reader import read_text
from .sizes import Bound
from .verdict import Verdict

# Canary false identities: the pipeline must refute each, and neither the normal form nor Z3 may prove them.
CANARIES = [
    ("canary: max(a, b) = a", "(rewrite (M_max_p a b) a)"),
    ("canary: exp(a)*exp(b) = exp(a*b)", "(rewrite (M_mul_p (M_exp_p a) (M_exp_p b)) (M_exp_p (M_mul_p a b)))"),
    ("canary: sum over m of x = x (needs M >= 2)",
     '(rewrite (R_add_m (M_max_mp (CreateTensor "X[p]") (CreateTensor "X[p]"))) (CreateTensor "X[p]"))'),
    ("canary: (a / b) * b = a (needs b = 0)", "(rewrite (M_mul_p (M_div_p a b) b) a)"),
    ("canary: exp(s - GM) = exp(BQK - LM) (needs 2 tiles)",
     "(rewrite (T_split_m_m1m0 (M_exp_mp (M_sub_mp s (R_max_m s))) t) "
     "(M_exp_m1m0p (M_sub_m1m0p (T_split_m_m1m0 s t) (R_max_m0 (T_split_m_m1m0 s t)))))"),
    ("canary: layout m0-major (needs non-square tiles)",
     "(rewrite (T_unsplit_m0m1_m (T_split_m_m1m0 x t)) (T_unsplit_m1m0_m (T_split_m_m0m1 x t)))"),
    ("canary: x + (B - B) = x for a mask B (needs B = -inf; z3 decides the pattern)",
     '(rewrite (M_add_mp x (M_sub_mp (CreateTensor "B[m,p]:mask") (CreateTensor "B[m,p]:mask"))) x)'),
]

_GUARD: tuple[bool, str] | None = None


def reset_guard_cache() -> None:
    global _GUARD
    _GUARD = None


def canary_claims() -> list[tuple[str, Claim]]:
    """(label, claim) for every canary. Parsed in the calling process: egglog's parser must not be used for
    the first time in a forked child (it can deadlock there)."""
    return [(label, rule_claim(read_text(text, "<canary>").rules[0])) for label, text in CANARIES]


def _check_canary(label: str, claim: Claim) -> str | None:
    options = Options(bound=Bound(), sympy=False, isolate=False, seed=0)
    result = driver.prove_bounded(claim, options)
    if result.verdict is not Verdict.REFUTED or result.counterexample is None:
        return f"{label}: the pipeline says {result.verdict.value}, not REFUTED"
    cx = result.counterexample
    inputs = {n: np.array(t.values, dtype=float) for n, t in cx.inputs.items()}
    if rigorous_difference(claim, cx.sizes, inputs) is None:
        return f"{label}: its counterexample does not replay"
    pattern = {m: inputs[m] for m in claim.masks} or None     # masks: the counterexample's own pattern
    if driver.normal_form_equal(claim, cx.sizes, pattern):
        return f"{label}: the normal form proves it at {cx.sizes}"
    if smt.decide(claim, cx.sizes, 10_000, fixed=pattern).proved:
        return f"{label}: z3 proves it at {cx.sizes}"
    return None


def _run_guard(canaries) -> tuple[bool, str]:
    problems = []
    try:
        problem = smt.exp_axioms_problem()
        if problem:
            problems.append(problem)
        for label, claim in canaries:
            problem = _check_canary(label, claim)
            if problem:
                problems.append(problem)
    except Exception as exc:  # a guard that cannot run is a failed guard
        problems.append(f"the guard itself failed: {type(exc).__name__}: {exc}")
    if problems:
        return False, "; ".join(problems)
    return True, f"z3 exp axioms satisfiable; {len(CANARIES)} canary false identities refuted"


def vacuity_guard(options=None) -> tuple[bool, str]:
    """(ok, detail), computed once per process (in a killable child when `options.isolate`)."""
    global _GUARD
    if _GUARD is None:
        isolate = getattr(options, "isolate", False)
        outcome: tuple[bool, str] | Failure
        try:
            canaries = canary_claims()
        except Exception as exc:  # a canary that cannot be read is a failed guard
            outcome = (False, f"the canaries cannot be read: {type(exc).__name__}: {exc}")
        else:
            outcome = run_isolated(_run_guard, (canaries,), 120.0, isolate)
        if isinstance(outcome, Failure):
            outcome = (False, f"the guard did not complete: {outcome.detail}")
        _GUARD = outcome
    return _GUARD
