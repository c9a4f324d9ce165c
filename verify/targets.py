"""Claims from what a command names: every rule of a rule file and every step of a chain file (`collect`),
with the located user errors of those that cannot be read, and the claims one `FILE`, `DIR` or `FILE:RULE`
target names (`select`). Both take the run's `Options`, so a flag such as `--strict-shapes` reaches every
command that reads files. Nothing here is checked or decided; the gate checks what this reads.

A chain step `by = "rules"` becomes a claim citing its rules (`Claim.by_rules`): `lhs` (the `from` program)
rewrites to `rhs` (the `to` program) with the named rules, which must exist under its rules directory;
rules_step.py gathers the evidence and decides the step.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from pathlib import Path

from .chainfile import read_steps
from .claims import Claim, RulesCitation, equiv_claims, rule_claim, with_assumptions, with_assumptions_each
from .errors import Location, ParseError, UsageError, VerifyError, did_you_mean
from .induction import GROUPS
from .options import Options
from .reader import SourceFile, expand_paths, read_file
from .shapes import program_ranks


def read_chain(path: str | Path, options: Options | None = None) -> list[Claim]:
    """One claim per step and output of a chain file (outputs paired by position, see `claims.equiv_claims`)."""
    path = Path(path)
    claims: list[Claim] = []
    options = options or Options()
    for step in read_steps(path, lambda directory, chain, line: known_rules(directory, chain, line, options)):
        name, where = step.name, step.where
        for group in step.unbounded:
            if group not in GROUPS:
                raise ParseError(f"step '{name}': unknown induction group {group!r}", where,
                                 f"groups: {', '.join(repr(g) for g in GROUPS)}")
        if step.rules and step.unbounded:
            raise ParseError(f"step '{name}': 'unbounded' lifts equivalence steps only", where,
                             'a by = "rules" step holds at the weakest bound of its rules')
        try:
            step_claims = equiv_claims(step.before, step.after, name=name, kind="step", file=str(path),
                                       line=step.line, bound=step.bound, unbounded=step.unbounded)
        except VerifyError as exc:
            raise exc.located(where) from None
        if step.rules:
            cited = RulesCitation(step.rules, step.rules_dir)
            step_claims = [dataclasses.replace(c, by_rules=cited) for c in step_claims]
        claims.extend(with_assumptions_each(step_claims, step.assume, where))
    return claims


_COLLECTING = threading.local()    # rules directories being read in this thread (a rules dir must not cite itself)


def known_rules(directory: Path, chain: Path, line: int | None, options: Options) -> dict[str, str]:
    """rule name -> where it is written (file:line), for the rules a chain file's steps may name."""
    key = str(directory.resolve())
    active: set[str] = getattr(_COLLECTING, "dirs", set())
    if key in active:
        raise ParseError(f"a by = \"rules\" step cites the rules directory {directory}, which "
                         "contains this chain: a rule cannot be justified by the rules it belongs to",
                         Location(str(chain), line))
    _COLLECTING.dirs = active | {key}
    try:
        claims, errors, _notes = collect([str(directory)], options)
    finally:
        _COLLECTING.dirs = active
    if errors:
        raise errors[0]
    names: dict[str, str] = {}
    for c in claims:
        names.setdefault(c.name, str(c.location))
    return names


def claims_of(source: SourceFile, options: Options | None = None, errors: list | None = None) -> list[Claim]:
    """The claims of a file's rules. With `errors`, a rule whose claim cannot be built (ill-ranked, a bad
    assumption) is its own located error there and the other rules are still returned (per-rule isolation)."""
    out = []
    last = max((rule.line for rule in source.rules if rule.line is not None), default=None)
    for text, line in source.assumptions:
        if source.rules and (last is None or line > last):
            raise ParseError(f"`; assume: {text}` applies to no rule: it covers only the rules below it",
                             Location(source.path, line), "move it above the rules it is a precondition of")
    for rule in source.rules:
        try:
            claim = rule_claim(rule, strict=(options is not None and options.strict_shapes) or source.strict_shapes)
            for text, line in assumptions_above(source.assumptions, rule):
                claim = with_assumptions(claim, [text], Location(source.path, line))
        except VerifyError as exc:
            if errors is None:
                raise
            exc.located(Location(source.path, rule.line))
            errors.append(exc.for_rule(rule.name))
            continue
        out.append(claim)
    return out


def assumptions_above(assumptions, rule) -> list[tuple[str, int]]:
    """The scope of `; assume:` in a rule file: every rule *below* the directive (a rule above it is checked
    without it). A rule below it that has no such mask or rank is refused with a located error
    (`with_assumptions`), never checked as if the directive were not there."""
    return [(text, line) for text, line in assumptions if rule.line is not None and line < rule.line]


def collect(paths, options: Options) -> tuple[list[Claim], list[VerifyError], list[str]]:
    """Claims from every file (rules) and chain file; user errors are collected, not raised. A rule that cannot
    be read or ranked is one error, located at the rule; the file's other rules are still collected. Rules
    with nothing to prove (naming rules, rules that only add terms) are notes."""
    claims: list[Claim] = []
    errors: list[VerifyError] = []
    notes: list[str] = []
    try:
        files = expand_paths(paths)
    except VerifyError as exc:
        return [], [exc], []
    for path in files:
        try:
            if path.suffix == ".toml":
                claims.extend(read_chain(path, options))
                continue
            source = read_file(path)
            errors.extend(source.rule_errors)
            notes.extend(f"{Location(str(path), line)}: {text}" for line, text in source.notices)
            found = claims_of(source, options, errors)
            if not found and not source.rules and not source.rule_errors and not source.notices:
                ranks = program_ranks(source.program)
                outs = ", ".join(f"{n}[{','.join(ranks[n])}]" for n in source.program.output_names())
                notes.append(f"{path}: program, {len(source.program.bindings)} bindings, outputs {outs or 'none'}")
            claims.extend(found)
        except VerifyError as exc:
            errors.append(exc)
    return claims, errors, notes


def builtin_rules() -> Path | None:
    """The shipped rule library: `share/verify/rules` under the installation's prefix (a wheel or a non-editable
    `pip install` puts it there, pyproject's data-files), else the checkout's `rules/` beside the package (an
    editable install, or running from the source tree)."""
    for where in (Path(sys.prefix) / "share" / "verify" / "rules", Path(__file__).resolve().parent.parent / "rules"):
        if where.is_dir() and any(where.glob("*.egg")):
            return where
    return None


def rule_paths(given: list[str] | None, default: str = "rules", flag: str = "--rules") -> list[str]:
    """The rule sources a command reads: paths, or `builtin` for the shipped library. Without `flag` the
    default `rules` is used where it exists, else the library; a path that does not exist names the flag."""
    if not given:
        if Path(default).exists():
            return [default]
        library = builtin_rules()
        if library is None:
            raise UsageError(f"no rules given and no ./{default} here", hint=f"name rule files or directories with "
                             f"{flag} PATH [PATH ...], or {flag} builtin for the shipped library")
        return [str(library)]
    out = []
    for path in given:
        if path == "builtin":
            library = builtin_rules()
            if library is None:
                raise UsageError(f"{flag} builtin: the shipped rule library is not installed",
                                 hint="reinstall verify (pip install verify) or name a rules directory")
            out.append(str(library))
        elif not Path(path).exists():
            raise UsageError(f"{flag} {path}: no such file or directory",
                             hint=f"{flag} takes rule files, directories, or builtin (the shipped library)")
        else:
            out.append(path)
    return out
def split_target(target: str, command: str = "check") -> tuple[str, str | None]:
    """`FILE[:RULE]` -> (file, rule or None). A rule name may itself contain ':' (e.g. `div-cancel:3`)."""
    if Path(target).exists():
        return target, None
    for i, ch in enumerate(target):
        if ch == ":" and Path(target[:i]).is_file():
            return target[:i], target[i + 1:] or None
    raise UsageError(f"no such file: {target.split(':')[0]}", hint=f"write verify {command} FILE or FILE:RULE")


def select(target: str, options: Options) -> list[Claim]:
    """The claims `FILE`, `DIR` or `FILE:RULE` names. A file's other bad rules do not stop a good one being named
    (per-rule isolation); naming a bad rule, or a whole file with one, raises its error. A hint names the
    command that ran (`options.command`)."""
    path, rule = split_target(target, options.command)
    claims, errors, _ = collect([path], options)
    if errors and rule is None:
        raise errors[0]
    own = [e for e in errors if rule is not None and e.rule == rule]
    if own:
        raise own[0]
    if not claims and errors:
        raise errors[0]
    if rule is None:
        if not claims:
            raise UsageError(f"{path} has no rules or chain steps to {options.command}")
        return claims
    chosen = [c for c in claims if c.name == rule or (rule.isdigit() and c.line == int(rule))]
    if not chosen:
        chosen = [c for c in claims if c.name.lower() == rule.lower()]
    if not chosen:
        names = [c.name for c in claims]
        raise UsageError(f"{path} has no rule or step named '{rule}'",
                         hint=did_you_mean(rule, names) or f"it has: {', '.join(names) or 'none'}")
    return chosen


def collect_targets(targets, options: Options) -> tuple[list[Claim], list[VerifyError], list[str]]:
    """`FILE`, `DIR` and `FILE:RULE` targets -> (claims, errors, notes). A path that exists (or names no rule)
    is collected on its own, so a missing one is one error, not the end of the run; a `FILE:RULE` naming
    nothing raises."""
    claims: list[Claim] = []
    errors: list[VerifyError] = []
    notes: list[str] = []
    for target in targets:
        if Path(target).exists() or ":" not in target:
            found, bad, said = collect([target], options)
            claims += found
            errors += bad
            notes += said
        else:
            claims += select(target, options)
    return claims, errors, notes
