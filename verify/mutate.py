"""Mutation testing of the checker: break every rule and program a little, and see that it notices.

For every rule of a rule file, every step of a chain file and every standalone program, each operator is
changed in one way at a time (one mutant per change):

- a binary map swaps its operation (add, sub, mul, div, max: each for each), a sub or div flips its
  operands, and a binary map is replaced by one operand ("drop a term");
- a unary map (exp, log, fin, exp2, log2, tanh) is dropped; exp <-> exp2 and log <-> log2 swap (base confusion);
- a where swaps its branches;
- a reduction swaps add <-> max, reduces another rank, or is dropped; a global max over a split rank is
  replaced by the local max within the tiles (`max_m s` -> `max_m0 split(s)`: the FlashAttention trap);
- a split or unsplit swaps its tile ranks (a layout bug);
- a constant changes (-inf -> 0, 0 -> 1 and -inf, c -> 0 and -c);
- in a program, a reference to a binding is replaced by another earlier binding of (almost) the same ranks
  (e.g. the global max GM by the local max LM).

A rule mutant is the rule with one side mutated; a chain-step mutant compares the step's `from` program with
a mutated `to` program; a standalone program's mutant is compared with the program itself. Mutants that are
ill-shaped are skipped (and counted). Every other mutant is checked; a CERTIFIED mutant is an *equivalent
mutant* (the change does not change the meaning: listed, not a miss), and the score is

    refuted / (mutants that are not equivalent)

so anything UNKNOWN or ERROR lowers it. The target is 100%.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import ir, targets
from .claims import Claim, Side, check_split_tiles, equiv_claims, inputs_of, rule_claim, with_assumptions
from .errors import Location, VerifyError
from .gate import check_claims, preflight
from .notation import map_name, operator_name, reduce_name, split_name, unsplit_name
from .options import Options
from .reader import SourceFile, expand_paths, read_file
from .shapes import expr_ranks, program_ranks
from .targets import assumptions_above
from .verdict import Result, Verdict, exit_status

BINARY = ("add", "sub", "mul", "div", "max")
BASE_TWIN = {"exp": "exp2", "exp2": "exp", "log": "log2", "log2": "log"}   # the base-2 / base-e confusion


@dataclass
class Mutant:
    target: str            # what was mutated: "file:line rule-name" or a chain step
    change: str            # what changed, e.g. "line 5: M_sub_p -> M_add_p"
    claim: Claim | None = None
    skipped: str = ""      # why it was not checked (ill-shaped)
    result: Result | None = None
    key: object = None     # structural identity, to drop duplicate mutants
    origin: tuple = ()     # (file, line) of the mutated rule: its mutants are dropped if the rule itself is an error

    @property
    def label(self) -> str:
        return f"{self.target}: {self.change}"


@dataclass
class MutationReport:
    mutants: list[Mutant] = field(default_factory=list)
    duplicates: int = 0
    errors: list[VerifyError] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    originals: list[Result] = field(default_factory=list)   # the unmutated rules and steps, checked as well
    claims: list[Claim] = field(default_factory=list)       # ... and their claims, read with the mutants

    def by_verdict(self, verdict: Verdict) -> list[Mutant]:
        return [m for m in self.mutants if m.result is not None and m.result.verdict is verdict]

    @property
    def checked(self) -> list[Mutant]:
        return [m for m in self.mutants if m.result is not None]

    @property
    def skipped(self) -> list[Mutant]:
        return [m for m in self.mutants if m.skipped]

    @property
    def score(self) -> float:
        killable = len(self.checked) - len(self.by_verdict(Verdict.CERTIFIED))
        return 1.0 if killable == 0 else len(self.by_verdict(Verdict.REFUTED)) / killable

    @property
    def exit_code(self) -> int:
        """The exit-status rule: 2 for bad input or an ERROR on an unmutated rule or step; 1 if one of them is
        REFUTED or UNKNOWN (mutating a false rule proves nothing), a mutant was not refuted, or there was no
        mutant at all (nothing was tested: a score of 100% over nothing is no pass); else 0."""
        return exit_status((r.verdict for r in self.originals), len(self.errors),
                           self.score != 1.0 or not self.mutants)

    def format(self, verbose: bool = False) -> str:
        refuted, certified = self.by_verdict(Verdict.REFUTED), self.by_verdict(Verdict.CERTIFIED)
        unknown, error = self.by_verdict(Verdict.UNKNOWN), self.by_verdict(Verdict.ERROR)
        killable = len(self.checked) - len(certified)
        lines = [f"mutation testing of {len(self.targets)} rule(s) / step(s) / program(s)"]
        lines.append(f"  {len(self.mutants)} mutants: {len(refuted)} refuted, {len(certified)} equivalent "
                     f"(certified), {len(unknown)} unknown, {len(error)} error; {len(self.skipped)} ill-shaped "
                     f"(skipped); {self.duplicates} duplicates dropped")
        lines.append(f"  score: {len(refuted)} / {killable} non-equivalent mutants refuted = {100 * self.score:.1f}%")
        if not self.mutants:
            lines.append("  no mutant was made (no rule, step or program output here offers one): nothing was tested")
        failed = [r for r in self.originals if r.verdict is not Verdict.CERTIFIED]
        if self.originals:
            lines.append(f"  the unmutated rules and steps: {len(self.originals) - len(failed)} of "
                         f"{len(self.originals)} certified")
        for r in failed:
            lines.append(f"  not certified (its mutants prove nothing): {r.location} {r.name}: "
                         f"{r.verdict.value} {r.detail}".rstrip())
        if certified:
            lines.append("equivalent mutants (certified: the change keeps the meaning):")
            lines.extend(f"  {m.label}" for m in certified)
        for title, group in (("UNKNOWN", unknown), ("ERROR", error)):
            if group:
                lines.append(f"{title} (not refuted, lowers the score):")
                lines.extend(f"  {m.label}: {m.result.detail}" for m in group if m.result is not None)
        if verbose:
            lines.append("refuted:")
            lines.extend(f"  {m.label}" for m in refuted)
            lines.append("ill-shaped (skipped):")
            lines.extend(f"  {m.label}: {m.skipped}" for m in self.skipped)
        return "\n".join(lines)

    def to_json(self) -> dict:
        def one(m: Mutant) -> dict:
            return {"target": m.target, "change": m.change,
                    "verdict": m.result.verdict.value if m.result else "SKIPPED",
                    "detail": m.result.detail if m.result else m.skipped}

        return {
            "score": self.score,
            "mutants": len(self.mutants),
            "refuted": len(self.by_verdict(Verdict.REFUTED)),
            "equivalent": len(self.by_verdict(Verdict.CERTIFIED)),
            "unknown": len(self.by_verdict(Verdict.UNKNOWN)),
            "error": len(self.by_verdict(Verdict.ERROR)),
            "ill_shaped": len(self.skipped),
            "duplicates": self.duplicates,
            "details": [one(m) for m in self.mutants],
            "originals": [r.to_json() for r in self.originals],
            "errors": [e.format() for e in self.errors],
        }


# -- mutating expressions -------------------------------------------------------------------------------------

@dataclass
class _Context:
    ranks: tuple[str, ...]                                  # every rank of the rule / program
    splits: tuple[tuple[str, str, str, int | str | None], ...]   # (rank, outer, inner, tiles) of every split
    env: dict[str, tuple[str, ...]] = field(default_factory=dict)   # ranks of earlier bindings (programs)
    earlier: tuple[str, ...] = ()                                   # names a reference may be swapped to


def _where(node) -> str:
    line = getattr(node, "line", None)
    return f"line {line}: " if line is not None else ""


def _name(node: ir.Expr) -> str:
    return operator_name(node) or type(node).__name__


def _const(v: float) -> str:
    return "-inf" if v == -math.inf else f"{v:g}"


def _operand_ranks(node, ctx: _Context) -> tuple[str, ...]:
    try:
        return expr_ranks(node, env=ctx.env)
    except (VerifyError, KeyError, TypeError):
        return ctx.ranks


def _local(node, ctx: _Context):
    """(change, replacement) for every one-step change of this node itself."""
    at = _where(node)
    match node:
        case ir.Map(op=op, space=space, args=args) if len(args) == 2:
            for other in BINARY:
                if other != op:
                    yield f"{at}{_name(node)} -> {map_name(other, space)}", replace(node, op=other)
            if op in ("sub", "div"):
                yield f"{at}{_name(node)}: operands flipped", replace(node, args=(args[1], args[0]))
            yield f"{at}{_name(node)}: right operand dropped", args[0]
            yield f"{at}{_name(node)}: left operand dropped", args[1]
        case ir.Map(op=op, space=space, args=args) if len(args) == 1:
            yield f"{at}{_name(node)} dropped", args[0]
            twin = BASE_TWIN.get(op)
            if twin:
                yield f"{at}{_name(node)} -> {map_name(twin, space)}", replace(node, op=twin)
        case ir.Map(op="where", args=(c, a, b)):
            yield f"{at}{_name(node)}: branches swapped", replace(node, args=(c, b, a))
        case ir.Reduce(op=op, rank=rank, arg=arg):
            other = "max" if op == "add" else "add"
            yield f"{at}{_name(node)} -> {reduce_name(other, rank)}", replace(node, op=other)
            for r in _operand_ranks(arg, ctx):
                if r != rank:
                    yield f"{at}{_name(node)} -> {reduce_name(op, r)} (other rank)", replace(node, rank=r)
            yield f"{at}{_name(node)} dropped", arg
            if op == "max":
                for rank_, outer, inner, tiles in ctx.splits:
                    if rank_ == rank:
                        local = ir.Reduce("max", inner, ir.Split(rank, outer, inner, tiles, arg, node.line), node.line)
                        yield (f"{at}global max {_name(node)} -> local max {reduce_name('max', inner)} "
                               f"within tiles of {outer}"), local
        case ir.Split(rank=r, outer=o, inner=i):
            yield f"{at}{_name(node)} -> {split_name(r, i, o)} (layout)", replace(node, outer=i, inner=o)
        case ir.Unsplit(rank=r, outer=o, inner=i):
            yield f"{at}{_name(node)} -> {unsplit_name(i, o, r)} (layout)", replace(node, outer=i, inner=o)
        case ir.Const(value=v):
            if v == -math.inf:
                targets = [0.0]
            elif v == 0:
                targets = [1.0, -math.inf]
            else:
                targets = [0.0] + ([-v] if -v != v else [])
            for t in targets:
                yield f"{at}Const {_const(v)} -> {_const(t)}", replace(node, value=t)
        case ir.Ref(name=name):
            mine = set(ctx.env.get(name, ()))
            for other in ctx.earlier:
                if other == name or other not in ctx.env:
                    continue
                if len(mine ^ set(ctx.env[other])) <= 1:
                    yield f"{at}reference {name} -> {other}", replace(node, name=other)


def mutations(expr, ctx: _Context):
    """Every one-step mutation of an expression tree: (change, mutated expression)."""
    yield from _local(expr, ctx)
    kids = ir.children(expr)
    for i, child in enumerate(kids):
        for change, new in mutations(child, ctx):
            yield change, ir.with_children(expr, kids[:i] + (new,) + kids[i + 1:])


def _splits(exprs) -> tuple:
    found = []
    for expr in exprs:
        for node in ir.walk(expr):
            if isinstance(node, ir.Split):
                key = (node.rank, node.outer, node.inner, node.tiles)
                if key not in found:
                    found.append(key)
    return tuple(found)


# -- mutants of rules, chain steps and programs --------------------------------------------------------------

def rule_mutants(rule: ir.Rule, assumptions=(), source_path: str = "", strict: bool = False) -> list[Mutant]:
    target = f"{Location(rule.file, rule.line)} {rule.name}"
    ctx = _Context(tuple(ir.rank_names((rule.lhs, rule.rhs))), _splits([rule.lhs, rule.rhs]))
    out = []
    for side in ("lhs", "rhs"):
        for change, new in mutations(getattr(rule, side), ctx):
            mutated = replace(rule, **{side: new}, name=f"{rule.name} [{side}: {change}]")
            mutant = Mutant(target, f"{side}: {change}", origin=(str(Path(rule.file).resolve()), rule.line))
            mutant.key = ("rule", target, mutated.lhs, mutated.rhs)
            try:
                claim = rule_claim(mutated, strict=strict)
                for text, line in assumptions_above(assumptions, rule):
                    claim = with_assumptions(claim, [text], Location(source_path or rule.file, line))
                mutant.claim = claim
            except VerifyError as exc:
                mutant.skipped = exc.cause
            out.append(mutant)
    return out


def program_mutants(reference: Claim, target: str) -> list[Mutant]:
    """Mutants of the right side's program of an equivalence claim, each compared with the left side."""
    side = reference.rhs
    program = side.program()
    env = program_ranks(program)
    names = list(program.bindings)
    out = []
    reached, stack = set(), [side.output]
    while stack:   # the bindings this output reaches
        name = stack.pop()
        if name not in reached and name in program.bindings:
            reached.add(name)
            stack.extend(x.name for x in ir.walk(program.bindings[name].expr) if isinstance(x, ir.Ref))
    for position, name in enumerate(names):
        binding = program.bindings[name]
        if isinstance(binding.expr, ir.Input) or name not in reached:
            continue   # a binding this output does not use (another output's) cannot change it
        ctx = _Context(tuple(ir.rank_names(b.expr for b in program.bindings.values())),
                       _splits(b.expr for b in program.bindings.values()),
                       env={n: env[n] for n in names[:position]}, earlier=tuple(names[:position]))
        for change, new in mutations(binding.expr, ctx):
            mutant = Mutant(target, f"{Path(side.file).name} {name}: {change}")
            mutant.key = ("program", target, name, new)
            bindings = dict(program.bindings)
            bindings[name] = replace(binding, expr=new)
            try:
                mutated = ir.Program(program.file, bindings, program.outputs)
                ranks = program_ranks(mutated)
                if set(ranks[side.output]) != set(reference.out_ranks):
                    raise VerifyError(f"the output has ranks {ranks[side.output]}, not {reference.out_ranks}")
                rhs = Side(side.label, side.expr, bindings, side.file)
                check_split_tiles([b.expr for b in bindings.values()], side.file)
                # Mutants are checked at the default bound, except claims with masks, whose patterns are
                # enumerated: they keep the small bound their step chose.
                # A step justified by rules is mutated as a plain equivalence: whether its rules still connect a
                # mutant says nothing about whether the mutant is equivalent.
                mutant.claim = replace(reference, by_rules=None, name=f"{reference.name} [{mutant.change}]", rhs=rhs,
                                       inputs=inputs_of([reference.lhs, rhs]), unbounded=(),
                                       bound=reference.bound if reference.masks else None)
            except VerifyError as exc:
                mutant.skipped = exc.cause
            out.append(mutant)
    return out


def collect_mutants(paths, options: Options) -> MutationReport:
    """Every mutant of every rule, chain step and standalone program under `paths` (parsed here, in this
    process: egglog's parser must not run for the first time in a forked child)."""
    report = MutationReport()
    try:
        files = expand_paths(paths)
    except VerifyError as exc:
        report.errors.append(exc)
        return report
    chained: set[Path] = set()
    programs: list[tuple[Path, SourceFile]] = []
    for path in files:
        try:
            if path.name.endswith(".toml"):
                steps = targets.read_chain(path, options)
                report.claims.extend(steps)
                for claim in steps:   # one claim per step and output (outputs by position)
                    chained.add(Path(claim.rhs.file).resolve())
                    target = f"{Location(str(path), claim.line)} {claim.name}"
                    report.targets.append(target)
                    report.mutants.extend(program_mutants(claim, target))
                continue
            source = read_file(path)             # read once: the mutants and the unmutated claims (as collect does)
            report.errors.extend(source.rule_errors)
            report.claims.extend(targets.claims_of(source, options, report.errors))
            if source.rules:
                for rule in source.rules:
                    report.targets.append(f"{Location(rule.file, rule.line)} {rule.name}")
                    report.mutants.extend(rule_mutants(rule, source.assumptions, str(path),
                                                       options.strict_shapes or source.strict_shapes))
            elif source.program.outputs:
                programs.append((path, source))
        except VerifyError as exc:
            report.errors.append(exc)
    for path, source in programs:
        if path.resolve() in chained:
            continue  # its mutants are already compared with the program it was derived from
        try:
            for claim in equiv_claims(source.program, source.program, name=f"{path.name} == itself"):
                target = f"{path} (program)" + (f" {claim.lhs.output}" if len(source.program.outputs) > 1 else "")
                report.targets.append(target)
                report.mutants.extend(program_mutants(claim, target))
        except VerifyError as exc:
            report.errors.append(exc)
    seen = set()
    unique = []
    for m in report.mutants:
        key = getattr(m, "key", None)
        if key is not None and key in seen:
            report.duplicates += 1
            continue
        seen.add(key)
        unique.append(m)
    report.mutants = unique
    counts: dict[str, int] = {}
    for m in unique:
        counts[m.label] = counts.get(m.label, 0) + 1
    nth: dict[str, int] = {}
    for m in unique:
        if counts[m.label] > 1:   # the same change at two places of one line: number them
            label = m.label
            nth[label] = nth.get(label, 0) + 1
            m.change += f" (occurrence {nth[label]})"
    return report


def run(paths, options: Options, progress=None) -> MutationReport:
    report = collect_mutants(paths, options)
    originals = report.claims
    # A rule that is itself an error (ill-ranked, unreadable) is reported as such, and its mutants say nothing.
    broken = {(str(Path(e.location.file).resolve()), e.location.line) for e in report.errors if e.location is not None}
    dropped = {m.target for m in report.mutants if m.origin and m.origin in broken}
    report.targets = [t for t in report.targets if t not in dropped]
    report.mutants = [m for m in report.mutants if m.target not in dropped]
    todo: list[tuple[Mutant, Claim]] = []
    for m in report.mutants:
        if m.claim is None:
            continue
        try:
            preflight([m.claim], options)
        except VerifyError as exc:
            m.skipped = exc.cause
            continue
        todo.append((m, m.claim))
    results = check_claims(originals + [claim for _, claim in todo], options, progress)
    report.originals, results = results[:len(originals)], results[len(originals):]
    for (mutant, _), result in zip(todo, results):
        if result.verdict is Verdict.ERROR and ("shape error:" in result.detail or "bound error:" in result.detail):
            mutant.skipped = result.detail   # ill-shaped only at evaluation time (e.g. a split that cannot fit)
            continue
        mutant.result = result
    return report


def dumps(report: MutationReport) -> str:
    return json.dumps(report.to_json(), indent=2)
