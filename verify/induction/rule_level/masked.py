"""Masked scans for all sizes: masked attention, 3-pass = guarded 1-pass for EVERY mask, and = the naive 1-pass
where the mask's predicate proves that no row's first tile is empty unless the whole row is.

Masks are -inf, which the rule-level terms (terms.py) refuse inside reductions, so masked claims get their own
argument, over the masked cascades of `verify/models/masked/` (copies, like the other models). A claim is
lifted here only when each side has the structure of one of them (lets inlined, tile counts dropped, scan states
by position, a predicate mask read as an opaque one: `ir.canonical` of `_erased`), so the argument below is
about the claim's own programs. Q, K, V and B are the model's inputs; the mask is B[m,p], m tiled as (m1, m0).

The argument, for one query row p (every operator acts row by row: p is never reduced) and one column f:
the scores s_m = sum_e Q K are finite reals and b_m = B[m,p] is 0 (kept) or -inf (masked), an ARBITRARY
pattern. Tile k of the split (m = k*M0 + m0, split.sum / split.max) is either empty (every element masked) or
kept with LM_k = max of its kept scores (finite), W_k = sum_kept exp(s - LM_k) >= 1 and X_k = sum_kept
exp(s - LM_k) v. Against a finite shift c a masked element contributes exp(-inf - c) = 0 exactly, so a tile's
sum is its kept sum, exp(LM_k - c) W_k by the rebase lemma (group 3pass=1pass, proved by induction).
The state after k tiles is E = (-inf, 0, 0) when no kept element has been read, else F = (RM, D, N) with RM the
max of the kept scores read, D = sum_kept exp(s - RM) >= 1, N likewise with v. The guarded step (shift
c = fin(RM')) maps E + empty -> E, E + kept -> F, F + empty -> F, F + kept -> F: the four `masked.step.*`
obligations (extended-real cases exactly in Python, the rest one Z3 query each); by induction over k (base: E
at k = 0) the state after M1 tiles is E iff the row keeps nothing. Then `masked.conclusion.*`: F gives
AV = N/D with RM = GM and D = the 3-pass SD (masked terms are 0), so AV equals the 3-pass; E gives 0/0 in the
1-pass and exp(-inf - -inf) in the 3-pass: undefined on both sides (undefined equals only undefined).

The naive step (shift c = RM', no fin) agrees with the guarded one whenever RM' is finite: from F (RM' >= RM)
and from E with a kept tile (RM' = LM). From E with an empty tile it computes exp(-inf - -inf): undefined, and
undefined propagates to AV. So the naive 1-pass equals the 3-pass on a row iff its first tile keeps an element
or the row keeps none. For a predicate mask that is the integer-arithmetic obligation `masked.first_tile`:
for all sizes (M = M1*M0), parameters in their declared ranges and p < P:
``(exists m0 < M0: PRED(m0, p)) or (forall m < M: not PRED(m, p))``, sent to Z3 negated (with the universal
quantifier over m0; linear integer arithmetic): unsat = proved. An opaque mask has no predicate: not lifted.

Block-sparse (FlexAttention's BlockMask): the block-sparse model is the guarded 1-pass whose mask is
BE = max(split(B), TF) + TE, with tile-level masks TE[m1,p] (-inf: tile m1 is empty for query p, skipped) and
TF[m1,p] (0: the tile is full, B not applied). BE is again 0 or -inf everywhere, so by the argument above the
block-sparse 1-pass equals the masked 3-pass *with mask BE*; it equals the one with mask B wherever BE = split(B)
elementwise, which for predicate masks is the obligation `blocks.classification`: for all sizes and m1 < M1,
m0 < M0, p < P: ``(TE(m1,p) and (TF(m1,p) or B(m1*M0 + m0, p))) <-> B(m1*M0 + m0, p)`` (a skipped tile keeps
nothing, a full tile masks nothing). Its tile-level predicates may name m1*M0 (the tile's first key): Z3 then
decides nonlinear integer arithmetic; unknown is never a pass. A tile a kernel skips needs no computation: the
cases E+empty and F+empty show that a fully masked tile leaves the guarded state unchanged.

Rows a predicate leaves empty at some sizes are found by one more query (`exists sizes, p: forall m < M: not
PRED(m, p)`) and named in the verdict with sizes where it happens.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import z3

from ... import ir, predicates
from ...claims import program_side
from ...reader import read_file
from ..obligations import VARIANTS, LemmaVerdict
from ..obligations import Obligation as Lemma
from ..onepass import rebase
from ..query import Query, discharge, zero
from .prove import Obligation, ObligationVerdict
from .terms import NotLiftable

GROUP = "masked 1-pass (any mask)"
MODELS = {"3-pass": "attention_masked.egg", "guarded 1-pass": "attention_masked_1pass_guarded.egg",
          "naive 1-pass": "attention_masked_1pass_naive.egg",
          "block-sparse 1-pass": "attention_masked_1pass_blocks.egg"}
TIMEOUT_MS = 10_000


@dataclass
class MaskedLift:
    shape: str
    lemmas: tuple[str, ...]
    ranks: tuple[str, ...]
    obligations: list[Obligation] = field(default_factory=list)
    lemma_obligations: list[tuple[str, LemmaVerdict]] = field(default_factory=list)
    reason: str = ""            # non-empty: not lifted


def _erased(side) -> tuple:
    """The side's structure with every predicate mask read as an opaque mask (the argument holds for any mask)."""
    def erase(e: ir.Expr) -> ir.Expr:
        return replace(e, pred=None) if isinstance(e, ir.Input) and e.pred is not None else e
    return ir.canonical(ir.map_post(erase, ir.inline(side.expr, side.bindings)), by_position=True)


@functools.cache
def _model_structures() -> dict[tuple, str]:
    root = Path(__file__).resolve().parent.parent.parent / "models" / "masked"
    return {_erased(program_side(read_file(root / name).program, name)): kind for kind, name in MODELS.items()}


# -- the lemma group (proved once per process) -------------------------------------------------------------------
@functools.cache
def masked_lemmas() -> tuple[Lemma, ...]:
    """The rebase lemma (by induction over the number of terms) and the tile cases of the module docstring."""
    out: list[Lemma] = list(rebase_lemmas())
    t0 = time.perf_counter()
    q = Query("masked.step.E+empty", "no key kept yet, empty tile: RM' = max(-inf, -inf) = -inf, c = fin(-inf) = 0, "
              "SLD = sum exp(-inf - 0) = 0, PRM = exp(-inf - 0) = 0, RD' = 0 + 0*0 = 0 (state E again)")
    rd1, rnv1 = q.real("RD_1"), q.real("RNV_1")
    q.hyp(rd1 == zero() + zero() * zero(), rnv1 == zero() + zero() * zero())
    q.goal(rd1 == 0, rnv1 == 0)
    out.append(discharge(q, GROUP, t0=t0))

    t0 = time.perf_counter()
    q = Query("masked.step.E+kept", "no key kept yet, kept tile (LM, W, X): RM' = LM, c = fin(LM) = LM, SLD = "
              "exp(LM - LM) W (masked elements 0, rebase), PRM = exp(-inf - LM) = 0: RD' = W, RNV' = X (state F)")
    w, x = q.weight("W"), q.real("X")
    sld, slnv = q.exp_diff("LM", "LM") * w, q.exp_diff("LM", "LM") * x
    q.hyp(rd1 == sld + zero() * zero(), rnv1 == slnv + zero() * zero())
    q.goal(rd1 == w, rnv1 == x)
    out.append(discharge(q, GROUP, t0=t0))

    t0 = time.perf_counter()
    q = Query("masked.step.F+empty", "keys kept (RM, D, N), empty tile: RM' = max(RM, -inf) = RM, c = RM, SLD = 0, "
              "PRM = exp(RM - RM) = 1: RD' = D, RNV' = N")
    d, n = q.weight("D"), q.real("N")
    prm = q.exp_diff("RM", "RM")
    q.hyp(rd1 == zero() + d * prm, rnv1 == zero() + n * prm)
    q.goal(rd1 == d, rnv1 == n)
    out.append(discharge(q, GROUP, t0=t0))

    for comp in ("RD", "RNV"):
        t0 = time.perf_counter()
        q = Query(f"masked.step.F+kept.{comp}", "keys kept (RM, D, N), kept tile (LM, W, X): RM' = max(RM, LM) "
                  "finite, c = RM'; the recurrence equals the kept prefix rebased to RM' (rebase lemma)")
        d, n, w, x = q.weight("D"), q.real("N"), q.weight("W"), q.real("X")
        q.real("RM"), q.real("LM")
        rm1 = q.max_def("RM1", "RM", "LM")
        prm = q.exp_diff("RM", rm1)
        prefix, tile = (d, w) if comp == "RD" else (n, x)
        got, target = q.real(f"{comp}_1"), q.real(f"{comp}_target")
        q.hyp(got == q.exp_diff("LM", rm1) * tile + prefix * prm,
              target == q.exp_diff("RM", rm1) * prefix + q.exp_diff("LM", rm1) * tile)
        q.goal(got == target)
        out.append(discharge(q, GROUP, t0=t0))

    t0 = time.perf_counter()
    q = Query("masked.conclusion.kept", "a row that keeps a key ends in F with RM = GM: AV = N/D, and the 3-pass "
              "has SD = D, numerator N (masked terms exp(-inf - GM) = 0): the same AV")
    d, n, av1, av3, sd, num = (q.weight("D"), q.real("N"), q.real("AV1"), q.real("AV3"), q.real("SD"),
                               q.real("NUM"))
    q.hyp(sd == d, num == n, av1 * d == n, av3 * sd == num)
    q.goal(av1 == av3)
    out.append(discharge(q, GROUP, t0=t0))
    out.append(Lemma("masked.naive.finite_shift", "the naive step shifts by RM' where the guarded one shifts by "
                     "fin(RM'); fin(x) = x for finite x, and RM' is finite from F (RM' >= RM) and from E with a kept "
                     "tile (RM' = LM): the steps agree", LemmaVerdict.PROVED, 0.0, group=GROUP,
                     result="exact (definition of fin)"))
    out.append(Lemma("masked.conclusion.empty", "a row that keeps nothing ends in E: AV = 0/0 in the 1-pass, and "
                     "exp(-inf - -inf) in the 3-pass (GM = -inf): undefined on both sides", LemmaVerdict.PROVED, 0.0,
                     group=GROUP, result="exact (extended-real case)"))
    return tuple(out)


def rebase_lemmas() -> list[Lemma]:
    return rebase(VARIANTS["correct"])


def warm_masked() -> None:
    """Read the models and prove the lemmas in this process (the driver's parent, before it forks children)."""
    _model_structures()
    masked_lemmas()


# -- the predicate in Z3 ------------------------------------------------------------------------------------------
def _lin(lin: predicates.Lin, env: dict) -> z3.ArithRef:
    terms = [z3.IntVal(lin.const)]
    for k, c in lin.terms:
        value = z3.IntVal(c)
        for part in k.split("*"):
            if part.startswith("@"):          # a sequence read at an index: an uninterpreted integer function
                name, rank = part[1:].split(":")
                value = value * env[f"${name}"](env[rank])
            else:
                value = value * env[part]
        terms.append(value)
    return z3.Sum(terms)


def formula(f, env: dict) -> z3.BoolRef:
    """PRED as integer arithmetic; env: index, size (#rank) and parameter ($NAME) keys -> Z3 integers."""
    if isinstance(f, predicates.Cmp):
        a, b = _lin(f.lhs, env), _lin(f.rhs, env)
        return {"<": a < b, "<=": a <= b, "==": a == b, "!=": a != b, ">=": a >= b, ">": a > b}[f.op]
    parts = [formula(a, env) for a in f.args]
    return z3.Not(parts[0]) if f.op == "not" else (z3.And(*parts) if f.op == "and" else z3.Or(*parts))


def _setting(*preds: predicates.Predicate):
    n_m, n_m0, n_m1, n_p, p = (z3.Int(x) for x in ("N_m", "N_m0", "N_m1", "N_p", "i_p"))
    env: dict = {"#m": n_m, "#m0": n_m0, "#m1": n_m1, "#p": n_p, "p": p}
    hyps = [n_m0 >= 1, n_m1 >= 1, n_m == n_m1 * n_m0, n_p >= 1, p >= 0, p < n_p]
    for rank in sorted(set().union(*(predicates.sizes_named(x) for x in preds)) - {"m", "m0", "m1", "p"}):
        env[f"#{rank}"] = z3.Int(f"N_{rank}")
        hyps.append(env[f"#{rank}"] >= 1)
    for prm in sorted({x for pred in preds for x in pred.params}, key=lambda x: x.name):
        if prm.seq:
            env[f"${prm.name}"] = z3.Function(prm.name, z3.IntSort(), z3.IntSort())
            continue
        v = z3.Int(prm.name)
        env[f"${prm.name}"] = v
        hyps.append(v >= prm.lo)
        if prm.hi is not None:
            hyps.append(v <= prm.hi)
    return env, hyps, (n_m, n_m0, n_m1, n_p, p)


def _solve(name: str, hyps: list) -> tuple[str, z3.ModelRef | None, float, str]:
    t0 = time.perf_counter()
    s = z3.Solver()
    s.set("timeout", TIMEOUT_MS)
    s.add(*hyps)
    r = s.check()
    return str(r), (s.model() if r == z3.sat else None), time.perf_counter() - t0, s.sexpr()


def _shown(model, env, sizes) -> str:
    n_m, n_m0, n_m1, n_p, p = sizes
    vals = {k: model.eval(v, model_completion=True) for k, v in (("M", n_m), ("M0", n_m0), ("M1", n_m1),
                                                                  ("P", n_p), ("p", p))}
    params = [f"{k[1:]}={model.eval(v, model_completion=True)}" for k, v in env.items()
              if k.startswith("$") and not isinstance(v, z3.FuncDeclRef)]
    return ", ".join(f"{k}={v}" for k, v in vals.items()) + "".join(f", {x}" for x in params)


def first_tile(pred: predicates.Predicate) -> tuple[Obligation, str]:
    """`masked.first_tile` (see the module docstring); the text says where it fails when Z3 finds a model."""
    env, hyps, sizes = _setting(pred)
    n_m, n_m0 = sizes[0], sizes[1]
    m0, m = z3.Int("m0"), z3.Int("m_kept")
    hyps = hyps + [z3.ForAll([m0], z3.Implies(z3.And(m0 >= 0, m0 < n_m0), z3.Not(formula(pred.formula,
                                                                                          {**env, "m": m0})))),
                   m >= 0, m < n_m, formula(pred.formula, {**env, "m": m})]
    r, model, secs, text = _solve("first_tile", hyps)
    verdict = {"unsat": ObligationVerdict.PROVED, "sat": ObligationVerdict.FAILED}.get(r, ObligationVerdict.UNKNOWN)
    where = ""
    if model is not None:
        where = f"row p empty in its first tile but keeping key m={model.eval(m)} at {_shown(model, env, sizes)}"
    return Obligation("masked.first_tile", verdict, secs, text, where or r), where


def classification(b: predicates.Predicate, te: predicates.Predicate, tf: predicates.Predicate) -> tuple[Obligation,
                                                                                                       str]:
    """`blocks.classification` (see the module docstring); the text names a misclassified tile when it fails."""
    env, hyps, sizes = _setting(b, te, tf)
    n_m0, n_m1, p = sizes[1], sizes[2], sizes[4]
    m1, m0 = z3.Int("i_m1"), z3.Int("i_m0")
    at_tile = {**env, "m1": m1, "m0": m0}
    elem = formula(b.formula, {**env, "m": m1 * n_m0 + m0})
    keep_tile, full_tile = formula(te.formula, at_tile), formula(tf.formula, at_tile)
    effective = z3.And(keep_tile, z3.Or(full_tile, elem))
    hyps = hyps + [m1 >= 0, m1 < n_m1, m0 >= 0, m0 < n_m0, effective != elem]
    r, model, secs, text = _solve("classification", hyps)
    verdict = {"unsat": ObligationVerdict.PROVED, "sat": ObligationVerdict.FAILED}.get(r, ObligationVerdict.UNKNOWN)
    where = ""
    if model is not None:
        ev = lambda x: model.eval(x, model_completion=True)          # noqa: E731
        kept = z3.is_true(ev(elem))
        how = ("classified empty (TE) but keeps" if not z3.is_true(ev(keep_tile)) else
               "classified full (TF) but masks") if kept != z3.is_true(ev(effective)) else "misclassified at"
        where = (f"tile m1={ev(m1)} of query p={ev(p)} is {how} key m={ev(m1 * n_m0 + m0)} "
                 f"(at {_shown(model, env, sizes)})")
    return Obligation("blocks.classification", verdict, secs, text, where or r), where


def empty_rows(pred: predicates.Predicate) -> str:
    """Where the predicate leaves a whole row empty ('no row is ever empty', or the condition and an example)."""
    env, hyps, sizes = _setting(pred)
    m = z3.Int("m")
    empty = z3.ForAll([m], z3.Implies(z3.And(m >= 0, m < sizes[0]), z3.Not(formula(pred.formula, {**env, "m": m}))))
    r, model, _, _ = _solve("empty_rows", hyps + [empty])
    if r == "unsat":
        return "no row is ever empty"
    if model is None:
        return "whether a row can be empty: z3 " + r
    where = _condition(pred)
    return (f"rows {'where ' + where + ' ' if where else ''}keep no key (undefined on both sides), "
            f"e.g. {_shown(model, env, sizes)}")


def _condition(pred: predicates.Predicate) -> str:
    """The rows PRED leaves empty, as a quantifier-free condition over p, M, P and the parameters (Z3's quantifier
    elimination), without the range facts; '' when it cannot be had in a few conjuncts (or PRED names other sizes
    or a sequence). Only text for the verdict: it decides nothing."""
    if predicates.sizes_named(pred) - {"m", "p"} or any(x.seq for x in pred.params):
        return ""
    n_m, n_p, p, m = z3.Int("M"), z3.Int("P"), z3.Int("p"), z3.Int("m")
    env: dict = {"#m": n_m, "#p": n_p, "p": p}
    hyps = [n_m >= 1, n_p >= 1, p >= 0, p < n_p]
    for prm in pred.params:
        env[f"${prm.name}"] = v = z3.Int(prm.name)
        hyps += [v >= prm.lo] + ([v <= prm.hi] if prm.hi is not None else [])
    empty = z3.ForAll([m], z3.Implies(z3.And(m >= 0, m < n_m), z3.Not(formula(pred.formula, {**env, "m": m}))))
    try:
        goal = z3.Goal()
        goal.add(empty)
        eliminated = z3.Then("qe", "simplify")(goal).as_expr()
        goal = z3.Goal()
        goal.add(*hyps, eliminated)
        found = z3.Then("ctx-solver-simplify", "propagate-ineqs")(goal).as_expr()
    except z3.Z3Exception:
        return ""
    parts = found.children() if z3.is_and(found) else [found]
    kept = []
    for c in parts:
        check = z3.Solver()
        check.set("timeout", 1000)
        check.add(*hyps, z3.Not(c))
        if check.check() == z3.sat:
            kept.append(str(z3.simplify(c, arith_lhs=True)).replace(" + -1*", " - ").replace("-1*", "-"))
    text = " and ".join(kept)
    return text if kept and len(text) < 160 and "\n" not in text else ""


# -- the lift -----------------------------------------------------------------------------------------------------
def lift_masked(claim) -> MaskedLift:
    known = _model_structures()
    kinds = []
    for side in (claim.lhs, claim.rhs):
        kind = known.get(_erased(side))
        if kind is None:
            raise NotLiftable(f"mask input(s) {', '.join(claim.masks)}: {side.label} is not a masked cascade of "
                              f"verify/models/masked/ (3-pass, guarded or naive 1-pass); no lemma covers it")
        kinds.append(kind)
    preds = {n.name: n.pred for side in (claim.lhs, claim.rhs) for n in side.nodes() if isinstance(n, ir.Input)
             and n.kind == "mask"}
    pred = preds.get("B")
    if "block-sparse 1-pass" in kinds:
        te, tf = preds.get("TE"), preds.get("TF")
        if pred is None or te is None or tf is None:
            raise NotLiftable("block-sparse 1-pass with an opaque mask: B, TE and TF must be predicate masks for "
                              "the classification of its tiles to be proved")
        ob, where = classification(pred, te, tf)
        if ob.verdict is not ObligationVerdict.PROVED:
            return MaskedLift("masked scans", (), (), [ob], [],
                              reason=f"blocks.classification: {ob.verdict} ({where or ob.detail})")
        block_note = [f"blocks: TE({te}), TF({tf}) classify every tile of B [blocks.classification]"]
        block_obs = [ob]
    else:
        block_note, block_obs = [], []
    used: list[tuple[str, LemmaVerdict]] = []
    obligations = block_obs + [Obligation(o.name, ObligationVerdict.PROVED if o.verdict is LemmaVerdict.PROVED
                              else ObligationVerdict.UNKNOWN, o.seconds, o.query, o.result)
                   for o in masked_lemmas()]
    notes = list(block_note)
    if "naive 1-pass" in kinds:
        if pred is None:
            raise NotLiftable("the naive (unguarded) 1-pass with an opaque mask: nothing proves that a row's first "
                              "tile keeps a key (write the mask as a predicate, or guard the running max with fin)")
        ob, where = first_tile(pred)
        obligations.append(ob)
        if ob.verdict is not ObligationVerdict.PROVED:
            return MaskedLift("masked scans", (), (), obligations, used,
                              reason=f"masked.first_tile: {ob.verdict} ({where or ob.detail}): the naive 1-pass is "
                                     f"undefined on such a row; the bounded checker is the judge")
        notes.append("naive 1-pass: the predicate proves every row's first tile keeps a key unless the row keeps "
                     "none [masked.first_tile]")
    ranks = tuple(claim.ranks()) + tuple(p.name for p in (pred.params if pred is not None else ()))
    if pred is not None:
        notes.append(f"mask {pred}: {empty_rows(pred)}")
    sides = " = ".join(dict.fromkeys(kinds))
    shape = f"masked scans ({sides}; tile cases E/F" + "".join(f"; {x}" for x in notes) + ")"
    return MaskedLift(shape, ("split.sum", "split.max", "linearity", "positivity"), ranks, obligations, used)
