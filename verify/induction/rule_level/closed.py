"""Programs with several scans (the 1-pass cascades): each scan gets a closed form, proved by induction, and is
then read through it.

For every scan X over rank k a candidate closed form E_X (an IR expression) is read off its body by pattern:

- running max: ``X[t] = max(X[t-1], L[t])``, ``X[-1] = -inf``          ->  ``E = R_max_k L``
- rescaled running sum: ``X[t] = A[t] + X[t-1] * exp(shift(C)[t] - C[t])``, ``X[-1]`` any finite constant (0, or
  the Triton tutorial's 1.0: the first correction is exp(-inf - C[0]) = 0), shift filling with -inf  ->
  ``E = R_add_k (A * exp(C - S_last_k C))`` (the product of the corrections telescopes).

The pattern only proposes E; it proves nothing. The claim ``X[t] = Inv_E(t+1)`` for 0 <= t < N_k (E over the
prefix k < t+1, its ``S_last_k`` read at t, exactly as in scan.py) is then discharged by the scan shape's base
and step obligations, with the scans E_X mentions already replaced by their own proved closed forms (scans are
proved in dependency order; a cycle is outside the shape). After that every read of X at index t (a reference
at rank index t, or ``S_last_k X`` at t = N_k - 1) is ``Inv_E(t+1)``: a prefix reduction of size t + 1. Both sides
of the claim are then compared by prove.py at symbolic sizes, like any other claim.
"""

from __future__ import annotations

import z3

from ... import ir
from .prove import Prover
from .scan import check_shift, deref, read_prev
from .scan import walk_refs as _walk
from .terms import Env, NotLiftable, simplify_inf


def _is_const(expr, bindings, value) -> bool:
    e = deref(expr, bindings)
    return isinstance(e, ir.Const) and e.value == value


def candidate(scan: ir.Scan, bindings) -> ir.Expr:
    """The closed form the body's pattern proposes (see the module docstring), or NotLiftable."""
    k = scan.rank
    body = deref(scan.body, bindings)
    prev = lambda e: isinstance(deref(e, bindings), ir.Prev) and deref(e, bindings).name == scan.name  # noqa: E731
    if isinstance(body, ir.Map) and body.op == "max" and len(body.args) == 2 and \
            _is_const(scan.init, bindings, float("-inf")):
        a, b = body.args
        if prev(a) != prev(b):
            return ir.Reduce("max", k, b if prev(a) else a)
    # Any finite initial sum: the first correction exp(-inf - C[0]) is 0 whatever it multiplies (the Triton
    # tutorial starts its running sum at 1.0). Only a proposal: the base obligation evaluates the real init.
    init = deref(scan.init, bindings)
    if isinstance(body, ir.Map) and body.op == "add" and len(body.args) == 2 and isinstance(init, ir.Const) and \
            init.value == init.value and abs(init.value) != float("inf"):
        for a, m in (body.args, body.args[::-1]):
            m = deref(m, bindings)
            if not (isinstance(m, ir.Map) and m.op == "mul" and len(m.args) == 2):
                continue
            for p, g in (m.args, m.args[::-1]):
                g = deref(g, bindings)
                if not prev(p) or not (isinstance(g, ir.Map) and g.op == "exp"):
                    continue
                d = deref(g.args[0], bindings)
                if not (isinstance(d, ir.Map) and d.op == "sub"):
                    continue
                sh, c = deref(d.args[0], bindings), d.args[1]
                if isinstance(sh, ir.Shift) and sh.rank == k and _is_const(sh.init, bindings, float("-inf")) and \
                        deref(sh.arg, bindings) == deref(c, bindings):
                    corr = ir.Map("exp", (), (ir.Map("sub", (), (c, ir.Last(k, c))),))
                    return ir.Reduce("add", k, ir.Map("mul", (), (a, corr)))
    raise NotLiftable(f"scan {scan.name}: its body fits no closed-form pattern (running max, rescaled running sum)")


def lift_closed(claim, env: Env, out_idx: dict, hyps: list, prover: Prover):
    sides = (claim.lhs, claim.rhs)
    # (side's bindings, scan node) -> bindings: a scan's body names lets of ITS side (equal IR on the other side
    # may name other lets), so a scan is always looked up together with the bindings it is read under
    scans: dict = {}
    for side in sides:
        for n in _walk(side.expr, side.bindings):
            if isinstance(n, ir.Scan):
                scans.setdefault((id(side.bindings), n), side.bindings)
    if not scans:
        raise NotLiftable("no scan")
    for (_, s), b in scans.items():
        for n in _walk(s.body, b):
            if isinstance(n, ir.Reduce) and n.rank == s.rank:     # (a view of it is index arithmetic: fine)
                raise NotLiftable(f"scan {s.name}: its body reduces its iterative rank {s.rank}")
    order, pending = [], dict(scans)
    while pending:                       # dependency order: a scan after the scans its body reads
        ready = [key for key, b in pending.items()
                 if not any(isinstance(n, ir.Scan) and (id(b), n) in pending and n != key[1]
                            for n in _walk(key[1].body, b))]
        if not ready:
            raise NotLiftable("scans that read each other (a cycle)")
        for key in ready:
            order.append(key)
            del pending[key]
    env.allow_inf = True
    env.closed = {}
    state: dict = {"scan": None, "prev": None, "base": True, "at": {}}

    def closed_at(e: Env, s, t, idx):
        expr, bindings = e.closed[(id(e.bindings), s)]
        saved = (e.prefix, e.last, e.bindings)
        size = z3.simplify(t + 1)
        whole = size.eq(e.size(s.rank))          # the prefix is the whole range: a plain reduction (may flatten)
        e.prefix, e.last, e.bindings = ({} if whole else {s.rank: ("upto", size)}), {s.rank: t}, bindings
        try:
            return e.eval(expr, {r: v for r, v in idx.items() if r != s.rank})
        finally:
            e.prefix, e.last, e.bindings = saved

    def scan_eval(e: Env, expr, idx):
        match expr:
            case ir.Prev(name=name) if state["scan"] is not None and name == state["scan"].name:
                return read_prev(state, idx)
            case ir.Shift(rank=r, arg=arg, init=init) if state["scan"] is not None and r == state["scan"].rank:
                check_shift(state, arg, idx, r, e.bindings)
                if state["base"]:
                    return e.eval(init, idx)
                return e.eval(arg, {**idx, r: idx[r] - 1})
            case ir.Scan() if (id(e.bindings), expr) in e.closed:
                if expr.rank not in idx:
                    raise NotLiftable(f"scan {expr.name} read without an index for {expr.rank}")
                return closed_at(e, expr, idx[expr.rank], idx)
            case ir.Last(rank=r, arg=arg):
                s = deref(arg, e.bindings)
                if isinstance(s, ir.Scan) and (id(e.bindings), s) in e.closed and s.rank == r:
                    return closed_at(e, s, e.size(r) - 1, idx)
        raise NotLiftable(f"{type(expr).__name__} outside the closed-form shape")

    env.scan_eval = scan_eval
    all_idx = dict(out_idx)
    for r in claim.ranks():
        if r not in all_idx:
            all_idx[r] = z3.Int(f"i_{r}")
            hyps = hyps + [all_idx[r] >= 0, all_idx[r] < env.size(r)]
    obligations, ok = [], True
    for key in order:
        s, bindings = key[1], scans[key]
        expr = candidate(s, bindings)
        k = s.rank
        idx = {r: v for r, v in all_idx.items() if r != k}
        n_k = env.size(k)

        def inv(mode, last_index):
            saved = (env.prefix, env.last, env.bindings)
            env.prefix, env.last, env.bindings = {k: mode}, {k: last_index}, bindings
            try:
                return simplify_inf(env.eval(expr, idx))
            finally:
                env.prefix, env.last, env.bindings = saved

        def body_at(t, prev, base):
            env.bindings = bindings
            state.update(scan=s, prev=prev, base=base, at={**idx, k: t})
            try:
                return simplify_inf(env.eval(s.body, {**idx, k: t}))
            finally:
                state.update(scan=None, prev=None)

        zero = z3.IntVal(0)
        env.bindings = bindings
        init = simplify_inf(env.eval(s.init, idx))
        ok_b, obs_b = prover.equal(body_at(zero, init, True), inv(("one",), zero), hyps,
                                   f"scan.base ({s.name}[0] = closed form)")
        t = z3.Int(f"t_{s.name}")
        ih = inv(("upto", t), t - 1)
        step_l = body_at(t, ih, False)
        ok_s, obs_s = prover.equal(step_l, inv(("step", t), t), hyps + [t >= 1, t < n_k],
                                   f"scan.step ({s.name}[t] = closed form, t >= 1)")
        obligations += obs_b + obs_s
        if not (ok_b and ok_s):
            return False, obligations
        env.closed[key] = (expr, bindings)
    env.bindings = claim.lhs.bindings
    left = simplify_inf(env.eval(claim.lhs.expr, out_idx))
    env.bindings = claim.rhs.bindings
    right = simplify_inf(env.eval(claim.rhs.expr, out_idx))
    ok, obs = prover.equal(left, right, hyps, "sides equal (scans by their closed forms)")
    return ok, obligations + obs
