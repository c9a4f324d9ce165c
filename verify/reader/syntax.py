"""Helpers over egglog's command objects (its parse of a file) and over the IR terms read from them."""

from __future__ import annotations

from .. import ir
from ..errors import NotationError
from ..notation import (
    SCAN_ARITY,
    MapOp,
    ReduceOp,
    ScanOp,
    SplitOp,
    UnsplitOp,
    parse_operator,
)


def arity(op) -> int | None:
    match op:
        case MapOp():
            return op.arity
        case ReduceOp() | UnsplitOp():
            return 1
        case SplitOp():
            return None  # 1 or 2 (the tile count is optional)
        case ScanOp(kind=kind):
            return SCAN_ARITY[kind]
    return None


def literal(node):
    return node.value.value


def ast_vars(node) -> list[str]:
    """Variable names in an egglog expression, in order."""
    out: list[str] = []
    for n in ast_nodes(node):
        if type(n).__name__ == "Var" and n.name not in out:
            out.append(n.name)
    return out


def ast_nodes(node):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        kind = type(n).__name__
        if kind == "Call":
            stack.extend(reversed(list(n.args)))
        elif kind in ("Eq",):
            stack.extend([n.right, n.left])
        elif kind in ("Fact", "Expr_"):
            stack.append(n.expr)
        elif kind in ("Let", "Union"):
            stack.append(n.rhs)
            if kind == "Union":
                stack.append(n.lhs)
        elif kind in ("Set", "Change"):
            stack.extend(list(getattr(n, "args", [])))
            if hasattr(n, "rhs"):
                stack.append(n.rhs)


def fact_target(action) -> str | None:
    """The function an action sets or asserts: `(set (ranks ?e) ...)` -> ranks, `(finite ?e)` -> finite."""
    kind = type(action).__name__
    if kind == "Set":
        return action.lhs
    if kind == "Expr_" and type(action.expr).__name__ == "Call":
        return action.expr.name
    return None


def ast_calls(node):
    return [n for n in ast_nodes(node) if type(n).__name__ == "Call"]


def is_operator(name: str) -> bool:
    try:
        parse_operator(name)
        return True
    except NotationError:
        return False


def pattern_vars(expr: ir.Expr) -> set[str]:
    return {n.name for n in ir.walk(expr) if isinstance(n, ir.Var)}
