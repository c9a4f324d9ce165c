"""`verify explain`: why a refuted rule fails, and under which precondition it would hold.

For a refuted claim (rule, chain step or program pair) this module answers two questions.

1. *Where does it fail?* Each size assignment of the bound (smallest first, at most `MAX_ASSIGNMENTS`) is
   searched on its own; an assignment with a replayed counterexample fails. The smallest failing assignments
   (none of them larger than another in every rank) are reported, and so are the assignments where a bounded
   proof certifies the claim.
2. *Which precondition makes it true?* Candidates, each checked as a *modified claim* by the same back ends as
   `verify check` (numeric search, normal form, Z3):
   - `R=1` for each reduced or tiled rank R: the same claim at a bound with R pinned to 1;
   - an input nonnegative (x = t*t) or positive (x = exp(t)), one input at a time and all at once: the input
     is replaced by that expression of a fresh input t, which ranges over exactly the nonnegative (positive)
     reals, so a proof of the modified claim is a proof under the precondition;
   - an input constant along a rank r: the input x is replaced by (M_max x' x') over x's ranks, with x' lacking
     rank r (broadcast along it), which is exactly "x does not vary along r".

Wording follows the evidence, as in `verdict.py`: a candidate whose modified claim is CERTIFIED is "certified
under precondition" (with the bound it was proved at); one that is REFUTED "does not make it hold" (with the
counterexample's sizes); where the proof engines cannot decide, a numeric search on the modified claim decides
the wording: "no counterexample found in N trials (numeric search only, not a proof)".
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from . import ir, refute
from .claims import Claim, ClaimKind, Side, inputs_of, with_assumptions
from .gate import check_bound_ranks, check_claims
from .intervals import rigorous_difference
from .options import CacheMode, Options
from .repair import RepairSearch, repair
from .sizes import NO_BOUND, Bound, effective_bound, plan
from .targets import select
from .verdict import Result, Verdict, format_value, headline

MAX_ASSIGNMENTS = 64        # assignments searched one by one for the smallest failing sizes
PROVE_ASSIGNMENTS = 16      # of the non-failing ones, how many are proved one by one
SEARCH_SEEDS = 8            # numeric fallback for candidates the proof engines cannot decide
MAX_SHOWN = 4               # repairs shown in the text form (all of them in --json)


# -- records --------------------------------------------------------------------------------------------------

CandidateKind = Literal["size", "nonnegative", "positive", "constant", "assumption"]
CandidateStatus = Literal["certified", "refuted", "no counterexample", "unknown", "not tried"]


@dataclass
class Candidate:
    """One precondition and what checking the claim under it gave."""

    precondition: str                # e.g. "M1=1", "b >= 0", "c constant along m"
    kind: CandidateKind
    status: CandidateStatus = "not tried"
    evidence: str = ""               # bound and method, counterexample sizes, or trial count
    hint: str = ""                   # how to state the precondition in the rule, where we know how
    seconds: float = 0.0

    @property
    def holds(self) -> bool:
        return self.status in ("certified", "no counterexample")

    def line(self) -> str:
        match self.status:
            case "certified":
                text = f"certified under precondition {self.precondition} ({self.evidence})"
            case "no counterexample":
                text = (f"holds? {self.precondition}: no counterexample found in {self.evidence} "
                        f"(numeric search only, not a proof)")
            case "refuted":
                text = f"does not help: {self.precondition} ({self.evidence})"
            case "unknown":
                text = f"undecided: {self.precondition} ({self.evidence})"
            case _:
                text = f"not tried: {self.precondition} ({self.evidence or 'time budget used up'})"
        return text


@dataclass
class Explanation:
    result: Result
    free_ranks: list[str] = field(default_factory=list)          # the ranks that range over the bound
    failing: list[dict[str, int]] = field(default_factory=list)   # every failing assignment that was searched
    smallest: list[dict[str, int]] = field(default_factory=list)  # the minimal ones among them
    holding: list[dict[str, int]] = field(default_factory=list)   # certified at exactly these sizes
    searched: int = 0
    candidates: list[Candidate] = field(default_factory=list)
    repairs: RepairSearch | None = None                           # edits of the rule, each certified
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {
            "result": self.result.to_json(),
            "free_ranks": self.free_ranks,
            "failing_sizes": self.failing,
            "smallest_failing_sizes": self.smallest,
            "certified_at_sizes": self.holding,
            "assignments_searched": self.searched,
            "preconditions": [dataclasses.asdict(c) | {"holds": c.holds} for c in self.candidates],
            "repairs": [r.to_json() for r in self.repairs.repairs] if self.repairs else [],
            "seconds": round(self.seconds, 3),
        }

    def format(self) -> str:
        r = self.result
        lines = [headline(r)]
        if r.verdict is Verdict.CERTIFIED:
            lines.append("  nothing to explain: the claim is certified")
            return "\n".join(lines)
        if r.verdict is not Verdict.REFUTED:
            lines.append("  nothing to explain: only a refuted claim is explained (try a larger --timeout)")
            return "\n".join(lines)
        if not self.free_ranks:
            lines.append("  fails at the smallest sizes already (no rank of the rule is reduced or tiled: "
                         "size 1 decides every size)")
        else:
            lines.append(f"  smallest failing sizes: {'; '.join(_sizes(s, self.free_ranks) for s in self.smallest)}"
                         f"  (searched {self.searched} size assignments one by one; counterexamples replayed)")
            if self.holding:
                shown = "; ".join(_sizes(s, self.free_ranks) for s in self.holding[:8])
                more = f" and {len(self.holding) - 8} more" if len(self.holding) > 8 else ""
                lines.append(f"  certified at exactly these sizes: {shown}{more}")
        if r.counterexample is not None:
            cx = r.counterexample
            values = ", ".join(f"{n}[{','.join(t.ranks)}] = {_flat(t.values)}" for n, t in cx.inputs.items())
            lines.append(f"  first counterexample: {values}")
        lines.append("  candidate preconditions:")
        for c in self.candidates:
            lines.append(f"    {c.line()}")
            if c.hint and c.holds:
                lines.append(f"      hint: {c.hint}")
        good = self.weakest()
        if good:
            lines.append(f"  => certified under precondition: {' | '.join(c.precondition for c in good)}"
                         "  (each one alone suffices)")
        elif any(c.holds for c in self.candidates):
            lines.append("  => no precondition was certified; the numeric search found none against the "
                         "candidates marked 'holds?'")
        else:
            lines.append("  => none of the candidate preconditions makes the rule hold")
        lines.extend(self.format_repairs())
        return "\n".join(lines)

    def format_repairs(self) -> list[str]:
        search = self.repairs
        if search is None:
            return []
        lines = [f"  repairs ({search.tried} edits of the rule tried: {search.screened_out} refuted by the numeric "
                 f"search, {search.unreadable} ill-formed or ill-ranked, {search.checked} checked; each one shown "
                 "is CERTIFIED by the checker):"]
        for r in search.repairs[:MAX_SHOWN]:
            lines.append(f"    {r.change}: {r.verdict} ({r.bound}; {r.method})")
            lines.extend(f"      {d}" for d in r.diff.rstrip("\n").splitlines()[2:])
        if len(search.repairs) > MAX_SHOWN:
            lines.append(f"    ... and {len(search.repairs) - MAX_SHOWN} more (--json lists every one)")
        if not search.repairs:
            lines.append(f"    none certified{': ' + search.note if search.note else ''}")
        return lines


    def weakest(self) -> list[Candidate]:
        """The certified preconditions minus the redundant ones: `all inputs > 0` when a single input's
        precondition is certified, `x > 0` when `x >= 0` is."""
        good = [c for c in self.candidates if c.status == "certified"]
        names = {c.precondition for c in good}
        single = any(c.kind in ("positive", "nonnegative") and not c.precondition.startswith("all ") for c in good)
        return [c for c in good
                if not (c.precondition.startswith("all ") and single)
                and not (c.kind == "positive" and c.precondition.replace(" > 0", " >= 0") in names)]


def _sizes(sizes: dict[str, int], ranks) -> str:
    return ", ".join(f"{r.upper()}={sizes[r]}" for r in ranks if r in sizes) or "size 1"


def _flat(values) -> str:
    arr = np.array(values, dtype=object).ravel()
    shown = " ".join(format_value(v) for v in arr[:12])
    return f"[{shown}{' ...' if arr.size > 12 else ''}]" if np.ndim(values) else format_value(values)


# -- modified claims ------------------------------------------------------------------------------------------

def _substitute(expr: ir.Expr, mapping: dict[str, ir.Expr]) -> ir.Expr:
    """`expr` with every input named in `mapping` replaced."""
    return ir.map_post(lambda e: mapping.get(e.name, e) if isinstance(e, ir.Input) else e, expr)


def _side(side: Side, mapping) -> Side:
    bindings = {k: ir.Binding(b.name, _substitute(b.expr, mapping), b.line) for k, b in side.bindings.items()}
    return Side(side.label, _substitute(side.expr, mapping), bindings, side.file)


def substituted(claim: Claim, mapping: dict[str, ir.Expr], label: str, bound: Bound) -> Claim:
    lhs, rhs = _side(claim.lhs, mapping), _side(claim.rhs, mapping)
    return dataclasses.replace(claim, name=f"{claim.name} [{label}]", lhs=lhs, rhs=rhs, inputs=inputs_of([lhs, rhs]),
                               bound=bound_spec(bound))


def nonnegative(name: str, ranks) -> ir.Expr:
    t = ir.Input(f"{name}__t", tuple(ranks))
    return ir.Map("mul", tuple(ranks), (t, t))


def positive(name: str, ranks) -> ir.Expr:
    return ir.Map("exp", tuple(ranks), (ir.Input(f"{name}__t", tuple(ranks)),))


def constant_along(name: str, ranks, rank: str) -> ir.Expr:
    narrow = ir.Input(name, tuple(r for r in ranks if r != rank))
    return ir.Map("max", tuple(ranks), (narrow, narrow))


def bound_spec(bound: Bound) -> str | None:
    return ",".join(f"{k}={lo}..{hi}" for k, (lo, hi) in bound.ranges) or None


def pinned(bound: Bound, sizes: dict[str, int]) -> Bound:
    return Bound(tuple((r.upper(), (v, v)) for r, v in sorted(sizes.items()))).over(bound)


def free_ranks(claim: Claim) -> list[str]:
    """Ranks that range over the bound: reduced/tiled/iterated ones that are not products of split parts."""
    derived = {rank for rank, _, _ in claim.splits()}
    structural = claim.structural_ranks()
    return [r for r in claim.ranks() if r in structural and r not in derived]


# -- the explanation ------------------------------------------------------------------------------------------

def explain_claim(claim: Claim, options: Options, result: Result | None = None, budget: float = 60.0) -> Explanation:
    start = time.monotonic()
    opts = dataclasses.replace(options, sympy=False, cache_mode=CacheMode.OFF, bound=Bound(),
                               jobs=max(options.jobs, min(8, os.cpu_count() or 1)))
    bound = effective_bound(claim, options.bound)
    if result is None:
        (result,) = check_claims([dataclasses.replace(claim, bound=bound_spec(bound))], opts)
    out = Explanation(result, free_ranks(claim))
    if result.verdict is not Verdict.REFUTED:
        out.seconds = time.monotonic() - start
        return out

    # 1. where it fails: every assignment on its own, smallest first
    assignments = list(plan(claim, bound).sizes())[:MAX_ASSIGNMENTS]
    out.searched = len(assignments)
    passing = []
    for searched, sizes in enumerate(assignments):
        if time.monotonic() - start > budget / 2:
            out.searched = searched
            break
        if refute.search(claim, [sizes], seed=options.seed, prove_difference=rigorous_difference) is not None:
            out.failing.append(_free(sizes, out.free_ranks))
        else:
            passing.append(sizes)
    out.smallest = _minimal(out.failing, out.free_ranks)
    if passing and out.free_ranks:
        proofs = [dataclasses.replace(claim, bound=bound_spec(pinned(bound, _free(s, out.free_ranks))))
                  for s in passing[:PROVE_ASSIGNMENTS]]
        for sizes, result in zip(passing, check_claims(proofs, opts)):
            if result.verdict is Verdict.CERTIFIED:
                out.holding.append(_free(sizes, out.free_ranks))

    # 2. candidate preconditions, cheapest first
    candidates: list[tuple[Candidate, Claim]] = []
    for r in out.free_ranks:
        c = Candidate(f"{r.upper()}=1", "size", hint=f"at {r.upper()}=1 rank {r} has one element: a size "
                      "restriction the rule language cannot state, so rewrite only where it is known to hold")
        candidates.append((c, dataclasses.replace(claim, name=f"{claim.name} [{r.upper()}=1]",
                                                  bound=bound_spec(pinned(bound, {r: 1})))))
    # a mask is 0 or -inf: "constant", "> 0", ">= 0" mean nothing for it; its candidate is an assumption
    inputs = {n: rk for n, rk in claim.input_ranks().items() if n not in claim.masks}
    structural = claim.structural_ranks()
    assumed = [f"{m} unmasked along {a}" for m, a in claim.assumptions]
    for name in claim.masks:
        for r in claim.input_ranks()[name]:
            label = f"{name} unmasked along {r}"
            if label in assumed:
                continue
            hint = (f"state it as `; assume: {label}` above the rule" if claim.kind is ClaimKind.RULE else
                    f'state it as assume = ["{label}"] in the chain file')
            candidates.append((Candidate(label, "assumption", hint=hint),
                               dataclasses.replace(with_assumptions(claim, assumed + [label]),
                                                   name=f"{claim.name} [{label}]", bound=bound_spec(bound))))
    for name, ranks in inputs.items():
        for r in ranks:
            if r in structural:
                rest = "".join(x for x in ranks if x != r)
                hint = (f"state it in the rule: use {name} with ranks {{{', '.join(x for x in ranks if x != r)}}} "
                        f"only (e.g. (M_max_{rest} {name} {name}) in place of {name}), so it cannot vary along {r}"
                        if rest else f"state it in the rule: use {name} as a scalar, so it cannot vary along {r}")
                if claim.kind is not ClaimKind.RULE:
                    hint = f"the program's input {name} would have to be given without rank {r}"
                candidates.append((Candidate(f"{name} constant along {r}", "constant", hint=hint),
                                   substituted(claim, {name: constant_along(name, ranks, r)},
                                               f"{name} constant along {r}", bound)))
    domains: tuple[tuple[CandidateKind, Callable, str], ...] = (("positive", positive, "> 0"),
                                                              ("nonnegative", nonnegative, ">= 0"))
    for_rule = claim.kind is ClaimKind.RULE     # a rule can state a domain (`; assume:`); a program cannot
    for kind, make, sign in domains:
        everything = {n: make(n, rk) for n, rk in inputs.items()}
        for n in inputs:
            label = f"{n} {sign}"
            candidates.append((Candidate(label, kind, hint=_domain_hint(kind, n) if for_rule else ""),
                               substituted(claim, {n: everything[n]}, label, bound)))
        if len(inputs) > 1:
            label = f"all inputs {sign}"
            candidates.append((Candidate(label, kind, hint=_domain_hint(kind) if for_rule else ""),
                               substituted(claim, everything, label, bound)))

    batch = max(1, opts.jobs)
    for i in range(0, len(candidates), batch):
        if time.monotonic() - start > budget:
            for c, _ in candidates[i:]:
                c.evidence = f"time budget of {budget:g} s used up; raise it with --budget"
            break
        chunk = candidates[i:i + batch]
        for (c, modified), result in zip(chunk, check_claims([m for _, m in chunk], opts)):
            _judge(c, modified, result, options.seed, out.free_ranks)
    out.candidates = [c for c, _ in candidates]
    if claim.kind is ClaimKind.RULE:
        out.repairs = repair(claim, dataclasses.replace(opts, bound=options.bound), budget)
    out.seconds = time.monotonic() - start
    return out


def _domain_hint(kind: str, name: str | None = None) -> str:
    who = name or "every input"
    if kind == "positive":
        return (f"state it in the rule by writing {who} as a positive expression, e.g. (M_exp_.. t) "
                "or a sum of exponentials")
    return f"state it in the rule by writing {who} as a nonnegative expression, e.g. (M_mul_.. t t)"


def _judge(c: Candidate, modified: Claim, r: Result, seed: int, ranks) -> None:
    c.seconds = r.seconds
    if r.verdict is Verdict.CERTIFIED:
        c.status, c.evidence = "certified", f"bounded proof: {r.bound}; {r.method}"
    elif r.verdict is Verdict.REFUTED and r.counterexample is not None:
        sizes = _sizes(r.counterexample.sizes, ranks)
        c.status, c.evidence = "refuted", f"counterexample at {sizes}, replayed"
    else:
        # the proof engines could not decide: say only what a numeric search on the modified claim shows
        assignments = list(plan(modified, Bound.parse(modified.bound)).sizes())
        for s in range(SEARCH_SEEDS):
            cx = refute.search(modified, assignments, seed=seed + 1 + s, prove_difference=rigorous_difference)
            if cx is not None:
                sizes = _sizes(cx.sizes, ranks)
                c.status, c.evidence = "refuted", f"counterexample at {sizes}, replayed"
                return
        trials = refute.TRIALS * SEARCH_SEEDS * len(assignments)
        at = r.bound if r.bound != NO_BOUND else "the bound"
        c.status, c.evidence = "no counterexample", f"{trials} trials at {at}"
        if r.detail:
            c.evidence += f"; proof engines: {r.detail.splitlines()[0]}"


def _free(sizes: dict[str, int], ranks) -> dict[str, int]:
    return {r: sizes[r] for r in ranks if r in sizes}


def _minimal(failing: list[dict[str, int]], ranks) -> list[dict[str, int]]:
    def below(a, b):   # a <= b in every rank, and a != b
        return a != b and all(a[r] <= b[r] for r in ranks)

    return [f for f in failing if not any(below(g, f) for g in failing)]


def explain(target: str, options: Options, budget: float = 60.0) -> list[Explanation]:
    claims = select(target, options)
    check_bound_ranks(claims, options.bound)     # --bound naming a rank these claims lack is bad input
    first = dataclasses.replace(options, sympy=False, bound=Bound())   # the verdicts `verify check` gives
    results = check_claims([dataclasses.replace(c, bound=bound_spec(effective_bound(c, options.bound)))
                            for c in claims], first)
    return [explain_claim(claim, options, result, budget) for claim, result in zip(claims, results)]


def dumps(explanations: list[Explanation]) -> str:
    return json.dumps([e.to_json() for e in explanations], indent=2)
