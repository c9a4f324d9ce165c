"""The generated backward kernels vs torch.autograd through SDPA (`.venv/bin/python bench/backward.py`).

The torch code `verify codegen` generates from proofs/backward/flash2_bwd.egg (FlashAttention-2's backward:
P from the stored log-sum-exp, D from the output) and from the gradient `verify grad` derives for 3-pass attention
(proofs/backward/attention_grad_derived.egg), each called for dQ, dK and dV (each function recomputes the forward
statistics it needs), against SDPA's forward and torch.autograd's backward through it (scale 1, as the cascades).
float32, E = F = 64, P = 128, on the CPU, one torch thread. Each measurement runs in a fresh child process; peak
extra memory is the growth of the child's peak resident set size over the first call, time the median of 5 calls.
"""

from __future__ import annotations

import multiprocessing
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
E = F = 64
P = 128
MS = (1024, 4096)
IMPLS = ("autograd through SDPA", "FA2 backward (generated)", "derived gradient (generated)")


def _child(impl: str, m: int, queue) -> None:
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import torch

    from verify.codegen import generate
    from verify.reader import read_file

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    Q, K, V, dO = (torch.from_numpy(rng.normal(size=s).astype(np.float32)) for s in ((E, P), (E, m), (F, m), (F, P)))
    if impl.startswith("autograd"):
        def run(Q, K, V, dO):
            q, k, v = (x.T.clone().requires_grad_(True) for x in (Q, K, V))
            o = torch.nn.functional.scaled_dot_product_attention(q[None], k[None], v[None], scale=1.0)
            o[0].backward(dO.T)
            return q.grad, k.grad, v.grad
    else:
        path = "proofs/backward/" + ("flash2_bwd.egg" if impl.startswith("FA2") else "attention_grad_derived.egg")
        source = read_file(ROOT / path)
        ns: dict = {}
        exec(compile(generate(source.program, "torch", source.text), path, "exec"), ns)

        def run(Q, K, V, dO):
            return ns["dQ"](Q, K, V, dO), ns["dK"](Q, K, V, dO), ns["dV"](Q, K, dO)
    run(Q, K[:, :64], V[:, :64], dO)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run(Q, K, V, dO)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(5):
        start = time.perf_counter()
        run(Q, K, V, dO)
        times.append(time.perf_counter() - start)
    queue.put({"impl": impl, "M": m, "ms": statistics.median(times) * 1000, "peak_extra_mb": (peak - base) / 1024})


def main() -> None:
    ctx = multiprocessing.get_context("spawn")
    print(f"| M | {' | '.join(IMPLS)} |")
    print(f"|---|{'---|' * len(IMPLS)}")
    for m in MS:
        cells = []
        for impl in IMPLS:
            queue = ctx.Queue()
            proc = ctx.Process(target=_child, args=(impl, m, queue))
            proc.start()
            row = queue.get(timeout=600)
            proc.join()
            cells.append(f"{row['ms']:.1f} ms, +{row['peak_extra_mb']:.1f} MB")
        print(f"| {m} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
