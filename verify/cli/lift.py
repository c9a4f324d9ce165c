"""`python -m verify.cli.lift PATH...` (a debugging aid, not a subcommand): the rule-level lift of every claim
under PATH, obligation by obligation (`--smt` prints each query's SMT-LIB text). The lift alone: the bounded
checker is not run here."""

from __future__ import annotations

import sys

from ..induction import lift
from ..options import Options
from ..targets import collect


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    smt = "--smt" in args
    paths = [a for a in args if a != "--smt"] or ["rules"]
    claims, errors, _ = collect(paths, Options())
    for exc in errors:
        print(exc.format())
    for claim in claims:
        out = lift(claim)
        head = f"{out.bound_text()}; {out.method_text()}" if out.lifted else f"not lifted: {out.reason}"
        print(f"{claim.name}: {head}")
        for o in out.obligations:
            print(f"    {o.verdict:8} {o.seconds * 1000:7.1f} ms  {o.name}" + (f"  ({o.detail})" if o.detail else ""))
            if smt:
                print(o.query)
        for name, verdict in out.lemma_obligations:
            print(f"    {verdict:8}             lemma {name}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
