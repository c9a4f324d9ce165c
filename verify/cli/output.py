"""How results reach the terminal: plain text as results complete (with a heartbeat), a rich table on a
terminal, JSON, and the progress bar."""

from __future__ import annotations

from .. import verdict as V
from ..claims import Claim
from ..gate import Report
from ..options import Options
from ..targets import collect


def emit(report: Report, args, out, err, streamed: bool = False) -> int:
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
                print(V.format_result(result, brief=getattr(args, "brief", False)), file=out)
        if report.results:
            errors = f"; {len(report.errors)} error(s), shown above" if report.errors else ""
            print(V.summary(report.results) + errors, file=out)
    return report.exit_code


def _rich_output(args, out) -> bool:
    return getattr(out, "isatty", lambda: False)() and not args.plain and not args.json


class Stream:
    """Plain output as results complete: each result is printed as soon as it and every result before it are
    done (input order: files in the order given, directories sorted, rules by line; with --jobs or a cluster a
    finished result waits for the ones before it). While the next result is still being checked, a heartbeat
    line `... still checking NAME (file:line), N s` is printed every `--heartbeat` seconds (on stderr with
    --json, whose stdout is one JSON document)."""

    def __init__(self, args, out, notes=(), err=None):
        import threading

        self.active = not args.json and not _rich_output(args, out)
        self.brief = getattr(args, "brief", False)
        self.beats = self.active or (args.json and err is not None)
        self.out = out
        self.beat_out = err if args.json else out
        self.interval = args.heartbeat
        self.lock = threading.Lock()
        self.next = 0
        self.done: dict[int, V.Result] = {}
        self.started_at: dict[int, float] = {}
        self.claims: dict[int, Claim] = {}
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
                    self._print(V.format_result(done, brief=self.brief))
                self.next += 1

    def _beat(self) -> None:
        import time

        while not self.stop.wait(self.interval):
            with self.lock:
                i, since = self.next, self.started_at.get(self.next)
                claim = self.claims.get(i)
                if since is None or claim is None or time.monotonic() - since < self.interval:
                    continue
                where = claim.location
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
    colours = {V.Verdict.CERTIFIED: "green", V.Verdict.REFUTED: "red", V.Verdict.UNKNOWN: "yellow",
               V.Verdict.ERROR: "magenta"}
    if report.results:
        table = Table(title="verdicts", title_justify="left")
        for column in ("rule / step", "where", "verdict", "bound", "method", "s"):
            table.add_column(column, justify="right" if column == "s" else "left",
                             overflow="fold", no_wrap=column in ("verdict", "s"))
        for r in report.results:
            colour = colours[r.verdict]
            cached = " [dim](cached)[/dim]" if "cache" in r.engines else ""
            method = r.method if r.verdict is V.Verdict.CERTIFIED else r.detail or r.method
            if r.verdict is V.Verdict.CERTIFIED and r.assumptions:
                method += f"; assuming {', '.join(r.assumptions)}"
            table.add_row(escape(r.name), escape(str(r.location)),
                          f"[{colour}]{r.verdict.value}[/{colour}]", escape(str(r.bound)), escape(method),
                          f"{r.seconds:.3f}{cached}")
        console.print(table)
    for r in report.results:
        if r.verdict is V.Verdict.CERTIFIED and not r.warnings:
            continue
        colour = colours[r.verdict]
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
        for part, style in V.rich_counterexample(cx):
            console.print(part, style=style, markup=False, highlight=False)
    if report.results:
        console.print(V.summary(report.results), highlight=False)


class Progress:
    """A transient progress bar on a terminal, shown only once a run has taken longer than a second."""

    def __init__(self, args, out, total=None):
        self.progress = None
        if args.json or args.plain or not getattr(out, "isatty", lambda: False)():
            return
        import threading

        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        if total is None:
            counting = Options(strict_shapes=getattr(args, "strict_shapes", False))
            total = len(collect(args.paths, counting)[0]) or None
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

