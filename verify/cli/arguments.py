"""What the commands share: their `Options` and `--sizes`."""

from __future__ import annotations

from ..cluster import parse as parse_executor
from ..errors import BoundError, UsageError
from ..options import CacheMode, Options
from ..sizes import Bound


def options_of(args) -> Options:
    """The run's configuration from a command's arguments: every flag the command accepts, and its name."""
    if args.timeout is not None and not (0 < args.timeout <= 86400):
        raise UsageError(f"--timeout must be more than 0 and at most 86400 seconds, got {args.timeout:g}")
    if args.jobs < 1 or args.jobs > 64:
        raise UsageError(f"--jobs must be between 1 and 64, got {args.jobs}")

    parse_executor(args.executor)
    return Options(
        bound=Bound.parse(args.bound),
        timeout=args.timeout or 60.0,
        sympy=not getattr(args, "no_sympy", False),
        jobs=args.jobs,
        cache_dir=getattr(args, "cache_dir", ".verify-cache"),
        cache_mode=CacheMode(getattr(args, "cache", "off")),
        strict_shapes=getattr(args, "strict_shapes", False),
        executor=args.executor,
        command=args.command,
    )


def parse_sizes(spec: str | None) -> dict:
    sizes = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        if not (value.strip().isascii() and value.strip().isdigit()) or not name.strip():
            raise BoundError(f"cannot read size '{part.strip()}'", hint="write e.g. --sizes M=4096,M0=64,P=512")
        sizes[name.strip().upper()] = int(value)
    return sizes

