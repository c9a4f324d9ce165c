"""Reading a file: commands in order, `let` bindings into a program, terms into the IR (rules: `rules.py`)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from .. import ir
from ..errors import Location, NotationError, ParseError, ShapeError, UsageError, VerifyError, did_you_mean
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
from .rules import RuleReading
from .source import (
    ASSUME_RE,
    EXPECT_RE,
    FOR_RANKS_ANY_RE,
    FOR_RANKS_RE,
    IGNORED_COMMANDS,
    IGNORED_USER_COMMANDS,
    LITERAL_SORTS,
    SHAPES_RE,
    SourceFile,
    egglog_parse,
    source_text,
)
from .syntax import arity, fact_target, inline, literal


def read_file(path: str | Path) -> SourceFile:
    path = Path(path)
    if not path.exists():
        raise UsageError(f"no such file: {path}")
    if path.is_dir():
        raise UsageError(f"{path} is a directory; `check` takes directories, `equiv` takes two files")
    return read_text(source_text(path), str(path))



def read_text(text: str, file: str = "<text>", any_sizes: bool = False) -> SourceFile:
    """`any_sizes`: CreateTensor sizes need not number the ranks (terms egglog extracted under a file's own
    datatype, which fixes how many sizes every input has)."""
    reader = Reader(text, file)
    reader.any_sizes = any_sizes
    return reader.read()



class Reader(RuleReading):
    def __init__(self, text: str, file: str):
        self.text = text
        self.file = file
        self.raw = text.encode("utf-8")
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

    # -- positions --------------------------------------------------------------------------------------
    def line_of(self, node) -> int | None:
        span = getattr(node, "span", None)
        start = getattr(span, "i", None)
        if start is None:
            return None
        return self.raw[:start].count(b"\n") + 1

    def error(self, cls, cause: str, node=None, hint: str | None = None, line: int | None = None) -> VerifyError:
        return cls(cause, Location(self.file, line if line is not None else self.line_of(node)), hint)

    # -- commands ---------------------------------------------------------------------------------------
    def read(self) -> SourceFile:
        if not self.text.strip():
            raise self.error(ParseError, "empty file: no program, no rules", line=1)
        commands = egglog_parse(self.text, self.file)
        has_rules = any(type(c).__name__ in ("RewriteCommand", "BiRewriteCommand", "RuleCommand") for c in commands)
        for command in commands:
            if type(command).__name__ in ("Datatype", "Datatypes", "Constructor"):
                self.command(command)     # declarations first: egglog checks every use against them
        for command in commands:
            if type(command).__name__ in ("Datatype", "Datatypes", "Constructor"):
                continue
            kind = type(command).__name__
            if kind in ("RewriteCommand", "BiRewriteCommand", "RuleCommand"):
                try:                      # per-rule isolation: a bad rule is its own error
                    self.command(command)
                except VerifyError as exc:
                    inner = getattr(command, "rewrite", None) or getattr(command, "rule", None)
                    name = getattr(inner, "name", "") or self.rule_name(self.line_of(inner))[0]
                    if not exc.cause.startswith("rule '"):
                        exc.cause = f"rule '{name}': {exc.cause}"
                    self.rule_errors.append(exc)
                continue
            program_part = kind == "ActionCommand" or kind == "UserDefined" and command.name == "extract"
            if program_part and has_rules:
                try:                      # a rule file's example program must not hide its rules' verdicts
                    self.command(command)
                except VerifyError as exc:
                    if not self.program_broken:
                        self.rule_errors.append(exc)
                    self.program_broken = True
                continue
            self.command(command)
        if self.analysis_rules:
            self.notices.append((None, f"{self.analysis_rules} rule(s) only set facts of the file's own functions "
                                       "(an analysis); no equality claimed"))
        if not self.bindings and not self.rules and not self.rule_errors and not self.notices:
            raise self.error(ParseError, "the file has neither `let` bindings nor rules", line=1)
        program = ir.Program(self.file, dict(self.bindings), list(self.outputs), dict(self.sizes))
        assumptions = [(m.group(1), i) for i, line in enumerate(self.lines, 1) if (m := ASSUME_RE.match(line))]
        self.instantiate_templates()
        strict = any((m := SHAPES_RE.match(line)) and m.group(1).lower() == "strict" for line in self.lines)
        return SourceFile(self.file, self.text, program, self.rules, self.expectation(), self.declared, assumptions,
                          self.rule_errors, self.notices, strict)

    def instantiate_templates(self) -> None:
        """`; for-ranks: x in m, p, e`: each rule is a template over the rank letter x (and x0, x1, ...), and
        stands for one rule per listed rank, named `NAME[x=m]`. The same rule text then serves every rank."""
        for i, line in enumerate(self.lines, 1):
            m = FOR_RANKS_RE.match(line)
            if not m:
                if FOR_RANKS_ANY_RE.match(line):
                    raise self.error(ParseError, f"malformed directive `{line.strip()}`", line=i,
                                     hint="write `; for-ranks: x in m, p, e`: a template rank letter, then the "
                                          "rank letters it stands for")
                continue
            letter = m.group(1)
            targets = [t.strip() for t in m.group(2).split(",")]
            instances = []
            for rule in self.rules:
                used = set(ir.rank_names((rule.lhs, rule.rhs)))
                for target in targets:
                    mapping = {r: target + r[1:] for r in used if r[0] == letter}
                    clash = {v for v in mapping.values()} & (used - set(mapping))
                    if clash:
                        raise self.error(ParseError, f"template rank '{letter}' -> '{target}' clashes with rank(s) "
                                         f"{', '.join(sorted(clash))} already in rule '{rule.name}'", line=i)
                    instances.append(replace(rule, name=f"{rule.name}[{letter}={target}]",
                                             lhs=ir.rename_ranks(rule.lhs, mapping),
                                             rhs=ir.rename_ranks(rule.rhs, mapping)))
            self.rules = instances
            return

    def expectation(self) -> str | None:
        for line in self.lines[:10]:
            m = EXPECT_RE.match(line)
            if m:
                return m.group(1).lower()
        return None

    def command(self, command) -> None:
        kind = type(command).__name__
        if kind == "Datatype":
            self.declare(command.variants)
        elif kind == "Datatypes":
            for entry in command.datatypes:
                variants = entry[2] if isinstance(entry, tuple) and len(entry) > 2 else getattr(entry, "variants", [])
                self.declare(getattr(variants, "variants", variants) if not isinstance(variants, list) else variants)
        elif kind == "Constructor":
            inputs = tuple(command.schema.input) if hasattr(command, "schema") else None
            self.declare_one(command.name, len(inputs) if inputs is not None else None, inputs)
        elif kind in ("Function", "FunctionCommand", "Relation"):
            self.functions.add(getattr(command, "name", ""))
        elif kind == "ActionCommand":
            self.action(command.action)
        elif kind == "RewriteCommand":
            self.rewrite(command.rewrite, bidirectional=False)
        elif kind == "BiRewriteCommand":
            self.rewrite(command.rewrite, bidirectional=True)
        elif kind == "RuleCommand":
            self.rule(command.rule)
        elif kind == "UserDefined" and command.name == "extract":
            self.extract(command)
        elif kind == "UserDefined" and command.name in IGNORED_USER_COMMANDS:
            pass
        elif kind in IGNORED_COMMANDS:
            pass
        elif kind == "Include":
            raise self.error(ParseError, "`include` is not supported; list every file on the command line", command)
        else:
            raise self.error(ParseError, f"unsupported command ({kind})", command,
                             "the checker reads let, extract, rewrite, birewrite, rule and datatype")

    def declare(self, variants) -> None:
        for variant in variants:
            self.declare_one(variant.name, len(variant.types), tuple(variant.types))

    def declare_one(self, name: str, arity: int | None, sorts: tuple[str, ...] | None = None) -> None:
        if self.declared is None:
            self.declared = {}
        self.declared[name] = arity if arity is not None else -1
        if sorts is not None:
            self.sorts[name] = sorts

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

    def action(self, action) -> None:
        kind = type(action).__name__
        if kind in ("Set", "Expr_") and fact_target(action) in self.functions:
            return                            # a fact about a function of the file's own (a cost, an analysis)
        if kind == "Union":   # a top-level union asserts an equality: it is checked as a claim, like a rule
            line = self.line_of(action)
            name, description = self.rule_name(line)
            self.rule_vars = set()
            try:
                left, right = self.expr(action.lhs), self.expr(action.rhs)
                free = sorted(self.rule_vars)
            finally:
                self.rule_vars = None
            if free:
                raise self.error(ParseError, f"unbound name '{free[0]}' in the union", action,
                                 "egglog rejects it too: bind it with a let above the union")
            self.rules.append(ir.Rule(name, left, right, self.file, line, description, False))
            return
        if kind != "Let":
            raise self.error(ParseError, f"unsupported top-level action ({kind.lower()})", action,
                             "a program is made of (let NAME expr) and (extract NAME)")
        name = action.lhs
        line = self.line_of(action)
        if name in self.bindings:
            first = self.bindings[name].line
            raise self.error(ParseError, f"'{name}' is bound twice (first at line {first})", line=line)
        expr = self.expr(action.rhs)
        self.bindings[name] = ir.Binding(name, expr, line)

    def extract(self, command) -> None:
        if not command.args:
            raise self.error(ParseError, "extract needs an expression", command)
        target = command.args[0]
        line = self.line_of(command)
        if type(target).__name__ == "Var":
            if target.name not in self.bindings:
                raise self.undefined(target)
            self.outputs.append((target.name, line))
            return
        name = f"_extract{len(self.outputs) + 1}"
        self.bindings[name] = ir.Binding(name, self.expr(target), line)
        self.outputs.append((name, line))

    def undefined(self, var) -> VerifyError:
        later = re.search(rf"\(let\s+{re.escape(var.name)}\s", self.text)
        hint = None
        if later:
            at = self.text[: later.start()].count(chr(10)) + 1
            hint = f"'{var.name}' is bound later, at line {at}; lets must come before use"
        return self.error(ParseError, f"undefined name '{var.name}'", var,
                          hint or did_you_mean(var.name, self.bindings))

    # -- rules ------------------------------------------------------------------------------------------
    def expr(self, node) -> ir.Expr:
        kind = type(node).__name__
        line = self.line_of(node)
        if kind == "Var":
            if self.rule_defs is not None and node.name in self.rule_defs:
                return self.resolve(node)
            if node.name in self.bindings:
                if self.rule_vars is not None:   # a global in a rule stands for its term
                    return inline(self.bindings, ir.Ref(node.name, line))
                return ir.Ref(node.name, line)
            if self.rule_vars is not None:
                self.rule_vars.add(node.name)
                return ir.Var(node.name, line)
            raise self.undefined(node)
        if kind == "Lit":
            raise self.error(ParseError, f"a literal ({literal(node)!r}) cannot stand for a tensor", node,
                             "use (Const 1.0) for a scalar constant")
        if kind != "Call":
            raise self.error(ParseError, f"unexpected {kind} in an expression", node)
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
        if name in self.resolving:
            if self.resolving[name] is None:
                raise self.error(ParseError, f"unsupported rule: '{name}' is defined in terms of itself (a cyclic "
                                 "fact), a precondition the checker cannot state", var)
            return self.resolving[name]
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
        try:
            spec, kind = parse_tensor_kind(literal(args[names[0]]))
            name, ranks = parse_tensor_name(spec)
        except NotationError as exc:
            raise exc.located(Location(self.file, line)) from None
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
        return ir.Input(name, ranks, line, kind)
