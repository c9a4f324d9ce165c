"""Reading terms: egglog expressions into IR terms, resolving `let` names and, inside a rule, pattern variables;
the reader's state and its located errors."""

from __future__ import annotations

import re

from .. import ir, predicates
from ..errors import Location, NotationError, ParseError, ShapeError, VerifyError, did_you_mean
from ..notation import (
    LeafOp,
    MapOp,
    ReduceOp,
    ScanOp,
    SplitOp,
    UnsplitOp,
    parse_operator,
    parse_tensor_kind,
    parse_tensor_name,
)
from .source import LITERAL_SORTS, MAX_NESTING, NESTING_HINT, Parsed
from .syntax import arity, literal


def split_predicate(text: str) -> tuple[str, str | None]:
    """`"B[m,p]:mask(m <= p)"` -> ('B[m,p]:mask', 'm <= p'); without a predicate -> (text, None)."""
    m = re.fullmatch(r"(.*:\s*(?:mask|index))\s*\((.*)\)\s*", text, re.S)
    return (m.group(1), m.group(2)) if m else (text, None)


class TermReader:
    """The state of reading one file, and how a term of it is read (the base of `program.Reader`)."""

    def __init__(self, text: str, file: str):
        self.text = text
        self.file = file
        self.raw = text.encode("utf-8")
        self.batch, self.first_line = self.raw, 0   # the text the command being read was parsed from
        self.parsed: dict[int, Parsed] = {}          # id of an egglog command -> where it was parsed
        self.lines = text.splitlines()
        self.bindings: dict[str, ir.Binding] = {}
        self.outputs: list[tuple[str, int | None]] = []
        self.rules: list[ir.Rule] = []
        self.declared: dict[str, int] | None = None
        self.sorts: dict[str, tuple[str, ...]] = {}   # declared constructor -> argument sorts
        self.functions: set[str] = set()              # other declared functions and relations (analyses)
        self.rule_vars: set[str] | None = None  # set while converting a rule
        self.sizes: dict[str, tuple[int, int | None]] = {}   # rank -> (concrete CreateTensor size, line)
        self.rule_defs: dict[str, object] | None = None  # a `rule`'s fact- and let-defined names
        self.resolving: dict[str, ir.Expr | None] | None = None
        self.rule_errors: list[VerifyError] = []
        self.notices: list[tuple[int | None, str]] = []
        self.program_broken = False
        self.analysis_rules = 0
        self.any_sizes = False
        self.level = 0                  # operator nesting at the term being read, counting through let names
        self.deepest = 0                # the deepest level reached since the last reset (one binding's term)
        self.depth_of: dict[str, int] = {}   # let name -> how deep its term nests
        self.params: dict[str, predicates.Param] | None = None   # `; param:` declarations, read on first use

    # -- positions --------------------------------------------------------------------------------------
    def line_of(self, node) -> int | None:
        span = getattr(node, "span", None)
        start = getattr(span, "i", None)
        if start is None:
            return None
        return self.first_line + self.batch[:start].count(b"\n") + 1

    def error(self, cls, cause: str, node=None, hint: str | None = None, line: int | None = None) -> VerifyError:
        return cls(cause, Location(self.file, line if line is not None else self.line_of(node)), hint)

    # -- commands ---------------------------------------------------------------------------------------
    def check_declared_use(self, node, name: str, args) -> None:
        """A use of a constructor the file declares must match the declaration, as egglog demands."""
        sorts = self.sorts.get(name)
        if sorts is None:
            return
        if len(sorts) != len(args):
            raise self.error(ParseError, f"'{name}' is declared ({name} {' '.join(sorts)}) with {len(sorts)} "
                             f"argument(s) but used with {len(args)}", node,
                             "egglog rejects this too (arity mismatch); use it as declared")
        for i, (sort, arg) in enumerate(zip(sorts, args), 1):
            kind = type(arg).__name__
            if kind == "Var":
                continue                  # a pattern variable or a let name: egglog infers its sort
            want = LITERAL_SORTS.get(sort)
            if want is None:              # a tensor (or another datatype): anything but a literal
                if kind == "Lit":
                    raise self.error(ParseError, f"argument {i} of '{name}' must be a {sort} (declared "
                                     f"({name} {' '.join(sorts)})), got the literal {literal(arg)!r}", node)
                continue
            value = literal(arg) if kind == "Lit" else None
            if kind != "Lit" or not isinstance(value, want) or (want is int and isinstance(value, bool)):
                got = f"the literal {value!r}" if kind == "Lit" else "a term"
                raise self.error(ParseError, f"argument {i} of '{name}' must be a {sort} (declared "
                                 f"({name} {' '.join(sorts)})), got {got}", node,
                                 "egglog rejects this too (type mismatch); use it as declared")

    def undefined(self, var) -> VerifyError:
        later = re.search(rf"\(let\s+{re.escape(var.name)}\s", self.text)
        hint = None
        if later:
            at = self.text[: later.start()].count(chr(10)) + 1
            hint = f"'{var.name}' is bound later, at line {at}; lets must come before use"
        return self.error(ParseError, f"undefined name '{var.name}'", var,
                          hint or did_you_mean(var.name, self.bindings))

    # -- rules ------------------------------------------------------------------------------------------
    def nested(self, levels: int, node) -> None:
        """`levels` more operators below the term being read: refused beyond `MAX_NESTING`, before any engine
        recurses through them."""
        depth = self.level + levels
        self.deepest = max(self.deepest, depth)
        if depth > MAX_NESTING:
            raise self.error(ParseError, f"nesting too deep: more than {MAX_NESTING} levels of operators "
                             "(counting through let names)", node, NESTING_HINT)

    def expr(self, node) -> ir.Expr:
        if type(node).__name__ != "Call":
            return self.leaf(node)
        self.nested(1, node)
        self.level += 1
        try:
            return self.call(node)
        finally:
            self.level -= 1

    def leaf(self, node) -> ir.Expr:
        kind = type(node).__name__
        line = self.line_of(node)
        if kind == "Var":
            if self.rule_defs is not None and node.name in self.rule_defs:
                return self.resolve(node)
            if node.name in self.bindings:
                self.nested(self.depth_of.get(node.name, 0), node)
                if self.rule_vars is not None:   # a global in a rule stands for its term
                    return ir.inline(ir.Ref(node.name, line), self.bindings)
                return ir.Ref(node.name, line)
            if self.rule_vars is not None:
                self.rule_vars.add(node.name)
                return ir.Var(node.name, line)
            raise self.undefined(node)
        if kind == "Lit":
            raise self.error(ParseError, f"a literal ({literal(node)!r}) cannot stand for a tensor", node,
                             "use (Const 1.0) for a scalar constant")
        raise self.error(ParseError, f"unexpected {kind} in an expression", node)

    def call(self, node) -> ir.Expr:
        line = self.line_of(node)
        name, args = node.name, list(node.args)
        try:
            op = parse_operator(name)
        except NotationError as exc:
            raise exc.located(Location(self.file, line)) from None
        if self.declared is not None and name not in self.declared:
            raise self.error(ParseError, f"constructor '{name}' is not declared in this file's datatype", node,
                             did_you_mean(name, self.declared) or "declare it, or drop the datatype to use the prelude")
        expected = arity(op)
        declared = self.declared.get(name) if self.declared else None
        self.check_declared_use(node, name, args)
        if declared is not None and declared >= 0 and declared != len(args) and not isinstance(op, LeafOp):
            raise self.error(ParseError,
                             f"'{name}' is declared with {declared} argument(s) but used with {len(args)}", node)
        if expected is not None and len(args) != expected:
            raise self.error(ParseError, f"'{name}' takes {expected} argument(s), got {len(args)}", node)
        match op:
            case LeafOp(kind="CreateTensor"):
                return self.create_tensor(node, args, line)
            case LeafOp(kind="Const"):
                if len(args) != 1 or type(args[0]).__name__ != "Lit" or not isinstance(literal(args[0]), (int, float)):
                    raise self.error(ParseError, "Const takes one number, e.g. (Const -inf) or (Const 0.0)", node)
                return ir.Const(float(literal(args[0])), line)
            case MapOp(op=mop, space=space, reduce=reduce):
                mapped = ir.Map(mop, space, tuple(self.expr(a) for a in args), line)
                return ir.Reduce(reduce.op, reduce.rank, mapped, line) if reduce else mapped
            case ReduceOp(op=rop, rank=rank):
                return ir.Reduce(rop, rank, self.expr(args[0]), line)
            case SplitOp(rank=rank, outer=outer, inner=inner):
                return ir.Split(rank, outer, inner, self.tile_arg(node, args), self.expr(args[0]), line)
            case UnsplitOp(outer=outer, inner=inner, rank=rank):
                return ir.Unsplit(outer, inner, rank, self.expr(args[0]), line)
            case ScanOp(kind="scan", rank=rank):
                state = self.string_arg(node, args[0], "the state name")
                return ir.Scan(rank, state, self.expr(args[1]), self.expr(args[2]), line)
            case ScanOp(kind="prev", rank=rank):
                return ir.Prev(rank, self.string_arg(node, args[0], "the state name"), line)
            case ScanOp(kind="shift", rank=rank):
                return ir.Shift(rank, self.expr(args[0]), self.expr(args[1]), line)
            case ScanOp(kind="last", rank=rank):
                return ir.Last(rank, self.expr(args[0]), line)
        raise AssertionError(op)

    def resolve(self, var) -> ir.Expr:
        """A variable defined by a fact or a let of the rule being read: its term (facts substituted)."""
        name = var.name
        assert self.resolving is not None and self.rule_defs is not None, "resolve is called inside a rule"
        if name in self.resolving:
            found = self.resolving[name]
            if found is None:
                raise self.error(ParseError, f"unsupported rule: '{name}' is defined in terms of itself (a cyclic "
                                 "fact), a precondition the checker cannot state", var)
            return found
        self.resolving[name] = None
        value = self.expr(self.rule_defs[name])
        self.resolving[name] = value
        return value

    def string_arg(self, node, arg, what: str) -> str:
        if type(arg).__name__ != "Lit" or not isinstance(literal(arg), str):
            raise self.error(ParseError, f"'{node.name}' expects a string for {what}", node)
        return literal(arg)

    def tile_arg(self, node, args) -> int | str | None:
        if len(args) == 1:
            return None
        arg = args[1]
        if type(arg).__name__ == "Lit" and isinstance(literal(arg), int) and not isinstance(literal(arg), bool):
            if literal(arg) < 1:
                raise self.error(ParseError, f"tile count must be at least 1, got {literal(arg)}", node)
            return literal(arg)
        if type(arg).__name__ == "Var" and self.rule_vars is not None:
            return arg.name
        raise self.error(ParseError, f"the second argument of '{node.name}' must be an integer tile count", node)

    def create_tensor(self, node, args, line) -> ir.Input:
        """`(CreateTensor "Q")`, name first `(CreateTensor "Q" 64 1024)` or sizes first as the seed declares
        `(CreateTensor i64 i64 String)`: `(CreateTensor 64 1024 "Q")`. The sizes are those of the tensor's ranks
        in order (Q[e,p]: E then P); they are only for running a program, the checker sweeps sizes anyway."""
        names = [i for i, a in enumerate(args) if type(a).__name__ == "Lit" and isinstance(literal(a), str)]
        if len(names) != 1 or names[0] not in (0, len(args) - 1):
            raise self.error(ParseError, 'CreateTensor needs one name string, first or last, e.g. (CreateTensor "Q") '
                             'or (CreateTensor 64 1024 "Q")', node)
        text, pred_text = split_predicate(literal(args[names[0]]))
        try:
            spec, kind = parse_tensor_kind(text)
            name, ranks = parse_tensor_name(spec)
        except NotationError as exc:
            raise exc.located(Location(self.file, line)) from None
        pred = None if pred_text is None else self.predicate(name, ranks, pred_text, node, line, kind == "index")
        if kind == "index" and pred is None:
            raise self.error(ParseError, f"index tensor '{name}' needs its value: e.g. \"{name}[m,p]:index(m - p)\"",
                             node)
        sizes = args[:names[0]] + args[names[0] + 1:]
        if self.rule_vars is not None:       # in a rule, a size may be a pattern variable: any size matches
            sizes = [a for a in sizes if type(a).__name__ != "Var"]
        if any(type(a).__name__ != "Lit" or not isinstance(literal(a), int) or isinstance(literal(a), bool)
               for a in sizes):
            raise self.error(ParseError, "CreateTensor sizes must be integers", node)
        if any(literal(a) < 1 for a in sizes):
            raise self.error(ParseError, "CreateTensor sizes must be at least 1", node,
                             "a tensor has at least one element along each rank")
        # A datatype that fixes the number of sizes (the seed's `(CreateTensor i64 i64 String)`) decides it for
        # every tensor; only without one must the sizes number the ranks.
        if sizes and len(sizes) != len(ranks) and "CreateTensor" not in self.sorts and not self.any_sizes:
            raise self.error(ShapeError, f"CreateTensor '{name}' has ranks ({', '.join(ranks)}) "
                             f"but {len(sizes)} size(s)", node)
        for rank, size in zip(ranks, (literal(a) for a in sizes)):
            # concrete sizes (for running the program) must agree per rank; the checker sweeps sizes anyway
            if rank in self.sizes and self.sizes[rank][0] != size:
                raise self.error(ShapeError, f"rank {rank} has size {size} here but {self.sizes[rank][0]} at line "
                                 f"{self.sizes[rank][1]}", node, "one program gives each rank one size")
            self.sizes.setdefault(rank, (size, line))
        return ir.Input(name, ranks, line, kind, pred)

    def predicate(self, name: str, ranks: tuple[str, ...], text: str, node, line,
                  value: bool = False) -> predicates.Predicate:
        """`:mask(PRED)`: PRED over the mask's indices and sizes and the file's `; param:` declarations."""
        if self.params is None:
            try:
                self.params = {n: p for n, (p, _) in predicates.parse_params(self.lines).items()}
            except predicates.ParamLineError as exc:
                raise ParseError(exc.cause, Location(self.file, exc.line),
                                 "write '; param: W >= 1' or '; param: W in 1..8'") from None
        try:
            return predicates.parse(text, ranks, self.params, value)
        except predicates.PredicateError as exc:
            where = f", column {exc.column}" if exc.column else ""
            raise self.error(ParseError, f"mask '{name}': predicate '{text}'{where}: {exc.cause}", node,
                             "PRED is linear integer arithmetic over the mask's indices, sizes, integers and "
                             "declared parameters, with < <= == != >= > and or not ( ); see README 'Predicate "
                             "masks'") from None
