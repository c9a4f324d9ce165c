"""What the checker is asked: a claim `lhs = rhs` between two sides, and the sizes it is checked at.

A side is an expression together with the `let` bindings it may refer to (a rule side has none; a program
side is a program's output). Claims come from rules (`rule_claim`), from program pairs (`equiv_claim`) and
from chain steps. Every back end consumes claims and nothing else.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import numpy as np

from . import ir
from .errors import BoundError, Location, ShapeError
from .evaluate import Algebra, Evaluator, FLOAT, Tensor
from .shapes import check_split_tiles, expr_ranks, infer_rule, program_ranks


@dataclass(frozen=True)
class Side:
    label: str
    expr: ir.Expr
    bindings: dict[str, ir.Binding] = field(default_factory=dict, hash=False, compare=False)
    file: str = "<expr>"

    def evaluator(self, sizes, algebra: Algebra, inputs, batch=None) -> Evaluator:
        bindings = dict(self.bindings)
        bindings["__result__"] = ir.Binding("__result__", self.expr, getattr(self.expr, "line", None))
        return Evaluator(bindings, sizes, algebra, inputs, self.file, batch)

    def evaluate(self, sizes, algebra: Algebra, inputs, batch=None) -> Tensor:
        return self.evaluator(sizes, algebra, inputs, batch).ref("__result__")

    def nodes(self):
        yield from ir.walk(self.expr)
        for binding in self.bindings.values():
            yield from ir.walk(binding.expr)


@dataclass(frozen=True)
class Claim:
    name: str
    kind: str                       # rule | equiv | step
    file: str
    line: int | None
    lhs: Side
    rhs: Side
    inputs: tuple[tuple[str, tuple[str, ...]], ...]   # every input tensor / pattern variable and its ranks
    out_ranks: tuple[str, ...]
    description: str = ""
    bound: str | None = None        # a bound the claim asks for itself (chain files); the CLI's wins per rank
    unbounded: tuple[str, ...] = () # induction lemma groups (verify/induction.py) that lift it to all sizes
    masks: tuple[str, ...] = ()     # inputs whose elements are 0 or -inf (see masks.py)
    assumptions: tuple[tuple[str, str], ...] = ()   # (mask, rank): the mask keeps an element along rank
    reading: str = ""               # how a rule was read, when not strictly (implicit.READING); shown in verdicts

    @property
    def location(self) -> Location:
        return Location(self.file, self.line)

    def input_ranks(self) -> dict[str, tuple[str, ...]]:
        return dict(self.inputs)

    def ranks(self) -> list[str]:
        seen: list[str] = []
        for side in (self.lhs, self.rhs):
            for node in side.nodes():
                names: tuple = ()
                match node:
                    case ir.Input(ranks=r) | ir.Map(space=r):
                        names = r
                    case ir.Reduce(rank=r) | ir.Scan(rank=r) | ir.Shift(rank=r) | ir.Last(rank=r):
                        names = (r,)
                    case ir.Split(rank=r, outer=o, inner=i) | ir.Unsplit(rank=r, outer=o, inner=i):
                        names = (r, o, i)
                seen.extend(n for n in names if n not in seen)
        return seen

    def structural_ranks(self) -> set[str]:
        """Ranks some operator reduces, re-tiles or iterates over. The others are parallel (see bounds)."""
        out: set[str] = set()
        for side in (self.lhs, self.rhs):
            for node in side.nodes():
                match node:
                    case ir.Reduce(rank=r) | ir.Scan(rank=r) | ir.Shift(rank=r) | ir.Last(rank=r):
                        out.add(r)
                    case ir.Split(rank=r, outer=o, inner=i) | ir.Unsplit(rank=r, outer=o, inner=i):
                        out.update((r, o, i))
        return out

    def splits(self) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for side in (self.lhs, self.rhs):
            for node in side.nodes():
                if isinstance(node, (ir.Split, ir.Unsplit)):
                    out[node.rank] = (node.outer, node.inner)
        return out


def _inputs_of(sides) -> tuple[tuple[str, tuple[str, ...]], ...]:
    found: dict[str, tuple[str, ...]] = {}
    for side in sides:
        for node in side.nodes():
            if isinstance(node, ir.Input):
                if node.name in found and found[node.name] != node.ranks:
                    raise ShapeError(
                        f"input '{node.name}' has ranks {found[node.name]} in one place and {node.ranks} in another",
                        Location(side.file, node.line),
                    )
                found[node.name] = node.ranks
    return tuple(sorted(found.items()))


def _masks_of(sides) -> tuple[str, ...]:
    return tuple(sorted({n.name for side in sides for n in side.nodes() if isinstance(n, ir.Input) and n.kind == "mask"}))


def with_assumptions(claim: Claim, assumptions, location: Location | None = None) -> Claim:
    """Attach mask assumptions (`B unmasked along m`), checking that they name a mask and one of its ranks."""
    from dataclasses import replace

    from .masks import parse_assumption

    parsed = []
    ranks = dict(claim.inputs)
    for text in assumptions:
        mask, along = parse_assumption(text, location or claim.location)
        if mask not in claim.masks:
            raise ShapeError(f"assumption '{text}': '{mask}' is not a mask input of '{claim.name}'",
                             location or claim.location, 'declare it as (CreateTensor "B[m,p]:mask")')
        if along not in ranks[mask]:
            raise ShapeError(f"assumption '{text}': mask '{mask}' has no rank '{along}' (ranks {ranks[mask]})",
                             location or claim.location)
        parsed.append((mask, along))
    return replace(claim, assumptions=tuple(sorted(set(parsed))))


def rule_claim(rule: ir.Rule, env=None, strict: bool = False) -> Claim:
    """The claim of a rule. A rule that is ill-ranked only because it tiles implicitly (a rank-m tensor under an
    m1/m0 operator, see implicit.py) is read with implicit tiling unless `strict`; the claim says so."""
    from .implicit import READING, describe, implicit_rule, unrelated_tiling

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
        description = describe(inferred) + (f". {rule.description}" if rule.description else "")
    elif failure is not None and (hoisted := _hoisted_rule_claim(rule, env)) is not None:
        return hoisted
    elif failure is not None:
        from .implicit import split_pairs

        if not strict and split_pairs([rule.lhs, rule.rhs]) and not failure.hint:
            failure.hint = "read with implicit tiling (m = m1*M0 + m0), it is ill-ranked too"
        raise failure
    check_split_tiles([inferred.lhs, inferred.rhs], rule.file)
    lhs = Side("lhs", inferred.lhs, file=rule.file)
    rhs = Side("rhs", inferred.rhs, file=rule.file)
    out = expr_ranks(inferred.lhs, rule.file)
    return Claim(rule.name, "rule", rule.file, rule.line, lhs, rhs, _inputs_of([lhs, rhs]), out, description,
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
        match e:
            case ir.Map(args=args):
                return replace(e, args=tuple(go(a) for a in args))
            case ir.Reduce() | ir.Split() | ir.Unsplit() | ir.Last():
                return replace(e, arg=go(e.arg))
            case ir.Shift():
                return replace(e, arg=go(e.arg), init=go(e.init))
            case ir.Scan():
                return replace(e, init=go(e.init), body=inside(go_scan(e.body), e.rank, e.name))
        return e

    def go_scan(e: ir.Expr) -> ir.Expr:
        return rebuild(e, go_scan)

    return rebuild(expr, lambda x: _hoist(x, bindings))


def _hoisted_rule_claim(rule: ir.Rule, env=None) -> Claim | None:
    """A rule whose scan body nests an iteration over the scan's rank (`verify export` writes a chain step's
    programs inline this way) as the claim between the programs it came from; None if it is not one."""
    from .shapes import _Checker, _allowed, _mentioned, _substitute

    if not (_nested_iterations(rule.lhs) or _nested_iterations(rule.rhs)):
        return None
    bindings: dict[str, ir.Binding] = {}
    lhs, rhs = _hoist(rule.lhs, bindings), _hoist(rule.rhs, bindings)
    order = _mentioned(rule.lhs) + [r for r in _mentioned(rule.rhs) if r not in _mentioned(rule.lhs)]
    allowed: dict = {}
    _allowed(rule.lhs, frozenset(order), allowed)
    _allowed(rule.rhs, frozenset(order), allowed)
    inputs = {name: ir.Input(name, tuple(r for r in order if r in ranks)) for name, ranks in allowed.items()}
    bindings = {n: ir.Binding(n, _substitute(b.expr, inputs), b.line) for n, b in bindings.items()}
    lhs, rhs = _substitute(lhs, inputs), _substitute(rhs, inputs)
    ranks: dict = dict(env or {})
    checker = _Checker(rule.file, ranks)
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
    return Claim(rule.name, "rule", rule.file, rule.line, sides[0], sides[1], _inputs_of(sides), left,
                 rule.description, masks=_masks_of(sides))


def program_side(program: ir.Program, label: str, output: str | None = None) -> Side:
    program_ranks(program)
    if not program.outputs:
        raise ShapeError(f"{program.file} has no (extract ...): nothing to compare", Location(program.file, None))
    name = output or program.outputs[0][0]
    check_split_tiles([b.expr for b in program.bindings.values()], program.file)
    return Side(label, ir.Ref(name, program.bindings[name].line), program.bindings, program.file)


def equiv_claim(a: ir.Program, b: ir.Program, name: str | None = None, kind: str = "equiv",
                file: str | None = None, line: int | None = None, bound: str | None = None,
                unbounded: tuple[str, ...] = ()) -> Claim:
    lhs, rhs = program_side(a, a.file), program_side(b, b.file)
    ra = program_ranks(a)[lhs.expr.name]
    rb = program_ranks(b)[rhs.expr.name]
    if set(ra) != set(rb):
        raise ShapeError(f"the outputs differ in ranks: {a.file} gives {{{', '.join(ra)}}}, "
                         f"{b.file} gives {{{', '.join(rb)}}}", Location(b.file, b.outputs[0][1]))
    label = name or f"{a.file} == {b.file}"
    return Claim(label, kind, file or b.file, line, lhs, rhs, _inputs_of([lhs, rhs]), ra, bound=bound,
                 unbounded=tuple(unbounded), masks=_masks_of([lhs, rhs]))


# -- bounds ---------------------------------------------------------------------------------------------------

TILE_DEFAULT = 4      # a rank that tiles are made of (m1, m0): 1..4, non-square tilings included
                      # (1..2 in claims with mask inputs, whose patterns are enumerated)
OTHER_DEFAULT = 2     # every other rank (e, f, p, an unsplit m): 1..2


@dataclass(frozen=True)
class Bound:
    """Upper (and optional lower) size of each rank, by upper-case rank name: `M1=8,M0=4,F=2` or `M1=2..8`."""

    ranges: tuple[tuple[str, tuple[int, int]], ...] = ()

    @staticmethod
    def parse(spec: str | None) -> "Bound":
        if not spec:
            return Bound()
        ranges = {}
        for part in spec.split(","):
            part = part.strip()
            m = re.fullmatch(r"([A-Za-z][0-9]*)\s*=\s*(\d+)(?:\s*\.\.\s*(\d+))?", part)
            if not m:
                raise BoundError(f"cannot read bound '{part}'", hint="write e.g. --bound M1=8,M0=4,F=2 or M1=2..8")
            lo, hi = (int(m.group(2)), int(m.group(3))) if m.group(3) else (1, int(m.group(2)))
            if lo < 1 or hi < lo:
                raise BoundError(f"bound '{part}' is empty or below 1", hint="sizes start at 1")
            if hi > 100_000:
                raise BoundError(f"bound '{part}' is absurdly large (at most 100000 per rank)")
            ranges[m.group(1).upper()] = (lo, hi)
        return Bound(tuple(sorted(ranges.items())))

    def get(self, rank: str) -> tuple[int, int] | None:
        return dict(self.ranges).get(rank.upper())

    def over(self, other: "Bound") -> "Bound":
        """This bound, with `other` filling the ranks this one does not mention."""
        return Bound(tuple(sorted({**dict(other.ranges), **dict(self.ranges)}.items())))


def effective_bound(claim: "Claim", bound: Bound) -> Bound:
    return bound.over(Bound.parse(claim.bound)) if claim.bound else bound


@dataclass(frozen=True)
class Plan:
    """The size assignments a claim is checked at, smallest first, and how to describe them."""

    assignments: tuple[tuple[tuple[str, int], ...], ...]
    description: str
    parallel: tuple[str, ...]

    def sizes(self):
        for a in self.assignments:
            yield dict(a)


MAX_ASSIGNMENTS = 5000


def plan(claim: Claim, bound: Bound) -> Plan:
    """Sizes for every rank of the claim.

    A rank that is split is the product of its parts (rank = outer * INNER). A rank no operator reduces,
    re-tiles or iterates over is *parallel*: each slice along it is computed by the same function from its own
    inputs, so size 1 decides it for every size, and it is pinned to 1. Every other rank ranges over the bound.
    """
    ranks = claim.ranks()
    splits = claim.splits()
    structural = claim.structural_ranks()
    tile_ranks = {r for pair in splits.values() for r in pair}
    derived = set(splits)
    free = [r for r in ranks if r not in derived]
    ranges: dict[str, range] = {}
    parallel = []
    for r in free:
        given = bound.get(r)
        if r not in structural:
            ranges[r] = range(1, 2)
            parallel.append(r)
        elif given:
            ranges[r] = range(given[0], given[1] + 1)
        else:
            # masks are enumerated pattern by pattern (2^elements), so their claims default to small tiles
            tile_default = OTHER_DEFAULT if claim.masks else TILE_DEFAULT
            ranges[r] = range(1, (tile_default if r in tile_ranks else OTHER_DEFAULT) + 1)
    combos = []
    total = 1
    for r in free:
        total *= len(ranges[r])
    if total > MAX_ASSIGNMENTS:
        raise BoundError(f"the bound asks for {total} size assignments (at most {MAX_ASSIGNMENTS})",
                         hint="give a range with a lower end for large sizes, e.g. --bound M1=512..512,M0=8..8")
    for values in itertools.product(*(ranges[r] for r in free)):
        sizes = dict(zip(free, values))
        if _derive(sizes, splits):
            combos.append(tuple(sorted(sizes.items())))
    combos.sort(key=lambda a: (sum(v for _, v in a), a))
    shown = [f"{r.upper()}<={max(ranges[r])}" if min(ranges[r]) == 1 else
             f"{r.upper()}={min(ranges[r])}..{max(ranges[r])}" for r in free if r not in parallel]
    description = ", ".join(shown) if shown else "all sizes (no rank is reduced or tiled)"
    return Plan(tuple(combos), description, tuple(parallel))


def _derive(sizes: dict[str, int], splits) -> bool:
    """Fill split ranks as products of their parts (repeatedly, for multi-level tilings)."""
    changed = True
    while changed:
        changed = False
        for rank, (outer, inner) in splits.items():
            if outer in sizes and inner in sizes:
                value = sizes[outer] * sizes[inner]
                if rank in sizes and sizes[rank] != value:
                    return False
                if rank not in sizes:
                    sizes[rank] = value
                    changed = True
    return all(r in sizes for r in splits)


# -- inputs ---------------------------------------------------------------------------------------------------

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


def evaluate_both(claim: Claim, sizes, algebra: Algebra, inputs, batch=None) -> tuple[Tensor, Tensor]:
    left = claim.lhs.evaluate(sizes, algebra, inputs, batch)
    right = claim.rhs.evaluate(sizes, algebra, inputs, batch)
    return left, right


def aligned_pair(claim: Claim, left: Tensor, right: Tensor, batch: bool = False):
    from .evaluate import BATCH

    order = ((BATCH,) if batch else ()) + tuple(claim.out_ranks)
    return left.aligned(order), right.aligned(order)


__all__ = ["Claim", "Side", "Bound", "Plan", "plan", "rule_claim", "equiv_claim", "symbolic_inputs", "FLOAT"]
