"""Code generation from certified cascades: the program that was certified is the program that runs.

`generate(program, target)` translates a program's IR (verify/ir.py) into a self-contained Python module:
`torch` (every operator; scans become FlashAttention-2's tile loop, see lower.py) or `triton` (a kernel for the
1-pass family, with a torch launcher). Neither torch nor triton is needed to *generate* code; running it needs the
optional extra `verify[codegen]`.
"""

from __future__ import annotations

import textwrap

from .. import ir
from . import attention, torch, triton, validate
from .lower import TARGETS, CodegenError
from .validate import Validation

__all__ = ["TARGETS", "CodegenError", "Validation", "checked", "generate"]


def generate(program: ir.Program, target: str, text: str = "", origin: str | None = None) -> str:
    """The module's source text; `text` (the program's file text) is hashed into its header, `origin` (the command
    that made the program, default `verify codegen FILE`) named in it."""
    if target == "torch":
        code = torch.generate(program, text, origin)
    elif target == "triton":
        code = triton.generate(program, text, origin)
    else:
        raise CodegenError(f"unknown target '{target}'", hint=f"targets: {', '.join(TARGETS)}")
    face, _why = attention.interface(program)
    if face is None:
        return code
    taken = {name for name in program.output_names()}
    extra = attention.torch_attention(program, face, taken) if target == "torch" else \
        attention.triton_attention(program, face, taken)
    return code.rstrip("\n") + "\n\n\n" + "\n".join(extra) + "\n"


def checked(program: ir.Program, target: str, text: str = "", origin: str | None = None,
            certificate: str | None = None) -> tuple[str, Validation]:
    """The module's source text, validated against the reference evaluator before anyone writes it (a mismatch
    raises a located CodegenError); its header states the validation next to the certificate's verdict."""
    code = generate(program, target, text, origin)
    validation = validate.validate(program, code, target, generate)
    cert = certificate or ("not checked by this command: the source's certificate is `verify check` / `verify "
                           "equiv` of the program")
    notes = [f"Certificate: {cert}.", validation.summary() + "."]
    face, why = attention.interface(program)
    if face is None:
        notes.append(f"No drop-in attention(): {why}.")
    lines = [piece for note in notes for piece in textwrap.wrap(note, 112, break_on_hyphens=False)]
    end = code.index('"""', 3)
    return code[:end] + "\n".join(lines) + "\n" + code[end:], validation
