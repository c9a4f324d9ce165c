"""The seed's operator names <-> IR operators. The operator table is data; nothing else parses names.

    M_<op>_<space>                    map `op` over the ranks of <space>         M_mul_emp, M_exp_m1m0p
    R_<op>_<rank>                     reduce <rank> with add or max              R_max_m0
    M_<op>_<space>_R_<rop>_<rank>     fused: R_<rop>_<rank>(M_<op>_<space>(..)); R_none_none = no reduction
    T_split_<r>_<outer><inner>        view rank r as (outer, inner), outer major  T_split_m_m1m0
    T_unsplit_<outer><inner>_<r>      the inverse view                           T_unsplit_m1m0_m
    S_scan_<r> / S_prev_<r> / S_shift_<r> / S_last_<r>   the iterative-rank extension (see README)
    CreateTensor, Const               inputs and scalar constants

A rank name is a lowercase letter followed by digits, so `fm1m0p` is (f, m1, m0, p).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, assert_never

from . import ir
from .errors import NotationError, did_you_mean
from .ir import MAP_OPS, REDUCE_OPS

RANK_RE = re.compile(r"[a-z][0-9]*")


def parse_ranks(text: str, what: str = "rank list") -> tuple[str, ...]:
    """`fm1m0p` -> ('f', 'm1', 'm0', 'p'); a rank may appear once."""
    if not text or not re.fullmatch(r"(?:[a-z][0-9]*)+", text):
        raise NotationError(
            f"'{text}' is not a valid {what}",
            hint="a rank is a lowercase letter followed by digits, e.g. 'emp' or 'm1m0p'",
        )
    ranks = tuple(RANK_RE.findall(text))
    if len(set(ranks)) != len(ranks):
        raise NotationError(f"rank repeated in '{text}'")
    return ranks


@dataclass(frozen=True)
class MapOp:
    op: str
    space: tuple[str, ...]
    reduce: ReduceOp | None = None

    @property
    def arity(self) -> int:
        return MAP_OPS[self.op]


@dataclass(frozen=True)
class ReduceOp:
    op: str
    rank: str


@dataclass(frozen=True)
class SplitOp:
    rank: str
    outer: str
    inner: str


@dataclass(frozen=True)
class UnsplitOp:
    outer: str
    inner: str
    rank: str


ScanKind = Literal["scan", "prev", "shift", "last"]
LeafKind = Literal["CreateTensor", "Const"]


@dataclass(frozen=True)
class ScanOp:
    kind: ScanKind
    rank: str


@dataclass(frozen=True)
class LeafOp:
    kind: LeafKind


Operator = MapOp | ReduceOp | SplitOp | UnsplitOp | ScanOp | LeafOp

# Arity of each operator family (the integer of T_split is its second argument).
SCAN_ARITY: dict[ScanKind, int] = {"scan": 3, "prev": 1, "shift": 2, "last": 1}
EXAMPLES = [
    "M_mul_emp", "M_exp_mp", "M_sub_mp", "M_div_mp", "M_add_p", "M_max_p", "R_add_m", "R_max_m", "R_add_e",
    "M_mul_emp_R_add_e", "T_split_m_m1m0", "T_unsplit_m1m0_m", "S_scan_m1", "S_prev_m1", "S_shift_m1",
    "S_last_m1", "CreateTensor", "Const",
]


def _unknown(name: str, cause: str) -> NotationError:
    return NotationError(f"unknown operator '{name}': {cause}", hint=did_you_mean(name, EXAMPLES))


def _split_pair(text: str, name: str) -> tuple[str, str]:
    ranks = parse_ranks(text)
    if len(ranks) != 2:
        raise _unknown(name, f"'{text}' must name exactly two ranks (outer, inner)")
    return ranks[0], ranks[1]


def parse_operator(name: str) -> Operator:
    match name:
        case "CreateTensor" | "Const":
            return LeafOp(name)
    parts = name.split("_")
    head = parts[0]
    try:
        if head == "M":
            if len(parts) == 3:
                return _map(name, parts[1], parts[2])
            if len(parts) == 6 and parts[3] == "R":
                base = _map(name, parts[1], parts[2])
                if (parts[4], parts[5]) == ("none", "none"):
                    return base
                reduce = _reduce(name, parts[4], parts[5])
                if reduce.rank not in base.space:
                    raise NotationError(
                        f"'{name}' reduces rank '{reduce.rank}', which is not in its iteration space "
                        f"{{{', '.join(base.space)}}}"
                    )
                return MapOp(base.op, base.space, reduce)
            raise _unknown(name, "expected M_<op>_<space> or M_<op>_<space>_R_<op>_<rank>")
        if head == "R" and len(parts) == 3:
            return _reduce(name, parts[1], parts[2])
        if head == "T" and len(parts) == 4 and parts[1] == "split":
            (rank,) = parse_ranks(parts[2])
            outer, inner = _split_pair(parts[3], name)
            return SplitOp(rank, outer, inner)
        if head == "T" and len(parts) == 4 and parts[1] == "unsplit":
            outer, inner = _split_pair(parts[2], name)
            (rank,) = parse_ranks(parts[3])
            return UnsplitOp(outer, inner, rank)
        if head == "S" and len(parts) == 3:
            match parts[1]:
                case "scan" | "prev" | "shift" | "last" as kind:
                    (rank,) = parse_ranks(parts[2])
                    return ScanOp(kind, rank)
    except ValueError:  # unpacking a rank list of the wrong length
        raise _unknown(name, "expected a single rank") from None
    raise _unknown(name, "not a map (M_), reduce (R_), tiling (T_) or scan (S_) operator of the seed notation")


def _map(name: str, op: str, space: str) -> MapOp:
    if op not in MAP_OPS:
        raise NotationError(
            f"unknown map operation '{op}' in '{name}'",
            hint=did_you_mean(op, MAP_OPS) or f"map operations are {', '.join(MAP_OPS)}",
        )
    return MapOp(op, parse_ranks(space, f"iteration space of '{name}'"))


def _reduce(name: str, op: str, rank: str) -> ReduceOp:
    if op not in REDUCE_OPS:
        raise NotationError(
            f"unknown reduce operation '{op}' in '{name}'",
            hint=did_you_mean(op, REDUCE_OPS) or "reduce operations are add and max",
        )
    ranks = parse_ranks(rank, f"reduced rank of '{name}'")
    if len(ranks) != 1:
        raise NotationError(f"'{name}' must reduce exactly one rank, not {len(ranks)}")
    return ReduceOp(op, ranks[0])


def map_name(op: str, space: tuple[str, ...]) -> str:
    return f"M_{op}_{''.join(space)}"


def reduce_name(op: str, rank: str) -> str:
    return f"R_{op}_{rank}"


def split_name(rank: str, outer: str, inner: str) -> str:
    return f"T_split_{rank}_{outer}{inner}"


def unsplit_name(outer: str, inner: str, rank: str) -> str:
    return f"T_unsplit_{outer}{inner}_{rank}"


def scan_name(kind: ScanKind, rank: str) -> str:
    return f"S_{kind}_{rank}"


def operator_name(e: ir.Expr) -> str | None:
    """The seed-notation constructor of one (unfused) IR node; None for references and pattern variables."""
    match e:
        case ir.Input():
            return "CreateTensor"
        case ir.Const():
            return "Const"
        case ir.Map(op=op, space=space):
            return map_name(op, space)
        case ir.Reduce(op=op, rank=rank):
            return reduce_name(op, rank)
        case ir.Split(rank=r, outer=o, inner=i):
            return split_name(r, o, i)
        case ir.Unsplit(outer=o, inner=i, rank=r):
            return unsplit_name(o, i, r)
        case ir.Scan(rank=r):
            return scan_name("scan", r)
        case ir.Prev(rank=r):
            return scan_name("prev", r)
        case ir.Shift(rank=r):
            return scan_name("shift", r)
        case ir.Last(rank=r):
            return scan_name("last", r)
        case ir.Var() | ir.Ref():
            return None
        case _:
            assert_never(e)


# The conventional inputs of attention (FuseMax): Q[e,p], K[e,m], V[f,m]. Others declare ranks in brackets.
CONVENTIONAL_INPUTS = {"Q": ("e", "p"), "K": ("e", "m"), "V": ("f", "m")}


def parse_tensor_kind(text: str) -> tuple[str, ir.TensorKind]:
    """`"B[m,p]:mask"` -> ('B[m,p]', 'mask'); no suffix -> 'real'."""
    head, sep, kind = text.rpartition(":")
    if not sep:
        return text, "real"
    match kind.strip():
        case "mask" | "real" | "index" as known:
            return head, known
    raise NotationError(f"unknown tensor kind '{kind.strip()}' in '{text}'",
                        hint="a tensor is real (default) or ':mask' (elements 0 or -inf)")


def parse_tensor_name(text: str) -> tuple[str, tuple[str, ...]]:
    """`"Q"` -> ('Q', ('e','p')); `"S[m,p]"` or `"S[mp]"` -> ('S', ('m','p'))."""
    m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[([a-z0-9,\s]*)\])?\s*", text)
    if not m:
        raise NotationError(
            f"'{text}' is not a tensor name",
            hint='write "Q", "K", "V" or declare ranks: "X[m,p]"',
        )
    name, ranks = m.group(1), m.group(2)
    if ranks is None:
        if name not in CONVENTIONAL_INPUTS:
            raise NotationError(
                f"input tensor '{name}' has no declared ranks",
                hint=f'declare them, e.g. (CreateTensor "{name}[m,p]"); only Q, K and V have conventional ranks',
            )
        return name, CONVENTIONAL_INPUTS[name]
    if not ranks.strip():
        return name, ()
    return name, parse_ranks(ranks.replace(",", "").replace(" ", ""), f"ranks of input '{name}'")
