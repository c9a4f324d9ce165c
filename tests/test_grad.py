"""`verify grad`: reverse-mode derivatives of programs, against torch.autograd and central finite differences."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from verify import ir
from verify.cli import run
from verify.evaluate import evaluate
from verify.grad import GradError, derive
from verify.reader import read_file, read_text

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"e": 3, "f": 2, "p": 3, "m": 6, "m1": 3, "m0": 2}


def _inputs(program: ir.Program, rng) -> dict[str, np.ndarray]:
    out = {}
    for b in program.bindings.values():
        for n in ir.walk(b.expr):
            if isinstance(n, ir.Input) and n.name not in out:
                out[n.name] = rng.normal(size=[SIZES[r] for r in n.ranks]) * 1.5
    return out


def _run(program: ir.Program, inputs) -> dict[str, np.ndarray]:
    memo = evaluate(program.bindings, program.output_names(), SIZES, inputs)
    return {name: memo[name] for name in program.output_names()}


def _aligned(t, ranks) -> np.ndarray:
    return np.transpose(t.data, [t.ranks.index(r) for r in ranks])


def _gradients(path: str, wrt=None):
    program = read_file(ROOT / path).program
    d = derive(program, wrt)
    rng = np.random.default_rng(7)
    inputs = _inputs(d.program, rng)
    got = _run(d.program, inputs)
    return program, d, inputs, got


def _loss(program, inputs, cot, grad_program) -> float:
    """<dOUT, OUT> summed over the outputs: its gradient is what `verify grad` computes."""
    total = 0.0
    for out in program.output_names():
        t = evaluate(program.bindings, [out], SIZES, inputs)[out]
        total += float(np.sum(_aligned(t, grad_program.bindings[f"d{out}"].expr.ranks) * cot[f"d{out}"]))
    return total


@pytest.mark.parametrize("path", ["proofs/attention.egg", "proofs/attention_1pass.egg",
                                  "proofs/variants/attention_scaled.egg", "proofs/attention_2pass.egg"])
def test_gradient_matches_finite_differences(path):
    program, d, inputs, got = _gradients(path)
    cot = {f"d{k}": inputs[f"d{k}"] for k in program.output_names()}
    base = {k: v for k, v in inputs.items() if k not in cot}
    rng = np.random.default_rng(1)
    for grad_name in d.program.output_names():
        x = grad_name[1:]
        t = got[grad_name]
        g = _aligned(t, program_input_ranks(program, x))
        direction = rng.normal(size=base[x].shape)
        h = 1e-5
        plus = {**base, x: base[x] + h * direction}
        minus = {**base, x: base[x] - h * direction}
        fd = (_loss(program, plus, cot, d.program) - _loss(program, minus, cot, d.program)) / (2 * h)
        assert abs(fd - float(np.sum(g * direction))) < 1e-6 * (1 + abs(fd)), (path, x)


def program_input_ranks(program: ir.Program, name: str) -> tuple[str, ...]:
    for b in program.bindings.values():
        for n in ir.walk(b.expr):
            if isinstance(n, ir.Input) and n.name == name:
                return n.ranks
    raise KeyError(name)


@pytest.mark.parametrize("path", ["proofs/attention.egg", "proofs/attention_1pass.egg",
                                  "proofs/variants/attention_scaled.egg"])
def test_gradient_matches_torch_autograd(path):
    torch = pytest.importorskip("torch", reason="torch is not installed (make codegen-extra)")
    program, d, inputs, got = _gradients(path)
    Q, K, V, dO = (torch.tensor(inputs[n], dtype=torch.float64, requires_grad=n != "dAV")
                   for n in ("Q", "K", "V", "dAV"))
    tau = None
    S = torch.einsum("ep,em->mp", Q, K)
    if "tau" in inputs:
        tau = torch.tensor(inputs["tau"], dtype=torch.float64, requires_grad=True)
        S = S * tau
    O = torch.einsum("mp,fm->fp", torch.softmax(S, dim=0), V)
    O.backward(dO)
    expect = {"dQ": (Q.grad, ("e", "p")), "dK": (K.grad, ("e", "m")), "dV": (V.grad, ("f", "m"))}
    if tau is not None:
        expect["dtau"] = (tau.grad, ())
    assert set(d.program.output_names()) == set(expect)
    for name, (want, ranks) in expect.items():
        np.testing.assert_allclose(_aligned(got[name], ranks), want.numpy(), rtol=1e-10, atol=1e-12)


def test_wrt_order_and_cotangent_inputs():
    program = read_file(ROOT / "proofs/attention.egg").program
    d = derive(program, ["V", "Q"])
    assert d.program.output_names() == ["dV", "dQ"]
    cot = d.program.bindings["dAV"].expr
    assert isinstance(cot, ir.Input) and cot.ranks == ("f", "p")
    assert [s.binding for s in d.stops] == ["GM"]
    # the justification replaces GM, and nothing else, by a fresh input
    assert isinstance(d.justification.bindings["GM"].expr, ir.Input)


def _cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_gradient_name_taken_is_refused():
    text = '(let X (CreateTensor "X[m]"))\n(let dX (M_exp_m X))\n(let Y (R_add_m dX))\n(extract Y)\n'
    with pytest.raises(GradError, match="dX, which the program already uses"):
        derive(read_text(text, "taken.egg").program)


def test_unknown_wrt_is_a_located_error():
    code, out, err = _cli("grad", str(ROOT / "proofs/attention.egg"), "--wrt", "X")
    assert code == 2 and "X: not a real input" in err + out


def test_empty_wrt_is_a_usage_error():
    code, out, err = _cli("grad", str(ROOT / "proofs/attention.egg"), "--wrt", "")
    assert code == 2 and "give distinct input names" in err + out


# the Triton init with the shift filled with 0 instead of -inf: the outputs do not depend on the running max, but
# that is certified only within the bound here, so the gradient is written with exit 1 and says so
TRITON_INIT = (ROOT / "proofs" / "conventions" / "triton_init_1pass.egg").read_text()
FILL0 = TRITON_INIT.replace("(S_shift_m1 RM (Const -inf))", "(S_shift_m1 RM (Const 0.0))")


def test_a_stop_gradient_justified_only_within_a_bound_exits_1(tmp_path):
    assert FILL0 != TRITON_INIT
    f = tmp_path / "fill0.egg"
    f.write_text(FILL0)
    code, out, err = _cli("grad", str(f), "--no-sympy")
    assert code == 1 and "justified only within a bound" in err
    assert "justified only within the bound above" in out and "(let dQ" in out


def test_max_that_matters_is_not_differentiated(tmp_path):
    """The output IS a maximum: its derivative depends on ties; the stop-gradient cannot be justified."""
    f = tmp_path / "max.egg"
    f.write_text('(let S (CreateTensor "S[m,p]"))\n(let Y (M_add_p (R_max_m S) (R_add_m S)))\n(extract Y)\n')
    code, out, err = _cli("grad", str(f), "--no-sympy")
    assert code == 1 and "not justified" in err and "REFUTED" in out
    assert "(let dS" not in out


def test_scan_used_per_step_is_refused():
    text = ('(let X (CreateTensor "X[m1,p]"))\n'
            '(let R (S_scan_m1 "R" (Const 0.0) (M_add_m1p X (M_mul_m1p (S_prev_m1 "R") X))))\n'
            '(let Y (R_add_m1 R))\n(extract Y)\n')
    with pytest.raises(GradError, match="final state"):
        derive(read_text(text, "scan.egg").program)
    text2 = text.replace("(let Y (R_add_m1 R))", "(let Y (S_last_m1 R))")
    with pytest.raises(GradError, match="telescopes"):
        derive(read_text(text2, "scan.egg").program)


@pytest.mark.slow
def test_derived_gradient_equals_the_textbook_gradient(tmp_path):
    out = tmp_path / "g.egg"
    code, text, err = _cli("grad", str(ROOT / "proofs/attention.egg"), "-o", str(out))
    assert code == 0, text + err
    code, text, err = _cli("equiv", str(out), str(ROOT / "proofs/backward/attention_grad.egg"), "--no-sympy")
    assert code == 0 and text.count("CERTIFIED") == 3, text + err
