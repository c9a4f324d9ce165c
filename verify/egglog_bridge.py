"""Certified rules drive egglog: export, equality saturation, extraction. The only module that runs egglog.

(`reader.py` uses egglog's *parser*; everything that builds or runs an e-graph is here.)

Export. Every rule under the rules directory is checked by the driver now; only CERTIFIED ones become egglog
rewrites, each preceded by a comment naming its certificate (sha256 of the rule's source text and the checker's
encoding version, and the bound it was checked at). A rule is a `rewrite`/`birewrite` of a rule file, or a
chain step between two programs (`rules/**/*.chain.toml`): the programs' inputs are the pattern variables. That
second form exists because a rule cannot contain `let`s, and the checker only accepts other iterative values
inside a scan body by name (see rules/online/).

Soundness of the rewrites. A certified rule holds for pattern variables of the ranks the checker gave them (the
largest consistent ones; narrower is broadcasting) and for every rank the rule does not name. egglog matches
terms, not ranks, so every exported rule carries a `:when` guard over a `ranks` analysis (an e-class's rank set,
computed by rules of the `analysis` ruleset from each operator's name) that keeps it to those ranks, and
requires the ranks that a split, reduce, scan operator or unsplit of the right side needs from a variable.

Saturation runs `analysis` to a fixpoint, then one iteration of `certified`, until nothing changes or an
iteration / row / time limit is reached. The rules only split the ranks they name (m into m1, m0 and the
template ranks), with one tile count per rank pair, so tiling cannot recurse.

Extraction. FuseMax passes and live memory are properties of the whole extracted DAG, not sums over a tree, so
egglog's extractor (tree costs, monotone in the children) cannot rank by them. The frozen e-graph is read into
Python instead; tree-cost proxies (passes as a bottom-up time, term size, summed footprints) give candidate
selections, a local search over the e-nodes of the reached e-classes improves them, and every candidate is
ranked by the exact cost of its DAG (`cost.analyze`).
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import ir
from .cost import REFERENCE_SIZES, Analysis, Fiber, analyze, node_time, pass_of
from .driver import ENCODING_VERSION, Options, check_claim
from .errors import InternalError, Location, ParseError, UsageError, VerifyError
from .notation import (
    LeafOp,
    MapOp,
    ReduceOp,
    ScanOp,
    SplitOp,
    UnsplitOp,
    map_name,
    operator_name,
    parse_operator,
    parse_tensor_name,
    scan_name,
)
from .printer import Printer, const_text, input_text
from .sources import claims_of, collect

DEFAULT_TILES = 4
RULESET = "certified"
ANALYSIS = "analysis"


# -- egglog calls ---------------------------------------------------------------------------------------------

def _egglog():
    from egglog import bindings

    return bindings


def new_egraph():
    return _egglog().EGraph()


def run_text(egraph, text: str, file: str | None = None):
    """Parse and run egglog text; egglog's errors become ParseError, a Rust panic an InternalError."""
    b = _egglog()
    try:
        return egraph.run_program(*egraph.parse_program(text, filename=file))
    except b.EggSmolError as exc:
        message = str(exc)
        m = re.match(r"In (\d+):\d+", message)
        raise ParseError(message.strip().splitlines()[-1] if message.strip() else "egglog failed",
                         Location(file or "<egglog>", int(m.group(1)) if m else None)) from None
    except BaseException as exc:  # PanicException is not an Exception
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise InternalError(f"egglog panicked: {type(exc).__name__}: {exc}") from None


# -- operators and the prelude ------------------------------------------------------------------------------------

def operators_in(exprs) -> set[str]:
    names = {"CreateTensor", "Const"}
    for e in exprs:
        for node in ir.walk(e):
            name = operator_name(node)
            if name:
                names.add(name)
    return names


def signature(name: str) -> list[str]:
    """egglog argument sorts of a seed operator, from its name."""
    op = parse_operator(name)
    match op:
        case LeafOp(kind="CreateTensor"):
            return ["String"]
        case LeafOp(kind="Const"):
            return ["f64"]
        case MapOp():
            return ["Tensor"] * op.arity
        case ReduceOp() | UnsplitOp():
            return ["Tensor"]
        case SplitOp():
            return ["Tensor", "i64"]
        case ScanOp(kind="scan"):
            return ["String", "Tensor", "Tensor"]
        case ScanOp(kind="prev"):
            return ["String"]
        case ScanOp(kind="shift"):
            return ["Tensor", "Tensor"]
        case ScanOp(kind="last"):
            return ["Tensor"]
    raise AssertionError(name)


def _order(names) -> list[str]:
    first = [n for n in ("CreateTensor", "Const") if n in names]
    return first + sorted(n for n in names if n not in first)


def prelude(names) -> str:
    """`(datatype Tensor ...)` declaring every operator in `names`."""
    lines = ["(datatype Tensor"]
    for name in _order(names):
        lines.append(f"  ({name}{''.join(' ' + s for s in signature(name))})")
    return "\n".join(lines) + ")\n"


def rank_set(ranks) -> str:
    ranks = list(ranks)
    return f"(set-of {' '.join(f'{chr(34)}{r}{chr(34)}' for r in ranks)})" if ranks else "(set-empty)"


def analysis_rules(names) -> str:
    """The analyses that guard the rewrites, as egglog rules of the `analysis` ruleset:
    - `ranks`: the rank set of every e-class, from each operator's name (inputs are seeded);
    - `finite` / `extended`: the e-class's values are certainly finite reals / finite reals or -inf (never
      undefined, never +inf). The checker certifies rules for finite real pattern variables, so every rewrite
      asks `(finite ?x)` of its variables: a rule is not applied to a masked score (-inf) or to a division
      (which may divide by 0). The transfer rules below are sound over-approximations: exp(-inf) = 0,
      max(-inf, x) = x, a running max of finite values started at -inf is finite, a linear recurrence with
      finite coefficients is finite. Inputs are seeded (real inputs finite, masks extended)."""
    lines = [
        "(sort RankSet (Set String))",
        "(function ranks (Tensor) RankSet :merge old)",
        "(relation finite (Tensor))",
        "(relation extended (Tensor))",
        f"(ruleset {ANALYSIS})",
        f"(ruleset {RULESET})",
        f"(rule ((finite ?e)) ((extended ?e)) :ruleset {ANALYSIS})",
    ]

    def rule(pattern: str, facts: str, value: str) -> None:
        lines.append(f"(rule ((= ?e {pattern}){facts}) ((set (ranks ?e) {value})) :ruleset {ANALYSIS})")

    def fact(pattern: str, facts: str, relation: str) -> None:
        lines.append(f"(rule ((= ?e {pattern}){facts}) (({relation} ?e)) :ruleset {ANALYSIS})")

    def preserve(pattern: str, args: list[str]) -> None:
        for relation in ("finite", "extended"):
            fact(pattern, "".join(f" ({relation} {a})" for a in args), relation)

    for name in _order(names):
        op = parse_operator(name)
        match op:
            case LeafOp(kind="Const"):
                rule("(Const ?v)", "", "(set-empty)")
                fact("(Const ?v)", " (< ?v inf) (> ?v -inf)", "finite")
                fact("(Const ?v)", " (< ?v inf)", "extended")
            case MapOp(space=space, reduce=red):
                args = [f"?a{i}" for i in range(op.arity)]
                pattern = f"({name} {' '.join(args)})"
                rule(pattern, "", rank_set(r for r in space if red is None or r != red.rank))
                if op.op == "add":
                    preserve(pattern, args)
                elif op.op == "sub":
                    fact(pattern, " (finite ?a0) (finite ?a1)", "finite")
                    fact(pattern, " (extended ?a0) (finite ?a1)", "extended")
                elif op.op == "mul":
                    fact(pattern, " (finite ?a0) (finite ?a1)", "finite")
                elif op.op == "max":
                    fact(pattern, " (finite ?a0) (extended ?a1)", "finite")
                    fact(pattern, " (extended ?a0) (finite ?a1)", "finite")
                    fact(pattern, " (extended ?a0) (extended ?a1)", "extended")
                elif op.op in ("exp", "fin"):
                    fact(pattern, " (extended ?a0)", "finite")
            case ReduceOp(rank=rank) | ScanOp(kind="last", rank=rank):
                rule(f"({name} ?a)", " (= ?r (ranks ?a))", f'(set-remove ?r "{rank}")')
                preserve(f"({name} ?a)", ["?a"])
            case SplitOp(rank=rank, outer=o, inner=i):
                rule(f"({name} ?a ?t)", " (= ?r (ranks ?a))",
                     f'(set-insert (set-insert (set-remove ?r "{rank}") "{o}") "{i}")')
                preserve(f"({name} ?a ?t)", ["?a"])
            case UnsplitOp(outer=o, inner=i, rank=rank):
                rule(f"({name} ?a)", " (= ?r (ranks ?a))",
                     f'(set-insert (set-remove (set-remove ?r "{o}") "{i}") "{rank}")')
                preserve(f"({name} ?a)", ["?a"])
            case ScanOp(kind="scan", rank=rank):
                rule(f"({name} ?n ?i ?b)", " (= ?r (ranks ?b))", "?r")
                prev = scan_name("prev", rank)
                if prev not in names:
                    continue
                for other in _order(names):
                    m = _op(other)
                    if not (isinstance(m, MapOp) and m.reduce is None and rank in m.space):
                        continue
                    if m.op == "max":
                        for body in (f"({other} ({prev} ?n) ?l)", f"({other} ?l ({prev} ?n))"):
                            fact(f"({name} ?n ?i {body})", " (extended ?i) (finite ?l)", "finite")
                            fact(f"({name} ?n ?i {body})", " (extended ?i) (extended ?l)", "extended")
                    if m.op == "add":
                        mul = map_name("mul", m.space)
                        if mul not in names:
                            continue
                        for step in (f"({mul} ({prev} ?n) ?w)", f"({mul} ?w ({prev} ?n))"):
                            for body in (f"({other} ?x {step})", f"({other} {step} ?x)"):
                                fact(f"({name} ?n ?i {body})", " (finite ?i) (finite ?x) (finite ?w)", "finite")
            case ScanOp(kind="shift"):
                rule(f"({name} ?a ?i)", " (= ?r (ranks ?a))", "?r")
                preserve(f"({name} ?a ?i)", ["?a", "?i"])
    return "\n".join(lines) + "\n"


# -- certified rules ----------------------------------------------------------------------------------------------

@dataclass
class CertifiedRule:
    """A rule (or one direction of a birewrite) that the checker CERTIFIED, ready to become an egglog rewrite.
    Pattern variables are `ir.Var`s; a split's tile count may be a pattern variable (a `str`)."""

    name: str
    file: str
    line: int | None
    kind: str                                  # rule | step
    lhs: ir.Expr
    rhs: ir.Expr
    var_ranks: dict[str, tuple[str, ...]]
    universe: frozenset
    content_hash: str
    bound: str
    method: str
    bidirectional: bool = False
    description: str = ""
    warnings: tuple[str, ...] = ()           # e.g. "equal over the reals, but exp overflows in float32"

    def directions(self) -> list[tuple[str, ir.Expr, ir.Expr]]:
        out = [(self.name, self.lhs, self.rhs)]
        if self.bidirectional:
            out.append((f"{self.name} (reverse)", self.rhs, self.lhs))
        return [(n, l, r) for n, l, r in out if not isinstance(l, ir.Var) and _vars(r) <= _vars(l)]

    def certificate(self) -> str:
        return (f"certificate sha256:{self.content_hash} encoding {_encoding()} bound {self.bound} "
                f"method {self.method}")


@dataclass
class RuleStatus:
    """What the checker said about one rule or chain step, and whether it is exported."""

    name: str
    file: str
    line: int | None
    verdict: str
    detail: str
    rule: CertifiedRule | None = None
    reason: str = ""                           # why a certified rule is not exported

    @property
    def exported(self) -> bool:
        return self.rule is not None


def _encoding() -> str:
    return ENCODING_VERSION


def _vars(e: ir.Expr) -> set[str]:
    return {n.name for n in ir.walk(e) if isinstance(n, ir.Var)}


def source_text(text: str, line: int | None) -> str:
    """The s-expression that starts on `line` (1-based) of `text`: the rule's source."""
    if line is None:
        return ""
    lines = text.splitlines(keepends=True)
    offset = sum(len(x) for x in lines[: line - 1])
    start = text.find("(", offset)
    if start < 0:
        return ""
    depth, i, in_string, in_comment = 0, start, False, False
    while i < len(text):
        ch = text[i]
        if in_comment:
            in_comment = ch != "\n"
        elif in_string:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == ";":
            in_comment = True
        elif ch == '"':
            in_string = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return text[start:i + 1]
        i += 1
    return text[start:]


def content_hash(source: str, name: str | None = None) -> str:
    """sha256 of a rule's source text and the encoding version (and the instance name of a rank template)."""
    suffix = f"\n{name}" if name and "[" in name else ""
    return hashlib.sha256(f"{source}\n{_encoding()}{suffix}".encode()).hexdigest()


def _inline(side) -> ir.Expr:
    """A program side as one expression: every `let` it reaches substituted."""
    memo: dict[str, ir.Expr] = {}

    def go(e: ir.Expr) -> ir.Expr:
        match e:
            case ir.Ref(name=name):
                if name not in memo:
                    memo[name] = go(side.bindings[name].expr)
                return memo[name]
            case ir.Map(args=args):
                return ir.Map(e.op, e.space, tuple(go(a) for a in args), e.line)
            case ir.Reduce() | ir.Split() | ir.Unsplit() | ir.Last():
                from dataclasses import replace

                return replace(e, arg=go(e.arg))
            case ir.Scan():
                return ir.Scan(e.rank, e.name, go(e.init), go(e.body), e.line)
            case ir.Shift():
                return ir.Shift(e.rank, go(e.arg), go(e.init), e.line)
        return e

    return go(side.expr)


def _inputs_to_vars(e: ir.Expr, names: set[str]) -> ir.Expr:
    from dataclasses import replace

    match e:
        case ir.Input(name=name) if name in names:
            return ir.Var(name, e.line)
        case ir.Map(args=args):
            return replace(e, args=tuple(_inputs_to_vars(a, names) for a in args))
        case ir.Reduce() | ir.Split() | ir.Unsplit() | ir.Last():
            return replace(e, arg=_inputs_to_vars(e.arg, names))
        case ir.Scan():
            return replace(e, init=_inputs_to_vars(e.init, names), body=_inputs_to_vars(e.body, names))
        case ir.Shift():
            return replace(e, arg=_inputs_to_vars(e.arg, names), init=_inputs_to_vars(e.init, names))
    return e


def _as_rewrite(claim, result, status: RuleStatus, sources: dict) -> None:
    """Attach the CertifiedRule of a certified claim to its status (a rule file's rewrite, or a chain step's
    two programs with their inputs as pattern variables), or say in `status.reason` why it cannot be one."""
    from .reader import read_file

    if getattr(claim, "assumptions", ()) or getattr(claim, "masks", ()):
        status.reason = "holds only under its stated assumptions / for mask inputs; not a plain rewrite"
        return
    if getattr(claim, "reading", ""):
        status.reason = (f"certified as {claim.reading}; its egglog text is ill-ranked, so write the splits "
                         "explicitly to export it")
        return
    try:
        if claim.kind == "rule":
            if claim.file not in sources:
                sources[claim.file] = read_file(claim.file)
            source = sources[claim.file]
            rule = next((r for r in source.rules if r.name == claim.name and r.line == claim.line), None)
            if rule is None:
                status.reason = "the rule was not found again in its file"
                return
            variables = _vars(rule.lhs) | _vars(rule.rhs)
            lhs, rhs, bidirectional, description = rule.lhs, rule.rhs, rule.bidirectional, rule.description
            text = source_text(source.text, claim.line)
        else:
            variables = {name for name, _ in claim.inputs}
            lhs = _inputs_to_vars(_inline(claim.lhs), variables)
            rhs = _inputs_to_vars(_inline(claim.rhs), variables)
            bidirectional, description = False, claim.description
            text = "".join(Path(f).read_text(encoding="utf-8") for f in (claim.lhs.file, claim.rhs.file))
    except (OSError, VerifyError) as exc:
        status.reason = f"could not read its source again: {exc}"
        return
    if not _vars(rhs) <= _vars(lhs):
        status.reason = "its right side has variables its left side does not bind"
        return
    if isinstance(lhs, ir.Var):
        status.reason = "its left side is a bare variable; egglog cannot match it"
        return
    status.rule = CertifiedRule(
        claim.name, claim.file, claim.line, claim.kind, lhs, rhs,
        {n: tuple(r) for n, r in claim.inputs if n in variables}, frozenset(claim.ranks()),
        content_hash(text, claim.name), str(result.bound), result.method, bidirectional, description,
        tuple(getattr(result, "warnings", ()) or ()))


def certify_rules(rules_dir: str | Path = "rules", options=None, progress=None,
                  allow_bounded: bool = False) -> tuple[list[RuleStatus], list]:
    """Check every rule and chain step under `rules_dir` with the driver now; the certified ones become
    CertifiedRules. Returns (statuses, user errors).

    Only rules certified **for all sizes** become rewrites unless `allow_bounded`: egglog applies a rewrite to
    a term of any size, so a rule certified at M <= 4 (say) would otherwise be used at the program's M = 1024,
    where it was never checked (a rule true only for small sizes then makes `optimize` emit a wrong program
    whose translation validation, itself bounded, cannot see it). With `allow_bounded` such rules are exported,
    each marked with its bound, and whatever they produce holds only within it."""
    from .gate import check_claims

    claims, errors, _notes = collect([str(rules_dir)])
    results = check_claims(claims, options or Options(), progress)
    sources: dict[str, object] = {}
    statuses: list[RuleStatus] = []
    for claim, result in zip(claims, results):
        status = RuleStatus(claim.name, claim.file, claim.line, result.verdict.value, result.detail or result.method)
        statuses.append(status)
        if result.verdict.value == "CERTIFIED":
            if not allow_bounded and not result.bound.is_all_sizes:
                status.reason = (f"certified only at {result.bound}, not for all sizes; egglog would apply it at "
                                 "every size (--allow-bounded uses it anyway)")
                continue
            _as_rewrite(claim, result, status, sources)
    return statuses, errors


# -- rules as egglog text -------------------------------------------------------------------------------------------

def _occurrences(e: ir.Expr, allowed, out: dict, required: dict) -> None:
    """For each variable: the ranks its positions allow (None: any rank) and the ranks an operator applied to
    it directly needs."""
    def widen(extra, drop=()):
        return None if allowed is None else (allowed - set(drop)) | set(extra)

    def visit(arg, new_allowed, needs=()):
        if isinstance(arg, ir.Var) and needs:
            required.setdefault(arg.name, set()).update(needs)
        _occurrences(arg, new_allowed, out, required)

    match e:
        case ir.Var(name=name):
            if name in out and out[name] is not None and allowed is not None:
                out[name] = out[name] & allowed
            elif name in out and out[name] is not None:
                pass
            else:
                out[name] = None if allowed is None else frozenset(allowed)
        case ir.Map(space=space, args=args):
            for a in args:
                visit(a, frozenset(space))
        case ir.Reduce(rank=r, arg=arg) | ir.Last(rank=r, arg=arg):
            visit(arg, widen({r}), (r,))
        case ir.Split(rank=r, outer=o, inner=i, arg=arg):
            visit(arg, widen({r}, {o, i}), (r,))
        case ir.Unsplit(rank=r, outer=o, inner=i, arg=arg):
            visit(arg, widen({o, i}, {r}), (o, i))
        case ir.Scan(rank=r, init=init, body=body):
            visit(body, allowed)
            visit(init, widen((), {r}))
        case ir.Shift(rank=r, arg=arg, init=init):
            visit(arg, allowed, (r,))
            visit(init, widen((), {r}))


def guards(rule: CertifiedRule, lhs: ir.Expr, rhs: ir.Expr, var) -> list[str]:
    """egglog facts that keep a rewrite to the ranks its variables were certified for."""
    lhs_allowed: dict = {}
    lhs_required: dict = {}
    rhs_allowed: dict = {}
    rhs_required: dict = {}
    _occurrences(lhs, None, lhs_allowed, lhs_required)
    _occurrences(rhs, None, rhs_allowed, rhs_required)
    facts = []
    for name in sorted(lhs_allowed):
        certified = set(rule.var_ranks.get(name, ()))
        la, ra = lhs_allowed.get(name), rhs_allowed.get(name)
        checks = []
        if la is None and ra is None:
            # every rank the rule does not name is carried through; forbid the named ones it was not checked for
            checks += [f'(set-not-contains ?r_{name} "{r}")' for r in sorted(rule.universe - certified)]
        elif la is not None:
            checks += [f'(set-not-contains ?r_{name} "{r}")' for r in sorted(set(la) - certified)]
        else:
            checks.append(f"(= (set-diff ?r_{name} {rank_set(sorted(certified))}) (set-empty))")
        needs = rhs_required.get(name, set()) - lhs_required.get(name, set())
        checks += [f'(set-contains ?r_{name} "{r}")' for r in sorted(needs)]
        if checks:
            facts.append(f"(= ?r_{name} (ranks {var(name)}))")
            facts.extend(checks)
        facts.append(f"(finite {var(name)})")
    return facts


def rewrite_text(rule: CertifiedRule, tiles: dict[tuple[str, str], int] | None = None) -> list[str]:
    """The egglog rewrite(s) of one certified rule: guarded, in the `certified` ruleset, named."""
    out = []
    for name, lhs, rhs in rule.directions():
        bound_tiles = {n.tiles for n in ir.walk(lhs) if isinstance(n, ir.Split) and isinstance(n.tiles, str)}
        rhs = _fix_tiles(rhs, bound_tiles, tiles or {})
        printer = Printer(fuse=False, var_prefix="?", default_tiles=DEFAULT_TILES)
        var = printer.var
        facts = guards(rule, lhs, rhs, var)
        when = f" :when ({' '.join(facts)})" if facts else ""
        escaped = name.replace('"', "'")
        out.append(f"(rewrite {printer.expr(lhs)} {printer.expr(rhs)}{when} :ruleset {RULESET} :name \"{escaped}\")")
    return out


def _fix_tiles(e: ir.Expr, bound: set, tiles: dict) -> ir.Expr:
    """A tile count that the left side does not bind (the literal `4` of split-max, or a variable only the right
    side names) becomes the program's tile count: the checker sweeps every tile count, so a certificate does not
    depend on the number written (README, "Tiling")."""
    from dataclasses import replace

    match e:
        case ir.Split(tiles=t) if (isinstance(t, str) and t not in bound) or t is None:
            return replace(e, tiles=tiles.get((e.outer, e.inner), DEFAULT_TILES), arg=_fix_tiles(e.arg, bound, tiles))
        case ir.Split(tiles=t) if isinstance(t, int):
            return replace(e, tiles=tiles.get((e.outer, e.inner), t), arg=_fix_tiles(e.arg, bound, tiles))
        case ir.Map(args=args):
            return replace(e, args=tuple(_fix_tiles(a, bound, tiles) for a in args))
        case ir.Reduce() | ir.Split() | ir.Unsplit() | ir.Last():
            return replace(e, arg=_fix_tiles(e.arg, bound, tiles))
        case ir.Scan():
            return replace(e, init=_fix_tiles(e.init, bound, tiles), body=_fix_tiles(e.body, bound, tiles))
        case ir.Shift():
            return replace(e, arg=_fix_tiles(e.arg, bound, tiles), init=_fix_tiles(e.init, bound, tiles))
    return e


def rules_operators(rules: list[CertifiedRule]) -> set[str]:
    return operators_in([e for r in rules for e in (r.lhs, r.rhs)])


def export_text(statuses: list[RuleStatus], rules_dir: str, only: str | None = None) -> str:
    """The egglog program of the certified rules: prelude, ranks analysis, one guarded rewrite per rule."""
    rules = [s.rule for s in statuses if s.rule is not None and (only is None or s.name == only)]
    lines = [
        f"; Certified rules exported by `verify export` from {rules_dir}: {len(rules)} rule(s), each CERTIFIED by",
        "; the checker just now. The comment above a rule names its certificate: sha256 of the rule's source text",
        "; and the checker's encoding version, and the bound it was certified at.",
        "; Pattern variables are ?x. A :when clause keeps a rule to the ranks it was certified for and to finite",
        "; values (the checker assumes finite reals), through the analyses below; seed a program's inputs, e.g.",
        '; (set (ranks (CreateTensor "Q")) (set-of "e" "p")) (finite (CreateTensor "Q")).',
        f"; Run: (run-schedule (repeat N (seq (saturate (run {ANALYSIS})) (run {RULESET})))).",
        "",
        prelude(rules_operators(rules)),
        analysis_rules(rules_operators(rules)),
    ]
    for rule in rules:
        where = f"{rule.file}:{rule.line}" if rule.line else rule.file
        lines.append(f"; {rule.name} ({where}): {rule.certificate()}")
        lines.extend(f"; warning: {w}" for w in rule.warnings)
        lines.extend(rewrite_text(rule))
        lines.append("")
    skipped = [s for s in statuses if s.rule is None and (only is None or s.name == only)]
    if skipped:
        lines.append("; not exported:")
        for s in skipped:
            why = s.reason or s.verdict
            lines.append(f";   {s.name} ({s.file}:{s.line or ''}): {why}")
    return "\n".join(lines).rstrip() + "\n"


# -- saturation ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Schedule:
    iterations: int = 12
    node_limit: int = 20_000
    time_limit: float = 20.0


@dataclass
class Saturation:
    egraph: object
    rows: int
    iterations: int
    seconds: float
    stop: str                               # saturated | iteration limit | node limit | time limit
    matches: dict[str, int] = field(default_factory=dict)


def program_tiles(program: ir.Program) -> dict[tuple[str, str], int]:
    tiles: dict[tuple[str, str], int] = {}
    for binding in program.bindings.values():
        for node in ir.walk(binding.expr):
            if isinstance(node, ir.Split) and isinstance(node.tiles, int):
                tiles.setdefault((node.outer, node.inner), node.tiles)
    return tiles


def program_egglog(program: ir.Program, tiles: dict, prefix: str = "$__") -> tuple[str, dict[str, str]]:
    """The program's `let`s as egglog globals (`$NAME`), and the seeds of the ranks of its inputs."""
    names = {name: f"{prefix}{name}" for name in program.bindings}
    fixed = {name: ir.Binding(name, _fix_tiles(b.expr, set(), tiles), b.line) for name, b in program.bindings.items()}
    printer = Printer(fuse=False, names=names, default_tiles=DEFAULT_TILES)
    lines = [f"(let {names[name]} {printer.expr(b.expr)})" for name, b in fixed.items()]
    seen = set()
    for b in fixed.values():
        for node in ir.walk(b.expr):
            if isinstance(node, ir.Input) and node not in seen:
                seen.add(node)
                term = f'(CreateTensor "{input_text(node)}")'
                lines.append(f"(set (ranks {term}) {rank_set(node.ranks)})")
                lines.append(f"({'extended' if getattr(node, 'kind', 'real') == 'mask' else 'finite'} {term})")
    return "\n".join(lines) + "\n", names


def _run_schedule(egraph, schedule: Schedule, start: float, done=None):
    """Alternate the analyses to a fixpoint with one round of the certified rules, until saturation, a limit
    of `schedule`, or `done()` (checked before the first round and after each).
    Returns (iterations, why it stopped, rows, matches per rule, whether done() held)."""
    iterations, stop, rows = 0, "iteration limit", 0
    matches: dict[str, int] = {}
    step = f"(run-schedule (saturate (run {ANALYSIS})))\n(run {RULESET} 1)\n(print-size)"
    if done is not None and done():
        return iterations, "done", rows, matches, True
    while iterations < schedule.iterations:
        outputs = run_text(egraph, step, "<schedule>")
        iterations += 1
        report = outputs[1].report
        for rule, count in report.num_matches_per_rule.items():
            matches[rule] = matches.get(rule, 0) + count
        rows = sum(n for _, n in outputs[2].sizes)
        if done is not None and done():
            return iterations, "done", rows, matches, True
        if not report.updated:
            stop = "saturated"
            break
        if rows >= schedule.node_limit:
            stop = "node limit"
            break
        if time.monotonic() - start > schedule.time_limit:
            stop = "time limit"
            break
    return iterations, stop, rows, matches, False


def saturate(program: ir.Program, rules: list[CertifiedRule],
             schedule: Schedule = Schedule()) -> tuple[Saturation, dict[str, str]]:
    tiles = program_tiles(program)
    ops = operators_in([b.expr for b in program.bindings.values()]) | rules_operators(rules)
    rules_text = "\n".join(t for r in rules for t in rewrite_text(r, tiles))
    body, names = program_egglog(program, tiles)
    egraph = new_egraph()
    start = time.monotonic()
    run_text(egraph, prelude(ops) + analysis_rules(ops) + rules_text + "\n" + body, "<optimize>")
    iterations, stop, rows, matches, _ = _run_schedule(egraph, schedule, start)
    outputs = run_text(egraph, f"(run-schedule (saturate (run {ANALYSIS})))\n(print-size)", "<schedule>")
    rows = sum(n for _, n in outputs[1].sizes)
    return Saturation(egraph, rows, iterations, time.monotonic() - start, stop, matches), names


def certify_named(rules_dir: str | Path, names, options=None) -> dict[str, tuple[RuleStatus, object]]:
    """Check the rules named `names` (as `verify check RULES_DIR` names them) with the driver now, each alone;
    name -> (its RuleStatus, with a CertifiedRule when certified and usable as a rewrite; the driver's Result).
    Names that no rule under `rules_dir` has are left out. Parses in this process (see `connect`)."""

    wanted = set(names)
    claims, errors, _notes = collect([str(rules_dir)])
    if errors:
        raise errors[0]
    out: dict[str, tuple[RuleStatus, object]] = {}
    sources: dict[str, object] = {}
    first: dict[str, object] = {}
    for claim in claims:
        if claim.name not in wanted:
            continue
        if claim.name in first:        # which one a step means would depend on file order: refuse
            other = first[claim.name]
            raise UsageError(f"rule name '{claim.name}' is ambiguous under {rules_dir}: it names the rule at "
                             f"{other.file}:{other.line} and the one at {claim.file}:{claim.line}",
                             Location(claim.file, claim.line), "give the rules distinct names")
        first[claim.name] = claim
        result = check_claim(claim, options or Options())
        status = RuleStatus(claim.name, claim.file, claim.line, result.verdict.value, result.detail or result.method)
        out[claim.name] = (status, result)
        if status.verdict == "CERTIFIED":
            _as_rewrite(claim, result, status, sources)
    return out


def connect(before: ir.Program, after: ir.Program, rules: list[CertifiedRule],
            schedule: Schedule = Schedule()) -> tuple[bool, Saturation]:
    """Do `rules` rewrite `before`'s output into `after`'s? Both programs go into one e-graph (their `let`s as
    `$__NAME` and `$__to__NAME`); it is saturated as in `saturate`, and after every iteration egglog checks
    whether the two outputs share an e-class. Returns (connected, the saturation; its stop is "connected"
    when they do). Every rewrite is a certified equality, so a shared e-class means equal outputs.

    Runs egglog in this process: egglog's parser can deadlock in a forked child once the parent used it."""
    b = _egglog()
    tiles = {**program_tiles(after), **program_tiles(before)}
    exprs = [x.expr for p in (before, after) for x in p.bindings.values()]
    ops = operators_in(exprs) | rules_operators(rules)
    rules_text = "\n".join(t for r in rules for t in rewrite_text(r, tiles))
    body, names = program_egglog(before, tiles)
    after_body, to_names = program_egglog(after, tiles, prefix="$__to__")
    egraph = new_egraph()
    start = time.monotonic()
    run_text(egraph, prelude(ops) + analysis_rules(ops) + rules_text + "\n" + body + after_body,
             "<connect>")
    same = f"(check (= {names[before.outputs[0][0]]} {to_names[after.outputs[0][0]]}))"

    def connected() -> bool:
        try:
            egraph.run_program(*egraph.parse_program(same))
            return True
        except b.EggSmolError:
            return False

    iterations, stop, rows, matches, found = _run_schedule(egraph, schedule, start, done=connected)
    if not rows:
        rows = sum(n for _, n in run_text(egraph, "(print-size)", "<schedule>")[0].sizes)
    return found, Saturation(egraph, rows, iterations, time.monotonic() - start, "connected" if found else stop,
                             matches)


# -- the e-graph in Python ---------------------------------------------------------------------------------------------

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


_OPS: dict[str, object] = {}


def _op(name: str):
    if name not in _OPS:
        _OPS[name] = parse_operator(name)
    return _OPS[name]


def enode_ir(node: ENode, kids: list[ir.Expr]) -> ir.Expr:
    """One e-node as an IR node over the IR of its Tensor children."""
    op = _op(node.op)
    it = iter(kids)
    match op:
        case LeafOp(kind="CreateTensor"):
            from .notation import parse_tensor_kind

            spec, kind = parse_tensor_kind(node.args[0])
            name, ranks = parse_tensor_name(spec)
            return ir.Input(name, ranks, None, kind) if kind != "real" else ir.Input(name, ranks)
        case LeafOp(kind="Const"):
            return ir.Const(float(node.args[0]))
        case MapOp(op=mop, space=space, reduce=None):
            return ir.Map(mop, space, tuple(kids))
        case MapOp(op=mop, space=space, reduce=red):
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


def enode_kind(node: ENode) -> str:
    op = _op(node.op)
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
        case ScanOp(kind=kind):
            return kind
    raise AssertionError(node.op)


# -- extraction --------------------------------------------------------------------------------------------------------

@dataclass
class Candidate:
    program: ir.Program
    analysis: Analysis
    key: tuple
    origin: str


class _RankInfo:
    __slots__ = ("rank",)

    def __init__(self, rank):
        self.rank = rank


class Extractor:
    """Candidates from tree-cost proxies, improved by local search, ranked by the exact DAG cost."""

    def __init__(self, graph: PyEGraph, roots: dict[str, int], cost: str = "passes", forbid=(),
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
                op = _op(n.op)
                if isinstance(op, (SplitOp, UnsplitOp)):
                    splits.add((op.rank, op.outer, op.inner))
        self.fiber = Fiber.of(sorted(splits), fiber_rank)

    def allowed(self, node: ENode) -> bool:
        return not any(node.op.startswith(prefix) for prefix in self.forbid)

    # proxies -----------------------------------------------------------------------------------------------
    def space(self, node: ENode, cls: int) -> tuple:
        op = _op(node.op)
        if isinstance(op, MapOp):
            return op.space
        if isinstance(op, LeafOp) and op.kind == "CreateTensor":
            return enode_ir(node, []).ranks
        if isinstance(op, (ReduceOp, ScanOp)) and node.children:
            return tuple(self.graph.ranks.get(node.children[0], ()))
        return tuple(self.graph.ranks.get(cls, ()))

    def proxy_passes(self, cls, node, kids):
        kind = enode_kind(node)
        op = _op(node.op)
        info = _RankInfo(getattr(op, "rank", None))
        space = self.space(node, cls)
        t = node_time(kind, info, space, [k[1] for k in kids], self.fiber)
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

    def evaluate(self, selection: dict[int, ENode], origin: str) -> Candidate | None:
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
        if self.cost == "memory":
            rank = (a.memory_value, a.passes, a.einsums, a.untiled)
        else:
            rank = (a.passes, a.memory_value, a.einsums, a.untiled)
        cand = Candidate(program, a, rank, origin)
        self.memo[key] = cand
        return cand

    def run(self) -> tuple[Candidate, list[Candidate]]:
        proxies = [("passes proxy", self.proxy_passes), ("size proxy", self.proxy_size),
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

BIND_KINDS = {"input", "reduce", "scan", "last", "shift", "split", "unsplit"}


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
        return parse_tensor_name(node.args[0].split(":")[0])[0]
    if kind == "scan":
        return node.args[0]
    if kind in ("last", "shift") and enode_kind(kids[0]) == "scan":
        return f"{kids[0].args[0]}_{'last' if kind == 'last' else 'prev'}"
    if kind == "split":
        child = names.get(node.children[0])
        return ("B" + child if enode_kind(kids[0]) == "input" else f"{child}_t") if child else "TILE"
    op = _op(node.op)
    if isinstance(op, ReduceOp):
        inner = _op(kids[0].op)
        head = "DOT" if isinstance(inner, MapOp) and inner.op == "mul" and kids[0] is not None else (
            "MAX" if op.op == "max" else "SUM")
        return f"{head}_{op.rank}"
    if isinstance(op, MapOp):
        return op.op.upper()
    return "T"


# -- optimize ----------------------------------------------------------------------------------------------------------

@dataclass
class Optimized:
    input: Analysis
    output: Analysis
    program: ir.Program
    verified: bool
    verdicts: list                      # driver Results of the translation validation, one per output
    saturation: Saturation
    rules: list[RuleStatus]
    candidates: int
    evaluations: int
    cost: str
    forbid: tuple[str, ...]
    extract_seconds: float = 0.0


COSTS = ("passes", "memory")


def optimize(program: ir.Program, rules: list[RuleStatus], cost: str = "passes", forbid=(),
             schedule: Schedule = Schedule(), reference=None, fiber_rank: str = "m", validate=True,
             options=None) -> Optimized:
    if cost not in COSTS:
        raise UsageError(f"unknown cost '{cost}'", hint=f"costs: {', '.join(COSTS)}")
    if not program.outputs:
        raise UsageError(f"{program.file} has no (extract NAME): nothing to optimize")
    from .shapes import program_ranks

    program_ranks(program)
    certified = [s.rule for s in rules if s.rule is not None]
    sat, names = saturate(program, certified, schedule)
    start = time.monotonic()
    graph = PyEGraph(sat.egraph)
    roots = {name: graph.globals[names[name]] for name in program.output_names()}
    class_names: dict[int, str] = {}
    for name in program.bindings:
        cls = graph.globals.get(names[name])
        if cls is not None and cls not in class_names:
            class_names[cls] = name
    extractor = Extractor(graph, roots, cost, forbid, class_names, reference, fiber_rank)
    best, candidates = extractor.run()
    out_program = best.program
    out_program.file = f"{Path(program.file).stem}.optimized.egg"
    extract_seconds = time.monotonic() - start
    verdicts = validate_translation(program, out_program, options) if validate else []
    verified = bool(verdicts) and all(r.verdict.value == "CERTIFIED" for r in verdicts)
    if validate and not verified and same_computation(program, out_program):
        verified = True                   # nothing was rewritten: the output is the input's own DAG
        for r in verdicts:
            r.detail = (f"{r.detail}; the extracted program is the input's own computation "
                        "(syntactically identical DAG), so it is equal without a proof").lstrip("; ")
    return Optimized(analyze(program, fiber_rank, reference), best.analysis, out_program, verified, verdicts, sat,
                     rules, len(candidates), extractor.evaluations, cost, tuple(forbid), extract_seconds)


def _canonical_outputs(program: ir.Program) -> tuple:
    memo: dict[str, object] = {}

    def canon(e: ir.Expr):
        match e:
            case ir.Ref(name=name):
                if name not in memo:
                    memo[name] = canon(program.bindings[name].expr)
                return memo[name]
            case ir.Map(op=op, space=space, args=args):
                return ("map", op, space, tuple(canon(a) for a in args))
            case ir.Reduce(op=op, rank=rank, arg=arg):
                return ("reduce", op, rank, canon(arg))
            case ir.Split(rank=r, outer=o, inner=i, arg=arg):
                return ("split", r, o, i, canon(arg))
            case ir.Unsplit(outer=o, inner=i, rank=r, arg=arg):
                return ("unsplit", o, i, r, canon(arg))
            case ir.Scan(rank=r, name=n, init=init, body=body):
                return ("scan", r, n, canon(init), canon(body))
            case ir.Shift(rank=r, arg=arg, init=init):
                return ("shift", r, canon(arg), canon(init))
            case ir.Last(rank=r, arg=arg):
                return ("last", r, canon(arg))
            case ir.Input(name=name, ranks=ranks):
                return ("input", name, ranks, getattr(e, "kind", "real"))
            case ir.Const(value=v):
                return ("const", const_text(v))
            case ir.Prev(rank=r, name=n):
                return ("prev", r, n)
        raise TypeError(e)

    return tuple(canon(ir.Ref(name)) for name in program.output_names())


def same_computation(a: ir.Program, b: ir.Program) -> bool:
    """The same outputs computed by the same DAG (names and tile counts aside)."""
    return _canonical_outputs(a) == _canonical_outputs(b)


def validate_translation(before: ir.Program, after: ir.Program, options=None) -> list:
    """Translation validation: the extracted program equals the input, output by output (paired by position;
    a different number of outputs is an error), by the checker."""
    from .claims import equiv_claims

    claims = equiv_claims(before, after, name=f"{Path(before.file).name} == optimized")
    return [check_claim(claim, options or Options()) for claim in claims]


# -- verify run --------------------------------------------------------------------------------------------------------

OPERATOR_RE = re.compile(r"\(\s*(CreateTensor|Const|M_[a-z]+_[a-z0-9]+(?:_R_[a-z]+_[a-z0-9]+)?|R_[a-z]+_[a-z0-9]+|"
                         r"T_split_[a-z0-9]+_[a-z0-9]+|T_unsplit_[a-z0-9]+_[a-z0-9]+|S_(?:scan|prev|shift|last)_[a-z0-9]+)"
                         r"(?=[\s()])")
DECLARES_RE = re.compile(r"\(\s*(datatype|datatype\*|constructor|sort)\s")


@dataclass
class RunOutput:
    kind: str                       # extract | variants | other
    text: str
    terms: list[str] = field(default_factory=list)


def run_program(text: str, file: str) -> tuple[list[RunOutput], bool]:
    """Run a .egg program through egglog like the egglog binary; the shared prelude is added when the file
    declares no datatype. Returns the outputs and whether the prelude was added."""
    egraph = new_egraph()
    added = False
    if not DECLARES_RE.search(_strip_comments(text)):
        names = set()
        for name in OPERATOR_RE.findall(_strip_comments(text)):
            try:
                parse_operator(name)
            except VerifyError:
                continue
            names.add(name)
        run_text(egraph, prelude(names | {"CreateTensor", "Const"}), "<prelude>")
        added = True
    outputs = []
    for out in run_text(egraph, text, file):
        kind = type(out).__name__
        if kind == "ExtractBest":
            term = out.termdag.to_string(out.term)
            outputs.append(RunOutput("extract", term, [term]))
        elif kind == "ExtractVariants":
            terms = [out.termdag.to_string(t) for t in out.terms]
            outputs.append(RunOutput("variants", str(out).strip(), terms))
        elif kind == "RunScheduleOutput":
            continue
        else:
            outputs.append(RunOutput("other", str(out).strip()))
    return outputs, added


@dataclass
class RunCheck:
    """What `verify run` adds to egglog's output for a file with rules: every rule's verdict, and whether each
    extracted term equals the file's own program output (translation validation)."""

    results: list = field(default_factory=list)           # Result per rule claim
    errors: list = field(default_factory=list)            # located errors (unreadable rules, ...)
    notes: list[str] = field(default_factory=list)
    validations: list[tuple[str, object]] = field(default_factory=list)   # (output name, Result or reason)

    @property
    def exit_code(self) -> int:
        from .verdict import Verdict

        verdicts = ([r.verdict for r in self.results]
                    + [v.verdict for _, v in self.validations if not isinstance(v, str)])
        if self.errors or Verdict.ERROR in verdicts:
            return 2
        if any(v is not Verdict.CERTIFIED for v in verdicts) or any(isinstance(v, str) for _, v in self.validations):
            return 1
        return 0


def check_run(path: str, outputs: list[RunOutput], options=None) -> RunCheck | None:
    """For `verify run FILE`: None when the file has no rules (a plain program: egglog's output is all); else
    the verdict of every rule of the file and, for every `(extract NAME)` of the file's program, whether the
    term egglog extracted equals the program's NAME (checked like `verify equiv`)."""
    from .claims import equiv_claim
    from .gate import check_claims
    from .reader import read_file, read_text

    options = options or Options()
    source = read_file(path)
    if not source.rules and not source.rule_errors and not source.notices:
        return None
    out = RunCheck()
    out.errors.extend(source.rule_errors)
    out.notes.extend(f"{path}:{line}: {text}" if line else f"{path}: {text}" for line, text in source.notices)
    claims = claims_of(source, options.strict_shapes, out.errors)
    extracted = [o for o in outputs if o.kind == "extract"]
    pairs = []
    for (name, _line), output in zip(source.program.outputs, extracted):
        try:
            term = read_text(f"(let {name} {output.terms[0]})\n(extract {name})\n", "<extracted>",
                             any_sizes=source.declared is not None).program
            before = ir.Program(source.program.file, source.program.bindings, [(name, None)])
            pairs.append((name, equiv_claim(before, term, name=f"{Path(path).name}: extracted {name} == input {name}")))
        except VerifyError as exc:
            out.validations.append((name, f"not validated: the extracted term cannot be read ({exc.cause})"))
    results = check_claims(claims + [claim for _, claim in pairs], options)
    out.results = results[:len(claims)]
    out.validations = [(name, result) for (name, _), result in zip(pairs, results[len(claims):])] + out.validations
    return out


def _strip_comments(text: str) -> str:
    return re.sub(r";[^\n]*", "", text)


def term_program(term: str) -> tuple[str, Analysis] | None:
    """An extracted term as a program with its shared subterms as `let`s, and its passes and memory (None if
    it is not a whole cascade the reader accepts)."""
    from .printer import program_text
    from .reader import read_text

    try:
        source = read_text(f"(let X {term})\n(extract X)\n", "<extracted>")
        shared = share(source.program)
        return program_text(shared), analyze(shared)
    except VerifyError:
        return None


def share(program: ir.Program) -> ir.Program:
    """The same computation with every subterm that occurs more than once (and every input) bound once."""
    from dataclasses import replace

    from .cost import Dag

    dag = Dag(program)
    free = dag.scan_states_read()       # nodes inside a scan's step
    bound = {n.id for n in dag.nodes
             if not free[n.id] and n.kind not in ("const", "prev")
             and (n.kind == "input" or n.output or len(dag.consumers[n.id]) >= 2)}
    names: dict[int, str] = {}
    taken: set[str] = set()
    for n in dag.nodes:
        if n.id in bound and n.name and n.name not in taken:
            names[n.id] = n.name
            taken.add(n.name)
    counter = 1
    for n in dag.nodes:
        if n.id in bound and n.id not in names:
            base = n.expr.name if n.kind == "input" else f"T{counter}"
            while base in taken:
                counter += 1
                base = f"T{counter}"
            names[n.id] = base
            taken.add(base)
    built: dict[int, ir.Expr] = {}

    def ref(i: int) -> ir.Expr:
        return ir.Ref(names[i]) if i in bound else build(i)

    def build(i: int) -> ir.Expr:
        if i not in built:
            n = dag.nodes[i]
            e = n.expr
            kids = [ref(c) for c in n.children]
            match e:
                case ir.Map():
                    built[i] = replace(e, args=tuple(kids))
                case ir.Reduce() | ir.Split() | ir.Unsplit() | ir.Last():
                    built[i] = replace(e, arg=kids[0])
                case ir.Scan():
                    built[i] = replace(e, init=kids[0], body=kids[1])
                case ir.Shift():
                    built[i] = replace(e, arg=kids[0], init=kids[1])
                case _:
                    built[i] = e
        return built[i]

    bindings = {}
    order = [n.id for n in dag.nodes if n.kind == "input"] + [n.id for n in dag.nodes if n.kind != "input"]
    for i in order:
        if i in bound:
            bindings[names[i]] = ir.Binding(names[i], build(i))
    outputs = [(names[i], None) for i in dag.outputs]
    return ir.Program(program.file, bindings, outputs)


__all__ = ["CertifiedRule", "RuleStatus", "certify_rules", "certify_named", "connect", "export_text", "rewrite_text",
           "prelude", "analysis_rules", "Schedule", "saturate", "PyEGraph", "Extractor", "optimize", "Optimized",
           "validate_translation", "run_program", "term_program", "share", "COSTS"]
