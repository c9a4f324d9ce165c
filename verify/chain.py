"""Front end for derivation chains: `proofs/*.toml` files that list the steps from one program to the next.

    # proofs/chain.toml
    start = "attention.egg"           # the chain must begin here ...
    end = "attention_1pass.egg"       # ... and end here
    bound = "M1=8,M0=4,F=2"           # optional: the bound every step is checked at (--bound overrides per rank)
    assume = ["B unmasked along m"]   # optional, per chain or per step: preconditions on mask inputs
    [[step]]
    name = "3-pass -> 2-pass"
    from = "attention.egg"            # paths are relative to the chain file
    to = "attention_2pass.egg"
    by = "equivalence"                # whole-program equivalence of the extracted outputs
    unbounded = ["3pass=2pass (all M1, M0)"]   # optional: induction lemma groups (verify/induction.py) that
                                      # lift the bounded certificate to every tile count
    [[step]]
    name = "tile m"
    from = "attention_deferred.egg"
    to = "attention_tiled.egg"
    by = "rules"                      # justified by rewriting with certified rules ...
    rules = ["split-max", "split-sum"]   # ... named as `verify check RULES_DIR` names them
    # rules_dir = "../rules"          # optional, per chain: where the rules live (default: the nearest rules/
                                      # directory above the chain file)

Each step becomes one claim. The steps must connect: each `from` is the previous step's `to` or a program the
chain already reached, the first `from` is `start`, and `end` is reached.

A step `by = "rules"` (a `RulesStep`) is certified by `check_rules_step`: every named rule is CERTIFIED by the
checker now, and egglog, saturating both programs with exactly those rules, puts the two outputs in one
e-class. Rewriting with certified equalities preserves equality, so the step holds wherever every rule does:
its bound is the weakest of the rules' bounds. The whole-program equivalence is checked as well (translation
validation, recorded in `engines`); it can only refute the step, never certify it in place of the rules.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
import tomllib
from pathlib import Path

from .certified_rules import certify_named
from .claims import Claim, equiv_claims, with_assumptions_each
from .egglog import Schedule, connect
from .errors import Location, ParseError, VerifyError, did_you_mean
from .reader import read_file

STEP_KEYS = {"name", "from", "to", "by", "rules", "unbounded", "bound", "assume"}
JUSTIFICATIONS = ("equivalence", "rules")


@dataclasses.dataclass(frozen=True)
class RulesStep(Claim):
    """A chain step `by = "rules"`: `lhs` (the `from` program) rewrites to `rhs` (the `to` program) with the
    rules named `rules`, which live under `rules_dir`. The driver hands it to `check_rules_step`."""

    rules: tuple[str, ...] = ()
    rules_dir: str = "rules"


def _line_of(text: str, needle: str) -> int | None:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    return None


def _program_key(chain: Path, name: str) -> str:
    """A program named in a chain file, as the file it is (relative to the chain file, resolved)."""
    return str((chain.parent / name).resolve())


def read_chain(path: str | Path) -> list[Claim]:
    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        if line is None:  # Python < 3.14: the line is only in the message, "(at line 2, column 7)"
            m = re.search(r"at line (\d+)", str(exc))
            line = int(m.group(1)) if m else None
        raise ParseError(f"not a valid chain file: {exc}", Location(str(path), line)) from None
    steps = data.get("step")
    if not isinstance(steps, list) or not steps or not all(isinstance(step, dict) for step in steps):
        raise ParseError("a chain file needs at least one [[step]]", Location(str(path), 1))
    _check_types(path, text, data, None)
    for step in steps:
        _check_types(path, text, step, step.get("name"))
    # programs reached so far, by resolved path (another spelling of the same file is the same program)
    reached = {_program_key(path, data["start"]): data["start"]} if data.get("start") else {}
    rule_names = _RuleNames(path, text, data)
    claims = []
    named: dict[str, int | None] = {}
    headers = [i for i, row in enumerate(text.splitlines()) if row.strip().replace(" ", "") == "[[step]]"]
    for number, step in enumerate(steps, 1):
        name = step.get("name", f"step {number}")
        line = None
        if "name" in step:   # the line of this step's name (searched from its own [[step]] header)
            start = headers[number - 1] if len(headers) == len(steps) else 0
            found = _line_of("\n".join(text.splitlines()[start:]), f'"{name}"')
            line = found + start if found is not None else _line_of(text, f'"{name}"')
        where = Location(str(path), line)
        if name in named:
            raise ParseError(f"step name '{name}' is used twice (first at line {named[name]})", where,
                             "give every step its own name: results and certificates are named after it")
        named[name] = line
        unknown = set(step) - STEP_KEYS
        if unknown:
            raise ParseError(f"step '{name}': unknown key(s) {', '.join(sorted(unknown))}", where,
                             f"a step has {', '.join(sorted(STEP_KEYS))}")
        for key in ("from", "to"):
            if not isinstance(step.get(key), str):
                raise ParseError(f"step '{name}' needs '{key} = \"program.egg\"'", where)
        if reached and _program_key(path, step["from"]) not in reached:
            raise ParseError(f"step '{name}' starts from {step['from']}, which no earlier step reached", where,
                             f"reached so far: {', '.join(sorted(reached.values()))}")
        reached.setdefault(_program_key(path, step["from"]), step["from"])
        reached.setdefault(_program_key(path, step["to"]), step["to"])
        by = step.get("by", "equivalence")
        if by not in JUSTIFICATIONS:
            raise ParseError(f"step '{name}': unknown justification by = {by!r}", where,
                             'use by = "equivalence" or by = "rules"')
        rules: tuple[str, ...] = ()
        if by == "rules":
            rules = _step_rules(path, text, data, step, name, line, where, rule_names)
        elif "rules" in step:
            raise ParseError(f"step '{name}' names rules but is justified by = {by!r}", where,
                             'write by = "rules" to justify the step by those rules')
        try:
            before = read_file(path.parent / step["from"]).program
            after = read_file(path.parent / step["to"]).program
        except VerifyError as exc:
            raise exc.located(where) from None  # a missing program: say which chain step names it
        unbounded = step.get("unbounded", [])
        if isinstance(unbounded, str):
            unbounded = [unbounded]
        from .induction import GROUPS

        for group in unbounded:
            if group not in GROUPS:
                raise ParseError(f"step '{name}': unknown induction group {group!r}", where,
                                 f"groups: {', '.join(repr(g) for g in GROUPS)}")
        if rules and unbounded:
            raise ParseError(f"step '{name}': 'unbounded' lifts equivalence steps only", where,
                             'a by = "rules" step holds at the weakest bound of its rules')
        try:   # one claim per output, paired by position (see claims.equiv_claims)
            step_claims = equiv_claims(before, after, name=name, kind="step", file=str(path), line=line,
                                       bound=step.get("bound", data.get("bound")), unbounded=tuple(unbounded))
        except VerifyError as exc:
            raise exc.located(where) from None
        if rules:
            step_claims = [RulesStep(**{f.name: getattr(c, f.name) for f in dataclasses.fields(Claim)},
                                     rules=rules, rules_dir=str(rule_names.directory)) for c in step_claims]
        claims.extend(with_assumptions_each(step_claims, list(data.get("assume", [])) + list(step.get("assume", [])),
                                            where))
    if data.get("end") and _program_key(path, data["end"]) not in reached:
        raise ParseError(f"the chain never reaches its end {data['end']}", Location(str(path), _line_of(text, "end")))
    return claims


# What each key of a chain file holds: a string, or a list of strings ("a string" alone counts as a one-item
# list, as for `rules`). Anything else is a located error (a number would crash later; a string read as a list
# would be taken character by character).
_STRING_KEYS = ("start", "end", "bound", "rules_dir", "name", "from", "to", "by")
_LIST_KEYS = ("assume", "unbounded", "rules")


def _check_types(path: Path, text: str, table: dict, step: str | None) -> None:
    for key, value in table.items():
        where = Location(str(path), _line_of(text, f'"{step}"') if step is not None and isinstance(step, str)
                         else _line_of(text, key))
        what = f"step '{step}': " if step is not None else ""
        if key in _STRING_KEYS and not isinstance(value, str):
            raise ParseError(f"{what}'{key}' must be a string, got {type(value).__name__} {value!r}", where,
                             f'write {key} = "..."')
        if key in _LIST_KEYS:
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
                raise ParseError(f"{what}'{key}' must be a list of strings, got {value!r}", where,
                                 f'write {key} = ["..."]')
            table[key] = items


# -- steps justified by rules ----------------------------------------------------------------------------------

_COLLECTING = threading.local()    # rules directories being read in this thread (a rules dir must not cite itself)


class _RuleNames:
    """The rules directory of a chain file (`rules_dir`, or the nearest rules/ above the chain file) and the
    names of the rules in it, read when a step first needs them."""

    def __init__(self, path: Path, text: str, data: dict):
        self.path, self.text, self.data = path, text, data
        self._directory: Path | None = None
        self._names: dict[str, str] | None = None

    @property
    def directory(self) -> Path:
        if self._directory is None:
            given = self.data.get("rules_dir")
            if given is not None:
                where = Location(str(self.path), _line_of(self.text, "rules_dir"))
                if not isinstance(given, str) or not (self.path.parent / given).is_dir():
                    raise ParseError(f"rules_dir = {given!r} is not a directory (paths are relative to the chain "
                                     f"file)", where)
                self._directory = _tidy(self.path.parent / given)
            else:
                self._directory = _nearest_rules_dir(self.path)
                if self._directory is None:
                    raise ParseError("a by = \"rules\" step needs a rules directory; none was found above "
                                     f"{self.path}", Location(str(self.path), 1),
                                     'add rules_dir = "path/to/rules" at the top of the chain file')
        return self._directory

    def names(self) -> dict[str, str]:
        """rule name -> where it is written (file:line)."""
        if self._names is None:
            from .driver import collect

            key = str(self.directory.resolve())
            active = getattr(_COLLECTING, "dirs", set())
            if key in active:
                raise ParseError(f"a by = \"rules\" step cites the rules directory {self.directory}, which "
                                 "contains this chain: a rule cannot be justified by the rules it belongs to",
                                 Location(str(self.path), _line_of(self.text, "rules")))
            _COLLECTING.dirs = active | {key}
            try:
                claims, errors, _notes = collect([str(self.directory)])
            finally:
                _COLLECTING.dirs = active
            if errors:
                raise errors[0]
            self._names = {}
            for c in claims:
                self._names.setdefault(c.name, f"{c.file}:{c.line}" if c.line else c.file)
        return self._names


def _tidy(path: Path) -> Path:
    """`proofs/../rules` -> `rules` (relative to the working directory when below it): the rules' results,
    and the cache entries they leave, name their files as `verify check rules` does."""
    import os

    path = Path(os.path.normpath(path.resolve() if not path.is_absolute() else path))
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def _nearest_rules_dir(path: Path) -> Path | None:
    for parent in path.resolve().parents:
        if (parent / "rules").is_dir():
            return _tidy(parent / "rules")
    return None


def _line_after(text: str, needle: str, start: int | None) -> int | None:
    for i, line in enumerate(text.splitlines(), 1):
        if (start is None or i >= start) and needle in line:
            return i
    return start


def _step_rules(path, text, data, step, name, line, where, rule_names: _RuleNames) -> tuple[str, ...]:
    rules = step.get("rules")
    if isinstance(rules, str):
        rules = [rules]
    if not isinstance(rules, list) or not rules or not all(isinstance(r, str) for r in rules):
        raise ParseError(f"step '{name}': by = \"rules\" needs rules = [\"rule-name\", ...]", where,
                         "name the rules as `verify check RULES_DIR` names them")
    known = rule_names.names()
    for rule in rules:
        if rule not in known:
            hint = did_you_mean(rule, known) or (f"rules under {rule_names.directory}: "
                                                 f"{', '.join(sorted(known)[:12])}{', ...' if len(known) > 12 else ''}")
            raise ParseError(f"step '{name}': no rule named {rule!r} under {rule_names.directory}",
                             Location(str(path), _line_after(text, f'"{rule}"', line)), hint)
    return tuple(dict.fromkeys(rules))


# A step's rules reach its `to` program within this schedule or the step is UNKNOWN.
def _schedule():
    return Schedule(iterations=12, node_limit=20_000, time_limit=20.0)


_EGGLOG_LOCK = threading.Lock()    # one e-graph at a time (--jobs runs claims in threads of this process)

_BOUND_PART = re.compile(r"([A-Z][A-Z0-9]*)\s*(?:<=\s*(\d+)|=\s*(\d+)\s*\.\.\s*(\d+))")


def weakest_bound(bounds) -> str | None:
    """The sizes every bound covers: per rank the largest lower and the smallest upper end ("M<=2, M1<=4").
    None when some bound cannot be read or the bounds do not overlap."""
    ranges: dict[str, tuple[int, int]] = {}
    for bound in bounds:
        if bound.startswith("all sizes"):
            continue
        for part in bound.split(","):
            m = _BOUND_PART.fullmatch(part.strip())
            if not m:
                return None
            lo, hi = (1, int(m.group(2))) if m.group(2) else (int(m.group(3)), int(m.group(4)))
            old = ranges.get(m.group(1), (lo, hi))
            ranges[m.group(1)] = (max(lo, old[0]), min(hi, old[1]))
    if any(lo > hi for lo, hi in ranges.values()):
        return None
    if not ranges:
        return "all sizes (every rule holds at all sizes)"
    return ", ".join(f"{r}<={hi}" if lo == 1 else f"{r}={lo}..{hi}" for r, (lo, hi) in ranges.items())


def _shapes(results: dict) -> str:
    """'reduction split [split.max] (split-max), ...': each rule's unbounded shape, rules grouped by shape."""
    groups: dict[str, list[str]] = {}
    for rule, r in results.items():
        shape = r.method.split(";")[0].removeprefix("unbounded: ").split(" (")[0] \
            if r.method.startswith("unbounded: ") else f"bounded ({r.bound})"
        groups.setdefault(shape, []).append(rule)
    return ", ".join(f"{shape} ({', '.join(rules)})" for shape, rules in groups.items())


def _iterations(sat) -> str:
    return f"{sat.iterations} iteration{'' if sat.iterations == 1 else 's'}"


def _plain(claim: Claim) -> Claim:
    return Claim(**{f.name: getattr(claim, f.name) for f in dataclasses.fields(Claim)})


def _program(side) -> object:
    from . import ir

    return ir.Program(side.file, dict(side.bindings), [(side.expr.name, side.expr.line)])


def check_rules_step(claim: RulesStep, options) -> object:
    """The verdict on a by = "rules" step (see the module docstring). Runs in the calling process: the rules'
    and the equivalence's proofs go through `driver.check_claim` (each in its own child), egglog runs here."""
    from .driver import check_claim
    from .verdict import Result, Verdict

    start = time.monotonic()
    engines: dict[str, str] = {}
    warnings: list[str] = []

    def result(verdict, bound="-", method="-", detail="", counterexample=None) -> Result:
        return Result(claim.name, claim.file, claim.line, claim.kind, verdict, bound, method,
                      time.monotonic() - start, counterexample, detail, engines, warnings, claim.description)

    names = ", ".join(claim.rules)
    try:
        found = certify_named(claim.rules_dir, claim.rules, options)
    except VerifyError as exc:
        return result(Verdict.ERROR, detail=f"the rules under {claim.rules_dir} could not be read: {exc.format()}")
    refuted, unusable = [], []
    for rule in claim.rules:
        if rule not in found:
            unusable.append(f"no rule named '{rule}' under {claim.rules_dir} any more")
            continue
        status, r = found[rule]
        where = f"{status.file}:{status.line}" if status.line else status.file
        if status.verdict == "CERTIFIED":
            cached = " (cached)" if "cache" in r.engines else ""
            engines[f"rule {rule}"] = f"CERTIFIED ({r.bound}; {r.method}){cached}"
            warnings.extend(f"rule {rule}: {w}" for w in r.warnings)
            if status.rule is None:
                unusable.append(f"rule '{rule}' ({where}) is certified but not usable as a rewrite: {status.reason}")
        else:
            engines[f"rule {rule}"] = f"{status.verdict}: {status.detail}"
            text = f"rule '{rule}' ({where}) is {status.verdict}" + (f": {status.detail}" if status.detail else "")
            (refuted if status.verdict == "REFUTED" else unusable).append(text)
    connected, sat = False, None
    if not refuted and not unusable:
        rules = [found[rule][0].rule for rule in claim.rules]
        schedule = _schedule()
        try:
            with _EGGLOG_LOCK:
                connected, sat = connect(_program(claim.lhs), _program(claim.rhs), rules, schedule)
        except VerifyError as exc:
            engines["egglog"] = f"failed: {exc.format()}"
        except Exception as exc:  # an InternalError (egglog panicked) is never a pass
            engines["egglog"] = f"failed: {type(exc).__name__}: {exc}"
        else:
            matched = ", ".join(f"{n} ({k})" for n, k in sorted(sat.matches.items()) if k) or "none"
            engines["egglog"] = (f"{'connected' if connected else 'not connected'} after {_iterations(sat)}"
                                 f"{'' if connected else f' ({sat.stop})'}, {sat.rows} rows, {sat.seconds:.2f} s; "
                                 f"rules that matched: {matched}")
    # translation validation: the two programs are equal as wholes (can refute the step, never certify it)
    equivalence = check_claim(_plain(claim), options)
    engines["equivalence"] = (f"{equivalence.verdict.value} ({equivalence.bound}; {equivalence.method})"
                              if equivalence.verdict is Verdict.CERTIFIED else
                              f"{equivalence.verdict.value}: {equivalence.detail or equivalence.method}")
    if equivalence.verdict is Verdict.REFUTED:
        return result(Verdict.REFUTED, equivalence.bound, f"equivalence: {equivalence.method}",
                      "the programs are not equal, so no rules connect them"
                      + (f"; also: {'; '.join(refuted + unusable)}" if refuted or unusable else ""),
                      equivalence.counterexample)
    if refuted:
        return result(Verdict.REFUTED, detail="the step is justified by a refuted rule: " + "; ".join(refuted)
                      + f" (see `verify check {claim.rules_dir}`)")
    if unusable:
        return result(Verdict.UNKNOWN, detail="; ".join(unusable))
    if sat is None:
        return result(Verdict.UNKNOWN, detail=f"egglog could not saturate the programs: {engines['egglog']}")
    if not connected:
        return result(Verdict.UNKNOWN, detail=f"the named rules do not connect the programs within "
                                              f"{schedule.iterations} iterations (stopped: {sat.stop}, "
                                              f"{sat.rows} rows); rules: {names}")
    if equivalence.verdict is Verdict.ERROR:
        return result(Verdict.ERROR, detail=f"the translation validation hit an error: {equivalence.detail}")
    bound = weakest_bound([found[rule][1].bound for rule in claim.rules])
    if bound is None:
        return result(Verdict.UNKNOWN, detail="the rules' bounds do not overlap (or cannot be read): "
                      + "; ".join(f"{rule}: {found[rule][1].bound}" for rule in claim.rules))
    warnings.extend(w for w in equivalence.warnings if w not in warnings)
    method = f"rules: {names} (egglog, {_iterations(sat)})"
    if bound.startswith("all sizes"):   # every rule lifted: say by which shapes (their lemmas are in engines)
        method += "; shapes: " + _shapes({rule: found[rule][1] for rule in claim.rules})
    out = result(Verdict.CERTIFIED, bound, method,
                 f"{len(claim.rules)} certified rules rewrite {Path(claim.lhs.file).name} into "
                 f"{Path(claim.rhs.file).name}: {sat.rows} e-graph rows; bound = the weakest of the rules' bounds")
    return out
