"""The one intermediate representation: extended-Einsum cascades over named ranks.

Data only (frozen dataclasses joined in the `Expr` union); every back end consumes it with `match`. A rank is a
name such as `m`, `m1`, `p`; its size comes from the size assignment a back end is given, never from the IR.
This module imports nothing else of ours.

Semantics (the numpy evaluator in `evaluate.py` is the executable definition):
- `Map(op, space, args)`: elementwise `op` over the iteration space `space`; an operand lacking a rank of the
  space is broadcast along it. The result has exactly the ranks of `space`.
- `Reduce(op, rank, arg)`: reduce `rank` away with `add` (identity 0) or `max` (identity -inf).
- `Split(rank, outer, inner, tiles, arg)`: view `rank` (size R) as (outer, inner) with
  `rank = outer*INNER + inner` (outer major). `tiles` is the integer (or pattern variable) written in the file;
  the checker sweeps sizes from the bound instead (see README, "Tiling").
- `Unsplit(outer, inner, rank, arg)`: the inverse view.
- `Scan(rank, name, init, body)`: `rank` is iterative. The result X has the ranks of `body`; X[k] is `body`
  evaluated with every operand sliced at rank index k and `Prev(rank, name)` standing for X[k-1] (`init`,
  broadcast, at k = 0). `Shift(rank, arg, init)` is Y[0] = init, Y[k] = arg[k-1]. `Last(rank, arg)` is
  arg[R-1] with `rank` dropped: the final state of a scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# log(x) is defined for x >= 0 (log 0 = -inf); fin(x) is x, except fin(-inf) = 0: the guard that real kernels
# put on a running max that is still -inf (a fully masked tile), so that exp(s - fin(m)) stays defined.
MAP_OPS = {"add": 2, "sub": 2, "mul": 2, "div": 2, "max": 2, "exp": 1, "log": 1, "fin": 1}
REDUCE_OPS = {"add", "max"}


@dataclass(frozen=True)
class Input:
    """A named input tensor (or, after shape inference, a rule's pattern variable).

    kind "real": finite reals. kind "mask": every element is 0 or -inf (an additive attention mask); checkers
    enumerate mask patterns instead of treating them as unknown reals."""

    name: str
    ranks: tuple[str, ...]
    line: int | None = field(default=None, compare=False)
    kind: str = "real"


@dataclass(frozen=True)
class Var:
    """A pattern variable of a rule, before shape inference gives it ranks."""

    name: str
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Const:
    value: float
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Ref:
    """A reference to a `let` binding of the same program."""

    name: str
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Map:
    op: str
    space: tuple[str, ...]
    args: tuple[Expr, ...]
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Reduce:
    op: str
    rank: str
    arg: Expr
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Split:
    rank: str
    outer: str
    inner: str
    tiles: int | str | None
    arg: Expr
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Unsplit:
    outer: str
    inner: str
    rank: str
    arg: Expr
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Scan:
    rank: str
    name: str
    init: Expr
    body: Expr
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Prev:
    rank: str
    name: str
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Shift:
    rank: str
    arg: Expr
    init: Expr
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Last:
    rank: str
    arg: Expr
    line: int | None = field(default=None, compare=False)


Expr = Input | Var | Const | Ref | Map | Reduce | Split | Unsplit | Scan | Prev | Shift | Last


def children(expr: Expr) -> tuple[Expr, ...]:
    match expr:
        case Input() | Var() | Const() | Ref() | Prev():
            return ()
        case Map(args=args):
            return args
        case Reduce(arg=arg) | Split(arg=arg) | Unsplit(arg=arg) | Last(arg=arg):
            return (arg,)
        case Scan(init=init, body=body):
            return (init, body)
        case Shift(arg=arg, init=init):
            return (arg, init)
    raise TypeError(f"not an IR node: {expr!r}")


def walk(expr: Expr):
    """Every node of the tree, parents before children (Refs are not followed)."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


@dataclass(frozen=True)
class Binding:
    name: str
    expr: Expr
    line: int | None = None


@dataclass
class Program:
    """A cascade: `let` bindings in file order, and the names `extract` asks for."""

    file: str
    bindings: dict[str, Binding]
    outputs: list[tuple[str, int | None]]
    sizes: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # rank -> (concrete size, line) from
                                                                             # `(CreateTensor "X[m,p]" 8 4)`

    def output_names(self) -> list[str]:
        return [name for name, _ in self.outputs]


@dataclass(frozen=True)
class Rule:
    """`lhs = rhs` for every value of the pattern variables. `file`/`line` say where it was written."""

    name: str
    lhs: Expr
    rhs: Expr
    file: str
    line: int | None
    description: str = ""
    bidirectional: bool = False
    # Filled by shape inference: the ranks of every pattern variable.
    var_ranks: tuple[tuple[str, tuple[str, ...]], ...] = ()


def rename_ranks(expr: Expr, mapping: dict[str, str]) -> Expr:
    """The same expression with ranks renamed (`x` -> `m`, `x1` -> `m1`, ...); used by rank templates."""
    from dataclasses import replace

    def r(name: str) -> str:
        return mapping.get(name, name)

    match expr:
        case Input(ranks=ranks):
            return replace(expr, ranks=tuple(r(x) for x in ranks))
        case Var() | Const() | Ref():
            return expr
        case Map(space=space, args=args):
            return replace(expr, space=tuple(r(x) for x in space), args=tuple(rename_ranks(a, mapping) for a in args))
        case Reduce(rank=rank, arg=arg):
            return replace(expr, rank=r(rank), arg=rename_ranks(arg, mapping))
        case Split(rank=rank, outer=o, inner=i, arg=arg) | Unsplit(rank=rank, outer=o, inner=i, arg=arg):
            return replace(expr, rank=r(rank), outer=r(o), inner=r(i), arg=rename_ranks(arg, mapping))
        case Scan(rank=rank, init=init, body=body):
            return replace(expr, rank=r(rank), init=rename_ranks(init, mapping), body=rename_ranks(body, mapping))
        case Prev(rank=rank):
            return replace(expr, rank=r(rank))
        case Shift(rank=rank, arg=arg, init=init):
            return replace(expr, rank=r(rank), arg=rename_ranks(arg, mapping), init=rename_ranks(init, mapping))
        case Last(rank=rank, arg=arg):
            return replace(expr, rank=r(rank), arg=rename_ranks(arg, mapping))
    raise TypeError(f"not an IR node: {expr!r}")
