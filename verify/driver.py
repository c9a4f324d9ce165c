"""The one place a verdict is decided: engines and the other decide modules report evidence, this module folds it
into a `Result`. Never prints.

The order for one claim, cheapest first (as Alive2 orders its obligations):
1. numeric search on the reference evaluator, smallest sizes first; a hit is replayed in mpmath and confirmed
   by interval arithmetic -> REFUTED;
2. the normal form at every size assignment of the bound -> a proof per assignment;
3. where the normal form cannot decide an assignment: Z3 (a proof, or a model that must replay);
4. for a CERTIFIED claim: SymPy's second opinion at the smallest assignments, recorded in `engines`;
   a disagreement is an internal error (verdict ERROR), never a pass; likewise a numeric cross-check;
5. a chain step naming induction lemmas between modelled cascades: the lemmas lift it to all sizes;
6. any other certified claim: the rule-level lift (verify/induction/rule_level/) generates quantifier-free obligations
   from the claim's own IR; proved, they lift it to all sizes, naming the lemma shape; else it says why not.
Each claim runs in a child process that is killed at `--timeout` (Z3 and SymPy do not always honour their own
limits); a killed check is UNKNOWN.

Besides one claim's pipeline, the verdicts made from outside evidence: a chain step `by = "rules"`
(`rules_step_result`, from `chain.rules_step_evidence`), a run whose vacuity guard failed (`apply_guard`), and
a claim a cluster worker lost (`lost_result`). `gate` decides which of them a claim needs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import induction, refute, smt, symbolic
from .certificates import Cache, CacheMode, cache_key, structure
from .claims import Bound, Claim, effective_bound, plan, program_side, side_values, symbolic_inputs
from .crosscheck import cross_check
from .induction import LemmaVerdict, lemma_obligations, lift
from .intervals import rigorous_difference
from .isolation import Failure, run_isolated
from .masks import block_note, param_ranges, patterns
from .normal_form import NormalForm, NotNormalizable, all_equal, exp_overflow_warning
from .reader import read_file
from .verdict import BY_INDUCTION, NO_BOUND, Result, SizeBound, Verdict

ENCODING_VERSION = "nf-4"  # bump whenever an encoding or the confirmation of counterexamples changes


@dataclass(frozen=True)
class Options:
    bound: Bound = field(default_factory=Bound)
    timeout: float = 60.0          # seconds per claim, enforced by killing the child process
    z3_timeout: float = 10.0       # seconds per Z3 query (inside the claim's budget)
    sympy: bool = True             # second opinion on CERTIFIED claims
    sympy_timeout: float = 20.0
    jobs: int = 1
    seed: int = 0
    isolate: bool = True           # run each claim in a killable child process
    memory_limit: int | None = 8 << 30   # bytes of address space per child process (RLIMIT_AS); None = no cap
    cache_dir: str = ".verify-cache"
    cache_mode: CacheMode = CacheMode.OFF   # the CLI turns it on (see certificates.py)
    strict_shapes: bool = False    # no implicit tiling (implicit.py); a file may ask with `; shapes: strict`
    executor: str = "local"        # local (threads x child processes) | dask | dask=SCHEDULER_ADDRESS (cluster.py)


# -- one claim ------------------------------------------------------------------------------------------------

def normal_form_equal(claim: Claim, sizes, fixed=None) -> bool | None:
    """True: proved at these sizes (and mask pattern). False/None: not proved (None: outside the fragment)."""
    alg = NormalForm()
    try:
        return all_equal(alg, *side_values(claim, sizes, alg, symbolic_inputs(claim, sizes, alg, fixed)))
    except NotNormalizable:
        return None


def _prove_masked(claim: Claim, sizes, z3_timeout_ms: int):
    """Every mask pattern at these sizes, by the normal form and, where it cannot decide, by Z3 with the
    pattern fixed (masks are 0 or -inf, never unknown reals): (status, patterns, z3 proofs, pattern, payload)
    with status "proved", or Z3's "model"/"unknown" at the first pattern it did not prove."""
    found = patterns(claim, sizes)
    z3_proved = 0
    for pattern in found:
        if normal_form_equal(claim, sizes, pattern):
            continue
        status, payload = smt.decide(claim, sizes, z3_timeout_ms, fixed=pattern)
        if status != "proved":
            return status, len(found), z3_proved, pattern, payload
        z3_proved += 1
    return "proved", len(found), z3_proved, None, None


def prove_bounded(claim: Claim, options: Options) -> Result:
    start = time.monotonic()
    the_plan = plan(claim, effective_bound(claim, options.bound))
    sizes_list = list(the_plan.sizes())
    ranges = the_plan.ranges + param_ranges(claim)      # a predicate's parameters: the values checked
    bound = SizeBound(ranges) if ranges else SizeBound.every("no rank is reduced or tiled")

    def result(verdict, method, **kw) -> Result:
        return Result(claim.name, claim.file, claim.line, claim.kind, verdict, bound, method,
                      time.monotonic() - start, description=claim.description, **kw)

    cx = refute.search(claim, sizes_list, seed=options.seed, prove_difference=rigorous_difference)
    if cx is not None:
        return result(Verdict.REFUTED, "numeric search, replayed in mpmath", counterexample=cx,
                      detail=block_note(claim, cx.sizes))
    methods: list[str] = []
    z3_proved = 0
    mask_patterns = 0
    z3_patterns = 0
    for sizes in sizes_list:
        if claim.masks:
            # Masks are enumerated, pattern by pattern (each element 0 or -inf, in every engine).
            status, count, by_z3, pattern, payload = _prove_masked(claim, sizes, int(options.z3_timeout * 1000))
            mask_patterns += count
            z3_patterns += by_z3
            if status == "proved":
                continue
            where = ", ".join(f"{k.upper()}={v}" for k, v in sorted(sizes.items()))
            shown = {k: v.tolist() for k, v in pattern.items()}
            if status == "model":
                cx = refute.confirm(claim, sizes, payload, "z3 model", prove_difference=rigorous_difference)
                if cx is not None:
                    return result(Verdict.REFUTED, "z3 model, replayed in mpmath", counterexample=cx)
                payload = "z3's model did not replay"
            return result(Verdict.UNKNOWN, "normal form + z3",
                          detail=f"at {where}, masks {shown}: the normal form did not decide; {payload}")
        if normal_form_equal(claim, sizes):
            continue
        status, payload = smt.decide(claim, sizes, int(options.z3_timeout * 1000))
        if status == "proved":
            z3_proved += 1
            continue
        where = ", ".join(f"{k.upper()}={v}" for k, v in sorted(sizes.items()))
        if status == "model":
            cx = refute.confirm(claim, sizes, payload, "z3 model", prove_difference=rigorous_difference)
            if cx is not None:
                cx = refute.shrink(claim, cx, payload, prove_difference=rigorous_difference)
                return result(Verdict.REFUTED, "z3 model, replayed in mpmath", counterexample=cx)
            return result(Verdict.UNKNOWN, "normal form + z3",
                          detail=f"at {where}: the normal form did not decide and z3's model did not replay")
        return result(Verdict.UNKNOWN, "normal form + z3", detail=f"at {where}: {payload}")
    methods.append("normal form")
    if z3_proved:
        methods.append(f"z3 ({z3_proved} of {len(sizes_list)} size assignments)")
    if z3_patterns:
        methods.append(f"z3 ({z3_patterns} of {mask_patterns} mask patterns)")
    engines = {"normal form": f"equal at {len(sizes_list) - z3_proved} size assignments"
                              + (f" ({mask_patterns - z3_patterns} of {mask_patterns} mask patterns)"
                                 if claim.masks else "")}
    if z3_proved:
        engines["z3"] = f"unsat at {z3_proved} size assignments"
    if z3_patterns:
        engines["z3"] = f"unsat at {z3_patterns} mask patterns"
    engines["numeric search"] = f"no counterexample in {refute.TRIALS} trials x {len(sizes_list)} sizes"
    out = result(Verdict.CERTIFIED, " + ".join(methods), engines=engines)
    warning = exp_overflow_warning(claim, small_sizes(claim, options)[-1])
    if warning:
        out.warnings.append(warning)
    out.detail = f"{len(sizes_list)} size assignments" + (
        f"; parallel ranks pinned to 1: {', '.join(the_plan.parallel)}" if the_plan.parallel else "")
    if the_plan.parallel:
        out.engines["parallel ranks"] = pinned_note(the_plan)
    if the_plan.pinned_bounds:   # a bound the user gave for a pinned rank is reported, never silently dropped
        out.warnings.append(f"bound {', '.join(the_plan.pinned_bounds)} not checked as such: "
                            f"{', '.join(r.upper() for r in the_plan.parallel)} parallel, pinned to 1, which "
                            f"decides every size")
    # an independent numeric check: a proven disagreement is an internal error, never a pass
    crossed = cross_check(claim, options.seed, sizes_list)
    out.engines["numeric cross-check"] = crossed.note
    if crossed.disagrees:
        out.verdict = Verdict.ERROR
        out.detail = (f"internal error: certified, but the numeric cross-check finds the sides provably "
                      f"different at {crossed.where} (interval replay)")
        out.counterexample = crossed.counterexample
    return out


def pinned_note(the_plan) -> str:
    """What pinning parallel ranks covers (see `claims.plan`), naming any bound given for them."""
    ranks = ", ".join(r.upper() for r in the_plan.parallel)
    note = f"{ranks} pinned to 1: parallel (no operator reduces, tiles or scans them, no assumption is along " \
           f"them), so size 1 decides every size"
    if the_plan.pinned_bounds:
        note += f"; the bound {', '.join(the_plan.pinned_bounds)} is covered by that, not checked as such"
    return note


def small_sizes(claim: Claim, options: Options, count: int = 3) -> list[dict[str, int]]:
    """The smallest size assignments (every size <= 2) for the slower, per-element engines (SymPy, the
    overflow analysis). A bound that fixes large sizes (M1=512..512) has none: then the smallest of the
    default bound, which the bounded proof does not cover but which the claim must satisfy as well."""
    def smallest(bound):
        return [s for s in plan(claim, bound).sizes() if max(s.values(), default=1) <= 2][:count]

    return smallest(effective_bound(claim, options.bound)) or smallest(Bound()) or \
        list(plan(claim, effective_bound(claim, options.bound)).sizes())[:1]


def second_opinion(claim: Claim, options: Options, result: Result) -> Result:
    """SymPy at the smallest assignments (every size <= 2, at most 3 of them), in its own killable child."""
    if not options.sympy or result.verdict is not Verdict.CERTIFIED:
        return result
    small = small_sizes(claim, options)
    outcome = run_isolated(symbolic.second_opinion, (claim, small), options.sympy_timeout, options.isolate,
                           options.memory_limit)
    if isinstance(outcome, Failure):
        result.engines["sympy"] = outcome.detail
        return result
    status, detail = outcome
    result.engines["sympy"] = f"{status}: {detail}"
    if status == "disagrees":
        result.verdict = Verdict.ERROR
        result.detail = f"internal error: the normal form certified this but SymPy disagrees ({detail})"
    return result


def check_claim(claim: Claim, options: Options) -> Result:
    """The verdict on one claim, naming the assumptions (`B unmasked along m`) it holds under."""
    result = _check_claim_cached(claim, options)
    result.assumptions = [f"{mask} unmasked along {rank}" for mask, rank in claim.assumptions]
    return result


def _check_claim_cached(claim: Claim, options: Options) -> Result:
    cache = Cache(options.cache_dir, options.cache_mode)
    key = (cache_key(claim, effective_bound(claim, options.bound), ENCODING_VERSION, options.sympy)
           if cache.mode != "off" else "")
    cached = cache.get(key) if key else None
    if cached is not None:
        cached.engines["cache"] = f"hit {key[:12]} (authenticated)"
        # the entry answers for this claim's content; where the claim is written now is the claim's own
        cached.name, cached.file, cached.line = claim.name, claim.file, claim.line
        cached.kind, cached.description = claim.kind, claim.description
        return _with_reading(claim, cached)
    result = _check_claim_uncached(claim, options)
    if key:
        cache.put(key, result)
    if cache.rejected:   # a forged, copied or foreign entry: reported (not cached), never trusted
        result.engines["cache rejected"] = cache.rejected
        result.warnings.append(cache.rejected)
    return _with_reading(claim, result)


def _with_reading(claim: Claim, result: Result) -> Result:
    """A rule read with implicit tiling says so in its verdict (the method of a certificate)."""
    reading = getattr(claim, "reading", "")
    if reading and reading not in result.method:
        result.method = f"{result.method}; {reading}" if result.method and result.method != "-" else reading
    return result


def _check_claim_uncached(claim: Claim, options: Options) -> Result:
    start = time.monotonic()
    lemma_obligations()         # proved once, here: the children forked below inherit them
    outcome = run_isolated(_prove_and_lift, (claim, options), options.timeout, options.isolate, options.memory_limit)
    if isinstance(outcome, Failure):
        verdict = Verdict.UNKNOWN if outcome.kind in ("timeout", "memory") else Verdict.ERROR
        if outcome.kind == "user":
            verdict = Verdict.ERROR
        return Result(claim.name, claim.file, claim.line, claim.kind, verdict, NO_BOUND, "-",
                      time.monotonic() - start, detail=outcome.detail, description=claim.description)
    outcome, lifted = outcome
    result = second_opinion(claim, options, outcome)
    before_induction = (result.bound, result.method)
    result = lift_to_all_sizes(claim, options, result)
    result = lift_rule_level(claim, result, lifted, before_induction)
    result.seconds = time.monotonic() - start
    return result


def _induction_groups(groups):
    proved = induction.prove_all()
    return {g: [(o.name, o.verdict, o.seconds) for o in proved[g]] for g in groups}


def modelled_structures(groups) -> dict[str, str]:
    """structure hash -> model file, for the cascades the named lemma groups describe."""
    models = Path(__file__).parent / "models"
    out = {}
    for group in groups:
        for name in induction.MODELS[group]:
            out[structure(program_side(read_file(models / name).program, name))] = name
    return out


def lift_to_all_sizes(claim: Claim, options: Options, result: Result) -> Result:
    """A bounded certificate plus proved induction lemmas -> CERTIFIED (all sizes, by induction).

    Only for steps between cascades the lemmas model (verify/models/): the lemmas say nothing about other
    programs, which may, for instance, count their tiles and go wrong only beyond the bound."""
    if not claim.unbounded or result.verdict is not Verdict.CERTIFIED:
        return result
    known = modelled_structures(claim.unbounded)
    strangers = [side.label for side in (claim.lhs, claim.rhs) if structure(side) not in known]
    if strangers:
        result.engines["induction"] = (f"not lifted: {', '.join(strangers)} is not a cascade the lemmas of "
                                       f"{', '.join(claim.unbounded)} model (verify/models/); bounded only")
        result.warnings.append("not lifted to all sizes: a program of this step is not a modelled cascade")
        return result
    needed = [g for side in (claim.lhs, claim.rhs) for g in induction.REQUIRES[known[structure(side)]]]
    missing = sorted(set(needed) - set(claim.unbounded))
    if missing:
        result.engines["induction"] = (f"not lifted: the argument for these cascades also needs the lemma "
                                       f"group(s) {', '.join(missing)}; bounded only")
        result.warnings.append("not lifted to all sizes: a lemma group the argument needs is not named")
        return result
    outcome = run_isolated(_induction_groups, (claim.unbounded,), options.timeout, options.isolate)
    if isinstance(outcome, Failure):
        result.verdict = Verdict.UNKNOWN
        result.detail = f"bounded check certified ({result.bound}); induction: {outcome.detail}"
        return result
    lemmas = [(name, verdict) for group in outcome.values() for name, verdict, _ in group]
    failed = [f"{name}: {verdict}" for name, verdict in lemmas if verdict is not LemmaVerdict.PROVED]
    seconds = sum(s for group in outcome.values() for _, _, s in group)
    result.engines["induction"] = (f"{len(lemmas) - len(failed)} of {len(lemmas)} lemmas proved in "
                                   f"{seconds * 1000:.0f} ms: {', '.join(name for name, _ in lemmas)}")
    if failed:
        result.verdict = Verdict.UNKNOWN
        result.detail = f"bounded check certified ({result.bound}) but induction lemmas failed: {'; '.join(failed)}"
        return result
    bounded = result.bound
    result.engines["bounded"] = f"{result.method} at {bounded}"
    result.bound = SizeBound.every(BY_INDUCTION)
    result.method = f"induction: {', '.join(claim.unbounded)} ({len(lemmas)} lemmas); {result.method} at {bounded}"
    return result


def _prove_and_lift(claim: Claim, options: Options):
    """The bounded proof and, for a certified claim, the rule-level lift (both in the claim's child process)."""
    result = prove_bounded(claim, options)
    if result.verdict is not Verdict.CERTIFIED:
        return result, None
    lifted = lift(claim)
    for o in lifted.obligations:
        o.query = ""          # the SMT text stays in the child (python -m verify.cli.lift prints it)
    return result, lifted


def lift_rule_level(claim: Claim, result: Result, lifted,
                    before_induction: tuple[SizeBound, str] | None = None) -> Result:
    """A bounded certificate plus the proved obligations of the claim's shape -> CERTIFIED (all sizes ...).
    Steps that name model lemma groups (claim.unbounded) are decided by `lift_to_all_sizes`; the rule-level
    lift is recorded beside it as a second opinion. `before_induction`: the bound and method before that lift."""
    if lifted is None or result.verdict is not Verdict.CERTIFIED:
        return result
    if claim.unbounded and not (lifted.lifted and result.bound.all_sizes == BY_INDUCTION):
        result.engines["unbounded (rule-level)"] = (f"lifted: {lifted.shape}, {len(lifted.obligations)} obligations"
                                                    if lifted.lifted else f"not lifted: {lifted.reason}")
        return result
    if claim.unbounded:
        # both lifts hold: the rule-level one decides (its obligations are generated from the claim's own IR
        # and every rank, E, P, F included, is symbolic); the model induction stays as a second opinion
        induction = result.method.split("; ")[0]
        result.engines["induction (models, second opinion)"] = induction
        if before_induction is not None:
            result.bound, result.method = before_induction
        lifted_result = lift_rule_level(replace(claim, unbounded=()), result, lifted)
        lifted_result.method += f"; second opinion: {induction}"
        return lifted_result
    if not lifted.lifted:
        result.engines["unbounded"] = f"not lifted: {lifted.reason}"
        result.detail = (result.detail + "; " if result.detail else "") + f"not lifted to all sizes: {lifted.reason}"
        return result
    bounded = result.bound
    lemmas = ", ".join(f"{n}" for n, _ in lifted.lemma_obligations)
    result.engines["bounded"] = f"{result.method} at {bounded}"
    result.engines["unbounded"] = (f"{lifted.shape}: {len(lifted.obligations)} obligations proved "
                                   f"({', '.join(o.name for o in lifted.obligations)}) in "
                                   f"{sum(o.seconds for o in lifted.obligations) * 1000:.0f} ms"
                                   + (f"; lemmas (induction): {lemmas}" if lemmas else ""))
    result.bound = lifted.bound()
    # every rank is symbolic in the lift: a bound given for a pinned rank is covered, not merely "not checked"
    result.warnings = [w for w in result.warnings if not w.endswith("pinned to 1, which decides every size")]
    result.method = f"{lifted.method_text()}; {result.method} at {bounded}"
    return result




# -- verdicts from outside evidence ---------------------------------------------------------------------------

def apply_guard(result: Result, ok: bool, detail: str) -> Result:
    """A verdict of a run whose vacuity guard failed becomes UNKNOWN (`vacuity.vacuity_guard`)."""
    if ok:
        return result
    if result.verdict is not Verdict.UNKNOWN:
        result.engines["vacuity guard"] = f"failed (verdict was {result.verdict.value})"
    result.verdict = Verdict.UNKNOWN
    result.detail = f"vacuity guard failed: {detail}"
    return result


def lost_result(claim: Claim, detail: str, seconds: float) -> Result:
    """A claim whose executor (a cluster worker) returned nothing: UNKNOWN, never a pass."""
    return Result(claim.name, claim.file, claim.line, claim.kind, Verdict.UNKNOWN, NO_BOUND, "-", seconds,
                  detail=detail, description=claim.description)


@dataclass
class RulesStepEvidence:
    """What the named rules, egglog and the translation validation said about a chain step `by = "rules"`
    (gathered by `chain.rules_step_evidence`)."""

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
    """The verdict on a chain step `by = "rules"` (see `chain`): CERTIFIED at the weakest of the rules' bounds
    when every rule is certified and egglog connects the programs; the translation validation can refute the
    step, never certify it."""
    engines, warnings = found.engines, found.warnings

    def result(verdict, bound=NO_BOUND, method="-", detail="", counterexample=None) -> Result:
        out = Result(claim.name, claim.file, claim.line, claim.kind, verdict, bound, method, seconds,
                     counterexample, detail, engines, warnings, claim.description)
        out.assumptions = [f"{mask} unmasked along {rank}" for mask, rank in claim.assumptions]
        return out

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
        method += "; shapes: " + _shapes({rule: found.rules[rule] for rule in found.names})
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


def _shapes(results: dict) -> str:
    """'reduction split [split.max] (split-max), ...': each rule's unbounded shape, rules grouped by shape."""
    groups: dict[str, list[str]] = {}
    for rule, r in results.items():
        shape = r.method.split(";")[0].removeprefix("unbounded: ").split(" (")[0] \
            if r.method.startswith("unbounded: ") else f"bounded ({r.bound})"
        groups.setdefault(shape, []).append(rule)
    return ", ".join(f"{shape} ({', '.join(rules)})" for shape, rules in groups.items())
