"""One run's configuration, `Options`: built once by each command from its arguments (cli/arguments.py) and
passed on unchanged to everything that reads files or checks claims (`targets.collect`, the gate, the driver,
explain, report, mutate, optimize), so that every command honours every flag it accepts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .sizes import Bound


class CacheMode(enum.StrEnum):
    """The result cache's mode (cache.py); compares equal to its string ("rw", "ro", "off")."""
    RW = "rw"
    RO = "ro"
    OFF = "off"


@dataclass(frozen=True)
class Options:
    bound: Bound = field(default_factory=Bound)
    timeout: float = 60.0          # seconds per claim, enforced by killing the child process
    z3_timeout: float = 10.0       # seconds per Z3 query (inside the claim's budget)
    sympy: bool = True             # second opinion on CERTIFIED claims
    sympy_timeout: float = 20.0
    jobs: int = 1
    seed: int = 0
    isolate: bool = True           # run each claim in a killable child process
    memory_limit: int | None = 8 << 30   # bytes of address space per child process (RLIMIT_AS); None = no cap
    cache_dir: str = ".verify-cache"
    cache_mode: CacheMode = CacheMode.OFF   # the CLI turns it on (see cache.py)
    strict_shapes: bool = False    # no implicit tiling (implicit.py); a file may ask with `; shapes: strict`
    executor: str = "local"        # local (threads x child processes) | dask | dask=SCHEDULER_ADDRESS (cluster.py)
    command: str = "check"         # the command that runs (`verify explain`, ...): hints name it
