"""Guards against wrong verdicts: the checker checking itself.

1. Rigorous replay (`rigorous_difference`). A counterexample is reported only if the two sides *provably*
   differ at its inputs: both sides are evaluated in interval arithmetic with outward rounding (mpmath's
   directed-rounding primitives), and definedness is tracked three-valued (certainly defined, certainly
   undefined, unknown). A 60-digit replay alone is not enough: `(exp(a*b) + c) - exp(a*b)` loses `c` at 60
   digits once a*b is a few hundred, and `x / (exp(a)*exp(b) - exp(a+b))` divides by a rounding residue
   where the true denominator is 0. Precision grows with the magnitudes met, up to a cap; if the intervals
   still do not separate the sides, the candidate is dropped (never reported).
2. Vacuity guard (`vacuity_guard`), run once per process before a check run: the exp axioms of the Z3
   encoding must be satisfiable (else every Z3 "proof" would be vacuous), and canary false identities must be
   refuted by the whole pipeline, with neither the normal form nor Z3 claiming to prove them. If the guard
   fails, every verdict of the run becomes UNKNOWN.
3. Numeric cross-check (`cross_check`) of every CERTIFIED verdict: both sides evaluated at random points,
   including large magnitudes (|x| up to 50), negative values, exact and near ties of maxima, and the
   constants of the claim itself (zeros of `b - c` denominators). A float disagreement is replayed
   rigorously; a proven disagreement turns the verdict into ERROR (an internal error, never a pass).
4. `preflight`: size plans are computed before any child process starts, so an absurd bound is one user
   error (exit status 2), not one ERROR per claim.
5. `limit_memory`: the address-space cap a claim's child process runs under.
"""

from __future__ import annotations

import math
import time

import numpy as np
from mpmath.libmp import (
    finf,
    fnan,
    fninf,
    from_float,
    fzero,
    mpf_add,
    mpf_cmp,
    mpf_div,
    mpf_exp,
    mpf_log,
    mpf_mul,
    mpf_neg,
    mpf_sign,
    mpf_sub,
    round_ceiling,
    round_floor,
)

from .evaluate import ObjectAlgebra, mismatches

# -- 1. rigorous replay ---------------------------------------------------------------------------------------
#
# Abstract values (`Val`; not tuples, so that numpy keeps them as scalars):
#   kind "u"            certainly undefined
#   kind "t"            unknown: maybe undefined, any value
#   kind "i", lo = +-1  exactly +inf / -inf
#   kind "f", lo, hi    certainly defined and finite, lo <= value <= hi (raw mpf tuples)


class Val:
    __slots__ = ("kind", "lo", "hi")

    def __init__(self, kind: str, lo=None, hi=None):
        self.kind, self.lo, self.hi = kind, lo, hi

    def __eq__(self, other) -> bool:
        return isinstance(other, Val) and (self.kind, self.lo, self.hi) == (other.kind, other.lo, other.hi)

    def __hash__(self) -> int:
        return hash((self.kind, self.lo, self.hi))

    def __repr__(self) -> str:
        if self.kind == "f":
            from mpmath.libmp import to_str

            return f"[{to_str(self.lo, 12)}, {to_str(self.hi, 12)}]"
        return {"u": "undefined", "t": "unknown"}.get(self.kind, "+inf" if self.lo == 1 else "-inf")


UNDEF = Val("u")
TOP = Val("t")
NEG_INF = Val("i", -1)
POS_INF = Val("i", 1)
ZERO = Val("f", fzero, fzero)


def _is_zero(v: Val) -> bool:
    return v.kind == "f" and v.lo == fzero and v.hi == fzero


def _sign(v: Val) -> int | None:
    """+1 / -1 if the finite interval is certainly positive / negative, 0 if it is exactly 0, else None."""
    if _is_zero(v):
        return 0
    if mpf_sign(v.lo) > 0:
        return 1
    if mpf_sign(v.hi) < 0:
        return -1
    return None


def _min(xs):
    out = xs[0]
    for x in xs[1:]:
        if mpf_cmp(x, out) < 0:
            out = x
    return out


def _max(xs):
    out = xs[0]
    for x in xs[1:]:
        if mpf_cmp(x, out) > 0:
            out = x
    return out


class IntervalAlgebra(ObjectAlgebra):
    """Interval arithmetic with outward rounding at `prec` bits, following the evaluator's conventions."""

    name = "interval"

    def __init__(self, prec: int = 192):
        super().__init__()
        self.prec = prec
        self.max_bits = 0   # largest binary exponent met (to choose the precision of the next attempt)
        one = from_float(1.0)
        eps = (0, 1, -(prec - 3), 1)  # 2^-(prec-3): widening for exp, in case it is not correctly rounded
        self._down = mpf_sub(one, eps, prec, round_floor)
        self._up = mpf_add(one, eps, prec, round_ceiling)

    def const(self, value):
        value = float(value)
        if math.isnan(value):
            return UNDEF
        if math.isinf(value):
            return POS_INF if value > 0 else NEG_INF
        m = from_float(value)
        return Val("f", m, m)

    def _slack(self, m):
        """2^-(prec-8) * (1 + |m|): absolute widening for functions that may not round correctly."""
        bits = (m[2] + m[3]) if m != fzero else 0
        return (0, 1, max(bits, 0) - (self.prec - 8), 1)

    def _finite(self, lo, hi) -> Val:
        if lo in (fnan, fninf, finf) or hi in (fnan, fninf, finf):
            return TOP  # cannot happen with finite operands; be safe
        for m in (lo, hi):
            if m != fzero:
                self.max_bits = max(self.max_bits, m[2] + m[3])
        return Val("f", lo, hi)

    def scalar(self, op, *x):
        if any(v.kind == "u" for v in x):
            return UNDEF
        if any(v.kind == "t" for v in x):
            return TOP
        p = self.prec
        match op:
            case "exp":
                (a,) = x
                if a.kind == "i":
                    return ZERO if a.lo < 0 else POS_INF
                lo = mpf_mul(mpf_exp(a.lo, p, round_floor), self._down, p, round_floor)
                hi = mpf_mul(mpf_exp(a.hi, p, round_ceiling), self._up, p, round_ceiling)
                return self._finite(lo, hi)
            case "add" | "sub":
                a, b = x
                if op == "sub":
                    b = Val("i", -b.lo) if b.kind == "i" else Val("f", mpf_neg(b.hi), mpf_neg(b.lo))
                if a.kind == "i" and b.kind == "i":
                    return a if a.lo == b.lo else UNDEF
                if a.kind == "i":
                    return a
                if b.kind == "i":
                    return b
                return self._finite(mpf_add(a.lo, b.lo, p, round_floor), mpf_add(a.hi, b.hi, p, round_ceiling))
            case "mul":
                a, b = x
                if a.kind == "i" or b.kind == "i":
                    if a.kind == "i" and b.kind == "i":
                        return Val("i", a.lo * b.lo)
                    inf, other = (a, b) if a.kind == "i" else (b, a)
                    s = _sign(other)
                    if s == 0:
                        return UNDEF        # inf * 0
                    if s is None:
                        return TOP
                    return Val("i", inf.lo * s)
                ends = [(u, v) for u in (a.lo, a.hi) for v in (b.lo, b.hi)]
                lo = _min([mpf_mul(u, v, p, round_floor) for u, v in ends])
                hi = _max([mpf_mul(u, v, p, round_ceiling) for u, v in ends])
                return self._finite(lo, hi)
            case "div":
                a, b = x
                if b.kind == "i":
                    return UNDEF if a.kind == "i" else ZERO
                s = _sign(b)
                if s == 0:
                    return UNDEF            # x / 0
                if s is None:
                    return TOP              # the denominator may be 0
                if a.kind == "i":
                    return Val("i", a.lo * s)
                ends = [(u, v) for u in (a.lo, a.hi) for v in (b.lo, b.hi)]
                lo = _min([mpf_div(u, v, p, round_floor) for u, v in ends])
                hi = _max([mpf_div(u, v, p, round_ceiling) for u, v in ends])
                return self._finite(lo, hi)
            case "max":
                a, b = x
                if a == NEG_INF or b == POS_INF:
                    return b
                if b == NEG_INF or a == POS_INF:
                    return a
                return Val("f", _max([a.lo, b.lo]), _max([a.hi, b.hi]))
            case "fin":             # fin(-inf) = 0, fin(x) = x otherwise
                (a,) = x
                return ZERO if a == NEG_INF else a
            case "log":             # log(0) = -inf, log(x < 0) undefined
                (a,) = x
                if a.kind == "i":
                    return a if a.lo > 0 else UNDEF
                s = _sign(a)
                if s == 0:
                    return NEG_INF
                if s == -1:
                    return UNDEF
                if s is None:
                    return TOP
                lo, hi = mpf_log(a.lo, p, round_floor), mpf_log(a.hi, p, round_ceiling)
                return self._finite(mpf_sub(lo, self._slack(lo), p, round_floor),
                                    mpf_add(hi, self._slack(hi), p, round_ceiling))
        return TOP  # an operator this replay does not know: never a proven difference


def certainly_differ(a: Val, b: Val) -> bool:
    if a.kind == "t" or b.kind == "t":
        return False
    if a.kind == "u" or b.kind == "u":
        return a.kind != b.kind
    if a.kind == "i" or b.kind == "i":
        return a != b
    return mpf_cmp(a.hi, b.lo) < 0 or mpf_cmp(b.hi, a.lo) < 0


def _settled(v: Val, prec: int) -> bool:
    """Is the value as sharp as this precision can make it (so more precision cannot separate it)?"""
    if v.kind != "f":
        return v.kind != "t"
    width = mpf_sub(v.hi, v.lo, 64, round_ceiling)
    scale = _max([mpf_neg(v.lo) if mpf_sign(v.lo) < 0 else v.lo, mpf_neg(v.hi) if mpf_sign(v.hi) < 0 else v.hi,
                  from_float(1.0)])
    limit = mpf_mul(scale, (0, 1, -(prec // 2), 1), 64, round_floor)
    return mpf_cmp(width, limit) <= 0


MAX_PREC = 1 << 16       # bits; exp of a few thousand needs about 10^4
RIGOROUS_SECONDS = 20.0  # a replay that takes longer gives up (the candidate is dropped)


def rigorous_difference(claim, sizes: dict[str, int], inputs: dict[str, np.ndarray],
                        seconds: float = RIGOROUS_SECONDS, only=None):
    """An output position where the two sides provably differ at these inputs (one of `only`, if given), or
    None."""
    from .claims import aligned_pair, evaluate_both

    start = time.monotonic()
    prec = 192
    for attempt in range(3):  # 192 bits; then enough for the magnitudes met; then 4x that
        alg = IntervalAlgebra(prec)
        exact = {name: _to_intervals(alg, v) for name, v in inputs.items()}
        left, right = evaluate_both(claim, sizes, alg, exact)
        lv, rv = aligned_pair(claim, left, right)
        lv, rv = np.broadcast_arrays(lv, rv)
        settled = True
        for idx in np.ndindex(*lv.shape):
            a, b = lv[idx], rv[idx]
            if (only is None or idx in only) and certainly_differ(a, b):
                return idx
            if not (_settled(a, prec) and _settled(b, prec)):
                settled = False
        if settled or prec >= MAX_PREC or time.monotonic() - start > seconds:
            return None
        prec = min(MAX_PREC, max(4 * prec, 2 * alg.max_bits + 256) if attempt == 0 else 4 * prec)
    return None


def _to_intervals(alg: IntervalAlgebra, values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    out = np.empty(values.shape, dtype=object)
    for idx in np.ndindex(*values.shape):
        out[idx] = alg.const(float(values[idx]))
    return out


# -- 2. vacuity guard -----------------------------------------------------------------------------------------

# Canary false identities: the pipeline must refute each, and neither the normal form nor Z3 may prove them.
CANARIES = [
    ("canary: max(a, b) = a", "(rewrite (M_max_p a b) a)"),
    ("canary: exp(a)*exp(b) = exp(a*b)", "(rewrite (M_mul_p (M_exp_p a) (M_exp_p b)) (M_exp_p (M_mul_p a b)))"),
    ("canary: sum over m of x = x (needs M >= 2)",
     '(rewrite (R_add_m (M_max_mp (CreateTensor "X[p]") (CreateTensor "X[p]"))) (CreateTensor "X[p]"))'),
    ("canary: (a / b) * b = a (needs b = 0)", "(rewrite (M_mul_p (M_div_p a b) b) a)"),
    ("canary: exp(s - GM) = exp(BQK - LM) (needs 2 tiles)",
     "(rewrite (T_split_m_m1m0 (M_exp_mp (M_sub_mp s (R_max_m s))) t) "
     "(M_exp_m1m0p (M_sub_m1m0p (T_split_m_m1m0 s t) (R_max_m0 (T_split_m_m1m0 s t)))))"),
    ("canary: layout m0-major (needs non-square tiles)",
     "(rewrite (T_unsplit_m0m1_m (T_split_m_m1m0 x t)) (T_unsplit_m1m0_m (T_split_m_m0m1 x t)))"),
    ("canary: x + (B - B) = x for a mask B (needs B = -inf; z3 decides the pattern)",
     '(rewrite (M_add_mp x (M_sub_mp (CreateTensor "B[m,p]:mask") (CreateTensor "B[m,p]:mask"))) x)'),
]

_GUARD: tuple[bool, str] | None = None


def reset_guard_cache() -> None:
    global _GUARD
    _GUARD = None


def _z3_axioms_satisfiable() -> str | None:
    import z3

    from . import smt

    alg = smt.Z3Algebra()
    a, b = alg.input("a", (0,)), alg.input("b", (0,))
    zero = alg.const(0.0)
    terms = [a, b, alg.scalar("add", a, b), alg.scalar("sub", a, b), alg.scalar("sub", b, a), zero,
             alg.scalar("mul", a, b)]
    for t in terms:
        alg.scalar("exp", t)
    solver = z3.Solver()
    solver.set("timeout", 10_000)
    solver.add(*alg.axioms())
    answer = solver.check()
    if answer != z3.sat:
        return f"the exp axioms of the z3 encoding are {answer} on their own: every z3 proof would be vacuous"
    return None


def canary_claims() -> list:
    """(label, claim) for every canary. Parsed in the calling process: egglog's parser must not be used for
    the first time in a forked child (it can deadlock there)."""
    from .claims import rule_claim
    from .reader import read_text

    return [(label, rule_claim(read_text(text, "<canary>").rules[0])) for label, text in CANARIES]


def _check_canary(label: str, claim) -> str | None:
    from . import driver, smt
    from .claims import Bound
    from .verdict import Verdict

    options = driver.Options(bound=Bound(), sympy=False, isolate=False, seed=0)
    result = driver.prove_bounded(claim, options)
    if result.verdict is not Verdict.REFUTED or result.counterexample is None:
        return f"{label}: the pipeline says {result.verdict.value}, not REFUTED"
    cx = result.counterexample
    inputs = {n: np.array(t.values, dtype=float) for n, t in cx.inputs.items()}
    if rigorous_difference(claim, cx.sizes, inputs) is None:
        return f"{label}: its counterexample does not replay"
    pattern = {m: inputs[m] for m in claim.masks} or None     # masks: the counterexample's own pattern
    if driver._normal_form_equal(claim, cx.sizes, pattern):
        return f"{label}: the normal form proves it at {cx.sizes}"
    status, _ = smt.decide(claim, cx.sizes, 10_000, fixed=pattern)
    if status == "proved":
        return f"{label}: z3 proves it at {cx.sizes}"
    return None


def _run_guard(canaries) -> tuple[bool, str]:
    problems = []
    try:
        problem = _z3_axioms_satisfiable()
        if problem:
            problems.append(problem)
        for label, claim in canaries:
            problem = _check_canary(label, claim)
            if problem:
                problems.append(problem)
    except Exception as exc:  # a guard that cannot run is a failed guard
        problems.append(f"the guard itself failed: {type(exc).__name__}: {exc}")
    if problems:
        return False, "; ".join(problems)
    return True, f"z3 exp axioms satisfiable; {len(CANARIES)} canary false identities refuted"


def vacuity_guard(options=None) -> tuple[bool, str]:
    """(ok, detail), computed once per process (in a killable child when `options.isolate`)."""
    global _GUARD
    if _GUARD is None:
        from . import driver

        isolate = getattr(options, "isolate", False)
        try:
            canaries = canary_claims()
        except Exception as exc:  # a canary that cannot be read is a failed guard
            canaries = None
            outcome = (False, f"the canaries cannot be read: {type(exc).__name__}: {exc}")
        if canaries is not None:
            outcome = driver.run_isolated(_run_guard, (canaries,), 120.0, isolate)
        if isinstance(outcome, driver._Failure):
            outcome = (False, f"the guard did not complete: {outcome.detail}")
        _GUARD = outcome
    return _GUARD


def apply_guard(results, ok: bool, detail: str):
    """Every verdict of a run whose guard failed becomes UNKNOWN."""
    from .verdict import Verdict

    if ok:
        return results
    for r in results:
        if r.verdict is not Verdict.UNKNOWN:
            r.engines["vacuity guard"] = f"failed (verdict was {r.verdict.value})"
        r.verdict = Verdict.UNKNOWN
        r.detail = f"vacuity guard failed: {detail}"
    return results


# -- 3. numeric cross-check of CERTIFIED verdicts -------------------------------------------------------------

CROSS_TRIALS = 16
MAX_CROSS_ELEMENTS = 50_000     # input elements x trials per assignment for the float pass
MAX_RIGOROUS = 3                # float disagreements replayed rigorously per claim


def _claim_constants(claim) -> list[float]:
    from . import ir

    found = {0.0, 1.0, -1.0}
    for side in (claim.lhs, claim.rhs):
        for node in side.nodes():
            if isinstance(node, ir.Const) and math.isfinite(node.value):
                found.update((node.value, -node.value))
    return sorted(found)


def cross_values(rng: np.random.Generator, shape, constants) -> np.ndarray:
    """CROSS_TRIALS rows of values, each row drawn by one strategy."""
    rows = []
    for t in range(CROSS_TRIALS):
        kind = t % 8
        if kind == 0:
            rows.append(rng.uniform(-50, 50, size=shape))
        elif kind == 1:
            rows.append(np.clip(rng.normal(size=shape) * 20, -50, 50))
        elif kind == 2:   # near ties: one value plus tiny noise (maxima almost equal)
            base = rng.uniform(-50, 50)
            rows.append(base + rng.integers(-1, 2, size=shape) * 10.0 ** -rng.integers(6, 12))
        elif kind == 3:   # exact ties and small integers
            rows.append(rng.integers(-3, 4, size=shape).astype(float))
        elif kind == 4:
            rows.append(-rng.uniform(0, 50, size=shape))
        elif kind == 5:
            rows.append(rng.uniform(30, 50, size=shape) * rng.choice([-1.0, 1.0], size=shape))
        elif kind == 6:   # the claim's own constants: zeros of denominators such as (b - c)
            rows.append(rng.choice(np.array(constants), size=shape))
        else:
            rows.append(rng.choice([-1.0, 1.0], size=shape) * 10.0 ** rng.uniform(-3, 1.7, size=shape))
    return np.stack(rows).astype(float)


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


def cross_check(claim, options, sizes_list, result):
    """Re-evaluate a CERTIFIED claim at random points; a proven disagreement makes it ERROR."""
    from . import masks, refute
    from .claims import aligned_pair, evaluate_both
    from .evaluate import FLOAT
    from .verdict import Verdict

    if result.verdict is not Verdict.CERTIFIED:
        return result
    rng = np.random.default_rng(options.seed + 7919)
    constants = _claim_constants(claim)
    points = 0
    used = 0
    unconfirmed = 0
    rigorous = 0
    for sizes in _pick_assignments(sizes_list, rng):
        n_inputs = sum(int(np.prod([sizes[r] for r in ranks])) for _, ranks in claim.inputs)
        if n_inputs * CROSS_TRIALS > MAX_CROSS_ELEMENTS and used:
            continue
        used += 1
        inputs = masks.draw(claim, sizes, rng, CROSS_TRIALS, lambda shape: cross_values(rng, shape, constants))
        left, right = evaluate_both(claim, sizes, FLOAT, inputs, batch=CROSS_TRIALS)
        lv, rv = aligned_pair(claim, left, right, batch=True)
        lv, rv = np.broadcast_arrays(lv, rv)
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
            result.verdict = Verdict.ERROR
            result.detail = (f"internal error: certified, but the numeric cross-check finds the sides provably "
                             f"different at {where} (interval replay)")
            result.counterexample = refute.confirm(claim, sizes, trial, "numeric cross-check")
            result.engines["numeric cross-check"] = f"DISAGREES at {where}"
            return result
    note = f"agrees at {points} random points over {used} size assignments"
    if unconfirmed:
        note += f" ({unconfirmed} float disagreements from rounding/overflow, none confirmed by interval replay)"
    result.engines["numeric cross-check"] = note
    return result


# -- 4. preflight ---------------------------------------------------------------------------------------------

def preflight(claims, options) -> None:
    """Plan every claim up front: an absurd bound raises one BoundError (exit status 2)."""
    from . import claims as C
    from .errors import VerifyError

    for claim in claims:
        try:
            bound = C.effective_bound(claim, options.bound) if hasattr(C, "effective_bound") else options.bound
            C.plan(claim, bound)
        except VerifyError as exc:
            raise exc.located(claim.location) from None


# -- 5. memory ------------------------------------------------------------------------------------------------

def limit_memory(cap_bytes: int | None) -> None:
    """Cap this process's address space (a runaway SymPy or Z3 then fails with MemoryError, or dies)."""
    if not cap_bytes:
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = int(cap_bytes)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
