"""The three kernels issue 20 found wrong, each checked against the numpy reference evaluator (verify/evaluate.py):
two S_shift of one binding with different fills, two scans sharing a state string, a scan over a rank an input
already carries. Both targets: the kernel is right, or refused with a located message (exit 2)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from test_codegen import HAVE_TRITON, ROOT, needs_torch

from verify import cli
from verify.codegen import generate, lower, validate
from verify.codegen.check import call, make_inputs, module, reference, rel_error
from verify.reader import read_text

HEAD = """\
(let Q (CreateTensor "Q"))
(let K (CreateTensor "K"))
(let BK (T_split_m_m1m0 K 3))
(let BQK (M_mul_em1m0p_R_add_e Q BK))
(let LM (R_max_m0 BQK))
"""

PROGRAMS = {
    # the state before step k read with two fills: at step 0 one is 0, the other 5
    "two-fills": HEAD + """\
(let RM (S_scan_m1 "RM" (Const -inf) (M_max_m1p (S_prev_m1 "RM") LM)))
(let A (M_add_m1p (S_shift_m1 RM (Const 0.0)) (M_mul_m1p (S_shift_m1 RM (Const 5.0)) (Const 2.0))))
(let S (S_scan_m1 "S" (Const 0.0) (M_add_m1p (S_prev_m1 "S") A)))
(extract (S_last_m1 S))
""",
    # a running max and a running sum whose states are both called "S": each S_prev is its own scan's state
    "same-state-string": HEAD + """\
(let RM (S_scan_m1 "S" (Const -inf) (M_max_m1p (S_prev_m1 "S") LM)))
(let RS (S_scan_m1 "S" (Const 0.0) (M_add_m1p (S_prev_m1 "S") LM)))
(let O (M_add_p (S_last_m1 RM) (M_mul_p (S_last_m1 RS) (Const 3.0))))
(extract O)
""",
    # a running max over an input that carries the scan's rank itself (no split)
    "input-has-scan-rank": """\
(let L (CreateTensor "L[m1,p]"))
(let RM (S_scan_m1 "RM" (Const -inf) (M_max_m1p (S_prev_m1 "RM") L)))
(let O (M_mul_p (S_last_m1 RM) (Const 2.0)))
(extract O)
""",
}
SIZES = [{"e": 3, "m": 12, "p": 5, "m1": 4}, {"e": 2, "m": 21, "p": 17, "m1": 7}]


def program_of(name):
    return read_text(PROGRAMS[name], f"{name}.egg").program


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    return cli.run([str(a) for a in argv], out, err), out.getvalue(), err.getvalue()


@needs_torch
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", sorted(PROGRAMS))
@pytest.mark.parametrize("target", ["torch", "triton"])
def test_the_three_kernels_are_right(name, target, monkeypatch):
    if target == "triton":
        if not HAVE_TRITON:
            pytest.skip("triton is not installed")
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    program = program_of(name)
    output = program.output_names()[0]
    fn = module(generate(program, target), name)[output]
    for sizes in SIZES:
        tiles = {"M1": 3} if "T_split" in PROGRAMS[name] else {}
        inputs = make_inputs(program, output, sizes)
        want = reference(program, output, sizes, tiles, inputs)
        got = call(fn, inputs, np.float64, **tiles)
        assert rel_error(got, want) < 1e-12, (sizes, got, want)


@needs_torch
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_codegen_validates_and_writes_the_three(name, tmp_path):
    source = tmp_path / f"{name}.egg"
    source.write_text(PROGRAMS[name])
    target = tmp_path / "k.py"
    code, out, err = run_cli("codegen", source, "-o", target)
    assert code == 0, err
    assert "translation validation: the torch code equals the reference evaluator" in out
    assert "translation validation: the torch code equals" in target.read_text()


# -- translation validation catches a wrong lowering -------------------------------------------------------------------

@needs_torch
@pytest.mark.parametrize("target", ["torch", "triton"])
def test_a_wrong_lowering_is_caught_located_and_nothing_is_written(target, tmp_path, monkeypatch):
    """sub lowered as add: the kernel is wrong; codegen exits 2 naming the first binding with a sub (SLN at line
    14 of attention_1pass.egg: BK, BQK, LM, RM before it are right), and writes no file."""
    if target == "triton" and not HAVE_TRITON:
        pytest.skip("triton is not installed")
    monkeypatch.setitem(lower.ELEMENTWISE, "sub", "{0} + {1}")
    out_file = tmp_path / "k.py"
    code, out, err = run_cli("codegen", ROOT / "proofs/attention_1pass.egg", "--target", target, "-o", out_file)
    assert code == 2, err
    assert "proofs/attention_1pass.egg:14: codegen error: translation validation failed" in err
    assert "first binding that differs is 'SLN" in err
    assert not out_file.exists()


def test_without_torch_the_kernel_says_it_is_unchecked(tmp_path, monkeypatch):
    monkeypatch.setattr(validate, "missing", lambda target: "torch is not installed: `make codegen-extra`")
    out_file = tmp_path / "k.py"
    code, out, err = run_cli("codegen", ROOT / "proofs/attention_1pass.egg", "-o", out_file)
    assert code == 1
    assert "translation validation: NOT RUN (torch is not installed" in out
    assert "without translation validation" in err
    assert "NOT RUN" in out_file.read_text()


@needs_torch
def test_the_validation_sizes_are_ragged_and_tile_counts_vary():
    program = read_text(HEAD + '(let RM (S_scan_m1 "RM" (Const -inf) (M_max_m1p (S_prev_m1 "RM") LM)))\n'
                        "(extract (S_last_m1 RM))\n", "v.egg").program
    cases = validate.size_cases(program, program.output_names()[0])
    counts = {tiles["M1"] for _, tiles in cases}
    assert counts == {1, 3, 4}
    assert any(sizes["m"] // tiles["M1"] % 16 and sizes["p"] > 16 for sizes, tiles in cases)
