"""Reading rules: `rewrite`, `birewrite` and `rule` commands into IR rules, each its own located error."""

from __future__ import annotations

from pathlib import Path

from .. import ir
from ..errors import ParseError, did_you_mean
from .source import ASSUME_RE, EXPECT_RE, FOR_RANKS_RE, RULE_NAME_RE, SHAPES_RE
from .syntax import ast_calls, ast_vars, fact_target, is_operator, pattern_vars
from .terms import TermReader


class RuleReader(TermReader):
    """Reading rules (a base of `program.Reader`): a rule is read against the file's `let` bindings."""

    def rule_name(self, line: int | None) -> tuple[str, str]:
        stem = Path(self.file).stem
        if line is None:
            return f"{stem}:{len(self.rules) + 1}", ""
        above = line - 2
        while above >= 0 and not self.lines[above].strip():
            above -= 1
        block: list[str] = []  # the comment block directly above the rule, top line first (directives left out)
        while above >= 0 and self.lines[above].lstrip().startswith(";"):
            if not (EXPECT_RE.match(self.lines[above]) or ASSUME_RE.match(self.lines[above])
                    or FOR_RANKS_RE.match(self.lines[above]) or SHAPES_RE.match(self.lines[above])):
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
                query_vars |= {v for side in sides for v in ast_vars(side) if v not in self.bindings}
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
                query_vars |= {v for v in ast_vars(fact.expr) if v not in self.bindings}
                head = fact.expr.name if type(fact.expr).__name__ == "Call" else None
                if head is not None and not is_operator(head) and head not in ("finite", "extended"):
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
                undefined = [v for v in ast_vars(action.rhs) if v not in query_vars and v not in lets
                             and v not in self.bindings]
                if undefined:
                    raise self.error(ParseError, f"unbound name '{undefined[0]}' in the rule's actions", action,
                                     "egglog rejects it too: bind it in the query or with an earlier let")
                lets[name] = action.rhs
                if type(action.rhs).__name__ != "Var":
                    naming = False
            elif kind == "Union":
                later = [v for v in ast_vars(action.lhs) + ast_vars(action.rhs)
                         if v not in query_vars and v not in lets and v not in self.bindings]
                if later:
                    raise self.error(ParseError, f"unbound name '{later[0]}' in the union (a let must come before "
                                     "its use)", action, "egglog rejects it too: move the let above the union")
                unions.append(action)
            elif kind in ("Expr_", "Set", "Subsume", "Delete", "Change", "Panic"):
                target = fact_target(action)
                if kind in ("Set", "Expr_") and target is not None and target not in self.functions and not (
                        self.declared is not None and target in self.declared or is_operator(target)):
                    raise self.error(ParseError, f"the rule's action uses '{target}', a function this file does not "
                                     "declare", action, "egglog rejects it too (unbound function): declare it with "
                                     "(function ...) or (relation ...)")
                naming, adds_terms = False, True
            else:
                raise self.error(ParseError, f"unsupported action ({kind.lower()}) in a rule", action)
        name, description = self.rule_name(line)
        name = getattr(rule, "name", "") or name
        if not unions and not lets and rule.head and all(fact_target(a) in self.functions for a in rule.head):
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
            free = [v for v in list(ast_vars(a)) + list(ast_vars(b))
                    if v not in defs and v not in query_vars and v not in self.bindings]
            if free:
                raise self.error(ParseError, f"unbound name '{free[0]}' in the union", union,
                                 "egglog rejects it too: bind it in the query or with a let")
            self.rule_vars, self.rule_defs, self.resolving = set(), defs, {}
            try:
                left, right = self.expr(a), self.expr(b)
                for defined in defs:       # every name the rule gives, for a readable description
                    self.resolve(type("V", (), {"name": defined})())
                names = tuple((n, v) for n, v in self.resolving.items() if v is not None)
            finally:
                self.rule_vars, self.rule_defs, self.resolving = None, None, None
            label = name if len(unions) == 1 else f"{name} (union {i})"
            self.rules.append(ir.Rule(label, left, right, self.file, line, description, False, names=names))

    def check_terms(self, nodes) -> None:
        """The terms of a rule with nothing to prove still use declared constructors as declared."""
        for node in nodes:
            for call in ast_calls(node):
                if call.name in self.sorts:
                    self.check_declared_use(call, call.name, list(call.args))
                elif self.declared is not None and call.name not in self.functions and is_operator(call.name) \
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
            unbound = pattern_vars(right) - pattern_vars(left)
            if unbound:
                raise self.error(ParseError, f"the right-hand side uses pattern variable(s) "
                                 f"{', '.join(sorted(unbound))} that the left-hand side does not bind", rhs)
            unbound = pattern_vars(left) - pattern_vars(right) if bidirectional else set()
            if unbound:    # a birewrite also rewrites right to left (egglog: "Unbound symbol")
                raise self.error(ParseError, f"the birewrite's reverse direction: the left-hand side uses pattern "
                                 f"variable(s) {', '.join(sorted(unbound))} that the right-hand side does not bind",
                                 lhs)
        finally:
            self.rule_vars = None
        self.rules.append(ir.Rule(name, left, right, self.file, line, description, bidirectional))

    # -- expressions ------------------------------------------------------------------------------------
