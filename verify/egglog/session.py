"""An egglog e-graph in this process, and egglog text run on it with egglog's failures as located errors.
egglog is imported on first use, so commands that never build an e-graph do not pay for loading it."""

from __future__ import annotations

import re

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


def holds(egraph, check: str) -> bool:
    """Whether an egglog `(check ...)` command succeeds on the e-graph (egglog reports a failed check as an
    error, which here is an answer, not a failure)."""
    try:
        egraph.run_program(*egraph.parse_program(check))
        return True
    except bindings().EggSmolError:
        return False
