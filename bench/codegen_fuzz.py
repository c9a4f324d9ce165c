"""The codegen fuzzer's long profile (`make bench`, or `.venv/bin/python bench/codegen_fuzz.py [--programs N]`).

Hypothesis draws scan programs (tests/test_codegen_fuzz.py: scans, shifts, lasts, masks, splits) until N of them
are accepted by the checker, and generates and validates each one's kernel on both targets (torch on the CPU, Triton
under TRITON_INTERPRET=1): right, refused (with the reason, counted), or wrong (must be 0). Prints a table and
writes bench/codegen_fuzz.json (not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(programs: int, seed: int = 0, log=print) -> dict:
    os.environ["TRITON_INTERPRET"] = "1"
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    import importlib.util

    import numpy as np
    from hypothesis import HealthCheck, assume, given, settings
    from hypothesis import seed as hseed
    from test_codegen_fuzz import Tally, judge, scan_programs

    if importlib.util.find_spec("torch") is None:
        log("  skipped: torch is not installed (make codegen-extra)")
        return {"skipped": "torch is not installed"}
    targets = ("torch", "triton") if importlib.util.find_spec("triton") else ("torch",)
    tally = Tally()
    start = time.perf_counter()
    drawn = 0

    @hseed(seed)
    @settings(max_examples=programs, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(scan_programs())
    def one(text):
        nonlocal drawn
        drawn += 1
        assume(judge(text, tally, targets))      # only accepted programs count towards `programs`
        if drawn % 100 == 0:
            log(f"  {drawn} drawn, {tally.programs} accepted, {len(tally.wrong)} wrong, "
                f"{time.perf_counter() - start:.0f} s")

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        one()
    return {
        "drawn": drawn, "programs": tally.programs, "rejected_by_checker": tally.rejected, "targets": list(targets),
        "right": dict(tally.right), "wrong": [{"target": t, "program": p, "message": m} for t, p, m in tally.wrong],
        "refused": [{"target": t, "reason": r, "count": n} for (t, r), n in tally.refused.most_common()],
        "seconds": round(time.perf_counter() - start, 1),
    }


def table(result: dict) -> str:
    if "skipped" in result:
        return f"codegen fuzzer: {result['skipped']}"
    lines = [f"codegen fuzzer: {result['programs']} programs accepted by the checker ({result['drawn']} drawn), "
             f"{result['seconds']} s",
             f"{'target':8} {'right':>6} {'refused':>8} {'wrong':>6}"]
    for target in result["targets"]:
        refused = sum(r["count"] for r in result["refused"] if r["target"] == target)
        wrong = sum(1 for w in result["wrong"] if w["target"] == target)
        lines.append(f"{target:8} {result['right'].get(target, 0):>6} {refused:>8} {wrong:>6}")
    lines.append("refusal reasons:")
    lines += [f"  {r['count']:5}  {r['target']:7} {r['reason']}" for r in result["refused"]]
    for w in result["wrong"][:5]:
        lines += [f"WRONG ({w['target']}):", w["program"], w["message"]]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--programs", type=int, default=1000, help="accepted programs to test (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "codegen_fuzz.json"))
    args = parser.parse_args(argv)
    result = run(args.programs, args.seed)
    print(table(result))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 1 if result.get("wrong") else 0


if __name__ == "__main__":
    sys.exit(main())
