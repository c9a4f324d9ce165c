"""`verify report -o DIR`: a browsable page with every rule, chain step and program and its verdict.

DIR/index.html (or DIR/index.md with `--format md`) lists
- every rule and chain step: verdict, bound, method, seconds, file and line; a failure shows its formatted
  verdict (`verdict.format_result`, so the counterexample reads exactly as on the terminal);
- every program (an .egg file without rules): its outputs and their ranks, its bindings, the chain steps that
  start or end at it, and a picture of its cascade when a drawing module is available;
and DIR/results.json holds the same results as `verify check --json`.

Pictures come from `verify.draw`: a program's cascade is an SVG where graphviz's `dot` or networkx +
matplotlib can draw it, else its graphviz source, shown as text; a rule's two sides are an SVG drawn with
networkx + matplotlib, or left out. Either way the report is written, and its notes say what was left out.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import draw, ir
from . import verdict as V
from .claims import ClaimKind
from .errors import Location, VerifyError
from .gate import check_claims
from .options import Options
from .reader import expand_paths, read_file
from .shapes import program_ranks
from .targets import collect
from .verdict import Result, Verdict, exit_status


@dataclass
class ProgramInfo:
    path: str
    bindings: int
    outputs: list[str]                            # "NAME[ranks]"
    steps: list[tuple[str, str]] = field(default_factory=list)   # (step name, verdict)
    picture: str | None = None                    # file name inside DIR, or None
    picture_kind: str = ""                        # svg | dot


@dataclass
class RuleInfo:
    """A rule as written (its source text) and the picture of its two sides."""
    name: str
    file: str
    line: int | None
    text: str
    verdict: str
    lhs: ir.Expr                                  # for the picture
    rhs: ir.Expr
    picture: str | None = None                    # file name inside DIR


@dataclass
class ReportData:
    results: list[Result]
    programs: list[ProgramInfo]
    errors: list[VerifyError]
    notes: list[str]
    seconds: float
    created: str
    rules: list[RuleInfo] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return exit_status((r.verdict for r in self.results), len(self.errors))


def build(paths, options: Options, progress=None) -> ReportData:
    start = time.monotonic()
    claims, errors, notes = collect(paths, options)
    results = check_claims(claims, options, progress)
    programs: list[ProgramInfo] = []
    try:
        files = expand_paths(paths)
    except VerifyError:
        files = []
    for path in files:
        if path.suffix != ".egg":
            continue
        try:
            source = read_file(path)
        except VerifyError:
            continue           # already reported by collect
        if source.rules:
            continue
        try:
            ranks = program_ranks(source.program)
        except VerifyError:
            continue
        outs = [f"{n}[{','.join(ranks[n])}]" for n in source.program.output_names()]
        programs.append(ProgramInfo(str(path), len(source.program.bindings), outs))
    by_file = {Path(p.path).resolve(): p for p in programs}
    for claim, result in zip(claims, results):
        for side in (claim.lhs, claim.rhs):
            info = by_file.get(Path(side.file).resolve())
            if info is not None and claim.kind in (ClaimKind.STEP, ClaimKind.EQUIV):
                info.steps.append((claim.name, result.verdict.value))
    rules = [RuleInfo(c.name, c.file, c.line, rule_source(c.file, c.line), r.verdict.value, c.lhs.expr, c.rhs.expr)
             for c, r in zip(claims, results) if c.kind is ClaimKind.RULE]
    return ReportData(results, programs, errors, notes, time.monotonic() - start,
                      time.strftime("%Y-%m-%d %H:%M:%S"), rules)


def rule_source(file: str, line: int | None) -> str:
    """The text of the rule written at file:line: its comment lines above it and the form itself (to the
    parenthesis that closes it)."""
    try:
        lines = Path(file).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    if not line or line > len(lines):
        return ""
    start = line - 1
    while start > 0 and lines[start - 1].lstrip().startswith(";") and lines[start - 1].strip() != ";":
        start -= 1
    out, depth = [], 0
    for text in lines[line - 1:]:
        out.append(text)
        code = text.split(";", 1)[0]
        depth += code.count("(") - code.count(")")
        if depth <= 0 and "(" in "".join(out):
            break
    return "\n".join(lines[start:line - 1] + out)


# -- pictures -------------------------------------------------------------------------------------------------

def draw_program(info: ProgramInfo, directory: Path) -> None:
    """The cascade picture of one program in directory/pictures: an SVG, or its graphviz source where nothing
    here can draw (see draw.draw)."""
    try:
        program = read_file(info.path).program
    except VerifyError:
        return
    written, renderer, _ = draw.draw(program, directory / "pictures" / f"{Path(info.path).stem}.svg")
    info.picture = f"pictures/{written.name}"
    info.picture_kind = "dot" if renderer == "none" else "svg"


# -- writing --------------------------------------------------------------------------------------------------

def write(data: ReportData, directory: str | Path, fmt: str = "html") -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for info in data.programs:
        draw_program(info, directory)
    if any(info.picture_kind == "dot" for info in data.programs):
        data.notes.append("cascade pictures as graphviz source: graphviz `dot` was not found and "
                          f"{draw.python_renderer()}")
    for k, rule in enumerate(data.rules):
        target = draw.rule_svg(rule.lhs, rule.rhs, directory / "pictures" / f"rule-{k}.svg")
        if target is not None:
            rule.picture = f"pictures/{target.name}"
    if data.rules and not any(r.picture for r in data.rules):
        data.notes.append(f"no rule pictures: {draw.python_renderer()}")
    (directory / "results.json").write_text(V.dumps(data.results) + "\n", encoding="utf-8")
    target = directory / ("index.md" if fmt == "md" else "index.html")
    target.write_text(markdown(data) if fmt == "md" else page(data, directory), encoding="utf-8")
    return target


def _where(r: Result) -> str:
    return str(r.location)


def markdown(data: ReportData) -> str:
    lines = ["# Verification report", "", f"{V.summary(data.results)}; {data.seconds:.1f} s; {data.created}", ""]
    lines += ["## Rules and chain steps", "", "| name | kind | where | verdict | bound | method | s |",
              "| --- | --- | --- | --- | --- | --- | ---: |"]
    for r in data.results:
        method = r.method if r.verdict is Verdict.CERTIFIED else (r.detail or r.method)
        cells = [r.name, r.kind, _where(r), f"**{r.verdict.value}**", str(r.bound),
                 method.splitlines()[0] if method else "", f"{r.seconds:.3f}"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    failures = [r for r in data.results if r.verdict is not Verdict.CERTIFIED]
    if failures:
        lines += ["", "## Failures", ""]
        for r in failures:
            lines += [f"### {r.name}", "", "```", V.format_result(r), "```", ""]
    if data.rules:
        lines += ["", "## Rules", ""]
        for rule in data.rules:
            where = Location(rule.file, rule.line)
            lines += [f"### {rule.name} ({where}): **{rule.verdict}**", "", "```", rule.text, "```", ""]
            if rule.picture:
                lines += [f"![{rule.name}]({rule.picture})", ""]
    if data.programs:
        lines += ["", "## Programs", ""]
        for p in data.programs:
            lines.append(f"### {p.path}")
            lines.append("")
            lines.append(f"{p.bindings} bindings; outputs {', '.join(p.outputs) or 'none'}")
            for name, verdict in p.steps:
                lines.append(f"- step *{name}*: **{verdict}**")
            if p.picture and p.picture_kind == "svg":
                lines.append(f"\n![{Path(p.path).stem}]({p.picture})")
            elif p.picture:
                lines.append(f"\n[cascade ({p.picture_kind})]({p.picture})")
            lines.append("")
    lines += _notes_md(data)
    return "\n".join(lines) + "\n"


def _notes_md(data: ReportData) -> list[str]:
    out = []
    if data.errors or data.notes:
        out += ["", "## Notes", ""]
        out += [f"- error: `{e.format()}`" for e in data.errors]
        out += [f"- {n}" for n in data.notes]
    return out


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
td.s { text-align: right; font-variant-numeric: tabular-nums; }
.CERTIFIED { color: #17702c; font-weight: bold; }
.REFUTED { color: #b00020; font-weight: bold; }
.UNKNOWN { color: #9a6700; font-weight: bold; }
.ERROR { color: #7b1fa2; font-weight: bold; }
pre { background: #f6f8fa; padding: 1em; overflow-x: auto; }
.program img, .rule img { max-width: 100%; border: 1px solid #ddd; }
"""


def page(data: ReportData, directory: Path) -> str:
    e = html.escape
    rows = []
    for r in data.results:
        method = r.method if r.verdict is Verdict.CERTIFIED else (r.detail or r.method)
        anchor = f' <a href="#r{id(r)}">details</a>' if r.verdict is not Verdict.CERTIFIED else ""
        rows.append(f"<tr><td>{e(r.name)}</td><td>{e(r.kind)}</td><td>{e(_where(r))}</td>"
                    f'<td class="{r.verdict.value}">{r.verdict.value}{anchor}</td><td>{e(str(r.bound))}</td>'
                    f'<td>{e(method)}</td><td class="s">{r.seconds:.3f}</td></tr>')
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8"><title>Verification report</title>',
        f"<style>{CSS}</style></head><body>",
        "<h1>Verification report</h1>",
        f"<p>{e(V.summary(data.results))}; {data.seconds:.1f} s; {e(data.created)}. "
        '<a href="results.json">results.json</a></p>',
        "<h2>Rules and chain steps</h2>",
        "<table><tr><th>name</th><th>kind</th><th>where</th><th>verdict</th><th>bound</th><th>method</th>"
        "<th>s</th></tr>", *rows, "</table>",
    ]
    failures = [r for r in data.results if r.verdict is not Verdict.CERTIFIED]
    if failures:
        parts.append("<h2>Failures</h2>")
        for r in failures:
            parts.append(f'<h3 id="r{id(r)}">{e(r.name)}</h3><pre>{e(V.format_result(r))}</pre>')
    if data.rules:
        parts.append("<h2>Rules</h2>")
        for rule in data.rules:
            parts.append(f'<div class="rule"><h3>{e(rule.name)} <small>{e(rule.file)}:{rule.line}</small> '
                         f'<span class="{rule.verdict}">{rule.verdict}</span></h3><pre>{e(rule.text)}</pre>')
            if rule.picture:
                parts.append(f'<img src="{e(rule.picture)}" alt="both sides of {e(rule.name)}">')
            parts.append("</div>")
    if data.programs:
        parts.append("<h2>Programs</h2>")
        for p in data.programs:
            parts.append(f'<div class="program"><h3>{e(p.path)}</h3>')
            parts.append(f"<p>{p.bindings} bindings; outputs {e(', '.join(p.outputs) or 'none')}</p>")
            if p.steps:
                parts.append("<ul>" + "".join(f'<li>step <em>{e(n)}</em>: <span class="{v}">{v}</span></li>'
                                              for n, v in p.steps) + "</ul>")
            if p.picture and p.picture_kind == "svg":
                parts.append(f'<img src="{e(p.picture)}" alt="cascade of {e(Path(p.path).stem)}">')
            elif p.picture:
                text = (directory / p.picture).read_text(encoding="utf-8", errors="replace")
                parts.append(f'<p>cascade (<a href="{e(p.picture)}">{p.picture_kind}</a>):</p><pre>{e(text)}</pre>')
            parts.append("</div>")
    if data.errors or data.notes:
        parts.append("<h2>Notes</h2><ul>")
        parts += [f"<li>error: <code>{e(x.format())}</code></li>" for x in data.errors]
        parts += [f"<li>{e(n)}</li>" for n in data.notes]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def dumps(data: ReportData) -> str:
    return json.dumps({"results": [r.to_json() for r in data.results],
                       "programs": [p.__dict__ for p in data.programs]}, indent=2)
