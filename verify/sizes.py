"""Sizes: one vocabulary for what the user asks, what a claim is checked at, and what a verdict covers.

- `Bound`: the sizes asked for, a range per rank (`--bound M1=8,M0=4,F=2`, a chain step's `bound`); a rank it
  does not name gets a default range (`TILE_DEFAULT`, `OTHER_DEFAULT`). `effective_bound`: the CLI's bound
  over the claim's own.
- `Plan` (`plan`): the size assignments a claim is checked at under a bound, smallest first, with the ranks
  pinned to 1 because they are parallel (the theorem in `plan_uncached`).
- `SizeBound`: the sizes a verdict covers (`Result.bound`): the plan's ranges, every size (a lift), or none.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import BoundError, ShapeError

if TYPE_CHECKING:
    from .claims import Claim

TILE_DEFAULT = 4      # a rank that tiles are made of (m1, m0): 1..4, non-square tilings included
                      # (1..2 in claims with mask inputs, whose patterns are enumerated)
OTHER_DEFAULT = 2     # every other rank (e, f, p, an unsplit m): 1..2


@dataclass(frozen=True)
class Bound:
    """Upper (and optional lower) size of each rank, by upper-case rank name: `M1=8,M0=4,F=2` or `M1=2..8`."""

    ranges: tuple[tuple[str, tuple[int, int]], ...] = ()

    @staticmethod
    def parse(spec: str | None) -> Bound:
        if not spec:
            return Bound()
        ranges = {}
        for part in spec.split(","):
            part = part.strip()
            m = re.fullmatch(r"([A-Za-z][0-9]*)\s*=\s*([0-9]+)(?:\s*\.\.\s*([0-9]+))?", part)   # ASCII digits only
            if not m:
                raise BoundError(f"cannot read bound '{part}'", hint="write e.g. --bound M1=8,M0=4,F=2 or M1=2..8")
            lo, hi = (int(m.group(2)), int(m.group(3))) if m.group(3) else (1, int(m.group(2)))
            if lo < 1 or hi < lo:
                raise BoundError(f"bound '{part}' is empty or below 1", hint="sizes start at 1")
            if hi > 100_000:
                raise BoundError(f"bound '{part}' is absurdly large (at most 100000 per rank)")
            if m.group(1).upper() in ranges:
                raise BoundError(f"bound names rank {m.group(1).upper()} twice", hint="give each rank one range")
            ranges[m.group(1).upper()] = (lo, hi)
        return Bound(tuple(sorted(ranges.items())))

    def get(self, rank: str) -> tuple[int, int] | None:
        return dict(self.ranges).get(rank.upper())

    def over(self, other: Bound) -> Bound:
        """This bound, with `other` filling the ranks this one does not mention."""
        return Bound(tuple(sorted({**dict(other.ranges), **dict(self.ranges)}.items())))


def effective_bound(claim: Claim, bound: Bound) -> Bound:
    return bound.over(Bound.parse(claim.bound)) if claim.bound else bound


@dataclass(frozen=True)
class Plan:
    """The size assignments a claim is checked at, smallest first, and the range of every rank they cover."""

    assignments: tuple[tuple[tuple[str, int], ...], ...]
    ranges: tuple[tuple[str, int, int], ...]    # (RANK, lo, hi) of every rank checked (none: all are pinned)
    parallel: tuple[str, ...]
    pinned_bounds: tuple[str, ...] = ()     # bounds given for parallel ranks: covered by size 1, not needed

    def sizes(self):
        for a in self.assignments:
            yield dict(a)


MAX_ASSIGNMENTS = 5000


def plan(claim: Claim, bound: Bound) -> Plan:
    """The claim's size plan under `bound`, computed once per claim and bound in a process tree: the gate's
    preflight computes it before the claim's child process forks, and the child (the bounded proof, the SymPy
    and overflow sizes) reads it from `_PLANS`. Keyed by the claim's identity, not its equality: two program
    sides with equal terms but different bindings compare equal (`Side.bindings` is not compared)."""
    key = (id(claim), bound)
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is claim:
        return hit[1]
    found = plan_uncached(claim, bound)
    if len(_PLANS) >= MAX_PLANS:
        _PLANS.clear()
    _PLANS[key] = (claim, found)      # the claim is held, so its id is not reused while the entry lives
    return found


MAX_PLANS = 4096
_PLANS: dict[tuple[int, Bound], tuple[Claim, Plan]] = {}


def plan_uncached(claim: Claim, bound: Bound) -> Plan:
    """Sizes for every rank of the claim.

    A rank that is split is the product of its parts (rank = outer * INNER); a rank may be split several ways
    (m = m1*M0 = a*B), and only assignments where every view gives the same size are kept. Every rank that is
    not parallel ranges over the bound.

    **Pinning parallel ranks.** Theorem: let r be a rank such that
      (a) no operator of either side reduces, splits, unsplits, scans, shifts or takes the last element along
          r, so every operator acts slice by slice along r: the slice r=j of each intermediate is computed from
          the slices r=j of its operands (an operand without r is broadcast, the same for every j) by a function
          that does not depend on j or on the size R; and
      (b) the precondition on the inputs is a conjunction of conditions on single slices r=j (the same for
          every j): each mask element is 0 or -inf on its own, and an assumption `B unmasked along s` with s != r
          constrains fibres along s, each inside one slice r=j. An assumption *along r* is not of this form (it
          ties the slices of B along r together: with R=1 it forces every element to 0), so it violates (b).
    Then lhs = rhs for every R >= 1 (the other sizes fixed) iff lhs = rhs at R = 1. (If) inputs of size R that
    satisfy the precondition restrict, slice by slice, to inputs of size 1 that satisfy it, and by (a) slice j
    of each side's output is that side's output on the restriction; the sides agree on every slice. (Only if)
    inputs of size 1 replicated along r satisfy the precondition and give the size-1 outputs on every slice.
    `Claim.structural_ranks` collects the ranks that fail (a) or (b); every other rank is pinned to 1, whatever
    the bound says about it (the pinned ranks, and any bound given for them, are reported in `Plan.parallel` and
    `Plan.pinned_bounds`). Both directions are tested in tests/test_soundness.py.

    Remark: a rank that satisfies (a) but has an assumption along it is decided by sizes 1 and 2 (its default
    range): a slice j that fails at any size R still fails at size 2 next to an all-zero (unmasked) slice, and
    that pair satisfies every `unmasked along` assumption. A bound of 1..1 for such a rank covers only size 1.
    """
    ranks = claim.ranks()
    splits = claim.splits()
    check_acyclic(claim, splits)
    structural = claim.structural_ranks()
    tile_ranks = {r for _, outer, inner in splits for r in (outer, inner)}
    derived = {rank for rank, _, _ in splits}
    free = [r for r in ranks if r not in derived]
    # A bound on a split rank (M for m = m1*M0) bounds the product of its parts: its parts range up to it (where
    # the bound says nothing of them) and only assignments whose product lies in it are kept. It is never
    # dropped: `--bound M=5..5` checks M1*M0 = 5, not the default tile ranges.
    derived_bounds = {d: limit for d in derived if (limit := bound.get(d))}
    part_cap: dict[str, int] = {}
    for rank, outer, inner in splits:
        if rank in derived_bounds:
            for part in (outer, inner):
                part_cap[part] = max(part_cap.get(part, 1), derived_bounds[rank][1])
    ranges: dict[str, range] = {}
    parallel = []
    pinned_bounds = []
    for r in free:
        given = bound.get(r)
        if r not in structural:
            ranges[r] = range(1, 2)
            parallel.append(r)
            if given and given != (1, 1):
                pinned_bounds.append(f"{r.upper()}<={given[1]}" if given[0] == 1 else
                                     f"{r.upper()}={given[0]}..{given[1]}")
        elif given:
            ranges[r] = range(given[0], given[1] + 1)
        elif r in part_cap:
            ranges[r] = range(1, part_cap[r] + 1)
        else:
            # masks are enumerated pattern by pattern (2^elements), so their claims default to small tiles
            tile_default = OTHER_DEFAULT if claim.has_opaque_masks() else TILE_DEFAULT
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
        if derive(sizes, splits) and all(lo <= sizes[d] <= hi for d, (lo, hi) in derived_bounds.items()):
            combos.append(tuple(sorted(sizes.items())))
    if not combos:
        views = "; ".join(f"{rank} = {outer} x {inner}" for rank, outer, inner in splits)
        raise ShapeError(f"no size assignment in the bound makes the views of split ranks agree ({views})",
                         claim.location, "widen the bound of the tile ranks")
    combos.sort(key=lambda a: (sum(v for _, v in a), a))
    checked = [(r.upper(), min(ranges[r]), max(ranges[r])) for r in free if r not in parallel]
    checked += [(d.upper(), lo, hi) for d, (lo, hi) in sorted(derived_bounds.items())]
    return Plan(tuple(combos), tuple(checked), tuple(parallel), tuple(pinned_bounds))


def check_acyclic(claim: Claim, splits) -> None:
    """Splits that form a cycle (m -> a, b and a -> m, c) give no sizes: a located error, not a crash."""
    parts: dict[str, set[str]] = {}
    for rank, outer, inner in splits:
        parts.setdefault(rank, set()).update((outer, inner))

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for part in parts.get(start, ()):
            if part == target or (part not in seen and reaches(part, target, seen | {part})):
                return True
        return False

    for rank in parts:
        if reaches(rank, rank, {rank}):
            raise ShapeError(f"the splits of '{claim.name}' form a cycle: rank '{rank}' is split into parts that "
                             f"are split back into '{rank}'", claim.location,
                             "a tiling splits a rank into new ranks; use fresh rank names for each level")


def derive(sizes: dict[str, int], splits) -> bool:
    """Fill split ranks as products of their parts (repeatedly, for multi-level tilings); False when two views
    of one rank disagree."""
    changed = True
    while changed:
        changed = False
        for rank, outer, inner in splits:
            if outer in sizes and inner in sizes:
                value = sizes[outer] * sizes[inner]
                if rank in sizes and sizes[rank] != value:
                    return False
                if rank not in sizes:
                    sizes[rank] = value
                    changed = True
    return all(rank in sizes for rank, _, _ in splits)


# -- inputs ---------------------------------------------------------------------------------------------------


BY_INDUCTION = "by induction"
_RANGE = re.compile(r"([A-Z][A-Z0-9]*)\s*(?:<=\s*(\d+)|=\s*(\d+)\s*\.\.\s*(\d+))")


@dataclass(frozen=True)
class SizeBound:
    """The sizes a verdict covers (`Result.bound`): an inclusive range per rank (bounded), every size (`all_sizes`
    says why: "by induction", "M1, M0 symbolic", ...), or no sizes at all ("-": no proof ran). `str()` is its one
    text form (the headline, JSON, certificates); `parse` reads that form back, for JSON and the cache only."""

    ranges: tuple[tuple[str, int, int], ...] = ()     # (RANK, lo, hi)
    all_sizes: str | None = None

    @staticmethod
    def every(why: str) -> SizeBound:
        return SizeBound(all_sizes=why)

    @property
    def is_all_sizes(self) -> bool:
        return self.all_sizes is not None

    def __str__(self) -> str:
        if self.all_sizes is not None:
            return "all sizes, by induction" if self.all_sizes == BY_INDUCTION else f"all sizes ({self.all_sizes})"
        if not self.ranges:
            return "-"
        return ", ".join(f"{r}<={hi}" if lo == 1 else f"{r}={lo}..{hi}" for r, lo, hi in self.ranges)

    @staticmethod
    def parse(text: str) -> SizeBound | None:
        """The inverse of `str()`; None for text that is not a bound."""
        if text == "-":
            return SizeBound()
        if text == "all sizes, by induction":
            return SizeBound.every(BY_INDUCTION)
        if text.startswith("all sizes (") and text.endswith(")"):
            return SizeBound.every(text[len("all sizes ("):-1])
        ranges = []
        for part in text.split(","):
            m = _RANGE.fullmatch(part.strip())
            if not m:
                return None
            lo, hi = (1, int(m.group(2))) if m.group(2) else (int(m.group(3)), int(m.group(4)))
            ranges.append((m.group(1), lo, hi))
        return SizeBound(tuple(ranges))


NO_BOUND = SizeBound()
