"""load -> shapes -> cheap checks -> back ends in order -> verdicts. Never prints.

The order for one claim, cheapest first (as Alive2 orders its obligations):
1. numeric search on the reference evaluator, smallest sizes first; a hit is replayed in mpmath and confirmed
   by interval arithmetic -> REFUTED;
2. the normal form at every size assignment of the bound -> a proof per assignment;
3. where the normal form cannot decide an assignment: Z3 (a proof, or a model that must replay);
4. for a CERTIFIED claim: SymPy's second opinion at the smallest assignments, recorded in `engines`;
   a disagreement is an internal error (verdict ERROR), never a pass; likewise a numeric cross-check;
5. a chain step naming induction lemmas between modelled cascades: the lemmas lift it to all sizes;
6. any other certified claim: the rule-level lift (verify/unbounded/) generates quantifier-free obligations
   from the claim's own IR; proved, they lift it to all sizes, naming the lemma shape; else it says why not.
Each claim runs in a child process that is killed at `--timeout` (Z3 and SymPy do not always honour their own
limits); a killed check is UNKNOWN.
"""

from __future__ import annotations

import multiprocessing
import re
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import refute
from .claims import Bound, Claim, aligned_pair, effective_bound, evaluate_both, plan, rule_claim, symbolic_inputs
from .errors import InternalError, VerifyError
from .normal_form import NormalForm, NotNormalizable
from .reader import SourceFile, expand_paths, read_file
from .verdict import Result, Verdict

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
    cache_mode: str = "off"        # rw | ro | off (the CLI turns it on; see certificates.py)
    strict_shapes: bool = False    # no implicit tiling (implicit.py); a file may ask with `; shapes: strict`
    executor: str = "local"        # local (threads x child processes) | dask | dask=SCHEDULER_ADDRESS (cluster.py)


# -- one claim ------------------------------------------------------------------------------------------------

def _normal_form_equal(claim: Claim, sizes, fixed=None) -> bool | None:
    """True: proved at these sizes (and mask pattern). False/None: not proved (None: outside the fragment)."""
    import numpy as np

    alg = NormalForm()
    try:
        left, right = evaluate_both(claim, sizes, alg, symbolic_inputs(claim, sizes, alg, fixed))
        lv, rv = aligned_pair(claim, left, right)
        lv, rv = np.broadcast_arrays(lv, rv)
        return all(alg.equal(a, b) for a, b in zip(lv.ravel(), rv.ravel()))
    except NotNormalizable:
        return None


def _prove_masked(claim: Claim, sizes, z3_timeout_ms: int):
    """Every mask pattern at these sizes, by the normal form and, where it cannot decide, by Z3 with the
    pattern fixed (masks are 0 or -inf, never unknown reals): (status, patterns, z3 proofs, pattern, payload)
    with status "proved", or Z3's "model"/"unknown" at the first pattern it did not prove."""
    from . import smt
    from .masks import patterns

    found = patterns(claim, sizes)
    z3_proved = 0
    for pattern in found:
        if _normal_form_equal(claim, sizes, pattern):
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

    def result(verdict, method, **kw) -> Result:
        return Result(claim.name, claim.file, claim.line, claim.kind, verdict, the_plan.description, method,
                      time.monotonic() - start, description=claim.description, **kw)

    cx = refute.search(claim, sizes_list, seed=options.seed)
    if cx is not None:
        return result(Verdict.REFUTED, "numeric search, replayed in mpmath", counterexample=cx)
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
                cx = refute.confirm(claim, sizes, payload, "z3 model")
                if cx is not None:
                    return result(Verdict.REFUTED, "z3 model, replayed in mpmath", counterexample=cx)
                payload = "z3's model did not replay"
            return result(Verdict.UNKNOWN, "normal form + z3",
                          detail=f"at {where}, masks {shown}: the normal form did not decide; {payload}")
        if _normal_form_equal(claim, sizes):
            continue
        from . import smt

        status, payload = smt.decide(claim, sizes, int(options.z3_timeout * 1000))
        if status == "proved":
            z3_proved += 1
            continue
        where = ", ".join(f"{k.upper()}={v}" for k, v in sorted(sizes.items()))
        if status == "model":
            cx = refute.confirm(claim, sizes, payload, "z3 model")
            if cx is not None:
                cx = refute.shrink(claim, cx, payload)
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
    from .normal_form import exp_overflow_warning

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
    from .guards import cross_check  # independent numeric check; a proven disagreement -> ERROR

    return cross_check(claim, options, sizes_list, out)


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
    from . import symbolic

    outcome = run_isolated(symbolic.second_opinion, (claim, small), options.sympy_timeout, options.isolate,
                           options.memory_limit)
    if isinstance(outcome, _Failure):
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
    from .certificates import Cache, cache_key

    if getattr(claim, "rules", ()):   # a chain step by = "rules": its rules' and equivalence's checks are cached
        from .chain import check_rules_step

        return check_rules_step(claim, options)
    cache = Cache(options.cache_dir, options.cache_mode)
    key = cache_key(claim, effective_bound(claim, options.bound), ENCODING_VERSION) if cache.mode != "off" else ""
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
    from .induction import lemma_obligations

    lemma_obligations()         # proved once, here: the children forked below inherit them
    outcome = run_isolated(_prove_and_lift, (claim, options), options.timeout, options.isolate, options.memory_limit)
    if isinstance(outcome, _Failure):
        verdict = Verdict.UNKNOWN if outcome.kind in ("timeout", "memory") else Verdict.ERROR
        if outcome.kind == "user":
            verdict = Verdict.ERROR
        return Result(claim.name, claim.file, claim.line, claim.kind, verdict, "-", "-",
                      time.monotonic() - start, detail=outcome.detail, description=claim.description)
    outcome, lifted = outcome
    result = second_opinion(claim, options, outcome)
    result = lift_to_all_sizes(claim, options, result)
    result = lift_rule_level(claim, result, lifted)
    result.seconds = time.monotonic() - start
    return result


def _induction_groups(groups):
    from . import induction

    proved = induction.prove_all()
    return {g: [(o.name, o.verdict, o.seconds) for o in proved[g]] for g in groups}


def modelled_structures(groups) -> dict[str, str]:
    """structure hash -> model file, for the cascades the named lemma groups describe."""
    from . import induction
    from .certificates import structure
    from .claims import program_side

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
    from .certificates import structure

    known = modelled_structures(claim.unbounded)
    strangers = [side.label for side in (claim.lhs, claim.rhs) if structure(side) not in known]
    if strangers:
        result.engines["induction"] = (f"not lifted: {', '.join(strangers)} is not a cascade the lemmas of "
                                       f"{', '.join(claim.unbounded)} model (verify/models/); bounded only")
        result.warnings.append("not lifted to all sizes: a program of this step is not a modelled cascade")
        return result
    from .induction import REQUIRES

    needed = [g for side in (claim.lhs, claim.rhs) for g in REQUIRES[known[structure(side)]]]
    missing = sorted(set(needed) - set(claim.unbounded))
    if missing:
        result.engines["induction"] = (f"not lifted: the argument for these cascades also needs the lemma "
                                       f"group(s) {', '.join(missing)}; bounded only")
        result.warnings.append("not lifted to all sizes: a lemma group the argument needs is not named")
        return result
    outcome = run_isolated(_induction_groups, (claim.unbounded,), options.timeout, options.isolate)
    if isinstance(outcome, _Failure):
        result.verdict = Verdict.UNKNOWN
        result.detail = f"bounded check certified ({result.bound}); induction: {outcome.detail}"
        return result
    lemmas = [(name, verdict) for group in outcome.values() for name, verdict, _ in group]
    failed = [f"{name}: {verdict}" for name, verdict in lemmas if verdict != "proved"]
    seconds = sum(s for group in outcome.values() for _, _, s in group)
    result.engines["induction"] = (f"{len(lemmas) - len(failed)} of {len(lemmas)} lemmas proved in "
                                   f"{seconds * 1000:.0f} ms: {', '.join(name for name, _ in lemmas)}")
    if failed:
        result.verdict = Verdict.UNKNOWN
        result.detail = f"bounded check certified ({result.bound}) but induction lemmas failed: {'; '.join(failed)}"
        return result
    bounded = result.bound
    result.engines["bounded"] = f"{result.method} at {bounded}"
    result.bound = "all sizes, by induction"
    result.method = f"induction: {', '.join(claim.unbounded)} ({len(lemmas)} lemmas); {result.method} at {bounded}"
    return result


def _prove_and_lift(claim: Claim, options: Options):
    """The bounded proof and, for a certified claim, the rule-level lift (both in the claim's child process)."""
    result = prove_bounded(claim, options)
    if result.verdict is not Verdict.CERTIFIED:
        return result, None
    from .induction import lift

    lifted = lift(claim)
    for o in lifted.obligations:
        o.query = ""          # the SMT text stays in the child (python -m verify.cli.lift prints it)
    return result, lifted


def lift_rule_level(claim: Claim, result: Result, lifted) -> Result:
    """A bounded certificate plus the proved obligations of the claim's shape -> CERTIFIED (all sizes ...).
    Steps that name model lemma groups (claim.unbounded) are decided by `lift_to_all_sizes`; the rule-level
    lift is recorded beside it as a second opinion."""
    if lifted is None or result.verdict is not Verdict.CERTIFIED:
        return result
    if claim.unbounded and not (lifted.lifted and result.bound == "all sizes, by induction"):
        result.engines["unbounded (rule-level)"] = (f"lifted: {lifted.shape}, {len(lifted.obligations)} obligations"
                                                    if lifted.lifted else f"not lifted: {lifted.reason}")
        return result
    if claim.unbounded:
        # both lifts hold: the rule-level one decides (its obligations are generated from the claim's own IR
        # and every rank, E, P, F included, is symbolic); the model induction stays as a second opinion
        induction = result.method.split("; ")[0]
        result.engines["induction (models, second opinion)"] = induction
        result.bound, result.method = result.engines.get("bounded", " at ").rsplit(" at ", 1)[1], \
            result.engines.get("bounded", " at ").rsplit(" at ", 1)[0]
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
    result.bound = lifted.bound_text()
    # every rank is symbolic in the lift: a bound given for a pinned rank is covered, not merely "not checked"
    result.warnings = [w for w in result.warnings if not w.endswith("pinned to 1, which decides every size")]
    result.method = f"{lifted.method_text()}; {result.method} at {bounded}"
    return result


# -- isolation ------------------------------------------------------------------------------------------------

@dataclass
class _Failure:
    kind: str      # timeout | crash | user | internal
    detail: str


def _child(conn, fn, args, memory=None):
    try:
        from .guards import limit_memory

        limit_memory(memory)
        conn.send(("ok", fn(*args)))
    except MemoryError:
        conn.send(("memory", f"memory limit exceeded ({memory / 2**30:.3g} GiB address space; process stopped)"
                   if memory else "out of memory"))
    except VerifyError as exc:
        conn.send(("user", exc.format()))
    except InternalError as exc:
        conn.send(("internal", f"internal error: {exc}"))
    except BaseException as exc:  # a crash in a back end (incl. egglog's PanicException)
        conn.send(("internal", f"internal error: {type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def run_isolated(fn, args, timeout: float, isolate: bool = True, memory: int | None = None):
    """fn(*args) in a forked child killed after `timeout` seconds; a _Failure instead of a result on trouble."""
    if not isolate:
        try:
            return fn(*args)
        except VerifyError as exc:
            return _Failure("user", exc.format())
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args, memory), daemon=True)
    proc.start()
    child.close()
    try:
        if parent.poll(timeout):
            try:
                kind, value = parent.recv()
            except EOFError:
                proc.join(1)
                return _Failure("internal", f"internal error: the checker process died (exit code {proc.exitcode})")
            proc.join(5)
            return value if kind == "ok" else _Failure(kind, value)
        return _Failure("timeout", f"timeout after {timeout:g} s (process killed)")
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        parent.close()


# -- files ----------------------------------------------------------------------------------------------------

@dataclass
class Report:
    results: list[Result]
    errors: list[VerifyError]
    notes: list[str]
    claims: list[Claim] = field(default_factory=list)   # results[i] is the verdict on claims[i]

    @property
    def exit_code(self) -> int:
        """2 if any ERROR or bad input, else 1 if anything is REFUTED or UNKNOWN, else 0."""
        if self.errors or any(r.verdict is Verdict.ERROR for r in self.results):
            return 2
        return 0 if all(r.verdict is Verdict.CERTIFIED for r in self.results) else 1


    def error_results(self) -> list[Result]:
        """Each error as an ERROR result (for --json): a bad rule is its own entry, named and located."""
        from .verdict import error_result

        return [error_result(e) for e in self.errors]


def claims_of(source: SourceFile, strict: bool = False, errors: list | None = None) -> list[Claim]:
    """The claims of a file's rules. With `errors`, a rule whose claim cannot be built (ill-ranked, a bad
    assumption) is its own located error there and the other rules are still returned (per-rule isolation)."""
    from .claims import with_assumptions
    from .errors import Location, ParseError

    out = []
    last = max((rule.line for rule in source.rules if rule.line is not None), default=None)
    for text, line in source.assumptions:
        if source.rules and (last is None or line > last):
            raise ParseError(f"`; assume: {text}` applies to no rule: it covers only the rules below it",
                             Location(source.path, line), "move it above the rules it is a precondition of")
    for rule in source.rules:
        try:
            claim = rule_claim(rule, strict=strict or source.strict_shapes)
            for text, line in assumptions_above(source.assumptions, rule):
                claim = with_assumptions(claim, [text], Location(source.path, line))
        except VerifyError as exc:
            if errors is None:
                raise
            exc = exc.located(Location(source.path, rule.line))
            if not exc.cause.startswith("rule '"):
                exc.cause = f"rule '{rule.name}': {exc.cause}"
            errors.append(exc)
            continue
        out.append(claim)
    return out


def assumptions_above(assumptions, rule) -> list[tuple[str, int]]:
    """The scope of `; assume:` in a rule file: every rule *below* the directive (a rule above it is checked
    without it). A rule below it that has no such mask or rank is refused with a located error
    (`with_assumptions`), never checked as if the directive were not there."""
    return [(text, line) for text, line in assumptions if rule.line is not None and line < rule.line]


def collect(paths, strict: bool = False) -> tuple[list[Claim], list[VerifyError], list[str]]:
    """Claims from every file (rules) and chain file; user errors are collected, not raised. A rule that cannot
    be read or ranked is one error, located at the rule; the file's other rules are still collected. Rules
    with nothing to prove (naming rules, rules that only add terms) are notes."""
    from . import chain

    claims: list[Claim] = []
    errors: list[VerifyError] = []
    notes: list[str] = []
    try:
        files = expand_paths(paths)
    except VerifyError as exc:
        return [], [exc], []
    for path in files:
        try:
            if path.suffix == ".toml":
                claims.extend(chain.read_chain(path))
                continue
            source = read_file(path)
            errors.extend(source.rule_errors)
            notes.extend(f"{path}:{line}: {text}" if line else f"{path}: {text}" for line, text in source.notices)
            found = claims_of(source, strict, errors)
            if not found and not source.rules and not source.rule_errors and not source.notices:
                from .shapes import program_ranks

                ranks = program_ranks(source.program)
                outs = ", ".join(f"{n}[{','.join(ranks[n])}]" for n in source.program.output_names())
                notes.append(f"{path}: program, {len(source.program.bindings)} bindings, outputs {outs or 'none'}")
            claims.extend(found)
        except VerifyError as exc:
            errors.append(exc)
    return claims, errors, notes


def check_bound_ranks(claims: list[Claim], bound: Bound) -> None:
    """A rank named in `--bound` that no claim has is a user error (a typo would otherwise be ignored)."""
    from .errors import BoundError, did_you_mean

    if not claims or not bound.ranges:
        return
    known = ({r.upper() for c in claims for r in c.ranks()}
             | {r.upper() for c in claims for view in c.splits() for r in view})
    for rank, _ in bound.ranges:
        if rank not in known:
            raise BoundError(f"--bound names rank {rank}, which no claim checked here has",
                             hint=did_you_mean(rank, sorted(known)) or f"the ranks are: {', '.join(sorted(known))}")


def check_claims(claims: list[Claim], options: Options, progress=None, events=None) -> list[Result]:
    """Every claim's result, in input order. `progress(result)` and `events.finished(index, result)` are called
    (in the calling thread) as each claim completes, in completion order; `events.started(index, claim)` as a
    claim starts (from a worker thread when jobs > 1). A consumer that raises (e.g. BrokenPipeError) stops the run:
    claims not yet started are cancelled."""
    from concurrent.futures import as_completed

    from . import guards

    guards.preflight(claims, options)       # an absurd bound is one user error, before any work
    check_bound_ranks(claims, options.bound)
    if claims:
        from .induction import lemma_obligations

        lemma_obligations()     # z3 in this process once, before any thread starts (see lemma_obligations)
    guard_ok, guard_detail = guards.vacuity_guard(options) if claims else (True, "")
    if not guard_ok:  # verdicts of a vacuous encoding are neither read from nor written to the cache
        from dataclasses import replace

        options = replace(options, cache_mode="off")
    results: list[Result | None] = [None] * len(claims)

    def finish(i, result):
        guards.apply_guard([result], guard_ok, guard_detail)
        results[i] = result
        if progress:
            progress(result)
        if events:
            events.finished(i, result)

    def one(i, claim):
        if events:
            events.started(i, claim)
        return check_claim(claim, options)

    if options.executor != "local" and claims:
        from . import cluster

        for i, result in cluster.map_claims(claims, options, events, check=check_claim,
                                            encoding=ENCODING_VERSION):
            finish(i, result)
    elif options.jobs <= 1:
        for i, claim in enumerate(claims):
            finish(i, one(i, claim))
    else:
        pool = ThreadPoolExecutor(max_workers=options.jobs)
        try:
            futures = {pool.submit(one, i, c): i for i, c in enumerate(claims)}
            for future in as_completed(futures):
                finish(futures[future], future.result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return results


def check_paths(paths, options: Options, progress=None, events=None) -> Report:
    claims, errors, notes = collect(paths, options.strict_shapes)
    return Report(check_claims(claims, options, progress, events), errors, notes, claims)


def declared_sizes_outside(program, verdicts) -> str:
    """The program's declared CreateTensor sizes that lie outside a bounded verdict's bound ("" if none): a
    bound is written `R<=hi`, `R=lo..hi` or `all sizes (...)` (claims.plan)."""
    outside = []
    for result in verdicts:
        if result.bound.startswith("all sizes"):
            continue
        for rank, lo, hi in re.findall(r"\b([A-Z][0-9]*)(?:<=|=(\d+)\.\.)(\d+)", result.bound):
            declared = program.sizes.get(rank.lower())
            if declared and not int(lo or 1) <= declared[0] <= int(hi):
                outside.append(f"{rank}={declared[0]}")
    return ", ".join(sorted(set(outside)))


def check_equiv(a: str | Path, b: str | Path, options: Options, events=None) -> Report:
    try:
        left, right = read_file(a), read_file(b)
        from .claims import equiv_claims, with_assumptions_each

        claims = with_assumptions_each(equiv_claims(left.program, right.program,
                                                    name=f"{Path(a).name} == {Path(b).name}"),
                                       [text for text, _ in left.assumptions + right.assumptions])
    except VerifyError as exc:
        return Report([], [exc], [])
    programs = (left.program, right.program)

    class SizesOutside:
        """Says, before a result is shown, when the programs declare sizes outside the bound it was checked at."""

        def started(self, i, claim):
            if events:
                events.started(i, claim)

        def finished(self, i, result):
            outside = sorted({x for p in programs for x in declared_sizes_outside(p, [result]).split(", ") if x})
            if outside:
                result.warnings.append(f"the programs declare {', '.join(outside)}, outside the bound checked: not "
                                       "certified at those sizes")
            if events:
                events.finished(i, result)

    results = check_claims(claims, options, events=SizesOutside())    # the same guards as `check`
    return Report(results, [], [], claims)
