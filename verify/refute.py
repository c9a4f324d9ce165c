"""Back end: counterexample search, replay and shrinking, on the reference evaluator.

Search evaluates both sides in float64 on a batch of trials per size assignment (smallest sizes first). The
trial values are chosen to expose the usual bugs: random normals, small integers (ties and zeros: empty-looking
denominators, equal maxima), large magnitudes and negative values, all-equal tensors, nonnegative values.

A counterexample that convinces: when the first one found is an edge case (a side undefined or infinite
where they differ: 0 * inf, a zero denominator), the search goes on (a few seconds at most) for an *ordinary*
one, where both sides are defined and finite, and reports that first, with the edge case as a second example
(`Counterexample.edge_case`).

A float64 mismatch is only a *candidate*. Before anything is reported REFUTED, the candidate is replayed in
mpmath at 60 significant digits (`evaluate.Mp`) and must differ there by far more than rounding: a true rule
can never be refuted by float noise. Candidates are then shrunk: values are rounded to small integers and
zeroed one at a time, keeping each change only while the replay still disagrees. A difference between two
numbers is preferred to one where a side is undefined (shrinking never zeroes a denominator to get one).

60 digits can still be fooled (cancellation after exp, a rounding residue as a divisor), so a difference is
reported only when the `prove_difference` passed in proves it; this engine does not choose the prover (the
decide layer passes the interval engine's `intervals.rigorous_difference`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import ir, masks
from .claims import Claim, side_values
from .evaluate import FLOAT, Mp, mismatches, same_value
from .verdict import Counterexample, TensorValue

TRIALS = 24
ORDINARY_SECONDS = 3.0   # extra search for an ordinary counterexample once an edge case is found

# (claim, sizes, inputs, only=positions or None) -> an output position where the sides provably differ, or None
ProveDifference = Callable[..., tuple[int, ...] | None]


def is_ordinary(cx: Counterexample) -> bool:
    """Both sides defined and finite where they differ."""
    return not isinstance(cx.lhs_value, str) and not isinstance(cx.rhs_value, str)


def _normal(rng, shape):
    return rng.normal(size=shape)


def _small_integers(rng, shape):
    return rng.integers(-3, 4, size=shape).astype(float)


# One strategy per trial row, in turn: readable integers, wide reals, constants, positives, signed magnitudes.
TRIAL_STRATEGIES: tuple[masks.Strategy, ...] = (
    _normal, _normal, _small_integers, _small_integers,
    lambda rng, shape: rng.normal(size=shape) * 20,
    lambda rng, shape: np.full(shape, float(rng.integers(-2, 3))),
    lambda rng, shape: rng.uniform(0.1, 3.0, size=shape),
    lambda rng, shape: rng.integers(-1, 2, size=shape) * rng.uniform(0.5, 4.0, size=shape),
)


def largest_constant(claim: Claim) -> float:
    """The largest finite |constant| either side writes (a sentinel such as -1e6 standing in for -inf), or 0."""
    out = 0.0
    for side in (claim.lhs, claim.rhs):
        for e in [side.expr, *(b.expr for b in side.bindings.values())]:
            for n in ir.walk(e):
                if isinstance(n, ir.Const) and math.isfinite(n.value):
                    out = max(out, abs(n.value))
    return out


def strategies(claim: Claim) -> tuple[masks.Strategy, ...]:
    """TRIAL_STRATEGIES; for a claim with a constant beyond the trials' magnitudes (a finite sentinel -1e6 in place
    of -inf), one wide-real row is drawn at 4 * sqrt(c) instead, so that products of two inputs (scores) reach
    past it: the rows where a sentinel is not -inf (every kept score below it) are drawn too. Any candidate is
    still replayed and proved before it counts."""
    c = largest_constant(claim)
    if c <= 400:
        return TRIAL_STRATEGIES
    scale = 4 * math.sqrt(c)
    wide: masks.Strategy = lambda rng, shape: rng.normal(size=shape) * scale  # noqa: E731
    return TRIAL_STRATEGIES[:4] + (wide,) + TRIAL_STRATEGIES[5:]


def search(claim: Claim, assignments, *, prove_difference: ProveDifference, seed: int = 0,
           limit_seconds: float | None = None) -> Counterexample | None:
    """The first replayed counterexample over the assignments (smallest first), or None. If it is an edge case,
    an ordinary one is preferred (see the module docstring)."""
    start = time.monotonic()
    rng = np.random.default_rng(seed)
    edge: Counterexample | None = None
    edge_time = 0.0
    rows = strategies(claim)
    for sizes in assignments:
        if limit_seconds is not None and time.monotonic() - start > limit_seconds:
            break
        if edge is not None and time.monotonic() - edge_time > ORDINARY_SECONDS:
            break
        inputs = masks.draw_inputs(claim, sizes, rng, TRIALS, lambda shape: masks.rows(rng, shape, TRIALS, rows))
        lv, rv = side_values(claim, sizes, FLOAT, inputs, batch=TRIALS)
        bad = mismatches(lv, rv)
        bad = np.broadcast_to(bad, (TRIALS,) + bad.shape[1:])  # a claim without inputs has no trial axis
        with np.errstate(invalid="ignore"):
            finite = np.broadcast_to(np.isfinite(lv) & np.isfinite(rv), bad.shape)
        # Prefer readable trials: integer-valued ones first.
        order = [t for t in (2, 3, 5, 7, 0, 1, 4, 6) + tuple(range(8, TRIALS)) if t < TRIALS]
        seen = set()
        for t in order:
            if t in seen or not bad[t].any():
                continue
            seen.add(t)
            if edge is not None and not (bad[t] & finite[t]).any():
                continue
            if edge is not None and time.monotonic() - edge_time > ORDINARY_SECONDS:
                break
            trial = {name: values[t] for name, values in inputs.items()}
            cx = confirm(claim, sizes, trial, "numeric search", prove_difference=prove_difference,
                         ordinary=edge is not None)
            if cx is None:
                continue
            cx = shrink(claim, cx, trial, prove_difference=prove_difference,
                        ordinary=edge is not None or is_ordinary(cx))
            if is_ordinary(cx):
                cx.edge_case = edge
                return cx
            if edge is None:
                edge, edge_time = cx, time.monotonic()
    return edge


def _defined(cx: Counterexample) -> bool:
    """Both reported values are numbers: a difference a reader cannot put down to an undefined division."""
    return "nan" not in (cx.lhs_value, cx.rhs_value)


def replay(claim: Claim, sizes: dict[str, int], inputs: dict[str, np.ndarray]):
    """Both sides in mpmath; returns (lhs, rhs, position of the first real difference or None)."""
    mp = Mp()
    exact = {name: np.vectorize(lambda v: mp.const(float(v)), otypes=[object])(np.asarray(values, dtype=float))
             for name, values in inputs.items()}
    lv, rv = side_values(claim, sizes, mp, exact)
    for idx in np.ndindex(*lv.shape):
        a, b = lv[idx], rv[idx]
        if not _mp_same(mp, a, b):
            return lv, rv, idx
    return lv, rv, None


def _mp_same(mp: Mp, a, b) -> bool:
    return same_value(a, b, mp.mp.mpf(10) ** -30)


def confirm(claim: Claim, sizes, trial, found_by: str, *, prove_difference: ProveDifference,
            ordinary: bool = False) -> Counterexample | None:
    """A counterexample at these inputs, proved by `prove_difference`; with `ordinary`, only at a position
    where both sides are defined and finite."""
    lv, rv, idx = replay(claim, sizes, trial)
    if idx is None:
        return None
    only = None
    if ordinary:
        m = Mp().mp
        only = {i for i in np.ndindex(*lv.shape) if not (m.isnan(lv[i]) or m.isinf(lv[i]) or m.isnan(rv[i])
                                                          or m.isinf(rv[i])) and not _mp_same(Mp(), lv[i], rv[i])}
        if not only:
            return None
    idx = prove_difference(claim, sizes, trial, only=only)
    if idx is None:
        return None
    return make_counterexample(claim, sizes, trial, lv, rv, idx, found_by)


def _float(v) -> float:
    return float(v)


def make_counterexample(claim: Claim, sizes, trial, lv, rv, idx, found_by) -> Counterexample:
    vectorized = np.vectorize(_float, otypes=[float])

    def to_float(values):
        with np.errstate(invalid="ignore"):  # undefined results are NaN on purpose
            return vectorized(values)

    ranks = claim.out_ranks
    used = {r: sizes[r] for r in sorted(sizes)}
    return Counterexample(
        sizes=used,
        inputs={name: TensorValue.of(dict(claim.inputs)[name], np.asarray(v, dtype=float))
                for name, v in trial.items()},
        lhs=TensorValue.of(ranks, to_float(lv)),
        rhs=TensorValue.of(ranks, to_float(rv)),
        at={r: int(i) for r, i in zip(ranks, idx)},
        lhs_value=_scalar(lv[idx]),
        rhs_value=_scalar(rv[idx]),
        intermediates=intermediates(claim, sizes, trial),
        found_by=found_by,
        replayed=True,
    )


def _scalar(v):
    f = float(v)
    if math.isnan(f):
        return "nan"
    if math.isinf(f):
        return "-inf" if f < 0 else "inf"
    return f


def intermediates(claim: Claim, sizes, trial) -> dict[str, TensorValue]:
    """Every named `let` of each program side, evaluated in float64 (rules have none)."""
    out: dict[str, TensorValue] = {}
    for side in (claim.lhs, claim.rhs):
        if not side.bindings:
            continue
        ev = side.evaluator(sizes, FLOAT, trial)
        ev.ref("__result__")
        for name, tensor in ev.memo.items():
            binding = side.bindings.get(name)
            if binding is None or isinstance(binding.expr, ir.Input):
                continue
            if tensor.data.size <= 64:
                out[f"{_short(side.label)}.{name}"] = TensorValue.of(tensor.ranks, tensor.data)
    return out


def _short(label: str) -> str:
    return Path(label).stem if "/" in label or label.endswith(".egg") else label


def shrink(claim: Claim, cx: Counterexample, trial: dict[str, np.ndarray], *, prove_difference: ProveDifference,
           ordinary: bool = False) -> Counterexample:
    """Simplify the inputs while the replay still disagrees (at an ordinary position, with `ordinary`): round to
    integers, then zero single values. Mask inputs are kept as they are: zeroing a -inf element would change the
    pattern to one the claim's assumptions may exclude."""
    sizes = cx.sizes
    best = {k: np.array(v, dtype=float) for k, v in trial.items()}
    current = cx

    def attempt(candidate) -> bool:
        nonlocal best, current
        found = confirm(claim, sizes, candidate, cx.found_by, prove_difference=prove_difference, ordinary=ordinary)
        if found is not None and (_defined(found) or not _defined(current)):   # never shrink into an undefined value
            best, current = candidate, found
            return True
        return False

    rounded = {k: np.round(v) for k, v in best.items()}
    if any(not np.array_equal(rounded[k], best[k]) for k in best):
        attempt(rounded)
    for name in [n for n in best if n not in claim.masks]:
        for idx in np.ndindex(*best[name].shape):
            if best[name][idx] == 0:
                continue
            candidate = {k: v.copy() for k, v in best.items()}
            candidate[name][idx] = 0.0
            attempt(candidate)
    return current


def check_values(claim: Claim, sizes, trial) -> bool:
    """float64 evaluation of one trial: do the sides agree everywhere? (for quick numeric cross-checks)"""
    lv, rv = side_values(claim, sizes, FLOAT, trial)
    return all(same_value(a, b) for a, b in zip(lv.ravel(), rv.ravel()))
