"""Generated kernels vs torch's SDPA (`make bench`, section 7; or `.venv/bin/python bench/kernels.py`).

The drop-in attention() that `verify codegen` writes for proofs/attention_1pass.egg (torch target: FlashAttention-2's
loop, blocks of 256 queries x 1024 keys), and the 3-pass AV of proofs/attention.egg (up to 4k), against
torch.nn.functional.scaled_dot_product_attention in SDPA's layout, float32, batch 1, one head, E = Ev = 64,
L = S = 1k, 4k, 16k, on the CPU. Each measurement runs in a fresh child process: inputs are made first, then the
peak extra memory is the growth of the child's peak resident set size (getrusage ru_maxrss) over the first call;
wall time is the median of 7 calls after it (3 at 16k), one torch thread.

The 1-pass code never holds more than one block of scores, so its peak extra memory stays flat as L grows, while
the 3-pass code holds S x L scores and exponentials. The GPU half (the Triton kernel vs SDPA's flash backend) is
bench/gpu.py, run on a GPU machine.
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
P = 128                            # queries of the accuracy table (`--accuracy`)
LENGTHS = (1024, 4096, 16384)
IMPLS = ("attention() (generated)", "SDPA", "3-pass (generated)")
THREE_PASS_UP_TO = 4096            # its M x P scores: 1 GB at 16k, and minutes on one thread


def _child(impl: str, n: int, queue) -> None:
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import torch

    from verify.codegen import generate
    from verify.reader import read_file

    torch.set_num_threads(1)           # one core: the machine's two are shared, one thread is steadier
    rng = np.random.default_rng(0)
    q, k, v = (torch.from_numpy(rng.normal(size=(1, 1, n, d)).astype(np.float32)) for d in (E, E, F))
    if impl == "SDPA":
        def run(q, k, v):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v)
    else:
        path = "proofs/attention_1pass.egg" if impl.startswith("attention") else "proofs/attention.egg"
        source = read_file(ROOT / path)
        namespace: dict = {}
        exec(compile(generate(source.program, "torch", source.text), path, "exec"), namespace)
        if impl.startswith("attention"):
            run = namespace["attention"]
        else:
            fn = namespace["AV"]

            def run(q, k, v):
                scale = 1 / E ** 0.5
                return fn(q[0, 0].T * scale, k[0, 0].T, v[0, 0].T).T[None, None]
    run(q[..., :64, :], k[..., :64, :], v[..., :64, :])    # warm-up: torch's one-time allocations are not counted
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run(q, k, v)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(3 if n > 4096 else 7):
        start = time.perf_counter()
        run(q, k, v)
        times.append(time.perf_counter() - start)
    queue.put({"impl": impl, "L": n, "ms": statistics.median(times) * 1000, "peak_extra_mb": (peak - base) / 1024,
               "runs": len(times), "threads": torch.get_num_threads()})


def bench_kernels(log=print, lengths=LENGTHS) -> dict:
    try:
        import torch
    except ImportError:
        log("  skipped: torch is not installed (make codegen-extra)")
        return {"skipped": "torch is not installed"}
    ctx = multiprocessing.get_context("spawn")
    rows = []
    for n in lengths:
        for impl in IMPLS:
            if impl.startswith("3-pass") and n > THREE_PASS_UP_TO:
                continue
            queue = ctx.Queue()
            child = ctx.Process(target=_child, args=(impl, n, queue))
            child.start()
            row = queue.get(timeout=1800)
            child.join()
            rows.append(row)
            log(f"  L=S={n:6d} {impl:24s} {row['ms']:10.2f} ms  peak +{row['peak_extra_mb']:7.1f} MB")
    return {"rows": rows, "sizes": {"batch": 1, "heads": 1, "E": E, "Ev": F, "dtype": "float32",
                                    "blocks": "attention() defaults (block_m=256, block_n=1024)"},
            "gpu": "not run here: `python bench/gpu.py` on a GPU machine" if not torch.cuda.is_available() else
            _gpu(log)}


def _gpu(log) -> str:
    """With a GPU, bench/gpu.py's full sweep (its table in the log, its JSON in bench/gpu_results.json)."""
    import subprocess

    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py")], capture_output=True, text=True)
    log(done.stdout + done.stderr)
    return "bench/gpu.py: see bench/gpu_results.json" if done.returncode == 0 else \
        f"bench/gpu.py failed (exit {done.returncode})"


def kernels_table(result: dict) -> str:
    if "rows" not in result:
        return f"kernels: {result.get('skipped')}"
    rows = {(r["impl"], r["L"]): r for r in result["rows"]}
    lines = ["generated kernels vs SDPA (CPU, one thread, float32, batch 1, 1 head, E=Ev=64): median wall time, "
             "peak extra memory",
             f"{'L=S':>6}  " + "  ".join(f"{impl:>30}" for impl in IMPLS) + "  attention()/SDPA"]
    for n in sorted({r["L"] for r in result["rows"]}):
        cells = [f"{rows[(i, n)]['ms']:9.1f} ms +{rows[(i, n)]['peak_extra_mb']:7.1f} MB" if (i, n) in rows else "-"
                 for i in IMPLS]
        ratio = rows[(IMPLS[0], n)]["ms"] / rows[(IMPLS[1], n)]["ms"]
        lines.append(f"{n:>6}  " + "  ".join(f"{c:>30}" for c in cells) + f"  {ratio:16.2f}")
    lines.append(f"GPU (Triton attention() vs SDPA flash): {result['gpu']}")
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
    result = bench_kernels(lengths=tuple(int(x) for x in sys.argv[1:]) or LENGTHS)
    print(kernels_table(result))
    print(json.dumps(result, indent=2))
