"""What a change makes the proof gate re-check: the dependency graph of rule files, rules, programs and chains.

Edges (read from the files, not guessed from directory names):
- rule file -> the rules it defines (by name, as `verify check` names them; `; for-ranks:` templates give
  `NAME[x=m]`), each with its content hash (`cache.claim_hash`: both sides and the preconditions);
- chain -> the programs it names (`start`, `end`, every step's `from` and `to`, relative to the chain file);
- chain -> the rules its `by = "rules"` steps cite (`rules`, a list or one name, read as the chain reader
  reads it), in its rules directory (`rules_dir`, or the nearest `rules/` above it).

Given the files changed since a git revision (added, modified, deleted; a rename is a deletion plus an
addition; untracked files count as added), the targets are:
- every rule that is new or whose content changed, as `FILE:RULE` (an unchanged rule in a changed file is not
  re-checked; a file with any part that does not read, one rule included, is checked whole, so its error is
  reported; a name a file repeats is changed when any of its rules is);
- every chain that changed, names a changed or deleted program, or cites a rule that is new, changed, or
  gone from a changed file (a rule moved unchanged between files is no change; a copy, which makes the name
  ambiguous, is);
- a changed program that no chain names (checked alone: its outputs and ranks);
- everything under the given paths when the checker itself changed (`verify/`, `pyproject.toml`).

Used by `verify check --changed-since REF`, `verify deps --changed-since REF`, the pre-commit hook and the CI
workflow.
"""

from __future__ import annotations

import functools
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .cache import claim_hash
from .chainfile import string_list
from .errors import UsageError, VerifyError
from .options import Options
from .reader import expand_paths, read_text
from .targets import claims_of, collect

CHECKER = ("verify/", "pyproject.toml")


@dataclass
class Affected:
    """What a change since `ref` makes the gate re-check, and why."""

    ref: str
    changed: list[str]                                   # repository paths, sorted
    targets: list[str] = field(default_factory=list)     # FILE, FILE:RULE (relative to the working directory)
    reasons: dict[str, str] = field(default_factory=dict)  # target -> why it is re-checked

    @property
    def files(self) -> list[str]:
        """The files of the targets (for tools that take files: the pytest plugin, `verify report`)."""
        out: list[str] = []
        for t in self.targets:
            f = t.split(":", 1)[0] if not Path(t).exists() else t
            if f not in out:
                out.append(f)
        return out


def _git(args, cwd) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise UsageError("--changed-since needs git, which is not installed") from None
    if proc.returncode != 0:
        raise UsageError(f"git {' '.join(args)}: {proc.stderr.strip() or 'failed'}")
    return proc.stdout


EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"   # git's empty tree: "changed since" before the first commit


def changed_files(ref: str, cwd: Path, staged: bool = False) -> tuple[Path, list[str]]:
    """(repository root, paths changed between REF and the working tree, relative to the root). With `staged`
    (the pre-commit hook): between REF and the index, untracked files not counted."""
    try:
        root = Path(_git(["rev-parse", "--show-toplevel"], cwd).strip())
    except UsageError:
        raise UsageError(f"--changed-since: {cwd} is not inside a git repository") from None
    probe = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=root,
                           capture_output=True, text=True)
    if probe.returncode != 0 or not ref or ref.startswith("-"):
        head = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "HEAD"], cwd=root, capture_output=True)
        if not (staged and ref == "HEAD" and head.returncode != 0):
            raise UsageError(f"--changed-since: '{ref}' is not a commit in this repository",
                             hint="give a branch, tag or commit, e.g. --changed-since origin/main or HEAD~1")
        ref = EMPTY_TREE                                  # the first commit: everything staged is new
    if staged:
        diff = _git(["diff", "--cached", "--name-only", "--no-renames", "-z", ref, "--"], root)
        untracked = ""
    else:
        diff = _git(["diff", "--name-only", "--no-renames", "-z", ref, "--"], root)
        untracked = _git(["ls-files", "--others", "--exclude-standard", "-z"], root)
    names = {n for n in (diff + untracked).split("\0") if n}
    return root, sorted(names)


def _old_text(ref: str, root: Path, rel: str) -> str | None:
    proc = subprocess.run(["git", "show", f"{ref}:{rel}"], cwd=root, capture_output=True)
    if proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", errors="replace")


def rule_hashes(text: str, file: str) -> dict[str, tuple[str, ...]] | None:
    """rule name -> the content hashes of the rules of that name in one .egg text, in file order (a file may
    repeat a name, and an edit of any of them is a change); None if any of it does not read: a file with one
    unreadable rule is re-checked whole, so the gate reports that rule's error rather than skipping it."""
    try:
        source = read_text(text, file)
        errors: list[VerifyError] = []
        claims = claims_of(source, errors=errors)
    except Exception:  # a file that does not read is re-checked whole
        return None
    if source.rule_errors or errors:
        return None
    hashes: dict[str, list[str]] = {}
    for c in claims:
        hashes.setdefault(c.name, []).append(claim_hash(c))
    return {name: tuple(h) for name, h in hashes.items()}


def chain_edges(path: Path) -> tuple[set[Path], Path | None, set[str], set[str]]:
    """(programs, rules directory, cited rule names, its own step names) of a chain file, from its TOML alone
    (a chain that does not read names nothing: it is re-checked only when it changes itself). A chain inside a
    rules directory is cited by its step names, like a rule."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, tomllib.TOMLDecodeError):
        return set(), None, set(), set()
    programs: set[Path] = set()
    names: set[str] = set()

    def program(value):
        if isinstance(value, str):
            programs.add((path.parent / value).resolve())

    program(data.get("start"))
    program(data.get("end"))
    given_steps = data.get("step")
    steps = given_steps if isinstance(given_steps, list) else []
    for step in steps:
        if not isinstance(step, dict):
            continue
        program(step.get("from"))
        program(step.get("to"))
        if step.get("by") == "rules":
            names.update(string_list(step.get("rules")) or ())
    rules_dir = None
    if names:
        given = data.get("rules_dir")
        if isinstance(given, str):
            rules_dir = (path.parent / given).resolve()
        else:
            rules_dir = next((p / "rules" for p in path.resolve().parents if (p / "rules").is_dir()), None)
    own = {step["name"] for step in steps if isinstance(step, dict) and isinstance(step.get("name"), str)}
    return programs, rules_dir, names, own


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def default_paths() -> list[str]:
    """Where to look when no paths are given: rules/ and proofs/ where they exist, else the whole tree."""
    return [p for p in ("rules", "proofs") if Path(p).is_dir()] or ["."]


def affected(ref: str, paths=None, staged: bool = False) -> Affected:
    """The targets to re-check under `paths` for the changes since `ref` (see the module docstring)."""
    paths = list(paths) if paths else default_paths()
    _hash_maps.cache_clear()      # it serves the chains of one call: the tree may have changed since the last
    root, changed = changed_files(ref, Path.cwd(), staged)
    out = Affected(ref, changed)
    abs_changed = {(root / c).resolve() for c in changed}
    files = [p.resolve() for p in expand_paths(paths)] if paths else []
    universe = [Path(p).resolve() for p in paths]

    def inside(p: Path) -> bool:
        return any(p == u or u in p.parents for u in universe)

    def add(target: str, why: str):
        if target not in out.targets:
            out.targets.append(target)
            out.reasons[target] = why

    checker = [c for c in changed if c.startswith(CHECKER[0]) or c == CHECKER[1]]
    if checker:
        for p in paths:
            add(p, f"the checker changed ({checker[0]})")
        return out

    # rules: name -> (old hash, new hash) for every rule of a changed .egg file
    changed_rules: dict[Path, set[str]] = {}     # rules directory -> names that changed (or went away)
    unreadable: set[Path] = set()
    rule_targets: list[tuple[str, str]] = []
    for rel in changed:
        p = (root / rel).resolve()
        if not rel.endswith(".egg"):
            continue
        now = p.read_text(encoding="utf-8", errors="replace") if p.is_file() else None
        old = _old_text(ref, root, rel)
        new_h = rule_hashes(now, str(p)) if now is not None else {}
        old_h = rule_hashes(old, str(p)) if old is not None else {}
        if new_h is None:        # the file is there but does not read
            unreadable.add(p)
            new_h = {}
        for directory in p.parents:
            names = changed_rules.setdefault(directory, set())
            names.update(n for n in set(new_h) | set(old_h or {}) if (old_h or {}).get(n) != new_h.get(n))
            if old_h is None:
                names.update(new_h)       # the old version did not read: every rule counts as changed
        if p.is_file() and inside(p):
            if p in unreadable or (old_h is None and not new_h):
                rule_targets.append((_relative(p), "changed; it does not read (checked whole)"
                                     if p in unreadable else "changed program"))
            else:
                for name in new_h:
                    if (old_h or {}).get(name) != new_h[name]:
                        rule_targets.append((f"{_relative(p)}:{name}",
                                             "new rule" if name not in (old_h or {}) else "rule changed"))
    used_programs: set[Path] = set()
    chains = []
    for f in files:
        if f.name.endswith(".chain.toml"):
            programs, rules_dir, names, own = chain_edges(f)
            used_programs |= programs
            chains.append((f, programs, rules_dir, names, own))
    chain_targets: dict[Path, str] = {}
    grew = True
    while grew:       # a re-checked chain inside a rules directory changes the "rules" (steps) it defines
        grew = False
        for f, programs, rules_dir, names, own in chains:
            if f in chain_targets:
                continue
            why = None
            if f in abs_changed:
                why = "chain changed"
            elif programs & abs_changed:
                why = "names a changed program: " + ", ".join(sorted(_relative(p) for p in programs & abs_changed))
            elif rules_dir is not None:
                hit = sorted(names & _moved_out(changed_rules.get(rules_dir.resolve(), set()), root, ref, rules_dir))
                if hit:
                    why = "cites a changed rule: " + ", ".join(hit)
            if why:
                chain_targets[f] = why
                grew = True
                for directory in f.parents:
                    changed_rules.setdefault(directory, set()).update(own)
    for target, why in rule_targets:
        file = (Path.cwd() / target.split(":", 1)[0]).resolve() if ":" in target and not Path(target).exists() \
            else (Path.cwd() / target).resolve()
        if why == "changed program" and file in used_programs:
            continue                      # its chains are re-checked instead
        add(target, why)
    for f, why in chain_targets.items():
        add(_relative(f), why)
    return out


def _moved_out(names: set[str], root: Path, ref: str, rules_dir: Path) -> set[str]:
    """Drop names whose rules merely moved between files of the directory: the same hashes, as many of each,
    before and after. A copy is no move: a name now in more places than before is ambiguous to a chain."""
    if not names:
        return names
    now, old = _hash_maps(root, ref, rules_dir.resolve())
    return {n for n in names if n not in now or n not in old or now[n] != old[n]}


@functools.cache
def _hash_maps(root: Path, ref: str, rules_dir: Path) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """name -> the sorted content hashes of every rule of that name in a rules directory, now and at REF (.egg
    files only; a file that does not read counts with none of its rules)."""
    try:
        claims, _errors, _notes = collect([str(rules_dir)], Options())
    except Exception:  # what does not read counts as changed
        claims = []
    now: dict[str, list[str]] = {}
    for c in claims:
        if c.kind == "rule":
            now.setdefault(c.name, []).append(claim_hash(c))
    old: dict[str, list[str]] = {}
    if root in rules_dir.parents or rules_dir == root:
        listing = subprocess.run(["git", "ls-tree", "-r", "--name-only", "-z", ref, "--",
                                  str(rules_dir.relative_to(root))], cwd=root, capture_output=True, text=True)
        for rel in filter(None, listing.stdout.split("\0")):
            if rel.endswith(".egg"):
                text = _old_text(ref, root, rel)
                hashes = rule_hashes(text, str((root / rel).resolve())) if text is not None else None
                for n, h in (hashes or {}).items():
                    old.setdefault(n, []).extend(h)
    return ({n: tuple(sorted(h)) for n, h in now.items()}, {n: tuple(sorted(h)) for n, h in old.items()})
