"""Front end: `.egg` text -> programs and rules in the IR, keeping file and line.

egglog's own parser (the Python bindings) reads the text, so what we accept is what egglog accepts; this module
only walks egglog's command objects. Names follow `notation.py`.

What a file may contain:
- `(datatype Tensor ...)` / `(constructor ...)`: optional. If a file declares constructors, every operator it
  uses must be declared there and used as declared (argument count and literal sorts, as egglog itself would
  demand: the seed's `(CreateTensor i64 i64 String)` means `(CreateTensor 64 1024 "Q")`); otherwise the shared
  prelude (generated from the operator names, see `egglog_bridge.prelude`) is assumed.
- `(let NAME expr)` and `(extract NAME)`: a program; the extracted names are its outputs.
- `(rewrite lhs rhs)`, `(birewrite lhs rhs)`, `(rule (FACTS) (ACTIONS))`: rules. Identifiers that are not
  `let` names are pattern variables (a global in a rule stands for its term). A `rule` ending in `(union a B)`
  claims a = B with every fact `(= v term)` substituted; naming rules and rules that only add terms or facts
  are notices (nothing to prove). A rule that cannot be read is its own located error (`rule_errors`).
- Scheduling commands (`run`, `run-schedule`, `ruleset`, `check`, `push`, `pop`, ...), function and relation
  declarations and facts about them are accepted and ignored.
- Comments: `; expect: certified|refuted` in the first lines states a file's expected verdict (test corpus);
  `; NAME: text` directly above a rule names it; otherwise a rule is called `<file stem>:<line>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import ir
from .errors import Location, NotationError, ParseError, ShapeError, UsageError, VerifyError, did_you_mean
from .notation import (
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

IGNORED_COMMANDS = {
    "RunSchedule", "AddRuleset", "UnstableCombinedRuleset", "Check", "Push", "Pop", "PrintFunction",
    "PrintSize", "PrintOverallStatistics", "Fail", "Sort", "Relation", "Function", "FunctionCommand",
    "PrintAllFunctionsSize",
}
IGNORED_USER_COMMANDS = {"run", "run-schedule", "print-stats"}
RULE_NAME_RE = re.compile(r"^\s*;+\s*([A-Za-z][\w.\-]*(?: \d+)?)\s*:\s*(.*)$")  # `; split-max: ...`, `; Rule 5: ...`
EXPECT_RE = re.compile(r"^\s*;+\s*expect(-error)?\s*:\s*([a-z]+)", re.I)  # -error: a refusal (tests/test_corpus.py)
FOR_RANKS_RE = re.compile(r"^\s*;+\s*for-ranks\s*:\s*([a-z])\s+in\s+([a-z](?:\s*,\s*[a-z])*)\s*$", re.I)
# any attempt at the directive, to refuse malformed ones
FOR_RANKS_ANY_RE = re.compile(r"^\s*;+\s*for-ranks\s*:", re.I)
ASSUME_RE = re.compile(r"^\s*;+\s*assume\s*:\s*(.+?)\s*$", re.I)
SHAPES_RE = re.compile(r"^\s*;+\s*shapes\s*:\s*(strict|implicit)\s*$", re.I)
# Sorts of a declared constructor's arguments that are literals, not tensors (egglog's own check).
LITERAL_SORTS = {"i64": int, "String": str, "f64": float, "bool": bool}


@dataclass
class SourceFile:
    path: str
    text: str
    program: ir.Program
    rules: list[ir.Rule] = field(default_factory=list)
    expect: str | None = None
    declared: dict[str, int] | None = None  # constructor -> arity, when the file declares its own
    assumptions: list[tuple[str, int]] = field(default_factory=list)  # `; assume: B unmasked along m`, line
    # Per-rule isolation: a rule (or top-level let) that cannot be read is its own located error here, and the
    # file's other rules are still read. `notices`: rules with nothing to prove (line, what the rule does).
    rule_errors: list[VerifyError] = field(default_factory=list)
    notices: list[tuple[int | None, str]] = field(default_factory=list)
    strict_shapes: bool = False             # `; shapes: strict`: no implicit tiling for this file's rules


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


def read_text(text: str, file: str = "<text>", any_sizes: bool = False) -> SourceFile:
    """`any_sizes`: CreateTensor sizes need not number the ranks (terms egglog extracted under a file's own
    datatype, which fixes how many sizes every input has)."""
    reader = _Reader(text, file)
    reader.any_sizes = any_sizes
    return reader.read()


def _egglog_parse(text: str, file: str):
    from egglog.bindings import EggSmolError, EGraph

    try:
        return EGraph().parse_program(text, filename=file)
    except EggSmolError as exc:
        message = str(exc)
        m = re.match(r"In (\d+):\d+", message)
        line = int(m.group(1)) if m else None
        cause = message.splitlines()[-1] if message.strip() else "egglog could not parse the file"
        raise ParseError(cause.removeprefix("parse error: "), Location(file, line)) from None
    except BaseException as exc:  # a Rust panic (PanicException) is not an Exception
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise ParseError(f"egglog's parser failed on this file ({type(exc).__name__}: {exc})", Location(file)) from None


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
        commands = _egglog_parse(self.text, self.file)
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
            if m and not m.group(1):
                return m.group(2).lower()
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
                                     f"({name} {' '.join(sorts)})), got the literal {_lit(arg)!r}", node)
                continue
            value = _lit(arg) if kind == "Lit" else None
            if kind != "Lit" or not isinstance(value, want) or (want is int and isinstance(value, bool)):
                got = f"the literal {value!r}" if kind == "Lit" else "a term"
                raise self.error(ParseError, f"argument {i} of '{name}' must be a {sort} (declared "
                                 f"({name} {' '.join(sorts)})), got {got}", node,
                                 "egglog rejects this too (type mismatch); use it as declared")

    def action(self, action) -> None:
        kind = type(action).__name__
        if kind in ("Set", "Expr_") and _fact_target(action) in self.functions:
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
        if rewrite.conditions and not self.analysis_guards(rewrite.conditions):
            cause = ("a `:when` guard is accepted only when it restates the checker's own assumptions (the "
                     "`ranks`/`finite` analyses of `verify export`, declared in the file); ")
            declares_both = {"ranks", "finite"} <= self.functions
            cause += ("this file does not declare both `ranks` and `finite`" if not declares_both
                      else "this guard is a precondition the checker cannot state")
            raise self.error(ParseError, cause, rewrite,
                             "state the rule without conditions, or split it into unconditional rules")
        self.add_rule(rewrite.lhs, rewrite.rhs, self.line_of(rewrite), bidirectional,
                      explicit_name=getattr(rewrite, "name", "") or None)

    def analysis_guards(self, conditions) -> bool:
        """`:when` facts that only restate the checker's own assumptions, as `verify export` writes them: the
        ranks analysis (a pattern variable's ranks lie within those it was certified for) and `finite` (the
        checker takes pattern variables to be finite reals). A rule read without them is the rule that was
        certified; any other condition is a precondition the checker cannot state."""
        allowed = {"ranks", "finite", "extended", "set-contains", "set-not-contains", "set-diff", "set-of",
                   "set-empty", "set-remove", "set-insert", "="}
        if not {"ranks", "finite"} <= self.functions:
            return False

        def ok(node) -> bool:
            kind = type(node).__name__
            if kind == "Eq":
                return ok(node.left) and ok(node.right)
            if kind == "Fact":
                return ok(node.expr)
            if kind == "Call":
                return node.name in allowed and all(ok(a) for a in node.args)
            return kind in ("Var", "Lit")

        return all(ok(c) for c in conditions)

    def rule(self, rule) -> None:
        """`(rule (FACTS) (ACTIONS))` in every shape the seed writes:
        - naming rules (actions are `let NAME var`): nothing to prove, a notice;
        - rules whose actions only add terms or facts (no union): nothing to prove, a notice;
        - rules that end in `(union a B)`: the claim a = B for every binding that satisfies every fact. A fact
          `(= v term)` defines v (substituted); `let` names of the actions are usable in the union; a variable
          constrained by two terms, or a fact between two terms, is a precondition the checker cannot state:
          a located error for this rule only."""
        line = self.line_of(rule)
        defs: dict[str, object] = {}          # variable -> the egglog term a fact or a let defines it as
        query_vars: set[str] = set()
        conditions: list = []
        for fact in rule.body:
            kind = type(fact).__name__
            if kind == "Eq":
                left, right = fact.left, fact.right
                sides = [left, right]
                query_vars |= {v for side in sides for v in _ast_vars(side) if v not in self.bindings}
                lvar = type(left).__name__ == "Var" and left.name not in self.bindings
                rvar = type(right).__name__ == "Var" and right.name not in self.bindings
                if lvar and rvar and left.name == right.name:
                    continue
                if not lvar and rvar:
                    left, right, lvar, rvar = right, left, rvar, lvar
                if not lvar:
                    raise self.error(ParseError, "unsupported rule: a fact equates two terms, a precondition the "
                                     "checker cannot state", fact,
                                     "bind each term to a variable: (= v TERM), one term per variable")
                if left.name in defs and not (rvar and right.name in defs):
                    if rvar:
                        left, right = right, left
                    else:
                        first = self.line_of(defs[left.name])
                        raise self.error(ParseError, f"unsupported rule: variable '{left.name}' is constrained by two "
                                         f"terms (line {first} and here), a precondition the checker cannot state",
                                         fact, "let one fact define it and drop the other, or split the rule")
                if left.name in defs:
                    first = self.line_of(defs[left.name])
                    raise self.error(ParseError, f"unsupported rule: variables '{left.name}' and '{right.name}' are "
                                     f"both defined and then equated (line {first} and here), a precondition the "
                                     "checker cannot state", fact)
                defs[left.name] = right
            elif kind == "Fact":
                query_vars |= {v for v in _ast_vars(fact.expr) if v not in self.bindings}
                head = fact.expr.name if type(fact.expr).__name__ == "Call" else None
                if head is not None and not _is_operator(head) and head not in ("finite", "extended"):
                    conditions.append(fact)     # a relation or comparison: a precondition on the binding
            else:
                raise self.error(ParseError, f"unsupported fact ({kind})", rule)
        lets: dict[str, object] = {}
        unions = []
        naming, adds_terms = True, False
        for action in rule.head:
            kind = type(action).__name__
            if kind == "Let":
                name = action.lhs
                if name in query_vars or name in lets:
                    raise self.error(ParseError, f"'{name}' is bound twice in this rule (egglog: variable {name} "
                                     "was already defined)", action, "give the let another name")
                if name in self.bindings:
                    raise self.error(ParseError, f"the rule's let '{name}' shadows the global '{name}' (line "
                                     f"{self.bindings[name].line}); egglog does not allow shadowing", action)
                undefined = [v for v in _ast_vars(action.rhs) if v not in query_vars and v not in lets
                             and v not in self.bindings]
                if undefined:
                    raise self.error(ParseError, f"unbound name '{undefined[0]}' in the rule's actions", action,
                                     "egglog rejects it too: bind it in the query or with an earlier let")
                lets[name] = action.rhs
                if type(action.rhs).__name__ != "Var":
                    naming = False
            elif kind == "Union":
                later = [v for v in _ast_vars(action.lhs) + _ast_vars(action.rhs)
                         if v not in query_vars and v not in lets and v not in self.bindings]
                if later:
                    raise self.error(ParseError, f"unbound name '{later[0]}' in the union (a let must come before "
                                     "its use)", action, "egglog rejects it too: move the let above the union")
                unions.append(action)
            elif kind in ("Expr_", "Set", "Subsume", "Delete", "Change", "Panic"):
                target = _fact_target(action)
                if kind in ("Set", "Expr_") and target is not None and target not in self.functions and not (
                        self.declared is not None and target in self.declared or _is_operator(target)):
                    raise self.error(ParseError, f"the rule's action uses '{target}', a function this file does not "
                                     "declare", action, "egglog rejects it too (unbound function): declare it with "
                                     "(function ...) or (relation ...)")
                naming, adds_terms = False, True
            else:
                raise self.error(ParseError, f"unsupported action ({kind.lower()}) in a rule", action)
        name, description = self.rule_name(line)
        name = getattr(rule, "name", "") or name
        if not unions and not lets and rule.head and all(_fact_target(a) in self.functions for a in rule.head):
            self.analysis_rules += 1       # e.g. the ranks analysis of `verify export`: facts, not terms
            return
        if not unions:
            self.check_terms([f for f in rule.body] + [a for a in rule.head])
            if naming and lets:
                what = f"names a term ({', '.join(lets)}); nothing to prove"
            elif lets and not adds_terms:
                what = f"adds terms ({', '.join(lets)}); no equality claimed"
            else:
                what = "adds terms or facts; no equality claimed"
            default = name == f"{Path(self.file).stem}:{line}"
            self.notices.append((line, what if default else f"{name}: {what}"))
            return
        if conditions:
            raise self.error(ParseError, f"unsupported rule: the fact ({conditions[0].expr.name} ...) is a "
                             "precondition the checker cannot state", conditions[0].expr,
                             "state the rule without it (the checker takes pattern variables to be finite reals)")
        defs.update(lets)
        for i, union in enumerate(unions, 1):
            a, b = union.lhs, union.rhs
            if type(b).__name__ == "Var" and b.name in defs and not (type(a).__name__ == "Var" and a.name in defs):
                a, b = b, a
            free = [v for v in list(_ast_vars(a)) + list(_ast_vars(b))
                    if v not in defs and v not in query_vars and v not in self.bindings]
            if free:
                raise self.error(ParseError, f"unbound name '{free[0]}' in the union", union,
                                 "egglog rejects it too: bind it in the query or with a let")
            self.rule_vars, self.rule_defs, self.resolving = set(), defs, {}
            try:
                left, right = self.expr(a), self.expr(b)
            finally:
                self.rule_vars, self.rule_defs, self.resolving = None, None, None
            label = name if len(unions) == 1 else f"{name} (union {i})"
            self.rules.append(ir.Rule(label, left, right, self.file, line, description, False))

    def check_terms(self, nodes) -> None:
        """The terms of a rule with nothing to prove still use declared constructors as declared."""
        for node in nodes:
            for call in _ast_calls(node):
                if call.name in self.sorts:
                    self.check_declared_use(call, call.name, list(call.args))
                elif self.declared is not None and call.name not in self.functions and _is_operator(call.name) \
                        and call.name not in self.declared:
                    raise self.error(ParseError, f"constructor '{call.name}' is not declared in this file's datatype",
                                     call, did_you_mean(call.name, self.declared))

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
            unbound = _vars(left) - _vars(right) if bidirectional else set()
            if unbound:    # a birewrite also rewrites right to left (egglog: "Unbound symbol")
                raise self.error(ParseError, f"the birewrite's reverse direction: the left-hand side uses pattern "
                                 f"variable(s) {', '.join(sorted(unbound))} that the right-hand side does not bind",
                                 lhs)
        finally:
            self.rule_vars = None
        self.rules.append(ir.Rule(name, left, right, self.file, line, description, bidirectional))

    # -- expressions ------------------------------------------------------------------------------------
    def expr(self, node) -> ir.Expr:
        kind = type(node).__name__
        line = self.line_of(node)
        if kind == "Var":
            if self.rule_defs is not None and node.name in self.rule_defs:
                return self.resolve(node)
            if node.name in self.bindings:
                if self.rule_vars is not None:   # a global in a rule stands for its term
                    return _inline(self.bindings, ir.Ref(node.name, line))
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
        """`(CreateTensor "Q")`, name first `(CreateTensor "Q" 64 1024)` or sizes first as the seed declares
        `(CreateTensor i64 i64 String)`: `(CreateTensor 64 1024 "Q")`. The sizes are those of the tensor's ranks
        in order (Q[e,p]: E then P); they are only for running a program, the checker sweeps sizes anyway."""
        names = [i for i, a in enumerate(args) if type(a).__name__ == "Lit" and isinstance(_lit(a), str)]
        if len(names) != 1 or names[0] not in (0, len(args) - 1):
            raise self.error(ParseError, 'CreateTensor needs one name string, first or last, e.g. (CreateTensor "Q") '
                             'or (CreateTensor 64 1024 "Q")', node)
        try:
            spec, kind = parse_tensor_kind(_lit(args[names[0]]))
            name, ranks = parse_tensor_name(spec)
        except NotationError as exc:
            raise exc.located(Location(self.file, line)) from None
        sizes = args[:names[0]] + args[names[0] + 1:]
        if self.rule_vars is not None:       # in a rule, a size may be a pattern variable: any size matches
            sizes = [a for a in sizes if type(a).__name__ != "Var"]
        if any(type(a).__name__ != "Lit" or not isinstance(_lit(a), int) or isinstance(_lit(a), bool) for a in sizes):
            raise self.error(ParseError, "CreateTensor sizes must be integers", node)
        if any(_lit(a) < 1 for a in sizes):
            raise self.error(ParseError, "CreateTensor sizes must be at least 1", node,
                             "a tensor has at least one element along each rank")
        # A datatype that fixes the number of sizes (the seed's `(CreateTensor i64 i64 String)`) decides it for
        # every tensor; only without one must the sizes number the ranks.
        if sizes and len(sizes) != len(ranks) and "CreateTensor" not in self.sorts and not self.any_sizes:
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


def _ast_vars(node) -> list[str]:
    """Variable names in an egglog expression, in order."""
    out: list[str] = []
    for n in _ast_nodes(node):
        if type(n).__name__ == "Var" and n.name not in out:
            out.append(n.name)
    return out


def _ast_nodes(node):
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


def _fact_target(action) -> str | None:
    """The function an action sets or asserts: `(set (ranks ?e) ...)` -> ranks, `(finite ?e)` -> finite."""
    kind = type(action).__name__
    if kind == "Set":
        return action.lhs
    if kind == "Expr_" and type(action.expr).__name__ == "Call":
        return action.expr.name
    return None


def _ast_calls(node):
    return [n for n in _ast_nodes(node) if type(n).__name__ == "Call"]


def _is_operator(name: str) -> bool:
    try:
        parse_operator(name)
        return True
    except NotationError:
        return False


def _inline(bindings: dict[str, ir.Binding], expr: ir.Expr) -> ir.Expr:
    """`expr` with every reference to a program binding replaced by its term."""
    from dataclasses import replace as _replace

    match expr:
        case ir.Ref(name=name):
            return _inline(bindings, bindings[name].expr)
        case ir.Map(args=args):
            return _replace(expr, args=tuple(_inline(bindings, a) for a in args))
        case ir.Reduce() | ir.Split() | ir.Unsplit() | ir.Last():
            return _replace(expr, arg=_inline(bindings, expr.arg))
        case ir.Scan():
            return _replace(expr, init=_inline(bindings, expr.init), body=_inline(bindings, expr.body))
        case ir.Shift():
            return _replace(expr, arg=_inline(bindings, expr.arg), init=_inline(bindings, expr.init))
    return expr


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
