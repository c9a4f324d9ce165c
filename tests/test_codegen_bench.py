"""bench/gpu.py (the Triton kernel vs SDPA flash, for a GPU machine) and the CPU bench: their argument parsing, and
the GPU script's dry path on the CPU (the same code path, under TRITON_INTERPRET=1), since no GPU runs the tests."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from test_codegen import needs_triton

ROOT = Path(__file__).resolve().parent.parent


def bench_module(name: str):
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_script_parses_its_arguments():
    gpu = bench_module("gpu")
    args = gpu.parser().parse_args(["--lengths", "1024,2048", "--heads", "32", "--head-dims", "64,128",
                                    "--dtypes", "fp16,bf16"])
    assert args.lengths == [1024, 2048] and args.heads == [32] and args.dtypes == ["fp16", "bf16"]
    assert len(gpu.shapes(args)) == 2 * 1 * 2 * 2
    defaults = gpu.parser().parse_args([])
    assert defaults.lengths == [1024, 2048, 4096, 8192, 16384] and defaults.heads == [16, 32]
    assert defaults.head_dims == [64, 128] and defaults.dtypes == ["fp16", "bf16"]
    for bad in (["--lengths", "1k"], ["--dtypes", "fp8"], ["--heads", "0"]):
        with pytest.raises(SystemExit):
            gpu.parser().parse_args(bad)


@needs_triton
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_gpu_script_dry_run_on_the_cpu(tmp_path, monkeypatch):
    gpu = bench_module("gpu")
    out = tmp_path / "gpu.json"
    assert gpu.main(["--dry-run", "--dtypes", "bf16", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    (row,) = result["rows"]
    assert result["device"].startswith("CPU (dry run") and "translation validation: the triton code" in \
        result["validation"]
    assert row["L"] == 37 and row["max_error"] <= 3e-2 and row["kernel_ms"] > 0


def test_gpu_script_without_a_gpu_says_so(monkeypatch):
    pytest.importorskip("torch")
    import torch

    gpu = bench_module("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="no CUDA GPU"):
        gpu.run(gpu.parser().parse_args([]))


def test_bench_tables():
    kernels, fuzz = bench_module("kernels"), bench_module("codegen_fuzz")
    rows = [{"impl": i, "L": 1024, "ms": ms, "peak_extra_mb": 1.0} for i, ms in zip(kernels.IMPLS, (2.0, 1.0, 3.0))]
    text = kernels.kernels_table({"rows": rows, "gpu": "not run"})
    assert "1024" in text and "2.00" in text.splitlines()[-2]
    result = {"programs": 3, "drawn": 4, "seconds": 1.0, "targets": ["torch"], "right": {"torch": 2},
              "refused": [{"target": "torch", "reason": "why", "count": 1}], "wrong": []}
    assert "torch         2        1      0" in fuzz.table(result) and "why" in fuzz.table(result)
