"""Cost model on the IR: passes over the m fiber (FuseMax's definition) and live memory of intermediates.

Both are computed exactly on the program's DAG: every distinct computation is one node (`let`s and structurally
equal subterms are shared), and a reduce of a map that has no other consumer is one fused Einsum, as the seed
notation writes it (`M_mul_emp_R_add_e`).

Passes. Every node gets a *time* t: 0 = known before any traversal of m, 2q-1 = produced element by element (or
tile by tile) while the m fiber is traversed for the q-th time, 2q = complete after the q-th traversal. A node
that iterates over m (its space has m, or the inner tile rank m0) is a *fiber* node; one that has the tile rank
m1 but not m0 is a *tile* node (M1-sized data); everything else is *global*.
- a fiber node runs in the earliest traversal in which all its operands are available: an operand of time 2q-1
  can be streamed along in traversal q, one of time 2q (a reduction over all of m: a barrier) only in q+1;
- a reduction over m or over the tile rank m1, and the last state of a scan over m1, completes a traversal
  (time 2q); a reduction over m0 stays inside a tile (time 2q-1);
- tile and global maps, scans over m1 and views (split, unsplit, shift) take the latest time of their operands;
  data of M1 elements is not a traversal of m (FuseMax: "GD reads M1-sized data").
passes = the largest q of any fiber node. 3-pass attention counts 3, the seed's 2-pass 2, FlashAttention-2 1.

Memory. A node's result is *stored* whole if some consumer runs in a later phase than the node was produced;
otherwise it is *streamed*, and only its current element or tile is live (the m and m1 ranks dropped, the m0
rank kept; an untiled node that a consumer reads through a split keeps a whole tile). Inputs, outputs,
constants and views do not count. A stored result is live from the phase it starts being produced until its
last use; the live memory of a phase is the sum over the nodes live in it, and the reported memory is the peak
over phases: a polynomial in the rank sizes (M, M0 for m0, M/M0 for m1, E, F, P), chosen as the largest phase
at the reference sizes (`REFERENCE_SIZES`, overridable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal, assert_never

from . import ir
from .notation import operator_name

REFERENCE_SIZES = {"M": 4096, "M0": 64, "P": 512, "E": 64, "F": 64}
UNKNOWN_SIZE = 16


# -- polynomials ------------------------------------------------------------------------------------------------

class Poly:
    """A Laurent polynomial with rational coefficients over size symbols (M, M0, P, ...)."""

    __slots__ = ("terms",)

    def __init__(self, terms=None):
        self.terms: dict[tuple[tuple[str, int], ...], Fraction] = {}
        for mono, coeff in (terms or {}).items():
            if coeff:
                self.terms[mono] = Fraction(coeff)

    @staticmethod
    def const(c) -> Poly:
        return Poly({(): Fraction(c)})

    @staticmethod
    def sym(name: str) -> Poly:
        return Poly({((name, 1),): Fraction(1)})

    def __add__(self, other: Poly) -> Poly:
        out = dict(self.terms)
        for mono, coeff in other.terms.items():
            out[mono] = out.get(mono, Fraction(0)) + coeff
        return Poly(out)

    def __mul__(self, other: Poly) -> Poly:
        out: dict = {}
        for m1, c1 in self.terms.items():
            for m2, c2 in other.terms.items():
                powers = dict(m1)
                for s, e in m2:
                    powers[s] = powers.get(s, 0) + e
                mono = tuple(sorted((s, e) for s, e in powers.items() if e))
                out[mono] = out.get(mono, Fraction(0)) + c1 * c2
        return Poly(out)

    def inverse_monomial(self) -> Poly:
        (mono, coeff), = self.terms.items()
        return Poly({tuple((s, -e) for s, e in mono): 1 / coeff})

    def __truediv__(self, other: Poly) -> Poly:
        return self * other.inverse_monomial()

    def __eq__(self, other) -> bool:
        return isinstance(other, Poly) and self.terms == other.terms

    def __hash__(self) -> int:
        return hash(frozenset(self.terms.items()))

    def evaluate(self, sizes: dict[str, float]) -> float:
        total = 0.0
        for mono, coeff in self.terms.items():
            value = float(coeff)
            for s, e in mono:
                value *= float(sizes.get(s, UNKNOWN_SIZE)) ** e
            total += value
        return total

    def __str__(self) -> str:
        if not self.terms:
            return "0"

        def degree(mono):
            return sum(e for _, e in mono)

        parts = []
        for mono, coeff in sorted(self.terms.items(), key=lambda kv: (-degree(kv[0]), kv[0])):
            num = [s if e == 1 else f"{s}^{e}" for s, e in mono if e > 0]
            den = [s if e == -1 else f"{s}^{-e}" for s, e in mono if e < 0]
            c = coeff
            text = ""
            if c != 1 or not num:
                text = str(c) if c.denominator == 1 else f"({c})"
            body = "*".join(num)
            text = f"{text}*{body}" if text and body else text or body
            if not num and c == 1:
                text = "1"
            if den:
                text += "/" + ("*".join(den) if len(den) == 1 else f"({'*'.join(den)})")
            parts.append(text)
        return " + ".join(parts)

    __repr__ = __str__


# -- the DAG ----------------------------------------------------------------------------------------------------

# one per IR node type a DAG holds (references are followed); e-nodes have the same kinds (egglog/egraph.py)
NodeKind = Literal["input", "const", "prev", "map", "reduce", "split", "unsplit", "scan", "shift", "last"]

@dataclass
class Node:
    id: int
    kind: NodeKind
    expr: ir.Expr                   # the IR node (its children may be Refs)
    children: tuple[int, ...]
    ranks: tuple[str, ...]          # ranks of the result
    space: tuple[str, ...]          # iteration space
    name: str | None = None         # the `let` that names it, if any
    fused: bool = False             # a map fused into its only consumer, a reduce
    output: bool = False

    @property
    def removed(self) -> str | None:
        """The rank a reduce or a last state takes away."""
        return self.expr.rank if isinstance(self.expr, (ir.Reduce, ir.Last)) else None

    @property
    def op(self) -> str:
        e = self.expr
        match e:
            case ir.Input(name=name):
                return f'CreateTensor "{name}"'
            case ir.Const(value=v):
                return f"Const {v:g}"
            case ir.Scan(name=n) | ir.Prev(name=n):
                return f'{operator_name(e)} "{n}"'
        return operator_name(e) or type(e).__name__


KIND: dict[type, NodeKind] = {
    ir.Input: "input", ir.Const: "const", ir.Prev: "prev", ir.Map: "map", ir.Reduce: "reduce", ir.Split: "split",
    ir.Unsplit: "unsplit", ir.Scan: "scan", ir.Shift: "shift", ir.Last: "last",
}
VIEWS = ("split", "unsplit", "shift")


class Dag:
    """The distinct computations of a program's outputs, children before parents."""

    def __init__(self, program: ir.Program, outputs: list[str] | None = None):
        self.program = program
        self.nodes: list[Node] = []
        self.index: dict[object, int] = {}
        self.refs: dict[str, int] = {}
        self.scan_ranks: dict[str, tuple[str, ...]] = {}
        names = outputs or program.output_names()
        self.outputs = [self.ref(n) for n in names]
        for i in self.outputs:
            self.nodes[i].output = True
        self.consumers: dict[int, list[int]] = {n.id: [] for n in self.nodes}
        for n in self.nodes:
            for c in n.children:
                self.consumers[c].append(n.id)
        for n in self.nodes:
            if n.kind == "map" and not n.output and len(self.consumers[n.id]) == 1:
                (c,) = self.consumers[n.id]
                if self.nodes[c].kind == "reduce":
                    n.fused = True

    def scan_states_read(self) -> dict[int, frozenset]:
        """node id -> the scan states it reads through S_prev without being inside that scan: such a node is
        part of a scan's step and has no value of its own outside it."""
        free: dict[int, frozenset] = {}
        for n in self.nodes:
            names = frozenset().union(*(free[c] for c in n.children)) if n.children else frozenset()
            if isinstance(n.expr, ir.Prev):
                names = frozenset({n.expr.name})
            elif isinstance(n.expr, ir.Scan):
                names = names - {n.expr.name}
            free[n.id] = names
        return free

    def ref(self, name: str) -> int:
        if name not in self.refs:
            binding = self.program.bindings[name]
            node_id = self.add(binding.expr)
            self.refs[name] = node_id
            if self.nodes[node_id].name is None:
                self.nodes[node_id].name = name
        return self.refs[name]

    def add(self, e: ir.Expr) -> int:
        if isinstance(e, ir.Ref):
            return self.ref(e.name)
        kind = KIND[type(e)]
        if isinstance(e, ir.Scan):
            # the state's ranks are the body's; Prev nodes inside need them first (maps fix them anyway)
            self.scan_ranks.setdefault(e.name, ())
        children = tuple(self.add(c) for c in ir.children(e))
        params = tuple((f, getattr(e, f)) for f in e.__dataclass_fields__ if f not in ("line", "args", "arg",
                                                                                          "init", "body"))
        key = (kind, params, children)
        if key in self.index:
            return self.index[key]
        ranks, space = self.shape(e, children)
        if isinstance(e, ir.Scan):
            self.scan_ranks[e.name] = ranks
        node = Node(len(self.nodes), kind, e, children, ranks, space)
        self.nodes.append(node)
        self.index[key] = node.id
        return node.id

    def shape(self, e: ir.Expr, children) -> tuple[tuple[str, ...], tuple[str, ...]]:
        kid = [self.nodes[c].ranks for c in children]
        match e:
            case ir.Input(ranks=ranks):
                return ranks, ranks
            case ir.Const():
                return (), ()
            case ir.Prev(name=name):
                r = self.scan_ranks.get(name, ())
                return r, r
            case ir.Map(space=space):
                return space, space
            case ir.Reduce(rank=rank):
                return tuple(r for r in kid[0] if r != rank), kid[0]
            case ir.Split(rank=rank, outer=o, inner=i):
                got = kid[0]
                if rank in got:
                    j = got.index(rank)
                    got = got[:j] + (o, i) + got[j + 1:]
                return got, got
            case ir.Unsplit(outer=o, inner=i, rank=rank):
                got = tuple(rank if r == o else r for r in kid[0] if r != i)
                return got, got
            case ir.Scan():
                return kid[1], kid[1]
            case ir.Shift():
                return kid[0], kid[0]
            case ir.Last(rank=rank):
                return tuple(r for r in kid[0] if r != rank), kid[0]
            case ir.Var() | ir.Ref():
                raise TypeError(f"{e!r} is not a node of the DAG (references are followed, rules have inputs)")
            case _:
                assert_never(e)

    def splits(self) -> list[tuple[str, str, str]]:
        out = []
        for n in self.nodes:
            if isinstance(n.expr, (ir.Split, ir.Unsplit)):
                item = (n.expr.rank, n.expr.outer, n.expr.inner)
                if item not in out:
                    out.append(item)
        return out


# -- time (passes) ----------------------------------------------------------------------------------------------

Placement = Literal["fiber", "tile", "global"]

@dataclass(frozen=True)
class Fiber:
    """The rank whose traversals are counted, and the tile ranks it is split into."""

    rank: str = "m"
    outer: frozenset = frozenset()
    inner: frozenset = frozenset()

    @staticmethod
    def of(splits, rank: str = "m") -> Fiber:
        outer = frozenset(o for r, o, _ in splits if r == rank)
        inner = frozenset(i for r, _, i in splits if r == rank)
        return Fiber(rank, outer, inner)

    def classify(self, ranks) -> Placement:
        ranks = set(ranks)
        if self.rank in ranks or ranks & self.inner:
            return "fiber"
        if ranks & self.outer:
            return "tile"
        return "global"

    def completes(self, rank: str) -> bool:
        """Does reducing (or taking the last state along) this rank complete a traversal of the fiber?"""
        return rank == self.rank or rank in self.outer


def need(t: int) -> int:
    """The first traversal in which a value of time t can be read element by element."""
    return t // 2 + 1


def node_time(kind: NodeKind, rank: str | None, space, child_times, fiber: Fiber) -> int:
    """The time of one node from its operands' times (see the module docstring). Monotone in every operand.
    `rank`: the rank a reduce or a last state takes away (the extractor calls this for e-nodes too)."""
    if kind == "input":
        return 1 if fiber.classify(space) != "global" else 0
    if kind in ("const", "prev"):
        return 0
    if kind == "map":
        if fiber.classify(space) == "fiber":
            return 2 * max([need(t) for t in child_times] or [1]) - 1
        return max(child_times, default=0)
    if kind in ("reduce", "last"):
        (t,) = child_times[:1]
        if rank is not None and fiber.completes(rank):
            return max(t + t % 2, 2)
        return t
    return max(child_times, default=0)


def pass_of(t: int) -> int:
    return (t + 1) // 2


# -- analysis ---------------------------------------------------------------------------------------------------

@dataclass
class Analysis:
    passes: int
    memory: Poly
    memory_value: float
    peak_phase: int
    einsums: int
    dag: Dag
    fiber: Fiber
    time: dict[int, int]
    stored: dict[int, bool] = field(default_factory=dict)     # storage node -> stored whole (else streamed)
    barriers: set[int] = field(default_factory=set)
    untiled: int = 0            # nodes over the fiber left untiled although it is tiled elsewhere

    def summary(self) -> dict:
        return {"passes": self.passes, "memory": str(self.memory), "memory_at_reference": self.memory_value,
                "einsums": self.einsums}


def rank_sizes(splits) -> dict[str, Poly]:
    sizes: dict[str, Poly] = {}
    for rank, outer, inner in splits:
        sizes.setdefault(rank, Poly.sym(rank.upper()))
        sizes[inner] = Poly.sym(inner.upper())
        sizes[outer] = sizes[rank] / sizes[inner]
    return sizes


def analyze(program: ir.Program, fiber_rank: str = "m", reference: dict[str, float] | None = None,
            outputs: list[str] | None = None) -> Analysis:
    dag = Dag(program, outputs)
    splits = dag.splits()
    fiber = Fiber.of(splits, fiber_rank)
    reference = {**REFERENCE_SIZES, **(reference or {})}
    sizes = rank_sizes(splits)

    def size(rank: str) -> Poly:
        return sizes.get(rank) or Poly.sym(rank.upper())

    time: dict[int, int] = {}
    for n in dag.nodes:
        time[n.id] = node_time(n.kind, n.removed, n.space, [time[c] for c in n.children], fiber)
    passes = max([pass_of(time[n.id]) for n in dag.nodes if fiber.classify(n.space) == "fiber"], default=0)

    def start(n: Node) -> int:
        """The phase in which a node consumes its operands."""
        if n.kind in ("reduce", "last"):
            return time[n.children[0]]
        return time[n.id]

    def storage(i: int) -> int | None:
        n = dag.nodes[i]
        while n.kind in VIEWS:
            n = dag.nodes[n.children[0]]
        if n.kind in ("input", "const", "prev"):
            return None
        return n.id

    uses: dict[int, list[int]] = {}
    tile_reads: set[int] = set()           # untiled nodes some consumer reads tile by tile
    for n in dag.nodes:
        if n.kind in VIEWS or n.fused:
            continue
        operands = list(n.children)
        if n.kind == "reduce" and dag.nodes[n.children[0]].fused:
            operands = list(dag.nodes[n.children[0]].children)
        phase = start(n)
        pending = [(c, False) for c in operands]
        while pending:
            c, tiled = pending.pop()
            node = dag.nodes[c]
            if node.kind in VIEWS:
                # a shift's initial value is read where the shift is; reading through a split of the fiber
                # reads whole tiles
                tiled = tiled or (isinstance(node.expr, ir.Split) and node.expr.rank == fiber.rank)
                pending.extend((k, tiled) for k in node.children)
                continue
            s = storage(c)
            if s is not None:
                uses.setdefault(s, []).append(phase)
                if tiled:
                    tile_reads.add(s)

    def product(ranks) -> Poly:
        out = Poly.const(1)
        for r in ranks:
            out = out * size(r)
        return out

    live: dict[int, Poly] = {}
    stored: dict[int, bool] = {}
    barriers: set[int] = set()
    einsums = 0
    for n in dag.nodes:
        if n.kind in VIEWS or n.fused or n.kind in ("input", "const", "prev"):
            continue
        einsums += 1
        t = time[n.id]
        if n.output:
            continue
        used = uses.get(n.id, [])
        whole = any(u > t for u in used) or fiber.classify(n.ranks) == "global"
        stored[n.id] = whole
        if whole:
            footprint = product(n.ranks)
        else:
            footprint = product(r for r in n.ranks if r != fiber.rank and r not in fiber.outer)
            if fiber.rank in n.ranks and n.id in tile_reads and fiber.inner:
                footprint = footprint * size(min(fiber.inner))
        first = start(n)
        last = max(used + [t])
        for phase in range(first, last + 1):
            live[phase] = live.get(phase, Poly()) + footprint
    if live:
        peak_phase = max(live, key=lambda p: (live[p].evaluate(reference), -p))
        memory = live[peak_phase]
    else:
        peak_phase, memory = 0, Poly()
    # a barrier: a reduction completing a traversal of m whose value a fiber node of a later traversal needs
    ends: dict[int, frozenset] = {}
    for n in dag.nodes:
        found = frozenset().union(*(ends[c] for c in n.children)) if n.children else frozenset()
        if n.removed is not None and fiber.completes(n.removed) and time[n.children[0]] % 2 == 1:
            found = found | {n.id}
        ends[n.id] = found
        if fiber.classify(n.space) == "fiber":
            here = pass_of(time[n.id])
            barriers.update(b for b in found if pass_of(time[dag.nodes[b].children[0]]) < here)
    untiled = sum(1 for n in dag.nodes if n.kind not in ("input", "const", "prev") and fiber.rank in n.space
                  and fiber.inner)
    return Analysis(passes, memory, memory.evaluate(reference), peak_phase, einsums, dag, fiber, time, stored,
                    barriers, untiled)


__all__ = ["Poly", "Dag", "Node", "Fiber", "Analysis", "analyze", "node_time", "need", "pass_of",
           "REFERENCE_SIZES"]
