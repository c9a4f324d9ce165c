"""The evidence for a chain step `by = "rules"` (a `targets.RulesStep`), as a `driver.RulesStepEvidence`; the
driver decides the step's verdict from it (`driver.rules_step_result`).

A rules step holds when every named rule is CERTIFIED by the checker now, and egglog, saturating both programs
with exactly those rules, puts the two outputs in one e-class. Rewriting with certified equalities preserves
equality, so the step holds wherever every rule does: its bound is the weakest of the rules' bounds. The
whole-program equivalence is checked as well (translation validation, recorded in `engines`); it can only
refute the step, never certify it in place of the rules.
"""

from __future__ import annotations

import dataclasses
import threading

from .certified_rules import certify_named
from .claims import Claim
from .driver import RulesStepEvidence, check_claim, iterations_text
from .egglog import Schedule, connect
from .errors import Location, VerifyError
from .options import Options
from .targets import RulesStep
from .verdict import Result, Verdict

# A step's rules reach its `to` program within this schedule or the step is UNKNOWN.
SCHEDULE = Schedule(iterations=12, node_limit=20_000, time_limit=20.0)

_EGGLOG_LOCK = threading.Lock()    # one e-graph at a time (--jobs runs claims in threads of this process)


def _plain(claim: Claim) -> Claim:
    return Claim(**{f.name: getattr(claim, f.name) for f in dataclasses.fields(Claim)})


def rules_step_evidence(claim: RulesStep, options: Options) -> RulesStepEvidence:
    """Runs in the calling process: the rules' and the equivalence's proofs go through `driver.check_claim`
    (each in its own child), egglog runs here."""
    found_by = RulesStepEvidence(claim.rules_dir, claim.rules, schedule_iterations=SCHEDULE.iterations)
    engines = found_by.engines
    try:
        found = certify_named(claim.rules_dir, claim.rules, options)
    except VerifyError as exc:
        found_by.unreadable = exc.format()
        return found_by
    for rule in claim.rules:
        if rule not in found:
            found_by.unusable.append(f"no rule named '{rule}' under {claim.rules_dir} any more")
            continue
        status, r = found[rule]
        assert isinstance(r, Result)
        where = Location(status.file, status.line)
        if status.verdict is Verdict.CERTIFIED:
            found_by.rules[rule] = r
            cached = " (cached)" if "cache" in r.engines else ""
            engines[f"rule {rule}"] = f"CERTIFIED ({r.bound}; {r.method}){cached}"
            found_by.warnings.extend(f"rule {rule}: {w}" for w in r.warnings)
            if status.rule is None:
                found_by.unusable.append(f"rule '{rule}' ({where}) is certified but not usable as a rewrite: "
                                         f"{status.reason}")
        else:
            engines[f"rule {rule}"] = f"{status.verdict}: {status.detail}"
            text = f"rule '{rule}' ({where}) is {status.verdict}" + (f": {status.detail}" if status.detail else "")
            (found_by.refuted if status.verdict is Verdict.REFUTED else found_by.unusable).append(text)
    if not found_by.refuted and not found_by.unusable:
        rules = [r for r in (found[rule][0].rule for rule in claim.rules) if r is not None]
        try:
            with _EGGLOG_LOCK:
                found_by.connected, sat = connect(claim.lhs.program(), claim.rhs.program(), rules, SCHEDULE)
        except VerifyError as exc:
            engines["egglog"] = f"failed: {exc.format()}"
        except Exception as exc:  # an InternalError (egglog panicked) is never a pass
            engines["egglog"] = f"failed: {type(exc).__name__}: {exc}"
        else:
            found_by.saturated = True
            found_by.iterations, found_by.stop, found_by.rows = sat.iterations, sat.stop, sat.rows
            matched = ", ".join(f"{n} ({k})" for n, k in sorted(sat.matches.items()) if k) or "none"
            engines["egglog"] = (f"{'connected' if found_by.connected else 'not connected'} after "
                                 f"{iterations_text(sat.iterations)}{'' if found_by.connected else f' ({sat.stop})'}, "
                                 f"{sat.rows} rows, {sat.seconds:.2f} s; rules that matched: {matched}")
    # translation validation: the two programs are equal as wholes (can refute the step, never certify it)
    equivalence = found_by.equivalence = check_claim(_plain(claim), options)
    engines["equivalence"] = (f"{equivalence.verdict.value} ({equivalence.bound}; {equivalence.method})"
                              if equivalence.verdict is Verdict.CERTIFIED else
                              f"{equivalence.verdict.value}: {equivalence.detail or equivalence.method}")
    return found_by
