"""Every user-facing error of the checker.

Each error carries the file and line it is about, the cause, and (where we know one) a hint. The CLI prints
them compiler-style (`file:line: error: cause`) and exits with status 2; nothing else in the package formats
an error for the user.
"""

from __future__ import annotations

import difflib
import os
import traceback
from dataclasses import dataclass

# Set (to anything but "" or "0") to see the full traceback of an internal error; users get one line.
DEBUG_ENV = "VERIFY_DEBUG"


@dataclass
class Location:
    file: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file


class VerifyError(Exception):
    """A user mistake (bad input, bad option). Remedy: fix what the message names."""

    kind = "error"

    def __init__(self, cause: str, location: Location | None = None, hint: str | None = None,
                 rule: str | None = None):
        super().__init__(cause)
        self.cause = cause
        self.location = location
        self.hint = hint
        self.rule = rule            # the one rule of a file the error is about (per-rule isolation), if any

    def for_rule(self, name: str) -> VerifyError:
        """The error is about the rule `name` of its file: recorded in `rule` and named in the cause."""
        if self.rule is None:
            self.rule = name
            if not self.cause.startswith(f"rule '{name}'"):
                self.cause = f"rule '{name}': {self.cause}"
        return self

    def located(self, location: Location) -> VerifyError:
        """Attach a location if the error does not have one yet (errors raised deep down know no file)."""
        if self.location is None or self.location.line is None and location.line is not None:
            self.location = location
        return self

    def format(self) -> str:
        where = f"{self.location}: " if self.location else ""
        text = f"{where}{self.kind}: {self.cause}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def __str__(self) -> str:
        return self.format()


class ParseError(VerifyError):
    """The file is not valid egglog, or uses a form the checker does not understand.
    Remedy: fix the syntax at the named line; see README 'Notation'."""

    kind = "parse error"


class NotationError(VerifyError):
    """An operator name or rank name does not follow the seed notation (M_<op>_<space>, R_<op>_<rank>, ...).
    Remedy: use a known operator; the message suggests the closest one."""

    kind = "notation error"


class ShapeError(VerifyError):
    """An expression is ill-shaped: it reduces a rank its operand lacks, maps an operand with a rank outside
    the iteration space, splits a missing rank, or the two sides of a rule have different ranks.
    Remedy: fix the ranks named in the message."""

    kind = "shape error"


class BoundError(VerifyError):
    """A `--bound` or `--timeout` option is malformed or absurd. Remedy: e.g. `--bound M1=8,M0=4,F=2`."""

    kind = "bound error"


class UsageError(VerifyError):
    """The command line names something that does not exist (a missing file, an empty directory, an unknown
    rule). Remedy: as the message says."""

    kind = "usage error"


class InternalError(Exception):
    """A bug in the checker itself, e.g. two engines disagreeing on a verdict. Never a user mistake; always
    reported loudly and never turned into a pass."""


def debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def internal_message(exc: BaseException) -> str:
    """A crash of the checker as one line (the exception and the innermost frame) and what to do about it; the
    traceback follows only under VERIFY_DEBUG, since a user can act on neither it nor a 3,000-line message."""
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    # the innermost frame from the traceback objects alone: no source file is read (this runs in forked children)
    frames = list(traceback.walk_tb(exc.__traceback__))
    code, line = (frames[-1][0].f_code, frames[-1][1]) if frames else (None, 0)
    where = f" (at {os.path.basename(code.co_filename)}:{line} in {code.co_name})" if code else ""
    text = f"internal error: {type(exc).__name__}{': ' + first if first else ''}{where}; a bug in the checker: " \
           f"please report it with the input (set {DEBUG_ENV}=1 for the traceback)"
    if debugging():
        text += "\n" + "".join(traceback.format_exception(exc))
    return text


def did_you_mean(word: str, choices) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
