"""A frozen egglog e-graph read into Python: e-classes of `Tensor` e-nodes, their rank sets and the program's
globals, and each e-node as an IR node. Extraction ranks whole DAGs, which egglog's extractor cannot."""

from __future__ import annotations

from dataclasses import dataclass

from .. import ir
from ..cost import NodeKind
from ..notation import LeafOp, MapOp, ReduceOp, ScanOp, SplitOp, UnsplitOp, parse_tensor_kind, parse_tensor_name
from .prelude import parsed_operator

ENodeKind = NodeKind    # an e-node is one node of the cost model's DAG


@dataclass(frozen=True)
class ENode:
    op: str
    args: tuple                     # Tensor arguments are e-class ids (int), others Python values
    children: tuple[int, ...]


class PyEGraph:
    """A frozen egglog e-graph: e-classes of Tensor e-nodes, their rank sets, and the program's globals."""

    def __init__(self, egraph):
        frozen = egraph.freeze()
        ids: dict = {}

        def cls(value) -> int:
            return ids.setdefault(value, len(ids))

        self.classes: dict[int, list[ENode]] = {}
        self.ranks: dict[int, frozenset] = {}
        self.globals: dict[str, int] = {}
        convert = {
            "String": egraph.value_to_string, "i64": egraph.value_to_i64, "f64": egraph.value_to_f64,
        }
        for name, fn in frozen.functions.items():
            if fn.output_sort == "Tensor" and fn.is_let_binding:
                for row in fn.rows:
                    self.globals[name] = cls(row.output)
                continue
            if fn.output_sort == "Tensor":
                for row in fn.rows:
                    if row.subsumed:
                        continue
                    args = []
                    children = []
                    for value, sort in zip(row.inputs, fn.input_sorts):
                        if sort == "Tensor":
                            args.append(cls(value))
                            children.append(args[-1])
                        else:
                            args.append(convert[sort](value))
                    node = ENode(name, tuple(args), tuple(children))
                    self.classes.setdefault(cls(row.output), []).append(node)
        ranks_fn = frozen.functions.get("ranks")
        if ranks_fn is not None:
            for row in ranks_fn.rows:
                members = egraph.value_to_set(row.output)
                self.ranks[cls(row.inputs[0])] = frozenset(egraph.value_to_string(v) for v in members)
        for members in self.classes.values():
            members.sort(key=lambda n: (n.op, repr(n.args)))

    @property
    def size(self) -> int:
        return sum(len(v) for v in self.classes.values())


def enode_ir(node: ENode, kids: list[ir.Expr]) -> ir.Expr:
    """One e-node as an IR node over the IR of its Tensor children."""
    op = parsed_operator(node.op)
    it = iter(kids)
    match op:
        case LeafOp(kind="CreateTensor"):
            # the seed declares (CreateTensor i64 i64 String): the sizes come first, the name is the string
            spec, kind = parse_tensor_kind(tensor_spec(node))
            name, ranks = parse_tensor_name(spec)
            return ir.Input(name, ranks, None, kind) if kind != "real" else ir.Input(name, ranks)
        case LeafOp(kind="Const"):
            return ir.Const(float(node.args[0]))
        case MapOp(op=mop, space=space, reduce=None):
            return ir.Map(mop, space, tuple(kids))
        case MapOp(op=mop, space=space, reduce=ReduceOp() as red):
            return ir.Reduce(red.op, red.rank, ir.Map(mop, space, tuple(kids)))
        case ReduceOp(op=rop, rank=rank):
            return ir.Reduce(rop, rank, next(it))
        case SplitOp(rank=rank, outer=o, inner=i):
            return ir.Split(rank, o, i, node.args[1], next(it))
        case UnsplitOp(outer=o, inner=i, rank=rank):
            return ir.Unsplit(o, i, rank, next(it))
        case ScanOp(kind="scan", rank=rank):
            return ir.Scan(rank, node.args[0], kids[0], kids[1])
        case ScanOp(kind="prev", rank=rank):
            return ir.Prev(rank, node.args[0])
        case ScanOp(kind="shift", rank=rank):
            return ir.Shift(rank, kids[0], kids[1])
        case ScanOp(kind="last", rank=rank):
            return ir.Last(rank, kids[0])
    raise AssertionError(node.op)


def tensor_spec(node: ENode) -> str:
    """The name string of a CreateTensor e-node, wherever its sizes put it."""
    return next(a for a in node.args if isinstance(a, str))


def enode_kind(node: ENode) -> ENodeKind:
    op = parsed_operator(node.op)
    match op:
        case LeafOp(kind="CreateTensor"):
            return "input"
        case LeafOp(kind="Const"):
            return "const"
        case MapOp(reduce=None):
            return "map"
        case MapOp():
            return "reduce"
        case ReduceOp():
            return "reduce"
        case SplitOp():
            return "split"
        case UnsplitOp():
            return "unsplit"
        case ScanOp(kind="scan" | "prev" | "shift" | "last" as kind):
            return kind
    raise AssertionError(node.op)

