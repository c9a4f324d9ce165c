"""The drop-in attention(): `verify codegen` of a 1-pass program writes attention(query, key, value, scale=None,
block_m=None, block_n=None) in SDPA's layout; both targets against torch's scaled_dot_product_attention."""

from __future__ import annotations

import pytest
from test_codegen import HAVE_TRITON, ROOT, needs_torch, run_cli

from verify.codegen import CodegenError, attention, generate
from verify.codegen.check import module
from verify.reader import read_file, read_text

ONE_PASS = "proofs/attention_1pass.egg"


def drop_in(path: str, target: str, tmp_path, monkeypatch):
    """attention() of the module the CLI writes (validated before it is written), read back."""
    if target == "triton":
        if not HAVE_TRITON:
            pytest.skip("triton is not installed")
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    out = tmp_path / f"{target}.py"
    code, stdout, err = run_cli("codegen", ROOT / path, "--target", target, "-o", out)
    assert code == 0, err
    return module(out.read_text(), path)["attention"]


def sdpa_error(fn, dtype, batch=2, heads=3, kv_heads=3, length=37, keys=53, e=16, ev=8, scale=None, **blocks):
    import torch

    gen = torch.Generator().manual_seed(0)
    q = torch.randn(batch, heads, length, e, generator=gen).to(dtype)
    k = torch.randn(batch, kv_heads, keys, e, generator=gen).to(dtype)
    v = torch.randn(batch, kv_heads, keys, ev, generator=gen).to(dtype)
    want = torch.nn.functional.scaled_dot_product_attention(q.double(), k.double(), v.double(), scale=scale,
                                                            enable_gqa=kv_heads != heads)
    got = fn(q, k, v, scale=scale, **blocks)
    assert got.dtype == dtype and got.shape == (batch, heads, length, ev)
    return float((got.double() - want).abs().max() / want.abs().max())


@needs_torch
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("target", ["torch", "triton"])
def test_attention_matches_sdpa_fp32_and_bf16(target, tmp_path, monkeypatch):
    """The issue's done-when: batch 2, heads 3, L = 37, S = 53, E = 16, Ev = 8: <= 1e-5 (fp32), <= 3e-2 (bf16)."""
    import torch

    fn = drop_in(ONE_PASS, target, tmp_path, monkeypatch)
    assert sdpa_error(fn, torch.float32) <= 1e-5
    assert sdpa_error(fn, torch.bfloat16) <= 3e-2
    assert sdpa_error(fn, torch.float16) <= 3e-3
    blocks = dict(block_m=16, block_n=16) if target == "triton" else dict(block_m=5, block_n=7)
    assert sdpa_error(fn, torch.float32, **blocks) <= 1e-5           # ragged: 37 = 2x16+5 queries, 53 = 3x16+5 keys
    assert sdpa_error(fn, torch.float64, scale=0.7, **blocks) <= 1e-12


@needs_torch
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("target", ["torch", "triton"])
def test_grouped_query_heads_and_a_scaled_program(target, tmp_path, monkeypatch):
    import torch

    fn = drop_in(ONE_PASS, target, tmp_path, monkeypatch)
    assert sdpa_error(fn, torch.float32, heads=6, kv_heads=2, block_m=16, block_n=32) <= 1e-5
    scaled = drop_in("proofs/variants/attention_1pass_scaled.egg", target, tmp_path, monkeypatch)
    assert sdpa_error(scaled, torch.float32, scale=0.25) <= 1e-5
    with pytest.raises(ValueError, match="cannot share"):
        fn(torch.zeros(1, 3, 4, 16), torch.zeros(1, 2, 4, 16), torch.zeros(1, 2, 4, 8))


@needs_torch
def test_torch_attention_keeps_one_block(tmp_path, monkeypatch):
    """No intermediate larger than a block: the loop narrows key tiles and query blocks; nothing is stacked."""
    import torch

    fn = drop_in(ONE_PASS, "torch", tmp_path, monkeypatch)
    code = (tmp_path / "torch.py").read_text()
    assert "torch.stack" not in code and "narrow(3, k * block_n, size_m0)" in code
    assert sdpa_error(fn, torch.float32, batch=1, heads=2, kv_heads=1, length=9, keys=11, block_m=4,
                     block_n=3) <= 1e-5


def test_attention_only_for_attentions_interface():
    one = read_file(ROOT / ONE_PASS).program
    face, why = attention.interface(one)
    assert face is not None and not face.scaled and why == ""
    three = read_file(ROOT / "proofs/attention.egg").program
    assert attention.interface(three)[0] is None and "tile loop" in attention.interface(three)[1]
    assert "def attention(" not in generate(three, "torch")
    odd = read_text('(let Q (CreateTensor "Q"))\n(let K (CreateTensor "K"))\n'
                    '(let O (M_mul_emp_R_add_e Q K))\n(extract O)\n', "odd.egg").program
    assert attention.interface(odd)[0] is None
    for target in ("torch", "triton"):
        assert "def attention(query, key, value, scale=None, block_m=None, block_n=None):" in generate(one, target)


def test_the_per_output_functions_stay():
    source = read_file(ROOT / ONE_PASS)
    code = generate(source.program, "torch", source.text)
    assert "def AV(Q, K, V, *, M1=4):" in code and code.index("def AV(") < code.index("def attention(")
    with pytest.raises(CodegenError):
        generate(read_file(ROOT / "proofs/attention.egg").program, "triton")
