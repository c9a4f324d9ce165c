"""`verify grad PROGRAM`: the reverse-mode derivative of a program (verify/grad.py), with its stop-gradients
justified by the gate before anything is written."""

from __future__ import annotations

from pathlib import Path

from .. import ir
from .. import verdict as V
from ..claims import equiv_claims, with_assumptions_each
from ..errors import UsageError
from ..gate import check_claims
from ..grad import derive
from ..printer import program_text
from ..reader import read_file
from .arguments import options_of


def cmd_grad(args, out, err) -> int:
    options = options_of(args)
    source = read_file(args.program)
    wrt = [x.strip() for x in args.wrt.split(",") if x.strip()] if args.wrt is not None else None
    if wrt is not None and (not wrt or len(set(wrt)) != len(wrt)):
        raise UsageError(f"--wrt {args.wrt}: give distinct input names, e.g. --wrt Q,K,V")
    d = derive(source.program, wrt)
    header = [f"assume: {text}" for text, _ in source.assumptions]
    header += [f"gradient of {args.program} (verify grad): inputs {', '.join(_inputs(d.program))}; outputs "
              f"{', '.join(d.program.output_names())}"]
    ok, bounded = True, False
    if d.stops and d.justification is not None:
        # under the program's own preconditions (`; assume:`), which the gradient program then states too
        claims = with_assumptions_each(
            equiv_claims(d.justification, source.program, name=f"{Path(args.program).name}: outputs "
                         f"independent of {', '.join(s.binding for s in d.stops)}"),
            [text for text, _ in source.assumptions])
        results = [] if args.no_justify else check_claims(claims, options)
        for s in d.stops:
            header.append(f"stop-gradient: {s.binding} ({s.text}) is a constant here: the outputs do not depend on "
                          f"its value")
        for r in results:
            header.append(f"  justified by: {V.headline(r)}")
            ok = ok and r.verdict is V.Verdict.CERTIFIED
            bounded = bounded or not r.bound.is_all_sizes
        if bounded and ok:
            header.append("  justified only within the bound above: at other sizes the outputs may depend on these "
                          "values, and the gradient is then not exact (exit 1)")
        if args.no_justify:
            header.append("  NOT justified (--no-justify): the gradient is exact only if the outputs do not depend "
                          "on these values")
    if not ok:
        print("\n".join(f"; {h}" for h in header), file=out)
        print("error: a stop-gradient is not justified (above); no gradient written: the maximum's derivative "
              "would depend on ties", file=err)
        return 1
    text = program_text(d.program, header=header)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
        print(f"wrote {args.output}: {len(d.program.bindings)} bindings, outputs "
              f"{', '.join(d.program.output_names())}", file=out)
    else:
        out.write(text)
    if bounded:
        print("warning: a stop-gradient is justified only within a bound (see the header); the gradient is exact "
              "only at those sizes", file=err)
    return 0 if ok and not args.no_justify and not bounded else 1


def _inputs(program) -> list[str]:
    seen: dict[str, None] = {}
    for b in program.bindings.values():
        for n in ir.walk(b.expr):
            if isinstance(n, ir.Input):
                seen[n.name] = None
    return list(seen)
