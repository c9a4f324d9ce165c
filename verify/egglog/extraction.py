"""Extraction by the cost of the whole program.

FuseMax passes and live memory are properties of the whole extracted DAG, not sums over a tree, so egglog's
extractor (tree costs, monotone in the children) cannot rank by them. Tree-cost proxies over the Python
e-graph (passes as a bottom-up time, term size, summed footprints) give candidate selections, a local search
over the e-nodes of the reached e-classes improves them, and every candidate is ranked by the exact cost of its
DAG (`cost.analyze`), then printed as a readable program (`selection_program`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from .. import ir
from ..cost import REFERENCE_SIZES, Analysis, Fiber, analyze, node_time, pass_of
from ..errors import InternalError, UsageError
from ..notation import LeafOp, MapOp, ReduceOp, ScanOp, SplitOp, UnsplitOp, parse_tensor_name
from .egraph import ENode, ENodeKind, PyEGraph, enode_ir, enode_kind, tensor_spec
from .prelude import parsed_operator

Cost = Literal["passes", "memory"]
COSTS: tuple[Cost, ...] = get_args(Cost)
Origin = Literal["passes proxy", "size proxy", "footprint proxy", "local search"]


@dataclass
class Candidate:
    program: ir.Program
    analysis: Analysis
    key: tuple
    origin: Origin


class Extractor:
    """Candidates from tree-cost proxies, improved by local search, ranked by the exact DAG cost."""

    def __init__(self, graph: PyEGraph, roots: dict[str, int], cost: Cost = "passes", forbid=(),
                 class_names: dict[int, str] | None = None, reference=None, fiber_rank: str = "m",
                 budget_seconds: float = 10.0, budget_evaluations: int = 4000):
        self.graph = graph
        self.roots = roots
        self.cost = cost
        self.forbid = tuple(forbid)
        self.class_names = class_names or {}
        self.reference = {**REFERENCE_SIZES, **(reference or {})}
        self.fiber_rank = fiber_rank
        self.deadline = time.monotonic() + budget_seconds
        self.budget = budget_evaluations
        self.evaluations = 0
        self.memo: dict = {}
        splits = set()
        for members in graph.classes.values():
            for n in members:
                op = parsed_operator(n.op)
                if isinstance(op, (SplitOp, UnsplitOp)):
                    splits.add((op.rank, op.outer, op.inner))
        self.fiber = Fiber.of(sorted(splits), fiber_rank)

    def allowed(self, node: ENode) -> bool:
        return not any(node.op.startswith(prefix) for prefix in self.forbid)

    # proxies -----------------------------------------------------------------------------------------------
    def space(self, node: ENode, cls: int) -> tuple:
        op = parsed_operator(node.op)
        if isinstance(op, MapOp):
            return op.space
        if isinstance(op, LeafOp) and op.kind == "CreateTensor":
            leaf = enode_ir(node, [])
            assert isinstance(leaf, ir.Input)
            return leaf.ranks
        if isinstance(op, (ReduceOp, ScanOp)) and node.children:
            return tuple(self.graph.ranks.get(node.children[0], ()))
        return tuple(self.graph.ranks.get(cls, ()))

    def proxy_passes(self, cls, node, kids):
        kind = enode_kind(node)
        op = parsed_operator(node.op)
        space = self.space(node, cls)
        t = node_time(kind, getattr(op, "rank", None), space, [k[1] for k in kids], self.fiber)
        mp = max([k[0] for k in kids] + [pass_of(t) if self.fiber.classify(space) == "fiber" else 0])
        return (mp, t, 1 + sum(k[2] for k in kids))

    def proxy_size(self, cls, node, kids):
        return (1 + sum(k[0] for k in kids),)

    def rank_size(self, rank: str) -> float:
        ref = self.reference
        if rank == self.fiber.rank:
            return float(ref.get(rank.upper(), 4096))
        if rank in self.fiber.inner:
            return float(ref.get(rank.upper(), 64))
        if rank in self.fiber.outer:
            inner = min(self.fiber.inner) if self.fiber.inner else None
            return float(ref.get(self.fiber.rank.upper(), 4096)) / float(ref.get(inner.upper(), 64) if inner else 64)
        return float(ref.get(rank.upper(), 16))

    def proxy_footprint(self, cls, node, kids):
        size = 1.0
        for r in self.graph.ranks.get(cls, ()):
            size *= self.rank_size(r)
        return (size + sum(k[0] for k in kids), 1 + sum(k[1] for k in kids))

    def best_by(self, proxy) -> dict[int, ENode]:
        best: dict[int, tuple] = {}
        choice: dict[int, ENode] = {}
        changed = True
        while changed:
            changed = False
            for cls, members in self.graph.classes.items():
                for node in members:
                    if not self.allowed(node):
                        continue
                    if any(c not in best for c in node.children):
                        continue
                    value = proxy(cls, node, [best[c] for c in node.children])
                    if cls not in best or value < best[cls]:
                        best[cls] = value
                        choice[cls] = node
                        changed = True
        return choice

    # exact ----------------------------------------------------------------------------------------------------
    def program(self, selection: dict[int, ENode]) -> ir.Program | None:
        return selection_program(self.graph, selection, self.roots, self.class_names)

    def evaluate(self, selection: dict[int, ENode], origin: Origin) -> Candidate | None:
        reached = _reached(selection, self.roots.values())
        if reached is None:
            return None
        key = tuple(sorted((c, n.op, n.args) for c, n in reached.items()))
        if key in self.memo:
            return self.memo[key]
        self.evaluations += 1
        program = self.program(selection)
        if program is None:
            self.memo[key] = None
            return None
        a = analyze(program, self.fiber_rank, self.reference)
        rank: tuple[float, ...]
        if self.cost == "memory":
            rank = (a.memory_value, a.passes, a.einsums, a.untiled)
        else:
            rank = (a.passes, a.memory_value, a.einsums, a.untiled)
        cand = Candidate(program, a, rank, origin)
        self.memo[key] = cand
        return cand

    def run(self) -> tuple[Candidate, list[Candidate]]:
        proxies: list[tuple[Origin, Callable]] = [("passes proxy", self.proxy_passes), ("size proxy", self.proxy_size),
                   ("footprint proxy", self.proxy_footprint)]
        bases = []
        for origin, proxy in proxies:
            sel = self.best_by(proxy)
            if all(r in sel for r in self.roots.values()):
                bases.append((origin, sel))
        if not bases:
            raise UsageError("no term of the e-graph can be extracted under these restrictions",
                             hint="drop --no-scan, or check that the program itself uses no forbidden operator")
        fill = bases[0][1]
        candidates = []
        for origin, sel in bases:
            cand = self.evaluate(sel, origin)
            if cand is not None:
                candidates.append(cand)
        if not candidates:
            raise InternalError("every proxy extraction was cyclic or ill-formed")
        best = min(candidates, key=lambda c: c.key)
        best_sel = next(sel for origin, sel in bases if origin == best.origin)
        best_sel = dict(best_sel)
        improved = True
        while improved and self.evaluations < self.budget and time.monotonic() < self.deadline:
            improved = False
            reached = _reached(best_sel, self.roots.values()) or {}
            for cls in reached:
                for node in self.graph.classes[cls]:
                    if node == best_sel[cls] or not self.allowed(node):
                        continue
                    sel = dict(best_sel)
                    sel[cls] = node
                    for c, n in fill.items():
                        sel.setdefault(c, n)
                    cand = self.evaluate(sel, "local search")
                    if cand is not None and cand.key < best.key:
                        best, best_sel, improved = cand, sel, True
                        candidates.append(cand)
                        break
                    if self.evaluations >= self.budget or time.monotonic() >= self.deadline:
                        break
                if improved or self.evaluations >= self.budget:
                    break
        return best, candidates


def _reached(selection: dict[int, ENode], roots) -> dict[int, ENode] | None:
    """The e-classes a selection reaches from the roots (None if it misses one or is cyclic)."""
    out: dict[int, ENode] = {}
    state: dict[int, int] = {}

    def visit(cls: int) -> bool:
        s = state.get(cls)
        if s == 1:
            return False          # cycle
        if s == 2:
            return True
        if cls not in selection:
            return False
        state[cls] = 1
        node = selection[cls]
        for c in node.children:
            if not visit(c):
                return False
        state[cls] = 2
        out[cls] = node
        return True

    for r in roots:
        if not visit(r):
            return None
    return out


# -- a selection as a readable program ---------------------------------------------------------------------------------

BIND_KINDS: set[ENodeKind] = {"input", "reduce", "scan", "last", "shift", "split", "unsplit"}


def selection_program(graph: PyEGraph, selection: dict[int, ENode], roots: dict[str, int],
                      class_names: dict[int, str], file: str = "<optimized>") -> ir.Program | None:
    reached = _reached(selection, roots.values())
    if reached is None:
        return None
    order = list(reached)                         # children before parents (post-order)
    uses: dict[int, int] = {c: 0 for c in order}
    for cls in order:
        for c in reached[cls].children:
            uses[c] += 1
    free: dict[int, frozenset] = {}              # the scan states a term refers to (S_prev) outside its scan
    for cls in order:
        node = reached[cls]
        kind = enode_kind(node)
        names_in = frozenset().union(*(free[c] for c in node.children)) if node.children else frozenset()
        if kind == "prev":
            names_in = frozenset({node.args[0]})
        elif kind == "scan":
            names_in = names_in - {node.args[0]}
        free[cls] = names_in
    has_prev = {cls: bool(free[cls]) for cls in order}
    names: dict[int, str] = {}
    taken: set[str] = set()

    def claim(cls: int, name: str) -> bool:
        if name in taken or cls in names:
            return False
        names[cls] = name
        taken.add(name)
        return True

    aliases: dict[str, str] = {}                  # an output equal to an earlier one (the same e-class)
    for name, cls in roots.items():
        if cls in names:
            aliases[name] = names[cls]
            taken.add(name)
            continue
        claim(cls, name)
    bound: set[int] = set(names)
    for cls in order:
        node = reached[cls]
        kind = enode_kind(node)
        if has_prev[cls] or kind in ("const", "prev"):
            continue
        if uses[cls] >= 2 or kind in BIND_KINDS or cls in class_names:
            bound.add(cls)
    # names: the input program's names first, then by role, then numbered
    for cls in order:
        if cls in bound and cls in class_names:
            claim(cls, class_names[cls])
    for cls in order:
        if cls in bound and cls not in names:
            base = _role_name(reached, names, cls)
            name, k = base, 2
            while name in taken:
                name, k = f"{base}_{k}", k + 1
            claim(cls, name)
    exprs: dict[int, ir.Expr] = {}

    def expr_of(cls: int) -> ir.Expr:
        if cls in bound:
            return ir.Ref(names[cls])
        return build(cls)

    def build(cls: int) -> ir.Expr:
        if cls not in exprs:
            node = reached[cls]
            exprs[cls] = enode_ir(node, [expr_of(c) for c in node.children])
        return exprs[cls]

    bindings = {}
    inputs_first = [c for c in order if enode_kind(reached[c]) == "input"] + [
        c for c in order if enode_kind(reached[c]) != "input"]
    for cls in inputs_first:
        if cls in bound:
            bindings[names[cls]] = ir.Binding(names[cls], build(cls))
    for name, target in aliases.items():
        bindings[name] = ir.Binding(name, ir.Ref(target))
    return ir.Program(file, bindings, [(name, None) for name in roots])


def _role_name(reached: dict[int, ENode], names: dict[int, str], cls: int) -> str:
    """A name for an intermediate from what it computes: BK for a split of K, RM_last for the last state of
    scan RM, SUM_m0 / MAX_m for reductions, EXP / MUL / ... for maps."""
    node = reached[cls]
    kind = enode_kind(node)
    kids = [reached[c] for c in node.children]
    if kind == "input":
        return parse_tensor_name(tensor_spec(node).split(":")[0])[0]
    if kind == "scan":
        return node.args[0]
    if kind in ("last", "shift") and enode_kind(kids[0]) == "scan":
        return f"{kids[0].args[0]}_{'last' if kind == 'last' else 'prev'}"
    if kind == "split":
        child = names.get(node.children[0])
        return ("B" + child if enode_kind(kids[0]) == "input" else f"{child}_t") if child else "TILE"
    op = parsed_operator(node.op)
    if isinstance(op, ReduceOp):
        inner = parsed_operator(kids[0].op)
        head = "DOT" if isinstance(inner, MapOp) and inner.op == "mul" and kids[0] is not None else (
            "MAX" if op.op == "max" else "SUM")
        return f"{head}_{op.rank}"
    if isinstance(op, MapOp):
        return op.op.upper()
    return "T"

