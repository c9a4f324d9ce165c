"""Shared lowering for the code generators: what a generated function computes, in which order, with which sizes.

Both back ends (`torch.py`, `triton.py`) translate the IR operator by operator; this module decides the layout
of one generated function per extracted output:

- **sizes**: every rank's size is read off the inputs (a rank named by two inputs is checked at run time);
  a split's outer size is a keyword argument named after the outer rank (`T_split_m_m1m0 K 4` -> `M1=4`), its
  inner size is the quotient (checked to divide); an unsplit's rank is the product.
- **the tile loop** (FlashAttention-2's loop): when the program iterates exactly one rank r (its `S_scan_r`
  operators), every binding that has rank r and can be computed one slice r = k at a time is computed inside
  one loop over k: splits of untiled tensors become `narrow`s, `S_prev_r` is the scan's state variable,
  `S_shift_r X` is X's value from the step before, and `S_last_r X` after the loop is X's value at the last
  step. A loop binding that something after the loop needs whole (not through `S_last_r`) is stacked from its
  steps; the rest never exist for more than one tile at a time, which is what makes the 1-pass cascade use
  O(M0 * P) memory instead of O(M * P).
- bindings that cannot be sliced (a reduction over r, an unsplit of r, ...) and everything that depends on the
  loop's results are computed whole, after it; everything the loop needs and that does not depend on it, before.

Semantics are those of `verify/evaluate.py` (the reference): the generated code is checked against it.
"""

from __future__ import annotations

import hashlib
import keyword
from dataclasses import dataclass, field

from .. import ir
from ..errors import Location, VerifyError


class CodegenError(VerifyError):
    """The program cannot be translated (an operator without a translation, a form a target does not support).
    Remedy: the message names the operator and line; use the torch target, or rewrite the program."""

    kind = "codegen error"


TARGETS = ("torch", "triton")

# The elementwise lowering, shared by both targets: one template per map operator over a target's primitives
# (`Primitives`), keeping the reference semantics of verify/evaluate.py: `x / 0` is undefined (NaN) rather than
# +-inf, max propagates NaN as np.maximum does, fin(-inf) = 0, log 0 = -inf (the library's log already does).
ELEMENTWISE = {
    "add": "{0} + {1}",
    "sub": "{0} - {1}",
    "mul": "{0} * {1}",
    "div": "{where}({1} == 0, {nan}, {0} / {1})",
    "max": "{maximum}",
    "exp": "{exp}({0})",
    "log": "{log}({0})",
    "fin": "{where}({0} == {neginf}, 0.0, {0})",
}


@dataclass(frozen=True)
class Primitives:
    """A target's spelling of the few functions the elementwise templates need."""

    where: str
    nan: str
    neginf: str
    maximum: str        # a template over {0}, {1}: NaN-propagating max
    exp: str
    log: str


def elementwise(op: str, operands: list[str], lib: Primitives) -> str:
    """The code of map operator `op` (a key of ELEMENTWISE) over operand expressions."""
    names = {"where": lib.where, "nan": lib.nan, "neginf": lib.neginf, "exp": lib.exp, "log": lib.log,
             "maximum": lib.maximum.format(*operands) if op == "max" else ""}
    return ELEMENTWISE[op].format(*operands, **names)


def fail(program: ir.Program, node, cause: str, hint: str | None = None) -> CodegenError:
    return CodegenError(cause, Location(program.file, getattr(node, "line", None)), hint)


def refs(expr: ir.Expr) -> list[str]:
    return [n.name for n in ir.walk(expr) if isinstance(n, ir.Ref)]


def needed(program: ir.Program, output: str) -> list[str]:
    """The bindings `output` depends on (itself included), in file order."""
    seen: set[str] = set()
    stack = [output]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(refs(program.bindings[name].expr))
    return [name for name in program.bindings if name in seen]


def identifier(name: str, taken: set[str]) -> str:
    """A Python identifier for a program name, not clashing with `taken` (which it joins)."""
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "_"
    if out[0].isdigit():
        out = "_" + out
    while keyword.iskeyword(out) or out in taken:
        out += "_"
    taken.add(out)
    return out


@dataclass
class SizePlan:
    """Where each rank's size comes from."""

    from_input: dict[str, tuple[str, int]] = field(default_factory=dict)    # rank -> (input, axis)
    checks: list[tuple[str, str, int]] = field(default_factory=list)        # (rank, input, axis) to compare
    tiles: dict[str, tuple[str, int | None, ir.Split]] = field(default_factory=dict)  # outer -> (kwarg, default, node)
    inner: dict[str, tuple[str, str]] = field(default_factory=dict)         # inner -> (rank, outer)
    product: dict[str, tuple[str, str]] = field(default_factory=dict)       # rank -> (outer, inner)
    order: list[str] = field(default_factory=list)                          # ranks in the order they are known


def size_plan(program: ir.Program, names: list[str], inputs: list[ir.Input]) -> SizePlan:
    plan = SizePlan()
    known: set[str] = set()
    for tensor in inputs:
        for axis, rank in enumerate(tensor.ranks):
            if rank in known:
                plan.checks.append((rank, tensor.name, axis))
            else:
                plan.from_input[rank] = (tensor.name, axis)
                known.add(rank)
                plan.order.append(rank)
    splits = [n for name in names for n in ir.walk(program.bindings[name].expr)
              if isinstance(n, (ir.Split, ir.Unsplit))]
    progress = True
    while progress:
        progress = False
        for node in splits:
            if isinstance(node, ir.Split):
                if node.outer in plan.tiles:
                    _, default, first = plan.tiles[node.outer]
                    if (node.rank, node.inner) != (first.rank, first.inner) or (
                            node.tiles is not None and default is not None and node.tiles != default):
                        raise fail(program, node, f"rank '{node.outer}' is made by two different splits "
                                   f"(T_split_{first.rank}_{first.outer}{first.inner} {default} at line {first.line})",
                                   "every split of the same rank pair must use the same tile count")
                    continue
                if node.rank not in known:
                    continue
                if isinstance(node.tiles, str):
                    raise fail(program, node, f"the tile count of T_split_{node.rank}_{node.outer}{node.inner} is a "
                               f"pattern variable ('{node.tiles}'); a program to run needs an integer")
                plan.tiles[node.outer] = (node.outer.upper(), node.tiles, node)
                plan.inner[node.inner] = (node.rank, node.outer)
                known.update((node.outer, node.inner))
                # an input over a tile rank (a block mask TE[m1,p]) may have made one of them known already
                plan.order += [r for r in (node.outer, node.inner) if r not in plan.order]
                progress = True
            elif node.rank not in known and node.outer in known and node.inner in known:
                plan.product[node.rank] = (node.outer, node.inner)
                known.add(node.rank)
                plan.order.append(node.rank)
                progress = True
    for name in names:
        for node in ir.walk(program.bindings[name].expr):
            for rank in ir.node_ranks(node):
                if rank not in known:
                    raise fail(program, node, f"no input gives the size of rank '{rank}'",
                               "every rank must be a rank of an input, or made from one by a split or unsplit")
    return plan


@dataclass
class Layout:
    """One generated function: the bindings before the loop, in it, after it (all in file order)."""

    output: str
    names: list[str]
    inputs: list[ir.Input]
    sizes: SizePlan
    rank: str | None = None                  # the iterative rank of the tile loop, or None (no loop)
    before: list[str] = field(default_factory=list)
    loop: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    stacked: set[str] = field(default_factory=set)    # loop bindings also needed whole (stacked from the steps)
    last: set[str] = field(default_factory=set)       # loop bindings read after the loop through S_last_r
    shifted: set[str] = field(default_factory=set)    # loop bindings read through S_shift_r (previous step)


def program_inputs(program: ir.Program, names: list[str]) -> list[ir.Input]:
    found: dict[str, ir.Input] = {}
    for name in names:
        for node in ir.walk(program.bindings[name].expr):
            if isinstance(node, ir.Input):
                if node.name in found and found[node.name].ranks != node.ranks:
                    raise fail(program, node, f"input '{node.name}' is created twice with different ranks "
                               f"({', '.join(found[node.name].ranks)} and {', '.join(node.ranks)})")
                found.setdefault(node.name, node)
    return list(found.values())


def _sliceable(expr: ir.Expr, r: str, top: bool) -> bool:
    """Can `expr` be computed one slice r = k at a time, from slices of its operands?"""
    match expr:
        case ir.Scan(rank=rank, body=body, init=init):
            return rank == r and top and _sliceable(body, r, False) and r not in ir.rank_names(init)
        case ir.Reduce(rank=rank) if rank == r:
            return False
        case ir.Split(inner=inner) if inner == r:
            return False
        case ir.Split(outer=outer, arg=arg) if outer == r:
            return r not in ir.rank_names(arg) and _sliceable(arg, r, False)
        case ir.Unsplit(outer=o, inner=i, rank=rank) if r in (o, i, rank):
            return False
        case ir.Last(rank=rank) if rank == r:
            return False
        case ir.Shift(rank=rank, arg=arg, init=init) if rank == r:
            return isinstance(arg, ir.Ref) and r not in ir.rank_names(init)
        case ir.Scan() | ir.Shift() | ir.Last():
            return False                     # another iterative rank inside the loop: computed whole instead
    return all(_sliceable(c, r, False) for c in ir.children(expr))


def layout(program: ir.Program, output: str, env: dict[str, tuple[str, ...]]) -> Layout:
    names = needed(program, output)
    inputs = program_inputs(program, names)
    plan = size_plan(program, names, inputs)
    out = Layout(output, names, inputs, plan)
    scan_ranks = {n.rank for name in names for n in ir.walk(program.bindings[name].expr) if isinstance(n, ir.Scan)}
    if len(scan_ranks) != 1:
        out.before = list(names)
        return out
    (r,) = scan_ranks
    exprs = {name: program.bindings[name].expr for name in names}
    loop = {name for name in names if r in env[name] and _sliceable(exprs[name], r, True)}
    deps: dict[str, set[str]] = {}
    for name in names:                       # transitive dependencies, in file order
        deps[name] = set()
        for ref in refs(exprs[name]):
            deps[name] |= {ref} | deps[ref]
    changed = True
    while changed:
        changed = False
        for name in sorted(loop):
            # a loop binding is sliceable: each of its S_shift_r reads a binding by name (`_sliceable`)
            shift_args = {n.arg.name for n in ir.walk(exprs[name])
                          if isinstance(n, ir.Shift) and n.rank == r and isinstance(n.arg, ir.Ref)}
            bad = any(ref not in loop and deps[ref] & loop for ref in refs(exprs[name]))
            bad = bad or any(ref not in loop for ref in shift_args)
            if bad:
                loop.discard(name)
                changed = True
    if not any(isinstance(exprs[name], ir.Scan) for name in loop):
        out.before = list(names)
        return out
    out.rank = r
    out.loop = [name for name in names if name in loop]
    out.before = [name for name in names if name not in loop and not deps[name] & loop]
    out.after = [name for name in names if name not in loop and deps[name] & loop]
    for name in out.loop:
        for node in ir.walk(exprs[name]):
            if isinstance(node, ir.Shift) and node.rank == r and isinstance(node.arg, ir.Ref):
                out.shifted.add(node.arg.name)
    if output in loop:
        out.stacked.add(output)
    for name in out.after:
        for node, parent in _with_parents(exprs[name]):
            if isinstance(node, ir.Ref) and node.name in loop:
                if isinstance(parent, ir.Last) and parent.rank == r:
                    out.last.add(node.name)
                else:
                    out.stacked.add(node.name)
    return out


def shift_fills(program: ir.Program, lay: Layout) -> list[tuple[str, ir.Expr]]:
    """Every (loop binding, fill) read through `S_shift_r` inside the loop, in file order: each pair is a variable
    of its own (two shifts of one binding with different fills differ at step 0)."""
    out: list[tuple[str, ir.Expr]] = []
    for name in lay.loop:
        for node in ir.walk(program.bindings[name].expr):
            if (isinstance(node, ir.Shift) and node.rank == lay.rank and isinstance(node.arg, ir.Ref)
                    and (node.arg.name, node.init) not in out):
                out.append((node.arg.name, node.init))
    return out


def _with_parents(expr: ir.Expr, parent=None):
    yield expr, parent
    for child in ir.children(expr):
        yield from _with_parents(child, expr)


def tile_doc(kw: str, node: ir.Split) -> str:
    where = f" (line {node.line})" if node.line else ""
    return f"{kw}: the number of tiles of T_split_{node.rank}_{node.outer}{node.inner}{where}"


def source_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
