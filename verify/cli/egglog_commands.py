"""The egglog commands: export, optimize, run, draw, codegen (verify/optimize.py, verify/egglog/,
cost.py, draw.py, codegen/)."""

from __future__ import annotations

from pathlib import Path

from .. import draw
from .. import verdict as V
from ..codegen import checked
from ..cost import REFERENCE_SIZES
from ..egglog import Schedule, run_program, session, term_program
from ..errors import InternalError, UsageError, VerifyError
from ..gate import bounded_ranks_not_declared, declared_sizes_outside
from ..optimize import certify_rules, check_run, export_text, in_source_form, optimize
from ..options import Options
from ..printer import program_text
from ..reader import read_file, source_text
from ..shapes import program_ranks
from ..targets import rule_paths
from .arguments import parse_sizes


def _certified_rules(args, err):
    args.rules = rule_paths(args.rules)
    statuses, errors = certify_rules(args.rules, Options(sympy=not args.no_sympy),
                                     allow_bounded=args.allow_bounded, explicit=getattr(args, "explicit", False))
    for error in errors:
        print(error.format(), file=err)
    return statuses, errors


def cmd_export(args, out, err) -> int:
    """Check every rule under --rules now and write the certified ones as an egglog program."""
    statuses, errors = _certified_rules(args, err)
    if errors:
        print(f"error: {len(errors)} rule file(s) could not be read; nothing exported", file=err)
        return 2
    if args.rule:
        named = [s for s in statuses if s.name == args.rule]
        if not named:
            print(f"usage error: no rule named '{args.rule}' under {', '.join(args.rules)}", file=err)
            return 2
        if not named[0].exported:
            why = named[0].reason or f"{named[0].verdict}: {named[0].detail}"
            print(f"error: rule '{args.rule}' ({named[0].file}:{named[0].line}) is not certified, so it is not "
                  f"exported ({why})", file=err)
            return 2
    text = export_text(statuses, ", ".join(args.rules), args.rule)
    target = Path(args.output)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    shown = [s for s in statuses if args.rule is None or s.name == args.rule]
    exported = [s for s in shown if s.exported]
    print(f"wrote {target}: {len(exported)} certified rule(s) of {len(shown)}", file=out)
    for s in shown:
        if not s.exported:
            print(f"  not exported: {s.name} ({s.file}:{s.line or ''}): {s.reason or s.verdict}", file=out)
    status = V.exit_status(s.verdict for s in shown)
    if shown and not exported and status == 0:
        print(f"error: none of the {len(shown)} rule(s) was exported (each reason above)", file=err)
        return 1
    if shown and not exported:
        print(f"error: none of the {len(shown)} rule(s) was exported (each reason above)", file=err)
    return status


def cmd_optimize(args, out, err) -> int:
    """Saturate a program with the certified rules, extract by passes or memory, validate, print."""
    import json

    if args.emit and args.json and not args.emit_output:
        raise UsageError("--emit with --json needs --emit-output FILE.py (standard output holds the JSON)")
    source = read_file(args.program)
    schedule = Schedule(iterations=args.iterations, node_limit=args.node_limit, time_limit=args.time_limit)
    statuses, errors = _certified_rules(args, err)
    if errors:
        return 2
    forbid = ("S_",) if args.no_scan else ()
    result = optimize(source.program, statuses, args.cost, forbid, schedule, parse_sizes(args.sizes))
    sat = result.saturation
    rules = [s for s in statuses if s.exported]
    outside = declared_sizes_outside(source.program, result.verdicts)
    if outside:      # only with --allow-bounded: rules and validation hold within a bound the program leaves
        print(f"warning: {args.program} declares {outside}, outside the bound the result was checked at; the "
              "output is not certified at those sizes" + (" and no kernel is written" if args.emit else ""),
              file=err)
    unpinned = bounded_ranks_not_declared(source.program, result.verdicts) if args.emit else ""
    if unpinned:     # a kernel runs at any size: one checked only within a bound must not be written
        print(f"warning: the translation validation holds only within its bound, and {args.program} fixes no size "
              f"for {unpinned}: a kernel would run at sizes never checked, so no kernel is written (declare the "
              "sizes in CreateTensor, or use rules certified for all sizes)", file=err)
        outside = outside or unpinned
    checks = ("unchanged: the input's own computation (no rewrite applied), nothing to validate" if result.unchanged
              else "; ".join(f"{r.verdict.value} ({r.bound}; {r.method})" for r in result.verdicts) or "not checked")
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

    header[2:2] = [f"not used: {s.name} ({s.file}:{s.line or ''}): {s.reason or s.verdict.value}"
                   for s in statuses if not s.exported]
    header = [piece for line in header
              for piece in textwrap.wrap(line, 112, subsequent_indent="  ", break_on_hyphens=False)]
    text = in_source_form(result.program, source, header)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    unvalidated = False
    if args.emit:
        # the kernel replaces the program text on stdout: say what optimize knows (and where the program went)
        where = err if args.json else out
        print(f"; input:  passes {result.input.passes}, memory {result.input.memory}", file=where)
        print(f"; output: passes {result.output.passes}, memory {result.output.memory}", file=where)
        print(f"; equal to the input (translation validation): {checks}", file=where)
    if args.emit and result.verified and not outside:
        origin = f"verify optimize {args.program} --cost {args.cost} --emit {args.emit}"
        # the kernel's header names the program's file: the -o file when one is written, else the input
        result.program.file = args.output or f"{args.program} (optimized; the program was not written to a file)"
        code, validation = checked(result.program, args.emit, text, origin,
                                   f"the optimized program equals {args.program}: {checks}")
        _write_kernel(code, args.emit_output, err if args.json else out)
        print(validation.summary(), file=out if args.emit_output and not args.json else err)
        if not validation.ran:
            print(f"warning: the kernel was written without translation validation ({validation.reason})", file=err)
        unvalidated = not validation.ran
    if args.json:
        sizes = {**REFERENCE_SIZES, **parse_sizes(args.sizes)}
        payload = {
            "input": result.input.summary(), "output": result.output.summary(), "verified": result.verified,
            "unchanged": result.unchanged,
            "egraph": {"rows": sat.rows, "iterations": sat.iterations, "seconds": round(sat.seconds, 4),
                       "stop": sat.stop},
            "program": program_text(result.program),
            "cost": args.cost, "no_scan": args.no_scan, "reference_sizes": sizes,
            "validation": [{"verdict": r.verdict.value, "bound": str(r.bound), "method": r.method, "detail": r.detail}
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
    return 1 if unvalidated else 0


def cmd_run(args, out, err) -> int:
    """Run a .egg program through egglog (with the prelude if it declares no datatype); show what it extracts."""
    path = Path(args.program)
    if not path.is_file():
        print(f"usage error: no such file: {path}", file=err)
        return 2

    try:
        outputs, added = run_program(source_text(path), str(path), args.cost)
    except InternalError as exc:       # egglog panicked: no traceback
        print(f"{path}: error: {exc}", file=err)
        return 2
    if added:
        print("; the file declares no datatype: the generated prelude was added", file=out)
    if session.warned_globals:
        print(f"; note: {session.GLOBALS_NOTE}", file=out)
    for output in outputs:
        print(output.text, file=out)
        if output.kind == "extract" and not args.quiet and args.cost is None:
            shared = term_program(output.terms[0])
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
        checked = check_run(str(path), outputs, options)
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
    for name, validation in checked.validations:
        what = validation if isinstance(validation, str) else (
            f"{validation.verdict.value} ({validation.bound}; {validation.method})"
            if validation.verdict is V.Verdict.CERTIFIED else V.headline(validation))
        print(f"; translation validation: the extracted {name} equals the file's {name}: {what}", file=out)
    return checked.exit_code


def cmd_draw(args, out, err) -> int:
    """Draw a program's Einsums with graphviz, coloured by pass, barriers marked."""
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
    source = read_file(args.program)
    code, validation = checked(source.program, args.target, source.text)
    _write_kernel(code, args.output, out)
    print(validation.summary(), file=out if args.output else err)
    if not validation.ran:
        print(f"warning: the kernel was written without translation validation ({validation.reason})", file=err)
        return 1
    return 0


def _write_kernel(text: str, output: str | None, out) -> None:
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")
        print(f"wrote {output}", file=out)
    else:
        out.write(text)


RULES_HELP = ("rule files or directories, several allowed; builtin: the shipped rule library (default: ./rules "
              "where it exists, else builtin)")


def add_egglog_commands(sub) -> None:
    cg = sub.add_parser("codegen", help="generate a PyTorch module or Triton kernel from a program")
    cg.add_argument("program", help="a .egg program, e.g. proofs/attention_1pass.egg")
    cg.add_argument("--target", choices=("torch", "triton"), default="torch",
                    help="torch (every program) or triton (the 1-pass family); default torch")
    cg.add_argument("-o", "--output", metavar="FILE.py", help="write the module here (default: standard output)")
    cg.set_defaults(func=cmd_codegen)
    ex = sub.add_parser("export", help="check every rule now; write the certified ones as an egglog program")
    ex.add_argument("-o", "--output", default="build/certified_rules.egg",
                    help="where to write (default build/certified_rules.egg)")
    ex.add_argument("--rules", nargs="+", metavar="PATH", help=RULES_HELP)
    ex.add_argument("--explicit", action="store_true",
                    help="write a rule certified under the implicit-tiling reading as the explicit-split rule it "
                         "was checked as (and the view identities split/unsplit it needs, each certified)")
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
    op.add_argument("--rules", nargs="+", metavar="PATH", help=RULES_HELP)
    op.add_argument("--explicit", action="store_true",
                    help="use rules certified under the implicit-tiling reading as the explicit-split rules they were "
                         "checked as (as export --explicit writes them)")
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
    rn.add_argument("--cost", choices=("passes", "memory"),
                    help="extract with verify's cost model (passes over m, or live memory) from the e-graph egglog "
                         "built, instead of egglog's :cost annotations; the result is validated like egglog's")
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

