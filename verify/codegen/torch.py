"""IR -> a self-contained PyTorch module: one function per extracted output.

One translation per IR operator (`Emitter.node`); `lower.layout` decides what runs before, inside and after the
tile loop. Every value of the generated code is a torch tensor whose dimensions are a known tuple of ranks
(written next to each statement); broadcasting along a missing rank is a `None` index (a view), and a map
whose space has a rank that no operand carries is expanded to it.

The semantics are `verify/evaluate.py`'s, operator by operator:
- add, sub, mul, max, exp: IEEE, as numpy (`(-inf) - (-inf)` and `0 * (-inf)` are NaN = undefined; `torch.maximum`
  propagates NaN like `np.maximum`);
- div: `x / 0` is undefined (NaN), not +-inf: `torch.where(d == 0, nan, n / d)`;
- log: `torch.log` (log 0 = -inf, log of a negative number NaN); fin: `torch.where(x == -inf, 0, x)`;
- `R_add` is `sum`, `R_max` is `amax` (NaN-propagating); `R_add` of a product is one `torch.einsum`;
- splits and unsplits are reshapes (`m = m1*M0 + m0`, outer major), `narrow` inside the tile loop;
- `S_scan` is the loop's state variable, `S_shift` the value of the step before, `S_last` the value after the
  last step; outside the tile loop a scan is a loop of its own, stacked.
"""

from __future__ import annotations

import math
from typing import assert_never

from .. import ir
from ..errors import Location
from ..notation import map_name, operator_name
from ..shapes import RankChecker, program_ranks
from . import lower
from .lower import fail

TORCH = lower.Primitives(where="torch.where", nan="math.nan", neginf="-math.inf",
                         maximum="torch.maximum({0}, {1})", exp="torch.exp", log="torch.log")
REDUCE = {"add": "{0}.sum(dim={1})", "max": "{0}.amax(dim={1})"}
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def const_code(value: float) -> str:
    if math.isnan(value):
        return "math.nan"
    if math.isinf(value):
        return "math.inf" if value > 0 else "-math.inf"
    return repr(float(value))


class Value:
    """A Python expression (usually a variable) and the ranks of its dimensions, in order."""

    def __init__(self, code: str, ranks: tuple[str, ...]):
        self.code = code
        self.ranks = tuple(ranks)

    def __repr__(self):
        return f"Value({self.code!r}, {self.ranks})"


class Context:
    """Where an expression is evaluated: whole, or at step k of the tile loop over `rank`."""

    def __init__(self, rank=None, k=None, local=None, prev=None, shifted=None, last_rank=None, last=None):
        self.rank = rank
        self.k = k
        self.local = local or {}        # loop binding -> its value at this step
        # S_prev "NAME" -> the previous state of the scan whose body is being emitted. Two scans may share a state
        # string (each S_prev refers to the scan around it, as in the evaluator), so the tile loop keeps its states
        # by binding (`states`) and gives each scan body a context whose `prev` holds its own state only.
        self.prev = prev or {}
        self.states: dict[str, Value] = {}   # loop scan binding -> its state variable
        # (loop binding, fill) -> its value at the step before: one variable per fill, since two S_shift of one
        # binding with different fills differ at step 0
        self.shifted = shifted or {}
        self.last_rank = last_rank      # after the tile loop over this rank:
        self.last = last or {}          # loop binding -> its value at the last step (S_last)


class Emitter:
    target = "torch"
    lib = TORCH

    def __init__(self, program: ir.Program, env):
        self.program = program
        self.env = env
        self.lines: list[str] = []
        self.indent = 1
        self.temps = 0
        self.taken: set[str] = set()
        self.whole: dict[str, Value] = {}   # binding -> whole value
        self.consts: dict[str, str] = {}
        self.inputs: dict[str, str] = {}    # input name -> its parameter (set by `function`)
        self.names: dict[str, str] = {}     # binding -> its variable (set by `name_bindings`)
        # the drop-in attention's loop (attention.py): tiles of a fixed size along the loop, the last one shorter;
        # `ragged` maps each tiled inner rank to its tile stride, and every tile is cast to the accumulation dtype
        self.ragged: dict[str, str] = {}

    # -- output ------------------------------------------------------------------------------------------------
    def line(self, text: str) -> None:
        self.lines.append("    " * self.indent + text)

    def fresh(self, hint: str = "t") -> str:
        self.temps += 1
        return lower.identifier(f"_{hint}{self.temps}", self.taken)

    def assign(self, target: str | None, code: str, ranks, comment: str = "") -> Value:
        name = target or self.fresh()
        note = f"  # [{', '.join(ranks)}]" + (f" {comment}" if comment else "")
        self.line(f"{name} = {code}{note}")
        return Value(name, ranks)

    def size(self, rank: str) -> str:
        return f"size_{rank}"

    # -- alignment -----------------------------------------------------------------------------------------------
    def view(self, v: Value, space: tuple[str, ...]) -> str:
        """`v` as a tensor broadcastable against `space` (a permutation, then None for missing ranks)."""
        present = [r for r in space if r in v.ranks]
        code = v.code
        if not v.ranks:
            return code
        if list(v.ranks) != present:
            code = self.permute(code, [v.ranks.index(r) for r in present])
        if len(present) != len(space):
            index = ", ".join(":" if r in v.ranks else "None" for r in space)
            code = f"{code}[{index}]"
        return code

    def ordered(self, v: Value, ranks: tuple[str, ...]) -> Value:
        if v.ranks == tuple(ranks):
            return v
        if set(v.ranks) != set(ranks):
            return Value(self.broadcast(self.view(v, ranks), ranks), ranks)
        return Value(self.view(v, ranks), ranks)

    def permute(self, code: str, dims) -> str:
        return f"{code}.permute({', '.join(map(str, dims))})"

    def broadcast(self, code: str, ranks) -> str:
        """`code` (broadcastable against `ranks`) at the full size of every rank."""
        return f"{code}.expand({', '.join(self.size(r) for r in ranks)})"

    # -- one translation per IR operator -------------------------------------------------------------------------
    def node(self, e: ir.Expr, ctx: Context, target: str | None = None) -> Value:
        r = ctx.rank
        match e:
            case ir.Input(name=name, ranks=ranks):
                v = Value(self.inputs[name], ranks)
                return self.slice(v, ctx, target)
            case ir.Const(value=value):
                key = const_code(value)
                if key not in self.consts:      # defined once, at the top of the function
                    self.consts[key] = lower.identifier(f"const{len(self.consts)}", self.taken)
                v = Value(self.consts[key], ())
                return self.assign(target, v.code, ()) if target else v
            case ir.Last(rank=rank, arg=ir.Ref(name=name)) if rank == ctx.last_rank and name in ctx.last:
                v = ctx.last[name]
                return self.assign(target, v.code, v.ranks, f"S_last_{rank}: after the loop") if target else v
            case ir.Ref(name=name):
                if name in ctx.local:
                    v = ctx.local[name]
                else:
                    v = self.slice(self.whole[name], ctx, None)
                return self.assign(target, v.code, v.ranks) if target else v
            case ir.Reduce(op="add", rank=rank, arg=ir.Map(op="mul", space=space, args=args) as product) if (
                    self.contraction(e, ctx)):
                space = tuple(x for x in space if x != r)
                values = [self.node(a, ctx) for a in args]
                letters = {x: LETTERS[i] for i, x in enumerate(space)}
                out = tuple(x for x in space if x != rank)
                spec = ",".join("".join(letters[x] for x in v.ranks) for v in values)
                spec += "->" + "".join(letters[x] for x in out)
                return self.assign(target, f"torch.einsum(\"{spec}\", {', '.join(v.code for v in values)})", out,
                                   f"{map_name('mul', product.space)}_R_add_{rank}")
            case ir.Map(op=op, space=space, args=args):
                if op not in lower.ELEMENTWISE:
                    raise fail(self.program, e, f"operator '{operator_name(e)}' ({op}) has no {self.target} "
                               "translation")
                space = tuple(x for x in space if x != r)
                values = [self.node(a, ctx) for a in args]
                code = lower.elementwise(op, [self.view(v, space) for v in values], self.lib)
                carried = {x for v in values for x in v.ranks}
                if any(x not in carried for x in space):
                    code = self.broadcast(f"({code})", space)
                return self.assign(target, code, space, operator_name(e) or "")
            case ir.Reduce(op=op, rank=rank, arg=arg):
                if op not in REDUCE:
                    raise fail(self.program, e, f"reduction '{op}' has no torch translation")
                v = self.node(arg, ctx)
                i = v.ranks.index(rank)
                return self.assign(target, REDUCE[op].format(v.code, i), v.ranks[:i] + v.ranks[i + 1:],
                                   f"R_{op}_{rank}")
            case ir.Split(rank=rank, outer=outer, inner=inner, arg=arg) if outer == r:
                v = self.node(arg, ctx)
                i = v.ranks.index(rank)
                step = self.ragged.get(inner, self.size(inner))
                code = f"{v.code}.narrow({i}, {ctx.k} * {step}, {self.size(inner)})"
                code += ".to(dtype)" if self.ragged else ""
                return self.assign(target, code, v.ranks[:i] + (inner,) + v.ranks[i + 1:],
                                   f"tile {ctx.k} of T_split_{rank}_{outer}{inner}")
            case ir.Split(rank=rank, outer=outer, inner=inner, arg=arg):
                v = self.node(arg, ctx)
                i = v.ranks.index(rank)
                shape = [f"{v.code}.shape[{j}]" for j in range(len(v.ranks))]
                shape[i:i + 1] = [self.size(outer), self.size(inner)]
                return self.assign(target, f"{v.code}.reshape({', '.join(shape)})",
                                   v.ranks[:i] + (outer, inner) + v.ranks[i + 1:], f"T_split_{rank}_{outer}{inner}")
            case ir.Unsplit(outer=outer, inner=inner, rank=rank, arg=arg):
                v = self.node(arg, ctx)
                order = [x for x in v.ranks if x != inner]
                j = order.index(outer)
                order.insert(j + 1, inner)
                aligned = self.view(v, tuple(order))
                ranks = tuple(rank if x == outer else x for x in order if x != inner)
                shape = [self.size(x) for x in ranks]
                return self.assign(target, f"{aligned}.reshape({', '.join(shape)})", ranks,
                                   f"T_unsplit_{outer}{inner}_{rank}")
            case ir.Prev(name=name):
                v = ctx.prev[name]
                return self.assign(target, v.code, v.ranks) if target else v
            case ir.Shift(rank=rank, arg=ir.Ref(name=name), init=init) if rank == r:
                v = ctx.shifted[(name, init)]
                return self.assign(target, v.code, v.ranks, f"S_shift_{rank}: the step before") if target else v
            case ir.Shift(rank=rank, arg=arg, init=init):
                v = self.node(arg, ctx)
                i = v.ranks.index(rank)
                rest = v.ranks[:i] + v.ranks[i + 1:]
                first = self.ordered(self.node(init, ctx), rest)
                code = (f"torch.cat([{first.code}.unsqueeze({i}), {v.code}.narrow({i}, 0, "
                        f"{self.size(rank)} - 1)], dim={i})")
                return self.assign(target, code, v.ranks, f"S_shift_{rank}")
            case ir.Last(rank=rank, arg=arg):
                v = self.node(arg, ctx)
                i = v.ranks.index(rank)
                return self.assign(target, f"{v.code}.select({i}, -1)", v.ranks[:i] + v.ranks[i + 1:],
                                   f"S_last_{rank}")
            case ir.Scan():
                return self.scan(e, ctx, target)
            case ir.Var():      # a rule's pattern variable: a program to run has none
                raise fail(self.program, e, f"operator '{operator_name(e) or type(e).__name__}' has no torch "
                           "translation")
            case _:
                assert_never(e)

    # -- bindings and the tile loop (shared by both targets) ------------------------------------------------------
    def name_bindings(self, lay: lower.Layout) -> dict[str, str]:
        self.names = {name: lower.identifier(name, self.taken) for name in lay.names
                      if not isinstance(self.program.bindings[name].expr, ir.Input)}
        return self.names

    def where(self, b: ir.Binding) -> str:
        return str(Location(self.program.file, b.line))

    def bind(self, name: str, ctx: Context) -> Value:
        b = self.program.bindings[name]
        if isinstance(b.expr, ir.Input):
            return self.node(b.expr, ctx)
        self.line(f"# {self.where(b)}  {name}")
        return self.node(b.expr, ctx, self.names[name])

    def tile_loop(self, lay: lower.Layout, whole: Context, header: str, k: str, cast, on_step=None, carry=(),
                  first=()):
        """Initial scan states and S_shift values, then the loop over lay.rank computing lay.loop one step at a
        time, updating the states at the end of each step. Returns the context of the last step (its `local`
        values, `states` by binding and `shifted` values by (binding, fill)) and every loop binding's ranks at one
        step. The bindings in `carry` are carried like S_shift values (key (name, None); initially 0, never read
        before step 0 sets them), so that after the loop they hold the last step's value where a loop's variables
        do not outlive it (Triton)."""
        r, bindings = lay.rank, self.program.bindings
        states: dict[str, Value] = {}
        shifted: dict[tuple[str, ir.Expr | None], Value] = {}
        loop_ranks = {name: tuple(x for x in self.env[name] if x != r) for name in lay.loop}
        self.line(f"# the tile loop over {r}: {', '.join(lay.loop)}")
        for name in lay.loop:
            e = bindings[name].expr
            if isinstance(e, ir.Scan):
                state = self.state_ranks(e, whole)
                loop_ranks[name] = state
                init = self.ordered(self.node(e.init, whole), state)
                states[name] = self.assign(lower.identifier(f"{name}_state", self.taken), cast(init.code), state,
                                           f'initial state of S_scan_{r} "{e.name}" ({name})')
        for name, fill in lower.shift_fills(self.program, lay):
            init = self.ordered(self.node(fill, whole), loop_ranks[name])
            shifted[(name, fill)] = self.assign(lower.identifier(f"{name}_before", self.taken), cast(init.code),
                                                loop_ranks[name], f"S_shift_{r} {name}: its value at step -1")
        for name in sorted(set(carry)):
            zero = self.ordered(self.node(ir.Const(0.0), whole), loop_ranks[name])
            shifted[(name, None)] = self.assign(lower.identifier(f"{name}_last", self.taken), cast(zero.code),
                                                loop_ranks[name], f"{name} after the last step")
        self.line(header)
        self.indent += 1
        for text in first:
            self.line(text)
        for inner, step in self.ragged.items():     # this tile's size: the last one may be shorter
            split_rank = lay.sizes.inner[inner][0]
            self.line(f"size_{inner} = min({step}, size_{split_rank} - {k} * {step})")
        ctx = Context(r, k, {}, {}, shifted)
        ctx.states = states
        for name in lay.loop:
            e = bindings[name].expr
            if isinstance(e, ir.Scan):
                self.line(f"# {self.where(bindings[name])}  {name}: S_scan_{r} \"{e.name}\", step {k}")
                ctx.prev = {e.name: states[name]}
                v = self.node(e.body, ctx, self.names[name])
                ctx.prev = {}
            else:
                v = self.bind(name, ctx)
            if name in self.names and v.ranks != loop_ranks[name]:
                v = self.assign(self.names[name], self.ordered(v, loop_ranks[name]).code, loop_ranks[name])
            ctx.local[name] = v
            if on_step:
                on_step(name, v)
        for name in lay.loop:
            if name in states:
                self.line(f"{states[name].code} = {ctx.local[name].code}")
        for key in sorted(shifted, key=lambda key: shifted[key].code):
            self.line(f"{shifted[key].code} = {ctx.local[key[0]].code}")
        self.indent -= 1
        return ctx, loop_ranks

    def contraction(self, e: ir.Reduce, ctx: Context) -> bool:
        """A sum of a product is one einsum when every rank of the space is carried by an operand."""
        if not isinstance(e.arg, ir.Map):
            return False
        space = [x for x in e.arg.space if x != ctx.rank]
        carried: set[str] = set()
        for a in e.arg.args:
            carried |= set(self.ranks_of(a, ctx))
        return all(x in carried for x in space)

    def ranks_of(self, e: ir.Expr, ctx: Context) -> tuple[str, ...]:
        checker = RankChecker(self.program.file, dict(self.env))
        prev = {name: (ctx.rank, (ctx.rank,) + v.ranks) for name, v in ctx.prev.items()}
        ranks = checker.ranks(e, prev)
        return tuple(x for x in ranks if x != ctx.rank)

    def slice(self, v: Value, ctx: Context, target: str | None) -> Value:
        if ctx.rank is None or ctx.rank not in v.ranks:
            return self.assign(target, v.code, v.ranks) if target else v
        i = v.ranks.index(ctx.rank)
        return self.assign(target, f"{v.code}.select({i}, {ctx.k})", v.ranks[:i] + v.ranks[i + 1:])

    def state_ranks(self, e: ir.Scan, ctx: Context) -> tuple[str, ...]:
        checker = RankChecker(self.program.file, dict(self.env))
        prev = {name: (ctx.rank, (ctx.rank,) + v.ranks) for name, v in ctx.prev.items()}
        ranks = checker.scan(e, prev)
        return tuple(x for x in ranks if x != e.rank)

    def scan(self, e: ir.Scan, ctx: Context, target: str | None) -> Value:
        """A scan outside the tile loop: a loop of its own over e.rank, whose states are stacked."""
        if ctx.rank is not None:
            raise fail(self.program, e, f"a scan over '{e.rank}' inside the loop over '{ctx.rank}' has no torch "
                       "translation")
        state_ranks = self.state_ranks(e, ctx)
        init = self.ordered(self.node(e.init, ctx), state_ranks)
        state = self.assign(self.fresh("state"), init.code, state_ranks, f'S_scan_{e.rank} "{e.name}"')
        steps = self.fresh("steps")
        self.line(f"{steps} = []")
        k = self.fresh("k")
        self.line(f"for {k} in range({self.size(e.rank)}):")
        self.indent += 1
        inner = Context(e.rank, k, {}, {e.name: state}, {})
        out = self.ordered(self.node(e.body, inner), state_ranks)
        self.line(f"{state.code} = {out.code}")
        self.line(f"{steps}.append({state.code})")
        self.indent -= 1
        return self.assign(target, f"torch.stack({steps}, dim=0)", (e.rank,) + state_ranks)


def header(program: ir.Program, text: str, target: str, origin: str | None = None) -> list[str]:
    """The module docstring: where the code comes from (the sha256 of the program text ties it to a certificate)."""
    if not program.outputs:
        raise lower.CodegenError(f"{program.file} has no (extract NAME): nothing to generate",
                                 lower.Location(program.file, None))
    return [
        f'"""Generated by `{origin or f"verify codegen {program.file} --target {target}"}`: do not edit.',
        "",
        f"Source: {program.file} (sha256 {lower.source_hash(text)}...). One function per extracted output;",
        "the code is a translation of the program's IR, operator by operator (verify/codegen); `verify codegen`",
        "runs it against the reference evaluator (verify/evaluate.py) before writing it (codegen/validate.py).",
        '"""',
        "",
    ]


def generate(program: ir.Program, text: str = "", origin: str | None = None) -> str:
    """The module's source text."""
    env = program_ranks(program)
    lines = header(program, text, "torch", origin) + ["import math", "", "import torch", ""]
    taken: set[str] = set()
    for output, _ in program.outputs:
        lines += ["", *function(program, env, output, taken), ""]
    return "\n".join(lines).rstrip() + "\n"


def function(program: ir.Program, env, output: str, taken: set[str], ragged: str | None = None,
             fname: str | None = None) -> list[str]:
    """One function per output. `ragged` (the drop-in attention, attention.py): the tile loop's split takes this
    keyword, a tile size, instead of a tile count; the tiles are ceil(M / size), the last one shorter."""
    lay = lower.layout(program, output, env)
    em = Emitter(program, env)
    if ragged:
        if lay.rank is None or lay.stacked:
            raise fail(program, program.bindings[output].expr, f"output '{output}' has no tile loop that keeps one "
                       "tile at a time: no drop-in attention()")
        em.ragged = {inner: ragged for inner, (_, outer) in lay.sizes.inner.items() if outer == lay.rank}
    em.taken |= {"torch", "math", "dtype", "device"} | {f"size_{x}" for x in lay.sizes.order}
    em.taken |= {kw for kw, _, _ in lay.sizes.tiles.values()} | ({ragged} if ragged else set())
    em.inputs = {node.name: lower.identifier(node.name, em.taken) for node in lay.inputs}
    fname = lower.identifier(fname or output, taken)
    args = ", ".join(em.inputs[n.name] for n in lay.inputs)
    kwargs = ", ".join(ragged if ragged and outer == lay.rank else f"{kw}={default if default is not None else 'None'}"
                       for outer, (kw, default, _) in lay.sizes.tiles.items())
    signature = f"def {fname}({args}{', *, ' + kwargs if kwargs else ''}):"
    out_ranks = env[output]
    doc = [f'"""{output}[{", ".join(out_ranks)}] of {program.file}.', ""]
    for node in lay.inputs:
        kind = " (a mask: 0 keeps, -inf masks)" if node.kind == "mask" else ""
        doc.append(f"{em.inputs[node.name]}: a tensor with dimensions [{', '.join(node.ranks)}]{kind}")
    for kw, _default, split in lay.sizes.tiles.values():
        doc.append(lower.tile_doc(kw, split))
    if lay.rank:
        doc.append(f"The loop over {lay.rank} computes {', '.join(lay.loop)} one tile at a time.")
    doc.append('"""')
    em.line(doc[0])
    for d in doc[1:]:
        em.line(d if d else "")
    prologue(em, lay, ragged)
    const_at = len(em.lines)
    bindings = program.bindings
    names = em.name_bindings(lay)
    binding = em.bind

    whole_ctx = Context()
    for name in lay.before:
        em.whole[name] = binding(name, whole_ctx)
    if lay.rank:
        r = lay.rank
        k = "k"
        em.taken.add(k)
        em.line(f"# the tile loop over {r}: {', '.join(lay.loop)}")
        for name in sorted(lay.stacked):
            em.line(f"{names[name]}_steps = []")

        def on_step(name: str, value: Value) -> None:
            if name in lay.stacked:
                em.line(f"{names[name]}_steps.append({value.code})")

        ctx, loop_ranks = em.tile_loop(lay, whole_ctx, f"for {k} in range(size_{r}):", k, lambda c: c, on_step)
        for name in lay.loop:
            if name in lay.stacked:
                em.whole[name] = em.assign(names[name], f"torch.stack({names[name]}_steps, dim=0)",
                                           (r,) + loop_ranks[name], f"{name}, stacked from its steps")
        last = {name: Value(names[name] if not isinstance(bindings[name].expr, ir.Input) else ctx.local[name].code,
                            loop_ranks[name]) for name in lay.last}
        # after the loop, S_last_r of a loop binding is its value at the last step; `names[name]` still holds it
        # unless it was stacked (then the stacked value's last slice is the same)
        for name in lay.last & lay.stacked:
            last[name] = Value(f"{names[name]}_steps[-1]", loop_ranks[name])
        after_ctx = Context(last_rank=r, last=last)
        for name in lay.after:
            em.whole[name] = binding(name, after_ctx)
    result = em.ordered(em.whole[output], out_ranks)
    em.line(f"return {result.code}")
    em.lines[const_at:const_at] = [f"    {name} = torch.tensor({key}, dtype=dtype, device=device)"
                                   for key, name in em.consts.items()]
    return [signature] + em.lines


def prologue(em: Emitter, lay: lower.Layout, ragged: str | None = None) -> None:
    """dtype, device, input checks and every rank's size (shared with the Triton launcher)."""
    # dtype and device from the first tensor input; scalar inputs may be Python numbers
    tensors = [n for n in lay.inputs if n.ranks]
    if ragged:          # tiles are cast to the dtype of what is not tiled (the queries, in fp32 already)
        tensors = [n for n in tensors if lay.sizes.inner.get(next(iter(em.ragged)), ("",))[0] not in n.ranks]
    if tensors:
        em.line(f"dtype, device = {em.inputs[tensors[0].name]}.dtype, {em.inputs[tensors[0].name]}.device")
    else:
        em.line("dtype, device = torch.get_default_dtype(), torch.device('cpu')")
    for node in lay.inputs:
        arg = em.inputs[node.name]
        if not node.ranks:
            em.line(f"{arg} = torch.as_tensor({arg}, dtype=dtype, device=device)")
        em.line(f"if {arg}.dim() != {len(node.ranks)}:")
        em.line(f"    raise ValueError(f\"input {node.name} must have {len(node.ranks)} dimension(s) "
                f"[{', '.join(node.ranks)}], got shape {{tuple({arg}.shape)}}\")")
    plan = lay.sizes
    for rank in plan.order:
        if rank in plan.from_input:
            name, axis = plan.from_input[rank]
            em.line(f"size_{rank} = {em.inputs[name]}.shape[{axis}]")
        elif rank in plan.tiles and ragged and rank == lay.rank:
            split = plan.tiles[rank][2]
            em.line(f"if not isinstance({ragged}, int) or {ragged} < 1:")
            em.line(f"    raise ValueError(f\"{ragged} = {{{ragged}!r}}: a tile size must be a positive integer\")")
            em.line(f"size_{rank} = -(-size_{split.rank} // {ragged})")
        elif rank in plan.inner and ragged and plan.inner[rank][1] == lay.rank:
            em.line(f"size_{rank} = {ragged}")
        elif rank in plan.tiles:
            kw, default, split = plan.tiles[rank]
            em.line(f"size_{rank} = {kw}")
            em.line(f"if not isinstance({kw}, int) or {kw} < 1 or size_{split.rank} % {kw}:")
            em.line(f"    raise ValueError(f\"{kw} = {{{kw}!r}} tiles: rank {split.rank} of size {{size_{split.rank}}} "
                    f"must be a positive multiple of it\")")
        elif rank in plan.inner:
            whole, outer = plan.inner[rank]
            em.line(f"size_{rank} = size_{whole} // size_{outer}")
        else:
            outer, inner = plan.product[rank]
            em.line(f"size_{rank} = size_{outer} * size_{inner}")
    for rank, name, axis in plan.checks:
        arg = em.inputs[name]
        em.line(f"if {arg}.shape[{axis}] != size_{rank}:")
        em.line(f"    raise ValueError(f\"rank {rank}: input {name} has size {{{arg}.shape[{axis}]}}, "
                f"another input {{size_{rank}}}\")")
