"""What the commands share: their options, their targets (FILE, DIR, FILE:RULE) and `--sizes`."""

from __future__ import annotations

from pathlib import Path

from ..claims import Bound
from ..cluster import parse as parse_executor
from ..options import CacheMode, Options
from ..errors import BoundError
from ..explain import select
from ..targets import collect


def _options(args) -> Options:
    if args.timeout is not None and not (0 < args.timeout <= 86400):
        raise BoundError(f"--timeout must be between 0 and 86400 seconds, got {args.timeout:g}")
    if args.jobs < 1 or args.jobs > 64:
        raise BoundError(f"--jobs must be between 1 and 64, got {args.jobs}")

    parse_executor(args.executor)
    return Options(
        bound=Bound.parse(args.bound),
        timeout=args.timeout or 60.0,
        sympy=not args.no_sympy,
        jobs=args.jobs,
        cache_dir=args.cache_dir,
        cache_mode=CacheMode(args.cache),
        strict_shapes=getattr(args, "strict_shapes", False),
        executor=args.executor,
    )


def _targets(paths, strict: bool = False) -> tuple[list, list, list[str]]:
    """`FILE`, `DIR` and `FILE:RULE` targets -> (claims, errors, notes); a FILE:RULE naming nothing raises."""
    claims, errors, notes = [], [], []
    plain: list[str] = []

    def flush():
        for path in plain:        # one by one: a missing path is one error, not the end of the run
            c, e, n = collect([path], strict)
            claims.extend(c), errors.extend(e), notes.extend(n)
        plain.clear()

    for target in paths:
        if Path(target).exists() or ":" not in target:
            plain.append(target)
            continue
        flush()
        claims.extend(select(target, strict))
    flush()
    return claims, errors, notes


def _sizes(spec: str | None) -> dict:
    sizes = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        if not value.strip().isdigit() or not name.strip():
            raise BoundError(f"cannot read size '{part.strip()}'", hint="write e.g. --sizes M=4096,M0=64,P=512")
        sizes[name.strip().upper()] = int(value)
    return sizes

