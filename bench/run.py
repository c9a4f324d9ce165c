"""Benchmarks of the checker (`make bench`, or `.venv/bin/python bench/run.py [--quick]`).

What is measured, each size in a fresh child process (so times include nothing cached from another size):

1. Normal form scaling. The time to decide `3-pass = 2-pass` and `3-pass = 1-pass` (proofs/attention*.egg)
   with the normal form: evaluate both programs on symbolic inputs Q[e,p], K[e,m], V[f,m] with one
   `NormalForm` instance (as the driver does per check), then compare every output element. E=2, F=2, P=1,
   M0 in {4, 8}, M1 = 1, 2, 4, ..., 512 (M = M1*M0 up to 4096). Median of 3 runs. A series stops after the
   first size that takes more than 20 s.
2. Naive baseline: the same identities handed to Z3 directly. Inputs are Real constants; exp is an
   uninterpreted Real -> Real function; max is If(a >= b, a, b); `/` is Z3's division; -inf is handled while
   building the terms (max(-inf, x) = x, -inf - x = -inf, exp(-inf) = 0). Two axiom sets for exp:
   "quantified": forall x, y. exp(x + y) = exp(x) * exp(y), forall x. exp(x) > 0, and exp(0) = 1;
   "ground": the same facts instantiated on the exp arguments a, b that occur (exp(a) > 0, and
   exp(a) * exp(b) = exp(a + b) for every pair), plus exp(0) = 1.
   Z3 is asked for `lhs != rhs` at one output element (f = 0, p = 0); `unsat` is a proof. Each query runs in
   a child process killed after 10 s, counted from the start of the child (building the terms included; Z3
   does not always honour its own timeout). A series stops after the first size Z3 does not prove (timeout,
   unknown, or a sat model of the uninterpreted exp). The ratio is baseline time / normal-form time.
3. Peak memory: the maximum resident set size (getrusage ru_maxrss) of each child, which includes the
   interpreter and numpy (about 40-60 MB), and of the whole run.

Results are printed as a table and written to bench/results.json (not committed). `main()` is split into
sections; add a section (e.g. the wall time of `make verify`, per-rule times) by appending to `results`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

PROGRAMS = {"3-pass": "attention.egg", "2-pass": "attention_2pass.egg", "1-pass": "attention_1pass.egg"}
COMPARISONS = [("3-pass", "2-pass"), ("3-pass", "1-pass")]
INPUTS = {"Q": ("e", "p"), "K": ("e", "m"), "V": ("f", "m")}
E, F, P = 2, 2, 1
NF_SERIES_LIMIT = 20.0       # stop a normal-form series after a size slower than this (s)
Z3_TIMEOUT = 10.0            # kill a baseline query after this (s)
ENCODINGS = ("quantified", "ground")
CHILD_LIMIT = 300.0          # safety net for one normal-form child (3 runs of one size)


# -- shared helpers -------------------------------------------------------------------------------------------

def sizes_for(m1: int, m0: int) -> dict:
    return dict(e=E, f=F, p=P, m1=m1, m0=m0, m=m1 * m0)


def programs() -> dict:
    from verify.reader import read_file

    return {name: read_file(ROOT / "proofs" / file).program for name, file in PROGRAMS.items()}


def symbolic_inputs(make, sizes: dict) -> dict:
    """Object arrays of fresh symbols, one per input element; make(name, index) builds one symbol."""
    out = {}
    for name, ranks in INPUTS.items():
        shape = tuple(sizes[r] for r in ranks)
        arr = np.empty(shape, dtype=object)
        for idx in np.ndindex(*shape):
            arr[idx] = make(name, idx)
        out[name] = arr
    return out


def output(program, sizes, inputs, algebra):
    from verify.evaluate import evaluate

    return evaluate(program.bindings, ["AV"], sizes, inputs, algebra)["AV"].aligned(("f", "p"))


def peak_rss_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0  # Linux reports KiB


def in_child(fn, args, limit: float):
    """fn(*args) in a forked child killed after `limit` s: ("ok", value) | ("timeout", None) | ("error", text)."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)

    def target(conn):
        try:
            conn.send(("ok", fn(*args)))
        except BaseException as exc:  # reported, never hidden
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        finally:
            conn.close()

    proc = ctx.Process(target=target, args=(child,), daemon=True)
    proc.start()
    child.close()
    try:
        if parent.poll(limit):
            try:
                return parent.recv()
            except EOFError:
                return ("error", f"child died (exit code {proc.join(1) or proc.exitcode})")
        return ("timeout", None)
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        parent.close()


# -- 1. normal form -------------------------------------------------------------------------------------------

def nf_decide(progs, lhs: str, rhs: str, sizes: dict, algebra_class=None) -> tuple[bool, float]:
    """Build both sides in one NormalForm and compare every output element; (equal, seconds)."""
    from verify.normal_form import NormalForm, all_equal

    start = time.perf_counter()
    alg = (algebra_class or NormalForm)()
    inputs = symbolic_inputs(alg.input, sizes)
    left = output(progs[lhs], sizes, inputs, alg)
    right = output(progs[rhs], sizes, inputs, alg)
    equal = all_equal(alg, left, right)
    return equal, time.perf_counter() - start


def nf_size(m1: int, m0: int, runs: int, algebra_class=None) -> dict:
    """One size, every comparison, `runs` runs each (runs in this process: call it in a child)."""
    progs = programs()
    sizes = sizes_for(m1, m0)
    out = {}
    for lhs, rhs in COMPARISONS:
        times, verdicts = [], set()
        for _ in range(runs):
            equal, seconds = nf_decide(progs, lhs, rhs, sizes, algebra_class)
            times.append(seconds)
            verdicts.add(equal)
        out[f"{lhs} = {rhs}"] = {"seconds": statistics.median(times), "runs": times,
                                 "proved": verdicts == {True}}
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def bench_normal_form(m1s, m0s, runs: int, algebra_class=None, log=print) -> list[dict]:
    rows = []
    for m0 in m0s:
        for m1 in m1s:
            status, value = in_child(nf_size, (m1, m0, runs, algebra_class), CHILD_LIMIT)
            if status != "ok":
                log(f"  normal form M1={m1} M0={m0}: {status} {value or ''}")
                rows.append({"m1": m1, "m0": m0, "m": m1 * m0, "status": status, "detail": value})
                break
            peak = value.pop("peak_rss_mb")
            for comparison, r in value.items():
                rows.append({"m1": m1, "m0": m0, "m": m1 * m0, "comparison": comparison, "status": "ok",
                             "seconds": r["seconds"], "runs": r["runs"], "proved": r["proved"],
                             "peak_rss_mb": peak})
                log(f"  normal form M1={m1:<4} M0={m0} {comparison:17s} {r['seconds']:8.3f} s"
                    f"  proved={r['proved']}  peak {peak:.0f} MB")
            if max(r["seconds"] for r in value.values()) > NF_SERIES_LIMIT:
                break
    return rows


# -- 2. naive Z3 baseline -------------------------------------------------------------------------------------

class _Z3NegInf:
    def __repr__(self):
        return "-inf"


Z3_NEG_INF = _Z3NegInf()


def _z3_algebra():
    """The naive encoding: an ObjectAlgebra over z3 terms (defined here so that z3 loads in the child only)."""
    from fractions import Fraction

    import z3

    from verify.evaluate import RING, ObjectAlgebra

    class NaiveZ3(ObjectAlgebra):
        name = "naive z3"

        def __init__(self):
            super().__init__()
            self.exp = z3.Function("exp", z3.RealSort(), z3.RealSort())

        def input(self, name, index):
            return z3.Real(f"{name}[{','.join(map(str, index))}]")

        def const(self, value):
            if value == -float("inf"):
                return Z3_NEG_INF
            return z3.RealVal(Fraction(value))

        def scalar(self, op, *x):
            if any(v is Z3_NEG_INF for v in x):
                a = x[0]
                b = x[1] if len(x) > 1 else None
                if op == "exp":
                    return z3.RealVal(0)
                if op == "max":
                    return b if a is Z3_NEG_INF else a
                if op in ("add", "sub") and a is Z3_NEG_INF and b is not Z3_NEG_INF:
                    return Z3_NEG_INF
                raise ValueError(f"{op} with -inf is outside the naive encoding")
            if op in RING:
                return RING[op](*x)
            match op:
                case "div":
                    return x[0] / x[1]
                case "max":
                    return z3.If(x[0] >= x[1], x[0], x[1])
                case "exp":
                    return self.exp(x[0])
            raise ValueError(op)

        def scalar_exp_args(self, terms):
            """The distinct exp arguments occurring in `terms`."""
            seen, todo, out = set(), list(terms), {}
            while todo:
                t = todo.pop()
                if t.get_id() in seen:
                    continue
                seen.add(t.get_id())
                if z3.is_app(t) and t.decl() == self.exp:
                    out[t.arg(0).get_id()] = t.arg(0)
                todo.extend(t.children())
            return list(out.values())

        def axioms(self, encoding, terms):
            exp = self.exp
            if encoding == "quantified":
                s, t = z3.Reals("s t")
                return [
                    z3.ForAll([s, t], exp(s + t) == exp(s) * exp(t), patterns=[exp(s + t)]),
                    z3.ForAll([s], exp(s) > 0, patterns=[exp(s)]),
                    exp(z3.RealVal(0)) == 1,
                ]
            args = self.scalar_exp_args(terms)
            out = [exp(z3.RealVal(0)) == 1]
            out += [exp(a) > 0 for a in args]
            out += [exp(a) * exp(b) == exp(a + b) for i, a in enumerate(args) for b in args[i + 1:]]
            return out

    return NaiveZ3


def z3_decide(lhs: str, rhs: str, m1: int, m0: int, timeout: float, encoding: str) -> dict:
    """One baseline query (call it in a child): build the terms, ask for lhs != rhs at AV[0, 0]."""
    import z3

    progs = programs()
    start = time.perf_counter()
    sizes = sizes_for(m1, m0)
    alg = _z3_algebra()()
    inputs = symbolic_inputs(alg.input, sizes)
    left = output(progs[lhs], sizes, inputs, alg)[0, 0]
    right = output(progs[rhs], sizes, inputs, alg)[0, 0]
    solver = z3.Solver()
    solver.set("timeout", int(timeout * 1000))
    solver.add(*alg.axioms(encoding, [left, right]))
    solver.add(left != right)
    answer = str(solver.check())
    return {"answer": answer, "seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb()}


def bench_z3(m1s, m0s, runs: int, encoding: str, log=print) -> list[dict]:
    rows = []
    for m0 in m0s:
        for lhs, rhs in COMPARISONS:
            for m1 in m1s:
                times, answers, status, peak = [], [], "ok", 0.0
                for _ in range(runs):
                    status, value = in_child(z3_decide, (lhs, rhs, m1, m0, Z3_TIMEOUT, encoding), Z3_TIMEOUT)
                    if status != "ok":
                        break
                    times.append(value["seconds"])
                    answers.append(value["answer"])
                    peak = max(peak, value["peak_rss_mb"])
                    if value["answer"] != "unsat":
                        break  # unknown / sat: no proof, do not repeat
                proved = status == "ok" and answers and all(a == "unsat" for a in answers)
                row = {"m1": m1, "m0": m0, "m": m1 * m0, "comparison": f"{lhs} = {rhs}", "encoding": encoding,
                       "status": "timeout" if status == "timeout" else status if status != "ok" else
                       ("proved" if proved else answers[-1]),
                       "seconds": statistics.median(times) if proved else None, "runs": times,
                       "peak_rss_mb": peak or None}
                if status == "error":
                    row["detail"] = value
                rows.append(row)
                shown = f"{row['seconds']:.3f} s" if proved else row["status"]
                log(f"  z3 {encoding:10s} M1={m1:<4} M0={m0} {lhs} = {rhs:7s} {shown}")
                if not proved:
                    break  # the first size Z3 cannot prove (timeout, unknown, sat) ends the series
    return rows


# -- reporting ------------------------------------------------------------------------------------------------

def _baseline_cell(b, nf_seconds):
    if b is None:
        return "-", "-"
    if b["status"] == "proved":
        return f"{b['seconds']:.3f} s", f"{b['seconds'] / nf_seconds:.0f}x"
    if b["status"] == "timeout":
        return "timeout", f">{Z3_TIMEOUT / nf_seconds:.0f}x"
    return b["status"], "-"


def table(nf_rows: list[dict], z3_rows: list[dict]) -> str:
    z3 = {(r["m1"], r["m0"], r["comparison"], r["encoding"]): r for r in z3_rows}
    lines = [f"{'M1':>4} {'M0':>3} {'M':>5}  {'comparison':17s} {'normal form':>12} {'peak MB':>8}"
             f"  {'z3 quantified':>13} {'ratio':>7}  {'z3 ground':>10} {'ratio':>7}"]
    lines.append("-" * len(lines[0]))
    for r in nf_rows:
        if r.get("status") != "ok":
            lines.append(f"{r['m1']:>4} {r['m0']:>3} {r['m']:>5}  {'(all)':17s} {r['status']:>12}")
            continue
        nf = f"{r['seconds']:.3f} s" + ("" if r["proved"] else " !")
        cells = []
        for encoding in ENCODINGS:
            base, ratio = _baseline_cell(z3.get((r["m1"], r["m0"], r["comparison"], encoding)), r["seconds"])
            cells.append((base, ratio))
        (qb, qr), (gb, gr) = cells
        lines.append(f"{r['m1']:>4} {r['m0']:>3} {r['m']:>5}  {r['comparison']:17s} {nf:>12} "
                     f"{r['peak_rss_mb']:>8.0f}  {qb:>13} {qr:>7}  {gb:>10} {gr:>7}")
    lines.append("ratio = z3 seconds / normal-form seconds; '!' = the normal form did not prove it")
    return "\n".join(lines)


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


VERIFY = [sys.executable, "-m", "verify"]


def _verify_json(args: list[str], env=None) -> tuple[list, float]:
    start = time.perf_counter()
    done = subprocess.run(VERIFY + args + ["--json"], cwd=ROOT, capture_output=True, text=True, env=env)
    return (json.loads(done.stdout) if done.stdout.strip() else []), time.perf_counter() - start


def bench_rules(runs: int) -> dict:
    """Median seconds per rule over `runs` runs, with and without SymPy's second opinion."""
    out = {}
    for label, extra in (("with sympy", []), ("proof only (--no-sympy)", ["--no-sympy"])):
        per_rule: dict[str, list[float]] = {}
        for _ in range(runs):
            results, _ = _verify_json(["check", "rules", "--cache", "off"] + extra)
            for r in results:
                per_rule.setdefault(r["name"], []).append(r["seconds"])
        medians = {name: statistics.median(times) for name, times in per_rule.items()}
        out[label] = {"rules": len(medians), "median_s": statistics.median(medians.values()),
                      "max_s": max(medians.values()), "under_100ms": sum(v < 0.1 for v in medians.values()),
                      "per_rule": medians}
        print(f"  {label}: {len(medians)} rules, median {out[label]['median_s'] * 1000:.0f} ms, "
              f"max {out[label]['max_s'] * 1000:.0f} ms", flush=True)
    return out


def bench_unbounded(runs: int) -> dict:
    """The rule-level lift (verify/induction/rule_level/), in this process: the induction lemmas behind the shapes, then
    every obligation of every rule of rules/ (the derivation chain's steps add none: a step by rules is
    unbounded when its rules are); beside it, the program-level lift of the derivation chain's and the
    variants' steps (not needed by the gate: the translation validation, and the variants' own certificates)."""
    import sys

    sys.path.insert(0, str(ROOT))
    from verify import induction
    from verify.induction import lift
    from verify.induction.twopass import linearity_positivity, split_max, split_sum
    from verify.options import Options
    from verify.targets import collect

    def lemmas():
        v = induction.VARIANTS["correct"]
        return split_sum(v) + split_max(v) + linearity_positivity(v)

    rules, _, _ = collect([str(ROOT / "rules")], Options())
    steps, _, _ = collect([str(ROOT / "proofs" / "derivation.chain.toml"),
                           str(ROOT / "proofs" / "variants.chain.toml")], Options())
    rows: dict[str, list[float]] = {"lemmas": [], "rules": [], "programs": []}
    lifted = {}
    for _ in range(runs):
        t = time.perf_counter()
        assert all(o.verdict == "proved" for o in lemmas())
        rows["lemmas"].append(time.perf_counter() - t)
        t = time.perf_counter()
        outs = [lift(c) for c in rules]
        rows["rules"].append(time.perf_counter() - t)
        lifted = {c.name: o.lifted for c, o in zip(rules, outs)}
        t = time.perf_counter()
        progs = [lift(c) for c in steps]
        rows["programs"].append(time.perf_counter() - t)
        lifted.update({c.name: o.lifted for c, o in zip(steps, progs)})
    out = {k: statistics.median(v) for k, v in rows.items()}
    out["rules_and_derivation_total_s"] = out["lemmas"] + out["rules"]
    out["rules_lifted"] = sum(lifted[c.name] for c in rules)
    out["rules_count"] = len(rules)
    out["lifted"] = lifted
    print(f"  lemmas {out['lemmas'] * 1000:.0f} ms + {len(rules)} rules {out['rules'] * 1000:.0f} ms = "
          f"{out['rules_and_derivation_total_s']:.2f} s ({out['rules_lifted']}/{len(rules)} lifted); "
          f"program-level lift of {len(steps)} chain steps {out['programs']:.2f} s", flush=True)
    return out


def bench_chain_4096() -> list:
    results, wall = _verify_json(["check", "proofs/attention.chain.toml", "--bound", "M1=512..512,M0=8..8,F=2",
                                  "--cache", "off", "--timeout", "120"])
    rows = [{"step": r["name"], "verdict": r["verdict"], "seconds": r["seconds"], "bound": r["bound"]}
            for r in results]
    for row in rows:
        print(f"  {row['step']}: {row['verdict']} in {row['seconds']:.2f} s", flush=True)
    return rows


def bench_make_verify(runs: int) -> dict:
    import tempfile

    cold, warm = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as cache:
            args = ["check", "rules", "proofs", "--jobs", "2", "--cache-dir", cache]
            _, seconds = _verify_json(args)
            cold.append(seconds)
            _, seconds = _verify_json(args)
            warm.append(seconds)
    out = {"cold_s": statistics.median(cold), "warm_s": statistics.median(warm), "runs": runs}
    print(f"  cold {out['cold_s']:.1f} s, warm {out['warm_s']:.2f} s", flush=True)
    return out


def bench_mutate_cluster(runs: int) -> dict:
    """`verify mutate rules/` locally (--jobs 1 and --jobs 2) and on a local dask cluster of 2 worker processes
    (--executor dask --jobs 2, cluster start-up included): wall time, and whether the verdicts are identical."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return {"skipped": "dask.distributed is not installed (pip install 'verify[cluster]')"}
    modes = {"local, --jobs 1": ["--jobs", "1"], "local, --jobs 2": ["--jobs", "2"],
             "dask LocalCluster, 2 workers": ["--jobs", "2", "--executor", "dask"]}
    out: dict = {"cpus": os.cpu_count()}
    verdicts = {}
    for label, extra in modes.items():
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            proc = subprocess.run(VERIFY + ["mutate", "rules", "--json", *extra], cwd=ROOT, capture_output=True,
                                  text=True)
            times.append(time.perf_counter() - start)
            data = json.loads(proc.stdout)
            verdicts[label] = [(d["target"], d["change"], d["verdict"]) for d in data["details"]]
        out[label] = {"median_seconds": statistics.median(times), "runs": times, "mutants": data["mutants"],
                      "score": data["score"], "exit": proc.returncode}
        print(f"  {label:30} {statistics.median(times):7.1f} s  ({data['mutants']} mutants)", flush=True)
    first = next(iter(verdicts.values()))
    out["identical_verdicts"] = all(v == first for v in verdicts.values())
    return out


def rules_table(results: dict) -> str:
    lines = ["", "whole checker:"]
    for label, row in results.get("rules", {}).items():
        lines.append(f"  per rule ({label}): median {row['median_s'] * 1000:.0f} ms, max {row['max_s'] * 1000:.0f} ms, "
                     f"{row['under_100ms']}/{row['rules']} under 100 ms")
    for row in results.get("chain_4096", []):
        lines.append(f"  chain step at M=4096: {row['step']}: {row['verdict']} {row['seconds']:.2f} s")
    ub = results.get("unbounded")
    if ub:
        lines.append(f"  unbounded obligations, rules/ + derivation chain: {ub['rules_and_derivation_total_s']:.2f} s "
                     f"(lemmas {ub['lemmas']:.2f} s, rules {ub['rules']:.2f} s); program-level lift of the chain "
                     f"steps {ub['programs']:.2f} s")
    mv = results.get("make_verify")
    if mv:
        lines.append(f"  make verify (check rules proofs -j 2): cold {mv['cold_s']:.1f} s, warm {mv['warm_s']:.2f} s")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (M1 <= 8), for a smoke test")
    parser.add_argument("--runs", type=int, default=3, help="runs per size; the median is reported")
    parser.add_argument("--no-z3", action="store_true", help="skip the naive Z3 baseline")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    parser.add_argument("--only-cluster", action="store_true",
                        help="only `verify mutate rules/`, local vs a local dask cluster")
    args = parser.parse_args(argv)
    if args.only_cluster:
        print("verify mutate rules/: local vs a local dask cluster", flush=True)
        data = {"mutate_cluster": bench_mutate_cluster(args.runs)}
        Path(args.out).write_text(json.dumps(data, indent=2) + "\n")
        return 0

    m1s = [1, 2, 4, 8] if args.quick else [2 ** k for k in range(10)]   # 1 .. 512
    m0s = [4, 8]
    started = time.perf_counter()
    results: dict = {
        "meta": {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "commit": git_commit(),
                 "python": platform.python_version(), "machine": platform.machine(),
                 "cpus": os.cpu_count(), "quick": args.quick, "runs": args.runs,
                 "sizes": {"E": E, "F": F, "P": P, "M1": m1s, "M0": m0s}},
    }

    # -- section 1: the normal form as M1 grows ----------------------------------------------------------
    print("normal form: 3-pass = 2-pass and 3-pass = 1-pass", flush=True)
    results["normal_form"] = bench_normal_form(m1s, m0s, args.runs, log=lambda s: print(s, flush=True))

    # -- section 2: the naive Z3 baseline ------------------------------------------------------------------
    if not args.no_z3:
        print(f"naive z3 baseline (killed after {Z3_TIMEOUT:g} s)", flush=True)
        results["z3_baseline"] = [row for encoding in ENCODINGS
                                  for row in bench_z3(m1s, m0s, args.runs, encoding,
                                                      log=lambda s: print(s, flush=True))]
    else:
        results["z3_baseline"] = []

    # -- section 3: memory ---------------------------------------------------------------------------------
    nf_peaks = [r["peak_rss_mb"] for r in results["normal_form"] if r.get("peak_rss_mb")]
    z3_peaks = [r["peak_rss_mb"] for r in results["z3_baseline"] if r.get("peak_rss_mb")]
    results["memory"] = {
        "normal_form_peak_rss_mb": max(nf_peaks, default=None),
        "z3_peak_rss_mb_finished_queries": max(z3_peaks, default=None),
        "any_child_peak_rss_mb": peak_rss_mb(resource.RUSAGE_CHILDREN),   # includes killed Z3 children
        "bench_process_peak_rss_mb": peak_rss_mb(),
    }

    # -- section 4: per-rule times at the default bound, through the whole checker ------------------------
    print("per rule, default bound (verify check rules --json, no cache)", flush=True)
    results["rules"] = bench_rules(args.runs)
    # -- section 5: the chain steps through the whole checker at M = 4096 ---------------------------------
    print("chain steps at M1=512, M0=8, F=2 (verify check proofs/attention.chain.toml)", flush=True)
    results["chain_4096"] = bench_chain_4096()
    # -- section 6: unbounded obligations (rule-level lift) ------------------------------------------------
    print("unbounded: every obligation of rules/ and the derivation chain (verify/induction/rule_level/)", flush=True)
    results["unbounded"] = bench_unbounded(args.runs)
    # -- section 7: make verify, cold and warm cache ------------------------------------------------------
    print("make verify: verify check rules proofs --jobs 2, cold then warm cache", flush=True)
    results["make_verify"] = bench_make_verify(args.runs)
    # -- section 7: mutation testing, local vs a local dask cluster ---------------------------------------
    print("verify mutate rules/: local vs a local dask cluster", flush=True)
    results["mutate_cluster"] = bench_mutate_cluster(args.runs)

    # -- section 7: generated kernels vs SDPA (bench/kernels.py; needs the verify[codegen] extra) ----------
    from kernels import bench_kernels, kernels_table

    print("generated kernels (verify codegen) vs torch SDPA, CPU", flush=True)
    results["kernels"] = bench_kernels(log=lambda s: print(s, flush=True))
    # -- section 8: the codegen fuzzer's long profile (bench/codegen_fuzz.py) ------------------------------
    from codegen_fuzz import run as fuzz_codegen
    from codegen_fuzz import table as fuzz_table

    print("codegen fuzzer: 1,000 drawn programs, both targets", flush=True)
    results["codegen_fuzz"] = fuzz_codegen(100 if args.quick else 1000, log=lambda s: print(s, flush=True))

    results["meta"]["total_seconds"] = time.perf_counter() - started
    print()
    print(table(results["normal_form"], results["z3_baseline"]))
    mem = results["memory"]
    print(f"\npeak memory (max RSS): normal form {mem['normal_form_peak_rss_mb'] or 0:.0f} MB; any child, "
          f"killed Z3 queries included, {mem['any_child_peak_rss_mb']:.0f} MB; this process "
          f"{mem['bench_process_peak_rss_mb']:.0f} MB. Total {results['meta']['total_seconds']:.0f} s")
    print(rules_table(results))
    print(kernels_table(results["kernels"]))
    print(fuzz_table(results["codegen_fuzz"]))
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
