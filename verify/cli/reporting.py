"""The commands that study verdicts: explain, report, mutate, numeric (imported only when one of them runs)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .. import explain, mutate, numerics
from .. import report as R
from .. import verdict as V
from ..errors import BoundError, UsageError, VerifyError
from ..options import CacheMode
from ..sizes import Bound
from .arguments import options_of, parse_sizes
from .output import Progress


def cmd_numeric(args, out, err) -> int:
    """Programs at realistic sizes against the reference evaluator, and attention against numpy and torch SDPA."""
    import json

    for path in args.programs:
        if not Path(path).is_file():
            raise UsageError(f"no such file: {path}")
    given = {rank: value for rank, value in (("e", args.E), ("m", args.M), ("p", args.P), ("f", args.F))
             if value is not None}
    for rank, (_lo, hi) in Bound.parse(args.bound).ranges:
        given[rank.lower()] = hi
    given.update({k.lower(): v for k, v in parse_sizes(args.sizes).items()})
    for rank, value in given.items():
        if not 1 <= value <= 1 << 20:
            raise BoundError(f"size {rank.upper()}={value} must be between 1 and {1 << 20}")
    programs = args.programs or DEFAULT_NUMERIC
    rows = numerics.compare(programs, given, args.reference)
    if not args.programs:
        rows += numerics.large_scores(LARGE_SCORE_DEMO)      # the unshifted cascade overflowing in float32
    worst64 = max((r.max_abs_error for r in rows if r.dtype == "float64" and r.judged), default=0.0)
    ok = worst64 < args.tolerance
    if args.json:
        value = lambda x: x if x == x and abs(x) != float("inf") else ("nan" if x != x else "inf")  # noqa: E731
        out.write(json.dumps({"rows": [{"program": r.program, "sizes": r.tiles, "dtype": r.dtype,
                                        "max_abs_error": value(r.max_abs_error), "against": r.against}
                                       for r in rows],
                              "worst_float64": value(worst64), "ok": ok, "errors": []}, indent=2) + "\n")
        return 0 if ok else 1
    print(f"{'program':32} {'sizes':26} {'dtype':8} {'max |error|':>12}  against", file=out)
    for r in rows:
        print(f"{r.program:32} {r.tiles:26} {r.dtype:8} {r.max_abs_error:12.3e}  {r.against}", file=out)
    print(f"worst float64 error: {worst64:.3e} (tolerance {args.tolerance:g})", file=out)
    return 0 if ok else 1


DEFAULT_NUMERIC = ["proofs/attention.egg", "proofs/attention_2pass.egg", "proofs/attention_2pass_deferred.egg",
                   "proofs/attention_1pass.egg"]
LARGE_SCORE_DEMO = ["proofs/attention.egg", "proofs/attention_noshift.egg"]   # shifted vs unshifted, scores ~100


def cmd_explain(args, out, err) -> int:
    """Where a refuted rule fails and which candidate preconditions make it hold (see explain.py)."""
    if not (0 < args.budget <= 86400):
        raise BoundError(f"--budget must be between 0 and 86400 seconds, got {args.budget:g}")
    options = options_of(args)
    explanations, errors = [], []
    for target in args.targets:
        try:
            explanations.extend(explain.explain(target, options, budget=args.budget))
        except VerifyError as exc:
            if not args.json:
                raise
            print(exc.format(), file=err)       # with --json the error is a result as well (kind "input")
            errors.append(exc)
            explanations.append(explain.Explanation(V.error_result(exc)))
    if args.json:
        out.write(explain.dumps(explanations) + "\n")
    else:
        print("\n\n".join(e.format() for e in explanations), file=out)
    return V.exit_status((e.result.verdict for e in explanations), len(errors))


def cmd_report(args, out, err) -> int:
    """Check everything and write DIR/index.html (or .md) and DIR/results.json."""
    options = options_of(args)
    with Progress(args, out) as progress:
        data = R.build(args.paths, options, progress)
    for error in data.errors:
        print(error.format(), file=err)
    target = R.write(data, args.output, args.format)
    if args.json:
        out.write(V.dumps(data.results + [V.error_result(e) for e in data.errors]) + "\n")
    else:
        print(f"{V.summary(data.results)}; {len(data.programs)} programs; wrote {target}", file=out)
    return data.exit_code


def cmd_mutate(args, out, err) -> int:
    """Mutate every rule, chain step and program; every non-equivalent mutant must be refuted (mutate.py)."""
    # Every mutant is new, so the cache has nothing to answer and is not offered; SymPy's second opinion would
    # only corroborate mutants that survive (which fail the run anyway). Neither flag is accepted here.
    options = replace(options_of(args), sympy=False, cache_mode=CacheMode.OFF, timeout=args.timeout or 30.0,
                      z3_timeout=5.0)
    result = mutate.run(args.paths, options)
    for error in result.errors:
        print(error.format(), file=err)
    if result.errors and not result.mutants and not args.json:
        return 2
    if args.json:
        out.write(mutate.dumps(result) + "\n")
    else:
        print(result.format(verbose=args.verbose), file=out)
    return result.exit_code
