"""IR operators as egglog: the `Tensor` datatype declaring the operators a program or rule uses, and the
analyses (rank sets, finiteness) that guard every certified rewrite."""

from __future__ import annotations

import functools

from .. import ir
from ..notation import (
    LeafOp,
    MapOp,
    Operator,
    ReduceOp,
    ScanOp,
    SplitOp,
    UnsplitOp,
    map_name,
    operator_name,
    parse_operator,
    scan_name,
)

RULESET = "certified"
ANALYSIS = "analysis"


@functools.cache
def parsed_operator(name: str) -> Operator:
    """`parse_operator`, once per name: extraction asks for the same few names for every e-node it visits."""
    return parse_operator(name)


def operators_in(exprs) -> set[str]:
    names = {"CreateTensor", "Const"}
    for e in exprs:
        for node in ir.walk(e):
            name = operator_name(node)
            if name:
                names.add(name)
    return names


def signature(name: str) -> list[str]:
    """egglog argument sorts of a seed operator, from its name."""
    op = parse_operator(name)
    match op:
        case LeafOp(kind="CreateTensor"):
            return ["String"]
        case LeafOp(kind="Const"):
            return ["f64"]
        case MapOp():
            return ["Tensor"] * op.arity
        case ReduceOp() | UnsplitOp():
            return ["Tensor"]
        case SplitOp():
            return ["Tensor", "i64"]
        case ScanOp(kind="scan"):
            return ["String", "Tensor", "Tensor"]
        case ScanOp(kind="prev"):
            return ["String"]
        case ScanOp(kind="shift"):
            return ["Tensor", "Tensor"]
        case ScanOp(kind="last"):
            return ["Tensor"]
    raise AssertionError(name)


def _order(names) -> list[str]:
    first = [n for n in ("CreateTensor", "Const") if n in names]
    return first + sorted(n for n in names if n not in first)


def prelude(names) -> str:
    """`(datatype Tensor ...)` declaring every operator in `names`."""
    lines = ["(datatype Tensor"]
    for name in _order(names):
        lines.append(f"  ({name}{''.join(' ' + s for s in signature(name))})")
    return "\n".join(lines) + ")\n"


def rank_set(ranks) -> str:
    ranks = list(ranks)
    return f"(set-of {' '.join(f'{chr(34)}{r}{chr(34)}' for r in ranks)})" if ranks else "(set-empty)"


def analysis_rules(names) -> str:
    """The analyses that guard the rewrites, as egglog rules of the `analysis` ruleset:
    - `ranks`: the rank set of every e-class, from each operator's name (inputs are seeded);
    - `finite` / `extended`: the e-class's values are certainly finite reals / finite reals or -inf (never
      undefined, never +inf). The checker certifies rules for finite real pattern variables, so every rewrite
      asks `(finite ?x)` of its variables: a rule is not applied to a masked score (-inf) or to a division
      (which may divide by 0). The transfer rules below are sound over-approximations: exp(-inf) = 0,
      max(-inf, x) = x, a running max of finite values started at -inf is finite, a linear recurrence with
      finite coefficients is finite. Inputs are seeded (real inputs finite, masks extended).
    - `positive`: finite and > 0, so that a division by it is finite (the softmax denominator SD = sum exp(..)):
      exp of a finite value is > 0; a sum, max or product of positives, a split, unsplit or reduction of one
      (every size is >= 1, so a reduction is over a nonempty set) is positive; a quotient of a finite value by
      a positive one is finite, of two positives positive. Without it no rule applies above a division."""
    lines = [
        "(sort RankSet (Set String))",
        "(function ranks (Tensor) RankSet :merge old)",
        "(relation finite (Tensor))",
        "(relation extended (Tensor))",
        "(relation positive (Tensor))",
        f"(ruleset {ANALYSIS})",
        f"(ruleset {RULESET})",
        f"(rule ((finite ?e)) ((extended ?e)) :ruleset {ANALYSIS})",
        f"(rule ((positive ?e)) ((finite ?e)) :ruleset {ANALYSIS})",
    ]

    def rule(pattern: str, facts: str, value: str) -> None:
        lines.append(f"(rule ((= ?e {pattern}){facts}) ((set (ranks ?e) {value})) :ruleset {ANALYSIS})")

    def fact(pattern: str, facts: str, relation: str) -> None:
        lines.append(f"(rule ((= ?e {pattern}){facts}) (({relation} ?e)) :ruleset {ANALYSIS})")

    def preserve(pattern: str, args: list[str]) -> None:
        for relation in ("finite", "extended"):
            fact(pattern, "".join(f" ({relation} {a})" for a in args), relation)

    for name in _order(names):
        op = parse_operator(name)
        match op:
            case LeafOp(kind="Const"):
                rule("(Const ?v)", "", "(set-empty)")
                fact("(Const ?v)", " (< ?v inf) (> ?v -inf)", "finite")
                fact("(Const ?v)", " (< ?v inf)", "extended")
            case MapOp(space=space, reduce=red):
                args = [f"?a{i}" for i in range(op.arity)]
                pattern = f"({name} {' '.join(args)})"
                rule(pattern, "", rank_set(r for r in space if red is None or r != red.rank))
                if op.op == "add":
                    preserve(pattern, args)
                elif op.op == "sub":
                    fact(pattern, " (finite ?a0) (finite ?a1)", "finite")
                    fact(pattern, " (extended ?a0) (finite ?a1)", "extended")
                elif op.op == "mul":
                    fact(pattern, " (finite ?a0) (finite ?a1)", "finite")
                elif op.op == "max":
                    fact(pattern, " (finite ?a0) (extended ?a1)", "finite")
                    fact(pattern, " (extended ?a0) (finite ?a1)", "finite")
                    fact(pattern, " (extended ?a0) (extended ?a1)", "extended")
                elif op.op in ("exp", "fin"):
                    fact(pattern, " (extended ?a0)", "finite")
                if op.op == "exp" and red is None:
                    fact(pattern, " (finite ?a0)", "positive")
                if op.op in ("add", "mul", "max") and op.arity == 2:
                    fact(pattern, " (positive ?a0) (positive ?a1)", "positive")
                if op.op == "div" and op.arity == 2 and red is None:
                    fact(pattern, " (finite ?a0) (positive ?a1)", "finite")
                    fact(pattern, " (positive ?a0) (positive ?a1)", "positive")
            case ReduceOp(rank=rank) | ScanOp(kind="last", rank=rank):
                rule(f"({name} ?a)", " (= ?r (ranks ?a))", f'(set-remove ?r "{rank}")')
                preserve(f"({name} ?a)", ["?a"])
                if isinstance(op, ReduceOp) and op.op in ("add", "max"):
                    fact(f"({name} ?a)", " (positive ?a)", "positive")
            case SplitOp(rank=rank, outer=o, inner=i):
                rule(f"({name} ?a ?t)", " (= ?r (ranks ?a))",
                     f'(set-insert (set-insert (set-remove ?r "{rank}") "{o}") "{i}")')
                preserve(f"({name} ?a ?t)", ["?a"])
                fact(f"({name} ?a ?t)", " (positive ?a)", "positive")
            case UnsplitOp(outer=o, inner=i, rank=rank):
                rule(f"({name} ?a)", " (= ?r (ranks ?a))",
                     f'(set-insert (set-remove (set-remove ?r "{o}") "{i}") "{rank}")')
                preserve(f"({name} ?a)", ["?a"])
                fact(f"({name} ?a)", " (positive ?a)", "positive")
            case ScanOp(kind="scan", rank=rank):
                rule(f"({name} ?n ?i ?b)", " (= ?r (ranks ?b))", "?r")
                prev = scan_name("prev", rank)
                if prev not in names:
                    continue
                for other in _order(names):
                    m = parsed_operator(other)
                    if not (isinstance(m, MapOp) and m.reduce is None and rank in m.space):
                        continue
                    if m.op == "max":
                        for body in (f"({other} ({prev} ?n) ?l)", f"({other} ?l ({prev} ?n))"):
                            fact(f"({name} ?n ?i {body})", " (extended ?i) (finite ?l)", "finite")
                            fact(f"({name} ?n ?i {body})", " (extended ?i) (extended ?l)", "extended")
                    if m.op == "add":
                        mul = map_name("mul", m.space)
                        if mul not in names:
                            continue
                        for step in (f"({mul} ({prev} ?n) ?w)", f"({mul} ?w ({prev} ?n))"):
                            for body in (f"({other} ?x {step})", f"({other} {step} ?x)"):
                                fact(f"({name} ?n ?i {body})", " (finite ?i) (finite ?x) (finite ?w)", "finite")
            case ScanOp(kind="shift"):
                rule(f"({name} ?a ?i)", " (= ?r (ranks ?a))", "?r")
                preserve(f"({name} ?a ?i)", ["?a", "?i"])
    return "\n".join(lines) + "\n"

