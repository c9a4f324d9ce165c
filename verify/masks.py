"""Mask inputs: tensors whose elements are 0 (keep) or -inf (masked), added to attention scores.

A mask is a discrete input, so the checkers do not treat it as an unknown real: the proof back ends enumerate
every mask pattern at each size assignment (so a claim with masks is decided exactly, pattern by pattern), and
the numeric search draws patterns that provoke the known failure modes: no mask, random masks, a fully masked
first tile, a fully masked row, causal masks.

Assumptions state preconditions on masks: `B unmasked along m` means that for every index of B's other ranks
at least one element along m is 0 ("every query row has at least one key"). Patterns and trials that violate
an assumption are not part of the claim.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence

import numpy as np

from . import ir, predicates
from .errors import BoundError, ParseError, ShapeError

ASSUME_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s+unmasked\s+along\s+([a-z][0-9]*)\s*$")
MAX_PATTERNS = 1 << 12


def parse_assumption(text: str, location=None) -> tuple[str, str]:
    m = ASSUME_RE.match(text)
    if not m:
        raise ParseError(f"cannot read assumption '{text.strip()}'", location,
                         "write e.g. 'B unmasked along m' (mask B keeps at least one element along m)")
    return m.group(1), m.group(2)


def satisfies(values: np.ndarray, ranks: tuple[str, ...], along: str) -> bool:
    """Every fibre of `values` along rank `along` has an unmasked (finite) element."""
    axis = ranks.index(along)
    return bool(np.all(np.any(np.isfinite(values), axis=axis)))


def _ok(claim, name, values) -> bool:
    ranks = dict(claim.inputs)[name]
    return all(satisfies(values, ranks, along) for mask, along in claim.assumptions if mask == name)


def predicate_masks(claim) -> dict[str, predicates.Predicate]:
    """The claim's predicate masks (`:mask(PRED)`), by name; opaque masks are not among them. The two sides'
    masks of one name must agree in their parameters' declarations too (the text alone may read alike)."""
    found = [n.pred for side in (claim.lhs, claim.rhs) for n in side.nodes()
             if isinstance(n, ir.Input) and n.kind in ("mask", "index") and n.pred is not None]
    same_params([p for pred in found for p in pred.params])
    out: dict[str, predicates.Predicate] = {}
    for side in (claim.lhs, claim.rhs):
        for n in side.nodes():
            if isinstance(n, ir.Input) and n.kind in ("mask", "index") and n.pred is not None:
                out[n.name] = n.pred
    return out


def param_assignments(claim, sizes: dict[str, int] | None = None) -> list[dict]:
    """Every combination of the checked values of the parameters the claim's predicates use (`Param.checked`);
    a sequence parameter (`doc[]`) takes every sequence up to renaming over the positions of the longest rank its
    predicates read it at (needs `sizes`)."""
    preds = predicate_masks(claim).values()
    params = sorted({p for pred in preds for p in pred.params}, key=lambda p: p.name)
    same_params(params)
    length = max([sizes[r] for pred in preds for r in pred.ranks] or [1]) if sizes else 1
    choices = [predicates.sequences(length) if p.seq else p.checked() for p in params]
    return [dict(zip((p.name for p in params), values)) for values in itertools.product(*choices)]


def same_params(params) -> None:
    """Two sides (or two masks) that declare one parameter differently (`W >= 1` against `W in 1..4`) make no
    claim: checking the narrower range would certify a program used over the wider one."""
    by_name: dict[str, set] = {}
    for p in params:
        by_name.setdefault(p.name, set()).add(str(p))
    for name, declared in by_name.items():
        if len(declared) > 1:
            raise ShapeError(f"parameter {name} is declared differently where the claim reads it: "
                             f"{' and '.join(sorted(declared))}", hint="declare it the same way in every file")


def param_ranges(claim) -> tuple[tuple[str, int, int], ...]:
    """The parameter values a bounded verdict covered, as bound ranges (NAME, lo, hi): a bound names them."""
    params = sorted({p for pred in predicate_masks(claim).values() for p in pred.params if not p.seq},
                    key=lambda p: p.name)
    same_params(params)
    return tuple((p.name, p.checked().start, p.checked().stop - 1) for p in params)


def pattern_count(claim, sizes) -> int:
    """How many patterns `patterns` decides at these sizes: 2^elements per opaque mask, one per parameter
    assignment for the predicate masks (a predicate fixes its pattern)."""
    preds = predicate_masks(claim)
    total = len(param_assignments(claim, sizes)) if preds else 1
    for name in claim.masks:
        if name not in preds:
            total *= 1 << int(np.prod([sizes[r] for r in dict(claim.inputs)[name]], dtype=np.int64))
    return total


def check_pattern_count(claim, sizes_list) -> None:
    """Refuse, before any work, a bound at which opaque masks would be enumerated beyond MAX_PATTERNS, and a
    predicate that names the size of a rank the claim does not have."""
    ranks = set(claim.ranks())
    for name, pred in predicate_masks(claim).items():
        missing = sorted(predicates.sizes_named(pred) - ranks)
        if missing:
            raise ShapeError(f"mask '{name}': predicate '{pred}' names the size of rank(s) {', '.join(missing)}, "
                             f"which '{claim.name}' does not have", claim.location)
    for sizes in sizes_list:
        count = pattern_count(claim, sizes)
        if count > MAX_PATTERNS:
            shown = ", ".join(f"{r.upper()}={v}" for r, v in sorted(sizes.items()))
            raise BoundError(f"the opaque masks of '{claim.name}' have {count} patterns at {shown} (at most "
                             f"{MAX_PATTERNS}): opaque masks are enumerated pattern by pattern", claim.location,
                             "lower the bound of the masked ranks (e.g. --bound M1=2,M0=2), or write the mask as a "
                             "predicate, (CreateTensor \"B[m,p]:mask(m <= p)\"), which is never enumerated")


def patterns(claim, sizes) -> list[dict[str, np.ndarray]]:
    """Every combination of mask patterns (each element 0 or -inf) allowed by the assumptions: every pattern of
    an opaque mask, the one pattern a predicate mask has at these sizes (per parameter assignment)."""
    if not claim.masks:
        return [{}]
    preds = predicate_masks(claim)
    fixed: list[dict[str, np.ndarray]] = [{}]
    if preds:
        fixed = []
        for params in param_assignments(claim, sizes):
            combo = {name: predicates.pattern(pred, sizes, params) for name, pred in preds.items()}
            if all(_ok(claim, name, values) for name, values in combo.items()):
                fixed.append(combo)
    per_mask = []
    total = len(fixed)
    for name in claim.masks:
        if name in preds:
            continue
        shape = tuple(sizes[r] for r in dict(claim.inputs)[name])
        n = int(np.prod(shape, dtype=np.int64))
        total *= 1 << n
        if total > MAX_PATTERNS:
            raise BoundError(f"the masks of '{claim.name}' have {total} patterns at sizes {sizes} "
                             f"(at most {MAX_PATTERNS})", claim.location,
                             "lower the bound of the masked ranks, e.g. --bound M1=2,M0=2")
        options = []
        for bits in itertools.product((0.0, -np.inf), repeat=n):
            values = np.array(bits, dtype=float).reshape(shape)
            if _ok(claim, name, values):
                options.append(values)
        per_mask.append(options)
    opaque = [name for name in claim.masks if name not in preds]
    return [{**f, **dict(zip(opaque, combo))} for f in fixed for combo in itertools.product(*per_mask)]


def draw_inputs(claim, sizes, rng: np.random.Generator, count: int, real) -> dict[str, np.ndarray]:
    """`count` trial values for every input of a claim: mask inputs get patterns of 0 and -inf (`trials`, which
    respect the assumptions), every other input `real(shape)`. Every engine that draws inputs goes through here,
    so no engine ever feeds a real number into a mask."""
    return {name: (trials(claim, name, rng, tuple(sizes[r] for r in ranks), count, sizes) if name in claim.masks
                   else real(tuple(sizes[r] for r in ranks))) for name, ranks in claim.inputs}


Strategy = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]


def rows(rng: np.random.Generator, shape: tuple[int, ...], count: int, strategies: Sequence[Strategy]) -> np.ndarray:
    """`count` rows of values for one input, row t drawn by strategy t (cycling through them)."""
    return np.stack([strategies[t % len(strategies)](rng, shape) for t in range(count)])


def mask_strategies(claim, name: str, ranks: tuple[str, ...]) -> tuple[Strategy, ...]:
    """One mask pattern per trial row, in turn, chosen to provoke -inf bugs: none masked, random, the first half
    masked, early keys masked, mostly masked, everything masked; each repaired to satisfy the assumptions."""
    keys = key_rank(claim, name, ranks)

    def first_half(rng, shape):
        values = np.zeros(shape)
        if shape:
            values[tuple(slice(0, max(1, s // 2)) for s in shape[:1])] = -np.inf
        return values

    def early_keys(rng, shape):
        values = np.zeros(shape)
        if keys is not None:
            axis = ranks.index(keys)
            index: list[slice] = [slice(None)] * len(shape)
            index[axis] = slice(0, max(1, shape[axis] // 2))
            values[tuple(index)] = -np.inf
        return values

    kinds: tuple[Strategy, ...] = (
        lambda rng, shape: np.zeros(shape),
        lambda rng, shape: np.where(rng.random(shape) < 0.5, -np.inf, 0.0),
        first_half,
        early_keys,
        lambda rng, shape: np.where(rng.random(shape) < 0.8, -np.inf, 0.0),
        lambda rng, shape: np.full(shape, -np.inf),
    )
    # repaired inside the strategy, so each repair draws right after its own row: seeded trials depend on that order
    return tuple(lambda rng, shape, kind=kind: repair(claim, name, ranks, kind(rng, shape), rng) for kind in kinds)


def trials(claim, name: str, rng: np.random.Generator, shape: tuple[int, ...], count: int,
           sizes: dict[str, int] | None = None) -> np.ndarray:
    """`count` mask patterns for one input (`mask_strategies`, in turn); a predicate mask's pattern at these
    sizes, trial t at the t-th parameter assignment (cycling), so a search meets every checked parameter value."""
    pred = predicate_masks(claim).get(name)
    if pred is not None:
        sizes = {**(sizes or {}), **dict(zip(dict(claim.inputs)[name], shape))}
        assignments = param_assignments(claim, sizes)
        return np.stack([predicates.pattern(pred, sizes, assignments[t % len(assignments)]) for t in range(count)])
    return rows(rng, shape, count, mask_strategies(claim, name, dict(claim.inputs)[name]))


def key_rank(claim, name: str, ranks: tuple[str, ...]) -> str | None:
    """The rank a mask's keys run along: one an assumption names for it, else the first of its ranks the claim
    reduces, scans or tiles (attention's key rank, whatever it is called)."""
    assumed = [r for mask, r in claim.assumptions if mask == name and r in ranks]
    structural = [r for r in ranks if r in claim.structural_ranks()]
    return (assumed + structural + [None])[0]


def repair(claim, name, ranks, values, rng) -> np.ndarray:
    for mask, along in claim.assumptions:
        if mask != name:
            continue
        axis = ranks.index(along)
        moved = np.moveaxis(values, axis, -1)
        for idx in np.ndindex(*moved.shape[:-1]):
            if not np.isfinite(moved[idx]).any():
                moved[idx + (int(rng.integers(moved.shape[-1])),)] = 0.0
        values = np.moveaxis(moved, -1, axis)
    return values


def block_note(claim, sizes: dict[str, int]) -> str:
    """For a block-sparse claim (predicate masks B[m,p], TE[m1,p], TF[m1,p], the convention of
    verify/models/masked/): the tiles TE/TF misclassify at these sizes, named; '' otherwise."""
    preds = predicate_masks(claim)
    if not {"B", "TE", "TF"} <= set(preds) or preds["TE"].ranks != ("m1", "p") or preds["B"].ranks != ("m", "p"):
        return ""
    m1, m0, p = sizes.get("m1"), sizes.get("m0"), sizes.get("p")
    if m1 is None or m0 is None or p is None:
        return ""
    for params in param_assignments(claim, sizes):
        elem = predicates.holds(preds["B"], sizes, params).reshape(m1, m0, p)
        keep = predicates.holds(preds["TE"], sizes, params)[:, None, :]
        full = predicates.holds(preds["TF"], sizes, params)[:, None, :]
        wrong = np.argwhere((keep & (full | elem)) != elem)
        if len(wrong):
            t, i, q = (int(x) for x in wrong[0])
            how = "classified empty (TE) but keeps" if elem[t, i, q] else "classified full (TF) but masks"
            shown = "".join(f", {k}={v}" for k, v in params.items())
            tiles = sorted({(int(a), int(c)) for a, _, c in wrong})
            return (f"misclassified tile: tile m1={t} of query p={q} is {how} key m={t * m0 + i} (M0={m0}{shown}); "
                    f"misclassified (m1, p): {tiles[:8]}{' ...' if len(tiles) > 8 else ''}")
    return ""
