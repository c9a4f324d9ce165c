"""Verdicts and counterexamples: the records every back end returns, and the only place their text is formatted.

The wording matches the strength of the evidence: only a proof says CERTIFIED (with the bound, or "all sizes"
for an induction); a counterexample that replayed says REFUTED; anything else (a timeout, a solver `unknown`, a
model that did not replay, engines that could not decide) is UNKNOWN and fails the gate, like ERROR (bad input).
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import asdict, dataclass, field

import numpy as np


class Verdict(enum.StrEnum):
    CERTIFIED = "CERTIFIED"
    REFUTED = "REFUTED"
    UNKNOWN = "UNKNOWN"
    ERROR = "ERROR"


@dataclass
class TensorValue:
    """A small tensor for people: its ranks and nested lists of numbers (NaN = undefined, -inf allowed)."""

    ranks: list[str]
    values: object

    @staticmethod
    def of(ranks, data) -> TensorValue:
        arr = np.asarray(data, dtype=float)
        return TensorValue(list(ranks), _jsonable(arr.tolist()))


def _jsonable(x):
    if isinstance(x, list):
        return [_jsonable(v) for v in x]
    if isinstance(x, float):
        if x != x:
            return "nan"
        if x in (float("inf"), float("-inf")):
            return "inf" if x > 0 else "-inf"
    return x


@dataclass
class Counterexample:
    sizes: dict[str, int]
    inputs: dict[str, TensorValue]
    lhs: TensorValue
    rhs: TensorValue
    at: dict[str, int]                  # an output position where the sides differ
    lhs_value: float | str
    rhs_value: float | str
    intermediates: dict[str, TensorValue] = field(default_factory=dict)
    found_by: str = ""                  # "numeric search" | "z3 model" | "induction step"
    replayed: bool = True               # replayed in the mpmath evaluator before being reported
    edge_case: Counterexample | None = None   # a second example, at an edge (a side undefined or infinite),
                                                # when this one is ordinary (both sides defined and finite)


@dataclass
class Result:
    name: str
    file: str
    line: int | None
    kind: str                           # rule | equiv | step | chain
    verdict: Verdict
    bound: str                          # e.g. "M1<=4, M0<=4, E<=2" or "all sizes"
    method: str                         # e.g. "normal form", "normal form + z3", "induction"
    seconds: float
    counterexample: Counterexample | None = None
    detail: str = ""
    engines: dict[str, str] = field(default_factory=dict)   # engine -> what it concluded
    warnings: list[str] = field(default_factory=list)
    description: str = ""
    assumptions: list[str] = field(default_factory=list)    # preconditions the verdict holds under (`; assume:`)

    @staticmethod
    def from_json(data: dict) -> Result:
        return result_from_json(data)

    def to_json(self) -> dict:
        out = asdict(self)
        out["verdict"] = self.verdict.value
        out["seconds"] = round(self.seconds, 4)
        return out


def error_result(error) -> Result:
    """A user error that stopped a file (or a target) from being read, as a result: kind "input", verdict ERROR,
    so that `--json` lists it with the rest (schemas/check.schema.json)."""
    where = getattr(error, "location", None)
    file = where.file if where is not None else ""
    rule = re.match(r"rule '([^']*)': ", getattr(error, "cause", ""))   # one bad rule of a file (per-rule isolation)
    return Result(name=rule.group(1) if rule else (file or "<input>"), file=file,
                  line=where.line if where is not None else None, kind="rule" if rule else "input",
                  verdict=Verdict.ERROR, bound="-", method="-", seconds=0.0, detail=error.format())


def dumps(results: list[Result]) -> str:
    return json.dumps([r.to_json() for r in results], indent=2)


# -- text -----------------------------------------------------------------------------------------------------

def headline(result: Result) -> str:
    where = f"{result.file}:{result.line}" if result.line else result.file
    match result.verdict:
        case Verdict.CERTIFIED:
            under = f"; assuming {', '.join(result.assumptions)}" if result.assumptions else ""
            what = f"CERTIFIED ({result.bound}; {result.method}{under})"
        case Verdict.REFUTED:
            what = "REFUTED"
        case Verdict.UNKNOWN:
            what = f"UNKNOWN ({result.detail})" if result.detail else "UNKNOWN"
        case Verdict.ERROR:
            what = f"ERROR ({result.detail})"
    cached = " (cached)" if "cache" in result.engines else ""
    return f"{where}: {result.name}: {what}  [{result.seconds:.3f} s{cached}]"


def format_value(v) -> str:
    if isinstance(v, str):
        return {"nan": "undefined", "-inf": "-inf", "inf": "inf"}.get(v, v)
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def format_tensor(name: str, t: TensorValue, indent: str = "    ") -> str:
    """A tensor as a small table: one line per index of all ranks but the last."""
    arr = t.values
    if not t.ranks:
        return f"{indent}{name} = {format_value(arr)}"
    lines = [f"{indent}{name}[{', '.join(t.ranks)}]:"]
    flat = np.array(arr, dtype=object)
    if flat.ndim == 1:
        lines.append(indent + "  " + "  ".join(format_value(v) for v in flat))
        return "\n".join(lines)
    for idx in np.ndindex(*flat.shape[:-1]):
        label = ", ".join(f"{r}={i}" for r, i in zip(t.ranks, idx))
        lines.append(f"{indent}  [{label}]  " + "  ".join(format_value(v) for v in flat[idx]))
    return "\n".join(lines)


def format_counterexample(cx: Counterexample) -> str:
    sizes = ", ".join(f"{k}={v}" for k, v in cx.sizes.items())
    at = ", ".join(f"{k}={v}" for k, v in cx.at.items()) or "(scalar)"
    parts = [f"  counterexample ({cx.found_by}; replayed: {'yes' if cx.replayed else 'no'}), sizes {sizes}:"]
    parts.append("  inputs:")
    parts.extend(format_tensor(n, t) for n, t in cx.inputs.items())
    if cx.intermediates:
        parts.append("  intermediates:")
        parts.extend(format_tensor(n, t) for n, t in cx.intermediates.items())
    parts.append("  results:")
    parts.append(format_tensor("lhs", cx.lhs))
    parts.append(format_tensor("rhs", cx.rhs))
    parts.append(f"  at {at}: lhs = {format_value(cx.lhs_value)}, rhs = {format_value(cx.rhs_value)}")
    if cx.edge_case is not None:
        second = format_counterexample(cx.edge_case).splitlines()
        second[0] = second[0].replace("  counterexample (", "  second counterexample, an edge case (", 1)
        parts.extend(second)
    return "\n".join(parts)


def format_result(result: Result, verbose: bool = True) -> str:
    lines = [headline(result)]
    if result.description and verbose:
        lines.append(f"  ({result.description})")
    for w in result.warnings:
        lines.append(f"  warning: {w}")
    if result.counterexample is not None and verbose:
        lines.append(format_counterexample(result.counterexample))
    elif result.verdict is Verdict.REFUTED and result.detail:
        lines.append(f"  {result.detail}")
    return "\n".join(lines)


def summary(results: list[Result]) -> str:
    counts = {v: sum(r.verdict is v for r in results) for v in Verdict}
    text = ", ".join(f"{counts[v]} {v.value.lower()}" for v in Verdict if counts[v])
    return f"{len(results)} checked: {text or 'nothing'}"


def _tensor(d) -> TensorValue:
    return TensorValue(list(d["ranks"]), d["values"])


def _counterexample(cx: dict | None) -> Counterexample | None:
    if not cx:
        return None
    return Counterexample(
        sizes=cx["sizes"], inputs={k: _tensor(v) for k, v in cx["inputs"].items()},
        lhs=_tensor(cx["lhs"]), rhs=_tensor(cx["rhs"]), at=cx["at"], lhs_value=cx["lhs_value"],
        rhs_value=cx["rhs_value"], intermediates={k: _tensor(v) for k, v in cx.get("intermediates", {}).items()},
        found_by=cx.get("found_by", ""), replayed=cx.get("replayed", True),
        edge_case=_counterexample(cx.get("edge_case")),
    )


def result_from_json(data: dict) -> Result:
    """Inverse of Result.to_json (used by the cache)."""
    counterexample = _counterexample(data.get("counterexample"))
    return Result(
        name=data["name"], file=data["file"], line=data["line"], kind=data["kind"], verdict=Verdict(data["verdict"]),
        bound=data["bound"], method=data["method"], seconds=data["seconds"], counterexample=counterexample,
        detail=data.get("detail", ""), engines=dict(data.get("engines", {})), warnings=list(data.get("warnings", [])),
        description=data.get("description", ""), assumptions=list(data.get("assumptions", [])),
    )

