"""Verdicts and counterexamples: the records every back end returns, and the only place their text is formatted.

The wording matches the strength of the evidence: only a proof says CERTIFIED (with the bound, or "all sizes"
for an induction); a counterexample that replayed says REFUTED; anything else (a timeout, a solver `unknown`, a
model that did not replay, engines that could not decide) is UNKNOWN and fails the gate, like ERROR (bad input).
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from .claims import ClaimKind
from .errors import Location
from .sizes import NO_BOUND, SizeBound


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


ResultKind = ClaimKind | Literal["input"]



def exit_status(verdicts, errors: int = 0, failed: bool = False) -> int:
    """The exit-status rule of every command (README): 2 if there was bad input (`errors`) or any ERROR, else 1
    if anything is REFUTED or UNKNOWN or something else `failed` (a requested output not written, a mutant not
    refuted), else 0."""
    verdicts = list(verdicts)
    if errors or Verdict.ERROR in verdicts:
        return 2
    return 1 if failed or any(v is not Verdict.CERTIFIED for v in verdicts) else 0


def assumption_texts(claim) -> list[str]:
    """The preconditions a verdict on `claim` holds under, as the verdict states them."""
    return [f"{mask} unmasked along {rank}" for mask, rank in claim.assumptions]


@dataclass
class Result:
    name: str
    file: str
    line: int | None
    kind: ResultKind                    # the claim's kind, or "input" for a file that could not be read
    verdict: Verdict
    bound: SizeBound                    # e.g. "M1<=4, M0<=4, E<=2" or "all sizes (...)" as text
    method: str                         # e.g. "normal form", "normal form + z3", "induction"
    seconds: float
    counterexample: Counterexample | None = None
    detail: str = ""
    engines: dict[str, str] = field(default_factory=dict)   # engine -> what it concluded
    warnings: list[str] = field(default_factory=list)
    description: str = ""
    assumptions: list[str] = field(default_factory=list)    # preconditions the verdict holds under (`; assume:`)
    # when a lift widened a bounded verdict to all sizes: method = "{lifted_by}; {bounded_method} at {bound}"
    bounded_method: str = ""            # the bounded proof's method
    lifted_by: str = ""                 # the lift's method ("induction: ...", "unbounded: SHAPE ...")
    shape: str = ""                     # the shape the rule-level lift proved the claim for, with its lemmas

    @property
    def location(self) -> Location:
        return Location(self.file, self.line)

    @staticmethod
    def for_claim(claim, verdict: Verdict, bound: SizeBound, method: str, seconds: float, **fields) -> Result:
        """A result about `claim`: its name, place, kind, description and assumptions, and the verdict given."""
        fields.setdefault("assumptions", assumption_texts(claim))
        return Result(claim.name, claim.file, claim.line, claim.kind, verdict, bound, method, seconds,
                      description=claim.description, **fields)

    @staticmethod
    def from_json(data: dict) -> Result:
        return result_from_json(data)

    def to_json(self) -> dict:
        out = asdict(self)
        out["verdict"] = self.verdict.value
        out["bound"] = str(self.bound)
        out["seconds"] = round(self.seconds, 4)
        return out


def error_result(error) -> Result:
    """A user error that stopped a file (or a target) from being read, as a result: kind "input", verdict ERROR,
    so that `--json` lists it with the rest (schemas/check.schema.json)."""
    where = getattr(error, "location", None)
    file = where.file if where is not None else ""
    rule = getattr(error, "rule", None)      # one bad rule of a file (per-rule isolation)
    return Result(name=rule or file or "<input>", file=file,
                  line=where.line if where is not None else None, kind=ClaimKind.RULE if rule else "input",
                  verdict=Verdict.ERROR, bound=NO_BOUND, method="-", seconds=0.0, detail=error.format())


def dumps(results: list[Result]) -> str:
    return json.dumps([r.to_json() for r in results], indent=2)


# -- text -----------------------------------------------------------------------------------------------------

def headline(result: Result) -> str:
    where = result.location
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


def format_value(v, exact: frozenset = frozenset()) -> str:
    """Six significant digits, or the shortest text that reads back as `v` for the values in `exact`."""
    if isinstance(v, str):
        return {"nan": "undefined", "-inf": "-inf", "inf": "inf"}.get(v, v)
    if isinstance(v, float):
        return repr(v) if v in exact else f"{v:.6g}"
    return str(v)


def _colliding(cx: Counterexample) -> frozenset:
    """The numbers of the two sides that differ but print alike at six digits (0.1 + 0.2 vs 0.3): they are
    printed in full, or a refutation would show `lhs = 0.3, rhs = 0.3`."""
    pairs = [(cx.lhs_value, cx.rhs_value)]
    left, right = np.array(cx.lhs.values, dtype=object), np.array(cx.rhs.values, dtype=object)
    if left.shape == right.shape:
        pairs += list(zip(left.ravel(), right.ravel()))
    return frozenset(v for a, b in pairs if isinstance(a, float) and isinstance(b, float) and a != b
                     and format_value(a) == format_value(b) for v in (a, b))


def format_tensor(name: str, t: TensorValue, indent: str = "    ", exact: frozenset = frozenset()) -> str:
    """A tensor as a small table: one line per index of all ranks but the last."""
    arr = t.values
    if not t.ranks:
        return f"{indent}{name} = {format_value(arr, exact)}"
    lines = [f"{indent}{name}[{', '.join(t.ranks)}]:"]
    flat = np.array(arr, dtype=object)
    if flat.ndim == 1:
        lines.append(indent + "  " + "  ".join(format_value(v, exact) for v in flat))
        return "\n".join(lines)
    for idx in np.ndindex(*flat.shape[:-1]):
        label = ", ".join(f"{r}={i}" for r, i in zip(t.ranks, idx))
        lines.append(f"{indent}  [{label}]  " + "  ".join(format_value(v, exact) for v in flat[idx]))
    return "\n".join(lines)


def _layout(cx: Counterexample):
    """The one layout of a counterexample, for every renderer: its title, the tensor groups (title, tensors,
    the position to highlight), the line saying where the sides differ."""
    sizes = ", ".join(f"{k}={v}" for k, v in cx.sizes.items())
    title = f"  counterexample ({cx.found_by}; replayed: {'yes' if cx.replayed else 'no'}), sizes {sizes}"
    groups: list[tuple[str, dict[str, TensorValue], dict[str, int] | None]] = [("inputs", cx.inputs, None)]
    if cx.intermediates:
        groups.append(("intermediates", cx.intermediates, None))
    groups.append(("results", {"lhs": cx.lhs, "rhs": cx.rhs}, cx.at))
    at = ", ".join(f"{k}={v}" for k, v in cx.at.items()) or "(scalar)"
    exact = _colliding(cx)
    return (title, groups, f"  at {at}: lhs = {format_value(cx.lhs_value, exact)}, "
                           f"rhs = {format_value(cx.rhs_value, exact)}", exact)


def _edge_case_text(cx: Counterexample) -> list[str]:
    second = format_counterexample(cx).splitlines()
    second[0] = second[0].replace("  counterexample (", "  second counterexample, an edge case (", 1)
    return second


def format_counterexample(cx: Counterexample) -> str:
    title, groups, at, exact = _layout(cx)
    parts = [f"{title}:"]
    for name, tensors, _ in groups:
        parts.append(f"  {name}:")
        parts.extend(format_tensor(n, t, exact=exact) for n, t in tensors.items())
    parts.append(at)
    if cx.edge_case is not None:
        parts.extend(_edge_case_text(cx.edge_case))
    return "\n".join(parts)


def rich_counterexample(cx: Counterexample) -> list[tuple[object, str]]:
    """The counterexample for a terminal, as (renderable, style) pairs: tensors as small tables with named ranks,
    the position where the sides differ highlighted; an edge case second, as text."""
    parts: list[tuple[object, str]] = []
    title, groups, at, exact = _layout(cx)
    parts.append((title, ""))
    for name, tensors, where in groups:
        parts.append((f"  {name}:", ""))
        parts.append((_rich_tensors(tensors, where, exact), ""))
    parts.append((at, "bold"))
    if cx.edge_case is not None:
        parts.append(("\n".join(_edge_case_text(cx.edge_case)), ""))
    return parts


def _rich_tensors(tensors: dict[str, TensorValue], at: dict[str, int] | None = None, exact: frozenset = frozenset()):
    """One rich Table per tensor (rows: every rank but the last, columns: the last), side by side; the
    position where the sides differ (`at`) is highlighted."""
    from rich import box  # rich: only for a terminal, loaded when one is written to
    from rich.columns import Columns
    from rich.console import Group
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    cells: list = []
    for name, t in tensors.items():
        if not t.ranks:
            style = "bold red" if at is not None else ""
            cells.append(Text(f"{name} = {format_value(t.values, exact)}", style=style))
            continue
        arr = np.array(t.values, dtype=object)
        arr = arr.reshape((1,) + arr.shape) if arr.ndim == 1 else arr
        table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False)
        if len(t.ranks) > 1:
            table.add_column(", ".join(t.ranks[:-1]), style="dim")
        for j in range(arr.shape[-1]):
            table.add_column(f"{t.ranks[-1]}={j}", justify="right")
        for idx in np.ndindex(*arr.shape[:-1]):
            lead = idx if len(t.ranks) > 1 else ()
            label = ", ".join(f"{r}={i}" for r, i in zip(t.ranks, lead))
            row = []
            for j in range(arr.shape[-1]):
                text = format_value(arr[idx + (j,)], exact)
                hit = at is not None and all(at.get(r) == i for r, i in zip(t.ranks, lead + (j,)))
                row.append(Text(text, style="bold red" if hit else ""))
            table.add_row(*([label] if len(t.ranks) > 1 else []), *row)
        cells.append(Group(Text(f"{name}[{', '.join(t.ranks)}]", style="bold", no_wrap=True), table))
    return Padding(Columns(cells, padding=(0, 3)), (0, 0, 0, 4))


def not_lifted(result: Result) -> str | None:
    """Why a certificate holds only within its bound (None for an all-sizes one or another verdict)."""
    if result.verdict is not Verdict.CERTIFIED or result.bound.is_all_sizes:
        return None
    reason = str(result.engines.get("unbounded", "") or "")
    for prefix in ("not lifted: ", "not lifted to all sizes: "):
        reason = reason.removeprefix(prefix)
    return reason or "no all-sizes argument was tried for this claim"


def format_result(result: Result, verbose: bool = True, brief: bool = False) -> str:
    """The text of a verdict; `brief`: its headline only, one line per claim."""
    if brief:
        return headline(result)
    lines = [headline(result)]
    reason = not_lifted(result)
    if reason:
        lines.append(f"  not lifted to all sizes: {reason}")
    if result.description and verbose:
        checked, *comment = result.description.split("\n")
        lines.append(f"  ({checked})")
        lines.extend(f"  ; {c}" for c in comment if c.strip())
    for w in result.warnings:
        lines.append(f"  warning: {w}")
    if result.counterexample is not None and verbose:
        lines.append(format_counterexample(result.counterexample))
        if result.verdict is Verdict.REFUTED and result.detail:     # e.g. the tile a block mask misclassifies
            lines.append(f"  {result.detail}")
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
        name=data["name"], file=data["file"], line=data["line"],
        kind="input" if data["kind"] == "input" else ClaimKind(data["kind"]), verdict=Verdict(data["verdict"]),
        bound=SizeBound.parse(data["bound"]) or NO_BOUND, method=data["method"], seconds=data["seconds"],
        counterexample=counterexample,
        detail=data.get("detail", ""), engines=dict(data.get("engines", {})), warnings=list(data.get("warnings", [])),
        description=data.get("description", ""), assumptions=list(data.get("assumptions", [])),
        bounded_method=data.get("bounded_method", ""), lifted_by=data.get("lifted_by", ""),
        shape=data.get("shape", ""),
    )

