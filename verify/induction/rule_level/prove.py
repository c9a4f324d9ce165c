"""Quantifier-free Z3 obligations over the terms of `terms.py`: is the left term equal to the right one?

One obligation ("query") is: hypotheses AND NOT goal, ``unsat`` = proved. The goal for two terms L, R is
``(def L <-> def R) and (def L -> L = R)``: equal when both are undefined or both defined and equal (README,
Semantics). The hypotheses are all true facts:

- sizes ``N_r >= 1``, ``N_m = N_m1*N_m0``; output indices ``0 <= i_r < N_r``; bound indices in range; the
  quotient/remainder facts of unsplit indices (terms.py);
- *reduction congruence*: a reduction is an opaque real (one per occurrence). Two reductions with the same op
  and rank are proved equal by a sub-obligation: their bodies, read at the same bound index (``j_a = j_b`` in
  range; a flattened split reduction reads ``j = j_o*N_i + j_i``), are equal (and equally defined) for every
  index in range; then sum_j a_j = sum_j b_j and max_j a_j = max_j b_j. Nested reductions are compared the same
  way inside the sub-obligation. Each proved pair adds ``R_a = R_b`` as a hypothesis.
- *positivity* (group "positivity"): a sum over a nonempty range of a positive body (c*exp(L), c > 0) is
  positive; so is such a max (it is one of the terms);
- exp: each ``exp(L)`` (L a linear form over the query's real terms) is a positive real atom with the ground facts
  of ``verify/induction/query.py``: sign facts, congruence (``L1 = L2 -> exp(L1) = exp(L2)``) and the product rule
  ``exp(L1)*exp(L2) = exp(L3)`` when L1 + L2 = L3 syntactically. All true of the real exp, so ``unsat`` is a
  proof for the real exp.
- max is ``If(a >= b, a, b)``: exact on finite reals.
- log is an uninterpreted function (congruence only), and the goal also demands that every log argument is
  positive (so each log is finite and the sides' values are finite reals); a log inside a reduction is refused.

A ``sat`` answer proves nothing either way (the reductions are abstracted): the claim is then *not lifted* and
keeps its bounded certificate. Unknown (timeout) likewise; it is never a pass. After every ``unsat`` the
hypotheses alone are checked satisfiable (else the result is "vacuous", not a proof).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

import z3

from .terms import NEG_INF, Env, NotLiftable, Red, canon, conditions, factors, linear, log_args

TIMEOUT_MS = 5_000


class ObligationVerdict(enum.StrEnum):
    """Z3's answer to one rule-level obligation. FAILED is not a refutation (the reductions are abstracted):
    the claim is then not lifted, and the bounded checker stays the judge."""

    PROVED = "proved"
    FAILED = "failed"
    UNKNOWN = "unknown"
    VACUOUS = "vacuous"     # the hypotheses are inconsistent


@dataclass
class Obligation:
    name: str
    verdict: ObligationVerdict
    seconds: float
    query: str = ""
    detail: str = ""


class _Z3:
    """Terms -> Z3 expressions, with the exp atoms and reduction facts they need."""

    def __init__(self):
        self.funcs: dict[tuple, z3.FuncDeclRef] = {}
        self.atoms: dict[tuple, tuple] = {}      # canonical linear form -> (atom, z3 form)
        self.facts: list = []
        self.reds: dict[str, Red] = {}

    def fn(self, name: str, arity: int):
        k = (name, arity)
        if k not in self.funcs:
            self.funcs[k] = z3.Function(f"in_{name}", *([z3.IntSort()] * arity), z3.RealSort())
        return self.funcs[k]

    def conv(self, t: tuple):
        match t[0]:
            case "in":
                if not t[2]:
                    return z3.Real(f"in_{t[1]}")
                return self.fn(t[1], len(t[2]))(*t[2])
            case "num":
                if t[1] == NEG_INF:
                    raise NotLiftable("-inf left after the extended-real simplification")
                return z3.RealVal(t[1])
            case "cnt":
                return z3.ToReal(t[1])
            case "red":
                r: Red = t[1]
                k = canon(r)                        # alpha-equivalent reductions are one value
                if k not in self.reds:
                    self.reds[k] = r
                    if positive_body(r.body):
                        self.facts.append(r.const > 0)
                return self.reds[k].const
            case "op":
                args = [self.conv(a) for a in t[2:]] if t[1] != "exp" else []
                match t[1]:
                    case "add":
                        return args[0] + args[1]
                    case "sub":
                        return args[0] - args[1]
                    case "mul":
                        return args[0] * args[1]
                    case "div":
                        return args[0] / args[1]
                    case "max":
                        return z3.If(args[0] >= args[1], args[0], args[1])
                    case "exp":
                        return self.exp(t[2])
                    case "log":
                        return z3.Function("log", z3.RealSort(), z3.RealSort())(args[0])
        raise NotLiftable(f"no encoding for {t[:2]}")

    def exp(self, arg: tuple):
        const, terms = linear(arg)
        k = (const, tuple(sorted((kk, c) for kk, (c, _) in terms.items())))
        if not terms and const == 0:
            return z3.RealVal(1)
        if k not in self.atoms:
            form = z3.Sum([z3.RealVal(c) * self.conv(x) for _, (c, x) in sorted(terms.items())]
                          + [z3.RealVal(const)])
            self.atoms[k] = (z3.Real(f"exp!{len(self.atoms)}"), form)
        return self.atoms[k][0]

    def exp_facts(self) -> list:
        facts = []
        keys = list(self.atoms)
        for k in keys:
            e, L = self.atoms[k]
            facts += [e > 0, z3.Implies(L == 0, e == 1), z3.Implies(L > 0, e > 1), z3.Implies(L < 0, e < 1)]
        for i, a in enumerate(keys):
            for b in keys[i + 1:]:
                facts.append(z3.Implies(self.atoms[a][1] == self.atoms[b][1], self.atoms[a][0] == self.atoms[b][0]))
        for i, a in enumerate(keys):
            for b in keys[i:]:
                s = dict(a[1])
                for n, c in b[1]:
                    s[n] = s.get(n, 0) + c
                ks = (a[0] + b[0], tuple(sorted((n, c) for n, c in s.items() if c != 0)))
                prod = self.atoms[a][0] * self.atoms[b][0]
                if not ks[1] and ks[0] == 0:
                    facts.append(prod == 1)
                elif ks in self.atoms:
                    facts.append(prod == self.atoms[ks][0])
                elif len(keys) <= 16:
                    # the product rule up to the value of the exponents: exp(L1)*exp(L2) = exp(L3) wherever
                    # L1 + L2 = L3 holds (true of the real exp). Needed where two exponents are equal only under
                    # the query's hypotheses (the same reduction read at two bound indices that are equal)
                    sum_ab = self.atoms[a][1] + self.atoms[b][1]
                    facts += [z3.Implies(sum_ab == self.atoms[c][1], prod == self.atoms[c][0]) for c in keys]
        return facts

    def defined(self, t: tuple, positive: list | None = None):
        return z3.And([self.conv(d) != 0 for d in conditions(t, positive)] or [z3.BoolVal(True)])


def positive_body(t: tuple) -> bool:
    coef, lin, nums, dens = factors(t)
    return coef > 0 and not nums and not dens


def top_reds(t: tuple, out: list) -> list:
    if t[0] == "red":
        out.append(t[1])
    elif t[0] == "op":
        for a in t[2:]:
            top_reds(a, out)
    return out


class Prover:
    def __init__(self, env: Env, label: str):
        self.env = env
        self.label = label

    def _query(self, name: str, hyps: list, lhs: tuple, rhs: tuple, z: _Z3) -> Obligation:
        start = time.monotonic()
        vl, vr = z.conv(lhs), z.conv(rhs)
        positive: list = []
        dl, dr = z.defined(lhs, positive), z.defined(rhs, positive)
        if positive:
            self.env.lemmas.add("positivity")     # a divisor that is a sum of exponentials is never 0
        goal = z3.And(dl == dr, z3.Implies(dl, vl == vr),
                      *[z.conv(a) > 0 for a in log_args(lhs) + log_args(rhs)])   # every log finite
        facts = hyps + z.facts + z.exp_facts()
        if z.facts:
            self.env.lemmas.add("positivity")     # a reduction of positive terms is positive
        s = z3.Solver()
        s.set("timeout", TIMEOUT_MS)
        s.add(*facts)
        s.add(z3.Not(goal))
        answer = s.check()
        if answer == z3.unsat:
            v = z3.Solver()
            v.set("timeout", TIMEOUT_MS)
            v.add(*facts)
            verdict = ObligationVerdict.PROVED if v.check() == z3.sat else ObligationVerdict.VACUOUS
            detail = "" if verdict is ObligationVerdict.PROVED else "the hypotheses are inconsistent"
        elif answer == z3.sat:
            m = s.model()
            sizes = ", ".join(f"{d.name()[2:].upper()}={m[d]}" for d in sorted(m.decls(), key=str)
                              if d.name().startswith("N_"))
            verdict = ObligationVerdict.FAILED
            detail = f"z3 finds values where the sides differ ({sizes or 'any sizes'})"
        else:
            verdict, detail = ObligationVerdict.UNKNOWN, f"z3: {s.reason_unknown()}"
        return Obligation(name, verdict, time.monotonic() - start, s.sexpr(), detail)

    def equal(self, lhs: tuple, rhs: tuple, hyps: list, name: str, depth: int = 0) -> tuple[bool, list]:
        """Prove lhs = rhs under hyps, first pairing the reductions of both terms (sub-obligations).
        (proved, obligations): the proved pairings' obligations and the final one."""
        if depth > 6:
            raise NotLiftable("reductions nested too deeply")
        z = _Z3()
        reds = top_reds(lhs, []) + top_reds(rhs, [])
        parent = {id(r): id(r) for r in reds}

        def find(x):
            while parent[x] != x:
                x = parent[x]
            return x
        eqs, used = [], []
        canon_ = {id(r): canon(r) for r in reds}
        for i, a in enumerate(reds):
            for b in reds[i + 1:]:
                if a.op != b.op or a.rank != b.rank or not a.size.eq(b.size) or find(id(a)) == find(id(b)):
                    continue
                if canon_[id(a)] != canon_[id(b)]:
                    sub = hyps + a.hyps + b.hyps + [a.bound == b.bound]
                    ok, obs = self.equal(a.body, b.body, sub, f"{name}/{a.op}_{a.rank}", depth + 1)
                    if not ok:
                        continue
                    used += obs
                parent[find(id(a))] = find(id(b))
                eqs.append(a.const == b.const)
        ob = self._query(name, hyps + self.env.hyps + eqs, lhs, rhs, z)
        return ob.verdict is ObligationVerdict.PROVED, used + [ob]
