"""One quantifier-free Z3 query with ground exp facts (the package docstring explains the encoding), its
discharge (unsat = proved, after a vacuity check), and the cascade steps over the symbolic encoding."""

from __future__ import annotations

import builtins
import time
from fractions import Fraction

import z3

from .obligations import LemmaVerdict, Obligation, Variant

TIMEOUT_MS = 10_000


NEG_INF = "-inf"          # marker for the extended-real -inf; never becomes a Z3 term


class Undefined(Exception):
    """An extended-real operation without a value (0 * +inf): the obligation is refuted outright."""

    def __init__(self, reason: str, detail: dict):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class Query:
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
            raise Undefined("max(-inf, -inf) leaves the finite fragment", {})
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
    def _key(lin: dict[str, builtins.int | Fraction]) -> tuple:
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

    def exp(self, lin: dict[str, builtins.int | Fraction]) -> z3.ArithRef:   # Query.int shadows int here
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


def discharge(q: Query, group: str, replay=None, build_error: Undefined | None = None,
              t0: float | None = None) -> Obligation:
    """Run the query; sat -> refuted with a (tidy if possible) model replayed by `replay(cex)`."""
    t0 = time.perf_counter() if t0 is None else t0
    if build_error is not None:
        detail = dict(build_error.detail)
        detail["reason"] = build_error.reason
        return Obligation(q.name, q.statement, LemmaVerdict.REFUTED, time.perf_counter() - t0, detail, group,
                          "undefined", "(not sent to Z3: extended-real case) " + build_error.reason,
                          replay(detail) if replay else None)
    s = q.solver()
    text = s.sexpr()
    r = s.check()
    cex: dict | None = None
    rep = None
    if r == z3.unsat:
        verdict = LemmaVerdict.PROVED
        if q.solver(negated_goal=False).check() != z3.sat:         # vacuity check
            verdict, r = LemmaVerdict.UNKNOWN, "vacuous"
    elif r == z3.sat:
        verdict = LemmaVerdict.REFUTED
        model = s.model()
        st = q.solver(q.tidy())
        if st.check() == z3.sat:
            model = st.model()
        cex = q.model_dict(model)
        rep = replay(cex) if replay else None
    else:
        verdict = LemmaVerdict.UNKNOWN
    return Obligation(q.name, q.statement, verdict, time.perf_counter() - t0, cex, group, str(r), text, rep)




def zero():
    return z3.RealVal(0)


def onepass_step(q: Query, v: Variant, old: tuple, tile: tuple, k1: str | int) -> tuple:
    """One 1-pass step. old = (RM_k name or NEG_INF, RD_k, RNV_k); tile = (LM name, SLD, SLNV) its local
    summary. Returns (RM_{k+1} name, RD_{k+1}, RNV_{k+1}).

    SLD'_k = sum_i exp(s_{k,i} - RM_{k+1}) is not a new unknown: by the rebase lemma (onepass.py, for any
    number of terms, here M0) it equals exp(LM_k - RM_{k+1}) * SLD_k; same for SLNV'."""
    rm, rd, rnv = old
    lm, sld, slnv = tile
    rm1 = q.max_def(f"RM_{k1}", rm, lm)
    sldp, slnvp = q.real(f"SLDp_{k1}"), q.real(f"SLNVp_{k1}")
    q.hyp(sldp == q.exp_diff(lm, rm1) * sld, slnvp == q.exp_diff(lm, rm1) * slnv)
    if rm == NEG_INF:
        # PRM[0] = exp(+-(-inf - RM[1])): exp(-inf) = 0, or exp(+inf) = +inf for the flipped correction.
        if v.correction == "old-new":
            rd_term, rnv_term = zero(), zero()          # RD[0]*0 = 0*0 = 0
        else:
            raise Undefined("PRM[0] = exp(RM[1] - RM[0]) = exp(+inf) = +inf and RD[0]*PRM[0] = 0*inf is "
                            "undefined", {"RM_0": "-inf", "RD_0": 0.0, "RNV_0": 0.0, "PRM_0": "+inf"})
        if not v.rnv_rescale:
            rnv_term = rnv
    else:
        prm = q.exp_diff(rm, rm1) if v.correction == "old-new" else q.exp_diff(rm1, rm)
        rd_term = rd * prm
        rnv_term = rnv * prm if v.rnv_rescale else rnv
    return rm1, sldp + rd_term, slnvp + rnv_term


def merge_states(q: Query, v: Variant, a: tuple, b: tuple, name: str) -> tuple:
    """(ma,da,oa) (+) (mb,db,ob) = (m, da*exp(ma-m) + db*exp(mb-m), oa*exp(ma-m) + ob*exp(mb-m))."""
    (ma, da, oa), (mb, db, ob) = a, b
    if ma == NEG_INF and mb == NEG_INF:
        raise Undefined("(-inf,0,0) (+) (-inf,0,0) needs exp(-inf - -inf): undefined", {})
    m = q.max_def(name, ma, mb)
    fa = zero() if ma == NEG_INF else q.exp_diff(ma, m)           # exp(-inf - m) = 0, m finite
    if not v.merge_rescale_b:
        fb = z3.RealVal(1)
    else:
        fb = zero() if mb == NEG_INF else q.exp_diff(mb, m)
    return m, da * fa + db * fb, oa * fa + ob * fb


