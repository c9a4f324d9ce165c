"""The lemma group "merge operator": the laws of the merge of tile summaries, the 1-pass step as a merge,
and the n-ary merge (split-KV) as a fold."""

from __future__ import annotations

import math
import time

from .obligations import GROUP_MERGE, Obligation, Variant
from .onepass import replay_base1
from .query import NEG_INF, Query, Undefined, discharge, merge_states, onepass_step, zero
from .replay import differ, f_merge, f_onepass_step, fexp, realise_tiles


def _triple(q: Query, tag: str, weight: bool = False):
    m = f"m{tag}"
    q.real(m)
    d = q.weight(f"d{tag}") if weight else q.real(f"d{tag}")
    return m, d, q.real(f"o{tag}")


def _replay_merge(v: Variant, law: str):
    def replay(cex):
        t = {x: (cex[f"m{x}"], cex[f"d{x}"], cex[f"o{x}"]) for x in "abc" if f"m{x}" in cex}
        if law == "comm":
            lhs, rhs = f_merge(v, t["a"], t["b"]), f_merge(v, t["b"], t["a"])
        else:
            lhs = f_merge(v, f_merge(v, t["a"], t["b"]), t["c"])
            rhs = f_merge(v, t["a"], f_merge(v, t["b"], t["c"]))
        return {"lhs": lhs, "rhs": rhs, "disagrees": any(differ(x, y) for x, y in zip(lhs, rhs))}
    return replay


def _replay_step_merge(v: Variant):
    def replay(cex):
        tiles = realise_tiles([(cex["RM_k"], cex["RD_k"], cex["RNV_k"]),
                               (cex["LM_k"], cex["SLD_k"], cex["SLNV_k"])])
        (s0, v0), (s1, v1) = tiles
        lm0 = max(s0)
        state = (lm0, sum(math.exp(s - lm0) for s in s0), sum(math.exp(s - lm0) * x for s, x in zip(s0, v0)))
        lm1 = max(s1)
        summ = (lm1, sum(math.exp(s - lm1) for s in s1), sum(math.exp(s - lm1) * x for s, x in zip(s1, v1)))
        one = f_onepass_step(v, state, s1, v1)
        mer = f_merge(v, state, summ)
        return {"tiles": tiles, "1pass step": one, "state (+) summary": mer,
                "disagrees": any(differ(x, y) for x, y in zip(one, mer))}
    return replay


def merge_laws(v: Variant) -> list[Obligation]:
    out = []
    t0 = time.perf_counter()
    q = Query("merge.commutative", "a (+) b = b (+) a for finite states a, b")
    a, b = _triple(q, "a"), _triple(q, "b")
    l, r = merge_states(q, v, a, b, "m_ab"), merge_states(q, v, b, a, "m_ba")
    q.goal(q.real(l[0]) == q.real(r[0]), l[1] == r[1], l[2] == r[2])
    out.append(discharge(q, GROUP_MERGE, _replay_merge(v, "comm"), t0=t0))

    t0 = time.perf_counter()
    q = Query("merge.associative", "(a (+) b) (+) c = a (+) (b (+) c) for finite states (cases with an empty "
              "operand reduce to the identity laws)")
    a, b, c = _triple(q, "a"), _triple(q, "b"), _triple(q, "c")
    ab = merge_states(q, v, a, b, "m_ab")
    l = merge_states(q, v, ab, c, "m_ab_c")
    bc = merge_states(q, v, b, c, "m_bc")
    r = merge_states(q, v, a, bc, "m_a_bc")
    q.goal(q.real(l[0]) == q.real(r[0]), l[1] == r[1], l[2] == r[2])
    # exp facts only relate atoms present in the query; add the atoms the re-association goes through
    for x in ("ma", "mb", "mc", "m_ab", "m_bc"):
        for y in ("m_ab_c", "m_a_bc"):
            q.exp_diff(x, y)
    out.append(discharge(q, GROUP_MERGE, _replay_merge(v, "assoc"), t0=t0))

    for side in ("left", "right"):
        t0 = time.perf_counter()
        q = Query(f"merge.identity.{side}", ("(-inf,0,0) (+) b = b" if side == "left" else
                                             "a (+) (-inf,0,0) = a") +
                  " for finite states; max(-inf, m) = m and exp(-inf - m) = 0 exactly, outside Z3")
        x = _triple(q, "x")
        e = (NEG_INF, zero(), zero())
        res = merge_states(q, v, e, x, "m_r") if side == "left" else merge_states(q, v, x, e, "m_r")
        q.goal(q.real(res[0]) == q.real(x[0]), res[1] == x[1], res[2] == x[2])
        out.append(discharge(q, GROUP_MERGE, t0=t0))

    t0 = time.perf_counter()
    q = Query("merge.one_tile", "the 1-pass state after tile 0 and e (+) summary(tile 0) both equal the "
              "local summary (LM_0, SLD_0, SLNV_0)")
    err = None
    try:
        lm0, sld0, slnv0 = q.real("LM_0"), q.weight("SLD_0"), q.real("SLNV_0")
        s1 = onepass_step(q, v, (NEG_INF, zero(), zero()), ("LM_0", sld0, slnv0), 1)
        mg = merge_states(q, v, (NEG_INF, zero(), zero()), ("LM_0", sld0, slnv0), "m_e0")
        q.goal(q.real(s1[0]) == lm0, s1[1] == sld0, s1[2] == slnv0,
               q.real(mg[0]) == lm0, mg[1] == sld0, mg[2] == slnv0)
    except Undefined as ex:
        err = ex
    out.append(discharge(q, GROUP_MERGE, replay_base1(v), err, t0=t0))

    t0 = time.perf_counter()
    q = Query("merge.step_is_1pass", "for k >= 1: the 1-pass step (RM,RD,RNV)[k] -> [k+1] with tile k equals "
              "(RM,RD,RNV)[k] (+) (LM_k, SLD_k, SLNV_k)")
    _rmk, _lmk = q.real("RM_k"), q.real("LM_k")
    rdk, rnvk = q.weight("RD_k"), q.real("RNV_k")
    sld, slnv = q.weight("SLD_k"), q.real("SLNV_k")
    s1 = onepass_step(q, v, ("RM_k", rdk, rnvk), ("LM_k", sld, slnv), "k1")
    mg = merge_states(q, v, ("RM_k", rdk, rnvk), ("LM_k", sld, slnv), "m_k1")
    q.goal(q.real(s1[0]) == q.real(mg[0]), s1[1] == mg[1], s1[2] == mg[2])
    out.append(discharge(q, GROUP_MERGE, _replay_step_merge(v), t0=t0))
    return out + _nary_merge(v)


def _nary_merge(v: Variant) -> list[Obligation]:
    """The n-ary merge of n >= 1 chunk states (M_n, D_n, O_n) = (max_c m_c, sum_c d_c exp(m_c - M_n),
    sum_c o_c exp(m_c - M_n)), as split-KV computes it over a chunk rank, is the left fold of binary merges."""
    out = []
    t0 = time.perf_counter()
    q = Query("merge.nary.base", "n = 1: the n-ary merge of one chunk state is that state (= e (+) state)")
    m0, d0, o0, M1 = q.real("m_0"), q.real("d_0"), q.real("o_0"), q.real("M_1")
    q.hyp(M1 == m0)                                                   # max over one chunk
    e = q.exp_diff("m_0", "M_1")
    q.goal(d0 * e == d0, o0 * e == o0)
    out.append(discharge(q, GROUP_MERGE, t0=t0))

    t0 = time.perf_counter()
    q = Query("merge.nary.step", "for n >= 1: nary(n+1) = nary(n) (+) (m_n, d_n, o_n), using the rebase lemma "
              "for the first n chunks: sum_{c<n} d_c exp(m_c - M') = exp(M_n - M') D_n")
    Dn, On, dn, on = q.real("D_n"), q.real("O_n"), q.real("d_n"), q.real("o_n")
    q.real("M_n"), q.real("m_n")
    Mp = q.max_def("M_n1", "M_n", "m_n")                             # max over n+1 chunks
    Sd, So = q.real("S_d"), q.real("S_o")                             # the first n chunks rebased to M'
    q.hyp(Sd == q.exp_diff("M_n", Mp) * Dn, So == q.exp_diff("M_n", Mp) * On)   # rebase (group 1-pass)
    Dp = Sd + dn * q.exp_diff("m_n", Mp)
    Op = So + on * q.exp_diff("m_n", Mp)
    mg = merge_states(q, v, ("M_n", Dn, On), ("m_n", dn, on), "M_fold")
    q.goal(q.real(mg[0]) == q.real(Mp), mg[1] == Dp, mg[2] == Op)
    out.append(discharge(q, GROUP_MERGE, _replay_nary(v), t0=t0))
    return out


def _replay_nary(v: Variant):
    """Two chunk states: the first n chunks summarised as (M_n, D_n, O_n), then chunk n; n-ary merge vs fold."""
    def replay(cex):
        a, b = (cex["M_n"], cex["D_n"], cex["O_n"]), (cex["m_n"], cex["d_n"], cex["o_n"])
        m = max(a[0], b[0])
        nary = (m, a[1] * fexp(a[0] - m) + b[1] * fexp(b[0] - m), a[2] * fexp(a[0] - m) + b[2] * fexp(b[0] - m))
        fold = f_merge(v, a, b)
        return {"n-ary merge": nary, "fold of (+)": fold, "disagrees": any(differ(x, y) for x, y in zip(nary, fold))}
    return replay
