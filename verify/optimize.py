"""The egglog applications of the checker's verdicts: `verify export` (the certified rules as an egglog
program), `verify optimize` (saturate a program with them, extract by passes or memory, and validate the
result against the input with the driver) and `verify run`'s check of a file's own rules and extractions."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import ir
from .certified_rules import RuleStatus, as_rewrite, certified_variant, narrowed_rules, view_rules
from .claims import equiv_claim, equiv_claims, rule_claim
from .cost import Analysis, analyze
from .egglog import (
    ANALYSIS,
    COSTS,
    RULESET,
    Cost,
    Extractor,
    PyEGraph,
    RunOutput,
    Saturation,
    Schedule,
    analysis_rules,
    operators_in,
    prelude,
    rewrite_text,
    rules_operators,
    saturate,
)
from .errors import Location, UsageError, VerifyError
from .gate import check_claims, declared_sizes
from .options import Options
from .printer import program_text
from .reader import SourceFile, form_end, read_file, read_text
from .shapes import program_ranks
from .targets import claims_of, collect
from .verdict import Result, Verdict, exit_status

# -- export ------------------------------------------------------------------------------------------------------------

def certify_rules(rules_dir: str | Path | list = "rules", options: Options | None = None, progress=None,
                  allow_bounded: bool = False, explicit: bool = False) -> tuple[list[RuleStatus], list[VerifyError]]:
    """Check every rule and chain step under `rules_dir` with the driver now; the certified ones become
    CertifiedRules. Returns (statuses, user errors).

    Only rules certified **for all sizes** become rewrites unless `allow_bounded`: egglog applies a rewrite to
    a term of any size, so a rule certified at M <= 4 (say) would otherwise be used at the program's M = 1024,
    where it was never checked (a rule true only for small sizes then makes `optimize` emit a wrong program
    whose translation validation, itself bounded, cannot see it). With `allow_bounded` such rules are exported,
    each marked with its bound, and whatever they produce holds only within it."""
    options = options or Options()
    paths = [str(p) for p in rules_dir] if isinstance(rules_dir, list) else [str(rules_dir)]
    claims, errors, _notes = collect(paths, options)
    results = check_claims(claims, options, progress)
    sources: dict[str, SourceFile] = {}
    statuses: list[RuleStatus] = []
    for claim, result in zip(claims, results):
        status = RuleStatus(claim.name, claim.file, claim.line, result.verdict, result.detail or result.method)
        statuses.append(status)
        if result.verdict is Verdict.CERTIFIED:
            if not allow_bounded and not result.bound.is_all_sizes:
                status.reason = (f"certified only at {result.bound}, not for all sizes; egglog would apply it at "
                                 "every size (--allow-bounded uses it anyway)")
                continue
            as_rewrite(claim, result, status, sources, explicit)
    implicit = [(s, c) for s, c in zip(statuses, claims) if s.rule is not None and bool(getattr(c, "reading", ""))]
    if implicit:
        statuses.extend(narrowed(implicit, options, allow_bounded))
        statuses.extend(view_rules([s.rule for s, _ in implicit if s.rule is not None], options))
    return statuses, errors


def narrowed(implicit: list, options: Options | None, allow_bounded: bool) -> list[RuleStatus]:
    """The certified narrower-variable variants of the explicitly exported rules (certified_rules.narrowed_rules);
    an ill-ranked variant is left out, one that the driver does not certify is listed with its verdict."""
    variants = []
    for _status, claim in implicit:
        for rule in narrowed_rules(claim):
            try:
                variants.append((rule, rule_claim(rule, strict=True)))
            except VerifyError:
                continue
    results = check_claims([c for _, c in variants], options or Options()) if variants else []
    out = []
    for (rule, claim), result in zip(variants, results):
        status = RuleStatus(rule.name, rule.file, rule.line, result.verdict, result.detail or result.method)
        if result.verdict is Verdict.CERTIFIED and (allow_bounded or result.bound.is_all_sizes):
            status.rule = certified_variant(rule, result, claim)
        elif result.verdict is Verdict.CERTIFIED:
            status.reason = f"certified only at {result.bound}, not for all sizes"
        out.append(status)
    return out


def export_text(statuses: list[RuleStatus], rules_dir: str, only: str | None = None) -> str:
    """The egglog program of the certified rules: prelude, ranks analysis, one guarded rewrite per rule."""
    rules = [s.rule for s in statuses if s.rule is not None and (only is None or s.name == only)]
    lines = [
        f"; Certified rules exported by `verify export` from {rules_dir}: {len(rules)} rule(s), each CERTIFIED by",
        "; the checker just now. The comment above a rule names its certificate: sha256 of the rule's source text",
        "; and the checker's encoding version, and the bound it was certified at.",
        "; Pattern variables are ?x. A :when clause keeps a rule to the ranks it was certified for and to finite",
        "; values (the checker assumes finite reals), through the analyses below; seed a program's inputs, e.g.",
        '; (set (ranks (CreateTensor "Q")) (set-of "e" "p")) (finite (CreateTensor "Q")).',
        f"; Run: (run-schedule (repeat N (seq (saturate (run {ANALYSIS})) (run {RULESET})))).",
        "",
        prelude(rules_operators(rules)),
        analysis_rules(rules_operators(rules)),
    ]
    for rule in rules:
        where = Location(rule.file, rule.line)
        lines.append(f"; {rule.name} ({where}): {rule.certificate()}")
        lines.extend(f"; warning: {w}" for w in rule.warnings)
        lines.extend(rewrite_text(rule))
        lines.append("")
    skipped = [s for s in statuses if s.rule is None and (only is None or s.name == only)]
    if skipped:
        lines.append("; not exported:")
        for s in skipped:
            why = s.reason or s.verdict
            lines.append(f";   {s.name} ({s.file}:{s.line or ''}): {why}")
    return "\n".join(lines).rstrip() + "\n"


# -- optimize ----------------------------------------------------------------------------------------------------------

@dataclass
class Optimized:
    input: Analysis
    output: Analysis
    program: ir.Program
    verified: bool                      # unchanged, or every output's translation validation CERTIFIED
    verdicts: list[Result]              # the translation validation, one per output (none when unchanged)
    saturation: Saturation
    rules: list[RuleStatus]
    candidates: int
    evaluations: int
    cost: Cost
    forbid: tuple[str, ...]
    extract_seconds: float = 0.0
    unchanged: bool = False             # the extracted program is the input's own computation: nothing to validate


def optimize(program: ir.Program, rules: list[RuleStatus], cost: Cost = "passes", forbid=(),
             schedule: Schedule | None = None, reference=None, fiber_rank: str = "m", validate=True,
             options: Options | None = None) -> Optimized:
    if cost not in COSTS:
        raise UsageError(f"unknown cost '{cost}'", hint=f"costs: {', '.join(COSTS)}")
    if not program.outputs:
        raise UsageError(f"{program.file} has no (extract NAME): nothing to optimize")
    program_ranks(program)
    certified = [s.rule for s in rules if s.rule is not None]
    sat, names = saturate(program, certified, schedule or Schedule())
    start = time.monotonic()
    graph = PyEGraph(sat.egraph)
    roots = {name: graph.globals[names[name]] for name in program.output_names()}
    class_names: dict[int, str] = {}
    for name in program.bindings:
        cls = graph.globals.get(names[name])
        if cls is not None and cls not in class_names:
            class_names[cls] = name
    extractor = Extractor(graph, roots, cost, forbid, class_names, reference, fiber_rank)
    best, candidates = extractor.run()
    out_program = fit_tile_counts(best.program, declared_sizes(program))
    out_program.file = f"{Path(program.file).stem}.optimized.egg"
    extract_seconds = time.monotonic() - start
    # Nothing rewritten (the same DAG, tile counts included) is equal by identity: not validated, and said so.
    # Anything else is validated through the gate; only CERTIFIED validations verify it (UNKNOWN stays UNKNOWN).
    unchanged = same_computation(program, out_program)
    verdicts = validate_translation(program, out_program, options) if validate and not unchanged else []
    verified = unchanged or (bool(verdicts) and all(r.verdict is Verdict.CERTIFIED for r in verdicts))
    return Optimized(analyze(program, fiber_rank, reference), best.analysis, out_program, verified, verdicts, sat,
                     rules, len(candidates), extractor.evaluations, cost, tuple(forbid), extract_seconds, unchanged)


def fit_tile_counts(program: ir.Program, sizes: dict[str, int]) -> ir.Program:
    """A literal tile count that does not divide its rank's declared size (M = 1022 in 4 tiles, the rules' default
    count) becomes the largest count below it that does: the checker sweeps every tile count, so no certificate
    depends on the number, and the program written must read back (a count that does not divide is refused)."""
    def fit(node: ir.Expr) -> ir.Expr:
        if isinstance(node, ir.Split) and type(node.tiles) is int and node.tiles > 0:
            size = sizes.get(node.rank)
            if size and size % node.tiles:
                return replace(node, tiles=max(d for d in range(1, node.tiles + 1) if size % d == 0))
        return node

    bindings = {name: replace(b, expr=ir.map_post(fit, b.expr)) for name, b in program.bindings.items()}
    return replace(program, bindings=bindings)


def same_computation(a: ir.Program, b: ir.Program) -> bool:
    """The same outputs computed by the same DAG, tile counts included (binding names aside): a retiled
    program is a different kernel, equal only by proof."""
    def outputs(p: ir.Program) -> tuple:
        return tuple(ir.canonical(ir.Ref(name), p.bindings) for name in p.output_names())

    return outputs(a) == outputs(b)


def validate_translation(before: ir.Program, after: ir.Program, options: Options | None = None) -> list[Result]:
    """Translation validation: the extracted program equals the input, output by output (paired by position;
    a different number of outputs is an error), through the gate: the preflight, the bound-rank check and the
    vacuity guard of every other run."""
    claims = equiv_claims(before, after, name=f"{Path(before.file).name} == optimized")
    return check_claims(claims, options or Options())


# -- the output in the input's own form ------------------------------------------------------------------------

CREATE_RE = re.compile(r'\(\s*CreateTensor\b[^()"]*"([^"]*)"[^()]*\)')


def in_source_form(program: ir.Program, source: SourceFile, header: list[str]) -> str:
    """The optimized program as egglog text the input's own tools read back: when the input declares its
    datatype, that datatype (with a line for every operator the output adds, as egglog needs it declared) and
    unfused operator names; each input written as the input wrote it (`(CreateTensor 64 1024 "Q")`, sizes kept).
    Otherwise the usual seed-notation text (fused Einsum names)."""
    if source.declared is None:
        text = program_text(program, header=header)
    else:
        text = program_text(program, fuse=False, header=header)
        used = operators_in([b.expr for b in program.bindings.values()])
        missing = sorted(n for n in used if n not in source.declared)
        datatype = _datatype_text(source.text)
        if datatype is not None:
            if missing:
                added = prelude(missing).splitlines()[1:]
                added[-1] = added[-1].removesuffix(")")
                datatype = datatype[:-1].rstrip() + "\n  ; added by verify optimize: operators the output uses\n" + \
                    "\n".join(added) + ")"
            lines = text.splitlines(keepends=True)
            at = sum(1 for line in lines if line.startswith(";"))
            text = "".join(lines[:at]) + datatype + "\n" + "".join(lines[at:])
    written = {m.group(1): m.group(0) for m in CREATE_RE.finditer(source.text)}
    return re.sub(r'\(CreateTensor "([^"]*)"\)', lambda m: written.get(m.group(1), m.group(0)), text)


def _datatype_text(text: str) -> str | None:
    m = re.search(r"\(\s*datatype\s+Tensor\b", text)
    if m is None:
        return None
    end = form_end(text, m.start())
    return text[m.start():end] if end is not None else None


# -- verify run: the file's own rules and extractions checked ----------------------------------------------------

@dataclass
class RunCheck:
    """What `verify run` adds to egglog's output for a file with rules: every rule's verdict, and whether each
    extracted term equals the file's own program output (translation validation)."""

    results: list[Result] = field(default_factory=list)   # one per rule claim
    errors: list[VerifyError] = field(default_factory=list)   # located errors (unreadable rules, ...)
    notes: list[str] = field(default_factory=list)
    validations: list[tuple[str, Result | str]] = field(default_factory=list)   # (output name, Result or reason)

    @property
    def exit_code(self) -> int:
        verdicts = ([r.verdict for r in self.results]
                    + [v.verdict for _, v in self.validations if not isinstance(v, str)])
        return exit_status(verdicts, len(self.errors), any(isinstance(v, str) for _, v in self.validations))


def check_run(path: str, outputs: list[RunOutput], options: Options | None = None) -> RunCheck | None:
    """For `verify run FILE`: None when the file has no rules (a plain program: egglog's output is all); else
    the verdict of every rule of the file and, for every `(extract NAME)` of the file's program, whether the
    term egglog extracted equals the program's NAME (checked like `verify equiv`)."""
    options = options or Options()
    source = read_file(path)
    if not source.rules and not source.rule_errors and not source.notices:
        return None
    out = RunCheck()
    out.errors.extend(source.rule_errors)
    out.notes.extend(f"{Location(path, line)}: {text}" for line, text in source.notices)
    claims = claims_of(source, options, out.errors)
    extracted = [o for o in outputs if o.kind == "extract"]
    pairs = []
    for (name, _line), output in zip(source.program.outputs, extracted):
        try:
            term = read_text(f"(let {name} {output.terms[0]})\n(extract {name})\n", "<extracted>",
                             any_sizes=source.declared is not None).program
            before = ir.Program(source.program.file, source.program.bindings, [(name, None)])
            pairs.append((name, equiv_claim(before, term, name=f"{Path(path).name}: extracted {name} == input {name}")))
        except VerifyError as exc:
            out.validations.append((name, f"not validated: the extracted term cannot be read ({exc.cause})"))
    results = check_claims(claims + [claim for _, claim in pairs], options)
    out.results = results[:len(claims)]
    out.validations = [(name, result) for (name, _), result in zip(pairs, results[len(claims):])] + out.validations
    return out

