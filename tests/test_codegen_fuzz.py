"""The codegen fuzzer: Hypothesis draws scan programs (scans with shared or distinct state strings, shifts with
several fills, S_last of anything, masks, splits of the keys with 1 to 4 tiles and of the queries with 1 to 3,
inputs that carry the scan rank, a value accumulator over V), keeps those the checker accepts (read and ranked), and requires every kernel, on both
targets, to be right (equal to the reference evaluator: validate.py) or refused with a located codegen error.

A wrong kernel here is a lowering bug that the translation validation caught before anything was written; the
fuzzer counts it as wrong all the same (it must be 0). The short profile runs in the tests; the long one
(>= 1,000 programs) is `bench/codegen_fuzz.py` (`make bench`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_codegen import HAVE_TORCH, HAVE_TRITON, needs_torch

from verify.codegen import CodegenError, generate, validate
from verify.errors import VerifyError
from verify.reader import read_text
from verify.shapes import program_ranks

FILLS = ("(Const -inf)", "(Const 0.0)", "(Const 5.0)", "(Const -2.0)")
STATES = ("S", "R", "T")          # few strings: two scans sharing one are common


@st.composite
def scan_programs(draw) -> str:
    """The text of a program with one iterative rank m1 (the seed notation); the queries p are sometimes split
    too (p = p1*P0 + p0), so every map then iterates p1, p0."""
    tiles = draw(st.integers(1, 4))
    direct = draw(st.integers(0, 4)) == 0           # the scan rank carried by an input, no split
    qsplit = not direct and draw(st.integers(0, 3)) == 0
    P = "p1p0" if qsplit else "p"                   # the query ranks, in every space below
    lines: list[str] = []
    vals: list[str] = []                            # bindings over [m1, P]
    maxes: list[str] = []                           # running maxima (for rescaling factors)
    scores = ""
    if direct:
        lines.append('(let L (CreateTensor "L[m1,p]"))')
        vals.append("L")
    else:
        lines += ['(let Q (CreateTensor "Q"))', '(let K (CreateTensor "K"))', f"(let BK (T_split_m_m1m0 K {tiles}))"]
        if qsplit:
            lines += [f"(let BQ (T_split_p_p1p0 Q {draw(st.integers(1, 3))}))",
                      "(let S0 (M_mul_em1m0p1p0_R_add_e BQ BK))"]
        else:
            lines.append("(let S0 (M_mul_em1m0p_R_add_e Q BK))")
        scores = "S0"
        if not qsplit and draw(st.booleans()):
            lines += ['(let B (CreateTensor "B[m,p]:mask"))', f"(let BB (T_split_m_m1m0 B {tiles}))",
                      "(let SC (M_add_m1m0p S0 BB))"]
            scores = "SC"
        lines.append(f"(let LM (R_{draw(st.sampled_from(['max', 'add']))}_m0 {scores}))")
        vals.append("LM")
    for i in range(draw(st.integers(1, 5))):
        name = f"X{i}"
        kind = draw(st.sampled_from(["scan", "scan", "shift", "map", "exp"]))
        if kind == "scan":
            op = draw(st.sampled_from(["max", "add"]))
            state = draw(st.sampled_from(STATES))
            x = draw(st.sampled_from(vals))
            body = f'(M_{op}_m1{P} (S_prev_m1 "{state}") {x})'
            if op == "add" and maxes and draw(st.booleans()):      # FlashAttention's rescaled running sum
                # the factor exp(max before - max now) is a binding of its own, as PRM in the 1-pass (a scan's
                # body may not hold an S_shift over its own rank)
                rm, fill = draw(st.sampled_from(maxes)), draw(st.sampled_from(FILLS))
                lines.append(f"(let F{i} (M_exp_m1{P} (M_sub_m1{P} (S_shift_m1 {rm} {fill}) {rm})))")
                body = f'(M_add_m1{P} (M_mul_m1{P} (S_prev_m1 "{state}") F{i}) {x})'
            lines.append(f'(let {name} (S_scan_m1 "{state}" {draw(st.sampled_from(FILLS))} {body}))')
            if op == "max":
                maxes.append(name)
        elif kind == "shift":
            lines.append(f"(let {name} (S_shift_m1 {draw(st.sampled_from(vals))} {draw(st.sampled_from(FILLS))}))")
        elif kind == "map":
            op = draw(st.sampled_from(["add", "sub", "mul", "max"]))
            lines.append(f"(let {name} (M_{op}_m1{P} {draw(st.sampled_from(vals))} {draw(st.sampled_from(vals))}))")
        else:
            a, b = draw(st.sampled_from(vals)), draw(st.sampled_from(vals))
            lines.append(f"(let {name} (M_exp_m1{P} (M_sub_m1{P} {a} {b})))")
        vals.append(name)
    out = draw(st.sampled_from(["last", "last2", "reduce"] + ([] if direct else ["weighted"])))
    if out == "last":
        lines.append(f"(let O (S_last_m1 {draw(st.sampled_from(vals))}))")
    elif out == "last2":
        a, b = draw(st.sampled_from(vals)), draw(st.sampled_from(vals))
        lines.append(f"(let O (M_add_{P} (S_last_m1 {a}) (S_last_m1 {b})))")
    elif out == "reduce":
        lines.append(f"(let O (R_{draw(st.sampled_from(['max', 'add']))}_m1 {draw(st.sampled_from(vals))}))")
    else:       # a value accumulator: softmax numerator times V, rescaled by a running max
        rm = draw(st.sampled_from(maxes or ["LM"]))
        lines += ['(let V (CreateTensor "V"))', f"(let BV (T_split_m_m1m0 V {tiles}))",
                  f"(let W (M_exp_m1m0{P} (M_sub_m1m0{P} {scores} {rm})))"]
        factor = "(Const 1.0)"
        if rm in maxes:
            lines.append(f"(let PR (M_exp_m1{P} (M_sub_m1{P} (S_shift_m1 {rm} (Const -inf)) {rm})))")
            factor = "PR"
        state = draw(st.sampled_from(STATES))
        lines.append(f'(let N (S_scan_m1 "{state}" (Const 0.0) (M_add_fm1{P} (M_mul_fm1m0{P}_R_add_m0 W BV) '
                     f'(M_mul_fm1{P} (S_prev_m1 "{state}") {factor}))))')
        lines.append("(let O (S_last_m1 N))")
    lines.append("(extract O)")
    return "\n".join(lines) + "\n"


@dataclass
class Tally:
    programs: int = 0
    rejected: int = 0                        # drawn but not accepted by the checker (read, ranks)
    right: Counter = field(default_factory=Counter)       # target -> kernels equal to the evaluator
    refused: Counter = field(default_factory=Counter)     # (target, reason) -> count
    wrong: list = field(default_factory=list)             # (target, program text, message)


def reason(message: str) -> str:
    """A refusal's cause without its names and numbers, to count alike refusals together."""
    cause = message.split("codegen error: ", 1)[-1].splitlines()[0]
    cause = re.sub(r"'[^']*'", "'_'", cause)
    cause = re.sub(r"\b[A-Z][A-Z0-9]*\b(, [A-Z][A-Z0-9]*)*", "X", cause)
    return re.sub(r"(?<![\w-])\d+(?![\w-])", "N", cause).split("; ")[0][:160]


def judge(text: str, tally: Tally, targets=("torch", "triton")) -> bool:
    """Generate and validate one program on each target; record right, refused or wrong. False when the checker
    does not accept the program (nothing to generate)."""
    try:
        program = read_text(text, "fuzz.egg").program
        program_ranks(program)
    except VerifyError:
        tally.rejected += 1
        return False
    tally.programs += 1
    for target in targets:
        try:
            code = generate(program, target)
        except CodegenError as exc:
            tally.refused[(target, reason(exc.format()))] += 1
            continue
        try:
            result = validate.validate(program, code, target, generate)
        except CodegenError as exc:
            tally.wrong.append((target, text, exc.format()))
            continue
        assert result.ran, result.reason
        tally.right[target] += 1
    return True


@needs_torch
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(scan_programs())
def test_every_fuzzed_kernel_is_right_or_refused(text):
    tally = Tally()
    judge(text, tally, ("torch", "triton") if HAVE_TRITON else ("torch",))
    assert not tally.wrong, tally.wrong


def test_the_strategy_draws_programs_the_checker_accepts():
    """Most drawn programs are accepted (the filter keeps the fuzzer from testing only the reader)."""
    seen: list[bool] = []
    shapes: Counter = Counter()

    @settings(max_examples=60, deadline=None, derandomize=True, database=None)
    @given(scan_programs())
    def draw(text):
        try:
            program_ranks(read_text(text, "fuzz.egg").program)
            seen.append(True)
        except VerifyError:
            seen.append(False)
            return
        shapes["rescaled sum"] += "(S_prev_m1" in text and "(M_mul_m1p (S_prev_m1" in text
        shapes["query split"] += "T_split_p_p1p0" in text
        shapes["mask"] += ":mask" in text
        shapes["input with the scan rank"] += "L[m1,p]" in text

    draw()
    assert len(seen) >= 40 and sum(seen) >= 0.9 * len(seen)
    assert all(shapes[k] for k in ("rescaled sum", "query split", "mask", "input with the scan rank")), shapes


def test_refusal_reasons_are_counted_alike():
    assert reason("a.egg:3: codegen error: output 'O' needs BQK, BV for every tile; x") == \
        reason("b.egg:9: codegen error: output 'P' needs RM for every tile; y")
    assert HAVE_TORCH in (True, False)
