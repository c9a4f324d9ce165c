"""Unbounded certificates at the rule level: a claim's own IR -> quantifier-free Z3 obligations -> all sizes.

`lift(claim)` classifies a claim into a shape with a lemma and discharges the obligations generated from the
claim's two sides (never from a hand model):

- *view / pointwise* (split, unsplit, maps): both sides read at symbolic sizes and symbolic indices, inputs as
  uninterpreted functions of integer indices, ``m = m1*N_m0 + m0`` (terms.py). No lemma beyond index arithmetic.
- *reduction split* over any rank (sum and max): the split.sum / split.max lemmas (uninterpreted summand,
  proved by induction in `verify/induction/twopass.py`) flatten a reduction over tiles of tile reductions into one
  reduction over the split rank; then reduction congruence (prove.py).
- *factor-out / division deferral / shift*: the linearity lemma, with "constant along the reduced rank" read from
  the terms (no index variable of the reduction occurs in the factor); exp is split into the part that varies
  and the part that does not. Positivity makes sums of exponentials valid divisors.
- *scan* (running max, online sums): the invariant is the other side over a prefix (scan.py); base and step.
- *scans by closed forms* (programs with several scans, e.g. the 1-pass cascade): each scan's closed form is
  proposed by its body's pattern and proved by base and step; then the sides are compared (closed.py).

Every rank is symbolic, so a lifted claim holds for all sizes of every rank: no rank is pinned and no
slice-independence argument is used. Claims with mask inputs are never lifted (a mask's -inf elements are not
finite reals, and an assumption ties the slices of a mask together); they keep their bounded certificate. The
lemma groups a lift uses are proved (by induction, `verify/induction/`) as part of it and named in the verdict.

A ``sat`` answer of Z3 is NOT a counterexample (the reductions are abstracted); the claim is then not lifted and
says why. The bounded checker remains the judge of refutation.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Literal

import z3

from ... import ir
from ...sizes import SizeBound
from ..obligations import VARIANTS, LemmaVerdict
from ..twopass import interchange, linearity_positivity, split_max, split_sum
from .closed import lift_closed
from .masked import lift_masked, warm_masked
from .prove import Obligation, ObligationVerdict, Prover
from .scan import is_scan_claim, lift_scan
from .terms import Env, NotLiftable

__all__ = ["Lift", "LiftStatus", "lift", "lemma_obligations", "NotLiftable"]


# "failed": the claim's own obligations are proved but an induction lemma its shape uses is not
LiftStatus = Literal["lifted", "not lifted", "failed"]


@dataclass
class Lift:
    status: LiftStatus
    shape: str = ""                   # e.g. "reduction split"
    lemmas: tuple[str, ...] = ()      # lemma groups used (split.sum, split.max, linearity, positivity)
    ranks: tuple[str, ...] = ()       # every rank of the claim, all symbolic
    obligations: list[Obligation] = field(default_factory=list)
    lemma_obligations: list[tuple[str, LemmaVerdict]] = field(default_factory=list)   # induction lemmas used
    seconds: float = 0.0
    reason: str = ""

    @property
    def lifted(self) -> bool:
        return self.status == "lifted"

    def bound(self) -> SizeBound:
        return SizeBound.every(f"{', '.join(r.upper() for r in self.ranks) or 'no rank'} symbolic")

    def bound_text(self) -> str:
        return str(self.bound())

    def method_text(self) -> str:
        lemmas = f" [{', '.join(self.lemmas)}]" if self.lemmas else ""
        # no timing here: the method is part of the verdict (and of certificates), the same on every run;
        # the time is in the result's engines["unbounded"]
        return f"unbounded: {self.shape}{lemmas} ({len(self.obligations)} obligations)"


_LEMMAS: dict | None = None
_LOCK = threading.Lock()      # z3's global context is not thread-safe (`--jobs` runs claims in threads)


def lemma_obligations() -> dict[str, list]:
    """The induction lemmas behind the shapes (verify/induction/twopass.py), proved once per process. The driver calls
    it before it starts threads or forks children, so that no child is forked while z3 runs in the parent."""
    global _LEMMAS
    with _LOCK:
        if _LEMMAS is None:
            _LEMMAS = _prove_lemmas()
            # the masked models are read (egglog) and their lemmas proved here too, in the parent: a forked child
            # that starts egglog's parser after the parent used it can hang (measured: a 60 s timeout)
            warm_masked()
    return _LEMMAS


def _prove_lemmas() -> dict[str, list]:
    v = VARIANTS["correct"]
    lp = linearity_positivity(v)
    return {
        "split.sum": split_sum(v),
        "split.max": split_max(v),
        "linearity": [o for o in lp if o.name.startswith("linearity")],
        "positivity": [o for o in lp if o.name.startswith("positivity")],
        "interchange": interchange(v),
    }


def _shape(lemmas: set, scan: bool | str, reductions: bool) -> str:
    if scan == "closed":
        return "scans by closed forms (running max, rescaled running sum; base and step each)"
    if scan:
        return "scan (invariant: the other side over a prefix; base and step)"
    if any(x.startswith("split.") for x in lemmas):
        return "reduction split"
    if "linearity" in lemmas:
        return "factor-out (linearity)"
    if reductions:
        return "reduction congruence"
    return "view/pointwise (symbolic indices)"


def lift(claim) -> Lift:
    start = time.monotonic()
    try:
        out = _lift(claim)
    except NotLiftable as exc:
        out = Lift("not lifted", reason=str(exc))
    except z3.Z3Exception as exc:
        out = Lift("not lifted", reason=f"z3: {exc}")
    out.seconds = time.monotonic() - start
    return out


def _lift_masked(claim) -> Lift:
    """Masked attention cascades by their own argument (masked.py): the tile cases plus the lemmas it uses."""
    found = lift_masked(claim)
    ranks = found.ranks or tuple(claim.ranks())
    if found.reason:
        return Lift("not lifted", found.shape, (), ranks, found.obligations, reason=found.reason)
    bad = [o.name for o in found.obligations if o.verdict is not ObligationVerdict.PROVED]
    if bad:
        return Lift("not lifted", found.shape, (), ranks, found.obligations,
                    reason=f"obligations not proved: {', '.join(bad)}")
    proved = lemma_obligations()
    used = [(o.name, o.verdict) for g in found.lemmas for o in proved.get(g, [])]
    failed = [n for n, v in used if v is not LemmaVerdict.PROVED]
    if failed:
        return Lift("failed", found.shape, found.lemmas, ranks, found.obligations, used,
                    reason=f"lemma(s) not proved: {', '.join(failed)}")
    return Lift("lifted", found.shape, found.lemmas, ranks, found.obligations, used)


def _lift(claim) -> Lift:
    # index tensors (`:index(m - p)`) are finite reals: read as uninterpreted inputs, which proves the claim for
    # every real tensor in their place, theirs included; only true masks need the masked argument
    if any(isinstance(n, ir.Input) and n.kind == "mask" for s in (claim.lhs, claim.rhs) for n in s.nodes()):
        return _lift_masked(claim)
    env = Env(claim.splits())
    hyps: list = []
    out_idx = {}
    for r in claim.out_ranks:
        i = z3.Int(f"i_{r}")
        out_idx[r] = i
        hyps += [i >= 0, i < env.size(r)]
    for r in claim.ranks():
        env.size(r)
    prover = Prover(env, claim.name)
    scan: bool | str = is_scan_claim(claim)
    if scan:
        try:
            ok, obs = lift_scan(claim, env, out_idx, hyps, prover)
        except NotLiftable as single:
            env = Env(claim.splits())          # afresh: several scans, each by its proved closed form
            for r in claim.ranks():
                env.size(r)
            prover = Prover(env, claim.name)
            scan = "closed"
            try:
                ok, obs = lift_closed(claim, env, out_idx, hyps, prover)
            except NotLiftable as several:
                raise NotLiftable(f"{single}; as scans with closed forms: {several}") from None
    else:
        env.bindings = claim.lhs.bindings
        left = env.eval(claim.lhs.expr, out_idx)
        env.bindings = claim.rhs.bindings
        right = env.eval(claim.rhs.expr, out_idx)
        ok, obs = prover.equal(left, right, hyps, "sides equal")
    reductions = any(isinstance(n, ir.Reduce) for s in (claim.lhs, claim.rhs) for n in s.nodes())
    lemmas = set(env.lemmas)
    shape = _shape(lemmas, scan, reductions)
    ranks = tuple(claim.ranks())
    if not ok:
        bad = [o for o in obs if o.verdict is not ObligationVerdict.PROVED]
        why = "; ".join(f"{o.name}: {o.verdict} ({o.detail})" for o in bad[:2])
        return Lift("not lifted", shape, tuple(sorted(lemmas)), ranks, obs,
                    reason=f"the {shape} obligations are not proved: {why}")
    proved = lemma_obligations()
    used = [(o.name, o.verdict) for g in sorted(lemmas) for o in proved.get(g, [])]
    failed = [n for n, v in used if v is not LemmaVerdict.PROVED]
    if failed:
        return Lift("failed", shape, tuple(sorted(lemmas)), ranks, obs, used,
                    reason=f"lemma(s) not proved: {', '.join(failed)}")
    return Lift("lifted", shape, tuple(sorted(lemmas)), ranks, obs, used)
