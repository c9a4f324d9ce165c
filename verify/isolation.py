"""Process isolation: a back end that can hang or run away (Z3, SymPy, egglog) runs in a forked child that is
killed at its time limit, under an address-space cap. Trouble comes back as a `Failure` (what went wrong, as
evidence); the driver decides what verdict it means."""

from __future__ import annotations

import multiprocessing
import resource
from dataclasses import dataclass
from typing import Literal

from .errors import InternalError, VerifyError, internal_message

FailureKind = Literal["timeout", "memory", "user", "internal"]


@dataclass
class Failure:
    kind: FailureKind
    detail: str


def limit_memory(cap_bytes: int | None) -> None:
    """Cap this process's address space (a runaway SymPy or Z3 then fails with MemoryError, or dies)."""
    if not cap_bytes:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = int(cap_bytes)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _child(conn, fn, args, memory=None):
    try:
        limit_memory(memory)
        conn.send(("ok", fn(*args)))
    except MemoryError:
        conn.send(("memory", f"memory limit exceeded ({memory / 2**30:.3g} GiB address space; process stopped)"
                   if memory else "out of memory"))
    except VerifyError as exc:
        conn.send(("user", exc.format()))
    except InternalError as exc:
        conn.send(("internal", f"internal error: {exc}"))
    except BaseException as exc:  # a crash in a back end (incl. egglog's PanicException)
        conn.send(("internal", internal_message(exc)))
    finally:
        conn.close()


def run_isolated(fn, args, timeout: float, isolate: bool = True, memory: int | None = None):
    """fn(*args) in a forked child killed after `timeout` seconds; a Failure instead of a result on trouble."""
    if not isolate:
        try:
            return fn(*args)
        except VerifyError as exc:
            return Failure("user", exc.format())
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args, memory), daemon=True)
    proc.start()
    child.close()
    try:
        if parent.poll(timeout):
            try:
                kind, value = parent.recv()
            except EOFError:
                proc.join(1)
                return Failure("internal", f"internal error: the checker process died (exit code {proc.exitcode})")
            proc.join(5)
            return value if kind == "ok" else Failure(kind, value)
        return Failure("timeout", f"timeout after {timeout:g} s (process killed)")
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        parent.close()
