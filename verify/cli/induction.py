"""`python -m verify.cli.induction [VARIANT...]` (a debugging aid, not a subcommand): every induction obligation of
each variant, with its time."""

from __future__ import annotations

import sys
import time

from ..induction import prove_all


def _main(argv=None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or ["correct"]
    for name in names:
        t0 = time.perf_counter()
        groups = prove_all(name)
        total = time.perf_counter() - t0
        print(f"== variant {name}: {total * 1000:.1f} ms")
        for group, obs in groups.items():
            print(f"  [{group}]")
            for o in obs:
                print(f"    {o.verdict:8s} {o.seconds * 1000:7.2f} ms  {o.name}")
                if o.counterexample is not None:
                    print(f"             counterexample: {o.counterexample}")
                    if o.replay is not None:
                        print(f"             replay: {o.replay}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
