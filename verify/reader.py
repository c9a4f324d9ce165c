"""Front end: `.egg` text -> programs and rules in the IR, keeping file and line.

egglog's own parser (the Python bindings) reads the text, so what we accept is what egglog accepts; this module
only walks egglog's command objects. Names follow `notation.py`.

What a file may contain:
- `(datatype Tensor ...)` / `(constructor ...)`: optional. If a file declares constructors, every operator it
  uses must be declared there with the right arity (as egglog itself would demand); otherwise the shared prelude
  (generated from the operator names, see `egglog_bridge.prelude`) is assumed.
- `(let NAME expr)` and `(extract NAME)`: a program; the extracted names are its outputs.
- `(rewrite lhs rhs)`, `(birewrite lhs rhs)`, `(rule ((= v lhs)) ((union v rhs)))`: rules. Identifiers that
  are not `let` names are pattern variables.
- Scheduling commands (`run`, `run-schedule`, `ruleset`, `check`, `push`, `pop`, ...) are accepted and ignored.
- Comments: `; expect: certified|refuted` in the first lines states a file's expected verdict (test corpus);
  `; NAME: text` directly above a rule names it; otherwise a rule is called `<file stem>:<line>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import ir
from .errors import Location, NotationError, ParseError, ShapeError, UsageError, VerifyError, did_you_mean
from .notation import (LeafOp, MapOp, ReduceOp, ScanOp, SplitOp, UnsplitOp, parse_operator, parse_tensor_kind,
                       parse_tensor_name)

IGNORED_COMMANDS = {
    "RunSchedule", "AddRuleset", "UnstableCombinedRuleset", "Check", "Push", "Pop", "PrintFunction",
    "PrintSize", "PrintOverallStatistics", "Fail", "Sort", "Relation", "Function",
}
IGNORED_USER_COMMANDS = {"run", "run-schedule", "print-stats"}
RULE_NAME_RE = re.compile(r"^\s*;+\s*([A-Za-z][\w.\-]*)\s*:\s*(.*)$")
EXPECT_RE = re.compile(r"^\s*;+\s*expect\s*:\s*([a-z]+)", re.I)
FOR_RANKS_RE = re.compile(r"^\s*;+\s*for-ranks\s*:\s*([a-z])\s+in\s+([a-z](?:\s*,\s*[a-z])*)\s*$", re.I)
ASSUME_RE = re.compile(r"^\s*;+\s*assume\s*:\s*(.+?)\s*$", re.I)


@dataclass
class SourceFile:
    path: str
    text: str
    program: ir.Program
    rules: list[ir.Rule] = field(default_factory=list)
    expect: str | None = None
    declared: dict[str, int] | None = None  # constructor -> arity, when the file declares its own
    assumptions: list[tuple[str, int]] = field(default_factory=list)  # `; assume: B unmasked along m`, line


def read_file(path: str | Path) -> SourceFile:
    path = Path(path)
    if not path.exists():
        raise UsageError(f"no such file: {path}")
    if path.is_dir():
        raise UsageError(f"{path} is a directory; `check` takes directories, `equiv` takes two files")
    return read_text(source_text(path), str(path))


def source_text(path: Path) -> str:
    """The text of an .egg file; a binary or non-UTF-8 file is a located error."""
    data = Path(path).read_bytes()
    if b"\x00" in data:
        raise ParseError("binary file, not egglog text", Location(str(path), 1))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ParseError(f"not UTF-8 text ({exc.reason})", Location(str(path), line)) from None


def read_text(text: str, file: str = "<text>") -> SourceFile:
    return _Reader(text, file).read()


def _egglog_parse(text: str, file: str):
    from egglog.bindings import EGraph, EggSmolError

    try:
        return EGraph().parse_program(text, filename=file)
    except EggSmolError as exc:
        message = str(exc)
        m = re.match(r"In (\d+):\d+", message)
        line = int(m.group(1)) if m else None
        cause = message.splitlines()[-1] if message.strip() else "egglog could not parse the file"
        raise ParseError(cause.removeprefix("parse error: "), Location(file, line)) from None


class _Reader:
    def __init__(self, text: str, file: str):
        self.text = text
        self.file = file
        self.raw = text.encode("utf-8")
        self.lines = text.splitlines()
        self.bindings: dict[str, ir.Binding] = {}
        self.outputs: list[tuple[str, int | None]] = []
        self.rules: list[ir.Rule] = []
        self.declared: dict[str, int] | None = None
        self.rule_vars: set[str] | None = None  # set while converting a rule
        self.sizes: dict[str, tuple[int, int | None]] = {}   # rank -> (concrete CreateTensor size, line)

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
        for command in _egglog_parse(self.text, self.file):
            self.command(command)
        if not self.bindings and not self.rules:
            raise self.error(ParseError, "the file has neither `let` bindings nor rules", line=1)
        program = ir.Program(self.file, dict(self.bindings), list(self.outputs), dict(self.sizes))
        assumptions = [(m.group(1), i) for i, line in enumerate(self.lines, 1) if (m := ASSUME_RE.match(line))]
        self.instantiate_templates()
        return SourceFile(self.file, self.text, program, self.rules, self.expectation(), self.declared, assumptions)

    def instantiate_templates(self) -> None:
        """`; for-ranks: x in m, p, e`: each rule is a template over the rank letter x (and x0, x1, ...), and
        stands for one rule per listed rank, named `NAME[x=m]`. The same rule text then serves every rank."""
        for i, line in enumerate(self.lines, 1):
            m = FOR_RANKS_RE.match(line)
            if not m:
                continue
            letter = m.group(1)
            targets = [t.strip() for t in m.group(2).split(",")]
            instances = []
            for rule in self.rules:
                used = _ranks_in(rule.lhs) | _ranks_in(rule.rhs)
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
            self.declare_one(command.name, len(command.schema.input) if hasattr(command, "schema") else None)
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
            self.declare_one(variant.name, len(variant.types))

    def declare_one(self, name: str, arity: int | None) -> None:
        if self.declared is None:
            self.declared = {}
        self.declared[name] = arity if arity is not None else -1

    def action(self, action) -> None:
        kind = type(action).__name__
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
            hint = f"'{var.name}' is bound later, at line {self.text[: later.start()].count(chr(10)) + 1}; lets must come before use"
        return self.error(ParseError, f"undefined name '{var.name}'", var,
                          hint or did_you_mean(var.name, self.bindings))

    # -- rules ------------------------------------------------------------------------------------------
    def rule_name(self, line: int | None) -> tuple[str, str]:
        stem = Path(self.file).stem
        if line is None:
            return f"{stem}:{len(self.rules) + 1}", ""
        above = line - 2
        while above >= 0 and not self.lines[above].strip():
            above -= 1
        block = []  # the comment block directly above the rule, top line first (directives left out)
        while above >= 0 and self.lines[above].lstrip().startswith(";"):
            if not (EXPECT_RE.match(self.lines[above]) or ASSUME_RE.match(self.lines[above])
                    or FOR_RANKS_RE.match(self.lines[above])):
                block.insert(0, self.lines[above])
            above -= 1
        for i, text in enumerate(block):
            m = RULE_NAME_RE.match(text)
            if m and m.group(1).lower() not in ("expect", "assume"):
                rest = " ".join(t.lstrip("; ").strip() for t in block[i + 1:])
                return m.group(1), f"{m.group(2).strip()} {rest}".strip()
        if block:
            return f"{stem}:{line}", " ".join(t.lstrip("; ").strip() for t in block)
        return f"{stem}:{line}", ""

    def rewrite(self, rewrite, bidirectional: bool) -> None:
        if rewrite.conditions:
            raise self.error(ParseError, "conditional rewrites (:when) are not supported yet", rewrite,
                             "state the rule without conditions, or split it into unconditional rules")
        self.add_rule(rewrite.lhs, rewrite.rhs, self.line_of(rewrite), bidirectional)

    def rule(self, rule) -> None:
        line = self.line_of(rule)
        body, head = list(rule.body), list(rule.head)
        shape_ok = (
            len(body) == 1 and type(body[0]).__name__ == "Eq" and len(head) == 1
            and type(head[0]).__name__ == "Union"
        )
        if shape_ok:
            eq, union = body[0], head[0]
            left, right = eq.left, eq.right
            if type(left).__name__ != "Var" and type(right).__name__ == "Var":
                left, right = right, left
            if type(left).__name__ == "Var" and {type(union.lhs).__name__, type(union.rhs).__name__} & {"Var"}:
                other = union.rhs if getattr(union.lhs, "name", None) == left.name else union.lhs
                if getattr(union.lhs, "name", None) == left.name or getattr(union.rhs, "name", None) == left.name:
                    self.add_rule(right, other, line, False, explicit_name=rule.name or None)
                    return
        raise self.error(ParseError, "unsupported rule shape", rule,
                         "the checker reads (rule ((= v LHS)) ((union v RHS))); write other rules as rewrites")

    def add_rule(self, lhs, rhs, line, bidirectional: bool, explicit_name: str | None = None) -> None:
        name, description = self.rule_name(line)
        if explicit_name:
            name = explicit_name
        self.rule_vars = set()
        try:
            left = self.expr(lhs)
            right = self.expr(rhs)
            unbound = _vars(right) - _vars(left)
            if unbound:
                raise self.error(ParseError, f"the right-hand side uses pattern variable(s) "
                                 f"{', '.join(sorted(unbound))} that the left-hand side does not bind", rhs)
        finally:
            self.rule_vars = None
        self.rules.append(ir.Rule(name, left, right, self.file, line, description, bidirectional))

    # -- expressions ------------------------------------------------------------------------------------
    def expr(self, node) -> ir.Expr:
        kind = type(node).__name__
        line = self.line_of(node)
        if kind == "Var":
            if node.name in self.bindings and self.rule_vars is not None:
                raise self.error(ParseError, f"a rule mentions '{node.name}', a let name of this file", node,
                                 "a rule holds for all tensors: use a pattern variable (a name that is not a let "
                                 "name), or put the rule in a file without the program")
            if node.name in self.bindings:
                return ir.Ref(node.name, line)
            if self.rule_vars is not None:
                self.rule_vars.add(node.name)
                return ir.Var(node.name, line)
            raise self.undefined(node)
        if kind == "Lit":
            raise self.error(ParseError, f"a literal ({_lit(node)!r}) cannot stand for a tensor", node,
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
        expected = _arity(op)
        declared = self.declared.get(name) if self.declared else None
        if declared is not None and declared >= 0 and declared != len(args) and not isinstance(op, LeafOp):
            raise self.error(ParseError, f"'{name}' is declared with {declared} argument(s) but used with {len(args)}", node)
        if expected is not None and len(args) != expected:
            raise self.error(ParseError, f"'{name}' takes {expected} argument(s), got {len(args)}", node)
        match op:
            case LeafOp(kind="CreateTensor"):
                return self.create_tensor(node, args, line)
            case LeafOp(kind="Const"):
                if len(args) != 1 or type(args[0]).__name__ != "Lit" or not isinstance(_lit(args[0]), (int, float)):
                    raise self.error(ParseError, "Const takes one number, e.g. (Const -inf) or (Const 0.0)", node)
                return ir.Const(float(_lit(args[0])), line)
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

    def string_arg(self, node, arg, what: str) -> str:
        if type(arg).__name__ != "Lit" or not isinstance(_lit(arg), str):
            raise self.error(ParseError, f"'{node.name}' expects a string for {what}", node)
        return _lit(arg)

    def tile_arg(self, node, args) -> int | str | None:
        if len(args) == 1:
            return None
        arg = args[1]
        if type(arg).__name__ == "Lit" and isinstance(_lit(arg), int) and not isinstance(_lit(arg), bool):
            if _lit(arg) < 1:
                raise self.error(ParseError, f"tile count must be at least 1, got {_lit(arg)}", node)
            return _lit(arg)
        if type(arg).__name__ == "Var" and self.rule_vars is not None:
            return arg.name
        raise self.error(ParseError, f"the second argument of '{node.name}' must be an integer tile count", node)

    def create_tensor(self, node, args, line) -> ir.Input:
        if not args or type(args[0]).__name__ != "Lit" or not isinstance(_lit(args[0]), str):
            raise self.error(ParseError, 'CreateTensor needs a name string first, e.g. (CreateTensor "Q")', node)
        try:
            spec, kind = parse_tensor_kind(_lit(args[0]))
            name, ranks = parse_tensor_name(spec)
        except NotationError as exc:
            raise exc.located(Location(self.file, line)) from None
        sizes = args[1:]
        if any(type(a).__name__ != "Lit" or not isinstance(_lit(a), int) for a in sizes):
            raise self.error(ParseError, "CreateTensor sizes must be integers", node)
        if sizes and len(sizes) != len(ranks):
            raise self.error(ShapeError, f"CreateTensor '{name}' has ranks ({', '.join(ranks)}) "
                             f"but {len(sizes)} size(s)", node)
        for rank, size in zip(ranks, (_lit(a) for a in sizes)):
            # concrete sizes (for running the program) must agree per rank; the checker sweeps sizes anyway
            if rank in self.sizes and self.sizes[rank][0] != size:
                raise self.error(ShapeError, f"rank {rank} has size {size} here but {self.sizes[rank][0]} at line "
                                 f"{self.sizes[rank][1]}", node, "one program gives each rank one size")
            self.sizes.setdefault(rank, (size, line))
        return ir.Input(name, ranks, line, kind)


def _arity(op) -> int | None:
    match op:
        case MapOp():
            return op.arity
        case ReduceOp() | UnsplitOp():
            return 1
        case SplitOp():
            return None  # 1 or 2 (the tile count is optional)
        case ScanOp(kind=kind):
            from .notation import SCAN_ARITY

            return SCAN_ARITY[kind]
    return None


def _lit(node):
    return node.value.value


def _ranks_in(expr: ir.Expr) -> set[str]:
    out: set[str] = set()
    for node in ir.walk(expr):
        match node:
            case ir.Input(ranks=ranks) | ir.Map(space=ranks):
                out.update(ranks)
            case ir.Reduce(rank=r) | ir.Scan(rank=r) | ir.Prev(rank=r) | ir.Shift(rank=r) | ir.Last(rank=r):
                out.add(r)
            case ir.Split(rank=r, outer=o, inner=i) | ir.Unsplit(rank=r, outer=o, inner=i):
                out.update((r, o, i))
    return out


def _vars(expr: ir.Expr) -> set[str]:
    return {n.name for n in ir.walk(expr) if isinstance(n, ir.Var)}



def expand_paths(paths) -> list[Path]:
    """Files named on the command line: `.egg` files, and every `.egg` file below each directory."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for pattern in ("*.egg", "*.chain.toml") for p in path.rglob(pattern)
                           if "certificates" not in p.parts)
            if not found:
                raise UsageError(f"{path} contains no .egg files")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise UsageError(f"no such file or directory: {path}")
    return files
