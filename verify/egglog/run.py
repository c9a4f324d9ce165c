"""`verify run`'s engine: a .egg program run through egglog as the egglog binary would (the shared prelude
added when the file declares no datatype), and an extracted term read back as a program with its shared
subterms as `let`s."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from .. import ir
from ..cost import Analysis, Dag, analyze
from ..errors import VerifyError
from ..notation import parse_operator
from ..printer import Printer, program_text
from ..reader import read_text
from .egraph import PyEGraph
from .extraction import Extractor
from .prelude import prelude
from .session import new_egraph, run_text

OPERATOR_RE = re.compile(r"\(\s*(CreateTensor|Const|M_[a-z]+_[a-z0-9]+(?:_R_[a-z]+_[a-z0-9]+)?|R_[a-z]+_[a-z0-9]+|"
                         r"T_split_[a-z0-9]+_[a-z0-9]+|T_unsplit_[a-z0-9]+_[a-z0-9]+|S_(?:scan|prev|shift|last)_[a-z0-9]+)"
                         r"(?=[\s()])")
DECLARES_RE = re.compile(r"\(\s*(datatype|datatype\*|constructor|sort)\s")


@dataclass
class RunOutput:
    kind: Literal["extract", "variants", "other"]
    text: str
    terms: list[str] = field(default_factory=list)


EXTRACT_RE = re.compile(r"\(\s*extract\s+([^\s()]+)\s*\)")


def run_program(text: str, file: str, cost: str | None = None) -> tuple[list[RunOutput], bool]:
    """Run a .egg program through egglog like the egglog binary; the shared prelude is added when the file
    declares no datatype. Returns the outputs and whether the prelude was added.

    With `cost` ("passes" or "memory"), each `(extract NAME)` of a global is answered by verify's extractor
    (optimize's cost model over whole DAGs) on the e-graph egglog built, instead of egglog's own `:cost`
    extraction; the output's text is the extracted program, its term the inlined output."""
    egraph = new_egraph()
    added = False
    if not DECLARES_RE.search(_strip_comments(text)):
        names = set()
        for name in OPERATOR_RE.findall(_strip_comments(text)):
            try:
                parse_operator(name)
            except VerifyError:
                continue
            names.add(name)
        run_text(egraph, prelude(names | {"CreateTensor", "Const"}), "<prelude>")
        added = True
    outputs = []
    for out in run_text(egraph, text, file):
        kind = type(out).__name__
        if kind == "ExtractBest":
            term = out.termdag.to_string(out.term)
            outputs.append(RunOutput("extract", term, [term]))
        elif kind == "ExtractVariants":
            terms = [out.termdag.to_string(t) for t in out.terms]
            outputs.append(RunOutput("variants", str(out).strip(), terms))
        elif kind == "RunScheduleOutput":
            continue
        else:
            outputs.append(RunOutput("other", str(out).strip()))
    if cost is not None:
        outputs = _by_cost(egraph, text, outputs, cost)
    return outputs, added


def _by_cost(egraph, text: str, outputs: list[RunOutput], cost) -> list[RunOutput]:
    graph = PyEGraph(egraph)
    names = [n for n in EXTRACT_RE.findall(_strip_comments(text)) if n in graph.globals]
    if not names:
        return outputs
    best, _ = Extractor(graph, {n: graph.globals[n] for n in names}, cost).run()
    program = best.program
    printer = Printer(fuse=False)
    terms = {name: printer.expr(ir.inline(ir.Ref(name), program.bindings)) for name in program.output_names()}
    header = [f"extracted by verify's extractor, --cost {cost} (egglog's :cost ignored): passes "
              f"{best.analysis.passes}, memory {best.analysis.memory}"]
    ours = [RunOutput("extract", program_text(program, header=header) if i == 0 else "", [terms[name]])
            for i, name in enumerate(program.output_names())]
    if len(ours) != sum(o.kind == "extract" for o in outputs):
        return [o for o in outputs if o.kind != "extract"] + ours
    rest = iter(ours)
    return [next(rest) if o.kind == "extract" else o for o in outputs]


def _strip_comments(text: str) -> str:
    return re.sub(r";[^\n]*", "", text)


def term_program(term: str) -> tuple[str, Analysis] | None:
    """An extracted term as a program with its shared subterms as `let`s, and its passes and memory (None if
    it is not a whole cascade the reader accepts)."""
    try:
        source = read_text(f"(let X {term})\n(extract X)\n", "<extracted>")
        shared = share(source.program)
        return program_text(shared), analyze(shared)
    except VerifyError:
        return None


def share(program: ir.Program) -> ir.Program:
    """The same computation with every subterm that occurs more than once (and every input) bound once."""
    dag = Dag(program)
    free = dag.scan_states_read()       # nodes inside a scan's step
    bound = {n.id for n in dag.nodes
             if not free[n.id] and n.kind not in ("const", "prev")
             and (n.kind == "input" or n.output or len(dag.consumers[n.id]) >= 2)}
    names: dict[int, str] = {}
    taken: set[str] = set()
    for n in dag.nodes:
        if n.id in bound and n.name and n.name not in taken:
            names[n.id] = n.name
            taken.add(n.name)
    counter = 1
    for n in dag.nodes:
        if n.id in bound and n.id not in names:
            base = n.expr.name if isinstance(n.expr, ir.Input) else f"T{counter}"
            while base in taken:
                counter += 1
                base = f"T{counter}"
            names[n.id] = base
            taken.add(base)
    built: dict[int, ir.Expr] = {}

    def ref(i: int) -> ir.Expr:
        return ir.Ref(names[i]) if i in bound else build(i)

    def build(i: int) -> ir.Expr:
        if i not in built:
            n = dag.nodes[i]
            built[i] = ir.with_children(n.expr, [ref(c) for c in n.children])
        return built[i]

    bindings = {}
    order = [n.id for n in dag.nodes if n.kind == "input"] + [n.id for n in dag.nodes if n.kind != "input"]
    for i in order:
        if i in bound:
            bindings[names[i]] = ir.Binding(names[i], build(i))
    outputs: list[tuple[str, int | None]] = [(names[i], None) for i in dag.outputs]
    return ir.Program(program.file, bindings, outputs)
