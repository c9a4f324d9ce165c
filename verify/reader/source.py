"""The text of a `.egg` file, egglog's parse of it, the comment directives, and what a file reads into."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import ir
from ..errors import Location, ParseError, UsageError, VerifyError

IGNORED_COMMANDS = {
    "RunSchedule", "AddRuleset", "UnstableCombinedRuleset", "Check", "Push", "Pop", "PrintFunction",
    "PrintSize", "PrintOverallStatistics", "Fail", "Sort", "Relation", "Function", "FunctionCommand",
    "PrintAllFunctionsSize",
}
IGNORED_USER_COMMANDS = {"run", "run-schedule", "print-stats"}
RULE_NAME_RE = re.compile(r"^\s*;+\s*([A-Za-z][\w.\-]*(?: \d+)?)\s*:\s*(.*)$")  # `; split-max: ...`, `; Rule 5: ...`
EXPECT_RE = re.compile(r"^\s*;+\s*expect(-error)?\s*:\s*([a-z]+)", re.I)  # -error: a refusal (tests/test_corpus.py)
FOR_RANKS_RE = re.compile(r"^\s*;+\s*for-ranks\s*:\s*([a-z])\s+in\s+([a-z](?:\s*,\s*[a-z])*)\s*$", re.I)
# any attempt at the directive, to refuse malformed ones
FOR_RANKS_ANY_RE = re.compile(r"^\s*;+\s*for-ranks\s*:", re.I)
ASSUME_RE = re.compile(r"^\s*;+\s*assume\s*:\s*(.+?)\s*$", re.I)
SHAPES_RE = re.compile(r"^\s*;+\s*shapes\s*:\s*(strict|implicit)\s*$", re.I)
# Sorts of a declared constructor's arguments that are literals, not tensors (egglog's own check).
LITERAL_SORTS = {"i64": int, "String": str, "f64": float, "bool": bool}


@dataclass
class SourceFile:
    path: str
    text: str
    program: ir.Program
    rules: list[ir.Rule] = field(default_factory=list)
    expect: str | None = None
    declared: dict[str, int] | None = None  # constructor -> arity, when the file declares its own
    assumptions: list[tuple[str, int]] = field(default_factory=list)  # `; assume: B unmasked along m`, line
    # Per-rule isolation: a rule (or top-level let) that cannot be read is its own located error here, and the
    # file's other rules are still read. `notices`: rules with nothing to prove (line, what the rule does).
    rule_errors: list[VerifyError] = field(default_factory=list)
    notices: list[tuple[int | None, str]] = field(default_factory=list)
    strict_shapes: bool = False             # `; shapes: strict`: no implicit tiling for this file's rules



def source_text(path: Path) -> str:
    """The text of an .egg file; a binary or non-UTF-8 file is a located error."""
    data = Path(path).read_bytes()
    if b"\x00" in data:
        raise ParseError("binary file, not egglog text", Location(str(path), 1))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ParseError(f"not UTF-8 text ({exc.reason})", Location(str(path), line)) from None



def egglog_parse(text: str, file: str):
    from egglog.bindings import EggSmolError, EGraph

    try:
        return EGraph().parse_program(text, filename=file)
    except EggSmolError as exc:
        message = str(exc)
        m = re.match(r"In (\d+):\d+", message)
        line = int(m.group(1)) if m else None
        cause = message.splitlines()[-1] if message.strip() else "egglog could not parse the file"
        raise ParseError(cause.removeprefix("parse error: "), Location(file, line)) from None
    except BaseException as exc:  # a Rust panic (PanicException) is not an Exception
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise ParseError(f"egglog's parser failed on this file ({type(exc).__name__}: {exc})", Location(file)) from None


def expand_paths(paths) -> list[Path]:
    """Files named on the command line: `.egg` files, and every `.egg` file below each directory."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for pattern in ("*.egg", "*.chain.toml") for p in path.rglob(pattern)
                           if "certificates" not in p.parts)
            if not found:
                raise UsageError(f"{path} contains no .egg files")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise UsageError(f"no such file or directory: {path}")
    return files

