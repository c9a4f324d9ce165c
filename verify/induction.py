"""Unbounded certificates: 3-pass = 2-pass = 1-pass for ALL tile counts M1 >= 1 and tile sizes M0 >= 1.

This module is an SMT back end, like ``smt.py``: it imports z3 directly. It is the only place in the
checker with unbounded (induction) proofs; every other back end checks fixed sizes. Each proof obligation
is ONE quantifier-free Z3 query (hypotheses AND NOT goal; ``unsat`` = proved). Z3 is never asked to find an
induction (measured: that returns unknown after ~15 s); the induction skeleton is written here by hand and
Z3 only checks each base case and each step. Every query has a 10 s timeout and ``unknown`` is reported as
verdict "unknown", never as a pass. Queries run in-process (no killable child as for the bounded back ends):
they have at most ~25 variables, take 1-50 ms each and all of them together well under 1 s, far from the
sizes where Z3's own timeout was measured to overrun.

Model
=====
Ranks ``p`` (query row) and ``f`` (output column) are never reduced and no operator of the cascades mixes
two different p or two different f: every tensor of the cascades at (f, p) is computed from row p of QK and
column f of V only. So it suffices to prove the claim for ONE fixed (p, f); p and f are dropped below.
Rank ``e`` is reduced first (QK = sum_e Q*K) and identically in all cascades, so the scores
``s_m = QK[m]`` are taken as arbitrary finite reals and ``v_m = V[f, m]`` as arbitrary reals.

Tiles. ``m = m1*M0 + m0`` (split); tile k holds ``s_{k,i} = s_{k*M0+i}``, ``v_{k,i}``, i < M0.
A tile is abstracted by its local summary (M0 >= 1, so the tile is nonempty and LM_k is finite):

    LM_k   = max_i s_{k,i}
    SLD_k  = sum_i exp(s_{k,i} - LM_k)            (>= 1: the maximal element contributes exp(0) = 1)
    SLNV_k = sum_i exp(s_{k,i} - LM_k) * v_{k,i}  (any real)

Nothing else about a tile is used, which is why one proof covers every M0: sums over i < M0 occur only
through the rebase lemma (below), which is itself proved by induction over the number of terms.

Sums and maxima over a symbolic range. A sum ``sum_{j<n} t_j`` with symbolic n is represented by an
uninterpreted value (a Z3 Real constant, or an uninterpreted function of n in the split-sum proofs) plus
ground instances of its recursive definition: ``S(0) = 0`` and ``S(n+1) = S(n) + t_n``. Max over a range
likewise, with ``G(1) = t_0`` and ``G(n+1) = max(G(n), t_n)`` (max over an empty range is -inf, so the
recursion for max starts at n = 1). The induction hypothesis is stated on these values, e.g. the 1-pass
step assumes RD[k] = D where D *names* ``sum_{j<k} SLD_j exp(LM_j - RM_k)``; the step never looks inside D.

exp. exp is NOT a Z3 function (an uninterpreted exp times out, measured). Each needed value
``exp(L)`` for a linear form L over the query's real constants is a fresh positive Real (an "atom"), and
the following ground facts are instantiated for the atoms of the query, all true of the real exp:

    exp(L) > 0;   L = 0 -> exp(L) = 1;   L > 0 -> exp(L) > 1;   L < 0 -> exp(L) < 1     (sign facts)
    L1 = L2 -> exp(L1) = exp(L2)                                   (congruence, every pair of atoms)
    exp(L1) * exp(L2) = exp(L3)   whenever L1 + L2 = L3 syntactically, and exp(L1)*exp(L2) = 1 when
                                  L1 + L2 = 0 syntactically                         (identity 4)

Because these are facts of the real exp, ``unsat`` is a proof for the real exp (the atoms over-approximate
it). A ``sat`` model may in principle use values no real exp takes, so every counterexample is replayed
with floats and math.exp (see ``replay``). The sign facts are not needed by any correct proof; they make
counterexamples realistic (an atom whose argument is 0 is forced to 1 - the measured trap "without exp(0)=1
Z3 yields false counterexamples on correct rules" cannot occur).

max. ``max(a, b)`` of finite reals is encoded exactly as ``If(a >= b, a, b)`` (linear real arithmetic).
The 1-pass invariant, rebase and 2-pass proofs never use that RM is a max (they hold for any finite shift;
checked by deleting the max definitions and the reachability facts below: only running_max.step and the
merge laws, which are about max itself, then fail); there the max definitions are hypotheses only so that
counterexamples are reachable states.

Vacuity. A query whose hypotheses are inconsistent would be "proved" for nothing; so after every ``unsat``
the hypotheses and exp facts are checked alone, and an inconsistent set turns the verdict into "unknown"
(result "vacuous").

-inf. The initial running max RM[0] = -inf and the merge identity (-inf, 0, 0) never reach Z3. They are
handled by exact extended-real case analysis in Python before a query is built:
``max(-inf, x) = x``; ``exp(-inf - x) = exp(-inf) = 0`` and ``exp(x - (-inf)) = +inf`` for finite x;
``0 * 0 = 0``; ``0 * (+inf)`` is UNDEFINED (NaN in floats) and refutes the obligation outright.
So the state k = 0 is a separate base case (RD = 0, RNV = 0, PRM[0] = exp(-inf - RM[1]) = 0), and the first
step k = 0 -> 1 is the second base case; the inductive step is only taken for k >= 1, where RM[k] is finite.

Reachability facts used as hypotheses (all true, none needed by the correct proofs, all there to make
counterexamples to induction replayable as real tiles): SLD_k >= 1, D >= 1 for k >= 1 (the tile/prefix
holding the running max contributes exp(0) = 1), s <= LM <= GM in the pointwise 2-pass query.

Obligations (names as in the returned records)
==============================================
"3pass=2pass (all M1, M0)"
  split.sum.inner.base/step    F(k*M0 + j) = F(k*M0) + I(k, j)     for 0 <= j <= M0   (induction on j)
  split.sum.outer.base/step    F(M1*M0) = T(M1)                    for M1 >= 1        (induction on M1)
        F(n) = sum_{m<n} g(m), I(k, j) = sum_{m0<j} g(k*M0 + m0), T(k) = sum_{m1<k} I(m1, M0); g is an
        uninterpreted summand, so this is identity 2 (sum) for every summand (SN, SN*V, ...).
  split.max.head/inner/outer .base/.step    the same for max (ranges start at 1: empty max is -inf)
  linearity.base/step          c * sum_{j<n} y_j = sum_{j<n} c*y_j  (identity 6; c = PRM or 1/SD)
  positivity.base/step         sum_{m<n} exp(x_m) > 0 for n >= 1   (so SD, GD are valid divisors)
  2pass.pointwise              CN = exp(BQK - LM) * PRM = exp(QK - GM) = SN   (identity 4, ground)
  2pass.AV                     deferred AV_acc/GD and elementwise sum (CN/GD)*V both equal the 3-pass AV
"3pass=1pass (all M1, M0)"
  running_max.base/step        RM[k] = max_{j<k} LM_j (identity 7); with split.max: RM[M1] = GM
  rebase.base/step             sum_{j<n} a_j exp(l_j - c') = exp(c - c') * sum_{j<n} a_j exp(l_j - c)
  invariant.base0/base1        identity 8 at k = 0 (empty sums) and k = 1 (first step, PRM[0] = 0)
  invariant.step.RD/.RNV       identity 8, k -> k+1 for k >= 1
  shift_invariance             identity 5 (from rebase): the AV does not depend on the finite shift
  conclusion                   AV = RNV[M1]/RD[M1] = AV_acc/GD of the 2-pass (= 3-pass by the group above)
"merge operator"
  merge.commutative, merge.associative, merge.identity.left/right (-inf handled exactly),
  merge.one_tile               the 1-pass state after one tile = e (+) summary(tile) = summary(tile)
  merge.step_is_1pass          1-pass step k -> k+1 = state_k (+) summary(tile_k)
  merge.nary.base/step         the n-ary merge over a chunk rank (max of the chunk maxima, each chunk rescaled to
                               it and summed: split-KV) is the left fold of (+) (induction on n, rebase lemma)
  Conclusion: by commutativity and associativity every tree/fold of (+) over the M1 tile summaries equals the
  left fold from e in tile order, which is the 1-pass state sequence (one_tile + step_is_1pass, induction on
  k), which equals the 3-pass by the group above - for every M1 >= 1, M0 >= 1. A tree over tile summaries
  never merges two empty states (whose formula would be exp(-inf - -inf), undefined).

Variants (for showing that each obligation can fail): see ``VARIANTS``. A refuted obligation carries a
counterexample (the Z3 model as floats) and a float replay: for the 1-pass step the model's abstract state
(RM_k, D, N) and tile (LM_k, SLD_k, SLNV_k) are realised as two concrete tiles of scores and values, the
(mutated) 1-pass is run on them with floats and compared with the invariant computed from the scores.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from fractions import Fraction

import z3

TIMEOUT_MS = 10_000

GROUP_2PASS = "3pass=2pass (all M1, M0)"
GROUP_1PASS = "3pass=1pass (all M1, M0)"
GROUP_MERGE = "merge operator"
GROUPS = (GROUP_2PASS, GROUP_1PASS, GROUP_MERGE)
# The cascades each group's lemmas describe (files in verify/models/): each is proved equal to the 3-pass
# cascade for every tile count. A chain step is lifted only when both its programs are among them.
# The lemma groups the argument for each model needs, all of them: a step is lifted only when it names every
# group the argument for both of its programs uses (the 1-pass conclusion is stated through the 2-pass AV; the
# split-KV argument goes n-ary merge -> fold of merges -> 1-pass -> 2-pass -> 3-pass; the n-ary merge step uses
# the rebase lemma of the 1-pass group).
REQUIRES = {
    "attention.egg": (),
    "attention_2pass.egg": (GROUP_2PASS,),
    "attention_2pass_deferred.egg": (GROUP_2PASS,),
    "attention_1pass.egg": (GROUP_2PASS, GROUP_1PASS),
    "attention_splitkv.egg": (GROUP_2PASS, GROUP_1PASS, GROUP_MERGE),
}
MODELS = {
    GROUP_2PASS: ("attention.egg", "attention_2pass.egg", "attention_2pass_deferred.egg"),
    GROUP_1PASS: ("attention.egg", "attention_1pass.egg"),
    GROUP_MERGE: ("attention.egg", "attention_splitkv.egg"),
}


# ---------------------------------------------------------------------------------------------------------
# records and variants


@dataclass
class Obligation:
    name: str
    statement: str
    verdict: str                      # "proved" | "refuted" | "unknown"
    seconds: float
    counterexample: dict | None = None
    group: str = ""
    result: str = ""                  # z3 answer: "unsat" | "sat" | "unknown" | "undefined" (-inf case)
    query: str = ""                   # SMT-LIB text of the query (hypotheses, facts, negated goal)
    replay: dict | None = None        # float replay of the counterexample


@dataclass(frozen=True)
class Variant:
    """Which cascade definitions to use. Only "correct" is the real algorithm."""
    correction: str = "old-new"       # 1-pass PRM[k] = exp(RM[k] - RM[k+1]); "new-old" flips it
    rnv_rescale: bool = True          # False: RNV[k+1] = SLNV' + RNV[k]
    merge_rescale_b: bool = True      # False: merge forgets exp(mb - m)
    prm_2pass: str = "LM-GM"          # 2-pass PRM = exp(LM - GM); "GM-LM" flipped; "none" dropped


VARIANTS: dict[str, Variant] = {
    "correct": Variant(),
    "drop_rnv_rescale": Variant(rnv_rescale=False),
    "flipped_correction": Variant(correction="new-old"),
    "merge_forgets_rescale": Variant(merge_rescale_b=False),
    "2pass_flipped_prm": Variant(prm_2pass="GM-LM"),
    "2pass_drop_prm": Variant(prm_2pass="none"),
}


def _variant(name: str | Variant) -> Variant:
    if isinstance(name, Variant):
        return name
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; choose from {sorted(VARIANTS)}") from None


# ---------------------------------------------------------------------------------------------------------
# one quantifier-free query with ground exp facts

NEG_INF = "-inf"          # marker for the extended-real -inf; never becomes a Z3 term


class _Undefined(Exception):
    """An extended-real operation without a value (0 * +inf): the obligation is refuted outright."""

    def __init__(self, reason: str, detail: dict):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class _Query:
    def __init__(self, name: str, statement: str):
        self.name = name
        self.statement = statement
        self.vars: dict[str, z3.ExprRef] = {}
        self.weights: list[str] = []         # reals that are sums with a term >= 1 (for tidy models)
        self.atoms: dict[tuple, z3.ExprRef] = {}
        self.atom_names: dict[tuple, str] = {}
        self.hyps: list[z3.BoolRef] = []
        self.goals: list[z3.BoolRef] = []
        self.fresh = 0

    # variables -------------------------------------------------------------------------------------------
    def real(self, name: str) -> z3.ArithRef:
        if name not in self.vars:
            self.vars[name] = z3.Real(name)
        return self.vars[name]

    def int(self, name: str) -> z3.ArithRef:
        if name not in self.vars:
            self.vars[name] = z3.Int(name)
        return self.vars[name]

    def weight(self, name: str) -> z3.ArithRef:
        """A real that is a nonempty sum of exp terms one of which is exp(0): >= 1 (reachability fact)."""
        x = self.real(name)
        self.weights.append(name)
        self.hyp(x >= 1)
        return x

    def hyp(self, *cs):
        self.hyps.extend(cs)

    def goal(self, *cs):
        self.goals.extend(cs)

    def max_def(self, name: str, a: str, b: str) -> str:
        """name = max(a, b) for finite a, b (a or b may be NEG_INF: max(-inf, x) = x, exactly)."""
        if a == NEG_INF and b == NEG_INF:
            raise _Undefined("max(-inf, -inf) leaves the finite fragment", {})
        x = self.real(name)
        if a == NEG_INF:
            self.hyp(x == self.real(b))
        elif b == NEG_INF:
            self.hyp(x == self.real(a))
        else:
            ra, rb = self.real(a), self.real(b)
            self.hyp(x == z3.If(ra >= rb, ra, rb))
        return name

    # exp atoms -------------------------------------------------------------------------------------------
    @staticmethod
    def _key(lin: dict[str, Fraction]) -> tuple:
        return tuple(sorted((n, Fraction(c)) for n, c in lin.items() if c != 0))

    def _lin_z3(self, key: tuple) -> z3.ArithRef:
        if not key:
            return z3.RealVal(0)
        return z3.Sum([self.vars[n] * z3.RealVal(c) if c != 1 else self.vars[n] for n, c in key])

    @staticmethod
    def _lin_text(key: tuple) -> str:
        out = ""
        for n, c in sorted(key, key=lambda t: t[1] < 0):      # positive terms first
            sign = "-" if c < 0 else "+"
            mag = abs(c)
            term = n if mag == 1 else f"{mag}*{n}"
            out += (f" {sign} " if out else ("-" if c < 0 else "")) + term
        return out or "0"

    def exp(self, lin: dict[str, int | Fraction]) -> z3.ArithRef:
        for n in lin:
            if n == NEG_INF:
                raise AssertionError("-inf must be handled before building a query")
            self.real(n)
        key = self._key(lin)
        if not key:
            return z3.RealVal(1)                       # exp(0) = 1, syntactically
        if key not in self.atoms:
            name = f"exp({self._lin_text(key)})"
            self.atoms[key] = z3.Real(name)
            self.atom_names[key] = name
        return self.atoms[key]

    def exp_diff(self, a: str, b: str) -> z3.ArithRef:
        """exp(a - b) for finite a, b."""
        return self.exp({a: 1, b: -1} if a != b else {})

    def exp_facts(self) -> list[z3.BoolRef]:
        facts = []
        keys = list(self.atoms)
        for k in keys:
            e, L = self.atoms[k], self._lin_z3(k)
            facts += [e > 0, z3.Implies(L == 0, e == 1), z3.Implies(L > 0, e > 1), z3.Implies(L < 0, e < 1)]
        for i, a in enumerate(keys):
            for b in keys[i + 1:]:
                facts.append(z3.Implies(self._lin_z3(a) == self._lin_z3(b), self.atoms[a] == self.atoms[b]))
        index = {k: k for k in keys}
        for i, a in enumerate(keys):
            for b in keys[i:]:
                s = dict(a)
                for n, c in b:
                    s[n] = s.get(n, 0) + c
                ks = self._key(s)
                prod = self.atoms[a] * self.atoms[b]
                if not ks:
                    facts.append(prod == 1)
                elif ks in index:
                    facts.append(prod == self.atoms[ks])
        return facts

    # solving ---------------------------------------------------------------------------------------------
    def solver(self, extra=(), negated_goal: bool = True) -> z3.Solver:
        s = z3.Solver()
        s.set("timeout", TIMEOUT_MS)
        s.add(*self.hyps)
        s.add(*self.exp_facts())
        s.add(*extra)
        if negated_goal:
            s.add(z3.Not(z3.And(*self.goals)) if len(self.goals) != 1 else z3.Not(self.goals[0]))
        return s

    def model_dict(self, m: z3.ModelRef) -> dict:
        out = {}
        for name, v in self.vars.items():
            out[name] = _value(m.eval(v, model_completion=True))
        for key, v in self.atoms.items():
            out[self.atom_names[key]] = _value(m.eval(v, model_completion=True))
        return out

    def tidy(self) -> list[z3.BoolRef]:
        """Extra constraints asked for ONLY when searching a counterexample (never in a proof): moderate
        magnitudes, and weights > 1 so that a weight is realisable by a tile of M0 >= 2 finite scores."""
        out = []
        for v in self.vars.values():
            if z3.is_real(v):
                out += [v >= -8, v <= 8]
        for name in self.weights:
            out.append(self.vars[name] >= Fraction(3, 2))
        return out


def _value(v: z3.ExprRef):
    if z3.is_int_value(v):
        return v.as_long()
    if z3.is_rational_value(v):
        return float(Fraction(v.numerator_as_long(), v.denominator_as_long()))
    if z3.is_algebraic_value(v):
        return float(v.approx(20).as_decimal(20).rstrip("?"))
    return str(v)


def _discharge(q: _Query, group: str, replay=None, build_error: _Undefined | None = None,
               t0: float | None = None) -> Obligation:
    """Run the query; sat -> refuted with a (tidy if possible) model replayed by `replay(cex)`."""
    t0 = time.perf_counter() if t0 is None else t0
    if build_error is not None:
        cex = dict(build_error.detail)
        cex["reason"] = build_error.reason
        rep = replay(cex) if replay else None
        return Obligation(q.name, q.statement, "refuted", time.perf_counter() - t0, cex, group,
                          "undefined", "(not sent to Z3: extended-real case) " + build_error.reason, rep)
    s = q.solver()
    text = s.sexpr()
    r = s.check()
    cex = rep = None
    if r == z3.unsat:
        verdict = "proved"
        if q.solver(negated_goal=False).check() != z3.sat:         # vacuity check
            verdict, r = "unknown", "vacuous"
    elif r == z3.sat:
        verdict = "refuted"
        model = s.model()
        st = q.solver(q.tidy())
        if st.check() == z3.sat:
            model = st.model()
        cex = q.model_dict(model)
        rep = replay(cex) if replay else None
    else:
        verdict = "unknown"
    return Obligation(q.name, q.statement, verdict, time.perf_counter() - t0, cex, group, str(r), text, rep)


# ---------------------------------------------------------------------------------------------------------
# cascade steps over the symbolic encoding (shared by the obligations)


def _zero():
    return z3.RealVal(0)


def _onepass_step(q: _Query, v: Variant, old: tuple, tile: tuple, k1: str) -> tuple:
    """One 1-pass step. old = (RM_k name or NEG_INF, RD_k, RNV_k); tile = (LM name, SLD, SLNV) its local
    summary. Returns (RM_{k+1} name, RD_{k+1}, RNV_{k+1}).

    SLD'_k = sum_i exp(s_{k,i} - RM_{k+1}) is not a new unknown: by the rebase lemma (proved below, for any
    number of terms, here M0) it equals exp(LM_k - RM_{k+1}) * SLD_k; same for SLNV'."""
    rm, rd, rnv = old
    lm, sld, slnv = tile
    rm1 = q.max_def(f"RM_{k1}", rm, lm)
    sldp, slnvp = q.real(f"SLDp_{k1}"), q.real(f"SLNVp_{k1}")
    q.hyp(sldp == q.exp_diff(lm, rm1) * sld, slnvp == q.exp_diff(lm, rm1) * slnv)
    if rm == NEG_INF:
        # PRM[0] = exp(+-(-inf - RM[1])): exp(-inf) = 0, or exp(+inf) = +inf for the flipped correction.
        if v.correction == "old-new":
            rd_term, rnv_term = _zero(), _zero()          # RD[0]*0 = 0*0 = 0
        else:
            raise _Undefined("PRM[0] = exp(RM[1] - RM[0]) = exp(+inf) = +inf and RD[0]*PRM[0] = 0*inf is "
                             "undefined", {"RM_0": "-inf", "RD_0": 0.0, "RNV_0": 0.0, "PRM_0": "+inf"})
        if not v.rnv_rescale:
            rnv_term = rnv
    else:
        prm = q.exp_diff(rm, rm1) if v.correction == "old-new" else q.exp_diff(rm1, rm)
        rd_term = rd * prm
        rnv_term = rnv * prm if v.rnv_rescale else rnv
    return rm1, sldp + rd_term, slnvp + rnv_term


def _merge(q: _Query, v: Variant, a: tuple, b: tuple, name: str) -> tuple:
    """(ma,da,oa) (+) (mb,db,ob) = (m, da*exp(ma-m) + db*exp(mb-m), oa*exp(ma-m) + ob*exp(mb-m))."""
    (ma, da, oa), (mb, db, ob) = a, b
    if ma == NEG_INF and mb == NEG_INF:
        raise _Undefined("(-inf,0,0) (+) (-inf,0,0) needs exp(-inf - -inf): undefined", {})
    m = q.max_def(name, ma, mb)
    fa = _zero() if ma == NEG_INF else q.exp_diff(ma, m)           # exp(-inf - m) = 0, m finite
    if not v.merge_rescale_b:
        fb = z3.RealVal(1)
    else:
        fb = _zero() if mb == NEG_INF else q.exp_diff(mb, m)
    return m, da * fa + db * fb, oa * fa + ob * fb


# ---------------------------------------------------------------------------------------------------------
# float mirror of the cascades (for replaying counterexamples)


def _fexp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _f_onepass_step(v: Variant, state, scores, values):
    rm, rd, rnv = state
    lm = max(scores)
    rm1 = max(rm, lm)
    sln = [_fexp(s - rm1) for s in scores]
    sld = sum(sln)
    slnv = sum(w * x for w, x in zip(sln, values))
    prm = _fexp(rm - rm1) if v.correction == "old-new" else _fexp(rm1 - rm)
    return rm1, sld + rd * prm, slnv + (rnv * prm if v.rnv_rescale else rnv)


def _f_onepass(v: Variant, tiles):
    state = (-math.inf, 0.0, 0.0)
    for scores, values in tiles:
        state = _f_onepass_step(v, state, scores, values)
    return state


def _f_threepass(scores, values):
    gm = max(scores)
    sn = [math.exp(s - gm) for s in scores]
    sd = sum(sn)
    return sum((w / sd) * x for w, x in zip(sn, values))


def _f_twopass(v: Variant, tiles):
    lms = [max(sc) for sc, _ in tiles]
    gm = max(lms)
    acc = gd = 0.0
    for (sc, vals), lm in zip(tiles, lms):
        prm = {"LM-GM": _fexp(lm - gm), "GM-LM": _fexp(gm - lm), "none": 1.0}[v.prm_2pass]
        for s, x in zip(sc, vals):
            cn = math.exp(s - lm) * prm
            acc += cn * x
            gd += cn
    return acc / gd


def _f_merge(v: Variant, a, b):
    (ma, da, oa), (mb, db, ob) = a, b
    m = max(ma, mb)
    fa = _fexp(ma - m)
    fb = _fexp(mb - m) if v.merge_rescale_b else 1.0
    return m, da * fa + db * fb, oa * fa + ob * fb


def _differ(x: float, y: float, rel: float = 1e-9) -> bool:
    if math.isnan(x) or math.isnan(y):
        return True
    return abs(x - y) > rel * max(1.0, abs(x), abs(y))


def _realise_tiles(summaries):
    """Concrete tiles (scores, values) with the given local summaries (LM, SLD >= 1, SLNV), same M0 for all.
    One element sits at LM (weight exp(0) = 1); the other M0-1 share the rest, each weight < 1, i.e. a
    finite score below LM. Needs SLD > 1 for every tile when M0 >= 2 (the tidy models guarantee it)."""
    if all(w == 1 for _, w, _ in summaries):
        m0 = 1
    else:
        m0 = int(max(w for _, w, _ in summaries)) + 2
    tiles = []
    for lm, w, num in summaries:
        if m0 == 1:
            scores = [lm]
        else:
            if w <= 1:
                raise ValueError("a tile of weight 1 with M0 >= 2 is not realisable with finite scores")
            rest = (w - 1) / (m0 - 1)
            scores = [lm] + [lm + math.log(rest)] * (m0 - 1)
        tiles.append((scores, [num / w] * m0))
    return tiles


# ---------------------------------------------------------------------------------------------------------
# group "3pass=2pass (all M1, M0)"


def _split_sum(v: Variant) -> list[Obligation]:
    R, I_ = z3.RealSort(), z3.IntSort()
    out = []

    def base_q(name, stmt):
        q = _Query(name, stmt)
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
    out.append(_discharge(q, GROUP_2PASS, t0=t0))

    t0 = time.perf_counter()
    q, k, M0, F, I, T, g = base_q("split.sum.inner.step",
                                  "for 0 <= j < M0: F(k*M0+j) = F(k*M0) + I(k,j) implies the same for j+1")
    j = q.int("j")
    q.hyp(k >= 0, M0 >= 1, j >= 0, j < M0,
          F(k * M0 + j) == F(k * M0) + I(k, j),                        # induction hypothesis
          F(k * M0 + j + 1) == F(k * M0 + j) + g(k * M0 + j),          # definition of the flat sum
          I(k, j + 1) == I(k, j) + g(k * M0 + j))                      # definition of the tile sum
    q.goal(F(k * M0 + j + 1) == F(k * M0) + I(k, j + 1))
    out.append(_discharge(q, GROUP_2PASS, t0=t0))

    t0 = time.perf_counter()
    q, k, M0, F, I, T, g = base_q("split.sum.outer.base",
                                  "M1 = 1: sum_{m<1*M0} g(m) = sum_{m1<1} sum_{m0<M0} g(m1*M0+m0)")
    q.hyp(M0 >= 1, F(0) == 0, T(0) == 0, T(1) == T(0) + I(0, M0),
          F(0 * M0 + M0) == F(0 * M0) + I(0, M0))                      # inner lemma at k = 0, j = M0
    q.goal(F(1 * M0) == T(1))
    out.append(_discharge(q, GROUP_2PASS, t0=t0))

    t0 = time.perf_counter()
    q, k, M0, F, I, T, g = base_q("split.sum.outer.step",
                                  "for M1 = k >= 1: F(k*M0) = T(k) implies F((k+1)*M0) = T(k+1)")
    q.hyp(k >= 1, M0 >= 1, F(k * M0) == T(k),
          F(k * M0 + M0) == F(k * M0) + I(k, M0),                      # inner lemma at j = M0
          T(k + 1) == T(k) + I(k, M0))
    q.goal(F((k + 1) * M0) == T(k + 1))
    out.append(_discharge(q, GROUP_2PASS, t0=t0))
    return out


def _split_max(v: Variant) -> list[Obligation]:
    R, I_ = z3.RealSort(), z3.IntSort()
    out = []

    def base_q(name, stmt):
        q = _Query(name, stmt)
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
        out.append(_discharge(q, GROUP_2PASS, t0=t0))

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


def _linearity_positivity(v: Variant) -> list[Obligation]:
    R, I_ = z3.RealSort(), z3.IntSort()
    out = []
    t0 = time.perf_counter()
    q = _Query("linearity.base", "c * sum_{j<0} y_j = sum_{j<0} c*y_j (both empty sums are 0)")
    Y, Z = z3.Function("Y", I_, R), z3.Function("Z", I_, R)
    c = q.real("c")
    q.hyp(Y(0) == 0, Z(0) == 0)
    q.goal(c * Y(0) == Z(0))
    out.append(_discharge(q, GROUP_2PASS, t0=t0))

    t0 = time.perf_counter()
    q = _Query("linearity.step", "for n >= 0: c * sum_{j<n} y_j = sum_{j<n} c*y_j implies it for n+1")
    Y, Z, y = z3.Function("Y", I_, R), z3.Function("Z", I_, R), z3.Function("y", I_, R)
    c, n = q.real("c"), q.int("n")
    q.hyp(n >= 0, c * Y(n) == Z(n), Y(n + 1) == Y(n) + y(n), Z(n + 1) == Z(n) + c * y(n))
    q.goal(c * Y(n + 1) == Z(n + 1))
    out.append(_discharge(q, GROUP_2PASS, t0=t0))

    t0 = time.perf_counter()
    q = _Query("positivity.base", "sum_{m<1} exp(x_m) > 0")
    P, _x0 = z3.Function("P", I_, R), q.real("x_0")
    q.hyp(P(1) == q.exp({"x_0": 1}))
    q.goal(P(1) > 0)
    out.append(_discharge(q, GROUP_2PASS, t0=t0))

    t0 = time.perf_counter()
    q = _Query("positivity.step", "for n >= 1: sum_{m<n} exp(x_m) > 0 implies sum_{m<n+1} exp(x_m) > 0")
    P, n = z3.Function("P", I_, R), q.int("n")
    q.real("x_n")
    q.hyp(n >= 1, P(n) > 0, P(n + 1) == P(n) + q.exp({"x_n": 1}))
    q.goal(P(n + 1) > 0)
    out.append(_discharge(q, GROUP_2PASS, t0=t0))
    return out


def _prm_2pass(q: _Query, v: Variant):
    return {"LM-GM": lambda: q.exp_diff("LM", "GM"), "GM-LM": lambda: q.exp_diff("GM", "LM"),
            "none": lambda: z3.RealVal(1)}[v.prm_2pass]()


def _replay_2pass_pointwise(v: Variant):
    def replay(cex):
        s, lm, gm = cex["s"], cex["LM"], cex["GM"]
        prm = {"LM-GM": _fexp(lm - gm), "GM-LM": _fexp(gm - lm), "none": 1.0}[v.prm_2pass]
        cn, sn = math.exp(s - lm) * prm, math.exp(s - gm)
        # a whole input built from the same numbers: tile 0 = [LM, s], tile 1 = [GM, GM]
        tiles = [([lm, s], [1.0, 2.0]), ([gm, gm], [3.0, 4.0])]
        flat_s = [x for sc, _ in tiles for x in sc]
        flat_v = [x for _, vs in tiles for x in vs]
        av2, av3 = _f_twopass(v, tiles), _f_threepass(flat_s, flat_v)
        return {"CN": cn, "SN": sn, "disagrees": _differ(cn, sn),
                "tiles": tiles, "AV_2pass": av2, "AV_3pass": av3, "AV_disagrees": _differ(av2, av3)}
    return replay


def _twopass_ground(v: Variant) -> list[Obligation]:
    out = []
    t0 = time.perf_counter()
    q = _Query("2pass.pointwise", "CN[m1,m0] = exp(BQK - LM[m1]) * PRM[m1] equals SN[m] = exp(QK[m] - GM) "
               "at m = m1*M0 + m0, where GM(2-pass) = max_m1 LM = GM(3-pass) by split.max")
    s, lm, gm = q.real("s"), q.real("LM"), q.real("GM")
    q.hyp(s <= lm, lm <= gm)                     # s is in tile m1 (LM its max), GM = max over all tiles
    cn = q.real("CN")
    q.hyp(cn == q.exp_diff("s", "LM") * _prm_2pass(q, v))
    q.goal(cn == q.exp_diff("s", "GM"))
    out.append(_discharge(q, GROUP_2PASS, _replay_2pass_pointwise(v), t0=t0))

    t0 = time.perf_counter()
    q = _Query("2pass.AV", "with GD = sum_m1 SLD*PRM = sum_m1 sum_m0 CN = SD (linearity, split.sum, "
               "2pass.pointwise) and SD > 0 (positivity): AV_acc/GD = AV(3-pass) (deferred division) and "
               "A = CN/GD = SN/SD elementwise (so sum_m A*V is the 3-pass AV)")
    gd, sd, acc, num, cn, sn = (q.real(n) for n in ("GD", "SD", "AV_acc", "NUM", "CN", "SN"))
    av3, a2, a3 = q.real("AV3"), q.real("A2"), q.real("A3")
    q.hyp(gd == sd, sd > 0, acc == num, cn == sn,
          av3 * sd == num,                   # AV3 = sum_m (SN/SD) V = NUM/SD (linearity, c = 1/SD)
          a2 * gd == cn, a3 * sd == sn)      # A2 = CN/GD, A3 = SN/SD (divisors nonzero)
    q.goal(acc / gd == av3, a2 == a3)
    out.append(_discharge(q, GROUP_2PASS, t0=t0))
    return out


# ---------------------------------------------------------------------------------------------------------
# group "3pass=1pass (all M1, M0)"


def _running_max(v: Variant) -> list[Obligation]:
    out = []
    t0 = time.perf_counter()
    q = _Query("running_max.base", "RM[1] = max(RM[0], LM_0) = max(-inf, LM_0) = LM_0 = max_{j<1} LM_j")
    q.real("LM_0")
    q.max_def("RM_1", NEG_INF, "LM_0")           # -inf handled exactly, outside Z3
    g1 = q.real("G_1")
    q.hyp(g1 == q.real("LM_0"))
    q.goal(q.real("RM_1") == g1)
    out.append(_discharge(q, GROUP_1PASS, t0=t0))

    t0 = time.perf_counter()
    q = _Query("running_max.step", "for k >= 1: RM[k] = max_{j<k} LM_j implies RM[k+1] = max_{j<k+1} LM_j")
    rmk, gk, gk1, lmk = q.real("RM_k"), q.real("G_k"), q.real("G_k1"), q.real("LM_k")
    q.max_def("RM_k1", "RM_k", "LM_k")
    q.hyp(rmk == gk, gk1 == z3.If(gk >= lmk, gk, lmk))
    q.goal(q.real("RM_k1") == gk1)
    out.append(_discharge(q, GROUP_1PASS, t0=t0))
    return out


def _rebase(v: Variant) -> list[Obligation]:
    out = []
    t0 = time.perf_counter()
    q = _Query("rebase.base", "sum_{j<0} a_j exp(l_j - c') = exp(c - c') * sum_{j<0} a_j exp(l_j - c) = 0")
    s0c, s0c2 = q.real("S_0_c"), q.real("S_0_c2")
    q.real("c"), q.real("c2")
    q.hyp(s0c == 0, s0c2 == 0)
    q.goal(s0c2 == q.exp_diff("c", "c2") * s0c)
    out.append(_discharge(q, GROUP_1PASS, t0=t0))

    t0 = time.perf_counter()
    q = _Query("rebase.step", "for n >= 0: S(n, c') = exp(c - c') S(n, c) implies it for n+1, where "
               "S(n, c) = sum_{j<n} a_j exp(l_j - c)")
    skc, skc2, sk1c, sk1c2, a = (q.real(n) for n in ("S_n_c", "S_n_c2", "S_n1_c", "S_n1_c2", "a_n"))
    q.real("l_n"), q.real("c"), q.real("c2")
    q.hyp(skc2 == q.exp_diff("c", "c2") * skc,
          sk1c == skc + a * q.exp_diff("l_n", "c"),
          sk1c2 == skc2 + a * q.exp_diff("l_n", "c2"))
    q.goal(sk1c2 == q.exp_diff("c", "c2") * sk1c)
    out.append(_discharge(q, GROUP_1PASS, t0=t0))
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
        tiles = _realise_tiles([(cex["RM_k"], d, n), (cex["LM_k"], sld, slnv)])
        (s0, v0), (s1, v1) = tiles
        state1 = (max(s0), sum(math.exp(s - max(s0)) for s in s0),
                  sum(math.exp(s - max(s0)) * x for s, x in zip(s0, v0)))
        rm2, rd2, rnv2 = _f_onepass_step(v, state1, s1, v1)
        all_s, all_v = s0 + s1, v0 + v1
        gm = max(all_s)
        inv_rd = sum(math.exp(s - gm) for s in all_s)
        inv_rnv = sum(math.exp(s - gm) * x for s, x in zip(all_s, all_v))
        got, want = (rd2, inv_rd) if component == "RD" else (rnv2, inv_rnv)
        full = _f_onepass(v, tiles)
        av1 = full[2] / full[1] if full[1] else math.nan
        av3 = _f_threepass(all_s, all_v)
        return {"tiles": tiles, "state_k": state1, f"{component}[k+1] by recurrence": got,
                f"{component}[k+1] by invariant": want, "disagrees": _differ(got, want),
                "AV_1pass": av1, "AV_3pass": av3, "AV_disagrees": _differ(av1, av3)}
    return replay


def _replay_base1(v: Variant):
    def replay(cex):
        lm, w, num = 0.5, 1.0, 2.0
        state = _f_onepass_step(v, (-math.inf, 0.0, 0.0), [lm], [num])
        return {"tile": ([lm], [num]), "state_1 by recurrence": state, "state_1 by invariant": (lm, w, num),
                "disagrees": any(_differ(x, y) for x, y in zip(state, (lm, w, num)))}
    return replay


def _invariant(v: Variant) -> list[Obligation]:
    out = []
    t0 = time.perf_counter()
    q = _Query("invariant.base0", "k = 0: RD[0] = 0 = sum_{j<0} (...) and RNV[0] = 0 = sum_{j<0} (...); "
               "the sums are empty, so no exp(LM_j - RM[0]) with RM[0] = -inf is ever evaluated")
    rd0, rnv0, d0, n0 = q.real("RD_0"), q.real("RNV_0"), q.real("D_0"), q.real("N_0")
    q.hyp(rd0 == 0, rnv0 == 0, d0 == 0, n0 == 0)
    q.goal(rd0 == d0, rnv0 == n0)
    out.append(_discharge(q, GROUP_1PASS, t0=t0))

    t0 = time.perf_counter()
    q = _Query("invariant.base1", "k = 1: from (RM, RD, RNV)[0] = (-inf, 0, 0), one step gives "
               "RD[1] = SLD_0 exp(LM_0 - RM[1]) and RNV[1] = SLNV_0 exp(LM_0 - RM[1]); PRM[0] = "
               "exp(-inf - RM[1]) = 0 exactly (RM[1] = LM_0 finite)")
    err = None
    try:
        _lm0, sld0, slnv0 = q.real("LM_0"), q.weight("SLD_0"), q.real("SLNV_0")
        rm1, rd1, rnv1 = _onepass_step(q, v, (NEG_INF, _zero(), _zero()), ("LM_0", sld0, slnv0), 1)
        d1, n1 = q.real("D_1"), q.real("N_1")
        q.hyp(d1 == 0 + sld0 * q.exp_diff("LM_0", rm1), n1 == 0 + slnv0 * q.exp_diff("LM_0", rm1))
        q.goal(rd1 == d1, rnv1 == n1)
    except _Undefined as e:
        err = e
    out.append(_discharge(q, GROUP_1PASS, _replay_base1(v), err, t0=t0))

    for comp in ("RD", "RNV"):
        t0 = time.perf_counter()
        q = _Query(f"invariant.step.{comp}",
                   f"for k >= 1: {comp}[k] = sum_{{j<k}} {'SLD' if comp == 'RD' else 'SLNV'}_j exp(LM_j - RM[k]) "
                   f"implies the same at k+1")
        _rmk, _lmk = q.real("RM_k"), q.real("LM_k")
        sld = q.weight("SLD_k")
        slnv = q.real("SLNV_k")
        d = q.weight("D")                               # D = sum_{j<k} SLD_j exp(LM_j - RM_k), k >= 1
        nn = q.real("N")                                # N = sum_{j<k} SLNV_j exp(LM_j - RM_k)
        rdk, rnvk = q.real("RD_k"), q.real("RNV_k")
        q.hyp(rdk == d, rnvk == nn)                     # induction hypothesis
        rm1, rd1, rnv1 = _onepass_step(q, v, ("RM_k", rdk, rnvk), ("LM_k", sld, slnv), "k1")
        # target: sum_{j<k+1} X_j exp(LM_j - RM_{k+1})
        #       = sum_{j<k} X_j exp(LM_j - RM_{k+1}) + X_k exp(LM_k - RM_{k+1})     (sum definition)
        #       = exp(RM_k - RM_{k+1}) * [D or N]     + X_k exp(LM_k - RM_{k+1})     (rebase lemma)
        dr, tgt = q.real(f"{comp}_rebased"), q.real(f"{comp}_target")
        prefix, x_k, got = (d, sld, rd1) if comp == "RD" else (nn, slnv, rnv1)
        q.hyp(dr == q.exp_diff("RM_k", rm1) * prefix, tgt == dr + x_k * q.exp_diff("LM_k", rm1))
        q.goal(got == tgt)
        out.append(_discharge(q, GROUP_1PASS, _replay_step(v, comp), t0=t0))
    return out


def _shift_and_conclusion(v: Variant) -> list[Obligation]:
    out = []
    t0 = time.perf_counter()
    q = _Query("shift_invariance", "identity 5: for finite c, c' and n >= 1 terms, "
               "(sum a_j exp(l_j - c')) / (sum exp(l_j - c')) = (sum a_j exp(l_j - c)) / (sum exp(l_j - c))")
    nc, dc, nc2, dc2 = q.real("N_c"), q.real("D_c"), q.real("N_c2"), q.real("D_c2")
    q.real("c"), q.real("c2")
    q.hyp(dc > 0,                                           # positivity (n >= 1 terms)
          nc2 == q.exp_diff("c", "c2") * nc, dc2 == q.exp_diff("c", "c2") * dc)   # rebase lemma
    q.goal(nc2 / dc2 == nc / dc)
    out.append(_discharge(q, GROUP_1PASS, t0=t0))

    t0 = time.perf_counter()
    q = _Query("conclusion", "invariant at k = M1 with RM[M1] = GM (running_max + split.max): each term "
               "SLD_j exp(LM_j - RM[M1]) is the 2-pass CD_j = SLD_j PRM_j, so RD[M1] = GD, RNV[M1] = AV_acc "
               "and AV = RNV[M1]/RD[M1] = AV_acc/GD = AV(2-pass) = AV(3-pass)")
    rmm, gm, _lmj = q.real("RM_M1"), q.real("GM"), q.real("LM_j")
    sld, t1, t2 = q.weight("SLD_j"), q.real("term_1pass"), q.real("term_2pass")
    rd, rnv, gd, acc, av1, av2 = (q.real(n) for n in ("RD_M1", "RNV_M1", "GD", "AV_acc", "AV1", "AV2"))
    q.hyp(rmm == gm, t1 == sld * q.exp_diff("LM_j", "RM_M1"), t2 == sld * q.exp_diff("LM_j", "GM"),
          rd == gd, rnv == acc, gd > 0, av1 * rd == rnv, av2 * gd == acc)
    q.goal(t1 == t2, av1 == av2)
    out.append(_discharge(q, GROUP_1PASS, t0=t0))
    return out


# ---------------------------------------------------------------------------------------------------------
# group "merge operator"


def _triple(q: _Query, tag: str, weight: bool = False):
    m = f"m{tag}"
    q.real(m)
    d = q.weight(f"d{tag}") if weight else q.real(f"d{tag}")
    return m, d, q.real(f"o{tag}")


def _replay_merge(v: Variant, law: str):
    def replay(cex):
        t = {x: (cex[f"m{x}"], cex[f"d{x}"], cex[f"o{x}"]) for x in "abc" if f"m{x}" in cex}
        if law == "comm":
            lhs, rhs = _f_merge(v, t["a"], t["b"]), _f_merge(v, t["b"], t["a"])
        else:
            lhs = _f_merge(v, _f_merge(v, t["a"], t["b"]), t["c"])
            rhs = _f_merge(v, t["a"], _f_merge(v, t["b"], t["c"]))
        return {"lhs": lhs, "rhs": rhs, "disagrees": any(_differ(x, y) for x, y in zip(lhs, rhs))}
    return replay


def _replay_step_merge(v: Variant):
    def replay(cex):
        tiles = _realise_tiles([(cex["RM_k"], cex["RD_k"], cex["RNV_k"]),
                                (cex["LM_k"], cex["SLD_k"], cex["SLNV_k"])])
        (s0, v0), (s1, v1) = tiles
        lm0 = max(s0)
        state = (lm0, sum(math.exp(s - lm0) for s in s0), sum(math.exp(s - lm0) * x for s, x in zip(s0, v0)))
        lm1 = max(s1)
        summ = (lm1, sum(math.exp(s - lm1) for s in s1), sum(math.exp(s - lm1) * x for s, x in zip(s1, v1)))
        one = _f_onepass_step(v, state, s1, v1)
        mer = _f_merge(v, state, summ)
        return {"tiles": tiles, "1pass step": one, "state (+) summary": mer,
                "disagrees": any(_differ(x, y) for x, y in zip(one, mer))}
    return replay


def _merge_laws(v: Variant) -> list[Obligation]:
    out = []
    t0 = time.perf_counter()
    q = _Query("merge.commutative", "a (+) b = b (+) a for finite states a, b")
    a, b = _triple(q, "a"), _triple(q, "b")
    l, r = _merge(q, v, a, b, "m_ab"), _merge(q, v, b, a, "m_ba")
    q.goal(q.real(l[0]) == q.real(r[0]), l[1] == r[1], l[2] == r[2])
    out.append(_discharge(q, GROUP_MERGE, _replay_merge(v, "comm"), t0=t0))

    t0 = time.perf_counter()
    q = _Query("merge.associative", "(a (+) b) (+) c = a (+) (b (+) c) for finite states (cases with an empty "
               "operand reduce to the identity laws)")
    a, b, c = _triple(q, "a"), _triple(q, "b"), _triple(q, "c")
    ab = _merge(q, v, a, b, "m_ab")
    l = _merge(q, v, ab, c, "m_ab_c")
    bc = _merge(q, v, b, c, "m_bc")
    r = _merge(q, v, a, bc, "m_a_bc")
    q.goal(q.real(l[0]) == q.real(r[0]), l[1] == r[1], l[2] == r[2])
    # exp facts only relate atoms present in the query; add the atoms the re-association goes through
    for x in ("ma", "mb", "mc", "m_ab", "m_bc"):
        for y in ("m_ab_c", "m_a_bc"):
            q.exp_diff(x, y)
    out.append(_discharge(q, GROUP_MERGE, _replay_merge(v, "assoc"), t0=t0))

    for side in ("left", "right"):
        t0 = time.perf_counter()
        q = _Query(f"merge.identity.{side}", ("(-inf,0,0) (+) b = b" if side == "left" else
                                               "a (+) (-inf,0,0) = a") +
                   " for finite states; max(-inf, m) = m and exp(-inf - m) = 0 exactly, outside Z3")
        x = _triple(q, "x")
        e = (NEG_INF, _zero(), _zero())
        res = _merge(q, v, e, x, "m_r") if side == "left" else _merge(q, v, x, e, "m_r")
        q.goal(q.real(res[0]) == q.real(x[0]), res[1] == x[1], res[2] == x[2])
        out.append(_discharge(q, GROUP_MERGE, t0=t0))

    t0 = time.perf_counter()
    q = _Query("merge.one_tile", "the 1-pass state after tile 0 and e (+) summary(tile 0) both equal the "
               "local summary (LM_0, SLD_0, SLNV_0)")
    err = None
    try:
        lm0, sld0, slnv0 = q.real("LM_0"), q.weight("SLD_0"), q.real("SLNV_0")
        s1 = _onepass_step(q, v, (NEG_INF, _zero(), _zero()), ("LM_0", sld0, slnv0), 1)
        mg = _merge(q, v, (NEG_INF, _zero(), _zero()), ("LM_0", sld0, slnv0), "m_e0")
        q.goal(q.real(s1[0]) == lm0, s1[1] == sld0, s1[2] == slnv0,
               q.real(mg[0]) == lm0, mg[1] == sld0, mg[2] == slnv0)
    except _Undefined as ex:
        err = ex
    out.append(_discharge(q, GROUP_MERGE, _replay_base1(v), err, t0=t0))

    t0 = time.perf_counter()
    q = _Query("merge.step_is_1pass", "for k >= 1: the 1-pass step (RM,RD,RNV)[k] -> [k+1] with tile k equals "
               "(RM,RD,RNV)[k] (+) (LM_k, SLD_k, SLNV_k)")
    _rmk, _lmk = q.real("RM_k"), q.real("LM_k")
    rdk, rnvk = q.weight("RD_k"), q.real("RNV_k")
    sld, slnv = q.weight("SLD_k"), q.real("SLNV_k")
    s1 = _onepass_step(q, v, ("RM_k", rdk, rnvk), ("LM_k", sld, slnv), "k1")
    mg = _merge(q, v, ("RM_k", rdk, rnvk), ("LM_k", sld, slnv), "m_k1")
    q.goal(q.real(s1[0]) == q.real(mg[0]), s1[1] == mg[1], s1[2] == mg[2])
    out.append(_discharge(q, GROUP_MERGE, _replay_step_merge(v), t0=t0))
    return out + _nary_merge(v)


def _nary_merge(v: Variant) -> list[Obligation]:
    """The n-ary merge of n >= 1 chunk states (M_n, D_n, O_n) = (max_c m_c, sum_c d_c exp(m_c - M_n),
    sum_c o_c exp(m_c - M_n)), as split-KV computes it over a chunk rank, is the left fold of binary merges."""
    out = []
    t0 = time.perf_counter()
    q = _Query("merge.nary.base", "n = 1: the n-ary merge of one chunk state is that state (= e (+) state)")
    m0, d0, o0, M1 = q.real("m_0"), q.real("d_0"), q.real("o_0"), q.real("M_1")
    q.hyp(M1 == m0)                                                   # max over one chunk
    e = q.exp_diff("m_0", "M_1")
    q.goal(d0 * e == d0, o0 * e == o0)
    out.append(_discharge(q, GROUP_MERGE, t0=t0))

    t0 = time.perf_counter()
    q = _Query("merge.nary.step", "for n >= 1: nary(n+1) = nary(n) (+) (m_n, d_n, o_n), using the rebase lemma "
               "for the first n chunks: sum_{c<n} d_c exp(m_c - M') = exp(M_n - M') D_n")
    Dn, On, dn, on = q.real("D_n"), q.real("O_n"), q.real("d_n"), q.real("o_n")
    q.real("M_n"), q.real("m_n")
    Mp = q.max_def("M_n1", "M_n", "m_n")                             # max over n+1 chunks
    Sd, So = q.real("S_d"), q.real("S_o")                             # the first n chunks rebased to M'
    q.hyp(Sd == q.exp_diff("M_n", Mp) * Dn, So == q.exp_diff("M_n", Mp) * On)   # rebase (group 1-pass)
    Dp = Sd + dn * q.exp_diff("m_n", Mp)
    Op = So + on * q.exp_diff("m_n", Mp)
    mg = _merge(q, v, ("M_n", Dn, On), ("m_n", dn, on), "M_fold")
    q.goal(q.real(mg[0]) == q.real(Mp), mg[1] == Dp, mg[2] == Op)
    out.append(_discharge(q, GROUP_MERGE, _replay_nary(v), t0=t0))
    return out


def _replay_nary(v: Variant):
    """Two chunk states: the first n chunks summarised as (M_n, D_n, O_n), then chunk n; n-ary merge vs fold."""
    def replay(cex):
        a, b = (cex["M_n"], cex["D_n"], cex["O_n"]), (cex["m_n"], cex["d_n"], cex["o_n"])
        m = max(a[0], b[0])
        nary = (m, a[1] * _fexp(a[0] - m) + b[1] * _fexp(b[0] - m), a[2] * _fexp(a[0] - m) + b[2] * _fexp(b[0] - m))
        fold = _f_merge(v, a, b)
        return {"n-ary merge": nary, "fold of (+)": fold, "disagrees": any(_differ(x, y) for x, y in zip(nary, fold))}
    return replay


# ---------------------------------------------------------------------------------------------------------
# public API


def prove_all(variant: str | Variant = "correct") -> dict[str, list[Obligation]]:
    """All obligations, grouped. For "correct" every verdict should be "proved"."""
    v = _variant(variant)
    return {
        GROUP_2PASS: _split_sum(v) + _split_max(v) + _linearity_positivity(v) + _twopass_ground(v),
        GROUP_1PASS: _running_max(v) + _rebase(v) + _invariant(v) + _shift_and_conclusion(v),
        GROUP_MERGE: _merge_laws(v),
    }


def prove_chain_unbounded(variant: str | Variant = "correct") -> list[Obligation]:
    """Every obligation of the unbounded 3-pass = 2-pass = 1-pass chain (and the merge operator), flat."""
    return [o for group in prove_all(variant).values() for o in group]


def _main(argv=None) -> int:
    import sys
    names = (argv if argv is not None else sys.argv[1:]) or ["correct"]
    for name in names:
        t0 = time.perf_counter()
        groups = prove_all(name)
        total = time.perf_counter() - t0
        print(f"== variant {name}: {total * 1000:.1f} ms")
        for group, obs in groups.items():
            print(f"  [{group}]")
            for o in obs:
                print(f"    {o.verdict:8s} {o.seconds * 1000:7.2f} ms  {o.name}")
                if o.counterexample is not None:
                    print(f"             counterexample: {o.counterexample}")
                    if o.replay is not None:
                        print(f"             replay: {o.replay}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
