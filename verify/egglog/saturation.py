"""Equality saturation with certified rewrites: a program (or two) as egglog `let`s, the analyses run to a
fixpoint, then one iteration of the `certified` ruleset, until nothing changes or an iteration / row / time
limit is reached. The rules only split the ranks they name (m into m1, m0 and the template ranks), with one
tile count per rank pair, so tiling cannot recurse."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from .. import ir
from ..printer import Printer, input_text
from .prelude import ANALYSIS, RULESET, analysis_rules, operators_in, prelude, rank_set
from .rewrites import DEFAULT_TILES, CertifiedRule, fix_tiles, rewrite_text, rules_operators
from .session import holds, new_egraph, run_text

Stop = Literal["saturated", "iteration limit", "node limit", "time limit", "connected"]


@dataclass(frozen=True)
class Schedule:
    iterations: int = 12
    node_limit: int = 20_000
    time_limit: float = 20.0


@dataclass
class Saturation:
    egraph: object
    rows: int
    iterations: int
    seconds: float
    stop: Stop
    matches: dict[str, int] = field(default_factory=dict)


def program_tiles(program: ir.Program) -> dict[tuple[str, str], int]:
    tiles: dict[tuple[str, str], int] = {}
    for binding in program.bindings.values():
        for node in ir.walk(binding.expr):
            if isinstance(node, ir.Split) and isinstance(node.tiles, int):
                tiles.setdefault((node.outer, node.inner), node.tiles)
    return tiles


def program_egglog(program: ir.Program, tiles: dict, prefix: str = "$__") -> tuple[str, dict[str, str]]:
    """The program's `let`s as egglog globals (`$NAME`), and the seeds of the ranks of its inputs."""
    names = {name: f"{prefix}{name}" for name in program.bindings}
    fixed = {name: ir.Binding(name, fix_tiles(b.expr, set(), tiles), b.line) for name, b in program.bindings.items()}
    printer = Printer(fuse=False, names=names, default_tiles=DEFAULT_TILES)
    lines = [f"(let {names[name]} {printer.expr(b.expr)})" for name, b in fixed.items()]
    seen = set()
    for b in fixed.values():
        for node in ir.walk(b.expr):
            if isinstance(node, ir.Input) and node not in seen:
                seen.add(node)
                term = f'(CreateTensor "{input_text(node)}")'
                lines.append(f"(set (ranks {term}) {rank_set(node.ranks)})")
                lines.append(f"({'extended' if getattr(node, 'kind', 'real') == 'mask' else 'finite'} {term})")
    return "\n".join(lines) + "\n", names


def _load(programs: list[tuple[ir.Program, str]], rules: list[CertifiedRule], tiles: dict,
          file: str) -> tuple[object, list[dict[str, str]]]:
    """A new e-graph holding the prelude, the analyses, the guarded rewrites and each program's `let`s (under
    its own prefix); returns it with each program's egglog names."""
    exprs = [b.expr for program, _ in programs for b in program.bindings.values()]
    ops = operators_in(exprs) | rules_operators(rules)
    rules_text = "\n".join(t for r in rules for t in rewrite_text(r, tiles))
    bodies, names = zip(*(program_egglog(program, tiles, prefix) for program, prefix in programs))
    egraph = new_egraph()
    run_text(egraph, prelude(ops) + analysis_rules(ops) + rules_text + "\n" + "".join(bodies), file)
    return egraph, list(names)


def _run_schedule(egraph, schedule: Schedule, start: float,
                  connected=None) -> tuple[int, Stop, int, dict[str, int]]:
    """Alternate the analyses to a fixpoint with one round of the certified rules, until saturation, a limit
    of `schedule`, or `connected()` (checked before the first round and after each).
    Returns (iterations, why it stopped, rows, matches per rule)."""
    iterations, rows = 0, 0
    stop: Stop = "iteration limit"
    matches: dict[str, int] = {}
    step = f"(run-schedule (saturate (run {ANALYSIS})))\n(run {RULESET} 1)\n(print-size)"
    if connected is not None and connected():
        return iterations, "connected", rows, matches
    while iterations < schedule.iterations:
        outputs = run_text(egraph, step, "<schedule>")
        iterations += 1
        report = outputs[1].report
        for rule, count in report.num_matches_per_rule.items():
            matches[rule] = matches.get(rule, 0) + count
        rows = sum(n for _, n in outputs[2].sizes)
        if connected is not None and connected():
            return iterations, "connected", rows, matches
        if not report.updated:
            stop = "saturated"
            break
        if rows >= schedule.node_limit:
            stop = "node limit"
            break
        if time.monotonic() - start > schedule.time_limit:
            stop = "time limit"
            break
    return iterations, stop, rows, matches


def saturate(program: ir.Program, rules: list[CertifiedRule],
             schedule: Schedule = Schedule()) -> tuple[Saturation, dict[str, str]]:
    """The program's e-graph saturated with `rules`, and the egglog name of each of its `let`s."""
    start = time.monotonic()
    egraph, (names,) = _load([(program, "$__")], rules, program_tiles(program), "<optimize>")
    iterations, stop, rows, matches = _run_schedule(egraph, schedule, start)
    outputs = run_text(egraph, f"(run-schedule (saturate (run {ANALYSIS})))\n(print-size)", "<schedule>")
    rows = sum(n for _, n in outputs[1].sizes)
    return Saturation(egraph, rows, iterations, time.monotonic() - start, stop, matches), names


def connect(before: ir.Program, after: ir.Program, rules: list[CertifiedRule],
            schedule: Schedule = Schedule()) -> tuple[bool, Saturation]:
    """Do `rules` rewrite `before`'s output into `after`'s? Both programs go into one e-graph (their `let`s as
    `$__NAME` and `$__to__NAME`); it is saturated as in `saturate`, and after every iteration egglog checks
    whether the two outputs share an e-class. Returns (connected, the saturation; its stop is "connected"
    when they do). Every rewrite is a certified equality, so a shared e-class means equal outputs.

    Runs egglog in this process: egglog's parser can deadlock in a forked child once the parent used it."""
    tiles = {**program_tiles(after), **program_tiles(before)}
    start = time.monotonic()
    egraph, (names, to_names) = _load([(before, "$__"), (after, "$__to__")], rules, tiles, "<connect>")
    same = f"(check (= {names[before.outputs[0][0]]} {to_names[after.outputs[0][0]]}))"
    iterations, stop, rows, matches = _run_schedule(egraph, schedule, start, connected=lambda: holds(egraph, same))
    if not rows:
        rows = sum(n for _, n in run_text(egraph, "(print-size)", "<schedule>")[0].sizes)
    return stop == "connected", Saturation(egraph, rows, iterations, time.monotonic() - start, stop, matches)
