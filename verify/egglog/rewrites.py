"""Certified rules as egglog rewrites.

A certified rule holds for pattern variables of the ranks the checker gave them (the largest consistent ones;
narrower is broadcasting) and for every rank the rule does not name. egglog matches terms, not ranks, so every
rewrite carries a `:when` guard over the `ranks` analysis (`prelude.analysis_rules`) that keeps it to those
ranks, and requires the ranks that a split, reduce, scan operator or unsplit of the right side needs from a
variable. The checker certifies rules for finite real pattern variables, so the guard also asks `(finite ?x)`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .. import ir
from ..claims import ClaimKind
from ..printer import Printer
from .prelude import RULESET, operators_in, rank_set

DEFAULT_TILES = 4


def pattern_variables(e: ir.Expr) -> set[str]:
    return {n.name for n in ir.walk(e) if isinstance(n, ir.Var)}


@dataclass
class CertifiedRule:
    """A rule (or one direction of a birewrite) that the checker CERTIFIED, ready to become an egglog rewrite.
    Pattern variables are `ir.Var`s; a split's tile count may be a pattern variable (a `str`)."""

    name: str
    file: str
    line: int | None
    kind: ClaimKind                            # a rule of a rule file, or a chain step between two programs
    lhs: ir.Expr
    rhs: ir.Expr
    var_ranks: dict[str, tuple[str, ...]]
    universe: frozenset
    content_hash: str
    encoding: str                              # the checker's encoding version the certificate was made with
    bound: str
    method: str
    bidirectional: bool = False
    description: str = ""
    warnings: tuple[str, ...] = ()           # e.g. "equal over the reals, but exp overflows in float32"

    def directions(self) -> list[tuple[str, ir.Expr, ir.Expr]]:
        out = [(self.name, self.lhs, self.rhs)]
        if self.bidirectional:
            out.append((f"{self.name} (reverse)", self.rhs, self.lhs))
        return [(n, l, r) for n, l, r in out
                if not isinstance(l, ir.Var) and pattern_variables(r) <= pattern_variables(l)]

    def certificate(self) -> str:
        return (f"certificate sha256:{self.content_hash} encoding {self.encoding} bound {self.bound} "
                f"method {self.method}")


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
        rhs = fix_tiles(rhs, bound_tiles, tiles or {})
        printer = Printer(fuse=False, var_prefix="?", default_tiles=DEFAULT_TILES)
        var = printer.var
        facts = guards(rule, lhs, rhs, var)
        when = f" :when ({' '.join(facts)})" if facts else ""
        escaped = name.replace('"', "'")
        out.append(f"(rewrite {printer.expr(lhs)} {printer.expr(rhs)}{when} :ruleset {RULESET} :name \"{escaped}\")")
    return out


def fix_tiles(e: ir.Expr, bound: set, tiles: dict) -> ir.Expr:
    """A tile count that the left side does not bind (the literal `4` of split-max, or a variable only the right
    side names) becomes the program's tile count: the checker sweeps every tile count, so a certificate does not
    depend on the number written (README, "Tiling")."""

    def fix(node: ir.Expr) -> ir.Expr:
        match node:
            case ir.Split(tiles=t) if (isinstance(t, str) and t not in bound) or t is None:
                return replace(node, tiles=tiles.get((node.outer, node.inner), DEFAULT_TILES))
            case ir.Split(tiles=int() as t):
                return replace(node, tiles=tiles.get((node.outer, node.inner), t))
        return node

    return ir.map_post(fix, e)


def rules_operators(rules: list[CertifiedRule]) -> set[str]:
    return operators_in([e for r in rules for e in (r.lhs, r.rhs)])

