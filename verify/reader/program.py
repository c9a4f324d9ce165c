"""Reading a file: commands in order, `let` bindings into a program, terms into the IR (rules: `rules.py`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .. import ir
from ..errors import ParseError, ShapeError, UsageError, VerifyError
from .rules import RuleReader
from .source import (
    ASSUME_RE,
    EXPECT_RE,
    FOR_RANKS_ANY_RE,
    FOR_RANKS_RE,
    IGNORED_COMMANDS,
    IGNORED_USER_COMMANDS,
    SHAPES_RE,
    SourceFile,
    egglog_parse,
    source_text,
)
from .syntax import fact_target


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



class Reader(RuleReader):
    """A file, command by command: declarations, `let` bindings and `extract`s into a program; rules (see
    `RuleReader`) into IR rules."""

    def read(self) -> SourceFile:
        if not self.text.strip():
            raise self.error(ParseError, "empty file: no program, no rules", line=1)
        parsed = egglog_parse(self.text, self.file)
        commands = [p.command for p in parsed]
        self.parsed = {id(p.command): p for p in parsed}
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
                    self.rule_errors.append(exc.for_rule(name))
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
        try:
            self.check_tilings()
        except VerifyError as exc:
            if not has_rules:
                raise
            self.rule_errors.append(exc)   # a rule file's example program: as its other errors
        program = ir.Program(self.file, dict(self.bindings), list(self.outputs), dict(self.sizes))
        assumptions = [(m.group(1), i) for i, line in enumerate(self.lines, 1) if (m := ASSUME_RE.match(line))]
        self.instantiate_templates()
        strict = any((m := SHAPES_RE.match(line)) and m.group(1).lower() == "strict" for line in self.lines)
        return SourceFile(self.file, self.text, program, self.rules, self.expectation(), self.declared, assumptions,
                          self.rule_errors, self.notices, strict)

    def check_tilings(self) -> None:
        """The sizes a program declares (`(CreateTensor 64 1000 "K")`) must admit its literal tile counts:
        `(T_split_m_m1m0 K 3)` needs M a multiple of 3, M1 = 3 and M0 = M / 3. Every command that runs the
        program at its declared sizes (equiv, check, optimize, run, codegen, numeric) reads it here; the checker's
        own size sweep never meets such sizes, so without this a certificate would speak of a program that
        cannot exist."""
        sizes = {rank: size for rank, (size, _) in self.sizes.items()}
        where = {rank: f"declared at line {line}" if line else "declared" for rank, (_, line) in self.sizes.items()}
        splits = [node for binding in self.bindings.values() for node in ir.walk(binding.expr)
                  if isinstance(node, ir.Split) and isinstance(node.tiles, int)]
        changed = True
        while changed:        # a tile rank split again (m -> m1, m0 -> m01, m00) learns its size from the first
            changed = False
            for node in splits:
                if node.rank not in sizes:
                    continue
                size, tiles = sizes[node.rank], node.tiles
                assert isinstance(tiles, int)
                if size % tiles:
                    raise self.error(ShapeError, f"rank {node.rank} has size {size} ({where[node.rank]}) but is "
                                     f"split into {tiles} tiles here: {size} is not a multiple of {tiles}",
                                     line=node.line, hint="declare a size the tile count divides, or change the "
                                                          "tile count")
                for part, value in ((node.outer, tiles), (node.inner, size // tiles)):
                    if part in sizes and sizes[part] != value:
                        raise self.error(ShapeError, f"rank {part} has size {sizes[part]} ({where[part]}) but "
                                         f"splitting {node.rank} = {size} into {tiles} tiles makes it {value}",
                                         line=node.line, hint="declare sizes that agree with the tile count")
                    if part not in sizes:
                        sizes[part] = value
                        where[part] = f"from {node.rank} = {size} in {tiles} tiles at line {node.line}"
                        changed = True

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
            if m and not m.group(1):
                return m.group(2).lower()
        return None

    def command(self, command) -> None:
        where = self.parsed.get(id(command))
        if where is not None:     # positions in this command count from the text it was parsed from
            self.batch, self.first_line = where.batch, where.first_line
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
        self.bindings[name] = ir.Binding(name, self.binding_term(name, action.rhs), line)

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
        self.bindings[name] = ir.Binding(name, self.binding_term(name, target), line)
        self.outputs.append((name, line))

    def binding_term(self, name: str, node) -> ir.Expr:
        """A let's term, and how deep it nests (a later term naming it nests that much deeper)."""
        self.deepest = 0
        expr = self.expr(node)
        self.depth_of[name] = self.deepest
        return expr
