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

from .errors import ParseError

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


def patterns(claim, sizes) -> list[dict[str, np.ndarray]]:
    """Every combination of mask patterns (each element 0 or -inf) allowed by the assumptions."""
    if not claim.masks:
        return [{}]
    per_mask = []
    total = 1
    for name in claim.masks:
        shape = tuple(sizes[r] for r in dict(claim.inputs)[name])
        n = int(np.prod(shape, dtype=np.int64))
        total *= 1 << n
        if total > MAX_PATTERNS:
            raise ParseError(f"the masks of '{claim.name}' have {total} patterns at sizes {sizes} "
                             f"(at most {MAX_PATTERNS})", claim.location,
                             "lower the bound of the masked ranks, e.g. --bound M1=2,M0=2")
        options = []
        for bits in itertools.product((0.0, -np.inf), repeat=n):
            values = np.array(bits, dtype=float).reshape(shape)
            if _ok(claim, name, values):
                options.append(values)
        per_mask.append(options)
    return [dict(zip(claim.masks, combo)) for combo in itertools.product(*per_mask)]


def draw_inputs(claim, sizes, rng: np.random.Generator, count: int, real) -> dict[str, np.ndarray]:
    """`count` trial values for every input of a claim: mask inputs get patterns of 0 and -inf (`trials`, which
    respect the assumptions), every other input `real(shape)`. Every engine that draws inputs goes through here,
    so no engine ever feeds a real number into a mask."""
    return {name: (trials(claim, name, rng, tuple(sizes[r] for r in ranks), count) if name in claim.masks
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


def trials(claim, name: str, rng: np.random.Generator, shape: tuple[int, ...], count: int) -> np.ndarray:
    """`count` mask patterns for one input (`mask_strategies`, in turn)."""
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
