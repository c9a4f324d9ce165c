"""Repairs for a refuted rule: edits of the rule's own text, each certified by the checker before it is shown.

`verify explain` asks *which precondition* makes a refuted rule hold; this module asks *which edit* does. An
edit works on the rule's source text (spans of its s-expressions), so the repaired rule is the author's file
with the smallest change, comments kept. The kinds, each built only from terms already in the rule's scope:

- **tie**: a pattern variable that nothing ties (Rule 5's `gm`, Step 2's `sum`) is tied to a term: in a
  `rewrite` every occurrence of it is replaced by the term, in a `rule` a fact `(= v TERM)` is added. Terms:
  the rule's reductions, and a reduction (sum or max, over a rank or over both parts of its split) of another
  variable in scope;
- **correction**: a missing correction factor inserted at an exponential (or a variable a fact defines as one):
  `x -> x * exp(a - b)` for two max-reductions a, b in scope; at a subtraction, the additive form
  `x -> x - (a - b)`;
- **rank**: a reduction over m0 (or m) made the two-level reduction over m1 and m0 (or over m);
- **guard**: the right side, or an exponential, wrapped in `M_fin` (fin(-inf) = 0, the kernel guard);
- pairs: a tie with a correction at the numerator it divides (Step 2), a tie with a rank change (Rule 5).

Soundness does not rest on how candidates are chosen: each candidate is the file with the rule's text
replaced, read by the ordinary reader (so it must be well-formed and declared in the file's datatype), turned
into a claim as `verify check` would, screened by the numeric search (a replayed counterexample discards it)
and then checked by the driver (`gate.check_claims`). Only a CERTIFIED verdict is shown as a repair; the verdict
and its bound are shown with it.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import time
from dataclasses import dataclass

from .certified_rules import rule_source
from .claims import Claim, inputs_of
from .errors import VerifyError
from .gate import check_claims
from .intervals import rigorous_difference
from .options import Options
from .reader import read_text
from .refute import search
from .sizes import Bound, effective_bound, plan
from .targets import claims_of
from .verdict import Result, Verdict

MAX_CANDIDATES = 400           # edits read and screened at most (the numeric screen is milliseconds each)
MAX_CERTIFY = 24               # survivors of the screen checked by the driver at most
SCREEN_SECONDS = 1.0           # numeric search per candidate

# -- s-expressions with their spans ------------------------------------------------------------------------------


@dataclass
class Node:
    start: int
    end: int                          # one past the closing paren (or the atom's last character)
    atom: str | None = None
    kids: list[Node] = dataclasses.field(default_factory=list)

    @property
    def head(self) -> str | None:
        return self.kids[0].atom if self.kids and self.kids[0].atom else None

    def walk(self):
        yield self
        for k in self.kids:
            yield from k.walk()


def parse(text: str, start: int = 0) -> Node:
    """The first s-expression of `text` from `start`, with spans; comments and strings skipped as egglog does."""
    stack: list[Node] = []
    i = start
    while i < len(text):
        ch = text[i]
        if ch == ";":
            i = text.find("\n", i)
            i = len(text) if i < 0 else i
            continue
        if ch.isspace():
            i += 1
            continue
        if ch == "(":
            stack.append(Node(i, -1))
            i += 1
            continue
        if ch == ")":
            node = stack.pop()
            node.end = i + 1
            if not stack:
                return node
            stack[-1].kids.append(node)
            i += 1
            continue
        j = i
        if ch == '"':
            j = i + 1
            while j < len(text) and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
        else:
            while j < len(text) and not text[j].isspace() and text[j] not in "();":
                j += 1
        atom = Node(i, j, text[i:j])
        if not stack:
            return atom
        stack[-1].kids.append(atom)
        i = j
    raise ValueError("unbalanced s-expression")


def _text(text: str, node: Node) -> str:
    return text[node.start:node.end]


def _edit(text: str, edits: list[tuple[int, int, str]]) -> str:
    """`text` with each (start, end, replacement) applied; spans do not overlap."""
    out, last = [], 0
    for start, end, new in sorted(edits):
        out.append(text[last:start])
        out.append(new)
        last = end
    out.append(text[last:])
    return "".join(out)


MAP_RE = re.compile(r"M_([a-z]+)_([a-z0-9]+)$")
REDUCE_RE = re.compile(r"R_(add|max)_([a-z][0-9]*)$")
TILE_RE = re.compile(r"([a-z])([01])$")


# -- records -------------------------------------------------------------------------------------------------


@dataclass
class Repair:
    change: str                 # what was edited, in words
    kind: str                   # tie | correction | rank | guard, or two joined by "+"
    rule: str                   # the egglog text of the repaired rule
    diff: str                   # unified diff of the rule's text
    verdict: str = ""
    bound: str = ""
    method: str = ""
    all_sizes: bool = False

    def to_json(self) -> dict:
        return {"rule": self.rule, "verdict": self.verdict, "change": self.change, "kind": self.kind,
                "bound": self.bound, "method": self.method, "diff": self.diff}


@dataclass
class RepairSearch:
    repairs: list[Repair]
    tried: int = 0              # candidates read and screened
    screened_out: int = 0       # refuted by the numeric search (a replayed counterexample)
    unreadable: int = 0         # not a well-formed, declared, well-ranked rule
    checked: int = 0            # sent to the driver
    seconds: float = 0.0
    note: str = ""


# -- candidates ---------------------------------------------------------------------------------------------


@dataclass
class _Rule:
    text: str                   # the rule's source text
    tree: Node
    variables: list[str]        # pattern variables the checker reads as inputs (untied)
    defined: dict[str, Node]    # variable -> the term a fact defines it as (rules with facts)
    facts: Node | None          # the facts list of a `rule`
    one_side: list[str]         # variables only one side of the claim reads: nothing ties them to the other


def _shape(text: str, claim: Claim) -> _Rule | None:
    try:
        tree = parse(text)
    except (ValueError, IndexError):
        return None
    if tree.head not in ("rewrite", "birewrite", "rule") or len(tree.kids) < 3:
        return None
    defined: dict[str, Node] = {}
    facts = None
    if tree.head == "rule":
        facts = tree.kids[1]
        for fact in facts.kids:
            if fact.head == "=" and len(fact.kids) == 3:
                a, b = fact.kids[1], fact.kids[2]
                if a.atom and not b.atom:
                    defined[a.atom] = b
                elif b.atom and not a.atom:
                    defined[b.atom] = a
    variables = [name for name, _ in claim.inputs]
    left, right = ({n for n, _ in inputs_of([side])} for side in (claim.lhs, claim.rhs))
    one_side = [v for v in variables if (v in left) != (v in right)]
    return _Rule(text, tree, variables, defined, facts, one_side)


def _body(rule: _Rule) -> list[Node]:
    """The nodes an edit may touch: a rewrite's two sides, a rule's facts."""
    if rule.tree.head == "rule":
        return list(rule.facts.kids) if rule.facts else []
    return rule.tree.kids[1:3]


def _splits(rule: _Rule) -> dict[str, tuple[str, str]]:
    """Base rank -> (outer, inner) for every x1/x0 rank the rule's operators mention."""
    out: dict[str, tuple[str, str]] = {}
    for node in rule.tree.walk():
        head = node.atom or ""
        for part in re.findall(r"[a-z][0-9]*", head.split("_", 2)[-1] if head.startswith(("M_", "R_")) else ""):
            m = TILE_RE.fullmatch(part)
            if m:
                out[m.group(1)] = (m.group(1) + "1", m.group(1) + "0")
    return out


def _reductions(rule: _Rule) -> list[tuple[str, str]]:
    """(op, text) of every reduction in scope: reduction subterms, and variables a fact defines as one."""
    seen: dict[str, str] = {}
    named = {_text(rule.text, term): name for name, term in rule.defined.items()}
    for name, term in rule.defined.items():
        m = REDUCE_RE.fullmatch(term.head or "")
        if m:
            seen[name] = m.group(1)
    for top in _body(rule):
        for node in top.walk():
            m = REDUCE_RE.fullmatch(node.head or "")
            if m and _text(rule.text, node) not in named:
                seen.setdefault(_text(rule.text, node), m.group(1))
    return [(op, t) for t, op in seen.items()]


def _reduced(term: str, splits, ops=("max", "add")) -> list[str]:
    out = []
    for op in ops:
        for base, (outer, inner) in splits.items():
            out.append(f"(R_{op}_{base} {term})")
            out.append(f"(R_{op}_{outer} (R_{op}_{inner} {term}))")
    return out


def _tie(rule: _Rule, var: str, term: str) -> str | None:
    if rule.tree.head == "rule":
        assert rule.facts is not None and rule.facts.kids
        last = rule.facts.kids[-1]
        indent = " " * (last.start - rule.text.rfind("\n", 0, last.start) - 1)
        return _edit(rule.text, [(last.end, last.end, f"\n{indent}(= {var} {term})")])
    edits = [(n.start, n.end, term) for top in _body(rule) for n in top.walk() if n.atom == var]
    return _edit(rule.text, edits) if edits else None


def _ties(rule: _Rule) -> list[tuple[str, str, str, str]]:
    """(var, term, change, new text) for each untied variable and term in scope."""
    splits = _splits(rule)
    scope = [t for _, t in _reductions(rule)]
    # a variable is reduced to tie another: the fact-defined non-reductions (terms a reduction would consume)
    sources = [n for n, t in rule.defined.items() if not REDUCE_RE.fullmatch(t.head or "")] + rule.variables
    out = []
    for var in rule.one_side:
        terms = [t for t in scope if not re.search(rf"(?<![\w]){re.escape(var)}(?![\w])", t)]
        for other in sources:
            if other != var:
                terms += _reduced(other, splits)
        for term in dict.fromkeys(terms):
            text = _tie(rule, var, term)
            if text is not None:
                out.append((var, term, f"tie `{var}` := {term}", text))
    return out


def _space(node: Node, parent: Node | None) -> str | None:
    for n in (node, parent):
        m = MAP_RE.fullmatch((n.head if n is not None else None) or "")
        if m:
            return m.group(2)
    return None


def _sites(rule: _Rule):
    """(node, space, kind) where a correction can go: exponentials (and variables a fact defines as one) under a
    map, and subtractions."""
    exp_vars = {name for name, t in rule.defined.items() if (t.head or "").startswith("M_exp_")}
    for top in _body(rule):
        stack: list[tuple[Node, Node | None]] = [(top, None)]
        while stack:
            node, parent = stack.pop()
            head = node.head or ""
            if rule.tree.head == "rule" and parent is None:
                pass                                  # a fact `(= v TERM)` itself is no site
            elif head.startswith("M_exp_") or (node.atom in exp_vars and parent is not None
                                               and (parent.head or "").startswith("M_")):
                space = _space(node, parent)
                if space:
                    yield node, space, "mul"
            elif head.startswith("M_sub_"):
                space = _space(node, None)
                if space:
                    yield node, space, "sub"
            stack.extend((k, node) for k in node.kids if not k.atom or k.atom in exp_vars)


def _corrections(rule: _Rule, only: Node | None = None) -> list[tuple[str, str]]:
    """(change, new text) for each correction site and pair of terms in scope."""
    reductions = _reductions(rule)
    out = []
    for node, space, kind in _sites(rule):
        if only is not None and node is not only:
            continue
        site = _text(rule.text, node)
        if kind == "mul":     # exp(x - a) = exp(x - b) * exp(b - a): the factor between two max-shifts
            maxes = [a for op, a in reductions if op == "max"] + rule.one_side
            pairs = [(a, b) for a in maxes for b in maxes if a != b]
            # the factor over the site's ranks, or over the tiles only (one value per tile, as FuseMax's PRM)
            outer = re.sub(r"[a-z]0", "", space)
            for a, b in pairs:
                for where in dict.fromkeys((space, outer)):
                    new = f"(M_mul_{space} {site} (M_exp_{where} (M_sub_{where} {a} {b})))"
                    out.append((f"insert the correction factor (M_exp_{where} (M_sub_{where} {a} {b})) at {site}",
                                _edit(rule.text, [(node.start, node.end, new)])))
            for name, term in rule.defined.items():     # a factor a fact already names (the seed's prm)
                if (term.head or "").startswith("M_exp_") and name not in site.split():
                    new = f"(M_mul_{space} {site} {name})"
                    out.append((f"insert the correction factor {name} at {site}",
                                _edit(rule.text, [(node.start, node.end, new)])))
        else:                 # x - a = (x - b) - (a - b)
            terms = [t for _, t in reductions] + [v for v in rule.variables]
            for a in terms:
                for b in terms:
                    if a != b and a not in site.split() and (a in site or b in site):
                        new = f"(M_sub_{space} {site} (M_sub_{space} {a} {b}))"
                        out.append((f"insert the correction -({a} - {b}) at {site}",
                                    _edit(rule.text, [(node.start, node.end, new)])))
    return out


def _lifted(rule: _Rule) -> str | None:
    """A subtraction rule restated under the exponential that consumes it (`exp(x - a)`), where a shift is
    corrected by a factor: the seed's local-max shift is wrong as a difference but right as exp(x - lm) times
    exp(lm - gm). The file's datatype decides whether the exp operators exist (the reader refuses otherwise)."""
    if rule.tree.head != "rewrite":
        return None
    lhs, rhs = rule.tree.kids[1], rule.tree.kids[2]
    lm, rm = MAP_RE.fullmatch(lhs.head or ""), MAP_RE.fullmatch(rhs.head or "")
    if not (lm and rm and lm.group(1) == rm.group(1) == "sub"):
        return None
    return _edit(rule.text, [(lhs.start, lhs.start, f"(M_exp_{lm.group(2)} "), (lhs.end, lhs.end, ")"),
                             (rhs.start, rhs.start, f"(M_exp_{rm.group(2)} "), (rhs.end, rhs.end, ")")])


def _rank_changes(rule: _Rule, text: str | None = None) -> list[tuple[str, str]]:
    text = text or rule.text
    tree = parse(text)
    splits = _splits(rule)
    inner_of = {inner: (base, outer) for base, (outer, inner) in splits.items()}
    tops = tree.kids[1:3] if tree.head != "rule" else tree.kids[1].kids
    out = []
    for top in tops:
        for node in top.walk():
            m = REDUCE_RE.fullmatch(node.head or "")
            if not m or len(node.kids) != 2:
                continue
            op, rank = m.groups()
            arg = _text(text, node.kids[1])
            options = []
            if rank in inner_of:
                base, outer = inner_of[rank]
                options = [f"(R_{op}_{outer} (R_{op}_{rank} {arg}))", f"(R_{op}_{base} {arg})"]
            elif rank in splits:
                outer, inner = splits[rank]
                options = [f"(R_{op}_{outer} (R_{op}_{inner} {arg}))"]
            for new in options:
                out.append((f"reduce as {new} in place of {_text(text, node)}",
                            _edit(text, [(node.start, node.end, new)])))
    return out


def _guards(rule: _Rule) -> list[tuple[str, str]]:
    out = []
    if rule.tree.head in ("rewrite", "birewrite"):
        rhs = rule.tree.kids[2]
        m = MAP_RE.fullmatch(rhs.head or "")
        if m:
            new = f"(M_fin_{m.group(2)} {_text(rule.text, rhs)})"
            out.append(("guard the right side with M_fin", _edit(rule.text, [(rhs.start, rhs.end, new)])))
    return out


def candidates(rule_text: str, claim: Claim) -> list[tuple[str, str, str]]:
    """(kind, change, new rule text), single edits first, then pairs."""
    rule = _shape(rule_text, claim)
    if rule is None:
        return []
    out: list[tuple[str, str, str]] = []
    ties = _ties(rule)
    out += [("tie", change, text) for _, _, change, text in ties]
    # pairs first after the ties (few, and the seed's bugs need them): a tie of a denominator with a correction at
    # the numerator it divides; a tie with a rank change; a subtraction restated under exp with its correction
    for var, term, change, text in ties:
        tied = _shape(text, claim)
        if tied is None:
            continue
        tied.defined.setdefault(var, parse(term))
        for top in _body(tied):
            for node in top.walk():
                if (node.head or "").startswith("M_div_") and len(node.kids) == 3 and node.kids[2].atom == var \
                        and term.startswith("(R_add_"):
                    out += [("tie+correction", f"{change}; {c}", t) for c, t in _corrections(tied, node.kids[1])]
        if rule.tree.head != "rule":
            out += [("tie+rank", f"{change}; {c}", t) for c, t in _rank_changes(rule, text)]
    lifted_text = _lifted(rule)
    lifted = _shape(lifted_text, claim) if lifted_text else None
    if lifted is not None:
        rhs = lifted.tree.kids[2]
        out += [("lift+correction", f"state it under exp; {c}", t) for c, t in _corrections(lifted, rhs)]
    out += [("correction", change, text) for change, text in _corrections(rule)]
    out += [("rank", change, text) for change, text in _rank_changes(rule)]
    out += [("guard", change, text) for change, text in _guards(rule)]
    seen: set[str] = set()
    unique = []
    for kind, change, text in out:
        if text not in seen and text != rule_text:
            seen.add(text)
            unique.append((kind, change, text))
    return unique


# -- the search --------------------------------------------------------------------------------------------------


def _claim_of(file_text: str, path: str, line: int, options: Options) -> Claim | None:
    try:
        source = read_text(file_text, path)
    except VerifyError:
        return None
    errors: list = []
    claims = claims_of(source, options, errors)
    if any(getattr(e.location, "line", None) == line for e in errors):
        return None
    return next((c for c in claims if c.line == line), None)


def repair(claim: Claim, options: Options, budget: float = 60.0) -> RepairSearch:
    """Certified repairs of a refuted rule of a rule file (see the module docstring)."""
    start = time.monotonic()
    out = RepairSearch([])
    if claim.line is None or not claim.file.endswith(".egg"):
        out.note = "repairs are proposed for rules of .egg files"
        return out
    try:
        with open(claim.file, encoding="utf-8") as f:
            file_text = f.read()
    except OSError as exc:
        out.note = f"cannot read {claim.file}: {exc}"
        return out
    original = rule_source(file_text, claim.line)
    offset = file_text.find(original, sum(len(x) for x in file_text.splitlines(keepends=True)[:claim.line - 1]))
    if not original or offset < 0:
        out.note = "the rule's text was not found"
        return out
    survivors: list[tuple[str, str, str, Claim]] = []
    try:
        edits = candidates(original, claim)[:MAX_CANDIDATES]
    except (ValueError, IndexError, AssertionError, StopIteration) as exc:   # a rule text the edits cannot take
        out.note = f"no edits proposed ({type(exc).__name__})"
        return out
    for kind, change, text in edits:
        if time.monotonic() - start > budget / 2:
            out.note = f"time budget: {out.tried} edits tried"
            break
        out.tried += 1
        candidate = _claim_of(file_text[:offset] + text + file_text[offset + len(original):], claim.file,
                              claim.line, options)
        if candidate is None:
            out.unreadable += 1
            continue
        bound = effective_bound(candidate, options.bound)
        sizes = list(plan(candidate, bound).sizes())
        if search(candidate, sizes, prove_difference=rigorous_difference, seed=options.seed,
                  limit_seconds=SCREEN_SECONDS) is not None:
            out.screened_out += 1
            continue
        survivors.append((kind, change, text, dataclasses.replace(
            candidate, bound=",".join(f"{k}={lo}..{hi}" for k, (lo, hi) in bound.ranges) or None)))
    survivors.sort(key=lambda s: (s[0].count("+"), len(s[2])))
    survivors = survivors[:MAX_CERTIFY]
    out.checked = len(survivors)
    opts = dataclasses.replace(options, bound=Bound())
    results: list[Result] = check_claims([s[3] for s in survivors], opts) if survivors else []
    for (kind, change, text, _), result in zip(survivors, results):
        if result.verdict is not Verdict.CERTIFIED:
            continue
        diff = "".join(difflib.unified_diff((original + "\n").splitlines(keepends=True),
                                            (text + "\n").splitlines(keepends=True),
                                            f"{claim.file}:{claim.line}", "repaired", n=1))
        out.repairs.append(Repair(change, kind, text, diff, result.verdict.value, str(result.bound), result.method,
                                  result.bound.is_all_sizes))
    out.repairs.sort(key=lambda r: (not r.all_sizes, r.kind.count("+"), len(r.rule)))
    out.seconds = time.monotonic() - start
    return out
