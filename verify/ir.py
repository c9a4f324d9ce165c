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

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Literal, assert_never

from .predicates import Predicate

# log(x) is defined for x >= 0 (log 0 = -inf); fin(x) is x, except fin(-inf) = 0: the guard that real kernels
# put on a running max that is still -inf (a fully masked tile), so that exp(s - fin(m)) stays defined.
MAP_OPS = {"add": 2, "sub": 2, "mul": 2, "div": 2, "max": 2, "exp": 1, "log": 1, "fin": 1}
REDUCE_OPS = {"add", "max"}
TensorKind = Literal["real", "mask", "index"]


@dataclass(frozen=True)
class Input:
    """A named input tensor (or, after shape inference, a rule's pattern variable).

    kind "real": finite reals. kind "mask": every element is 0 or -inf (an additive attention mask); checkers
    enumerate mask patterns instead of treating them as unknown reals."""

    name: str
    ranks: tuple[str, ...]
    line: int | None = field(default=None, compare=False)
    kind: TensorKind = "real"
    # a predicate mask (`:mask(m <= p)`, verify/predicates.py): 0 where it holds, -inf elsewhere; None: opaque.
    # kind "index" (`:index(m - p)`): the integer value of a linear form of its indices (ALiBi's distance)
    pred: Predicate | None = None


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
    """The operands of a node, in the order `with_children` takes them back."""
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
        case _:
            assert_never(expr)


def with_children(expr: Expr, new: Sequence[Expr]) -> Expr:
    """`expr` with its operands replaced (in the order of `children`); the node itself when none changed, so
    that an unchanged subtree stays shared."""
    old = children(expr)
    if len(new) != len(old):
        raise ValueError(f"{type(expr).__name__} takes {len(old)} operands, not {len(new)}")
    if all(a is b for a, b in zip(old, new)):
        return expr
    match expr:
        case Input() | Var() | Const() | Ref() | Prev():
            return expr
        case Map():
            return replace(expr, args=tuple(new))
        case Reduce() | Split() | Unsplit() | Last():
            return replace(expr, arg=new[0])
        case Scan():
            return replace(expr, init=new[0], body=new[1])
        case Shift():
            return replace(expr, arg=new[0], init=new[1])
        case _:
            assert_never(expr)


def map_post(fn: Callable[[Expr], Expr], expr: Expr) -> Expr:
    """Bottom-up rewrite: `fn` of every node once its operands are rewritten (Refs are not followed)."""
    return fn(with_children(expr, [map_post(fn, kid) for kid in children(expr)]))


def walk(expr: Expr):
    """Every node of the tree, parents before children (Refs are not followed)."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def node_ranks(node: Expr) -> tuple[str, ...]:
    """The ranks one node names itself (not those of its operands)."""
    match node:
        case Input(ranks=ranks) | Map(space=ranks):
            return ranks
        case Reduce(rank=r) | Scan(rank=r) | Prev(rank=r) | Shift(rank=r) | Last(rank=r):
            return (r,)
        case Split(rank=r, outer=o, inner=i) | Unsplit(rank=r, outer=o, inner=i):
            return (r, o, i)
        case Var() | Const() | Ref():
            return ()
        case _:
            assert_never(node)


def rank_names(exprs: Expr | Iterable[Expr]) -> list[str]:
    """Every rank the expressions name, each once, in the order a walk meets them."""
    seen: dict[str, None] = {}
    for expr in (exprs,) if isinstance(exprs, Expr) else exprs:
        for node in walk(expr):
            seen.update(dict.fromkeys(node_ranks(node)))
    return list(seen)


def canonical(expr: Expr, bindings: Mapping[str, Binding] | None = None, by_position: bool = False) -> tuple:
    """Nested tuples (node type, then its fields) without source lines: equal for equal terms. With `bindings`,
    references are inlined; with `by_position`, tile counts are dropped and a scan state is named by how many
    scans out it is bound, so that the names and tilings a writer picked do not count."""

    # a binding used many times (a DAG) is canonicalised once per scan context, not once per use
    memo: dict[tuple[str, tuple[str, ...]], tuple] = {}

    def canon(e: Expr, scans: tuple[str, ...]) -> tuple:
        match e:
            case Ref(name=name) if bindings is not None:
                if (name, scans) not in memo:
                    memo[name, scans] = canon(bindings[name].expr, scans)
                return memo[name, scans]
            case Split() if by_position:
                return ("Split", e.rank, e.outer, e.inner, canon(e.arg, scans))
            case Scan(rank=rank, name=name, init=init, body=body) if by_position:
                return ("Scan", rank, canon(init, scans), canon(body, (name,) + scans))
            case Prev(rank=rank, name=name) if by_position:
                return ("Prev", rank, scans.index(name) if name in scans else name)
        parts: list[object] = [type(e).__name__]
        for f in fields(e):
            if f.name == "line":
                continue
            value = getattr(e, f.name)
            if isinstance(value, Expr):
                parts.append(canon(value, scans))
            elif isinstance(value, tuple) and value and isinstance(value[0], Expr):
                parts.append(tuple(canon(v, scans) for v in value))
            else:
                parts.append(value)
        return tuple(parts)

    return canon(expr, ())


def inline(expr: Expr, bindings: Mapping[str, Binding]) -> Expr:
    """`expr` with every reference to a binding replaced by its term; each binding is inlined once and its term
    shared by every use, so a DAG stays a DAG in memory."""
    memo: dict[str, Expr] = {}

    def resolve(e: Expr) -> Expr:
        if not isinstance(e, Ref):
            return e
        if e.name not in memo:
            memo[e.name] = map_post(resolve, bindings[e.name].expr)
        return memo[e.name]

    return map_post(resolve, expr)


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
    # The names a `rule`'s facts and lets give its terms (name, term): used only to print the claim readably.
    names: tuple[tuple[str, Expr], ...] = field(default=(), compare=False)


def rename_ranks(expr: Expr, mapping: dict[str, str]) -> Expr:
    """The same expression with ranks renamed (`x` -> `m`, `x1` -> `m1`, ...); used by rank templates."""

    def r(name: str) -> str:
        return mapping.get(name, name)

    def rename(node: Expr) -> Expr:
        match node:
            case Input(ranks=ranks):
                return replace(node, ranks=tuple(r(x) for x in ranks))
            case Var() | Const() | Ref():
                return node
            case Map(space=space):
                return replace(node, space=tuple(r(x) for x in space))
            case Reduce() | Scan() | Prev() | Shift() | Last():
                return replace(node, rank=r(node.rank))
            case Split() | Unsplit():
                return replace(node, rank=r(node.rank), outer=r(node.outer), inner=r(node.inner))
            case _:
                assert_never(node)

    return map_post(rename, expr)
