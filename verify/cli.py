"""The command line. The only module that writes to the terminal.

Every command is a plain function `(args, out, err) -> exit status`, so tests drive it with StringIO.
Exit status, the same for every command: 2 if there was any ERROR or bad input (file, line and cause on
stderr, never a traceback), else 1 if anything was REFUTED or UNKNOWN or a requested output was not written,
else 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import verdict as V
from .claims import Bound
from .driver import Options, Report, check_equiv, declared_sizes_outside
from .errors import BoundError, UsageError, VerifyError

EXIT_HELP = """\
exit status (every command):
  2  any ERROR or bad input (the message names file, line and cause; never a traceback)
  1  otherwise, anything REFUTED or UNKNOWN, or a requested output not written
  0  everything certified, every requested output written

examples:
  verify check rules/ proofs/                      # the proof gate (results stream as they complete)
  verify check rules/tiling.egg:split-max          # one rule (FILE:NAME or FILE:LINE)
  verify check --changed-since origin/main         # only what a change affects (rules, chains, programs)
  verify check rules/ --json > results.json        # every result, ERROR included (schemas/check.schema.json)
  verify equiv proofs/attention.egg proofs/attention_1pass.egg
  verify explain myrules/factor.egg:factor-out     # smallest failing sizes and preconditions that fix it
  verify mutate rules/ --executor dask             # on a local dask cluster (pip install 'verify[cluster]')
  verify numeric proofs/masked/attention_masked.egg --sizes M=512,E=64
  verify draw proofs/attention_1pass.egg -o cascade.svg
"""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("verify")
    except PackageNotFoundError:
        return "unknown"


def _options(args) -> Options:
    if args.timeout is not None and not (0 < args.timeout <= 86400):
        raise BoundError(f"--timeout must be between 0 and 86400 seconds, got {args.timeout:g}")
    if args.jobs < 1 or args.jobs > 64:
        raise BoundError(f"--jobs must be between 1 and 64, got {args.jobs}")
    from .cluster import parse as parse_executor

    parse_executor(args.executor)
    return Options(
        bound=Bound.parse(args.bound),
        timeout=args.timeout or 60.0,
        sympy=not args.no_sympy,
        jobs=args.jobs,
        cache_dir=args.cache_dir,
        cache_mode=args.cache,
        strict_shapes=getattr(args, "strict_shapes", False),
        executor=args.executor,
    )


def _emit(report: Report, args, out, err, streamed: bool = False) -> int:
    for error in report.errors:
        print(error.format(), file=err)
    if args.json:
        out.write(V.dumps(report.results + report.error_results()) + "\n")
        return report.exit_code
    if _rich_output(args, out):
        _rich(report, out)
    else:
        if not streamed:
            for note in report.notes:
                print(f"note: {note}", file=out)
            for result in report.results:
                print(V.format_result(result), file=out)
        if report.results:
            errors = f"; {len(report.errors)} error(s), shown above" if report.errors else ""
            print(V.summary(report.results) + errors, file=out)
    return report.exit_code


def _rich_output(args, out) -> bool:
    return getattr(out, "isatty", lambda: False)() and not args.plain and not args.json


class _Stream:
    """Plain output as results complete: each result is printed as soon as it and every result before it are
    done (input order: files in the order given, directories sorted, rules by line; with --jobs or a cluster a
    finished result waits for the ones before it). While the next result is still being checked, a heartbeat
    line `... still checking NAME (file:line), N s` is printed every `--heartbeat` seconds (on stderr with
    --json, whose stdout is one JSON document)."""

    def __init__(self, args, out, notes=(), err=None):
        import threading

        self.active = not args.json and not _rich_output(args, out)
        self.beats = self.active or (args.json and err is not None)
        self.out = out
        self.beat_out = err if args.json else out
        self.interval = args.heartbeat
        self.lock = threading.Lock()
        self.next = 0
        self.done: dict[int, object] = {}
        self.started_at: dict[int, float] = {}
        self.claims: dict[int, object] = {}
        self.stop = threading.Event()
        self.broken = False
        self.thread = None
        if self.active:
            for note in notes:
                self._print(f"note: {note}")

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def started(self, i, claim) -> None:
        import time

        with self.lock:
            self.started_at.setdefault(i, time.monotonic())
            self.claims[i] = claim

    def finished(self, i, result) -> None:
        with self.lock:
            self.done[i] = result
            while self.next in self.done:
                done = self.done.pop(self.next)
                if self.active:
                    self._print(V.format_result(done))
                self.next += 1

    def _beat(self) -> None:
        import time

        while not self.stop.wait(self.interval):
            with self.lock:
                i, since = self.next, self.started_at.get(self.next)
                claim = self.claims.get(i)
                if since is None or claim is None or time.monotonic() - since < self.interval:
                    continue
                where = f"{claim.file}:{claim.line}" if claim.line else claim.file
                try:
                    print(f"... still checking {claim.name} ({where}), {time.monotonic() - since:.0f} s",
                          file=self.beat_out, flush=True)
                except (BrokenPipeError, ValueError):
                    self.broken = True
                    return

    def __enter__(self):
        import threading

        if self.beats and self.interval and self.interval > 0:
            self.thread = threading.Thread(target=self._beat, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.thread is not None:
            self.thread.join(2)
        return False


def _rich(report: Report, out) -> None:
    """A verdict table, then each failure with its counterexample as small tables with named ranks."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(file=out)
    for note in report.notes:
        console.print(f"[dim]note: {escape(note)}[/dim]", highlight=False)
    colours = {"CERTIFIED": "green", "REFUTED": "red", "UNKNOWN": "yellow", "ERROR": "magenta"}
    if report.results:
        table = Table(title="verdicts", title_justify="left")
        for column in ("rule / step", "where", "verdict", "bound", "method", "s"):
            table.add_column(column, justify="right" if column == "s" else "left",
                             overflow="fold", no_wrap=column in ("verdict", "s"))
        for r in report.results:
            colour = colours[r.verdict.value]
            cached = " [dim](cached)[/dim]" if "cache" in r.engines else ""
            method = r.method if r.verdict is V.Verdict.CERTIFIED else r.detail or r.method
            if r.verdict is V.Verdict.CERTIFIED and r.assumptions:
                method += f"; assuming {', '.join(r.assumptions)}"
            table.add_row(escape(r.name), escape(f"{r.file}:{r.line}" if r.line else r.file),
                          f"[{colour}]{r.verdict.value}[/{colour}]", escape(r.bound), escape(method),
                          f"{r.seconds:.3f}{cached}")
        console.print(table)
    for r in report.results:
        if r.verdict is V.Verdict.CERTIFIED and not r.warnings:
            continue
        colour = colours[r.verdict.value]
        console.print()
        console.print(V.headline(r), style=f"bold {colour}", markup=False, highlight=False)
        if r.description:
            console.print(f"  ({r.description})", markup=False, highlight=False)
        for w in r.warnings:
            console.print(f"  warning: {w}", style="yellow", markup=False, highlight=False)
        cx = r.counterexample
        if cx is None:
            if r.verdict is not V.Verdict.CERTIFIED and r.detail:
                console.print(f"  {r.detail}", markup=False, highlight=False)
            continue
        sizes = ", ".join(f"{k}={v}" for k, v in cx.sizes.items())
        console.print(f"  counterexample ({cx.found_by}; replayed: {'yes' if cx.replayed else 'no'}), sizes {sizes}",
                      markup=False, highlight=False)
        groups = [("inputs", cx.inputs, None)]
        if cx.intermediates:
            groups.append(("intermediates", cx.intermediates, None))
        groups.append(("results", {"lhs": cx.lhs, "rhs": cx.rhs}, cx.at))
        for title, tensors, at in groups:
            console.print(f"  {title}:")
            console.print(_rich_tensors(tensors, at))
        at = ", ".join(f"{k}={v}" for k, v in cx.at.items()) or "(scalar)"
        console.print(f"  at {at}: lhs = {V.format_value(cx.lhs_value)}, rhs = {V.format_value(cx.rhs_value)}",
                      style="bold", markup=False, highlight=False)
        if cx.edge_case is not None:       # the ordinary counterexample above; the edge case second, as text
            second = V.format_counterexample(cx.edge_case).replace(
                "  counterexample (", "  second counterexample, an edge case (", 1)
            console.print(second, markup=False, highlight=False)
    if report.results:
        console.print(V.summary(report.results), highlight=False)


def _rich_tensors(tensors: dict, at: dict | None = None):
    """One rich Table per tensor (rows: every rank but the last, columns: the last), side by side; the
    position where the sides differ (`at`) is highlighted."""
    import numpy as np
    from rich import box
    from rich.columns import Columns
    from rich.console import Group
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    cells = []
    for name, t in tensors.items():
        if not t.ranks:
            style = "bold red" if at is not None else ""
            cells.append(Text(f"{name} = {V.format_value(t.values)}", style=style))
            continue
        arr = np.array(t.values, dtype=object)
        arr = arr.reshape((1,) + arr.shape) if arr.ndim == 1 else arr
        table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False)
        if len(t.ranks) > 1:
            table.add_column(", ".join(t.ranks[:-1]), style="dim")
        for j in range(arr.shape[-1]):
            table.add_column(f"{t.ranks[-1]}={j}", justify="right")
        for idx in np.ndindex(*arr.shape[:-1]):
            lead = idx if len(t.ranks) > 1 else ()
            label = ", ".join(f"{r}={i}" for r, i in zip(t.ranks, lead))
            row = []
            for j in range(arr.shape[-1]):
                text = V.format_value(arr[idx + (j,)])
                hit = at is not None and all(at.get(r) == i for r, i in zip(t.ranks, lead + (j,)))
                row.append(Text(text, style="bold red" if hit else ""))
            table.add_row(*([label] if len(t.ranks) > 1 else []), *row)
        cells.append(Group(Text(f"{name}[{', '.join(t.ranks)}]", style="bold", no_wrap=True), table))
    return Padding(Columns(cells, padding=(0, 3)), (0, 0, 0, 4))


class _Progress:
    """A transient progress bar on a terminal, shown only once a run has taken longer than a second."""

    def __init__(self, args, out, total=None):
        self.progress = None
        if args.json or args.plain or not getattr(out, "isatty", lambda: False)():
            return
        import threading

        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        if total is None:
            from .driver import collect

            total = len(collect(args.paths)[0]) or None
        self.progress = Progress(TextColumn("checking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.description}"), console=Console(file=out), transient=True)
        self.task = self.progress.add_task("", total=total)
        self.lock = threading.Lock()
        self.started = False
        self.timer = threading.Timer(1.0, self._start)
        self.timer.daemon = True

    def _start(self):
        with self.lock:
            if self.progress is not None and not self.started:
                self.progress.start()
                self.started = True

    def __enter__(self):
        if self.progress is not None:
            self.timer.start()
            return self
        return None

    def __call__(self, result) -> None:
        with self.lock:
            from rich.markup import escape

            name = result.name if len(result.name) <= 40 else result.name[:39] + "…"
            self.progress.update(self.task, advance=1, description=escape(f"{name}: {result.verdict.value}"))

    def __exit__(self, *exc):
        if self.progress is not None:
            self.timer.cancel()
            with self.lock:
                if self.started:
                    self.progress.stop()
                self.progress = None
        return False


def _targets(paths, strict: bool = False) -> tuple[list, list, list[str]]:
    """`FILE`, `DIR` and `FILE:RULE` targets -> (claims, errors, notes); a FILE:RULE naming nothing raises."""
    from .driver import collect
    from .explain import select

    claims, errors, notes = [], [], []
    plain: list[str] = []

    def flush():
        for path in plain:        # one by one: a missing path is one error, not the end of the run
            c, e, n = collect([path], strict)
            claims.extend(c), errors.extend(e), notes.extend(n)
        plain.clear()

    for target in paths:
        if Path(target).exists() or ":" not in target:
            plain.append(target)
            continue
        flush()
        claims.extend(select(target, strict))
    flush()
    return claims, errors, notes


def cmd_check(args, out, err) -> int:
    from .driver import check_claims

    options = _options(args)
    paths = list(args.paths)
    if args.staged and args.changed_since is None:
        args.changed_since = "HEAD"
    if args.changed_since is not None:
        from . import deps

        plan = deps.plan(args.changed_since, paths, staged=args.staged)
        staged = " (staged)" if args.staged else ""
        print(f"changed since {args.changed_since}{staged}: {len(plan.changed)} file(s); re-checking "
              f"{len(plan.targets)} target(s)" + "".join(f"\n  {t}  ({plan.reasons[t]})" for t in plan.targets),
              file=err)
        if not plan.targets:
            if args.json:
                out.write("[]\n")
            else:
                print("nothing to check: no rule, chain or program depends on the changes", file=out)
            return 0
        paths = plan.targets
    elif not paths:
        print("usage error: give rule files, chain files or directories (or --changed-since REF)", file=err)
        return 2
    claims, errors, notes = _targets(paths, options.strict_shapes)
    with _Stream(args, out, notes, err) as stream, _Progress(args, out, len(claims)) as progress:
        report = Report(check_claims(claims, options, progress, stream), errors, notes, claims)
    if not report.results and not report.errors and not report.notes:
        print("error: nothing to check", file=err)
        return 2
    if args.certificates and not report.errors:
        from .certificates import write_certificates
        from .driver import ENCODING_VERSION

        written = write_certificates(zip(report.claims, report.results), args.certificates, ENCODING_VERSION)
        if stream.active:
            print(f"note: wrote {len(written)} certificates to {args.certificates}", file=out)
        else:
            report.notes.append(f"wrote {len(written)} certificates to {args.certificates}")
    return _emit(report, args, out, err, streamed=stream.active)


def cmd_equiv(args, out, err) -> int:
    options = _options(args)
    with _Stream(args, out, err=err) as stream:
        report = check_equiv(args.a, args.b, options, stream)
    return _emit(report, args, out, err, streamed=stream.active)


def cmd_numeric(args, out, err) -> int:
    """Programs at realistic sizes against the reference evaluator, and attention against numpy and torch SDPA."""
    import json

    from . import numerics
    from .errors import UsageError

    for path in args.programs:
        if not Path(path).is_file():
            raise UsageError(f"no such file: {path}")
    given = {rank: value for rank, value in (("e", args.E), ("m", args.M), ("p", args.P), ("f", args.F))
             if value is not None}
    for rank, (_lo, hi) in Bound.parse(args.bound).ranges:
        given[rank.lower()] = hi
    given.update({k.lower(): v for k, v in _sizes(args.sizes).items()})
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
    from . import explain

    if not (0 < args.budget <= 86400):
        raise BoundError(f"--budget must be between 0 and 86400 seconds, got {args.budget:g}")
    options = _options(args)
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
    if errors or any(e.result.verdict is V.Verdict.ERROR for e in explanations):
        return 2
    return 0 if all(e.result.verdict is V.Verdict.CERTIFIED for e in explanations) else 1


def cmd_report(args, out, err) -> int:
    """Check everything and write DIR/index.html (or .md) and DIR/results.json."""
    from . import report as R

    options = _options(args)
    with _Progress(args, out) as progress:
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
    from dataclasses import replace

    from . import mutate

    options = replace(_options(args), sympy=False, cache_mode="off", timeout=args.timeout or 30.0, z3_timeout=5.0)
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
    p.add_argument("--strict-shapes", action="store_true",
                   help="no implicit tiling: a rank-m tensor under an m1/m0 operator is a shape error "
                        "(per file: '; shapes: strict')")
    p.add_argument("--executor", default=os.environ.get("VERIFY_EXECUTOR", "local"),
                   metavar="local|dask[=ADDRESS]",
                   help="where claims run: local (default), dask (a local dask cluster) or dask=HOST:PORT "
                        "(needs pip install 'verify[cluster]'); env VERIFY_EXECUTOR")
    p.add_argument("--heartbeat", type=float, default=float(os.environ.get("VERIFY_HEARTBEAT", 30)),
                   metavar="SECONDS", help="in plain output, say which claim is still running every SECONDS "
                                           "(default 30; 0: never); env VERIFY_HEARTBEAT")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="verify", description="Certify or refute tensor rewrite rules and cascades.",
                                epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"verify {_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="check rule files, chain files and directories",
                       epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("paths", nargs="*", metavar="PATH",
                   help=".egg rule files, .chain.toml chains, directories, or FILE:RULE (a name or a line)")
    c.add_argument("--changed-since", metavar="REF",
                   help="check only what depends on the files changed since git REF (PATHs: where to look, "
                        "default rules and proofs where they exist, else everything)")
    c.add_argument("--staged", action="store_true",
                   help="with --changed-since (default HEAD): the staged changes only (the pre-commit hook)")
    _common(c)
    c.set_defaults(func=cmd_check)
    e = sub.add_parser("equiv", help="are the extracted outputs of two programs equal?")
    e.add_argument("a")
    e.add_argument("b")
    _common(e)
    e.set_defaults(func=cmd_equiv)
    n = sub.add_parser("numeric", help="evaluate any program at realistic sizes against the reference evaluator "
                                       "(and attention against numpy and torch SDPA)")
    n.add_argument("programs", nargs="*", metavar="PROGRAM",
                   help=".egg programs (default: the four attention cascades of proofs/, and the overflow demo)")
    for rank, default in (("E", 64), ("M", 1024), ("P", 128), ("F", 64)):
        n.add_argument(f"--{rank}", type=int, default=None, help=f"size of rank {rank.lower()} (default {default})")
    n.add_argument("--sizes", help="sizes of any ranks, e.g. M=4096,M1=64,E=64,J=4 (a split rank's parts: every "
                                   "tile count of 8, 32, 128 that divides it unless given)")
    n.add_argument("--bound", help="sizes as a bound: each rank at its upper end (M1=8,M0=4 -> M1=8, M0=4)")
    n.add_argument("--reference", metavar="PROGRAM",
                   help="the program every other one is compared with (default: the first)")
    n.add_argument("--tolerance", type=float, default=1e-9, help="largest float64 error that passes (default 1e-9)")
    n.add_argument("--json", action="store_true", help="print a JSON object (schemas/numeric.schema.json)")
    n.set_defaults(func=cmd_numeric)
    x = sub.add_parser("explain", help="why a rule is refuted: smallest failing sizes, preconditions that fix it")
    x.add_argument("targets", nargs="+", metavar="FILE[:RULE]",
                   help="a rule file (every rule), FILE:NAME or FILE:LINE; chain files name steps")
    x.add_argument("--budget", type=float, default=60.0, help="seconds for trying preconditions (default 60)")
    _common(x)
    x.set_defaults(func=cmd_explain)
    rp = sub.add_parser("report", help="write DIR/index.html with every rule, chain step and program")
    rp.add_argument("paths", nargs="*", default=["rules", "proofs"], help="what to check (default: rules proofs)")
    rp.add_argument("-o", "--output", required=True, metavar="DIR", help="directory to write the report into")
    rp.add_argument("--format", choices=("html", "md"), default="html", help="index.html (default) or index.md")
    _common(rp)
    rp.set_defaults(func=cmd_report)
    mu = sub.add_parser("mutate",
                        help="mutation testing: every non-equivalent mutant of a rule or step must be refuted")
    mu.add_argument("paths", nargs="+", help=".egg rule files, .chain.toml chains, programs, or directories")
    mu.add_argument("--verbose", "-v", action="store_true", help="also list refuted and ill-shaped mutants")
    _common(mu)
    mu.set_defaults(func=cmd_mutate)
    dp = sub.add_parser("deps", help="what a change makes the gate re-check (the dependency graph, verify/deps.py)")
    dp.add_argument("paths", nargs="*", help="where to look (default rules and proofs where they exist)")
    dp.add_argument("--changed-since", metavar="REF", default="HEAD", help="git revision to compare with "
                                                                         "(default HEAD)")
    dp.add_argument("--staged", action="store_true", help="the staged changes only")
    dp.add_argument("--files", action="store_true", help="print the files of the targets (for tools taking files)")
    dp.add_argument("--json", action="store_true", help="print a JSON object (schemas/deps.schema.json)")
    dp.set_defaults(func=cmd_deps)
    _egglog_commands(sub)
    return p


def cmd_deps(args, out, err) -> int:
    import json

    from . import deps

    plan = deps.plan(args.changed_since, args.paths, staged=args.staged)
    if args.json:
        out.write(json.dumps({"ref": plan.ref, "changed": plan.changed, "targets": plan.targets,
                              "reasons": plan.reasons, "files": plan.files}, indent=2) + "\n")
    else:
        for t in plan.files if args.files else plan.targets:
            print(t, file=out)
    return 0


# -- egglog: export, optimize, run, draw (verify/egglog_bridge.py, cost.py, draw.py) ----------------------------

def _certified_rules(args, err):
    from . import egglog_bridge as EB

    statuses, errors = EB.certify_rules(args.rules, Options(sympy=not args.no_sympy),
                                        allow_bounded=args.allow_bounded)
    for error in errors:
        print(error.format(), file=err)
    return statuses, errors


def cmd_export(args, out, err) -> int:
    """Check every rule under --rules now and write the certified ones as an egglog program."""
    from . import egglog_bridge as EB

    statuses, errors = _certified_rules(args, err)
    if errors:
        print(f"error: {len(errors)} rule file(s) could not be read; nothing exported", file=err)
        return 2
    if args.rule:
        named = [s for s in statuses if s.name == args.rule]
        if not named:
            print(f"usage error: no rule named '{args.rule}' under {args.rules}", file=err)
            return 2
        if not named[0].exported:
            why = named[0].reason or f"{named[0].verdict}: {named[0].detail}"
            print(f"error: rule '{args.rule}' ({named[0].file}:{named[0].line}) is not certified, so it is not "
                  f"exported ({why})", file=err)
            return 2
    text = EB.export_text(statuses, str(args.rules), args.rule)
    target = Path(args.output)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    shown = [s for s in statuses if args.rule is None or s.name == args.rule]
    exported = [s for s in shown if s.exported]
    print(f"wrote {target}: {len(exported)} certified rule(s) of {len(shown)}", file=out)
    for s in shown:
        if not s.exported:
            print(f"  not exported: {s.name} ({s.file}:{s.line or ''}): {s.reason or s.verdict}", file=out)
    verdicts = {str(getattr(s.verdict, "value", s.verdict)) for s in shown}
    return 2 if "ERROR" in verdicts else 1 if verdicts & {"REFUTED", "UNKNOWN"} else 0


def _sizes(spec: str | None) -> dict:
    sizes = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        if not value.strip().isdigit() or not name.strip():
            raise BoundError(f"cannot read size '{part.strip()}'", hint="write e.g. --sizes M=4096,M0=64,P=512")
        sizes[name.strip().upper()] = int(value)
    return sizes


def cmd_optimize(args, out, err) -> int:
    """Saturate a program with the certified rules, extract by passes or memory, validate, print."""
    import json

    from . import egglog_bridge as EB
    from .printer import program_text
    from .reader import read_file

    if args.emit and args.json and not args.emit_output:
        raise UsageError("--emit with --json needs --emit-output FILE.py (standard output holds the JSON)")
    source = read_file(args.program)
    schedule = EB.Schedule(iterations=args.iterations, node_limit=args.node_limit, time_limit=args.time_limit)
    statuses, errors = _certified_rules(args, err)
    if errors:
        return 2
    forbid = ("S_",) if args.no_scan else ()
    result = EB.optimize(source.program, statuses, args.cost, forbid, schedule, _sizes(args.sizes))
    sat = result.saturation
    rules = [s for s in statuses if s.exported]
    outside = declared_sizes_outside(source.program, result.verdicts)
    if outside:      # only with --allow-bounded: rules and validation hold within a bound the program leaves
        print(f"warning: {args.program} declares {outside}, outside the bound the result was checked at; the "
              "output is not certified at those sizes" + (" and no kernel is written" if args.emit else ""),
              file=err)
    checks = "; ".join(f"{r.verdict.value} ({r.bound}; {r.method})" for r in result.verdicts) or "not checked"
    header = [
        f"verify optimize {args.program} --cost {args.cost}{' --no-scan' if args.no_scan else ''}",
        f"e-graph: {sat.rows} rows, {sat.iterations} iterations ({sat.stop}), {sat.seconds:.2f} s; "
        f"{len(rules)} of {len(statuses)} rules used (certified"
        f"{' within their bounds' if args.allow_bounded else ' for all sizes'})",
        "rules that matched: " + (", ".join(f"{name} ({n})" for name, n in sorted(sat.matches.items()) if n)
                                  or "none"),
        f"extraction: {result.candidates} candidates, {result.evaluations} exact DAG costs, "
        f"{result.extract_seconds:.2f} s",
        f"input:  passes {result.input.passes}, memory {result.input.memory}",
        f"output: passes {result.output.passes}, memory {result.output.memory}",
        f"equal to the input (translation validation): {checks}",
    ]
    import textwrap

    header = [piece for line in header
              for piece in textwrap.wrap(line, 112, subsequent_indent="  ", break_on_hyphens=False)]
    text = program_text(result.program, header=header)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    if args.emit and result.verified and not outside:
        from .codegen import generate

        origin = f"verify optimize {args.program} --cost {args.cost} --emit {args.emit}"
        _write_kernel(generate(result.program, args.emit, text, origin), args.emit_output, err if args.json else out)
    if args.json:
        sizes = {**EB.REFERENCE_SIZES, **_sizes(args.sizes)}
        payload = {
            "input": result.input.summary(), "output": result.output.summary(), "verified": result.verified,
            "egraph": {"rows": sat.rows, "iterations": sat.iterations, "seconds": round(sat.seconds, 4),
                       "stop": sat.stop},
            "program": program_text(result.program),
            "cost": args.cost, "no_scan": args.no_scan, "reference_sizes": sizes,
            "validation": [{"verdict": r.verdict.value, "bound": r.bound, "method": r.method, "detail": r.detail}
                           for r in result.verdicts],
            "rules": {"certified": len(rules), "checked": len(statuses)},
        }
        out.write(json.dumps(payload, indent=2) + "\n")
    elif not args.emit:
        out.write(text)
    if outside:
        return 1
    if not result.verified:
        details = "; ".join(f"{r.verdict.value}: {r.detail}" for r in result.verdicts) or "no verdict"
        print(f"error: TRANSLATION VALIDATION FAILED: the extracted program was not proved equal to "
              f"{args.program} ({details}); do not use it", file=err)
        return 1
    return 0


def cmd_run(args, out, err) -> int:
    """Run a .egg program through egglog (with the prelude if it declares no datatype); show what it extracts."""
    from . import egglog_bridge as EB

    path = Path(args.program)
    if not path.is_file():
        print(f"usage error: no such file: {path}", file=err)
        return 2
    from .errors import InternalError
    from .reader import source_text

    try:
        outputs, added = EB.run_program(source_text(path), str(path))
    except InternalError as exc:       # egglog panicked: no traceback
        print(f"{path}: error: {exc}", file=err)
        return 2
    if added:
        print("; the file declares no datatype: the generated prelude was added", file=out)
    for output in outputs:
        print(output.text, file=out)
        if output.kind == "extract" and not args.quiet:
            shared = EB.term_program(output.terms[0])
            if shared is not None:
                program, analysis = shared
                print(f"; passes {analysis.passes}, memory {analysis.memory}; shared subterms as lets:", file=out)
                for line in program.splitlines():
                    print(f";   {line}", file=out)
    if not outputs:
        print("; no output (the program has no extract or print command)", file=out)
    if args.no_check:
        return 0
    from dataclasses import replace

    options = replace(Options(), sympy=not args.no_sympy, strict_shapes=args.strict_shapes)
    try:
        checked = EB.check_run(str(path), outputs, options)
    except VerifyError as exc:
        print("; the checker cannot read this file: its rules are not checked and the extraction above is NOT "
              "validated", file=out)
        print(exc.format(), file=err)
        return 2
    if checked is None:
        return 0
    for error in checked.errors:
        print(error.format(), file=err)
    for note in checked.notes:
        print(f"; note: {note}", file=out)
    print(f"; rules of {path}: {V.summary(checked.results)}", file=out)
    for r in checked.results:
        if r.verdict is not V.Verdict.CERTIFIED:
            print("; " + V.format_result(r).replace("\n", "\n; "), file=out)
    for name, r in checked.validations:
        what = r if isinstance(r, str) else (
            f"{r.verdict.value} ({r.bound}; {r.method})" if r.verdict is V.Verdict.CERTIFIED else V.headline(r))
        print(f"; translation validation: the extracted {name} equals the file's {name}: {what}", file=out)
    return checked.exit_code


def cmd_draw(args, out, err) -> int:
    """Draw a program's Einsums with graphviz, coloured by pass, barriers marked."""
    from . import draw
    from .reader import read_file
    from .shapes import program_ranks

    source = read_file(args.program)
    if not source.program.bindings:
        raise UsageError(f"{args.program} has no program to draw (no let bindings)",
                         hint="draw a program file, e.g. proofs/attention.egg; `verify report` draws rules")
    program_ranks(source.program)     # an ill-ranked program is a located error, as in check and codegen
    written, renderer, note = draw.draw(source.program, args.output, use_dot=not args.no_dot)
    print(f"wrote {written}" + (f" ({renderer})" if renderer != "none" else ""), file=out)
    if note:
        print(note, file=err)
    return 0 if Path(written) == Path(args.output) else 1   # the requested file was not written


def cmd_codegen(args, out, err) -> int:
    """Translate a program's IR into a PyTorch module or a Triton kernel (verify/codegen)."""
    from .codegen import generate
    from .reader import read_file

    source = read_file(args.program)
    _write_kernel(generate(source.program, args.target, source.text), args.output, out)
    return 0


def _write_kernel(text: str, output: str | None, out) -> None:
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")
        print(f"wrote {output}", file=out)
    else:
        out.write(text)


def _egglog_commands(sub) -> None:
    cg = sub.add_parser("codegen", help="generate a PyTorch module or Triton kernel from a program")
    cg.add_argument("program", help="a .egg program, e.g. proofs/attention_1pass.egg")
    cg.add_argument("--target", choices=("torch", "triton"), default="torch",
                    help="torch (every program) or triton (the 1-pass family); default torch")
    cg.add_argument("-o", "--output", metavar="FILE.py", help="write the module here (default: standard output)")
    cg.set_defaults(func=cmd_codegen)
    ex = sub.add_parser("export", help="check every rule now; write the certified ones as an egglog program")
    ex.add_argument("-o", "--output", default="build/certified_rules.egg",
                    help="where to write (default build/certified_rules.egg)")
    ex.add_argument("--rules", default="rules", help="rules directory (default rules)")
    ex.add_argument("--allow-bounded", action="store_true",
                    help="also use rules certified only within a bound (default: only rules certified for all "
                         "sizes, since egglog applies a rule at every size)")
    ex.add_argument("--rule", metavar="NAME", help="export only this rule; an error unless it is certified")
    ex.add_argument("--no-sympy", action="store_true", help="skip SymPy's second opinion")
    ex.set_defaults(func=cmd_export)
    op = sub.add_parser("optimize", help="saturate a program with the certified rules and extract the cheapest")
    op.add_argument("program", help="a .egg program, e.g. proofs/attention.egg")
    op.add_argument("--cost", choices=("passes", "memory"), default="passes",
                    help="passes over m (then memory), or peak live memory (then passes)")
    op.add_argument("--no-scan", action="store_true", help="do not extract scans (S_scan/S_prev/S_shift/S_last)")
    op.add_argument("--json", action="store_true", help="print a JSON object instead of the program")
    op.add_argument("--rules", default="rules", help="rules directory (default rules)")
    op.add_argument("--allow-bounded", action="store_true",
                    help="also use rules certified only within a bound (default: only rules certified for all "
                         "sizes, since egglog applies a rule at every size)")
    op.add_argument("-o", "--output", help="also write the optimized program to this file")
    op.add_argument("--sizes", help="reference sizes that rank memory, e.g. M=4096,M0=64,P=512,E=64,F=64")
    op.add_argument("--iterations", type=int, default=12, help="rule iterations at most (default 12)")
    op.add_argument("--node-limit", type=int, default=20000, help="stop when the e-graph has this many rows")
    op.add_argument("--time-limit", type=float, default=20.0, help="seconds of saturation at most (default 20)")
    op.add_argument("--no-sympy", action="store_true", help="skip SymPy's second opinion")
    op.add_argument("--emit", choices=("torch", "triton"),
                    help="write the kernel of the optimized, validated program instead of its text (verify codegen)")
    op.add_argument("--emit-output", metavar="FILE.py", help="with --emit: write the kernel here (default: stdout)")
    op.set_defaults(func=cmd_optimize)
    rn = sub.add_parser("run", help="run a .egg program through egglog and show what it extracts")
    rn.add_argument("program")
    rn.add_argument("--quiet", action="store_true", help="do not annotate extracted terms with passes and memory")
    rn.add_argument("--no-check", action="store_true",
                    help="only run egglog: do not check the file's rules nor validate what it extracts")
    rn.add_argument("--no-sympy", action="store_true", help="skip SymPy's second opinion")
    rn.add_argument("--strict-shapes", action="store_true", help="no implicit tiling when checking the rules")
    rn.set_defaults(func=cmd_run)
    dr = sub.add_parser("draw", help="draw a program: one node per Einsum, coloured by pass (SVG)")
    dr.add_argument("program")
    dr.add_argument("-o", "--output", required=True,
                    help="FILE.svg: with graphviz's dot where installed, else networkx + matplotlib; FILE.dot: "
                         "the graphviz source")
    dr.add_argument("--no-dot", action="store_true", help="do not use graphviz's dot even where installed")
    dr.set_defaults(func=cmd_draw)


def run(argv, out=None, err=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code in (0, None):
            return 0
        if "--json" in argv:     # argparse has printed the usage error; the JSON says so in the schema
            from .errors import UsageError

            command = next((a for a in argv if not a.startswith("-")), "")
            _json_error(argparse.Namespace(command=command), UsageError(
                "invalid arguments (see the usage message on stderr)"), out)
        return 2
    try:
        return args.func(args, out, err)
    except VerifyError as exc:
        print(exc.format(), file=err)
        if getattr(args, "json", False):
            _json_error(args, exc, out)
        return 2
    except BrokenPipeError:
        raise                # the reader went away: main() stops without a traceback, exit 1
    except OSError as exc:   # a path the user gave cannot be read or written (-o into a file, no permission)
        where = exc.filename or "?"
        print(f"{where}: usage error: {exc.strerror or exc}", file=err)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return 130


def _json_error(args, exc: VerifyError, out) -> None:
    """With --json, bad input is output too, in the command's schema (schemas/): a result of kind "input"
    for the commands that list results, else {"errors": [...]}."""
    import json

    if args.command in ("check", "equiv", "report"):
        out.write(V.dumps([V.error_result(exc)]) + "\n")
    elif args.command == "explain":
        from .explain import Explanation, dumps

        out.write(dumps([Explanation(V.error_result(exc))]) + "\n")
    else:
        out.write(json.dumps({"errors": [exc.format()]}, indent=2) + "\n")


def main() -> None:
    try:
        code = run(sys.argv[1:])
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away (`verify check rules | head`): stop, without a traceback; the output was not
        # all written, so exit 1 (the exit-status rule). Python would flush stdout again at exit: point it away.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
