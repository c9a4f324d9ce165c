"""A drop-in attention() is generated only for a program certified equal to softmax attention for all sizes: a
sampled comparison passes a program that differs where a score takes one exact value (its attention() then
disagreed with SDPA on a zero query row)."""

from __future__ import annotations

from pathlib import Path

from verify.codegen import attention, generate
from verify.reader import read_file, read_text

ROOT = Path(__file__).resolve().parent.parent

ONEPASS = (ROOT / "proofs" / "attention_1pass.egg").read_text()
# the 1-pass with a score of exactly 0 masked: equal to attention at almost every input, not at all of them
ZERO_MASKED = ONEPASS.replace("(let BQK (M_mul_em1m0p_R_add_e Q BK))",
                              "(let BQK0 (M_mul_em1m0p_R_add_e Q BK))\n"
                              "(let BQK (M_where_m1m0p (M_eq_m1m0p BQK0 (Const 0.0)) (Const -inf) BQK0))")


def test_the_1pass_program_gets_attention():
    program = read_file(ROOT / "proofs" / "attention_1pass.egg").program
    face, why = attention.interface(program)
    assert face is not None, why
    assert "def attention(" in generate(program, "torch")


def test_a_program_equal_to_attention_only_at_sampled_inputs_gets_no_attention():
    assert ZERO_MASKED != ONEPASS
    program = read_text(ZERO_MASKED, "zero_masked.egg").program
    face, why = attention.interface(program)
    assert face is None and "not certified equal to softmax attention" in why and "REFUTED" in why
    assert "def attention(" not in generate(program, "torch")
