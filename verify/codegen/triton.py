"""IR -> a Triton kernel for cascades with one iterative rank (the 1-pass family), with a torch launcher.

The kernel is FlashAttention-2's shape, generated from the program's IR by `lower.layout`:
- one program instance per block of BLOCK_P queries (the grid runs over the output's parallel rank `p`);
- everything that does not depend on the tile loop (Q, a scaled Q, ...) is loaded or computed once, in registers;
- one loop over the tiles k of the iterative rank: `T_split_m_m1m0 X` at k is a masked load of X's columns
  k*M0 .. k*M0+M0-1; the scan states (`S_scan`) and the values of the step before (`S_shift`) are loop-carried
  registers; after the loop `S_last` is the final state; the outputs are stored with masks.

Every rank is a block of a power-of-two size (at least 16, for `tl.dot`) with a mask for the real size, so
M0 need not be a power of two. Lanes outside the mask are never read as data: a reduction over a rank replaces
them with its identity (0 for add, -inf for max), a contraction zeroes them in both operands, a store skips them.

The operators translate as in the torch target (verify/codegen/torch.py), with the reference semantics of
verify/evaluate.py: `x / 0` is NaN, max propagates NaN, fin(-inf) = 0, log 0 = -inf. Under
`TRITON_INTERPRET=1` the kernel runs on the CPU (numpy), which is how the tests check it.
"""

from __future__ import annotations

from .. import ir
from ..notation import map_name, operator_name
from ..shapes import program_ranks
from . import lower
from .lower import fail
from .torch import Context, Emitter, Value, const_code, header, prologue

TRITON = lower.Primitives(where="tl.where", nan='float("nan")', neginf='float("-inf")',
                          maximum="tl.maximum({0}, {1}, propagate_nan=tl.PropagateNan.ALL)", exp="tl.exp",
                          log="tl.log")
REDUCE = {"add": ("tl.sum", "0.0"), "max": ("tl.max", "float(\"-inf\")")}
MIN_BLOCK = 16


class KernelEmitter(Emitter):
    """Values are register blocks; ranks map to block dimensions (`BLOCK_<rank>`). Maps are the torch emitter's
    (one elementwise lowering, `lower.elementwise`) over Triton's primitives."""

    target = "Triton"
    lib = TRITON

    def __init__(self, program, env, lay: lower.Layout, grid_rank: str, tiled: dict[str, str]):
        super().__init__(program, env)
        self.lay = lay
        self.grid_rank = grid_rank
        self.tiled = tiled              # split rank -> inner rank (m -> m0), loaded tile by tile
        self.loaded: dict[str, Value] = {}
        self.prescale: str | None = None    # the drop-in attention: this input (Q) is multiplied by `scale`

    def block(self, rank: str) -> str:
        return f"BLOCK_{rank.upper()}"

    def shape(self, ranks) -> str:
        return "(" + ", ".join(self.block(x) for x in ranks) + ("," if len(ranks) == 1 else "") + ")"

    def mask(self, rank: str, space) -> str:
        if len(space) == 1:
            return f"mask_{rank}"
        return f"mask_{rank}[{', '.join(':' if x == rank else 'None' for x in space)}]"

    def permute(self, code: str, dims) -> str:
        return f"tl.permute({code}, ({', '.join(map(str, dims))}{',' if len(dims) == 1 else ''}))"

    def broadcast(self, code: str, ranks) -> str:
        return f"tl.broadcast_to({code}, {self.shape(ranks)})"

    def load(self, node: ir.Input, tile: tuple[str, str, str] | None, at: tuple[str, str] | None = None) -> Value:
        """A masked load of input `node` (of one tile (rank, inner, k) of it; of its slice `at` = (rank, k) where
        it carries the loop's rank itself, as `L[m1,p]` under `S_scan_m1`)."""
        ptr = f"{self.inputs[node.name]}_ptr"
        base = f"{at[1]} * stride_{self.inputs[node.name]}_{at[0]} + " if at else ""
        kept = tuple(x for x in node.ranks if not at or x != at[0])
        if not kept:
            return self.assign(None, f"tl.load({ptr} + {base}0).to(DTYPE)", (), f"input {node.name}")
        ranks = tuple(tile[1] if tile and x == tile[0] else x for x in kept)
        offsets, masks = [], []
        for x, y in zip(kept, ranks):
            idx = "" if len(ranks) == 1 else f"[{', '.join(':' if z == y else 'None' for z in ranks)}]"
            off = f"offs_{y}{idx}"
            if tile and x == tile[0]:
                off = f"({tile[2]} * size_{y} + {off})"
            offsets.append(f"{off} * stride_{self.inputs[node.name]}_{x}")
            masks.append(self.mask(y, ranks))
        what = f"tile {tile[2]} of input {node.name}" if tile else f"input {node.name}"
        what += f" at {at[0]} = {at[1]}" if at else ""
        code = f"tl.load({ptr} + {base}{' + '.join(offsets)}, mask={' & '.join(masks)}, other=0.0).to(DTYPE)"
        if node.name == self.prescale:
            code = f"{code} * scale"
        return self.assign(None, code, ranks, what)

    def resolve(self, e: ir.Expr) -> ir.Expr:
        """A reference to `(let K (CreateTensor "K"))` is the input itself (loaded, not computed)."""
        if isinstance(e, ir.Ref) and e.name not in self.whole:
            bound = self.program.bindings[e.name].expr
            if isinstance(bound, ir.Input):
                return bound
        return e

    def node(self, e: ir.Expr, ctx: Context, target: str | None = None) -> Value:
        r = ctx.rank
        e = self.resolve(e)
        if isinstance(e, ir.Split):
            e = ir.Split(e.rank, e.outer, e.inner, e.tiles, self.resolve(e.arg), e.line)
        match e:
            case ir.Input(name=name, ranks=ranks) if r is not None and r in ranks:
                if any(x in self.tiled for x in ranks):
                    raise fail(self.program, e, f"input '{name}' is used whole along the tiled rank "
                               f"{', '.join(x for x in ranks if x in self.tiled)}", "use --target torch")
                v = self.load(e, None, (r, ctx.k))
                return self.assign(target, v.code, v.ranks) if target else v
            case ir.Input(name=name, ranks=ranks) if self.lay.rank in ranks:
                raise fail(self.program, e, f"input '{name}' is used whole along the loop's rank '{self.lay.rank}' "
                           "outside the tile loop; the Triton kernel reads it one step at a time",
                           "use --target torch")
            case ir.Input(name=name, ranks=ranks):
                if any(x in self.tiled for x in ranks):
                    raise fail(self.program, e, f"input '{name}' is used whole along the tiled rank "
                               f"{', '.join(x for x in ranks if x in self.tiled)}; the Triton kernel reads it "
                               "only tile by tile (through T_split)", "use --target torch")
                if name not in self.loaded:
                    self.loaded[name] = self.load(e, None)
                v = self.loaded[name]
                return self.assign(target, v.code, v.ranks) if target else v
            case ir.Split(rank=rank, outer=outer, inner=inner, arg=ir.Input() as node) if outer == r:
                v = self.load(node, (rank, inner, ctx.k))
                return self.assign(target, v.code, v.ranks) if target else v
            case ir.Split() | ir.Unsplit():
                raise fail(self.program, e, f"'{operator_name(e)}' has no Triton translation here: the kernel "
                           "tiles only inputs, by the loop's rank", "use --target torch")
            case ir.Const(value=value):
                key = const_code(value).replace("math.inf", 'float("inf")').replace("math.nan", 'float("nan")')
                code = f"tl.full([], {key}, DTYPE)"
                return self.assign(target, code, ()) if target else Value(code, ())
            case ir.Reduce(op="add", rank=rank, arg=ir.Map(op="mul", space=space, args=(a, b))) if self.dot(e, ctx):
                va, vb = self.node(a, ctx), self.node(b, ctx)
                (i,) = [x for x in va.ranks if x != rank]
                (j,) = [x for x in vb.ranks if x != rank]
                if [x for x in space if x in (i, j)] == [j, i]:
                    # the product commutes: put the operands so that the result comes out in the map's rank order,
                    # which is the binding's, instead of transposing the result (a layout change on a GPU)
                    va, vb, i, j = vb, va, j, i
                left = f"tl.where({self.mask(rank, (i, rank))}, {self.view(va, (i, rank))}, 0.0)"
                right = f"tl.where({self.mask(rank, (rank, j))}, {self.view(vb, (rank, j))}, 0.0)"
                left, right = f"({left}).to(DOT_DTYPE)", f"({right}).to(DOT_DTYPE)"
                return self.assign(target, f"tl.dot({left}, {right}, input_precision=PRECISION, out_dtype=DTYPE)",
                                   (i, j), f"{map_name('mul', space)}_R_add_{rank}")
            case ir.Reduce(op=op, rank=rank, arg=arg):
                v = self.node(arg, ctx)
                axis = v.ranks.index(rank)
                fn, identity = REDUCE[op]
                code = f"{fn}(tl.where({self.mask(rank, v.ranks)}, {v.code}, {identity}), axis={axis})"
                return self.assign(target, code, v.ranks[:axis] + v.ranks[axis + 1:], f"R_{op}_{rank}")
            case ir.Scan() | ir.Shift() | ir.Last() if r is None and not ctx.last:
                raise fail(self.program, e, f"'{operator_name(e)}' outside the tile loop has no Triton translation",
                           "use --target torch")
        return super().node(e, ctx, target)

    def dot(self, e: ir.Reduce, ctx: Context) -> bool:
        if not isinstance(e.arg, ir.Map):
            return False
        a, b = e.arg.args
        ra, rb = self.ranks_of(a, ctx), self.ranks_of(b, ctx)
        return (len(ra) == 2 and len(rb) == 2 and e.rank in ra and e.rank in rb
                and len(set(ra) | set(rb)) == 3)


def generate(program: ir.Program, text: str = "", origin: str | None = None) -> str:
    env = program_ranks(program)
    lines = header(program, text, "triton", origin) + [
        "import math",
        "import os",
        "",
        "import torch",
        "import triton",
        "import triton.language as tl",
        "",
        "DTYPES = {torch.float64: tl.float64, torch.float32: tl.float32, torch.float16: tl.float16,",
        "          torch.bfloat16: tl.bfloat16}",
        "",
        "",
        "def _block(n):",
        f"    return max({MIN_BLOCK}, triton.next_power_of_2(n))",
        "",
    ]
    taken: set[str] = {"DTYPES", "torch", "triton", "tl"}
    for output, line in program.outputs:
        lines += ["", *kernel(program, env, output, line, taken), ""]
    return "\n".join(lines).rstrip() + "\n"


def kernel(program: ir.Program, env, output: str, line, taken: set[str]) -> list[str]:
    kernel_lines, em, lay, block_ranks, kname = kernel_body(program, env, output, line, taken)
    return kernel_lines + ["", ""] + launcher(program, env, output, taken, em, lay, block_ranks, kname)


def kernel_body(program: ir.Program, env, output: str, line, taken: set[str], drop: bool = False,
                prescale: str | None = None):
    """The @triton.jit kernel of one output. `drop` (the drop-in attention, attention.py): a second grid axis over
    batch x heads offsets every pointer (query-side inputs, those with rank p, by the head; the others by the key
    head, head // group), the loop's tiles have the fixed size BLOCK of their inner rank with the last one masked
    beyond the split rank's size, and `prescale` names an input multiplied by `scale` as it is loaded."""
    lay = lower.layout(program, output, env)
    where = lower.Location(program.file, line)
    if lay.rank is None:
        raise lower.CodegenError(f"output '{output}' has no tile loop (no S_scan over one rank): the Triton target "
                                 "generates kernels for the 1-pass family only", where,
                                 "use --target torch, or `verify optimize` the program to a 1-pass form first")
    if lay.stacked:
        raise lower.CodegenError(f"output '{output}' needs {', '.join(sorted(lay.stacked))} for every tile after the "
                                 "loop; the Triton kernel keeps only the current tile", where, "use --target torch")
    r = lay.rank
    out_ranks = env[output]
    reduced = {n.rank for name in lay.names for n in ir.walk(program.bindings[name].expr)
               if isinstance(n, (ir.Reduce, ir.Scan))}
    splits = [n for name in lay.names for n in ir.walk(program.bindings[name].expr) if isinstance(n, ir.Split)]
    if "p" not in out_ranks or "p" in reduced or any("p" in (s.rank, s.outer, s.inner) for s in splits):
        raise lower.CodegenError(f"output '{output}' has no parallel query rank 'p' to spread over the grid", where,
                                 "use --target torch")
    tiled = {s.rank: s.inner for s in splits if s.outer == r}
    em = KernelEmitter(program, env, lay, "p", tiled)
    em.prescale = prescale
    kname = lower.identifier(f"_{output}_{'attention' if drop else 'kernel'}", taken)
    em.taken |= {"tl", "triton", "torch", "DTYPE", "DOT_DTYPE", "PRECISION", "pid", "k", "scale", "heads", "group"}
    em.inputs = {node.name: lower.identifier(node.name, em.taken) for node in lay.inputs}
    block_ranks = [x for x in lay.sizes.order if x != r and x not in tiled and x not in lay.sizes.product]
    em.taken |= {f"size_{x}" for x in lay.sizes.order} | {f"BLOCK_{x.upper()}" for x in block_ranks}
    params = [f"{em.inputs[n.name]}_ptr" for n in lay.inputs] + ["out_ptr"]
    params += [f"stride_{em.inputs[n.name]}_{x}" for n in lay.inputs for x in n.ranks]
    params += [f"stride_out_{x}" for x in out_ranks]
    ragged = {inner: whole for inner, (whole, outer) in lay.sizes.inner.items() if outer == r} if drop else {}
    params += [f"size_{x}" for x in lay.sizes.order if not drop or (x != r and x not in ragged)]
    if drop:
        params += [f"stride_{em.inputs[n.name]}_{x}" for n in lay.inputs if n.ranks for x in ("b", "h")]
        params += ["stride_out_b", "stride_out_h", "heads", "group"] + (["scale"] if prescale else [])
    params += [f"BLOCK_{x.upper()}: tl.constexpr" for x in block_ranks]
    params += ["DTYPE: tl.constexpr", "DOT_DTYPE: tl.constexpr", "PRECISION: tl.constexpr"]
    em.line("pid = tl.program_id(0)")
    if drop:            # this program's batch and head; 64-bit offsets (batch x heads x L x E can pass 2^31)
        em.line("pid_z = tl.program_id(1)")
        em.line("off_b = (pid_z // heads).to(tl.int64)")
        em.line("off_h = (pid_z % heads).to(tl.int64)")
        for n in lay.inputs:
            if n.ranks:
                head = "off_h" if "p" in n.ranks else "(off_h // group)"
                ptr = f"{em.inputs[n.name]}_ptr"
                em.line(f"{ptr} += off_b * stride_{em.inputs[n.name]}_b + {head} * stride_{em.inputs[n.name]}_h")
        em.line("out_ptr += off_b * stride_out_b + off_h * stride_out_h")
        for inner in ragged:
            em.line(f"size_{inner} = BLOCK_{inner.upper()}")
        for split in (node for _, _, node in lay.sizes.tiles.values() if node.outer == r):
            em.line(f"size_{r} = tl.cdiv(size_{split.rank}, BLOCK_{split.inner.upper()})")
    for x in block_ranks:
        start = "pid * BLOCK_P + " if x == "p" else ""
        em.line(f"offs_{x} = {start}tl.arange(0, BLOCK_{x.upper()})")
        em.line(f"mask_{x} = offs_{x} < size_{x}")
    bindings = program.bindings
    em.name_bindings(lay)
    binding = em.bind

    whole = Context()
    for name in lay.before:
        if not isinstance(bindings[name].expr, ir.Input):
            em.whole[name] = binding(name, whole)
    for node in lay.inputs:                 # loaded once, before the loop
        if not any(x in tiled or x == r for x in node.ranks) and node.name not in em.loaded:
            em.loaded[node.name] = em.load(node, None)
    carry = {name for name in lay.last if not isinstance(bindings[name].expr, ir.Scan)}
    first = [f"mask_{inner} = k * BLOCK_{inner.upper()} + offs_{inner} < size_{split_rank}"
             for inner, split_rank in ragged.items()]      # the last tile: lanes beyond the split rank's size
    ctx, loop_ranks = em.tile_loop(lay, whole, f"for k in range(0, size_{r}):", "k", lambda c: f"({c}).to(DTYPE)",
                                   carry=carry, first=first)
    # after the loop, S_last of a scan is its state variable, of another loop binding its carried value
    last = {name: ctx.shifted[(name, None)] if name in carry else ctx.states[name] for name in lay.last}
    after = Context(last_rank=r, last=last)
    for name in lay.after:
        em.whole[name] = binding(name, after)
    result = em.ordered(em.whole[output], out_ranks)
    offsets = " + ".join(
        f"offs_{x}{'' if len(out_ranks) == 1 else '[' + ', '.join(':' if y == x else 'None' for y in out_ranks) + ']'}"
        f" * stride_out_{x}" for x in out_ranks)
    masks = " & ".join(em.mask(x, out_ranks) for x in out_ranks)
    em.line(f"tl.store(out_ptr + {offsets}, ({result.code}).to(out_ptr.dtype.element_ty), mask={masks})")
    kernel_lines = ["@triton.jit", f"def {kname}(", *[f"    {p}," for p in params], "):"] + em.lines
    return kernel_lines, em, lay, block_ranks, kname


def launcher(program: ir.Program, env, output: str, taken: set[str], em, lay, block_ranks, kname) -> list[str]:
    """The launcher: the torch target's checks and sizes, then one program per block of queries."""
    r, out_ranks = lay.rank, env[output]
    fname = lower.identifier(output, taken)
    launch = Emitter(program, env)
    launch.inputs = em.inputs
    launch.taken = set(em.taken)
    kwargs = [f"{kw}={default if default is not None else 'None'}" for kw, default, _ in lay.sizes.tiles.values()]
    kwargs.append("BLOCK_P=16")
    args = ", ".join(em.inputs[n.name] for n in lay.inputs)
    launch.line(f'"""{output}[{", ".join(out_ranks)}] of {program.file}, as a Triton kernel '
                f"(one program per BLOCK_P queries, a loop over the {r} tiles).")
    launch.line("")
    for kw, _default, split in lay.sizes.tiles.values():
        launch.line(lower.tile_doc(kw, split))
    launch.line('"""')
    prologue(launch, lay)
    launch.line("if dtype not in DTYPES:")
    launch.line("    raise ValueError(f\"the Triton kernel supports {', '.join(map(str, DTYPES))}, not {dtype}\")")
    for node in lay.inputs:
        if not node.ranks:
            launch.line(f"{em.inputs[node.name]} = {em.inputs[node.name]}.reshape(1)")
    launch.line(f"out = torch.empty(({', '.join(f'size_{x}' for x in out_ranks)},), dtype=dtype, device=device)")
    launch.line("grid = (triton.cdiv(size_p, BLOCK_P),)")
    call = [f"{em.inputs[n.name]}" for n in lay.inputs] + ["out"]
    call += [f"{em.inputs[n.name]}.stride({i})" for n in lay.inputs for i in range(len(n.ranks))]
    call += [f"out.stride({i})" for i in range(len(out_ranks))]
    call += [f"size_{x}" for x in lay.sizes.order]
    call += [f"BLOCK_{x.upper()}=_block(size_{x})" for x in block_ranks if x != "p"] + ["BLOCK_P=BLOCK_P"]
    call += ["DTYPE=DTYPES[dtype]", "DOT_DTYPE=DTYPES[dtype]", "PRECISION=\"ieee\""]
    launch.line(f"{kname}[grid](")
    for c in call:
        launch.line(f"    {c},")
    launch.line(")")
    launch.line("return out")
    return [f"def {fname}({args}, *, {', '.join(kwargs)}):"] + launch.lines
