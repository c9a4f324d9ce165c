"""Numeric cross-check of a CERTIFIED claim: the checker checking its own proof.

Both sides are evaluated at random points, including large magnitudes (|x| up to 50), negative values, exact and
near ties of maxima, and the constants of the claim itself (zeros of `b - c` denominators). A float disagreement
is replayed rigorously (`intervals.rigorous_difference`); a proven one is returned as a counterexample, which the
driver turns into ERROR (an internal error, never a pass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import ir, masks, refute
from .claims import Claim, side_values
from .evaluate import FLOAT, mismatches
from .intervals import rigorous_difference
from .verdict import Counterexample

CROSS_TRIALS = 16
MAX_CROSS_ELEMENTS = 50_000     # input elements x trials per assignment for the float pass
MAX_RIGOROUS = 3                # float disagreements replayed rigorously per claim


@dataclass
class CrossCheck:
    """What the cross-check found: a note for `engines`, or a proven disagreement at `where`."""

    note: str
    where: str = ""
    counterexample: Counterexample | None = None

    @property
    def disagrees(self) -> bool:
        return bool(self.where)


def _claim_constants(claim: Claim) -> list[float]:
    found = {0.0, 1.0, -1.0}
    for side in (claim.lhs, claim.rhs):
        for node in side.nodes():
            if isinstance(node, ir.Const) and math.isfinite(node.value):
                found.update((node.value, -node.value))
    return sorted(found)


def _near_ties(rng: np.random.Generator, shape) -> np.ndarray:
    """One value plus tiny noise: maxima almost equal."""
    base = rng.uniform(-50, 50)
    return base + rng.integers(-1, 2, size=shape) * 10.0 ** -rng.integers(6, 12)


def cross_strategies(constants: list[float]) -> tuple[masks.Strategy, ...]:
    """One strategy per trial row, in turn: wide and clipped reals, near and exact ties, negatives, large
    magnitudes, the claim's own constants (zeros of denominators such as b - c), signed magnitudes."""
    return (
        lambda rng, shape: rng.uniform(-50, 50, size=shape),
        lambda rng, shape: np.clip(rng.normal(size=shape) * 20, -50, 50),
        _near_ties,
        lambda rng, shape: rng.integers(-3, 4, size=shape).astype(float),
        lambda rng, shape: -rng.uniform(0, 50, size=shape),
        lambda rng, shape: rng.uniform(30, 50, size=shape) * rng.choice([-1.0, 1.0], size=shape),
        lambda rng, shape: rng.choice(np.array(constants), size=shape),
        lambda rng, shape: rng.choice([-1.0, 1.0], size=shape) * 10.0 ** rng.uniform(-3, 1.7, size=shape),
    )


def _pick_assignments(sizes_list: list[dict], rng) -> list[dict]:
    if not sizes_list:
        return []
    chosen = [sizes_list[0]]
    both = [s for s in sizes_list if s and min(s.values()) >= 2]
    if both:
        chosen.append(both[0])
    chosen.append(sizes_list[-1])
    if len(sizes_list) > 3:
        for i in rng.choice(len(sizes_list), size=min(2, len(sizes_list)), replace=False):
            chosen.append(sizes_list[int(i)])
    out = []
    for s in chosen:
        if s not in out:
            out.append(s)
    return out


def cross_check(claim: Claim, seed: int, sizes_list) -> CrossCheck:
    """Re-evaluate a certified claim at random points: a proven disagreement, or how far it agrees."""
    rng = np.random.default_rng(seed + 7919)
    strategies = cross_strategies(_claim_constants(claim))
    points = 0
    used = 0
    unconfirmed = 0
    rigorous = 0
    for sizes in _pick_assignments(sizes_list, rng):
        n_inputs = sum(int(np.prod([sizes[r] for r in ranks])) for _, ranks in claim.inputs)
        if n_inputs * CROSS_TRIALS > MAX_CROSS_ELEMENTS and used:
            continue
        used += 1
        inputs = masks.draw_inputs(claim, sizes, rng, CROSS_TRIALS,
                            lambda shape: masks.rows(rng, shape, CROSS_TRIALS, strategies))
        lv, rv = side_values(claim, sizes, FLOAT, inputs, batch=CROSS_TRIALS)
        bad = mismatches(lv, rv)
        bad = np.broadcast_to(bad, (CROSS_TRIALS,) + bad.shape[1:])  # no inputs: no trial axis
        points += CROSS_TRIALS
        for t in range(CROSS_TRIALS):
            if not bad[t].any():
                continue
            if rigorous >= MAX_RIGOROUS or n_inputs > 4096:
                unconfirmed += 1
                continue
            rigorous += 1
            trial = {name: values[t] for name, values in inputs.items()}
            if rigorous_difference(claim, sizes, trial) is None:
                unconfirmed += 1
                continue
            where = ", ".join(f"{k.upper()}={v}" for k, v in sorted(sizes.items()))
            return CrossCheck(f"DISAGREES at {where}", where,
                              refute.confirm(claim, sizes, trial, "numeric cross-check",
                                             prove_difference=rigorous_difference))
    note = f"agrees at {points} random points over {used} size assignments"
    if unconfirmed:
        note += f" ({unconfirmed} float disagreements from rounding/overflow, none confirmed by interval replay)"
    return CrossCheck(note)
