"""What the checker is asked: a claim `lhs = rhs` between two sides, and the sizes it is checked at.

A side is an expression together with the `let` bindings it may refer to (a rule side has none; a program
side is a program's output). Claims come from rules (`rule_claim`), from program pairs (`equiv_claim`) and
from chain steps. Every back end consumes claims and nothing else.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from . import ir
from .errors import Location, ShapeError
from .evaluate import BATCH, FLOAT, Algebra, Evaluator, Tensor
from .implicit import READING, describe, implicit_rule, split_pairs, unrelated_tiling
from .masks import parse_assumption
from .shapes import (
    RankChecker,
    allowed_ranks,
    check_split_tiles,
    expr_ranks,
    infer_rule,
    program_ranks,
    substitute_inputs,
)


@dataclass(frozen=True)
class Side:
    label: str
    expr: ir.Expr
    bindings: dict[str, ir.Binding] = field(default_factory=dict, hash=False, compare=False)
    file: str = "<expr>"

    @property
    def output(self) -> str:
        """The binding a program's side names (`program_side`); a rule's side has none."""
        if not isinstance(self.expr, ir.Ref):
            raise TypeError(f"the {self.label} side is a term, not an output of a program")
        return self.expr.name

    def program(self) -> ir.Program:
        """A program's side as a program with its one output."""
        return ir.Program(self.file, dict(self.bindings), [(self.output, self.expr.line)])

    def evaluator(self, sizes, algebra: Algebra, inputs, batch=None) -> Evaluator:
        bindings = dict(self.bindings)
        bindings["__result__"] = ir.Binding("__result__", self.expr, getattr(self.expr, "line", None))
        return Evaluator(bindings, sizes, algebra, inputs, self.file, batch)

    def evaluate(self, sizes, algebra: Algebra, inputs, batch=None) -> Tensor:
        return self.evaluator(sizes, algebra, inputs, batch).ref("__result__")

    def roots(self) -> list[ir.Expr]:
        """The side's term and the terms of its bindings."""
        return [self.expr] + [binding.expr for binding in self.bindings.values()]

    def nodes(self):
        for root in self.roots():
            yield from ir.walk(root)


class ClaimKind(enum.StrEnum):
    """What a claim states: a rewrite rule, two programs equal (`verify equiv`), or a step of a chain file. A
    StrEnum: it compares equal to, prints and serialises as its string."""
    RULE = "rule"
    EQUIV = "equiv"
    STEP = "step"


@dataclass(frozen=True)
class RulesCitation:
    """What a chain step `by = "rules"` cites: its `from` program rewrites to its `to` program with these rules of
    `directory` (rules_step.py gathers the evidence and decides the step)."""
    rules: tuple[str, ...]
    directory: str = "rules"


@dataclass(frozen=True)
class Claim:
    name: str
    kind: ClaimKind                 # given as its string ("rule" | "equiv" | "step") or as a ClaimKind
    file: str
    line: int | None
    lhs: Side
    rhs: Side
    inputs: tuple[tuple[str, tuple[str, ...]], ...]   # every input tensor / pattern variable and its ranks
    out_ranks: tuple[str, ...]
    description: str = ""
    bound: str | None = None        # a bound the claim asks for itself (chain files); the CLI's wins per rank
    unbounded: tuple[str, ...] = () # induction lemma groups (verify/induction/) that lift it to all sizes
    masks: tuple[str, ...] = ()     # inputs whose elements are 0 or -inf (see masks.py)
    assumptions: tuple[tuple[str, str], ...] = ()   # (mask, rank): the mask keeps an element along rank
    reading: str = ""               # how a rule was read, when not strictly (implicit.READING); shown in verdicts
    by_rules: RulesCitation | None = None   # a chain step `by = "rules"`: decided by its rules, not the pipeline

    def __post_init__(self):
        object.__setattr__(self, "kind", ClaimKind(self.kind))   # an unknown kind is a ValueError here

    @property
    def location(self) -> Location:
        return Location(self.file, self.line)

    def input_ranks(self) -> dict[str, tuple[str, ...]]:
        return dict(self.inputs)

    def ranks(self) -> list[str]:
        return ir.rank_names(node for side in (self.lhs, self.rhs) for node in side.roots())

    def structural_ranks(self) -> set[str]:
        """Ranks some operator reduces, re-tiles or iterates over, and ranks an assumption is along (it ties the
        slices along that rank together). The others are parallel: see `plan`."""
        out: set[str] = set()
        for side in (self.lhs, self.rhs):
            for node in side.nodes():
                match node:
                    case ir.Reduce(rank=r) | ir.Scan(rank=r) | ir.Shift(rank=r) | ir.Last(rank=r):
                        out.add(r)
                    case ir.Split(rank=r, outer=o, inner=i) | ir.Unsplit(rank=r, outer=o, inner=i):
                        out.update((r, o, i))
                    case ir.Input(ranks=ranks, pred=pred) if pred is not None:
                        out.update(ranks)   # a predicate mask's slice depends on its index and size: not parallel
        out.update(along for _mask, along in self.assumptions)
        return out

    def has_opaque_masks(self) -> bool:
        """Masks whose patterns are enumerated (`:mask`); a predicate mask has one pattern per size."""
        return any(isinstance(n, ir.Input) and n.kind == "mask" and n.pred is None
                   for side in (self.lhs, self.rhs) for n in side.nodes())

    def splits(self) -> list[tuple[str, str, str]]:
        """Every view (rank, outer, inner) of a split rank, each once: one rank may be viewed several ways."""
        out: list[tuple[str, str, str]] = []
        for side in (self.lhs, self.rhs):
            for node in side.nodes():
                if isinstance(node, (ir.Split, ir.Unsplit)):
                    view = (node.rank, node.outer, node.inner)
                    if view not in out:
                        out.append(view)
        return out


def inputs_of(sides) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Every input of the sides with its ranks, sorted by name; an input declared two ways is a ShapeError."""
    found: dict[str, tuple[str, ...]] = {}
    kinds: dict[str, str] = {}
    for side in sides:
        for node in side.nodes():
            if isinstance(node, ir.Input):
                if node.name in found and found[node.name] != node.ranks:
                    raise ShapeError(
                        f"input '{node.name}' has ranks {found[node.name]} in one place and {node.ranks} in another",
                        Location(side.file, node.line),
                    )
                # a mask in one place and a real in another: either reading would check a claim not written
                kind = node.kind if node.pred is None else f"{node.kind}({node.pred})"
                if node.name in kinds and kinds[node.name] != kind:
                    raise ShapeError(f"input '{node.name}' is a {kinds[node.name]} in one place and a {kind} "
                                     f"in another", Location(side.file, node.line),
                                     'declare it the same way everywhere, e.g. (CreateTensor "B[m,p]:mask")')
                found[node.name] = node.ranks
                kinds[node.name] = kind
    return tuple(sorted(found.items()))


def _masks_of(sides) -> tuple[str, ...]:
    return tuple(sorted({n.name for side in sides for n in side.nodes()
                         if isinstance(n, ir.Input) and (n.kind == "mask" or n.kind == "index")}))


def with_assumptions(claim: Claim, assumptions, location: Location | None = None) -> Claim:
    """Attach mask assumptions (`B unmasked along m`), checking that they name a mask and one of its ranks."""
    from dataclasses import replace

    parsed = []
    ranks = dict(claim.inputs)
    for text in assumptions:
        mask, along = parse_assumption(text, location or claim.location)
        if mask not in claim.masks:
            raise ShapeError(f"assumption '{text}': '{mask}' is not a mask input of '{claim.name}'",
                             location or claim.location,
                             "`; assume:` covers every rule below it: move rules without that mask above the "
                             'directive or into another file; a mask is declared as (CreateTensor "B[m,p]:mask")')
        if along not in ranks[mask]:
            raise ShapeError(f"assumption '{text}': mask '{mask}' has no rank '{along}' (ranks {ranks[mask]})",
                             location or claim.location)
        if any(n.name == mask and n.pred is not None for side in (claim.lhs, claim.rhs) for n in side.nodes()
               if isinstance(n, ir.Input)):
            # its values are its predicate's: an assumption would only drop sizes (a vacuous check there)
            raise ShapeError(f"assumption '{text}': '{mask}' is a predicate mask, which decides its own rows",
                             location or claim.location, "drop the assumption: the verdict names the rows the "
                             "predicate can leave empty")
        parsed.append((mask, along))
    return replace(claim, assumptions=tuple(sorted(set(parsed))))


def with_assumptions_each(claims: list[Claim], assumptions, location: Location | None = None) -> list[Claim]:
    """The assumptions of a program pair or chain step on each of its claims (one per output): an assumption
    applies to the outputs that read its mask, and is an error only if none does."""
    out = list(claims)
    for text in assumptions:
        mask, _ = parse_assumption(text, location or (claims[0].location if claims else None))
        users = [i for i, c in enumerate(out) if mask in c.masks] or [0]
        for i in users:
            out[i] = with_assumptions(out[i], [f"{m} unmasked along {r}" for m, r in out[i].assumptions] + [text],
                                      location)
    return out


def rule_claim(rule: ir.Rule, env=None, strict: bool = False) -> Claim:
    """The claim of a rule. A rule that is ill-ranked only because it tiles implicitly (a rank-m tensor under an
    m1/m0 operator, see implicit.py) is read with implicit tiling unless `strict`; the claim says so."""
    reading, description = "", rule.description
    try:
        inferred, failure = infer_rule(rule, env), None
    except ShapeError as exc:
        inferred, failure = None, exc
    # Implicit tiling where the strict reading is ill-ranked, or where it relates rank m to nothing that
    # splits it (m and m1/m0 would then have unrelated sizes, M != M1*M0: not a reading anyone means).
    implicit = None if strict or (inferred is not None and not unrelated_tiling(inferred)) else implicit_rule(rule, env)
    if implicit is not None:
        inferred, reading = implicit, READING
        # the rule's own comment on its own line: it is the author's words, not part of what was checked
        description = describe(inferred) + (f"\n{rule.description}" if rule.description else "")
    elif failure is not None and (hoisted := _hoisted_rule_claim(rule, env)) is not None:
        return hoisted
    elif failure is not None:
        if not strict and split_pairs([rule.lhs, rule.rhs]) and not failure.hint:
            failure.hint = "read with implicit tiling (m = m1*M0 + m0), it is ill-ranked too"
        raise failure
    assert inferred is not None, "a rule that is not ill-ranked has been inferred"
    check_split_tiles([inferred.lhs, inferred.rhs], rule.file)
    lhs = Side("lhs", inferred.lhs, file=rule.file)
    rhs = Side("rhs", inferred.rhs, file=rule.file)
    out = expr_ranks(inferred.lhs, rule.file)
    return Claim(rule.name, ClaimKind.RULE, rule.file, rule.line, lhs, rhs, inputs_of([lhs, rhs]), out, description,
                 masks=_masks_of([lhs, rhs]), reading=reading)


def _nested_iterations(expr: ir.Expr) -> bool:
    return any(isinstance(n, ir.Scan) and any(isinstance(m, (ir.Scan, ir.Shift, ir.Last)) and m.rank == n.rank
                                                for m in ir.walk(n.body)) for n in ir.walk(expr))


def _hoist(expr: ir.Expr, bindings: dict[str, ir.Binding]) -> ir.Expr:
    """Every shift, last or scan over a scan's own rank inside its body (and free of that scan's state) becomes a
    binding the body refers to by name: the meaning a program gives it (evaluated whole, then sliced)."""
    from dataclasses import replace

    def inside(e: ir.Expr, rank: str, state: str) -> ir.Expr:
        if isinstance(e, (ir.Scan, ir.Shift, ir.Last)) and e.rank == rank and not any(
                isinstance(n, ir.Prev) and n.name == state for n in ir.walk(e)):
            value = _hoist(e, bindings)      # inner hoists first: they are bound before this one
            name = f"_h{len(bindings) + 1}"
            bindings[name] = ir.Binding(name, value, e.line)
            return ir.Ref(name, e.line)
        return rebuild(e, lambda x: inside(x, rank, state))

    def rebuild(e: ir.Expr, go) -> ir.Expr:
        if isinstance(e, ir.Scan):
            return replace(e, init=go(e.init), body=inside(go_scan(e.body), e.rank, e.name))
        return ir.with_children(e, [go(kid) for kid in ir.children(e)])

    def go_scan(e: ir.Expr) -> ir.Expr:
        return rebuild(e, go_scan)

    return rebuild(expr, lambda x: _hoist(x, bindings))


def _hoisted_rule_claim(rule: ir.Rule, env=None) -> Claim | None:
    """A rule whose scan body nests an iteration over the scan's rank (`verify export` writes a chain step's
    programs inline this way) as the claim between the programs it came from; None if it is not one."""
    if not (_nested_iterations(rule.lhs) or _nested_iterations(rule.rhs)):
        return None
    bindings: dict[str, ir.Binding] = {}
    lhs, rhs = _hoist(rule.lhs, bindings), _hoist(rule.rhs, bindings)
    order = ir.rank_names((rule.lhs, rule.rhs))
    allowed: dict = {}
    allowed_ranks(rule.lhs, frozenset(order), allowed)
    allowed_ranks(rule.rhs, frozenset(order), allowed)
    inputs = {name: ir.Input(name, tuple(r for r in order if r in ranks)) for name, ranks in allowed.items()}
    bindings = {n: ir.Binding(n, substitute_inputs(b.expr, inputs), b.line) for n, b in bindings.items()}
    lhs, rhs = substitute_inputs(lhs, inputs), substitute_inputs(rhs, inputs)
    ranks: dict = dict(env or {})
    checker = RankChecker(rule.file, ranks)
    try:
        for name, binding in bindings.items():
            ranks[name] = checker.ranks(binding.expr)
        left, right = checker.ranks(lhs), checker.ranks(rhs)
    except ShapeError:
        return None
    if set(left) != set(right):
        return None
    check_split_tiles([lhs, rhs] + [b.expr for b in bindings.values()], rule.file)
    sides = [Side("lhs", lhs, bindings, rule.file), Side("rhs", rhs, bindings, rule.file)]
    return Claim(rule.name, ClaimKind.RULE, rule.file, rule.line, sides[0], sides[1], inputs_of(sides), left,
                 rule.description, masks=_masks_of(sides))


def program_side(program: ir.Program, label: str, output: str | None = None) -> Side:
    program_ranks(program)
    if not program.outputs:
        raise ShapeError(f"{program.file} has no (extract ...): nothing to compare", Location(program.file, None))
    name = output or program.outputs[0][0]
    check_split_tiles([b.expr for b in program.bindings.values()], program.file)
    return Side(label, ir.Ref(name, program.bindings[name].line), program.bindings, program.file)


def equiv_claims(a: ir.Program, b: ir.Program, name: str | None = None, kind: str = "equiv",
                 file: str | None = None, line: int | None = None, bound: str | None = None,
                 unbounded: tuple[str, ...] = ()) -> list[Claim]:
    """One claim per output: the k-th `(extract ...)` of `a` against the k-th of `b` (paired by position, not by
    name). Programs with different numbers of outputs are a located error: comparing only some outputs would
    certify programs that differ in the others."""
    if not a.outputs or not b.outputs:
        missing = a if not a.outputs else b
        raise ShapeError(f"{missing.file} has no (extract ...): nothing to compare", Location(missing.file, None))
    if len(a.outputs) != len(b.outputs):
        more, fewer = (a, b) if len(a.outputs) > len(b.outputs) else (b, a)
        extra_name, extra_line = more.outputs[len(fewer.outputs)]
        raise ShapeError(f"{a.file} has {len(a.outputs)} output(s) but {b.file} has {len(b.outputs)}: outputs are "
                         f"compared by position, and '{extra_name}' has no counterpart in {fewer.file}",
                         Location(more.file, extra_line), "extract the same number of outputs, in the same order")
    label = name or f"{a.file} == {b.file}"
    claims = []
    for k, ((out_a, _), (out_b, line_b)) in enumerate(zip(a.outputs, b.outputs), 1):
        lhs, rhs = program_side(a, a.file, out_a), program_side(b, b.file, out_b)
        ra = program_ranks(a)[out_a]
        rb = program_ranks(b)[out_b]
        if set(ra) != set(rb):
            which = f"output {k} ({out_a} vs {out_b}) " if len(a.outputs) > 1 else "outputs "
            raise ShapeError(f"the {which}differ in ranks: {a.file} gives {{{', '.join(ra)}}}, "
                             f"{b.file} gives {{{', '.join(rb)}}}", Location(b.file, line_b))
        named = label if len(a.outputs) == 1 else f"{label} [output {k} of {len(a.outputs)}: {out_a} = {out_b}]"
        claims.append(Claim(named, ClaimKind(kind), file or b.file, line, lhs, rhs, inputs_of([lhs, rhs]), ra,
                            bound=bound, unbounded=tuple(unbounded), masks=_masks_of([lhs, rhs])))
    check_split_tiles_across(claims)
    for rank, (size, line) in b.sizes.items():   # concrete CreateTensor sizes: the same inputs on both sides
        if rank in a.sizes and a.sizes[rank][0] != size:
            raise ShapeError(f"rank {rank} has size {size} here but {a.sizes[rank][0]} in {a.file}"
                             + (f" at line {a.sizes[rank][1]}" if a.sizes[rank][1] else ""), Location(b.file, line),
                             "the two programs read the same inputs: give them the same concrete sizes (the "
                             "checker sweeps every size in the bound for both)")
    return claims


def equiv_claim(a: ir.Program, b: ir.Program, name: str | None = None, kind: str = "equiv",
                file: str | None = None, line: int | None = None, bound: str | None = None,
                unbounded: tuple[str, ...] = ()) -> Claim:
    """The claim for two programs with one output each (`equiv_claims` compares every output)."""
    claims = equiv_claims(a, b, name, kind, file, line, bound, unbounded)
    if len(claims) != 1:
        raise ShapeError(f"{a.file} and {b.file} have {len(claims)} outputs each: compare them with equiv_claims",
                         Location(b.file, b.outputs[1][1]))
    return claims[0]


def check_split_tiles_across(claims) -> None:
    """The two sides of an equivalence split the same rank pair with the same literal tile count, or the claim is
    refused. Within one side the count is a free size (the check sweeps every count in the bound); across the
    sides, two different literal counts (`(T_split_m_m1m0 X 4)` vs `... X 2`) would have the claim compare
    programs that are not the ones written (4 tiles vs 2), so they are a located error, not a certificate."""
    for claim in claims:
        seen: dict[tuple[str, str, str], tuple[object, str, int | None]] = {}
        for side in (claim.lhs, claim.rhs):
            for node in side.nodes():
                if isinstance(node, ir.Split) and isinstance(node.tiles, int):
                    key = (node.rank, node.outer, node.inner)
                    if key in seen and seen[key][0] != node.tiles:
                        tiles, file, line = seen[key]
                        raise ShapeError(
                            f"rank {node.rank} is split into ({node.outer}, {node.inner}) with {node.tiles} tiles "
                            f"here but with {tiles} in {file}" + (f" at line {line}" if line else ""),
                            Location(side.file, node.line),
                            "the two sides must tile alike (the checker sweeps every tile count in the bound "
                            "for both); name a different tiling with different ranks, e.g. T_split_m_ab")
                    seen.setdefault(key, (node.tiles, side.file, node.line))


def symbolic_inputs(claim: Claim, sizes: dict[str, int], algebra, fixed=None) -> dict[str, np.ndarray]:
    """Symbolic inputs of an algebra; inputs in `fixed` (mask patterns) become the algebra's constants."""
    out = {}
    for name, ranks in claim.inputs:
        shape = tuple(sizes[r] for r in ranks)
        arr = np.empty(shape, dtype=object)
        for idx in np.ndindex(*shape):
            arr[idx] = algebra.const(float(fixed[name][idx])) if fixed and name in fixed else algebra.input(name, idx)
        out[name] = arr
    return out


def side_values(claim: Claim, sizes, algebra: Algebra, inputs, batch=None) -> tuple[np.ndarray, np.ndarray]:
    """Both sides on the same inputs, as arrays of one shape to compare element by element: the batch axis (if
    `batch`), then the claim's output ranks."""
    order = ((BATCH,) if batch is not None else ()) + tuple(claim.out_ranks)
    left = claim.lhs.evaluate(sizes, algebra, inputs, batch).aligned(order)
    right = claim.rhs.evaluate(sizes, algebra, inputs, batch).aligned(order)
    lv, rv = np.broadcast_arrays(left, right)
    return lv, rv


__all__ = ["Claim", "ClaimKind", "Side", "rule_claim", "equiv_claim", "equiv_claims",
           "symbolic_inputs", "FLOAT"]
