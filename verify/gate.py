"""The gate: the one entry point through which `verify check`, `verify equiv`, the pytest plugin and export
check claims, so that every one of them gets the same run. For a run over a list of claims, in this order:
1. `preflight`: every claim's size plan is computed first, so an absurd bound is one user error (exit status
   2), not one ERROR per claim; a rank named in `--bound` that no claim has is a user error too;
2. the vacuity guard (`vacuity.vacuity_guard`), once per process; if it fails, every verdict of the run is
   UNKNOWN (`driver.apply_guard`) and the cache is neither read nor written;
3. each claim by what it is (`check_by_kind`): a chain step `by = "rules"` from the evidence of its rules
   (`rules_step.rules_step_evidence`), any other claim by the driver's pipeline, on the executor asked for
   (threads of killable child processes, or a dask cluster).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import cluster, driver, ir, symbolic
from .claims import Claim, equiv_claims, with_assumptions_each
from .errors import BoundError, VerifyError, did_you_mean
from .induction import lemma_obligations
from .masks import check_pattern_count
from .options import CacheMode, Options
from .reader import read_file
from .rules_step import rules_step_evidence, rules_step_result
from .sizes import Bound, effective_bound, plan
from .targets import collect
from .vacuity import vacuity_guard
from .verdict import Result, error_result, exit_status


@dataclass
class Report:
    results: list[Result]
    errors: list[VerifyError]
    notes: list[str]
    claims: list[Claim] = field(default_factory=list)   # results[i] is the verdict on claims[i]

    @property
    def exit_code(self) -> int:
        """2 if any ERROR or bad input, else 1 if anything is REFUTED or UNKNOWN, else 0."""
        return exit_status((r.verdict for r in self.results), len(self.errors))

    def error_results(self) -> list[Result]:
        """Each error as an ERROR result (for --json): a bad rule is its own entry, named and located."""
        return [error_result(e) for e in self.errors]


def check_by_kind(claim: Claim, options: Options) -> Result:
    """One claim, by what it is (step 3 of the module docstring); no guard. A module-level function: cluster
    workers import it by name."""
    if claim.by_rules is not None:
        start = time.monotonic()
        evidence = rules_step_evidence(claim, options)
        return rules_step_result(claim, evidence, time.monotonic() - start)
    return driver.check_claim(claim, options)


def preflight(claims: list[Claim], options: Options) -> None:
    """Plan every claim up front: an absurd bound raises one BoundError (exit status 2)."""
    for claim in claims:
        try:
            the_plan = plan(claim, effective_bound(claim, options.bound))
            if claim.masks:      # opaque masks are enumerated: refuse a bound with too many patterns before work
                check_pattern_count(claim, the_plan.sizes())
        except VerifyError as exc:
            raise exc.located(claim.location) from None


def check_bound_ranks(claims: list[Claim], bound: Bound) -> None:
    """A rank named in `--bound` that no claim has is a user error (a typo would otherwise be ignored)."""
    if not claims or not bound.ranges:
        return
    known = ({r.upper() for c in claims for r in c.ranks()}
             | {r.upper() for c in claims for view in c.splits() for r in view})
    for rank, _ in bound.ranges:
        if rank not in known:
            raise BoundError(f"--bound names rank {rank}, which no claim checked here has",
                             hint=did_you_mean(rank, sorted(known)) or f"the ranks are: {', '.join(sorted(known))}")


class Gate:
    """A run over `claims`, prepared once (steps 1 and 2 of the module docstring; a user error raises here).
    `run` checks them all; `check` checks one of them (the pytest plugin, item by item)."""

    def __init__(self, claims: list[Claim], options: Options):
        preflight(claims, options)
        check_bound_ranks(claims, options.bound)
        if claims:
            lemma_obligations()     # z3 in this process once, before any thread starts (see lemma_obligations)
            if options.sympy:
                symbolic.preload()  # likewise sympy: the forked children inherit it
        self.guard_ok, self.guard_detail = vacuity_guard(options) if claims else (True, "")
        if not self.guard_ok:  # verdicts of a vacuous encoding are neither read from nor written to the cache
            options = replace(options, cache_mode=CacheMode.OFF)
        self.claims, self.options = claims, options

    def check(self, claim: Claim) -> Result:
        return driver.apply_guard(check_by_kind(claim, self.options), self.guard_ok, self.guard_detail)

    def run(self, progress=None, events=None) -> list[Result]:
        """Every claim's result, in input order. `progress(result)` and `events.finished(index, result)` are
        called (in the calling thread) as each claim completes, in completion order; `events.started(index,
        claim)` as a claim starts (from a worker thread when jobs > 1). A consumer that raises (e.g.
        BrokenPipeError) stops the run: claims not yet started are cancelled."""
        claims, options = self.claims, self.options
        results: list[Result | None] = [None] * len(claims)

        def finish(i, result):
            driver.apply_guard(result, self.guard_ok, self.guard_detail)
            results[i] = result
            if progress:
                progress(result)
            if events:
                events.finished(i, result)

        def one(i, claim):
            if events:
                events.started(i, claim)
            return check_by_kind(claim, options)

        if options.executor != "local" and claims:
            for i, result in cluster.map_claims(claims, options, events, check=check_by_kind, lost=driver.lost_result,
                                                encoding=driver.ENCODING_VERSION):
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
        return [r for r in results if r is not None]


def check_claims(claims: list[Claim], options: Options, progress=None, events=None) -> list[Result]:
    """The gate over a list of claims (the module docstring); see `Gate.run` for `progress` and `events`."""
    return Gate(claims, options).run(progress, events)


def check_paths(paths, options: Options, progress=None, events=None) -> Report:
    claims, errors, notes = collect(paths, options)
    return Report(check_claims(claims, options, progress, events), errors, notes, claims)


def declared_sizes(program) -> dict[str, int]:
    """rank -> the size the program fixes for it: declared by a CreateTensor, or made by splitting a rank of known
    size by a literal tile count (M=1024 and `(T_split_m_m1m0 K 4)`: M1=4, M0=256). The split ranks count
    because a bound on them is as misleading as one on M: that program never runs at M1<=2."""
    sizes = {rank: size for rank, (size, _line) in program.sizes.items()}
    splits = [node for binding in program.bindings.values() for node in ir.walk(binding.expr)
              if isinstance(node, ir.Split) and type(node.tiles) is int and node.tiles > 0]
    grew = True
    while grew:                   # a split of a split rank: its size is known once the first split's is
        grew = False
        for split in splits:
            whole = sizes.get(split.rank)
            if whole is None or whole % split.tiles:
                continue
            for rank, size in ((split.outer, split.tiles), (split.inner, whole // split.tiles)):
                if rank not in sizes:
                    sizes[rank] = size
                    grew = True
    return sizes


def bounded_ranks_not_declared(program, verdicts) -> str:
    """The ranks a bounded verdict bounds that the program does not fix ("" if none). A kernel runs at whatever
    size it is called with, so a program certified only within a bound yields a kernel only when the program
    pins every bounded rank to a size inside the bound (`declared_sizes_outside` then has nothing to say)."""
    sizes = declared_sizes(program)
    missing = {rank for result in verdicts if not result.bound.is_all_sizes
               for rank, _lo, _hi in result.bound.ranges if rank.lower() not in sizes}
    return ", ".join(sorted(missing))


def declared_sizes_outside(program, verdicts) -> str:
    """The program's sizes (`declared_sizes`) that lie outside a bounded verdict's bound ("" if none)."""
    outside = []
    sizes = declared_sizes(program)
    for result in verdicts:
        if result.bound.is_all_sizes:
            continue
        for rank, lo, hi in result.bound.ranges:
            declared = sizes.get(rank.lower())
            if declared and not lo <= declared <= hi:
                outside.append(f"{rank}={declared}")
    return ", ".join(sorted(set(outside)))


def check_equiv(a: str | Path, b: str | Path, options: Options, events=None) -> Report:
    try:
        left, right = read_file(a), read_file(b)
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
