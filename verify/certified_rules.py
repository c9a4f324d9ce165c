"""Rules certified by the driver now, as egglog rewrites (decide layer: it runs the driver and reads its
verdicts; the egglog engine only receives the `CertifiedRule`s).

A rule is a `rewrite`/`birewrite` of a rule file, or a chain step between two programs
(`rules/**/*.chain.toml`): the programs' inputs are the pattern variables. That second form exists because a
rule cannot contain `let`s, and the checker only accepts other iterative values inside a scan body by name
(see rules/online/). Each certified rule carries its certificate: sha256 of the rule's source text and the
checker's encoding version, and the bound it was checked at.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from pathlib import Path

from . import ir
from .claims import Claim, ClaimKind, Side, rule_claim
from .driver import ENCODING_VERSION, check_claim
from .egglog import CertifiedRule, pattern_variables
from .errors import Location, UsageError, VerifyError
from .options import Options
from .reader import SourceFile, form_end, read_file
from .targets import collect
from .verdict import Result, Verdict


@dataclass
class RuleStatus:
    """What the checker said about one rule or chain step, and whether it is exported."""

    name: str
    file: str
    line: int | None
    verdict: Verdict
    detail: str
    rule: CertifiedRule | None = None
    reason: str = ""                           # why a certified rule is not exported

    @property
    def exported(self) -> bool:
        return self.rule is not None


def rule_source(text: str, line: int | None) -> str:
    """The s-expression that starts on `line` (1-based) of `text`: the rule's source."""
    if line is None:
        return ""
    lines = text.splitlines(keepends=True)
    offset = sum(len(x) for x in lines[: line - 1])
    start = text.find("(", offset)
    if start < 0:
        return ""
    end = form_end(text, start)
    return text[start:end] if end is not None else text[start:]


def content_hash(source: str, name: str | None = None) -> str:
    """sha256 of a rule's source text and the encoding version (and the instance name of a rank template)."""
    suffix = f"\n{name}" if name and "[" in name else ""
    return hashlib.sha256(f"{source}\n{ENCODING_VERSION}{suffix}".encode()).hexdigest()


def _as_pattern(side: Side, variables: set[str]) -> ir.Expr:
    """A program side as one rewrite pattern: every `let` it reaches inlined, the inputs named in `variables`
    turned into pattern variables."""
    return ir.map_post(lambda e: ir.Var(e.name, e.line) if isinstance(e, ir.Input) and e.name in variables else e,
                       ir.inline(side.expr, side.bindings))


def as_rewrite(claim: Claim, result: Result, status: RuleStatus, sources: dict[str, SourceFile],
               explicit: bool = False) -> None:
    """Attach the CertifiedRule of a certified claim to its status (a rule file's rewrite, or a chain step's
    two programs with their inputs as pattern variables), or say in `status.reason` why it cannot be one.

    A rule certified under the implicit-tiling reading has ill-ranked egglog text; with `explicit` it becomes the
    rewrite it was checked as: the claim's two sides, splits and unsplits inserted, facts substituted. That is
    the very claim the driver certified (not a re-derivation), and the exported text is read back and
    certified again by whoever uses it (`verify optimize`, `verify check`)."""
    if getattr(claim, "assumptions", ()) or getattr(claim, "masks", ()):
        status.reason = "holds only under its stated assumptions / for mask inputs; not a plain rewrite"
        return
    if getattr(claim, "reading", "") and not explicit:
        status.reason = (f"certified as {claim.reading}; its egglog text is ill-ranked (export --explicit writes "
                         "the explicit-split rule it was checked as)")
        return
    try:
        if getattr(claim, "reading", ""):
            if claim.file not in sources:
                sources[claim.file] = read_file(claim.file)
            variables = {name for name, _ in claim.inputs}
            lhs, rhs = _as_pattern(claim.lhs, variables), _as_pattern(claim.rhs, variables)
            bidirectional = any(r.bidirectional for r in sources[claim.file].rules
                                if r.name == claim.name and r.line == claim.line)
            description = f"{claim.reading}; exported as the explicit rule it was checked as. {claim.description}"
            text = rule_source(sources[claim.file].text, claim.line)
        elif claim.kind is ClaimKind.RULE:
            if claim.file not in sources:
                sources[claim.file] = read_file(claim.file)
            source = sources[claim.file]
            rule = next((r for r in source.rules if r.name == claim.name and r.line == claim.line), None)
            if rule is None:
                status.reason = "the rule was not found again in its file"
                return
            variables = pattern_variables(rule.lhs) | pattern_variables(rule.rhs)
            lhs, rhs, bidirectional, description = rule.lhs, rule.rhs, rule.bidirectional, rule.description
            text = rule_source(source.text, claim.line)
        else:
            variables = {name for name, _ in claim.inputs}
            lhs, rhs = _as_pattern(claim.lhs, variables), _as_pattern(claim.rhs, variables)
            bidirectional, description = False, claim.description
            text = "".join(Path(f).read_text(encoding="utf-8") for f in (claim.lhs.file, claim.rhs.file))
    except (OSError, VerifyError) as exc:
        status.reason = f"could not read its source again: {exc}"
        return
    if not pattern_variables(rhs) <= pattern_variables(lhs):
        status.reason = "its right side has variables its left side does not bind"
        return
    if isinstance(lhs, ir.Var):
        status.reason = "its left side is a bare variable; egglog cannot match it"
        return
    status.rule = CertifiedRule(
        claim.name, claim.file, claim.line, claim.kind, lhs, rhs,
        {n: tuple(r) for n, r in claim.inputs if n in variables}, frozenset(claim.ranks()),
        content_hash(text, claim.name), ENCODING_VERSION, str(result.bound), result.method, bidirectional, description,
        tuple(getattr(result, "warnings", ()) or ()))


def narrowed_rules(claim: Claim) -> list[ir.Rule]:
    """Explicit forms of an implicitly read rule for narrower pattern variables: the explicit form splits each
    variable at the largest ranks the reading gave it (`sd[m,p]` in `(T_split_m_m1m0 sd)`), so in egglog it cannot
    match a program whose operand lacks the split rank (a denominator `SD[p]`, broadcast along m). Each variant
    drops the split around one to three such variables; it is a rule of its own, ranked strictly and certified by
    the driver like any other before it is exported (a variant that is ill-ranked is left out)."""
    variables = {name for name, _ in claim.inputs}
    lhs, rhs = _as_pattern(claim.lhs, variables), _as_pattern(claim.rhs, variables)
    split = sorted({n.arg.name for side in (lhs, rhs) for n in ir.walk(side)
                    if isinstance(n, ir.Split) and isinstance(n.arg, ir.Var)})
    out = []
    for k in range(1, min(len(split), 3) + 1):
        for subset in itertools.combinations(split, k):
            def drop(e: ir.Expr, subset=subset) -> ir.Expr:
                return e.arg if isinstance(e, ir.Split) and isinstance(e.arg, ir.Var) and e.arg.name in subset else e

            rank = next(n.rank for n in ir.walk(lhs) if isinstance(n, ir.Split)) if any(
                isinstance(n, ir.Split) for n in ir.walk(lhs)) else "m"
            out.append(ir.Rule(f"{claim.name} [{', '.join(subset)} without {rank}]", ir.map_post(drop, lhs),
                               ir.map_post(drop, rhs), claim.file, claim.line, claim.description))
    return out


def certified_variant(rule: ir.Rule, result: Result, claim: Claim) -> CertifiedRule:
    variables = pattern_variables(rule.lhs) | pattern_variables(rule.rhs)
    return CertifiedRule(rule.name, rule.file, rule.line, ClaimKind.RULE, rule.lhs, rule.rhs,
                         {n: tuple(r) for n, r in claim.inputs if n in variables}, frozenset(claim.ranks()),
                         content_hash(f"{rule.name}\n{rule.lhs}\n{rule.rhs}"), ENCODING_VERSION, str(result.bound),
                         result.method, description=rule.description)


def view_rules(rules: list[CertifiedRule], options: Options | None = None) -> list[RuleStatus]:
    """The identities the implicit-tiling reading rests on, for each split pair the explicit `rules` use:
    `unsplit(split x) = x` and `split(unsplit x) = x` (a tensor and its tile view are one tensor). In egglog
    they connect the views an explicitly exported rule inserts; each is certified by the driver like any rule."""
    pairs = sorted({(n.rank, n.outer, n.inner) for r in rules for side in (r.lhs, r.rhs) for n in ir.walk(side)
                    if isinstance(n, (ir.Split, ir.Unsplit))})
    out = []
    for rank, outer, inner in pairs:
        x = ir.Var("x")
        for name, lhs in ((f"view: unsplit-split ({rank} = {outer}*{inner.upper()} + {inner})",
                           ir.Unsplit(outer, inner, rank, ir.Split(rank, outer, inner, None, x))),
                          (f"view: split-unsplit ({rank} = {outer}*{inner.upper()} + {inner})",
                           ir.Split(rank, outer, inner, None, ir.Unsplit(outer, inner, rank, x)))):
            rule = ir.Rule(name, lhs, x, "<implicit tiling>", None, "a tensor and its tile view are one tensor")
            try:
                claim = rule_claim(rule, strict=True)
            except VerifyError as exc:
                out.append(RuleStatus(name, rule.file, None, Verdict.ERROR, exc.cause))
                continue
            result = check_claim(claim, options or Options())
            status = RuleStatus(name, rule.file, None, result.verdict, result.detail or result.method)
            if result.verdict is Verdict.CERTIFIED and result.bound.is_all_sizes:
                status.rule = CertifiedRule(name, rule.file, None, ClaimKind.RULE, lhs, x,
                                            {"x": tuple(claim.inputs[0][1])},
                                            frozenset(claim.ranks()), content_hash(f"{name}\n{lhs}"),
                                            ENCODING_VERSION, str(result.bound), result.method,
                                            description=rule.description)
            else:
                status.reason = f"not certified for all sizes ({result.verdict.value}, {result.bound})"
            out.append(status)
    return out


def certify_named(rules_dir: str | Path, names, options: Options | None = None) -> dict[str, tuple[RuleStatus, Result]]:
    """Check the rules named `names` (as `verify check RULES_DIR` names them) with the driver now, each alone;
    name -> (its RuleStatus, with a CertifiedRule when certified and usable as a rewrite; the driver's Result).
    Names that no rule under `rules_dir` has are left out. Parses in this process (see `egglog.connect`)."""
    wanted = set(names)
    options = options or Options()
    claims, errors, _notes = collect([str(rules_dir)], options)
    if errors:
        raise errors[0]
    out: dict[str, tuple[RuleStatus, Result]] = {}
    sources: dict[str, SourceFile] = {}
    first: dict[str, Claim] = {}
    for claim in claims:
        if claim.name not in wanted:
            continue
        if claim.name in first:        # which one a step means would depend on file order: refuse
            other = first[claim.name]
            raise UsageError(f"rule name '{claim.name}' is ambiguous under {rules_dir}: it names the rule at "
                             f"{Location(other.file, other.line)} and the one at {claim.location}",
                             Location(claim.file, claim.line), "give the rules distinct names")
        first[claim.name] = claim
        result = check_claim(claim, options)
        status = RuleStatus(claim.name, claim.file, claim.line, result.verdict, result.detail or result.method)
        out[claim.name] = (status, result)
        if status.verdict is Verdict.CERTIFIED:
            as_rewrite(claim, result, status, sources)
    return out

