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
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import refute
from .claims import (Bound, Claim, aligned_pair, effective_bound, equiv_claim, evaluate_both, plan, rule_claim,
                     symbolic_inputs)
from .errors import InternalError, VerifyError
from .normal_form import NormalForm, NotNormalizable
from .reader import SourceFile, expand_paths, read_file
from .verdict import Result, Verdict

ENCODING_VERSION = "nf-3"  # bump whenever an encoding or the confirmation of counterexamples changes


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


def _prove_masked(claim: Claim, sizes) -> tuple[bool, int, dict | None]:
    """Every mask pattern at these sizes by the normal form: (all proved, patterns, first undecided pattern)."""
    from .masks import patterns

    found = patterns(claim, sizes)
    for pattern in found:
        if not _normal_form_equal(claim, sizes, pattern):
            return False, len(found), pattern
    return True, len(found), None


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
    for sizes in sizes_list:
        if claim.masks:
            # Masks are enumerated, pattern by pattern; -inf is outside what the Z3 encoding expresses.
            proved, count, pattern = _prove_masked(claim, sizes)
            mask_patterns += count
            if proved:
                continue
            where = ", ".join(f"{k.upper()}={v}" for k, v in sorted(sizes.items()))
            shown = {k: v.tolist() for k, v in pattern.items()}
            return result(Verdict.UNKNOWN, "normal form",
                          detail=f"at {where}, masks {shown}: the normal form did not decide, and no "
                                 f"counterexample was found")
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
    engines = {"normal form": f"equal at {len(sizes_list) - z3_proved} size assignments"
                              + (f" ({mask_patterns} mask patterns)" if claim.masks else "")}
    if z3_proved:
        engines["z3"] = f"unsat at {z3_proved} size assignments"
    engines["numeric search"] = f"no counterexample in {refute.TRIALS} trials x {len(sizes_list)} sizes"
    out = result(Verdict.CERTIFIED, " + ".join(methods), engines=engines)
    from .numerics import exp_overflow_warning

    warning = exp_overflow_warning(claim, small_sizes(claim, options)[-1])
    if warning:
        out.warnings.append(warning)
    out.detail = f"{len(sizes_list)} size assignments" + (
        f"; parallel ranks pinned to 1: {', '.join(the_plan.parallel)}" if the_plan.parallel else "")
    from .guards import cross_check  # independent numeric check; a proven disagreement -> ERROR

    return cross_check(claim, options, sizes_list, out)


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
    from .certificates import Cache, cache_key

    if getattr(claim, "rules", ()):   # a chain step by = "rules": its rules' and equivalence's checks are cached
        from .chain import check_rules_step

        return check_rules_step(claim, options)
    cache = Cache(options.cache_dir, options.cache_mode)
    key = cache_key(claim, effective_bound(claim, options.bound), ENCODING_VERSION) if cache.mode != "off" else ""
    cached = cache.get(key) if key else None
    if cached is not None:
        cached.engines["cache"] = f"hit {key[:12]}"
        return cached
    result = _check_claim_uncached(claim, options)
    if key:
        cache.put(key, result)
    return result


def _check_claim_uncached(claim: Claim, options: Options) -> Result:
    start = time.monotonic()
    from .unbounded import lemma_obligations

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
    from .unbounded import lift

    lifted = lift(claim)
    for o in lifted.obligations:
        o.query = ""          # the SMT text stays in the child (python -m verify.unbounded prints it)
    return result, lifted


def lift_rule_level(claim: Claim, result: Result, lifted) -> Result:
    """A bounded certificate plus the proved obligations of the claim's shape -> CERTIFIED (all sizes ...).
    Steps that name model lemma groups (claim.unbounded) are decided by `lift_to_all_sizes`; the rule-level
    lift is recorded beside it as a second opinion."""
    if lifted is None or result.verdict is not Verdict.CERTIFIED:
        return result
    if claim.unbounded:
        result.engines["unbounded (rule-level)"] = (f"lifted: {lifted.shape}, {len(lifted.obligations)} obligations"
                                                    if lifted.lifted else f"not lifted: {lifted.reason}")
        return result
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
    except BaseException as exc:  # noqa: BLE001 - a crash in a back end (incl. egglog's PanicException)
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
        if self.errors:
            return 2
        return 0 if all(r.verdict is Verdict.CERTIFIED for r in self.results) else 1


def claims_of(source: SourceFile) -> list[Claim]:
    from .claims import with_assumptions
    from .errors import Location

    out = []
    for rule in source.rules:
        claim = rule_claim(rule)
        for text, line in source.assumptions:
            claim = with_assumptions(claim, [text], Location(source.path, line))
        out.append(claim)
    return out


def collect(paths) -> tuple[list[Claim], list[VerifyError], list[str]]:
    """Claims from every file (rules) and chain file; user errors are collected, not raised."""
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
            found = claims_of(source)
            if not found:
                from .shapes import program_ranks

                ranks = program_ranks(source.program)
                outs = ", ".join(f"{n}[{','.join(ranks[n])}]" for n in source.program.output_names())
                notes.append(f"{path}: program, {len(source.program.bindings)} bindings, outputs {outs or 'none'}")
            claims.extend(found)
        except VerifyError as exc:
            errors.append(exc)
    return claims, errors, notes


def check_claims(claims: list[Claim], options: Options, progress=None) -> list[Result]:
    from . import guards

    guards.preflight(claims, options)       # an absurd bound is one user error, before any work
    if claims:
        from .unbounded import lemma_obligations

        lemma_obligations()     # z3 in this process once, before any thread starts (see lemma_obligations)
    guard_ok, guard_detail = guards.vacuity_guard(options) if claims else (True, "")
    if not guard_ok:  # verdicts of a vacuous encoding are neither read from nor written to the cache
        from dataclasses import replace

        options = replace(options, cache_mode="off")

    def one(claim):
        result = check_claim(claim, options)
        if progress:
            progress(result)
        return result

    if options.jobs <= 1:
        return guards.apply_guard([one(c) for c in claims], guard_ok, guard_detail)
    with ThreadPoolExecutor(max_workers=options.jobs) as pool:
        return guards.apply_guard(list(pool.map(one, claims)), guard_ok, guard_detail)


def check_paths(paths, options: Options, progress=None) -> Report:
    claims, errors, notes = collect(paths)
    return Report(check_claims(claims, options, progress), errors, notes, claims)


def check_equiv(a: str | Path, b: str | Path, options: Options) -> Report:
    try:
        left, right = read_file(a), read_file(b)
        claim = equiv_claim(left.program, right.program, name=f"{Path(a).name} == {Path(b).name}")
        from .claims import with_assumptions

        claim = with_assumptions(claim, [text for text, _ in left.assumptions + right.assumptions])
    except VerifyError as exc:
        return Report([], [exc], [])
    return Report(check_claims([claim], options), [], [], [claim])  # the same guards as `check`
