"""A chain step `by = "rules"` (a claim with `Claim.by_rules`): the evidence for it (`rules_step_evidence`, a
`RulesStepEvidence`) and its verdict (`rules_step_result`), which is made from verdicts the driver decided (each
cited rule's, and the translation validation's) and never overrides them.

A rules step holds when every named rule is CERTIFIED by the checker now, and egglog, saturating both programs
with exactly those rules, puts the two outputs in one e-class. Rewriting with certified equalities preserves
equality, so the step holds wherever every rule does: its bound is the weakest of the rules' bounds. The
whole-program equivalence is checked as well (translation validation, recorded in `engines`); it can only
refute the step, never certify it in place of the rules.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from .certified_rules import certify_named
from .claims import Claim
from .driver import check_claim
from .egglog import Schedule, connect
from .errors import Location, VerifyError
from .options import Options
from .sizes import NO_BOUND, SizeBound
from .verdict import Result, Verdict

# A step's rules reach its `to` program within this schedule or the step is UNKNOWN.
SCHEDULE = Schedule(iterations=12, node_limit=20_000, time_limit=20.0)

_EGGLOG_LOCK = threading.Lock()    # one e-graph at a time (--jobs runs claims in threads of this process)


def rules_step_evidence(claim: Claim, options: Options) -> RulesStepEvidence:
    """Runs in the calling process: the rules' and the equivalence's proofs go through `driver.check_claim`
    (each in its own child), egglog runs here."""
    assert claim.by_rules is not None
    cited = claim.by_rules
    found_by = RulesStepEvidence(cited.directory, cited.rules, schedule_iterations=SCHEDULE.iterations)
    engines = found_by.engines
    try:
        found = certify_named(cited.directory, cited.rules, options)
    except VerifyError as exc:
        found_by.unreadable = exc.format()
        return found_by
    for rule in cited.rules:
        if rule not in found:
            found_by.unusable.append(f"no rule named '{rule}' under {cited.directory} any more")
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
        rules = [r for r in (found[rule][0].rule for rule in cited.rules) if r is not None]
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
    equivalence = found_by.equivalence = check_claim(replace(claim, by_rules=None), options)
    engines["equivalence"] = (f"{equivalence.verdict.value} ({equivalence.bound}; {equivalence.method})"
                              if equivalence.verdict is Verdict.CERTIFIED else
                              f"{equivalence.verdict.value}: {equivalence.detail or equivalence.method}")
    return found_by


@dataclass
class RulesStepEvidence:
    """What the named rules, egglog and the translation validation said about a chain step `by = "rules"`
    (gathered by `rules_step_evidence`)."""

    rules_dir: str
    names: tuple[str, ...]
    engines: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    unreadable: str = ""                                       # the rules could not be read: why
    rules: dict[str, Result] = field(default_factory=dict)     # each certified rule's result
    refuted: list[str] = field(default_factory=list)           # refuted rules, each said why
    unusable: list[str] = field(default_factory=list)          # rules that cannot justify the step, said why
    saturated: bool = False                                    # egglog ran to a stop
    connected: bool = False
    iterations: int = 0
    stop: str = ""
    rows: int = 0
    schedule_iterations: int = 0
    equivalence: Result | None = None


def iterations_text(count: int) -> str:
    return f"{count} iteration{'' if count == 1 else 's'}"


def rules_step_result(claim: Claim, found: RulesStepEvidence, seconds: float) -> Result:
    """The verdict on a chain step `by = "rules"` (the module docstring): CERTIFIED at the weakest of the rules' bounds
    when every rule is certified and egglog connects the programs; the translation validation can refute the
    step, never certify it."""
    engines, warnings = found.engines, found.warnings

    def result(verdict, bound=NO_BOUND, method="-", detail="", counterexample=None) -> Result:
        return Result.for_claim(claim, verdict, bound, method, seconds, counterexample=counterexample,
                                detail=detail, engines=engines, warnings=warnings)

    if found.unreadable or found.equivalence is None:
        return result(Verdict.ERROR, detail=f"the rules under {found.rules_dir} could not be read: {found.unreadable}")
    refuted, unusable, equivalence = found.refuted, found.unusable, found.equivalence
    if equivalence.verdict is Verdict.REFUTED:
        return result(Verdict.REFUTED, equivalence.bound, f"equivalence: {equivalence.method}",
                      "the programs are not equal, so no rules connect them"
                      + (f"; also: {'; '.join(refuted + unusable)}" if refuted or unusable else ""),
                      equivalence.counterexample)
    if refuted:
        return result(Verdict.REFUTED, detail="the step is justified by a refuted rule: " + "; ".join(refuted)
                      + f" (see `verify check {found.rules_dir}`)")
    if unusable:
        return result(Verdict.UNKNOWN, detail="; ".join(unusable))
    if not found.saturated:
        return result(Verdict.UNKNOWN, detail=f"egglog could not saturate the programs: {engines['egglog']}")
    if not found.connected:
        return result(Verdict.UNKNOWN, detail=f"the named rules do not connect the programs within "
                                              f"{found.schedule_iterations} iterations (stopped: {found.stop}, "
                                              f"{found.rows} rows); rules: {', '.join(found.names)}")
    if equivalence.verdict is Verdict.ERROR:
        return result(Verdict.ERROR, detail=f"the translation validation hit an error: {equivalence.detail}")
    bound = weakest_bound([found.rules[rule].bound for rule in found.names])
    if bound is None:
        return result(Verdict.UNKNOWN, detail="the rules' bounds do not overlap (or cannot be read): "
                      + "; ".join(f"{rule}: {found.rules[rule].bound}" for rule in found.names))
    warnings.extend(w for w in equivalence.warnings if w not in warnings)
    method = f"rules: {', '.join(found.names)} (egglog, {iterations_text(found.iterations)})"
    if bound.is_all_sizes:   # every rule lifted: say by which shapes (their lemmas are in engines)
        method += "; shapes: " + shapes_text({rule: found.rules[rule] for rule in found.names})
    return result(Verdict.CERTIFIED, bound, method,
                  f"{len(found.names)} certified rules rewrite {Path(claim.lhs.file).name} into "
                  f"{Path(claim.rhs.file).name}: {found.rows} e-graph rows; bound = the weakest of the rules' bounds")


def weakest_bound(bounds: list[SizeBound]) -> SizeBound | None:
    """The sizes every bound covers: per rank the largest lower and the smallest upper end ("M<=2, M1<=4").
    None when some bound is no bound ("-") or the bounds do not overlap."""
    ranges: dict[str, tuple[int, int]] = {}
    for bound in bounds:
        if bound.is_all_sizes:
            continue
        if not bound.ranges:
            return None
        for rank, lo, hi in bound.ranges:
            old = ranges.get(rank, (lo, hi))
            ranges[rank] = (max(lo, old[0]), min(hi, old[1]))
    if any(lo > hi for lo, hi in ranges.values()):
        return None
    if not ranges:
        return SizeBound.every("every rule holds at all sizes")
    return SizeBound(tuple((rank, lo, hi) for rank, (lo, hi) in ranges.items()))


def shapes_text(results: dict) -> str:
    """'reduction split [split.max] (split-max), ...': each rule's unbounded shape, rules grouped by shape."""
    groups: dict[str, list[str]] = {}
    for rule, r in results.items():
        groups.setdefault(r.shape or f"bounded ({r.bound})", []).append(rule)
    return ", ".join(f"{shape} ({', '.join(rules)})" for shape, rules in groups.items())
