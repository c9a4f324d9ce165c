"""IR -> seed-notation text (s-expressions). The only printer.

Two audiences:
- people (`fuse=True`, the default): a reduce of a map is written as one fused Einsum, `M_mul_emp_R_add_e`,
  as the seed files do;
- egglog (`fuse=False`): every IR node is its own constructor, so that rules and programs agree on one term
  structure (the reader turns fused names into Reduce(Map(...)), so rules match unfused terms).

`names` renames `Ref`s and pattern variables on the way out (egglog wants `$` globals and `?` variables);
`default_tiles` fills in a split's tile count where the IR has none (egglog's T_split takes an i64).
"""

from __future__ import annotations

import math
from typing import assert_never

from . import ir
from .notation import CONVENTIONAL_INPUTS, map_name, reduce_name, scan_name, split_name, unsplit_name


def const_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if float(value).is_integer():
        return f"{value:.1f}"
    return repr(float(value))


def input_text(node: ir.Input) -> str:
    """The CreateTensor string that reads back as the same input."""
    kind = getattr(node, "kind", "real")
    if CONVENTIONAL_INPUTS.get(node.name) == node.ranks:
        spec = node.name
    else:
        spec = f"{node.name}[{','.join(node.ranks)}]"
    pred = getattr(node, "pred", None)      # a predicate mask or index tensor reads back with its formula
    return f"{spec}:{kind}" + (f"({pred})" if pred is not None else "") if kind != "real" else spec


class Printer:
    def __init__(self, fuse: bool = True, names: dict[str, str] | None = None, variables: set[str] | None = None,
                 default_tiles: int | None = None, var_prefix: str = ""):
        self.fuse = fuse
        self.names = names or {}
        self.variables = variables or set()   # Input names that are pattern variables (rules from programs)
        self.default_tiles = default_tiles
        self.var_prefix = var_prefix

    def var(self, name: str) -> str:
        return self.var_prefix + name

    def expr(self, e: ir.Expr) -> str:
        match e:
            case ir.Input(name=name) if name in self.variables:
                return self.var(name)
            case ir.Input():
                return f'(CreateTensor "{input_text(e)}")'
            case ir.Var(name=name):
                return self.var(name)
            case ir.Const(value=value):
                return f"(Const {const_text(value)})"
            case ir.Ref(name=name):
                return self.names.get(name, name)
            case ir.Reduce(op=rop, rank=rank, arg=ir.Map(op=mop, space=space, args=args)) if self.fuse:
                return self.call(f"{map_name(mop, space)}_R_{rop}_{rank}", args)
            case ir.Map(op=op, space=space, args=args):
                return self.call(map_name(op, space), args)
            case ir.Reduce(op=op, rank=rank, arg=arg):
                return self.call(reduce_name(op, rank), (arg,))
            case ir.Split(rank=rank, outer=outer, inner=inner, tiles=tiles, arg=arg):
                head = f"({split_name(rank, outer, inner)} {self.expr(arg)}"
                if tiles is None:
                    tiles = self.default_tiles
                if tiles is None:
                    return head + ")"
                return f"{head} {self.var(tiles) if isinstance(tiles, str) else tiles})"
            case ir.Unsplit(outer=outer, inner=inner, rank=rank, arg=arg):
                return self.call(unsplit_name(outer, inner, rank), (arg,))
            case ir.Scan(rank=rank, name=name, init=init, body=body):
                return f'({scan_name("scan", rank)} "{name}" {self.expr(init)} {self.expr(body)})'
            case ir.Prev(rank=rank, name=name):
                return f'({scan_name("prev", rank)} "{name}")'
            case ir.Shift(rank=rank, arg=arg, init=init):
                return self.call(scan_name("shift", rank), (arg, init))
            case ir.Last(rank=rank, arg=arg):
                return self.call(scan_name("last", rank), (arg,))
            case _:
                assert_never(e)

    def call(self, head: str, args) -> str:
        return f"({head} {' '.join(self.expr(a) for a in args)})"


def expr_text(e: ir.Expr, fuse: bool = True) -> str:
    return Printer(fuse=fuse).expr(e)


def program_text(program: ir.Program, fuse: bool = True, comments: dict[str, str] | None = None,
                 header: list[str] | None = None) -> str:
    """`(let NAME expr)` per binding in order, then `(extract NAME)` per output. `comments`: a `; text` line
    written above the binding of that name."""
    printer = Printer(fuse=fuse)
    lines = [f"; {h}" if h else ";" for h in header or []]
    for name, binding in program.bindings.items():
        if comments and name in comments:
            lines.append(f"; {comments[name]}")
        lines.append(f"(let {name} {printer.expr(binding.expr)})")
    for name in program.output_names():
        lines.append(f"(extract {name})")
    return "\n".join(lines) + "\n"


def rule_text(rule: ir.Rule, fuse: bool = False) -> str:
    head = "birewrite" if rule.bidirectional else "rewrite"
    printer = Printer(fuse=fuse)
    return f"({head} {printer.expr(rule.lhs)} {printer.expr(rule.rhs)})"


__all__ = ["Printer", "expr_text", "program_text", "rule_text", "const_text", "input_text"]
