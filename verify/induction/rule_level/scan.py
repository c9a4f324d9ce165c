"""The scan shape: `S_last_k(scan_k(init, body)) = E`, where E (the *reduction side*) reduces over k and reads
iterative values only through `S_last_k` (running max, online sum, online weighted sum).

The invariant is derived mechanically from E: ``Inv(n)`` is E with every reduction over k restricted to the prefix
``k < n`` and every ``S_last_k X`` read at ``X[n-1]`` (E over a prefix, with its last state replaced by the
state at the end of the prefix). The claim is that the scan state ``X[t] = Inv(t+1)`` for ``0 <= t < N_k``:

- base (t = 0): ``body[k=0]`` with ``S_prev`` replaced by `init` and ``S_shift_k(Y, fill)[0] = fill`` equals
  ``Inv(1)``, where a reduction over a one-element prefix is its element (-inf is simplified exactly, see
  `terms.simplify_inf`);
- step (1 <= t < N_k): ``body[k=t]`` with ``S_prev`` replaced by ``Inv(t)`` (the induction hypothesis,
  substituted) and ``S_shift_k(Y, fill)[t] = Y[t-1]`` equals ``Inv(t+1)``, where a reduction over the prefix
  ``k < t+1`` is ``(reduction over k < t) op g(t)`` (the recursive definition of a sum / max over a range,
  ground instance; the range k < t is nonempty since t >= 1).
Both are quantifier-free obligations of `prove.py` at symbolic t, sizes and output indices; the rebasing of the
running sums (``sum_{j<t} a_j exp(l_j - c') = exp(c - c') sum_{j<t} a_j exp(l_j - c)``) is the linearity lemma plus
the ground product rule of exp. Conclusion: ``S_last_k X = X[N_k - 1] = Inv(N_k)``, and ``Inv(N_k)`` is E itself
(the prefix is the whole range and ``X[N_k - 1]`` is ``S_last_k X``), for every N_k >= 1: an induction on t.

Outside the shape (NotLiftable): more than one scan, a scan whose last state is not the whole scan side, a scan
body that reads another iterative value than its own previous state and shifts of scan-free tensors, a
reduction side with scans or shifts.
"""

from __future__ import annotations

from typing import Any

import z3

from ... import ir
from .prove import Prover
from .terms import Env, NotLiftable, simplify_inf


def deref(expr, bindings):
    seen = 0
    while isinstance(expr, ir.Ref):
        if expr.name not in bindings or seen > 100:
            raise NotLiftable(f"reference to {expr.name}, which this side does not bind")
        expr = bindings[expr.name].expr
        seen += 1
    return expr


def _kinds(side) -> set:
    return {type(n) for n in side.nodes()}


def is_scan_claim(claim) -> bool:
    return any(ir.Scan in _kinds(s) or ir.Last in _kinds(s) or ir.Shift in _kinds(s) for s in (claim.lhs, claim.rhs))


def lift_scan(claim, env: Env, out_idx: dict, hyps: list, prover: Prover):
    """Obligations of the scan shape (see the module docstring); raises NotLiftable outside it."""
    scan_sides = [s for s in (claim.lhs, claim.rhs) if ir.Scan in _kinds(s)]
    if len(scan_sides) != 1:
        raise NotLiftable("the scan shape needs a scan on exactly one side")
    side = scan_sides[0]
    other = claim.rhs if side is claim.lhs else claim.lhs
    if _kinds(other) & {ir.Scan, ir.Prev, ir.Shift}:
        raise NotLiftable("the reduction side of a scan rule may not iterate")
    if sum(isinstance(n, ir.Scan) for n in side.nodes()) != 1:
        raise NotLiftable("more than one scan (only a single running state is derived mechanically)")
    last = deref(side.expr, side.bindings)
    if not isinstance(last, ir.Last):
        raise NotLiftable("the scan side is not the last state of a scan")
    scan = deref(last.arg, side.bindings)
    if not isinstance(scan, ir.Scan) or scan.rank != last.rank:
        raise NotLiftable("the scan side is not the last state of a scan")
    k = scan.rank
    for n in walk_refs(scan.body, side.bindings):
        if isinstance(n, (ir.Last, ir.Scan)):
            raise NotLiftable("the scan body reads a last state or another scan")
        if isinstance(n, ir.Reduce) and n.rank == k:          # (a view of it is index arithmetic: fine)
            raise NotLiftable(f"the scan body reduces its iterative rank {k}")
    n_k = env.size(k)
    env.allow_inf = True
    state: dict[str, Any] = {"prev": None, "base": True, "at": {}}

    def scan_eval(e: Env, expr, idx):
        match expr:
            case ir.Prev(rank=r, name=name) if r == k and name == scan.name:
                return read_prev(state, idx)
            case ir.Shift(rank=r, arg=arg, init=init) if r == k:
                if any(isinstance(n, (ir.Scan, ir.Prev)) for n in walk_refs(arg, side.bindings)):
                    raise NotLiftable("a shift of an iterative value")
                check_shift(state, arg, idx, k, side.bindings)
                if state["base"]:
                    return e.eval(init, idx)
                return e.eval(arg, {**idx, k: idx[k] - 1})
        raise NotLiftable(f"{type(expr).__name__} outside the scan shape")

    env.scan_eval = scan_eval

    def inv(mode, last_index):
        env.bindings = other.bindings
        env.prefix = {k: mode}
        env.last = {k: last_index}
        try:
            return simplify_inf(env.eval(other.expr, out_idx))
        finally:
            env.prefix, env.last = {}, {}

    def body_at(t, prev, base):
        env.bindings = side.bindings
        state["prev"], state["base"], state["at"] = prev, base, {**out_idx, k: t}
        return simplify_inf(env.eval(scan.body, {**out_idx, k: t}))

    zero = z3.IntVal(0)
    prev0 = simplify_inf(_eval_init(env, scan.init, side, out_idx))
    base_l = body_at(zero, prev0, True)
    base_r = inv(("one",), zero)
    ok_b, obs_b = prover.equal(base_l, base_r, hyps, f"scan.base ({scan.name}[0] = Inv(1))")
    t = z3.Int(f"t_{k}")
    step_hyps = hyps + [t >= 1, t < n_k]
    ih = inv(("upto", t), t - 1)
    step_l = body_at(t, ih, False)
    step_r = inv(("step", t), t)
    ok_s, obs_s = prover.equal(step_l, step_r, step_hyps, f"scan.step ({scan.name}[t] = Inv(t+1), t >= 1)")
    return ok_b and ok_s, obs_b + obs_s


def check_shift(state: dict, arg, idx: dict, k: str, bindings) -> None:
    """A shift is read as its fill in the base obligation and as its argument at t - 1 in the step (t >= 1):
    right only at the body's own index along k, and only for one level. A shift of a shift (its value at t is
    the inner fill for t < 2, which neither obligation sees) or a shift read elsewhere along k is outside the
    shape; nested shifts once certified a claim false from M1 = 5 on."""
    if any(isinstance(n, ir.Shift) and n.rank == k for n in walk_refs(arg, bindings)):
        raise NotLiftable(f"a shift of a shift along {k}")
    if k in state["at"] and (k not in idx or not idx[k].eq(state["at"][k])):
        raise NotLiftable(f"a shift read at another index of its rank {k}")


def read_prev(state: dict, idx: dict):
    """The previous state, which the obligations hold as one term at the body's own index `state["at"]`. A read
    at any other index (inside a reduction over another rank, say sum_p of prev) would silently be that same
    term, so it is outside the shape: a false "all sizes" once came from exactly that."""
    for rank, value in state["at"].items():
        if rank in idx and not idx[rank].eq(value):
            raise NotLiftable(f"the scan body reads its previous state at another index of rank {rank} "
                              "(e.g. inside a reduction over it)")
    return state["prev"]


def _eval_init(env: Env, init, side, out_idx):
    env.bindings = side.bindings
    return env.eval(init, out_idx)


def walk_refs(expr, bindings, seen=None):
    seen = set() if seen is None else seen
    for n in ir.walk(expr):
        yield n
        if isinstance(n, ir.Ref) and n.name not in seen and n.name in bindings:
            seen.add(n.name)
            yield from walk_refs(bindings[n.name].expr, bindings, seen)
