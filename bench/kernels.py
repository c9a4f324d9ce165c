"""Generated kernels vs torch's SDPA (`make bench`, section 7; or `.venv/bin/python bench/kernels.py`).

The torch code `verify codegen` generates from proofs/attention_1pass.egg (FlashAttention-2's loop, M0 = 64) and
from proofs/attention.egg (3-pass), against torch.nn.functional.scaled_dot_product_attention (scale 1, as the
cascades), float32, E = F = 64, P = 128, M = 1024, 4096, 16384, on the CPU. Each measurement runs in a fresh
child process: inputs are made first, then the peak extra memory is the growth of the child's peak resident set
size (getrusage ru_maxrss) over the first call; wall time is the median of 7 calls after it, one torch thread.

The 1-pass code never holds more than one tile of scores (M0 x P), so its peak extra memory stays flat as M
grows, while the 3-pass code holds M x P scores and exponentials. The GPU half (the Triton kernel vs SDPA's
flash backend) needs a GPU; without one it is reported as not run.
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
E = F = 64
P = 128
M0 = 64
MS = (1024, 4096, 16384)
IMPLS = ("1-pass (generated)", "1-pass, M0=512", "SDPA", "3-pass (generated)")


def _child(impl: str, m: int, queue) -> None:
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import torch

    from verify.codegen import generate
    from verify.reader import read_file

    torch.set_num_threads(1)           # one core: the machine's two are shared, one thread is steadier
    rng = np.random.default_rng(0)
    Q, K, V = (torch.from_numpy(rng.normal(size=s).astype(np.float32)) for s in ((E, P), (E, m), (F, m)))
    m0 = 512 if "512" in impl else M0
    if impl == "SDPA":
        def run(Q, K, V):
            q, k, v = Q.T[None, None], K.T[None, None], V.T[None, None]
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=1.0)
    else:
        path = "proofs/attention_1pass.egg" if impl.startswith("1-pass") else "proofs/attention.egg"
        source = read_file(ROOT / path)
        namespace: dict = {}
        exec(compile(generate(source.program, "torch", source.text), path, "exec"), namespace)
        fn = namespace["AV"]

        def run(Q, K, V):
            return fn(Q, K, V, **({"M1": K.shape[1] // m0} if impl.startswith("1-pass") else {}))
    run(Q, K[:, :m0], V[:, :m0])       # warm-up on one tile: torch's one-time allocations are not counted
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run(Q, K, V)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(7):
        start = time.perf_counter()
        run(Q, K, V)
        times.append(time.perf_counter() - start)
    queue.put({"impl": impl, "M": m, "ms": statistics.median(times) * 1000, "peak_extra_mb": (peak - base) / 1024,
               "threads": torch.get_num_threads()})


def bench_kernels(log=print) -> dict:
    try:
        import torch
    except ImportError:
        log("  skipped: torch is not installed (make codegen-extra)")
        return {"skipped": "torch is not installed"}
    ctx = multiprocessing.get_context("spawn")
    rows = []
    for m in MS:
        for impl in IMPLS:
            queue = ctx.Queue()
            child = ctx.Process(target=_child, args=(impl, m, queue))
            child.start()
            row = queue.get(timeout=600)
            child.join()
            rows.append(row)
            log(f"  M={m:6d} {impl:20s} {row['ms']:9.2f} ms  peak +{row['peak_extra_mb']:7.1f} MB")
    gpu = torch.cuda.is_available()
    return {"rows": rows, "sizes": {"E": E, "F": F, "P": P, "M0": M0, "dtype": "float32"},
            "gpu": "not run: no GPU on this machine" if not gpu else "not run: add the Triton vs flash comparison"}


def kernels_table(result: dict) -> str:
    if "rows" not in result:
        return f"kernels: {result.get('skipped')}"
    rows = {(r["impl"], r["M"]): r for r in result["rows"]}
    lines = ["generated kernels vs SDPA (CPU, float32, E=F=64, P=128, M0=64 unless said): median wall time, "
             "peak extra memory",
             f"{'M':>6}  " + "  ".join(f"{impl:>28}" for impl in IMPLS) + "  1-pass/SDPA  3-pass/1-pass (M0=64)"]
    for m in MS:
        cells = [f"{rows[(i, m)]['ms']:9.2f} ms +{rows[(i, m)]['peak_extra_mb']:6.1f} MB" for i in IMPLS]
        one, _, sdpa, three = (rows[(i, m)]["ms"] for i in IMPLS)
        lines.append(f"{m:>6}  " + "  ".join(f"{c:>28}" for c in cells) + f"  {one / sdpa:11.2f}  {three / one:13.2f}")
    lines.append(f"GPU (Triton kernel vs SDPA flash): {result['gpu']}")
    return "\n".join(lines)


def accuracy(log=print) -> list[dict]:
    """Every program in proofs/ at E = F = 64, M = 1024 (and 1000 with M0 = 125 for the 1-pass), P = 128: the
    generated torch code (and the Triton kernel, under the interpreter, for the 1-pass family) against the
    reference evaluator and SDPA; float32 against the float64 reference, next to the evaluator's own float32."""
    import os

    os.environ.setdefault("TRITON_INTERPRET", "1")
    sys.path.insert(0, str(ROOT))
    import importlib.util

    import numpy as np

    from verify.codegen import check

    triton = importlib.util.find_spec("triton") is not None
    rows = []
    for path in sorted((ROOT / "proofs").rglob("*.egg")):
        name = str(path.relative_to(ROOT / "proofs"))
        text = path.read_text()
        targets = ["torch"] + (["triton"] if triton and "S_scan" in text and "running_max" not in name else [])
        for target in targets:
            namespace, program = check.load(path, target)
            output = program.output_names()[0]
            fn = namespace[output]
            cases = [({}, 1024)]
            if "(T_split_m_m1m0 K 4)" in text and "T_split_p" not in text:
                cases.append(({"M1": 16}, 1024))
            if "S_scan" in text:
                cases.append(({"M1": 8}, 1000))
            for tiles, m in cases:
                sizes = {"e": E, "f": F, "p": P, "m": m}
                inputs = check.make_inputs(program, output, sizes, masked_rows=(3,))
                want = check.reference(program, output, sizes, tiles, inputs)
                start = time.perf_counter()
                got64 = check.call(fn, inputs, np.float64, **tiles)
                seconds = time.perf_counter() - start
                sd = check.against_torch(name, inputs)
                keep = [p for p in range(P) if not np.isnan(want[..., p]).any()]   # fully masked: SDPA differs
                row = {"program": name, "target": target, "tiles": ", ".join(f"{k}={v}" for k, v in tiles.items())
                       or "as written", "M": m, "f64_vs_reference": check.rel_error(got64, want),
                       "f64_vs_torch": check.rel_error(got64[..., keep], sd[..., keep]),
                       "f32_vs_reference": check.rel_error(check.call(fn, inputs, np.float32, **tiles), want),
                       "reference_f32": check.rel_error(
                           check.reference(program, output, sizes, tiles, inputs, np.float32), want),
                       "f64_seconds": seconds}
                rows.append(row)
                log(accuracy_line(row))
    return rows


def accuracy_line(row: dict) -> str:
    return (f"| {row['program']} | {row['target']} | {row['tiles']}, M={row['M']} | {row['f64_vs_reference']:.1e} | "
            f"{row['f64_vs_torch']:.1e} | {row['f32_vs_reference']:.1e} | {row['reference_f32']:.1e} |")


if __name__ == "__main__":
    if "--accuracy" in sys.argv:
        print("| program | target | tiles | float64 vs evaluator | float64 vs SDPA (logsumexp) | "
              "float32 vs evaluator (f64) | evaluator f32 vs f64 |\n|---|---|---|---|---|---|---|")
        accuracy()
        sys.exit(0)
    result = bench_kernels()
    print(kernels_table(result))
    print(json.dumps(result, indent=2))
