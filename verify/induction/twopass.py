"""The lemma group "3pass=2pass (all M1, M0)": split sum and split max (each by induction), linearity and
positivity, and the 2-pass pointwise and AV identities. The rule-level lift (rule_level/) reuses the split,
linearity and positivity lemmas."""

from __future__ import annotations

import math
import time

import z3

from .obligations import GROUP_2PASS, Obligation, Variant
from .query import Query, discharge
from .replay import differ, f_threepass, f_twopass, fexp


def split_sum(v: Variant) -> list[Obligation]:
    R, I_ = z3.RealSort(), z3.IntSort()
    out = []

    def base_q(name, stmt):
        q = Query(name, stmt)
        k, M0 = q.int("k"), q.int("M0")
        F = z3.Function("F", I_, R)          # F(n) = sum_{m<n} g(m)
        I = z3.Function("I", I_, I_, R)      # I(k, j) = sum_{m0<j} g(k*M0 + m0)
        T = z3.Function("T", I_, R)          # T(k) = sum_{m1<k} I(m1, M0)
        g = z3.Function("g", I_, R)          # arbitrary summand (SN, SN*V, ...)
        return q, k, M0, F, I, T, g

    t0 = time.perf_counter()
    q, k, M0, F, I, T, g = base_q("split.sum.inner.base",
                                  "for all k >= 0, M0 >= 1: F(k*M0 + 0) = F(k*M0) + I(k, 0)  [I(k,0) = 0]")
    q.hyp(k >= 0, M0 >= 1, I(k, 0) == 0)
    q.goal(F(k * M0 + 0) == F(k * M0) + I(k, 0))
    out.append(discharge(q, GROUP_2PASS, t0=t0))

    t0 = time.perf_counter()
    q, k, M0, F, I, T, g = base_q("split.sum.inner.step",
                                  "for 0 <= j < M0: F(k*M0+j) = F(k*M0) + I(k,j) implies the same for j+1")
    j = q.int("j")
    q.hyp(k >= 0, M0 >= 1, j >= 0, j < M0,
          F(k * M0 + j) == F(k * M0) + I(k, j),                        # induction hypothesis
          F(k * M0 + j + 1) == F(k * M0 + j) + g(k * M0 + j),          # definition of the flat sum
          I(k, j + 1) == I(k, j) + g(k * M0 + j))                      # definition of the tile sum
    q.goal(F(k * M0 + j + 1) == F(k * M0) + I(k, j + 1))
    out.append(discharge(q, GROUP_2PASS, t0=t0))

    t0 = time.perf_counter()
    q, k, M0, F, I, T, g = base_q("split.sum.outer.base",
                                  "M1 = 1: sum_{m<1*M0} g(m) = sum_{m1<1} sum_{m0<M0} g(m1*M0+m0)")
    q.hyp(M0 >= 1, F(0) == 0, T(0) == 0, T(1) == T(0) + I(0, M0),
          F(0 * M0 + M0) == F(0 * M0) + I(0, M0))                      # inner lemma at k = 0, j = M0
    q.goal(F(1 * M0) == T(1))
    out.append(discharge(q, GROUP_2PASS, t0=t0))

    t0 = time.perf_counter()
    q, k, M0, F, I, T, g = base_q("split.sum.outer.step",
                                  "for M1 = k >= 1: F(k*M0) = T(k) implies F((k+1)*M0) = T(k+1)")
    q.hyp(k >= 1, M0 >= 1, F(k * M0) == T(k),
          F(k * M0 + M0) == F(k * M0) + I(k, M0),                      # inner lemma at j = M0
          T(k + 1) == T(k) + I(k, M0))
    q.goal(F((k + 1) * M0) == T(k + 1))
    out.append(discharge(q, GROUP_2PASS, t0=t0))
    return out


def split_max(v: Variant) -> list[Obligation]:
    R, I_ = z3.RealSort(), z3.IntSort()
    out = []

    def base_q(name, stmt):
        q = Query(name, stmt)
        k, M0 = q.int("k"), q.int("M0")
        F = z3.Function("Fmax", I_, R)          # Fmax(n) = max_{m<n} g(m), n >= 1
        I = z3.Function("Imax", I_, I_, R)      # Imax(k, j) = max_{m0<j} g(k*M0 + m0), j >= 1
        T = z3.Function("Tmax", I_, R)          # Tmax(k) = max_{m1<k} Imax(m1, M0), k >= 1
        g = z3.Function("g", I_, R)
        return q, k, M0, F, I, T, g

    def mx(a, b):
        return z3.If(a >= b, a, b)

    def add(name, stmt, build):
        t0 = time.perf_counter()
        q, k, M0, F, I, T, g = base_q(name, stmt)
        build(q, k, M0, F, I, T, g)
        out.append(discharge(q, GROUP_2PASS, t0=t0))

    def head_base(q, k, M0, F, I, T, g):
        q.hyp(M0 >= 1, F(1) == g(0), I(0, 1) == g(0 * M0 + 0))
        q.goal(F(1) == I(0, 1))

    def head_step(q, k, M0, F, I, T, g):
        j = q.int("j")
        q.hyp(M0 >= 1, j >= 1, j < M0, F(j) == I(0, j),
              F(j + 1) == mx(F(j), g(j)), I(0, j + 1) == mx(I(0, j), g(0 * M0 + j)))
        q.goal(F(j + 1) == I(0, j + 1))

    def inner_base(q, k, M0, F, I, T, g):
        q.hyp(k >= 1, M0 >= 1, F(k * M0 + 1) == mx(F(k * M0), g(k * M0)), I(k, 1) == g(k * M0 + 0))
        q.goal(F(k * M0 + 1) == mx(F(k * M0), I(k, 1)))

    def inner_step(q, k, M0, F, I, T, g):
        j = q.int("j")
        q.hyp(k >= 1, M0 >= 1, j >= 1, j < M0,
              F(k * M0 + j) == mx(F(k * M0), I(k, j)),
              F(k * M0 + j + 1) == mx(F(k * M0 + j), g(k * M0 + j)),
              I(k, j + 1) == mx(I(k, j), g(k * M0 + j)))
        q.goal(F(k * M0 + j + 1) == mx(F(k * M0), I(k, j + 1)))

    def outer_base(q, k, M0, F, I, T, g):
        q.hyp(M0 >= 1, T(1) == I(0, M0), F(M0) == I(0, M0))            # head lemma at j = M0
        q.goal(F(1 * M0) == T(1))

    def outer_step(q, k, M0, F, I, T, g):
        q.hyp(k >= 1, M0 >= 1, F(k * M0) == T(k),
              F(k * M0 + M0) == mx(F(k * M0), I(k, M0)),               # inner lemma at j = M0
              T(k + 1) == mx(T(k), I(k, M0)))
        q.goal(F((k + 1) * M0) == T(k + 1))

    add("split.max.head.base", "max_{m<1} g(m) = max_{m0<1} g(0*M0 + m0)", head_base)
    add("split.max.head.step", "for 1 <= j < M0: max_{m<j} g = max_{m0<j} g(0*M0+m0) implies it for j+1",
        head_step)
    add("split.max.inner.base", "for k >= 1: Fmax(k*M0 + 1) = max(Fmax(k*M0), Imax(k, 1))", inner_base)
    add("split.max.inner.step", "for k >= 1, 1 <= j < M0: Fmax(k*M0+j) = max(Fmax(k*M0), Imax(k,j)) "
        "implies it for j+1", inner_step)
    add("split.max.outer.base", "M1 = 1: max_{m<M0} g(m) = max_{m1<1} max_{m0<M0} g(m1*M0+m0)", outer_base)
    add("split.max.outer.step", "for M1 = k >= 1: Fmax(k*M0) = Tmax(k) implies Fmax((k+1)*M0) = Tmax(k+1)",
        outer_step)
    return out


def linearity_positivity(v: Variant) -> list[Obligation]:
    R, I_ = z3.RealSort(), z3.IntSort()
    out = []
    t0 = time.perf_counter()
    q = Query("linearity.base", "c * sum_{j<0} y_j = sum_{j<0} c*y_j (both empty sums are 0)")
    Y, Z = z3.Function("Y", I_, R), z3.Function("Z", I_, R)
    c = q.real("c")
    q.hyp(Y(0) == 0, Z(0) == 0)
    q.goal(c * Y(0) == Z(0))
    out.append(discharge(q, GROUP_2PASS, t0=t0))

    t0 = time.perf_counter()
    q = Query("linearity.step", "for n >= 0: c * sum_{j<n} y_j = sum_{j<n} c*y_j implies it for n+1")
    Y, Z, y = z3.Function("Y", I_, R), z3.Function("Z", I_, R), z3.Function("y", I_, R)
    c, n = q.real("c"), q.int("n")
    q.hyp(n >= 0, c * Y(n) == Z(n), Y(n + 1) == Y(n) + y(n), Z(n + 1) == Z(n) + c * y(n))
    q.goal(c * Y(n + 1) == Z(n + 1))
    out.append(discharge(q, GROUP_2PASS, t0=t0))

    t0 = time.perf_counter()
    q = Query("positivity.base", "sum_{m<1} exp(x_m) > 0")
    P, _x0 = z3.Function("P", I_, R), q.real("x_0")
    q.hyp(P(1) == q.exp({"x_0": 1}))
    q.goal(P(1) > 0)
    out.append(discharge(q, GROUP_2PASS, t0=t0))

    t0 = time.perf_counter()
    q = Query("positivity.step", "for n >= 1: sum_{m<n} exp(x_m) > 0 implies sum_{m<n+1} exp(x_m) > 0")
    P, n = z3.Function("P", I_, R), q.int("n")
    q.real("x_n")
    q.hyp(n >= 1, P(n) > 0, P(n + 1) == P(n) + q.exp({"x_n": 1}))
    q.goal(P(n + 1) > 0)
    out.append(discharge(q, GROUP_2PASS, t0=t0))
    return out


def _prm_2pass(q: Query, v: Variant):
    return {"LM-GM": lambda: q.exp_diff("LM", "GM"), "GM-LM": lambda: q.exp_diff("GM", "LM"),
            "none": lambda: z3.RealVal(1)}[v.prm_2pass]()


def _replay_2pass_pointwise(v: Variant):
    def replay(cex):
        s, lm, gm = cex["s"], cex["LM"], cex["GM"]
        prm = {"LM-GM": fexp(lm - gm), "GM-LM": fexp(gm - lm), "none": 1.0}[v.prm_2pass]
        cn, sn = math.exp(s - lm) * prm, math.exp(s - gm)
        # a whole input built from the same numbers: tile 0 = [LM, s], tile 1 = [GM, GM]
        tiles = [([lm, s], [1.0, 2.0]), ([gm, gm], [3.0, 4.0])]
        flat_s = [x for sc, _ in tiles for x in sc]
        flat_v = [x for _, vs in tiles for x in vs]
        av2, av3 = f_twopass(v, tiles), f_threepass(flat_s, flat_v)
        return {"CN": cn, "SN": sn, "disagrees": differ(cn, sn),
                "tiles": tiles, "AV_2pass": av2, "AV_3pass": av3, "AV_disagrees": differ(av2, av3)}
    return replay


def twopass_ground(v: Variant) -> list[Obligation]:
    out = []
    t0 = time.perf_counter()
    q = Query("2pass.pointwise", "CN[m1,m0] = exp(BQK - LM[m1]) * PRM[m1] equals SN[m] = exp(QK[m] - GM) "
              "at m = m1*M0 + m0, where GM(2-pass) = max_m1 LM = GM(3-pass) by split.max")
    s, lm, gm = q.real("s"), q.real("LM"), q.real("GM")
    q.hyp(s <= lm, lm <= gm)                     # s is in tile m1 (LM its max), GM = max over all tiles
    cn = q.real("CN")
    q.hyp(cn == q.exp_diff("s", "LM") * _prm_2pass(q, v))
    q.goal(cn == q.exp_diff("s", "GM"))
    out.append(discharge(q, GROUP_2PASS, _replay_2pass_pointwise(v), t0=t0))

    t0 = time.perf_counter()
    q = Query("2pass.AV", "with GD = sum_m1 SLD*PRM = sum_m1 sum_m0 CN = SD (linearity, split.sum, "
              "2pass.pointwise) and SD > 0 (positivity): AV_acc/GD = AV(3-pass) (deferred division) and "
              "A = CN/GD = SN/SD elementwise (so sum_m A*V is the 3-pass AV)")
    gd, sd, acc, num, cn, sn = (q.real(n) for n in ("GD", "SD", "AV_acc", "NUM", "CN", "SN"))
    av3, a2, a3 = q.real("AV3"), q.real("A2"), q.real("A3")
    q.hyp(gd == sd, sd > 0, acc == num, cn == sn,
          av3 * sd == num,                   # AV3 = sum_m (SN/SD) V = NUM/SD (linearity, c = 1/SD)
          a2 * gd == cn, a3 * sd == sn)      # A2 = CN/GD, A3 = SN/SD (divisors nonzero)
    q.goal(acc / gd == av3, a2 == a3)
    out.append(discharge(q, GROUP_2PASS, t0=t0))
    return out


def interchange(v: Variant) -> list[Obligation]:
    """Finite sums over independent ranges commute: sum_{r<n} sum_{s<m} g(r, s) = sum_{s<m} sum_{r<n} g(r, s) for
    every n, m >= 0 and every summand g (uninterpreted). Row(r, m) = sum_{s<m} g(r, s), Col(s, n) = sum_{r<n} g(r, s),
    L(n, m) = sum_{r<n} Row(r, m), R(n, m) = sum_{s<m} Col(s, n), each given by its recursive definition. The
    rule-level lift uses it to put nested sums in one order (rule_level/terms.py, `_interchange`)."""
    R_, I_ = z3.RealSort(), z3.IntSort()
    out = []

    def base_q(name, stmt):
        q = Query(name, stmt)
        n, m = q.int("n"), q.int("m")
        g = z3.Function("g", I_, I_, R_)
        Row = z3.Function("Row", I_, I_, R_)
        Col = z3.Function("Col", I_, I_, R_)
        L = z3.Function("L", I_, I_, R_)
        R = z3.Function("R", I_, I_, R_)
        return q, n, m, g, Row, Col, L, R

    t0 = time.perf_counter()
    q, n, m, g, Row, Col, L, R = base_q("interchange.additivity.base", "R(n+1, 0) = R(n, 0) + Row(n, 0)")
    q.hyp(n >= 0, R(n + 1, 0) == 0, R(n, 0) == 0, Row(n, 0) == 0)
    q.goal(R(n + 1, 0) == R(n, 0) + Row(n, 0))
    out.append(discharge(q, GROUP_2PASS, t0=t0))

    t0 = time.perf_counter()
    q, n, m, g, Row, Col, L, R = base_q("interchange.additivity.step",
                                        "R(n+1, m) = R(n, m) + Row(n, m) implies the same for m+1")
    q.hyp(n >= 0, m >= 0, R(n + 1, m) == R(n, m) + Row(n, m),              # induction hypothesis
          R(n + 1, m + 1) == R(n + 1, m) + Col(m, n + 1),                  # definitions
          R(n, m + 1) == R(n, m) + Col(m, n),
          Col(m, n + 1) == Col(m, n) + g(n, m),
          Row(n, m + 1) == Row(n, m) + g(n, m))
    q.goal(R(n + 1, m + 1) == R(n, m + 1) + Row(n, m + 1))
    out.append(discharge(q, GROUP_2PASS, t0=t0))

    t0 = time.perf_counter()
    q, n, m, g, Row, Col, L, R = base_q("interchange.empty.step", "R(0, m) = 0 implies R(0, m+1) = 0")
    q.hyp(m >= 0, R(0, m) == 0, Col(m, 0) == 0, R(0, m + 1) == R(0, m) + Col(m, 0))
    q.goal(R(0, m + 1) == 0)
    out.append(discharge(q, GROUP_2PASS, t0=t0))

    t0 = time.perf_counter()
    q, n, m, g, Row, Col, L, R = base_q("interchange.base", "L(0, m) = R(0, m) (both empty: 0)")
    q.hyp(m >= 0, L(0, m) == 0, R(0, m) == 0)                              # definition; interchange.empty
    q.goal(L(0, m) == R(0, m))
    out.append(discharge(q, GROUP_2PASS, t0=t0))

    t0 = time.perf_counter()
    q, n, m, g, Row, Col, L, R = base_q("interchange.step", "L(n, m) = R(n, m) implies L(n+1, m) = R(n+1, m)")
    q.hyp(n >= 0, m >= 0, L(n, m) == R(n, m),                              # induction hypothesis
          L(n + 1, m) == L(n, m) + Row(n, m),                              # definition
          R(n + 1, m) == R(n, m) + Row(n, m))                              # interchange.additivity
    q.goal(L(n + 1, m) == R(n + 1, m))
    out.append(discharge(q, GROUP_2PASS, t0=t0))
    return out
