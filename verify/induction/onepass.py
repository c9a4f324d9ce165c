"""The lemma group "3pass=1pass (all M1, M0)": running max, rebase, the 1-pass invariant, shift invariance and
the conclusion."""

from __future__ import annotations

import math
import time

import z3

from .obligations import GROUP_1PASS, Obligation, Variant
from .query import NEG_INF, Query, Undefined, discharge, onepass_step, zero
from .replay import differ, f_onepass, f_onepass_step, f_threepass, realise_tiles


def running_max(v: Variant) -> list[Obligation]:
    out = []
    t0 = time.perf_counter()
    q = Query("running_max.base", "RM[1] = max(RM[0], LM_0) = max(-inf, LM_0) = LM_0 = max_{j<1} LM_j")
    q.real("LM_0")
    q.max_def("RM_1", NEG_INF, "LM_0")           # -inf handled exactly, outside Z3
    g1 = q.real("G_1")
    q.hyp(g1 == q.real("LM_0"))
    q.goal(q.real("RM_1") == g1)
    out.append(discharge(q, GROUP_1PASS, t0=t0))

    t0 = time.perf_counter()
    q = Query("running_max.step", "for k >= 1: RM[k] = max_{j<k} LM_j implies RM[k+1] = max_{j<k+1} LM_j")
    rmk, gk, gk1, lmk = q.real("RM_k"), q.real("G_k"), q.real("G_k1"), q.real("LM_k")
    q.max_def("RM_k1", "RM_k", "LM_k")
    q.hyp(rmk == gk, gk1 == z3.If(gk >= lmk, gk, lmk))
    q.goal(q.real("RM_k1") == gk1)
    out.append(discharge(q, GROUP_1PASS, t0=t0))
    return out


def rebase(v: Variant) -> list[Obligation]:
    out = []
    t0 = time.perf_counter()
    q = Query("rebase.base", "sum_{j<0} a_j exp(l_j - c') = exp(c - c') * sum_{j<0} a_j exp(l_j - c) = 0")
    s0c, s0c2 = q.real("S_0_c"), q.real("S_0_c2")
    q.real("c"), q.real("c2")
    q.hyp(s0c == 0, s0c2 == 0)
    q.goal(s0c2 == q.exp_diff("c", "c2") * s0c)
    out.append(discharge(q, GROUP_1PASS, t0=t0))

    t0 = time.perf_counter()
    q = Query("rebase.step", "for n >= 0: S(n, c') = exp(c - c') S(n, c) implies it for n+1, where "
              "S(n, c) = sum_{j<n} a_j exp(l_j - c)")
    skc, skc2, sk1c, sk1c2, a = (q.real(n) for n in ("S_n_c", "S_n_c2", "S_n1_c", "S_n1_c2", "a_n"))
    q.real("l_n"), q.real("c"), q.real("c2")
    q.hyp(skc2 == q.exp_diff("c", "c2") * skc,
          sk1c == skc + a * q.exp_diff("l_n", "c"),
          sk1c2 == skc2 + a * q.exp_diff("l_n", "c2"))
    q.goal(sk1c2 == q.exp_diff("c", "c2") * sk1c)
    out.append(discharge(q, GROUP_1PASS, t0=t0))
    return out


def _replay_step(v: Variant, component: str):
    """Realise the CTI as two tiles: tile 0 carries the prefix (LM = RM_k, SLD = D, SLNV = N), tile 1 is
    tile k. From the state after tile 0 (which satisfies the invariant) run one (mutated) 1-pass step with
    floats and compare with the invariant computed from the scores; also run the whole mutated 1-pass."""
    def replay(cex):
        d = cex["D"]
        n = cex.get("N", 0.5 * d)
        sld = cex["SLD_k"]
        slnv = cex.get("SLNV_k", 0.25 * sld)
        tiles = realise_tiles([(cex["RM_k"], d, n), (cex["LM_k"], sld, slnv)])
        (s0, v0), (s1, v1) = tiles
        state1 = (max(s0), sum(math.exp(s - max(s0)) for s in s0),
                  sum(math.exp(s - max(s0)) * x for s, x in zip(s0, v0)))
        _, rd2, rnv2 = f_onepass_step(v, state1, s1, v1)
        all_s, all_v = s0 + s1, v0 + v1
        gm = max(all_s)
        inv_rd = sum(math.exp(s - gm) for s in all_s)
        inv_rnv = sum(math.exp(s - gm) * x for s, x in zip(all_s, all_v))
        got, want = (rd2, inv_rd) if component == "RD" else (rnv2, inv_rnv)
        full = f_onepass(v, tiles)
        av1 = full[2] / full[1] if full[1] else math.nan
        av3 = f_threepass(all_s, all_v)
        return {"tiles": tiles, "state_k": state1, f"{component}[k+1] by recurrence": got,
                f"{component}[k+1] by invariant": want, "disagrees": differ(got, want),
                "AV_1pass": av1, "AV_3pass": av3, "AV_disagrees": differ(av1, av3)}
    return replay


def replay_base1(v: Variant):
    def replay(cex):
        lm, w, num = 0.5, 1.0, 2.0
        state = f_onepass_step(v, (-math.inf, 0.0, 0.0), [lm], [num])
        return {"tile": ([lm], [num]), "state_1 by recurrence": state, "state_1 by invariant": (lm, w, num),
                "disagrees": any(differ(x, y) for x, y in zip(state, (lm, w, num)))}
    return replay


def invariant(v: Variant) -> list[Obligation]:
    out = []
    t0 = time.perf_counter()
    q = Query("invariant.base0", "k = 0: RD[0] = 0 = sum_{j<0} (...) and RNV[0] = 0 = sum_{j<0} (...); "
              "the sums are empty, so no exp(LM_j - RM[0]) with RM[0] = -inf is ever evaluated")
    rd0, rnv0, d0, n0 = q.real("RD_0"), q.real("RNV_0"), q.real("D_0"), q.real("N_0")
    q.hyp(rd0 == 0, rnv0 == 0, d0 == 0, n0 == 0)
    q.goal(rd0 == d0, rnv0 == n0)
    out.append(discharge(q, GROUP_1PASS, t0=t0))

    t0 = time.perf_counter()
    q = Query("invariant.base1", "k = 1: from (RM, RD, RNV)[0] = (-inf, 0, 0), one step gives "
              "RD[1] = SLD_0 exp(LM_0 - RM[1]) and RNV[1] = SLNV_0 exp(LM_0 - RM[1]); PRM[0] = "
              "exp(-inf - RM[1]) = 0 exactly (RM[1] = LM_0 finite)")
    err = None
    try:
        _lm0, sld0, slnv0 = q.real("LM_0"), q.weight("SLD_0"), q.real("SLNV_0")
        rm1, rd1, rnv1 = onepass_step(q, v, (NEG_INF, zero(), zero()), ("LM_0", sld0, slnv0), 1)
        d1, n1 = q.real("D_1"), q.real("N_1")
        q.hyp(d1 == 0 + sld0 * q.exp_diff("LM_0", rm1), n1 == 0 + slnv0 * q.exp_diff("LM_0", rm1))
        q.goal(rd1 == d1, rnv1 == n1)
    except Undefined as e:
        err = e
    out.append(discharge(q, GROUP_1PASS, replay_base1(v), err, t0=t0))

    for comp in ("RD", "RNV"):
        t0 = time.perf_counter()
        q = Query(f"invariant.step.{comp}",
                  f"for k >= 1: {comp}[k] = sum_{{j<k}} {'SLD' if comp == 'RD' else 'SLNV'}_j exp(LM_j - RM[k]) "
                  f"implies the same at k+1")
        _rmk, _lmk = q.real("RM_k"), q.real("LM_k")
        sld = q.weight("SLD_k")
        slnv = q.real("SLNV_k")
        d = q.weight("D")                               # D = sum_{j<k} SLD_j exp(LM_j - RM_k), k >= 1
        nn = q.real("N")                                # N = sum_{j<k} SLNV_j exp(LM_j - RM_k)
        rdk, rnvk = q.real("RD_k"), q.real("RNV_k")
        q.hyp(rdk == d, rnvk == nn)                     # induction hypothesis
        rm1, rd1, rnv1 = onepass_step(q, v, ("RM_k", rdk, rnvk), ("LM_k", sld, slnv), "k1")
        # target: sum_{j<k+1} X_j exp(LM_j - RM_{k+1})
        #       = sum_{j<k} X_j exp(LM_j - RM_{k+1}) + X_k exp(LM_k - RM_{k+1})     (sum definition)
        #       = exp(RM_k - RM_{k+1}) * [D or N]     + X_k exp(LM_k - RM_{k+1})     (rebase lemma)
        dr, tgt = q.real(f"{comp}_rebased"), q.real(f"{comp}_target")
        prefix, x_k, got = (d, sld, rd1) if comp == "RD" else (nn, slnv, rnv1)
        q.hyp(dr == q.exp_diff("RM_k", rm1) * prefix, tgt == dr + x_k * q.exp_diff("LM_k", rm1))
        q.goal(got == tgt)
        out.append(discharge(q, GROUP_1PASS, _replay_step(v, comp), t0=t0))
    return out


def shift_and_conclusion(v: Variant) -> list[Obligation]:
    out = []
    t0 = time.perf_counter()
    q = Query("shift_invariance", "identity 5: for finite c, c' and n >= 1 terms, "
              "(sum a_j exp(l_j - c')) / (sum exp(l_j - c')) = (sum a_j exp(l_j - c)) / (sum exp(l_j - c))")
    nc, dc, nc2, dc2 = q.real("N_c"), q.real("D_c"), q.real("N_c2"), q.real("D_c2")
    q.real("c"), q.real("c2")
    q.hyp(dc > 0,                                           # positivity (n >= 1 terms)
          nc2 == q.exp_diff("c", "c2") * nc, dc2 == q.exp_diff("c", "c2") * dc)   # rebase lemma
    q.goal(nc2 / dc2 == nc / dc)
    out.append(discharge(q, GROUP_1PASS, t0=t0))

    t0 = time.perf_counter()
    q = Query("conclusion", "invariant at k = M1 with RM[M1] = GM (running_max + split.max): each term "
              "SLD_j exp(LM_j - RM[M1]) is the 2-pass CD_j = SLD_j PRM_j, so RD[M1] = GD, RNV[M1] = AV_acc "
              "and AV = RNV[M1]/RD[M1] = AV_acc/GD = AV(2-pass) = AV(3-pass)")
    rmm, gm, _lmj = q.real("RM_M1"), q.real("GM"), q.real("LM_j")
    sld, t1, t2 = q.weight("SLD_j"), q.real("term_1pass"), q.real("term_2pass")
    rd, rnv, gd, acc, av1, av2 = (q.real(n) for n in ("RD_M1", "RNV_M1", "GD", "AV_acc", "AV1", "AV2"))
    q.hyp(rmm == gm, t1 == sld * q.exp_diff("LM_j", "RM_M1"), t2 == sld * q.exp_diff("LM_j", "GM"),
          rd == gd, rnv == acc, gd > 0, av1 * rd == rnv, av2 * gd == acc)
    q.goal(t1 == t2, av1 == av2)
    out.append(discharge(q, GROUP_1PASS, t0=t0))
    return out
