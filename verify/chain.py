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

Each step becomes one claim. The steps must connect: each `from` is the previous step's `to` or a program the
chain already reached, the first `from` is `start`, and `end` is reached.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from .claims import Claim, equiv_claim, with_assumptions
from .errors import Location, ParseError, VerifyError
from .reader import read_file

STEP_KEYS = {"name", "from", "to", "by", "rules", "unbounded", "bound", "assume"}


def _line_of(text: str, needle: str) -> int | None:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    return None


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
    if not isinstance(steps, list) or not steps:
        raise ParseError("a chain file needs at least one [[step]]", Location(str(path), 1))
    reached = {data.get("start")} if data.get("start") else set()
    claims = []
    for number, step in enumerate(steps, 1):
        name = step.get("name", f"step {number}")
        line = _line_of(text, f'"{name}"') if "name" in step else None
        where = Location(str(path), line)
        unknown = set(step) - STEP_KEYS
        if unknown:
            raise ParseError(f"step '{name}': unknown key(s) {', '.join(sorted(unknown))}", where,
                             f"a step has {', '.join(sorted(STEP_KEYS))}")
        for key in ("from", "to"):
            if not isinstance(step.get(key), str):
                raise ParseError(f"step '{name}' needs '{key} = \"program.egg\"'", where)
        if reached and step["from"] not in reached:
            raise ParseError(f"step '{name}' starts from {step['from']}, which no earlier step reached", where,
                             f"reached so far: {', '.join(sorted(reached))}")
        reached.add(step["from"])
        reached.add(step["to"])
        by = step.get("by", "equivalence")
        if by != "equivalence":
            raise ParseError(f"step '{name}': unknown justification by = {by!r}", where,
                             'use by = "equivalence"')
        try:
            before = read_file(path.parent / step["from"]).program
            after = read_file(path.parent / step["to"]).program
        except VerifyError as exc:
            raise exc.located(where)  # a missing program: say which chain step names it
        unbounded = step.get("unbounded", [])
        if isinstance(unbounded, str):
            unbounded = [unbounded]
        from .induction import GROUPS

        for group in unbounded:
            if group not in GROUPS:
                raise ParseError(f"step '{name}': unknown induction group {group!r}", where,
                                 f"groups: {', '.join(repr(g) for g in GROUPS)}")
        claim = equiv_claim(before, after, name=name, kind="step", file=str(path), line=line,
                            bound=step.get("bound", data.get("bound")), unbounded=tuple(unbounded))
        claims.append(with_assumptions(claim, list(data.get("assume", [])) + list(step.get("assume", [])), where))
    if data.get("end") and data["end"] not in reached:
        raise ParseError(f"the chain never reaches its end {data['end']}", Location(str(path), _line_of(text, "end")))
    return claims
