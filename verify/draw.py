"""Drawings of a cascade: one node per Einsum, edges for data, colours by pass, barriers marked.

Nodes come from `cost.analyze` (the same DAG the cost model counts): inputs are boxes, a reduce of a map is one
fused Einsum, views (split, unsplit, shift) are folded into the edge they lie on. A node's colour is the
traversal of m it runs in (fiber and tile nodes) or, for values complete only after a traversal, a grey; a
barrier (a full reduction over m whose value a later traversal needs) is a double octagon.

Two renderers draw the same graph (`cascade_graph`): graphviz's `dot` where it is installed (the better
layout), else networkx and matplotlib, which need no system binary: nodes are laid out in layers (networkx's
topological generations, `multipartite_layout`) and drawn to SVG by matplotlib. Only when neither is available
is the .dot file written instead (and the command exits 1: the requested file was not written).
A rule is drawn as two expression trees, left side and right side (`rule_svg`), for the report.
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


def cascade_graph(program: ir.Program, title: str | None = None) -> dict:
    """The drawing as data: {"title", "nodes": [{id, lines, shape, colour, bold}], "edges": [(src, dst, label,
    barrier)], "legend"}; both renderers draw exactly this."""
    a = analyze(program)
    dag = a.dag
    title = (f"{title or program.file}: {a.passes} pass(es) over m, {len(a.barriers)} barrier(s), "
             f"peak live memory {a.memory}")
    free = dag.scan_states_read()       # nodes inside a scan's step
    shown = [n for n in dag.nodes if n.kind not in ("const", "prev", "split", "unsplit", "shift") and not n.fused
             and not free[n.id]]
    ids = {n.id for n in shown}
    nodes = []
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
        if n.kind == "scan" and isinstance(n.expr, ir.Scan):
            detail[0] = f'S_scan_{n.expr.rank} "{n.expr.name}"'
            detail.append(f"body: {Printer().expr(n.expr.body)}"[:60])
        if n.id in a.barriers:
            detail.append("BARRIER")
        if a.stored.get(n.id) and a.fiber.classify(n.ranks) != "global":
            detail.append("stored whole")
        shape = "box" if n.kind == "input" else "doubleoctagon" if n.id in a.barriers else (
            "ellipse" if cls == "fiber" else "box" if n.kind == "scan" else "oval")
        nodes.append({"id": n.id, "lines": [name] + detail, "shape": shape, "colour": colour, "bold": n.output})

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
                edges.add((src, n.id, " ".join(via), src in a.barriers))
    legend = ", ".join(f"pass {i + 1}" for i in range(max(a.passes, 1)))
    return {"title": title, "nodes": nodes, "edges": sorted(edges),
            "legend": f"colours: {legend}; grey: complete after a pass; double octagon: barrier"}


def dot_text(program: ir.Program, title: str | None = None) -> str:
    g = cascade_graph(program, title)
    lines = [
        "digraph cascade {",
        "  rankdir=TB;",
        '  node [fontname="Helvetica", fontsize=10, style=filled];',
        '  edge [fontname="Helvetica", fontsize=9];',
        f'  label="{_quote(g["title"])}";',
        "  labelloc=t;",
    ]
    for n in g["nodes"]:
        style = "filled,bold" if n["bold"] else "filled"
        label = "\\n".join(_quote(x) for x in n["lines"])
        lines.append(f'  n{n["id"]} [label="{label}", shape={n["shape"]}, fillcolor="{n["colour"]}", '
                     f'style="{style}"];')
    for src, dst, via, barrier in g["edges"]:
        attrs = f' [label="{_quote(via)}"]' if via else ""
        style = ' [style=bold, color="#c0392b"]' if barrier else ""
        lines.append(f"  n{src} -> n{dst}{attrs or style};")
    lines.append(f'  legend [shape=note, fillcolor=white, label="{_quote(g["legend"])}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- without graphviz: networkx layout, matplotlib SVG ----------------------------------------------------------

def python_renderer() -> str | None:
    """Why networkx + matplotlib cannot draw here, or None if they can."""
    try:
        import matplotlib  # noqa: F401
        import networkx  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install networkx matplotlib)"
    return None


_BOXES = {"box": "square,pad=0.4", "ellipse": "round,pad=0.4", "oval": "round,pad=0.4",
          "doubleoctagon": "round4,pad=0.5", "note": "square,pad=0.4"}


def _svg(panels: list[dict], output: Path) -> None:
    """Draw one or more graphs (side by side) as an SVG with matplotlib (no pyplot, no display)."""
    import networkx as nx
    from matplotlib.figure import Figure

    layouts = []
    for g in panels:
        G = nx.DiGraph()
        for n in g["nodes"]:
            G.add_node(n["id"])
        for src, dst, *_ in g["edges"]:
            G.add_edge(src, dst)
        for depth, layer in enumerate(nx.topological_generations(G)):
            for node in layer:
                G.nodes[node]["layer"] = depth
        pos = nx.multipartite_layout(G, subset_key="layer", align="horizontal", scale=1.0) if G else {}
        depth = 1 + max((G.nodes[v]["layer"] for v in G), default=0)
        width = max((sum(1 for v in G if G.nodes[v]["layer"] == d) for d in range(depth)), default=1)
        layouts.append((g, G, pos, depth, width))
    total_w = sum(max(3.2 * w, 4.0) for *_, w in layouts)
    height = max(1.3 * d + 1.2 for *_, d, _ in layouts)
    fig = Figure(figsize=(total_w, height))
    for k, (g, _G, pos, depth, width) in enumerate(layouts):
        ax = fig.add_subplot(1, len(layouts), k + 1)
        ax.set_axis_off()
        ax.set_title(g["title"], fontsize=9, wrap=True)
        # multipartite_layout puts layer 0 at the bottom: flip so inputs are on top, as dot draws them
        pos = {v: (x * 1.8 * max(width, 1), -y * max(depth, 1)) for v, (x, y) in pos.items()}
        xs = [x for x, _ in pos.values()] or [0]
        ys = [y for _, y in pos.values()] or [0]
        ax.set_xlim(min(xs) - 1.2, max(xs) + 1.2)
        ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
        for src, dst, via, barrier in g["edges"]:
            ax.annotate("", xy=pos[dst], xytext=pos[src],
                        arrowprops={"arrowstyle": "-|>", "color": "#c0392b" if barrier else "#555555",
                                    "lw": 1.6 if barrier else 0.8, "shrinkA": 14, "shrinkB": 14})
            if via:
                (x0, y0), (x1, y1) = pos[src], pos[dst]
                ax.text((x0 + x1) / 2, (y0 + y1) / 2, via, fontsize=6, color="#555555", ha="center")
        for n in g["nodes"]:
            x, y = pos[n["id"]]
            ax.text(x, y, "\n".join(n["lines"]), ha="center", va="center", fontsize=6.5,
                    fontweight="bold" if n["bold"] else "normal",
                    bbox={"boxstyle": _BOXES.get(n["shape"], "round,pad=0.4"), "facecolor": n["colour"],
                          "edgecolor": "#c0392b" if n["shape"] == "doubleoctagon" else "#333333",
                          "linewidth": 1.5 if n["shape"] == "doubleoctagon" else 0.7})
        if g.get("legend"):
            ax.text(0.0, 0.0, g["legend"], transform=ax.transAxes, fontsize=6, color="#555555")
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none"}):     # SVG text stays text: searchable, smaller
        fig.savefig(output, format=output.suffix.lstrip(".") or "svg", bbox_inches="tight", dpi=110)


def expression_graph(expr, title: str) -> dict:
    """An IR expression as a tree (shared subterms once) for drawing a side of a rule."""
    import dataclasses

    nodes: list[dict] = []
    edges: set[tuple] = set()
    seen: dict[int, int] = {}

    def visit(e) -> int:
        key = id(e)
        if key in seen:
            return seen[key]
        i = len(seen)
        seen[key] = i
        match e:
            case ir.Input(name=name, ranks=ranks):
                lines, shape, colour = [name, f"[{','.join(ranks)}]"], "box", "white"
            case ir.Var(name=name):
                lines, shape, colour = [name], "box", "white"
            case ir.Const(value=v):
                lines, shape, colour = [f"{v:g}"], "box", "white"
            case ir.Map(op=op, space=space):
                lines, shape, colour = [f"M_{op}_{''.join(space)}"], "ellipse", PASS_COLOURS[0]
            case ir.Reduce(op=op, rank=rank):
                lines, shape, colour = [f"R_{op}_{rank}"], "oval", PASS_COLOURS[1]
            case _:
                lines, shape, colour = [Printer().expr(e).split(" ")[0].lstrip("(")], "oval", PASS_COLOURS[3]
        nodes.append({"id": i, "lines": lines, "shape": shape, "colour": colour, "bold": i == 0})
        for f in dataclasses.fields(e) if dataclasses.is_dataclass(e) else ():
            value = getattr(e, f.name)
            children = value if isinstance(value, tuple) else (value,)
            for child in children:
                if dataclasses.is_dataclass(child):
                    edges.add((visit(child), i, "", False))
        return i

    visit(expr)
    return {"title": title, "nodes": nodes, "edges": sorted(edges), "legend": ""}


def rule_svg(lhs: ir.Expr, rhs: ir.Expr, output: str | Path) -> Path | None:
    """Both sides of a rule as expression trees, side by side, with networkx + matplotlib; None if they are
    not installed."""
    if python_renderer() is not None:
        return None
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    _svg([expression_graph(lhs, "left side"), expression_graph(rhs, "right side")], output)
    return output


def draw(program: ir.Program, output: str | Path, title: str | None = None,
         use_dot: bool = True) -> tuple[Path, str, str]:
    """Write the picture: an SVG (or another format dot knows) with graphviz's `dot` where installed, else an
    SVG with networkx + matplotlib, else the .dot source. Returns (path written, renderer: "dot" |
    "matplotlib" | "none", a note for the user)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    text = dot_text(program, title)
    if output.suffix == ".dot":
        output.write_text(text, encoding="utf-8")
        return output, "none", ""
    dot = shutil.which("dot") if use_dot else None
    if dot is not None:
        fmt = output.suffix.lstrip(".") or "svg"
        proc = subprocess.run([dot, f"-T{fmt}", "-o", str(output)], input=text, text=True, capture_output=True,
                              timeout=60)
        if proc.returncode == 0:
            return output, "dot", ""
        note = f"note: dot failed ({proc.stderr.strip()}); "
    else:
        note = ""
    missing = python_renderer()
    if missing is None and output.suffix in (".svg", ".png", ".pdf", ""):
        _svg([cascade_graph(program, title)], output)
        return output, "matplotlib", note + ("drawn with networkx + matplotlib (graphviz `dot` is not installed; "
                                             "install it for a tighter layout)" if dot is None else "")
    target = output.with_suffix(".dot")
    target.write_text(text, encoding="utf-8")
    why = missing or f"matplotlib here only writes .svg, .png or .pdf, not {output.suffix}"
    return target, "none", (f"{note}note: graphviz `dot` was not found and {why}, so {target} (graphviz source) "
                            f"was written instead of {output}; install graphviz (e.g. `apt-get install "
                            f"graphviz`) or `pip install networkx matplotlib`")


__all__ = ["cascade_graph", "dot_text", "draw", "rule_svg"]
