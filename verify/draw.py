"""Graphviz drawings of a cascade: one node per Einsum, edges for data, colours by pass, barriers marked.

Nodes come from `cost.analyze` (the same DAG the cost model counts): inputs are boxes, a reduce of a map is one
fused Einsum, views (split, unsplit, shift) are folded into the edge they lie on. A node's colour is the
traversal of m it runs in (fiber and tile nodes) or, for values complete only after a traversal, a grey; a
barrier (a full reduction over m whose value a later traversal needs) is a double octagon. Without the `dot`
binary the .dot file is written instead, and the caller says so.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from . import ir
from .cost import Analysis, analyze, pass_of
from .printer import Printer

PASS_COLOURS = ["#cfe8ff", "#ffe0b3", "#ffc9c9", "#d9f2d0", "#e8d9ff", "#fff3b0"]
AFTER_COLOUR = "#eeeeee"


def _label_op(node, analysis: Analysis) -> str:
    dag = analysis.dag
    if node.kind == "reduce" and dag.nodes[node.children[0]].fused:
        return f"{dag.nodes[node.children[0]].op}_R_{node.expr.op}_{node.expr.rank}"
    if node.kind == "input":
        return "input"
    return node.op


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def dot_text(program: ir.Program, title: str | None = None) -> str:
    a = analyze(program)
    dag = a.dag
    lines = [
        "digraph cascade {",
        "  rankdir=TB;",
        '  node [fontname="Helvetica", fontsize=10, style=filled];',
        '  edge [fontname="Helvetica", fontsize=9];',
        f'  label="{_quote(title or program.file)}: {a.passes} pass(es) over m, {len(a.barriers)} barrier(s), '
        f'peak live memory {a.memory}";',
        "  labelloc=t;",
    ]
    free = dag.scan_states_read()       # nodes inside a scan's step
    shown = [n for n in dag.nodes if n.kind not in ("const", "prev", "split", "unsplit", "shift") and not n.fused
             and not free[n.id]]
    ids = {n.id for n in shown}
    for n in shown:
        t = a.time[n.id]
        cls = a.fiber.classify(n.space)
        if n.kind == "input":
            colour, phase = "white", "input"
        elif t % 2 == 1:
            colour, phase = PASS_COLOURS[(pass_of(t) - 1) % len(PASS_COLOURS)], f"pass {pass_of(t)}"
        elif t == 0:
            colour, phase = "white", "before pass 1"
        else:
            colour, phase = AFTER_COLOUR, f"after pass {t // 2}"
        name = n.name or f"#{n.id}"
        detail = [_label_op(n, a), f"[{','.join(n.ranks)}]  {phase}"]
        if n.kind == "scan":
            detail[0] = f'S_scan_{n.expr.rank} "{n.expr.name}"'
            detail.append(f"body: {Printer().expr(n.expr.body)}"[:60])
        if n.id in a.barriers:
            detail.append("BARRIER")
        if a.stored.get(n.id) and a.fiber.classify(n.ranks) != "global":
            detail.append("stored whole")
        shape = "box" if n.kind == "input" else "doubleoctagon" if n.id in a.barriers else (
            "ellipse" if cls == "fiber" else "box" if n.kind == "scan" else "oval")
        style = "filled,bold" if n.output else "filled"
        label = "\\n".join(_quote(x) for x in [name] + detail)
        lines.append(f'  n{n.id} [label="{label}", shape={shape}, fillcolor="{colour}", style="{style}"];')

    def sources(i: int, via: tuple[str, ...] = ()) -> list[tuple[int, tuple[str, ...]]]:
        node = dag.nodes[i]
        if i in ids:
            return [(i, via)]
        if node.kind in ("split", "unsplit", "shift"):
            tag = {"split": "split", "unsplit": "unsplit", "shift": "shift"}[node.kind]
            out = sources(node.children[0], via + (tag,))
            return out
        if node.fused or free[i]:
            return [s for c in node.children for s in sources(c, via)]
        return []

    edges = set()
    for n in shown:
        for c in n.children:
            for src, via in sources(c):
                if src == n.id:
                    continue
                edges.add((src, n.id, via))
    for src, dst, via in sorted(edges):
        attrs = f' [label="{_quote(" ".join(via))}"]' if via else ""
        style = ' [style=bold, color="#c0392b"]' if src in a.barriers else ""
        lines.append(f"  n{src} -> n{dst}{attrs or style};")
    legend = ", ".join(f"pass {i + 1}" for i in range(max(a.passes, 1)))
    lines.append(f'  legend [shape=note, fillcolor=white, label="colours: {legend}; grey: complete after a pass; '
                 'double octagon: barrier"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw(program: ir.Program, output: str | Path, title: str | None = None) -> tuple[Path, bool, str]:
    """Write an SVG with graphviz's `dot`, or the .dot file if `dot` is missing. Returns (path written,
    whether dot ran, a note for the user)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    text = dot_text(program, title)
    dot = shutil.which("dot")
    if output.suffix == ".dot":
        output.write_text(text, encoding="utf-8")
        return output, False, ""
    if dot is None:
        target = output.with_suffix(".dot")
        target.write_text(text, encoding="utf-8")
        return target, False, (f"note: graphviz `dot` was not found, so {target} (graphviz source) was written "
                               f"instead of {output}; install graphviz (e.g. `apt-get install graphviz`) and run "
                               f"`dot -Tsvg {target} -o {output}`")
    fmt = output.suffix.lstrip(".") or "svg"
    proc = subprocess.run([dot, f"-T{fmt}", "-o", str(output)], input=text, text=True, capture_output=True,
                          timeout=60)
    if proc.returncode != 0:
        target = output.with_suffix(".dot")
        target.write_text(text, encoding="utf-8")
        return target, False, f"note: dot failed ({proc.stderr.strip()}); wrote {target} instead"
    return output, True, ""


__all__ = ["dot_text", "draw"]
