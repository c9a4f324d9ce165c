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

Besides one claim's pipeline, the verdicts made from outside evidence: a run whose vacuity guard failed
(`apply_guard`) and a claim a cluster worker lost (`lost_result`). A chain step `by = "rules"` is decided in
rules_step.py from verdicts this module gave (its rules', its translation validation's). `gate` decides which a
claim needs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from . import induction, refute, smt, symbolic
from .cache import Cache, cache_key, structure
from .claims import Claim, program_side, side_values, symbolic_inputs
from .crosscheck import cross_check
from .induction import LemmaVerdict, lemma_obligations, lift
from .intervals import rigorous_difference
from .isolation import Failure, run_isolated
from .masks import block_note, param_ranges, patterns
from .normal_form import NormalForm, NotNormalizable, all_equal, exp_overflow_warning
from .options import Options
from .reader import read_file
from .sizes import BY_INDUCTION, NO_BOUND, Bound, SizeBound, effective_bound, plan
from .smt import Outcome
from .symbolic import Agreement
from .verdict import Result, Verdict, assumption_texts

ENCODING_VERSION = "nf-5"  # bump whenever an encoding or the confirmation of counterexamples changes


# -- one claim ------------------------------------------------------------------------------------------------

def normal_form_equal(claim: Claim, sizes, fixed=None) -> bool | None:
    """True: proved at these sizes (and mask pattern). False/None: not proved (None: outside the fragment)."""
    alg = NormalForm()
    try:
        return all_equal(alg, *side_values(claim, sizes, alg, symbolic_inputs(claim, sizes, alg, fixed)))
    except NotNormalizable:
        return None


def assignments(claim: Claim, sizes_list) -> Iterator[tuple[dict[str, int], dict | None]]:
    """Every (sizes, mask pattern) the bounded proof must cover: each size assignment and, for a claim with masks,
    each mask pattern at it (each element 0 or -inf in every engine: masks are never unknown reals); the pattern
    is None without masks."""
    for sizes in sizes_list:
        for pattern in patterns(claim, sizes):        # [{}] without masks
            yield sizes, pattern or None


def prove_bounded(claim: Claim, options: Options) -> Result:
    start = time.monotonic()
    the_plan = plan(claim, effective_bound(claim, options.bound))
    sizes_list = list(the_plan.sizes())
    ranges = the_plan.ranges + param_ranges(claim)      # a predicate's parameters: the values checked
    bound = SizeBound(ranges) if ranges else SizeBound.every("no rank is reduced or tiled")

    def result(verdict, method, **kw) -> Result:
        return Result.for_claim(claim, verdict, bound, method, time.monotonic() - start, **kw)

    cx = refute.search(claim, sizes_list, seed=options.seed, prove_difference=rigorous_difference)
    if cx is not None:
        return result(Verdict.REFUTED, "numeric search, replayed in mpmath", counterexample=cx,
                      detail=block_note(claim, cx.sizes))
    # One loop over (sizes, pattern), masked or not, so that both kinds of claim get the same treatment: the
    # normal form first, Z3 where it cannot decide, a Z3 model replayed in mpmath and shrunk before REFUTED.
    checked, by_z3 = 0, 0
    for sizes, pattern in assignments(claim, sizes_list):
        checked += 1
        if normal_form_equal(claim, sizes, pattern):
            continue
        answer = smt.decide(claim, sizes, int(options.z3_timeout * 1000), fixed=pattern)
        if answer.proved:
            by_z3 += 1
            continue
        where = ", ".join(f"{k.upper()}={v}" for k, v in sorted(sizes.items()))
        if pattern:
            shown = {k: v.tolist() for k, v in pattern.items()}
            where += f", masks {shown}"
        if answer.outcome is Outcome.MODEL:
            cx = refute.confirm(claim, sizes, answer.model, "z3 model", prove_difference=rigorous_difference)
            if cx is not None:
                cx = refute.shrink(claim, cx, answer.model, prove_difference=rigorous_difference)
                return result(Verdict.REFUTED, "z3 model, replayed in mpmath", counterexample=cx)
            return result(Verdict.UNKNOWN, "normal form + z3",
                          detail=f"at {where}: the normal form did not decide and z3's model did not replay")
        return result(Verdict.UNKNOWN, "normal form + z3",
                      detail=f"at {where}: the normal form did not decide; {answer.reason}")
    methods = ["normal form"]
    what = "mask patterns" if claim.masks else "size assignments"
    if by_z3:
        methods.append(f"z3 ({by_z3} of {checked} {what})")
    by_nf = (f"equal at {len(sizes_list)} size assignments ({checked - by_z3} of {checked} mask patterns)"
             if claim.masks else f"equal at {checked - by_z3} size assignments")
    engines = {"normal form": by_nf}
    if by_z3:
        engines["z3"] = f"unsat at {by_z3} {what}"
    engines["numeric search"] = f"no counterexample in {refute.TRIALS} trials x {len(sizes_list)} sizes"
    out = result(Verdict.CERTIFIED, " + ".join(methods), engines=engines)
    warning = exp_overflow_warning(claim, small_sizes(claim, options)[-1])
    if warning:
        out.warnings.append(warning)
    out.detail = f"{len(sizes_list)} size assignments" + (
        f"; parallel ranks pinned to 1: {', '.join(the_plan.parallel)}" if the_plan.parallel else "")
    if the_plan.parallel:
        out.engines["parallel ranks"] = pinned_note(the_plan)
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
    """What pinning parallel ranks covers (see `sizes.plan_uncached`), naming any bound given for them."""
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
    result.engines["sympy"] = str(outcome)
    if outcome.agreement is Agreement.DISAGREES:
        result.verdict = Verdict.ERROR
        result.detail = f"internal error: the normal form certified this but SymPy disagrees ({outcome.detail})"
    return result


def check_claim(claim: Claim, options: Options) -> Result:
    """The verdict on one claim, naming the assumptions (`B unmasked along m`) it holds under."""
    result = _check_claim_cached(claim, options)
    result.assumptions = assumption_texts(claim)
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
        return Result.for_claim(claim, verdict, NO_BOUND, "-", time.monotonic() - start, detail=outcome.detail)
    outcome, lifted = outcome
    result = second_opinion(claim, options, outcome)
    before_induction = (result.bound, result.method)
    result = lift_to_all_sizes(claim, options, result)
    result = lift_rule_level(claim, result, lifted, before_induction)
    the_plan = plan(claim, effective_bound(claim, options.bound))
    if the_plan.pinned_bounds and result.verdict is Verdict.CERTIFIED and not result.bound.is_all_sizes:
        # a bound the user gave for a pinned rank is reported, never silently dropped (a lift makes every rank
        # symbolic, so there it is covered)
        result.warnings.append(f"bound {', '.join(the_plan.pinned_bounds)} not checked as such: "
                               f"{', '.join(r.upper() for r in the_plan.parallel)} parallel, pinned to 1, which "
                               f"decides every size")
    result.seconds = time.monotonic() - start
    return result


def _induction_groups(groups):
    proved = induction.prove_all()
    return {g: [(o.name, o.verdict, o.seconds) for o in proved[g]] for g in groups}


# The model lemmas are the same for every claim (they mention no claim): proved once per run in a killable child,
# and their outcomes kept here for the other steps naming the same groups. A failure is not kept.
_LEMMA_OUTCOMES: dict[tuple[str, ...], dict] = {}
_LEMMA_LOCK = threading.Lock()


def induction_groups(groups: tuple[str, ...], options: Options):
    """The outcomes of the lemma groups `groups` (a dict), or the `Failure` of the child that proved them."""
    with _LEMMA_LOCK:          # threads of one run (--jobs) wait for the first proof instead of repeating it
        if groups not in _LEMMA_OUTCOMES:
            outcome = run_isolated(_induction_groups, (groups,), options.timeout, options.isolate)
            if isinstance(outcome, Failure):
                return outcome
            _LEMMA_OUTCOMES[groups] = outcome
        return _LEMMA_OUTCOMES[groups]


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
    outcome = induction_groups(tuple(claim.unbounded), options)
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
    return widened(result, SizeBound.every(BY_INDUCTION), f"induction: {', '.join(claim.unbounded)} "
                                                           f"({len(lemmas)} lemmas)")


def widened(result: Result, bound: SizeBound, lifted_by: str) -> Result:
    """A bounded certificate widened by a lift to `bound` (all sizes), keeping the bounded proof's method."""
    result.bounded_method = result.bounded_method or result.method
    result.engines["bounded"] = f"{result.bounded_method} at {result.bound}"
    result.method = f"{lifted_by}; {result.bounded_method} at {result.bound}"
    result.bound, result.lifted_by = bound, lifted_by
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
        induction = result.lifted_by
        result.engines["induction (models, second opinion)"] = induction
        if before_induction is not None:
            result.bound, result.method = before_induction
            result.bounded_method = result.lifted_by = ""
        lifted_result = lift_rule_level(replace(claim, unbounded=()), result, lifted)
        lifted_result.method += f"; second opinion: {induction}"
        return lifted_result
    if not lifted.lifted:
        result.engines["unbounded"] = f"not lifted: {lifted.reason}"
        result.detail = (result.detail + "; " if result.detail else "") + f"not lifted to all sizes: {lifted.reason}"
        return result
    lemmas = ", ".join(f"{n}" for n, _ in lifted.lemma_obligations)
    result.engines["unbounded"] = (f"{lifted.shape}: {len(lifted.obligations)} obligations proved "
                                   f"({', '.join(o.name for o in lifted.obligations)}) in "
                                   f"{sum(o.seconds for o in lifted.obligations) * 1000:.0f} ms"
                                   + (f"; lemmas (induction): {lemmas}" if lemmas else ""))
    result.shape = lifted.shape + (f" [{', '.join(lifted.lemmas)}]" if lifted.lemmas else "")
    return widened(result, lifted.bound(), lifted.method_text())




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
    return Result.for_claim(claim, Verdict.UNKNOWN, NO_BOUND, "-", seconds, detail=detail)
