"""The command line. The only module that writes to the terminal.

Every command is a plain function `(args, out, err) -> exit status`, so tests drive it with StringIO.
Exit status: 0 everything certified, 1 something refuted or unknown, 2 bad input (file, line and cause on
stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import verdict as V
from .claims import Bound
from .driver import Options, Report, check_equiv, check_paths
from .errors import BoundError, VerifyError


def _options(args) -> Options:
    if args.timeout is not None and not (0 < args.timeout <= 86400):
        raise BoundError(f"--timeout must be between 0 and 86400 seconds, got {args.timeout:g}")
    if args.jobs < 1 or args.jobs > 64:
        raise BoundError(f"--jobs must be between 1 and 64, got {args.jobs}")
    return Options(
        bound=Bound.parse(args.bound),
        timeout=args.timeout or 60.0,
        sympy=not args.no_sympy,
        jobs=args.jobs,
        cache_dir=args.cache_dir,
        cache_mode=args.cache,
    )


def _emit(report: Report, args, out, err) -> int:
    for error in report.errors:
        print(error.format(), file=err)
    if args.json:
        out.write(V.dumps(report.results) + "\n")
        return report.exit_code
    if getattr(out, "isatty", lambda: False)() and not args.plain:
        _rich(report, out)
    else:
        for note in report.notes:
            print(f"note: {note}", file=out)
        for result in report.results:
            print(V.format_result(result), file=out)
        if report.results:
            print(V.summary(report.results), file=out)
    return report.exit_code


def _rich(report: Report, out) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out)
    for note in report.notes:
        console.print(f"[dim]note: {note}[/dim]")
    if report.results:
        table = Table(title="verdicts")
        for column in ("rule / step", "where", "verdict", "bound", "method", "s"):
            table.add_column(column)
        colours = {"CERTIFIED": "green", "REFUTED": "red", "UNKNOWN": "yellow", "ERROR": "magenta"}
        for r in report.results:
            colour = colours[r.verdict.value]
            table.add_row(r.name, f"{r.file}:{r.line or ''}", f"[{colour}]{r.verdict.value}[/{colour}]", r.bound,
                          r.method if r.verdict is V.Verdict.CERTIFIED else r.detail or r.method, f"{r.seconds:.3f}")
        console.print(table)
    for r in report.results:
        if r.verdict is not V.Verdict.CERTIFIED:
            console.print(V.format_result(r), markup=False, highlight=False)
    if report.results:
        console.print(V.summary(report.results))


def cmd_check(args, out, err) -> int:
    options = _options(args)
    report = check_paths(args.paths, options)
    if not report.results and not report.errors and not report.notes:
        print("error: nothing to check", file=err)
        return 2
    if args.certificates and not report.errors:
        from .certificates import write_certificates
        from .driver import ENCODING_VERSION

        written = write_certificates(zip(report.claims, report.results), args.certificates, ENCODING_VERSION)
        report.notes.append(f"wrote {len(written)} certificates to {args.certificates}")
    return _emit(report, args, out, err)


def cmd_equiv(args, out, err) -> int:
    report = check_equiv(args.a, args.b, _options(args))
    return _emit(report, args, out, err)


def cmd_numeric(args, out, err) -> int:
    """Programs at realistic sizes against an independent numpy attention (and torch if installed)."""
    from . import numerics

    for path in args.programs:
        if not Path(path).is_file():
            print(f"usage error: no such file: {path}", file=err)
            return 2
    rows = numerics.crosscheck(args.programs, E=args.E, M=args.M, P=args.P, F=args.F)
    rows += numerics.overflow_demo()
    print(f"{'program':32} {'sizes':22} {'dtype':8} {'max |error|':>12}  against", file=out)
    worst64 = 0.0
    for r in rows:
        print(f"{r.program:32} {r.tiles:22} {r.dtype:8} {r.max_abs_error:12.3e}  {r.against}", file=out)
        if r.dtype == "float64" and "noshift" not in r.program:
            worst64 = max(worst64, r.max_abs_error)
    print(f"worst float64 error of the cascades: {worst64:.3e}", file=out)
    return 0 if worst64 < 1e-9 else 1


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bound", help="sizes to check, e.g. M1=8,M0=4,F=2 (default M1,M0<=4; other ranks <=2)")
    p.add_argument("--timeout", type=float, help="seconds per rule or step (default 60)")
    p.add_argument("--jobs", "-j", type=int, default=1, help="check independent rules in parallel")
    p.add_argument("--json", action="store_true", help="print results as JSON (see README, 'JSON output')")
    p.add_argument("--plain", action="store_true", help="plain text even on a terminal")
    p.add_argument("--no-sympy", action="store_true", help="skip SymPy's second opinion on certified claims")
    p.add_argument("--cache", choices=("rw", "ro", "off"), default=os.environ.get("VERIFY_CACHE", "rw"),
                   help="result cache: rw (default), ro (read only, e.g. CI), off; env VERIFY_CACHE")
    p.add_argument("--cache-dir", default=os.environ.get("VERIFY_CACHE_DIR", ".verify-cache"),
                   help="where cached results live (default .verify-cache)")
    p.add_argument("--certificates", metavar="DIR",
                   help="write one JSON certificate per rule and chain step into DIR")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="verify", description="Certify or refute tensor rewrite rules and cascades.")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="check rule files, chain files and directories")
    c.add_argument("paths", nargs="+", help=".egg rule files, .chain.toml chains, or directories")
    _common(c)
    c.set_defaults(func=cmd_check)
    e = sub.add_parser("equiv", help="are the extracted outputs of two programs equal?")
    e.add_argument("a")
    e.add_argument("b")
    _common(e)
    e.set_defaults(func=cmd_equiv)
    n = sub.add_parser("numeric", help="evaluate programs at realistic sizes against a reference attention")
    n.add_argument("programs", nargs="*", default=["proofs/attention.egg", "proofs/attention_2pass.egg",
                                                    "proofs/attention_2pass_deferred.egg", "proofs/attention_1pass.egg"])
    for rank, default in (("E", 64), ("M", 1024), ("P", 128), ("F", 64)):
        n.add_argument(f"--{rank}", type=int, default=default, help=f"size of rank {rank.lower()} (default {default})")
    n.set_defaults(func=cmd_numeric)
    return p


def run(argv, out=None, err=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if exc.code in (0, None) else 2
    try:
        return args.func(args, out, err)
    except VerifyError as exc:
        print(exc.format(), file=err)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return 130


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
