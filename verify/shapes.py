"""Rank inference and checking. Runs before any back end; every error names file, line and ranks.

Pattern variables of a rule get the *largest* rank set consistent with every operator they appear under
(a map's operand must lie inside its iteration space; a reduce or split passes other ranks through). A
narrower shape is a special case: an operand lacking a rank is the same as one that is constant along it
(broadcast), so a rule certified for the largest shape holds for every narrower one. A rank that no operator
of the rule names is carried through every operator unchanged, so each slice along it is the same rule again.
"""

from __future__ import annotations

from dataclasses import replace
from typing import assert_never

from . import ir
from .errors import Location, ShapeError, VerifyError

Ranks = tuple[str, ...]


def _fmt(ranks) -> str:
    return "{" + ", ".join(ranks) + "}"


class RankChecker:
    def __init__(self, file: str, env: dict[str, Ranks]):
        self.file = file
        self.env = env

    def fail(self, node, cause: str, hint: str | None = None) -> ShapeError:
        return ShapeError(cause, Location(self.file, getattr(node, "line", None)), hint)

    def ranks(self, expr: ir.Expr, prev: dict[str, tuple[str, Ranks]] | None = None) -> Ranks:
        prev = prev or {}
        match expr:
            case ir.Input(ranks=ranks):
                return ranks
            case ir.Var(name=name):
                raise self.fail(expr, f"pattern variable '{name}' has no inferred ranks")
            case ir.Const():
                return ()
            case ir.Ref(name=name):
                return self.env[name]
            case ir.Map(op=op, space=space, args=args):
                for arg in args:
                    got = self.ranks(arg, prev)
                    extra = [r for r in got if r not in space]
                    if extra:
                        raise self.fail(
                            expr,
                            f"operand of M_{op}_{''.join(space)} has rank(s) {_fmt(extra)} outside the "
                            f"iteration space {_fmt(space)} (operand ranks {_fmt(got)})",
                            f"use a map over a space that includes {_fmt(extra)}, or reduce them first",
                        )
                return space
            case ir.Reduce(op=op, rank=rank, arg=arg):
                got = self.ranks(arg, prev)
                if rank not in got:
                    raise self.fail(expr, f"R_{op}_{rank} reduces rank '{rank}', but its operand has ranks {_fmt(got)}")
                return tuple(r for r in got if r != rank)
            case ir.Split(rank=rank, outer=outer, inner=inner, arg=arg):
                got = self.ranks(arg, prev)
                if rank not in got:
                    raise self.fail(expr, f"T_split_{rank}_{outer}{inner} splits rank '{rank}', but its operand "
                                    f"has ranks {_fmt(got)}")
                clash = [r for r in (outer, inner) if r in got]
                if clash:
                    raise self.fail(expr, f"T_split_{rank}_{outer}{inner} creates rank(s) {_fmt(clash)} that the "
                                    f"operand already has ({_fmt(got)})")
                i = got.index(rank)
                return got[:i] + (outer, inner) + got[i + 1:]
            case ir.Unsplit(outer=outer, inner=inner, rank=rank, arg=arg):
                got = self.ranks(arg, prev)
                missing = [r for r in (outer, inner) if r not in got]
                if missing:
                    raise self.fail(expr, f"T_unsplit_{outer}{inner}_{rank} needs ranks {_fmt((outer, inner))}, "
                                    f"but its operand has ranks {_fmt(got)}")
                if rank in got:
                    raise self.fail(expr, f"T_unsplit_{outer}{inner}_{rank} creates rank '{rank}' that the operand "
                                    f"already has ({_fmt(got)})")
                i = got.index(outer)
                return tuple(rank if r == outer else r for r in got if r != inner) if i >= 0 else got
            case ir.Scan():
                return self.scan(expr, prev)
            case ir.Prev(rank=rank, name=name):
                if name not in prev or prev[name][0] != rank:
                    raise self.fail(expr, f"S_prev_{rank} \"{name}\" is not inside (S_scan_{rank} \"{name}\" ...)",
                                    "S_prev may only appear in the body of the scan it names")
                return prev[name][1]
            case ir.Shift(rank=rank, arg=arg, init=init):
                got = self.ranks(arg, prev)
                if rank not in got:
                    raise self.fail(expr, f"S_shift_{rank} needs rank '{rank}', but its operand has ranks {_fmt(got)}")
                self.check_init(expr, init, got, rank, prev)
                return got
            case ir.Last(rank=rank, arg=arg):
                got = self.ranks(arg, prev)
                if rank not in got:
                    raise self.fail(expr, f"S_last_{rank} needs rank '{rank}', but its operand has ranks {_fmt(got)}")
                return tuple(r for r in got if r != rank)
            case _:
                assert_never(expr)

    def check_init(self, node, init, state: Ranks, rank: str, prev) -> None:
        got = self.ranks(init, prev)
        allowed = [r for r in state if r != rank]
        extra = [r for r in got if r not in allowed]
        if extra:
            raise self.fail(node, f"initial value has rank(s) {_fmt(extra)} outside the state ranks {_fmt(allowed)}")

    def scan(self, expr: ir.Scan, prev) -> Ranks:
        rank, name = expr.rank, expr.name
        for node in ir.walk(expr.body):
            names = (getattr(node, "rank", None), getattr(node, "outer", None), getattr(node, "inner", None))
            retiles = isinstance(node, (ir.Split, ir.Unsplit)) and rank in names
            if isinstance(node, ir.Reduce) and node.rank == rank or retiles:
                raise self.fail(node, f"the body of S_scan_{rank} must be elementwise along its iterative rank "
                                f"'{rank}', but this operator reduces or re-tiles it")
            if isinstance(node, (ir.Scan, ir.Shift, ir.Last)) and node.rank == rank:
                raise self.fail(node, f"S_scan_{rank} bodies may not nest another scan operator over '{rank}'")
        # The state has the ranks of the body; find them with the state as a scalar, then check the fixpoint.
        state = self.ranks(expr.body, {**prev, name: (rank, ())})
        again = self.ranks(expr.body, {**prev, name: (rank, state)})
        if again != state:
            raise self.fail(expr, f"the ranks of S_scan_{rank} \"{name}\" are not stable "
                                  f"({_fmt(state)} vs {_fmt(again)})")
        if rank not in state:
            raise self.fail(expr, f"the body of S_scan_{rank} \"{name}\" has no rank '{rank}' (ranks {_fmt(state)})",
                            f"iterate with a map whose space includes '{rank}'")
        self.check_init(expr, expr.init, state, rank, prev)
        return state


def program_ranks(program: ir.Program) -> dict[str, Ranks]:
    """Ranks of every binding, in order; raises ShapeError at the first ill-shaped one."""
    env: dict[str, Ranks] = {}
    checker = RankChecker(program.file, env)
    for name, binding in program.bindings.items():
        try:
            env[name] = checker.ranks(binding.expr)
        except ShapeError as exc:
            raise exc.located(Location(program.file, binding.line)) from None
    return env


def expr_ranks(expr: ir.Expr, file: str = "<expr>", env: dict[str, Ranks] | None = None) -> Ranks:
    return RankChecker(file, env or {}).ranks(expr)


# -- pattern variables ---------------------------------------------------------------------------------------

def allowed_ranks(expr: ir.Expr, allowed: frozenset, out: dict[str, frozenset]) -> None:
    """Top-down: the ranks each pattern variable may have, intersected over its occurrences."""
    match expr:
        case ir.Var(name=name):
            out[name] = out.get(name, allowed) & allowed
        case ir.Map(space=space, args=args):
            for arg in args:
                allowed_ranks(arg, frozenset(space), out)
        case ir.Reduce(rank=r, arg=arg) | ir.Last(rank=r, arg=arg):
            allowed_ranks(arg, allowed | {r}, out)
        case ir.Split(rank=r, outer=o, inner=i, arg=arg):
            allowed_ranks(arg, (allowed - {o, i}) | {r}, out)
        case ir.Unsplit(rank=r, outer=o, inner=i, arg=arg):
            allowed_ranks(arg, (allowed - {r}) | {o, i}, out)
        case ir.Scan(rank=r, init=init, body=body):
            allowed_ranks(body, allowed, out)
            allowed_ranks(init, allowed - {r}, out)
        case ir.Shift(rank=r, arg=arg, init=init):
            allowed_ranks(arg, allowed, out)
            allowed_ranks(init, allowed - {r}, out)


def substitute_inputs(expr: ir.Expr, inputs: dict[str, ir.Input]) -> ir.Expr:
    """`expr` with every pattern variable replaced by its input (at the variable's line)."""
    return ir.map_post(lambda e: replace(inputs[e.name], line=e.line) if isinstance(e, ir.Var) else e, expr)


def infer_rule(rule: ir.Rule, env: dict[str, Ranks] | None = None) -> ir.Rule:
    """Give every pattern variable its largest consistent ranks and check both sides; the sides must agree."""
    location = Location(rule.file, rule.line)
    order = ir.rank_names((rule.lhs, rule.rhs))
    universe = frozenset(order)
    allowed: dict[str, frozenset] = {}
    allowed_ranks(rule.lhs, universe, allowed)
    allowed_ranks(rule.rhs, universe, allowed)
    inputs = {
        name: ir.Input(name, tuple(r for r in order if r in ranks)) for name, ranks in allowed.items()
    }
    lhs, rhs = substitute_inputs(rule.lhs, inputs), substitute_inputs(rule.rhs, inputs)
    checker = RankChecker(rule.file, env or {})
    try:
        left, right = checker.ranks(lhs), checker.ranks(rhs)
    except ShapeError as exc:
        raise exc.located(location) from None
    if set(left) != set(right):
        raise ShapeError(
            f"rule '{rule.name}': the left side has ranks {_fmt(left)} but the right side has {_fmt(right)}",
            location, rule=rule.name,
        )
    var_ranks = tuple((name, inputs[name].ranks) for name in sorted(inputs))
    return replace(rule, lhs=lhs, rhs=rhs, var_ranks=var_ranks)


def check_split_tiles(exprs, file: str) -> None:
    """All splits that create the same inner rank must use the same tile argument (one size per rank)."""
    seen: dict[str, tuple[object, int | None]] = {}
    for expr in exprs:
        for node in ir.walk(expr):
            if isinstance(node, ir.Split) and node.tiles is not None:
                key = f"{node.outer}/{node.inner}"
                if key in seen and seen[key][0] != node.tiles:
                    raise ShapeError(
                        f"rank pair ({node.outer}, {node.inner}) is split with {node.tiles!r} here but with "
                        f"{seen[key][0]!r} at line {seen[key][1]}",
                        Location(file, node.line),
                        "one check has one size per rank; use different rank names for different tilings",
                    )
                seen[key] = (node.tiles, node.line)


__all__ = ["program_ranks", "expr_ranks", "infer_rule", "check_split_tiles", "VerifyError"]
