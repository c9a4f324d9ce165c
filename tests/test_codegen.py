"""verify codegen: generated PyTorch and Triton code, checked against the reference evaluator and torch's SDPA.

Generating code needs neither torch nor triton; running it needs the extra verify[codegen] (`make codegen-extra`,
which CI runs). Tests that run generated code skip, saying so, when the extra is missing.
"""

from __future__ import annotations

import importlib.util
import inspect
import io
from pathlib import Path

import numpy as np
import pytest

from verify import cli, ir
from verify.codegen import CodegenError, generate
from verify.codegen.lower import layout
from verify.evaluate import FloatAlgebra, evaluate
from verify.reader import read_file, read_text
from verify.shapes import program_ranks

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "proofs").rglob("*.egg"))
ONE_PASS = [p for p in PROGRAMS if "S_scan" in (ROOT / p).read_text() and "running_max" not in p]
HAVE_TORCH = importlib.util.find_spec("torch") is not None
HAVE_TRITON = HAVE_TORCH and importlib.util.find_spec("triton") is not None
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed: `make codegen-extra` "
                                 "(pip install -e '.[codegen]') installs verify[codegen]")
needs_triton = pytest.mark.skipif(not HAVE_TRITON, reason="triton is not installed: `make codegen-extra` "
                                  "(pip install -e '.[codegen]') installs verify[codegen]")


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    return cli.run([str(a) for a in argv], out, err), out.getvalue(), err.getvalue()


def load(path: str, target: str = "torch") -> tuple[dict, ir.Program]:
    source = read_file(ROOT / path)
    return module(generate(source.program, target, source.text), path), source.program


def module(code: str, name: str) -> dict:
    namespace: dict = {}
    exec(compile(code, f"<generated from {name}>", "exec"), namespace)
    return namespace


def make_inputs(program: ir.Program, output: str, sizes: dict, seed: int = 0, masked_rows=()) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for node in layout(program, output, program_ranks(program)).inputs:
        shape = tuple(sizes[r] for r in node.ranks)
        if node.kind == "mask":
            mask = np.where(rng.random(shape) < 0.4, -np.inf, 0.0)
            for p in masked_rows:                   # every key masked for these queries
                mask[:, p] = -np.inf
            out[node.name] = mask
        elif not node.ranks:
            out[node.name] = np.array(0.125)
        else:
            out[node.name] = rng.normal(size=shape)
    return out


def reference(program: ir.Program, output: str, sizes: dict, tiles: dict, inputs: dict, dtype=np.float64):
    """The reference evaluator's result, with the generated function's tile keywords turned into sizes."""
    plan = layout(program, output, program_ranks(program)).sizes
    full = dict(sizes)
    for rank in plan.order:
        if rank in plan.tiles:
            kw, default, _ = plan.tiles[rank]
            full[rank] = tiles.get(kw, default)
        elif rank in plan.inner:
            whole, outer = plan.inner[rank]
            full[rank] = full[whole] // full[outer]
        elif rank in plan.product:
            a, b = plan.product[rank]
            full[rank] = full[a] * full[b]
    data = {k: v.astype(dtype) for k, v in inputs.items()}
    return evaluate(program.bindings, [output], full, data, FloatAlgebra(dtype))[output].aligned(
        program_ranks(program)[output]).astype(np.float64)


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want| over the defined elements; the undefined (NaN) ones must coincide."""
    assert np.array_equal(np.isnan(got), np.isnan(want)), "undefined (NaN) elements differ"
    defined = ~np.isnan(want)
    if not defined.any():
        return 0.0
    return float(np.max(np.abs(got[defined] - want[defined])) / max(np.max(np.abs(want[defined])), 1e-300))


def call(fn, inputs: dict, dtype, **kwargs):
    import torch

    args = {name: torch.from_numpy(np.array(inputs[name], dtype=dtype))
            for name in inspect.signature(fn).parameters if name in inputs}
    return fn(**args, **kwargs).double().numpy()


def tilings(fn, m: int):
    """The program's own tile counts, and M1 = 5 and 16 where the program tiles m directly (M0 = 48, 15)."""
    kwargs = {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.kind is p.KEYWORD_ONLY}
    yield {}
    if "M1" in kwargs and "M" not in kwargs and "M2" not in kwargs:
        for m1 in (5, 16):
            if m % m1 == 0:
                yield {"M1": m1}


# -- generating (no torch needed) -------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", PROGRAMS)
def test_every_proof_program_has_torch_code(path):
    source = read_file(ROOT / path)
    code = generate(source.program, "torch", source.text)
    compile(code, path, "exec")
    for name in source.program.output_names():
        assert f"def {name}(" in code


@pytest.mark.parametrize("path", ONE_PASS)
def test_one_pass_family_has_triton_kernels(path):
    source = read_file(ROOT / path)
    code = generate(source.program, "triton", source.text)
    compile(code, path, "exec")
    assert "@triton.jit" in code and "for k in range(0, size_m1):" in code


def test_the_one_pass_torch_code_is_the_flashattention_loop():
    source = read_file(ROOT / "proofs/attention_1pass.egg")
    code = generate(source.program, "torch", source.text)
    assert "def AV(Q, K, V, *, M1=4):" in code
    loop = code[code.index("for k in range(size_m1):"):]
    for line in ("BK = K.narrow(1, k * size_m0, size_m0)", "RM = torch.maximum(RM_state, LM)",
                 "PRM = torch.exp(", "RM_before = RM"):
        assert line in loop
    assert "torch.stack" not in code                 # nothing of size M*P is ever materialised


def test_triton_refuses_programs_outside_the_one_pass_family():
    code, out, err = run_cli("codegen", ROOT / "proofs/attention.egg", "--target", "triton")
    assert code == 2 and "proofs/attention.egg:16: codegen error" in err and "1-pass family" in err
    code, out, err = run_cli("codegen", ROOT / "proofs/derivation/attention_running_max.egg", "--target", "triton")
    assert code == 2 and "needs BQK, BV for every tile" in err


def test_cli_codegen_writes_a_module(tmp_path):
    target = tmp_path / "k" / "attention_1pass.py"
    code, out, err = run_cli("codegen", ROOT / "proofs/attention_1pass.egg", "--target", "torch", "-o", target)
    assert code == 0 and f"wrote {target}" in out and "def AV(" in target.read_text()
    code, out, err = run_cli("codegen", ROOT / "proofs/attention_1pass.egg")
    assert code == 0 and out.startswith('"""Generated by `verify codegen')


@pytest.mark.parametrize("argv, message", [
    (["codegen", "missing.egg"], "no such file"),
    (["codegen", "proofs/attention.egg", "--target", "cuda"], ""),
    (["codegen", "tests/corpus/malformed/unknown-op.egg"], "unknown-op.egg:"),
])
def test_cli_codegen_bad_input_exits_2(argv, message):
    code, out, err = run_cli(*[ROOT / a if a.endswith(".egg") and a != "missing.egg" else a for a in argv])
    assert code == 2 and message in err


def test_an_operator_without_a_translation_is_a_located_error():
    program = read_text('(let Q (CreateTensor "Q"))\n(let T (M_exp_ep Q))\n(extract T)\n', "tanh.egg").program
    program.bindings["T"] = ir.Binding("T", ir.Map("tanh", ("e", "p"), (ir.Ref("Q", 2),), 2), 2)
    with pytest.raises(CodegenError) as exc:
        generate(program, "torch")
    assert exc.value.format().startswith("tanh.egg:2: codegen error: operator") and "tanh" in exc.value.format()


TWO_OUTPUTS = """\
(let Q (CreateTensor "Q"))
(let K (CreateTensor "K"))
(let V (CreateTensor "V"))
(let tau (CreateTensor "tau[]"))
(let BK (T_split_m_m1m0 K 3))
(let BV (T_split_m_m1m0 V 3))
(let BQK (M_mul_em1m0p_R_add_e (M_mul_ep Q tau) BK))
(let LM (R_max_m0 BQK))
(let RM (S_scan_m1 "RM" (Const -inf) (M_max_m1p (S_prev_m1 "RM") LM)))
(let SLN (M_exp_m1m0p (M_sub_m1m0p BQK RM)))
(let PRM (M_exp_m1p (M_sub_m1p (S_shift_m1 RM (Const -inf)) RM)))
(let RD (S_scan_m1 "RD" (Const 0.0) (M_add_m1p (R_add_m0 SLN) (M_mul_m1p (S_prev_m1 "RD") PRM))))
(let RNV (S_scan_m1 "RNV" (Const 0.0) (M_add_fm1p (M_mul_fm1m0p_R_add_m0 SLN BV) (M_mul_fm1p (S_prev_m1 "RNV") PRM))))
(let AV (M_div_fp (S_last_m1 RNV) (S_last_m1 RD)))
(let L (M_add_p (S_last_m1 RM) (M_log_p (S_last_m1 RD))))
(extract AV)
(extract L)
"""


# -- running the torch code ------------------------------------------------------------------------------------------

SMALL = {"e": 16, "f": 12, "m": 240, "p": 24}


@needs_torch
@pytest.mark.parametrize("path", PROGRAMS)
def test_torch_code_matches_the_reference_evaluator(path):
    """float64 to 1e-12 relative (the undefined elements coincide); float32 as close as the reference's own
    float32 evaluation, for the program's tiling and, where it tiles m directly, M0 = 48 and M0 = 15."""
    namespace, program = load(path)
    for output in program.output_names():
        fn = namespace[output]
        inputs = make_inputs(program, output, SMALL)
        for tiles in tilings(fn, SMALL["m"]):
            want = reference(program, output, SMALL, tiles, inputs)
            assert rel_error(call(fn, inputs, np.float64, **tiles), want) < 1e-12, tiles
            ref32 = rel_error(reference(program, output, SMALL, tiles, inputs, np.float32), want)
            assert rel_error(call(fn, inputs, np.float32, **tiles), want) <= 4 * ref32 + 1e-6, tiles


@needs_torch
def test_two_extracts_make_two_functions_and_scalar_inputs_take_numbers():
    import torch

    program = read_text(TWO_OUTPUTS, "two.egg").program
    namespace = module(generate(program, "torch"), "two.egg")
    sizes = {"e": 8, "f": 4, "m": 21, "p": 5}
    inputs = make_inputs(program, "AV", sizes)
    for output in ("AV", "L"):
        want = reference(program, output, sizes, {}, inputs)
        assert rel_error(call(namespace[output], inputs, np.float64), want) < 1e-12
    args = {k: torch.from_numpy(inputs[k]) for k in "QKV"}
    assert torch.allclose(namespace["AV"](**args, tau=0.125), namespace["AV"](**args, tau=torch.tensor(0.125)))
    with pytest.raises(ValueError, match="M1 = 4 tiles: rank m of size 21"):
        namespace["L"](Q=args["Q"], K=args["K"], tau=0.125, M1=4)    # L needs no V: its function takes none
    with pytest.raises(ValueError, match="input K must have 2 dimension"):
        namespace["AV"](Q=args["Q"], K=args["K"][None], V=args["V"], tau=1.0)


@needs_torch
@pytest.mark.parametrize("path", ["proofs/masked/attention_1pass_guarded.egg", "proofs/masked/attention_1pass_naive.egg",
                                  "proofs/masked/attention_masked.egg"])
def test_fully_masked_rows_are_undefined_as_in_the_reference(path):
    namespace, program = load(path)
    inputs = make_inputs(program, "AV", SMALL, masked_rows=(0, 7))
    for tiles in tilings(namespace["AV"], SMALL["m"]):
        want = reference(program, "AV", SMALL, tiles, inputs)
        got = call(namespace["AV"], inputs, np.float64, **tiles)
        assert np.isnan(want[:, [0, 7]]).all()
        assert rel_error(got, want) < 1e-12


def sdpa(Q, K, V, mask=None, scale=1.0):
    import torch

    q, k, v = (torch.from_numpy(np.ascontiguousarray(x.T))[None, None] for x in (Q, K, V))
    m = None if mask is None else torch.from_numpy(np.ascontiguousarray(mask.T))[None, None]
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=scale)[0, 0].numpy().T


REALISTIC = {"e": 64, "f": 64, "m": 1024, "p": 128}


@needs_torch
@pytest.mark.parametrize("path, tiles, m", [
    ("proofs/attention.egg", {}, 1024),
    ("proofs/attention_1pass.egg", {"M1": 16}, 1024),
    ("proofs/attention_1pass.egg", {"M1": 8}, 1000),          # M0 = 125: not a power of two
    ("proofs/masked/attention_1pass_guarded.egg", {"M1": 8}, 1024),
    ("proofs/variants/attention_1pass_scaled.egg", {"M1": 16}, 1024),
])
def test_realistic_sizes_against_the_evaluator_and_sdpa(path, tiles, m):
    namespace, program = load(path)
    sizes = {**REALISTIC, "m": m}
    inputs = make_inputs(program, "AV", sizes, masked_rows=(3,))
    got = call(namespace["AV"], inputs, np.float64, **tiles)
    assert rel_error(got, reference(program, "AV", sizes, tiles, inputs)) < 1e-12
    mask = inputs.get("B")
    want = sdpa(inputs["Q"], inputs["K"], inputs["V"], mask, float(inputs.get("tau", 1.0)))
    keep = slice(None) if mask is None else [p for p in range(sizes["p"]) if p != 3]
    assert rel_error(got[:, keep], want[:, keep]) < 1e-12


@needs_torch
def test_lse_against_torch_logsumexp():
    import torch

    for path in ("proofs/variants/lse_3pass.egg", "proofs/variants/lse_1pass.egg"):
        namespace, program = load(path)
        inputs = make_inputs(program, "L", SMALL)
        want = torch.logsumexp(torch.from_numpy(inputs["Q"].T @ inputs["K"]), dim=1).numpy()
        assert rel_error(call(namespace["L"], inputs, np.float64), want) < 1e-12


@needs_torch
def test_optimize_emit_writes_the_kernel_of_the_validated_program(tmp_path, monkeypatch):
    """3-pass in, FlashAttention-2 out: the torch kernel from --emit, and the Triton kernel of the same optimized
    program (written with -o and read back), both equal to the 3-pass reference."""
    kernel, optimized = tmp_path / "attention_opt.py", tmp_path / "attention_opt.egg"
    code, out, err = run_cli("optimize", ROOT / "proofs/attention.egg", "-o", optimized, "--emit", "torch",
                             "--emit-output", kernel)
    assert code == 0, err
    assert "for k in range(size_m1):" in kernel.read_text() and "verify optimize" in kernel.read_text()
    program = read_file(ROOT / "proofs/attention.egg").program
    inputs = make_inputs(program, "AV", SMALL)
    want = reference(program, "AV", SMALL, {}, inputs)
    assert rel_error(call(module(kernel.read_text(), "optimized")["AV"], inputs, np.float64, M1=6), want) < 1e-12
    if HAVE_TRITON:
        monkeypatch.setenv("TRITON_INTERPRET", "1")
        code, out, err = run_cli("codegen", optimized, "--target", "triton", "-o", tmp_path / "triton_opt.py")
        assert code == 0, err
        fn = module((tmp_path / "triton_opt.py").read_text(), "optimized, triton")["AV"]
        assert rel_error(call(fn, inputs, np.float64, M1=6), want) < 1e-12


def test_optimize_emit_with_json_needs_a_file():
    code, out, err = run_cli("optimize", ROOT / "proofs/attention.egg", "--emit", "torch", "--json")
    assert code == 2 and "--emit-output" in err


# -- running the Triton kernel under the interpreter -----------------------------------------------------------------

@pytest.fixture
def interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")     # read when @triton.jit wraps the kernel: run on the CPU


@needs_triton
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy, inside the interpreter: NaN where the reference has it
@pytest.mark.parametrize("path", ONE_PASS)
def test_triton_kernel_matches_the_reference_under_the_interpreter(path, interpreter):
    """M0 = 48 (a block of 64 with a mask), P = 24 (the second block of 16 queries half empty)."""
    namespace, program = load(path, "triton")
    output = program.output_names()[0]
    inputs = make_inputs(program, output, SMALL, masked_rows=(5,))
    for tiles in ({"M1": 5}, {"M1": 16}):
        want = reference(program, output, SMALL, tiles, inputs)
        assert rel_error(call(namespace[output], inputs, np.float64, **tiles), want) < 1e-12
        ref32 = rel_error(reference(program, output, SMALL, tiles, inputs, np.float32), want)
        assert rel_error(call(namespace[output], inputs, np.float32, **tiles), want) <= 4 * ref32 + 1e-6


@needs_triton
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy, inside the interpreter: NaN where the reference has it
def test_triton_kernel_at_realistic_sizes_against_sdpa(interpreter):
    namespace, program = load("proofs/attention_1pass.egg", "triton")
    inputs = make_inputs(program, "AV", REALISTIC)
    got = call(namespace["AV"], inputs, np.float64, M1=16, BLOCK_P=32)
    assert rel_error(got, reference(program, "AV", REALISTIC, {"M1": 16}, inputs)) < 1e-12
    assert rel_error(got, sdpa(inputs["Q"], inputs["K"], inputs["V"])) < 1e-12


@needs_triton
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy, inside the interpreter: NaN where the reference has it
def test_two_extracts_make_two_kernels(interpreter):
    program = read_text(TWO_OUTPUTS, "two.egg").program
    namespace = module(generate(program, "triton"), "two.egg")
    sizes = {"e": 8, "f": 4, "m": 21, "p": 5}
    inputs = make_inputs(program, "AV", sizes)
    for output in ("AV", "L"):
        want = reference(program, output, sizes, {}, inputs)
        assert rel_error(call(namespace[output], inputs, np.float64), want) < 1e-12

