"""Code generation from certified cascades: the program that was certified is the program that runs.

`generate(program, target)` translates a program's IR (verify/ir.py) into a self-contained Python module:
`torch` (every operator; scans become FlashAttention-2's tile loop, see lower.py) or `triton` (a kernel for the
1-pass family, with a torch launcher). Neither torch nor triton is needed to *generate* code; running it needs the
optional extra `verify[codegen]`.
"""

from __future__ import annotations

from .. import ir
from . import torch, triton
from .lower import TARGETS, CodegenError

__all__ = ["TARGETS", "CodegenError", "generate"]


def generate(program: ir.Program, target: str, text: str = "", origin: str | None = None) -> str:
    """The module's source text; `text` (the program's file text) is hashed into its header, `origin` (the command
    that made the program, default `verify codegen FILE`) named in it."""
    if target == "torch":
        gen = torch.generate
    elif target == "triton":
        gen = triton.generate
    else:
        raise CodegenError(f"unknown target '{target}'", hint=f"targets: {', '.join(TARGETS)}")
    return gen(program, text, origin)
