"""Unbounded certificates: 3-pass = 2-pass = 1-pass for ALL tile counts M1 >= 1 and tile sizes M0 >= 1.

The package: the lemmas over the hand-written model of the cascades (this docstring; obligations.py: records,
groups, variants; query.py: one Z3 query and its discharge; replay.py: counterexamples replayed in floats;
twopass.py, onepass.py, merge.py: the three lemma groups) and the rule-level lift (rule_level/: obligations
generated from a claim's own IR, using the split, linearity and positivity lemmas of twopass.py).

This package is an SMT back end, like ``smt.py``: it imports z3 directly. It is the only place in the
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

from .merge import merge_laws
from .obligations import (
    GROUP_1PASS,
    GROUP_2PASS,
    GROUP_MERGE,
    GROUPS,
    MODELS,
    REQUIRES,
    VARIANTS,
    LemmaVerdict,
    Obligation,
    Variant,
    as_variant,
)
from .onepass import invariant, rebase, running_max, shift_and_conclusion
from .rule_level import Lift, lemma_obligations, lift
from .twopass import linearity_positivity, split_max, split_sum, twopass_ground

__all__ = ["GROUP_1PASS", "GROUP_2PASS", "GROUP_MERGE", "GROUPS", "MODELS", "REQUIRES", "VARIANTS", "LemmaVerdict",
           "Lift", "Obligation", "Variant", "lemma_obligations", "lift", "prove_all", "prove_chain_unbounded"]


def prove_all(variant: str | Variant = "correct") -> dict[str, list[Obligation]]:
    """All obligations, grouped. For "correct" every verdict should be "proved"."""
    v = as_variant(variant)
    return {
        GROUP_2PASS: split_sum(v) + split_max(v) + linearity_positivity(v) + twopass_ground(v),
        GROUP_1PASS: running_max(v) + rebase(v) + invariant(v) + shift_and_conclusion(v),
        GROUP_MERGE: merge_laws(v),
    }


def prove_chain_unbounded(variant: str | Variant = "correct") -> list[Obligation]:
    """Every obligation of the unbounded 3-pass = 2-pass = 1-pass chain (and the merge operator), flat."""
    return [o for group in prove_all(variant).values() for o in group]
