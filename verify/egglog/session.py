"""An egglog e-graph in this process, and egglog text run on it with egglog's failures as located errors.
egglog is imported on first use, so commands that never build an e-graph do not pay for loading it."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

from ..errors import InternalError, Location, ParseError
from ..reader.source import batches


def bindings():
    from egglog import bindings

    return bindings


def new_egraph():
    return bindings().EGraph()


def run_text(egraph, text: str, file: str | None = None):
    """Parse and run egglog text, in batches of whole commands (see `reader.source.batches`: parsing it whole
    costs memory quadratic in its length); egglog's errors become ParseError, a Rust panic an InternalError."""
    b = bindings()
    outputs: list = []
    above = 0      # lines above the batch being run: egglog numbers lines from the batch
    try:
        with _globals_warning_filtered():
            for first_line, batch in batches(text, file or "<egglog>"):
                above = first_line
                outputs.extend(egraph.run_program(*egraph.parse_program(batch, filename=file)))
        return outputs
    except b.EggSmolError as exc:
        message = str(exc)
        m = re.match(r"In (\d+):\d+", message)
        raise ParseError(message.strip().splitlines()[-1] if message.strip() else "egglog failed",
                         Location(file or "<egglog>", above + int(m.group(1)) if m else None)) from None
    except BaseException as exc:  # PanicException is not an Exception
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise InternalError(f"egglog panicked: {type(exc).__name__}: {exc}") from None


GLOBALS_WARNING = re.compile(r"Global `[^`]*` should start with `\$`")
GLOBALS_NOTE = ("egglog warns that a global (a `let` name) should start with `$`; the seed's files name them "
                "without it, which egglog accepts (the warning is filtered)")
warned_globals = False      # whether egglog gave that warning in this process (cmd_run states it once)


@contextlib.contextmanager
def _globals_warning_filtered():
    """egglog's Rust side writes "Global `Q` should start with `$`" (and the command it was raised at) to file
    descriptor 2 for every file with the seed's `let` names. The descriptor is redirected to a temporary file
    while egglog runs, and everything but that warning is written back to stderr, so nothing else is lost."""
    global warned_globals
    try:
        saved = os.dup(2)
    except OSError:                      # no stderr descriptor (embedded use): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", "replace").splitlines(keepends=True)
            kept = []
            for i, line in enumerate(lines):
                if GLOBALS_WARNING.search(line):
                    warned_globals = True
                    if kept and kept[-1].startswith("In ") and i > 0:     # the location line egglog printed
                        kept.pop()
                    continue
                kept.append(line)
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def holds(egraph, check: str) -> bool:
    """Whether an egglog `(check ...)` command succeeds on the e-graph (egglog reports a failed check as an
    error, which here is an answer, not a failure)."""
    try:
        egraph.run_program(*egraph.parse_program(check))
        return True
    except bindings().EggSmolError:
        return False
