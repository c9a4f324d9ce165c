"""The generated Triton attention() against SDPA's flash backend on a GPU: TFLOP/s (one command on a GPU machine).

    .venv/bin/python bench/gpu.py                       # L = 1k..16k, heads 16/32, head dim 64/128, fp16/bf16
    .venv/bin/python bench/gpu.py --lengths 2048 --heads 32 --head-dims 64 --dtypes fp16   # the seed's A100 point
    .venv/bin/python bench/gpu.py --dry-run             # no GPU: the same path on the CPU under TRITON_INTERPRET=1

The kernel is `verify codegen PROGRAM --target triton` (default proofs/attention_1pass.egg): generated, validated
against the reference evaluator (under the interpreter, at small sizes), then loaded for the GPU. For each shape
(batch 1 unless --batch, L = S, E = Ev) both are timed with triton.testing.do_bench (median ms) after a check
that the kernel agrees with SDPA (max error relative to the output's largest value); TFLOP/s counts the two
matrix products, 2 * batch * heads * L * S * (E + Ev) flops. `attention()` autotunes its block sizes on the
first call of each shape (the autotune list of verify/codegen/attention.py); --block-m/--block-n fix them.
Writes bench/gpu_results.json (not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DTYPES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}


def ints(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of integers") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"'{text}': give positive integers")
    return values


def dtypes(text: str) -> list[str]:
    values = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in values if x not in DTYPES]
    if not values or bad:
        raise argparse.ArgumentTypeError(f"'{text}': dtypes are {', '.join(DTYPES)}")
    return values


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--program", default="proofs/attention_1pass.egg", help="a 1-pass program with attention's "
                   "interface (default proofs/attention_1pass.egg)")
    p.add_argument("--lengths", type=ints, default=[1024, 2048, 4096, 8192, 16384], help="L = S values")
    p.add_argument("--heads", type=ints, default=[16, 32])
    p.add_argument("--head-dims", type=ints, default=[64, 128])
    p.add_argument("--dtypes", type=dtypes, default=["fp16", "bf16"])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--block-m", type=int, help="fixed query block (default: autotuned)")
    p.add_argument("--block-n", type=int, help="fixed key block (default: autotuned)")
    p.add_argument("--dry-run", action="store_true", help="no GPU: run one tiny shape on the CPU under "
                   "TRITON_INTERPRET=1 (checks the script, not the speed)")
    p.add_argument("--out", default=str(ROOT / "bench" / "gpu_results.json"))
    return p


def shapes(args) -> list[tuple[int, int, int, str]]:
    if args.dry_run:
        return [(37, 2, 16, args.dtypes[0])]
    return [(n, h, d, dt) for dt in args.dtypes for d in args.head_dims for h in args.heads for n in args.lengths]


def kernel(program_path: str, interpret: bool):
    """attention() of the generated, validated Triton module (validation runs under the interpreter)."""
    sys.path.insert(0, str(ROOT))
    from verify.codegen import checked
    from verify.codegen.check import module
    from verify.reader import read_file

    source = read_file(ROOT / program_path)
    code, validation = checked(source.program, "triton", source.text, f"bench/gpu.py {program_path}")
    if not validation.ran:
        raise SystemExit(f"cannot validate the kernel: {validation.reason}")
    if interpret:
        os.environ["TRITON_INTERPRET"] = "1"
    else:
        os.environ.pop("TRITON_INTERPRET", None)
    namespace = module(code, program_path)
    if "attention" not in namespace:
        raise SystemExit(f"{program_path} has no attention() (it lacks attention's interface or a tile loop)")
    return namespace["attention"], validation.summary()


def timed(fn, interpret: bool) -> float:
    """Median milliseconds of fn()."""
    if interpret:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return sorted(times)[1] * 1000
    import triton

    return float(triton.testing.do_bench(fn))


def run(args, log=print) -> dict:
    import torch

    interpret = args.dry_run
    if not interpret and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here: run on a GPU machine, or --dry-run to check the script on the CPU")
    attention, validation = kernel(args.program, interpret)
    device = "cpu" if interpret else "cuda"
    blocks = {k: v for k, v in (("block_m", args.block_m), ("block_n", args.block_n)) if v is not None}
    if interpret and not blocks:
        blocks = {"block_m": 16, "block_n": 16}
    rows = []
    log(validation)
    log(f"{'dtype':5} {'heads':>5} {'dim':>4} {'L=S':>6} {'kernel ms':>10} {'flash ms':>9} {'kernel TF/s':>11} "
        f"{'flash TF/s':>10} {'ratio':>6} {'max err':>8}")
    for length, heads, dim, dt in shapes(args):
        dtype = getattr(torch, DTYPES[dt])
        gen = torch.Generator(device=device).manual_seed(0)
        q, k, v = (torch.randn(args.batch, heads, length, dim, generator=gen, device=device, dtype=dtype)
                   for _ in range(3))

        def ours(q=q, k=k, v=v):
            return attention(q, k, v, **blocks)

        def flash(q=q, k=k, v=v):
            if interpret:
                return torch.nn.functional.scaled_dot_product_attention(q, k, v)
            from torch.nn.attention import SDPBackend, sdpa_kernel

            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                return torch.nn.functional.scaled_dot_product_attention(q, k, v)

        want = flash().float()
        err = float((ours().float() - want).abs().max() / want.abs().max())
        ms, flash_ms = timed(ours, interpret), timed(flash, interpret)
        flops = 2 * args.batch * heads * length * length * (dim + dim)
        row = {"dtype": dt, "heads": heads, "head_dim": dim, "L": length, "S": length, "batch": args.batch,
               "kernel_ms": ms, "flash_ms": flash_ms, "kernel_tflops": flops / ms * 1e-9,
               "flash_tflops": flops / flash_ms * 1e-9, "max_error": err}
        rows.append(row)
        log(f"{dt:5} {heads:>5} {dim:>4} {length:>6} {ms:>10.3f} {flash_ms:>9.3f} {row['kernel_tflops']:>11.2f} "
            f"{row['flash_tflops']:>10.2f} {ms / flash_ms:>6.2f} {err:>8.1e}")
    device_name = "CPU (dry run, TRITON_INTERPRET=1)" if interpret else torch.cuda.get_device_name()
    return {"device": device_name, "program": args.program, "validation": validation, "rows": rows,
            "torch": torch.__version__}


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    result = run(args)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
