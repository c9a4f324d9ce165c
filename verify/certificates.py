"""Certificate files: one JSON file per rule and chain step (`verify check --certificates DIR`).

Certificates (`make verify` -> `proofs/certificates/*.json`) are regenerated on every run and are not committed:
they record timings and solver versions of the machine that ran them, and the reviewed artifact is the rule
text plus the gate's verdict. Each file is written to a temporary name and renamed (`cache.write_atomically`),
so an interrupted run leaves no partial certificate. `cache.py` imports no solver; this module imports z3,
sympy and egglog only to record their versions.
"""

from __future__ import annotations

import json
import platform
import re
from pathlib import Path

from .cache import claim_hash, write_atomically
from .claims import Claim
from .verdict import Result


def solver_versions() -> dict[str, str]:
    import egglog
    import numpy
    import sympy
    import z3

    return {
        "z3": z3.get_version_string(),
        "sympy": sympy.__version__,
        "numpy": numpy.__version__,
        "egglog": getattr(egglog, "__version__", "13"),
        "python": platform.python_version(),
    }


def certificate(claim: Claim, result: Result, encoding: str) -> dict:
    return {
        "name": result.name,
        "kind": result.kind,
        "file": result.file,
        "line": result.line,
        "content_hash": claim_hash(claim),
        "encoding_version": encoding,
        "verdict": result.verdict.value,
        "bound": str(result.bound),
        "method": result.method,
        "engines": result.engines,
        "seconds": round(result.seconds, 4),
        "solvers": solver_versions(),
    }


def certificate_name(result: Result) -> str:
    stem = Path(result.file).stem.replace(".chain", "")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", result.name).strip("-")[:80]
    return f"{stem}--{slug}.json"


def write_certificates(pairs, directory: str | Path, encoding: str) -> list[Path]:
    """One JSON certificate per (claim, result); stale certificates in the directory are removed."""
    directory = Path(directory)
    written = []
    for claim, result in pairs:
        path = directory / certificate_name(result)
        write_atomically(path, json.dumps(certificate(claim, result, encoding), indent=2) + "\n")
        written.append(path)
    if directory.exists():
        for old in directory.glob("*.json"):
            if old not in written:
                old.unlink()
    return written
