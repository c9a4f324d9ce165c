"""Chain files (read layer): `proofs/*.chain.toml` files that list the steps from one program to the next.

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
    unbounded = ["3pass=2pass (all M1, M0)"]   # optional: induction lemma groups (verify/induction/) that
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

This module reads the file into `ChainStep`s (the programs read, the names checked); it decides nothing.
`targets.read_chain` turns the steps into claims, and `rules_step` gathers the evidence for a `by = "rules"` step.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from . import ir
from .errors import Location, ParseError, VerifyError, did_you_mean
from .reader import read_file

# (rules directory, chain file, line of its `rules` key) -> rule name -> where it is written (file:line)
KnownRules = Callable[[Path, Path, int | None], Mapping[str, str]]


@dataclass(frozen=True)
class ChainStep:
    """One [[step]] of a chain file, read: its programs, and for `by = "rules"` the rules it names (which exist
    under `rules_dir`)."""

    name: str
    line: int | None
    where: Location
    before: ir.Program
    after: ir.Program
    rules: tuple[str, ...]
    rules_dir: str
    unbounded: tuple[str, ...]
    bound: str | None
    assume: list[str]


STEP_KEYS = {"name", "from", "to", "by", "rules", "unbounded", "bound", "assume"}
JUSTIFICATIONS = ("equivalence", "rules")


def _line_of(text: str, needle: str) -> int | None:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    return None


def _program_key(chain: Path, name: str) -> str:
    """A program named in a chain file, as the file it is (relative to the chain file, resolved)."""
    return str((chain.parent / name).resolve())


def read_steps(path: str | Path, known_rules: KnownRules) -> Iterator[ChainStep]:
    """The steps of a chain file, one at a time (so that errors come in file order, whoever reads on)."""
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
    rule_names = _RuleNames(path, text, data, known_rules)
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
        yield ChainStep(name, line, where, before, after, rules, str(rule_names.directory) if rules else "",
                        tuple(unbounded), step.get("bound", data.get("bound")),
                        list(data.get("assume", [])) + list(step.get("assume", [])))
    if data.get("end") and _program_key(path, data["end"]) not in reached:
        raise ParseError(f"the chain never reaches its end {data['end']}", Location(str(path), _line_of(text, "end")))


# What each key of a chain file holds: a string, or a list of strings ("a string" alone counts as a one-item
# list, as for `rules`). Anything else is a located error (a number would crash later; a string read as a list
# would be taken character by character).
_STRING_KEYS = ("start", "end", "bound", "rules_dir", "name", "from", "to", "by")
_LIST_KEYS = ("assume", "unbounded", "rules")


def string_list(value) -> list[str] | None:
    """A list-valued key as the list of strings it stands for (a string alone is a one-item list); None when it
    is anything else. The one reading of such a key: `verify deps` reads a chain's `rules` through it too."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        return None
    return items


def _check_types(path: Path, text: str, table: dict, step: str | None) -> None:
    for key, value in table.items():
        where = Location(str(path), _line_of(text, f'"{step}"') if step is not None and isinstance(step, str)
                         else _line_of(text, key))
        what = f"step '{step}': " if step is not None else ""
        if key in _STRING_KEYS and not isinstance(value, str):
            raise ParseError(f"{what}'{key}' must be a string, got {type(value).__name__} {value!r}", where,
                             f'write {key} = "..."')
        if key in _LIST_KEYS:
            items = string_list(value)
            if items is None:
                raise ParseError(f"{what}'{key}' must be a list of strings, got {value!r}", where,
                                 f'write {key} = ["..."]')
            table[key] = items


# -- steps justified by rules ----------------------------------------------------------------------------------

class _RuleNames:
    """The rules directory of a chain file (`rules_dir`, or the nearest rules/ above the chain file) and the
    names of the rules in it, read when a step first needs them."""

    def __init__(self, path: Path, text: str, data: dict, known_rules: KnownRules):
        self.path, self.text, self.data, self.known_rules = path, text, data, known_rules
        self._directory: Path | None = None
        self._names: Mapping[str, str] | None = None

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

    def names(self) -> Mapping[str, str]:
        """rule name -> where it is written (file:line)."""
        if self._names is None:
            self._names = self.known_rules(self.directory, self.path, _line_of(self.text, "rules"))
        return self._names


def _tidy(path: Path) -> Path:
    """`proofs/../rules` -> `rules` (relative to the working directory when below it): the rules' results,
    and the cache entries they leave, name their files as `verify check rules` does."""
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
    rules = string_list(step.get("rules"))
    if not rules:
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


