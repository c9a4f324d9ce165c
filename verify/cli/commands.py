"""The commands of the gate: check, equiv, deps (the commands that study verdicts are in reporting.py)."""

from __future__ import annotations

from .. import deps
from ..certificates import write_certificates
from ..driver import ENCODING_VERSION
from ..gate import Report, check_claims, check_equiv
from ..targets import collect_targets
from .arguments import options_of
from .output import Progress, Stream, emit


def cmd_check(args, out, err) -> int:
    options = options_of(args)
    paths = list(args.paths)
    if args.staged and args.changed_since is None:
        args.changed_since = "HEAD"
    if args.changed_since is not None:
        plan = deps.affected(args.changed_since, paths, staged=args.staged)
        staged = " (staged)" if args.staged else ""
        print(f"changed since {args.changed_since}{staged}: {len(plan.changed)} file(s); re-checking "
              f"{len(plan.targets)} target(s)" + "".join(f"\n  {t}  ({plan.reasons[t]})" for t in plan.targets),
              file=err)
        if not plan.targets:
            if args.json:
                out.write("[]\n")
            else:
                print("nothing to check: no rule, chain or program depends on the changes", file=out)
            return 0
        paths = plan.targets
    elif not paths:
        print("usage error: give rule files, chain files or directories (or --changed-since REF)", file=err)
        return 2
    claims, errors, notes = collect_targets(paths, options)
    with Stream(args, out, notes, err) as stream, Progress(args, out, len(claims)) as progress:
        report = Report(check_claims(claims, options, progress, stream), errors, notes, claims)
    if not report.results and not report.errors and not report.notes:
        print("error: nothing to check", file=err)
        return 2
    if args.certificates and not report.errors:
        written = write_certificates(zip(report.claims, report.results), args.certificates, ENCODING_VERSION)
        if stream.active:
            print(f"note: wrote {len(written)} certificates to {args.certificates}", file=out)
        else:
            report.notes.append(f"wrote {len(written)} certificates to {args.certificates}")
    return emit(report, args, out, err, streamed=stream.active)


def cmd_equiv(args, out, err) -> int:
    options = options_of(args)
    with Stream(args, out, err=err) as stream:
        report = check_equiv(args.a, args.b, options, stream)
    return emit(report, args, out, err, streamed=stream.active)


def cmd_deps(args, out, err) -> int:
    import json

    plan = deps.affected(args.changed_since, args.paths, staged=args.staged)
    if args.json:
        out.write(json.dumps({"ref": plan.ref, "changed": plan.changed, "targets": plan.targets,
                              "reasons": plan.reasons, "files": plan.files}, indent=2) + "\n")
    else:
        for t in plan.files if args.files else plan.targets:
            print(t, file=out)
    return 0

