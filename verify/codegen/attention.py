"""The drop-in attention: `attention(query, key, value, scale=None, block_m=None, block_n=None)` in the layout of
`torch.nn.functional.scaled_dot_product_attention`, generated from a program with attention's interface.

Attention's interface: inputs Q[e,p], K[e,m], V[f,m] (and optionally a scalar scale `tau[]`), one output over
{f, p}, and a tile loop over the split of m (the 1-pass family). SDPA's layout is query [batch, heads, L, E],
key [batch, kv_heads, S, E], value [batch, kv_heads, S, Ev] -> [batch, heads, L, Ev]; with kv_heads < heads
(grouped-query attention) query head h reads key head h // (heads / kv_heads), as SDPA's `enable_gqa` does.

How the program becomes the drop-in, and why each step keeps its meaning:
- **batch and heads are parallel ranks**: the torch target evaluates the program with three ranks added in
  front (batch b, key head h, group g): every input and every map gains them, and Q carries g while K and V do
  not, so a group shares its key head by broadcasting (no copy). Nothing reduces or scans over them, so each
  (b, h, g) slice computes exactly the program. The Triton kernel instead runs one program instance per
  (query block, batch x head) and offsets its pointers.
- **queries in blocks of block_m**: p is a parallel rank too, so computing the queries block by block is exact.
- **keys in tiles of block_n**, the last one shorter when block_n does not divide S: the tile loop runs over
  ceil(S / block_n) tiles. Every step of a 1-pass program reduces over its tile (max, sum, contraction), and a
  shorter tile is a tile over fewer keys (torch: a shorter `narrow`; Triton: the lanes beyond S masked to the
  identity of each reduction). This is the program at a tiling with unequal tiles, which its certificate (equal
  tiles, M = M1 * M0) does not cover: it is checked numerically instead, against the reference evaluator at
  ragged sizes before the module is written (validate.py) and against SDPA by the tests.
- **scale**: `scale` (default 1/sqrt(E)) is passed as `tau` to a program that has a scale input; otherwise
  the queries are multiplied by it first, softmax(scale * q k^T) = the program at scale * Q.
- **precision**: fp16 and bf16 inputs are computed in fp32, a tile at a time (each tile cast as it is read);
  the output has the query's dtype.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .. import ir
from ..claims import equiv_claims
from ..errors import VerifyError
from ..gate import check_claims
from ..options import Options
from ..printer import program_text
from ..reader import read_text
from ..shapes import program_ranks
from ..verdict import Verdict
from . import lower, validate
from . import torch as torch_target
from . import triton as triton_target

TORCH_BLOCKS = (256, 1024)         # (block_m, block_n) by default on the CPU: fewer, larger tiles pay less Python
TRITON_BLOCKS = (64, 64)
TRITON_AUTOTUNE = ((64, 64), (128, 64), (64, 128), (128, 128), (128, 32))


@dataclass
class Interface:
    output: str
    scaled: bool                   # the program has a scalar input `tau`, the scale
    batch: tuple[str, str, str]    # fresh rank names for batch, key head, group


def interface(program: ir.Program) -> tuple[Interface | None, str]:
    """The program's attention interface, or None and why it has none."""
    if len(program.outputs) != 1:
        return None, "the program has more than one output"
    output = program.outputs[0][0]
    env = program_ranks(program)
    lay = lower.layout(program, output, env)
    inputs = {node.name: node for node in lay.inputs}
    want = {"Q": ("e", "p"), "K": ("e", "m"), "V": ("f", "m")}
    if any(inputs.get(name) is None or inputs[name].ranks != ranks or inputs[name].kind != "real"
           for name, ranks in want.items()):
        return None, "its inputs are not Q[e,p], K[e,m], V[f,m]"
    extra = set(inputs) - set(want)
    if extra - {"tau"} or ("tau" in extra and inputs["tau"].ranks):
        return None, f"it has inputs other than Q, K, V and a scalar tau ({', '.join(sorted(extra))})"
    if sorted(env[output]) != ["f", "p"]:
        return None, f"its output '{output}' is not over f, p"
    if lay.rank is None or lay.stacked or not any(outer == lay.rank for _, outer in lay.sizes.inner.values()):
        return None, "it has no tile loop over a split of m (only the 1-pass family has a drop-in attention())"
    why = validate.not_attention(program, output) or not_proved_attention(program_text(program), "tau" in inputs)
    if why:
        return None, why
    used = {x for ranks in env.values() for x in ranks}
    fresh = [x for x in "bhgzyxwvu" if x not in used][:3]
    return Interface(output, "tau" in inputs, (fresh[0], fresh[1], fresh[2])), ""


# softmax attention as SDPA computes it, 3-pass, without and with the scale tau on the scores: what attention()
# promises, so what a program must be certified equal to (for all sizes) before it gets one
REFERENCE = """(let Q (CreateTensor "Q"))
(let K (CreateTensor "K"))
(let V (CreateTensor "V"))
{tau}(let QK {scores})
(let GM (R_max_m QK))
(let SN (M_exp_mp (M_sub_mp QK GM)))
(let SD (R_add_m SN))
(let AV (M_mul_fmp_R_add_m (M_div_mp SN SD) V))
(extract AV)
"""


@functools.lru_cache(maxsize=32)
def not_proved_attention(text: str, scaled: bool) -> str:
    """Why the program (its seed text) is not certified equal to softmax attention for all sizes, or ''. The
    numeric comparison before it (`validate.not_attention`) only tries sizes and values: a program that differs
    from attention where a score takes one exact value (a select on `eq`) passes it, and its attention() would
    then disagree with SDPA. Memoized per program text (a codegen run asks once per target)."""
    scores = "(M_mul_mp (M_mul_emp_R_add_e Q K) tau)" if scaled else "(M_mul_emp_R_add_e Q K)"
    reference = REFERENCE.format(tau='(let tau (CreateTensor "tau[]"))\n' if scaled else "", scores=scores)
    try:
        claims = equiv_claims(read_text(reference, "<softmax attention>").program,
                              read_text(text, "<program>").program, name="the program == softmax attention")
        results = check_claims(claims, Options(sympy=False, timeout=60.0))
    except VerifyError as exc:
        return f"it could not be compared with softmax attention ({exc})"
    for result in results:
        if result.verdict is not Verdict.CERTIFIED or not result.bound.is_all_sizes:
            return (f"it is not certified equal to softmax attention for all sizes ({result.verdict.value} "
                    f"{result.bound}; {result.detail or result.method})")
    return ""


def batched(program: ir.Program, face: Interface) -> ir.Program:
    """The program with (batch, key head, group) ranks in front: Q has all three, K and V the first two, every
    map iterates all three (a map whose operands lack one broadcasts along it)."""
    b, h, g = face.batch

    def add(e: ir.Expr) -> ir.Expr:
        if isinstance(e, ir.Input) and e.ranks:
            front = (b, h, g) if "p" in e.ranks else (b, h)
            return ir.Input(e.name, front + e.ranks, e.line, e.kind)
        if isinstance(e, ir.Map):
            return ir.Map(e.op, (b, h, g) + e.space, e.args, e.line)
        return e

    bindings = {name: ir.Binding(name, ir.map_post(add, bnd.expr), bnd.line)
                for name, bnd in program.bindings.items()}
    return ir.Program(program.file, bindings, list(program.outputs), dict(program.sizes))


CHECKS = '''\
    if query.dim() != 4 or key.dim() != 4 or value.dim() != 4:
        raise ValueError(f"query, key, value must be [batch, heads, L, E], [batch, kv_heads, S, E], "
                         f"[batch, kv_heads, S, Ev]; got {tuple(query.shape)}, {tuple(key.shape)}, "
                         f"{tuple(value.shape)}")
    B, H, L, E = query.shape
    _, Hk, S, _ = key.shape
    Ev = value.shape[3]
    if key.shape[0] != B or value.shape[0] != B or key.shape[3] != E or value.shape[:3] != key.shape[:3]:
        raise ValueError(f"query, key, value do not fit: {tuple(query.shape)}, {tuple(key.shape)}, "
                         f"{tuple(value.shape)}")
    if Hk < 1 or H % Hk or S < 1:
        raise ValueError(f"{H} query heads cannot share {Hk} key heads (or S = {S} < 1)")
    if not (query.dtype == key.dtype == value.dtype) or query.dtype not in ACCUMULATE:
        raise ValueError(f"query, key, value must share one of the dtypes {', '.join(map(str, ACCUMULATE))}")
    G = H // Hk
    scale = 1.0 / math.sqrt(E) if scale is None else float(scale)
'''

DOC = '''\
    """softmax(scale * query key^T) value, as torch.nn.functional.scaled_dot_product_attention(query, key, value,
    scale=scale, enable_gqa=True) computes it (no mask, no dropout, not causal), by the tile loop of {file}.

    query [batch, heads, L, E], key [batch, kv_heads, S, E], value [batch, kv_heads, S, Ev] -> [batch, heads, L, Ev];
    heads must be a multiple of kv_heads (query head h reads key head h // (heads // kv_heads)). Any L and S (the
    last block is shorter); float32, float64, float16, bfloat16 inputs (fp16/bf16 computed in fp32, the result in
    the input's dtype). block_m queries and block_n keys at a time (default {bm} and {bn}{tune}).
    """
'''


def torch_attention(program: ir.Program, face: Interface, taken: set[str]) -> list[str]:
    """The torch target's attention(): a tiled function of the batched program, called per block of queries."""
    wide = batched(program, face)
    env = program_ranks(wide)
    inner = torch_target.function(wide, env, face.output, taken, ragged="block_n", fname=f"_{face.output}_tiles")
    fname = inner[0][len("def "):inner[0].index("(")]
    b, h, g = face.batch
    order = env[face.output]                       # the tiled function's result: these ranks, in this order
    perm = ", ".join(str(order.index(x)) for x in (b, h, g, "p", "f"))
    bm, bn = TORCH_BLOCKS
    tau = ", tau=scale" if face.scaled else ""
    lines = [
        "ACCUMULATE = {torch.float64: torch.float64, torch.float32: torch.float32, torch.float16: torch.float32,",
        "              torch.bfloat16: torch.float32}",
        "", "",
        *inner,
        "", "",
        "def attention(query, key, value, scale=None, block_m=None, block_n=None):",
        DOC.format(file=program.file, bm=bm, bn=bn, tune=""),
        CHECKS.rstrip("\n"),
        f"    block_m = {bm} if block_m is None else block_m",
        f"    block_n = {bn} if block_n is None else block_n",
        "    if not isinstance(block_m, int) or block_m < 1:",
        "        raise ValueError(f\"block_m = {block_m!r}: a block size must be a positive integer\")",
        "    acc = ACCUMULATE[query.dtype]",
        "    out = torch.empty((B, H, L, Ev), dtype=query.dtype, device=query.device)",
        "    grouped = out.view(B, Hk, G, L, Ev)      # head h = (key head h // G, group h % G)",
        "    queries = query.view(B, Hk, G, L, E)",
        "    keys, values = key.transpose(2, 3), value.transpose(2, 3)   # K[e,m], V[f,m]: views",
        "    for start in range(0, L, block_m):",
        "        n = min(block_m, L - start)",
        "        q = queries.narrow(3, start, n).to(acc).transpose(3, 4)   # Q[e,p] of this block",
        *([] if face.scaled else ["        q = q * scale"]),
        f"        o = {fname}(Q=q, K=keys, V=values{tau}, block_n=block_n)",
        f"        grouped.narrow(3, start, n).copy_(o.permute({perm}))",
        "    return out",
    ]
    return lines


SDPA_SIZE = {"e": "E", "p": "L", "m": "S", "f": "Ev"}     # the program's ranks in SDPA's names
SDPA_TENSOR = {"Q": "q", "K": "k", "V": "v"}                 # [batch, heads, rank, rank] views of the inputs


def triton_attention(program: ir.Program, face: Interface, taken: set[str]) -> list[str]:
    """The Triton target's attention(): the output's kernel over a grid (query blocks, batch x heads), tiles of a
    fixed size with the last one masked, fp16/bf16 loads computed in fp32 (dots in the input's dtype on a GPU,
    accumulated in fp32, as FlashAttention does; in fp32 under the interpreter, which has no half-precision dot)."""
    env = program_ranks(program)
    line = program.outputs[0][1]
    kernel, em, lay, block_ranks, kname = triton_target.kernel_body(
        program, env, face.output, line, taken, drop=True, prescale=None if face.scaled else "Q")
    tuned = lower.identifier(f"{kname}_tuned", taken)
    inner = next(i for i, (_, outer) in lay.sizes.inner.items() if outer == lay.rank)
    bm, bn = TRITON_BLOCKS
    configs = ", ".join(f'triton.Config({{"BLOCK_P": {m}, "BLOCK_{inner.upper()}": {n}}})' for m, n in TRITON_AUTOTUNE)
    args = []
    for node in lay.inputs:
        ptr = f"{em.inputs[node.name]}_ptr"
        if not node.ranks:
            args.append(f"{ptr}=torch.full((1,), scale, dtype=acc, device=query.device)")
            continue
        t = SDPA_TENSOR[node.name]
        args.append(f"{ptr}={t}")
        args += [f"stride_{em.inputs[node.name]}_{x}={t}.stride({i + 2})" for i, x in enumerate(node.ranks)]
        args += [f"stride_{em.inputs[node.name]}_b={t}.stride(0)", f"stride_{em.inputs[node.name]}_h={t}.stride(1)"]
    args.append("out_ptr=o")
    args += [f"stride_out_{x}=o.stride({2 if x == 'f' else 3})" for x in env[face.output]]
    args += ["stride_out_b=o.stride(0)", "stride_out_h=o.stride(1)", "heads=H", "group=G"]
    args += [f"size_{x}={SDPA_SIZE[x]}" for x in lay.sizes.order if x in SDPA_SIZE]
    args += [f"BLOCK_{x.upper()}=_block({SDPA_SIZE[x]})" for x in block_ranks if x in SDPA_SIZE and x != "p"]
    args += ([] if face.scaled else ["scale=scale"])
    args += ["DTYPE=DTYPES[acc]", "DOT_DTYPE=DTYPES[query.dtype if half else acc]",
             "PRECISION=None if half else \"ieee\""]
    return [
        "ACCUMULATE = {torch.float64: torch.float64, torch.float32: torch.float32, torch.float16: torch.float32,",
        "              torch.bfloat16: torch.float32}",
        "", "",
        *kernel,
        "",
        "",
        f"{tuned} = triton.autotune(configs=[{configs}],",
        "                          key=[\"size_p\", \"size_m\", \"size_e\", \"size_f\"])(" + kname + ")",
        "",
        "",
        "def attention(query, key, value, scale=None, block_m=None, block_n=None):",
        DOC.format(file=program.file, bm=bm, bn=bn, tune="; on a GPU with neither given, autotuned over "
                   + ", ".join(f"{m}x{n}" for m, n in TRITON_AUTOTUNE)).rstrip("\n"),
        CHECKS.rstrip("\n"),
        "    acc = ACCUMULATE[query.dtype]",
        "    interpreted = os.environ.get(\"TRITON_INTERPRET\") == \"1\"",
        "    half = query.dtype in (torch.float16, torch.bfloat16) and not interpreted",
        "    out = torch.empty((B, H, L, Ev), dtype=query.dtype, device=query.device)",
        "    q, k, v, o = (x.transpose(2, 3) for x in (query, key, value, out))   # Q[e,p], K[e,m], V[f,m] per head",
        "    args = dict(",
        *[f"        {a}," for a in args],
        "    )",
        "    if block_m is None and block_n is None and query.is_cuda and not interpreted:",
        f"        {tuned}[lambda meta: (triton.cdiv(L, meta[\"BLOCK_P\"]), B * H)](**args)",
        "        return out",
        f"    block_m = {bm} if block_m is None else block_m",
        f"    block_n = {bn} if block_n is None else block_n",
        "    for size in (block_m, block_n):",
        "        if not isinstance(size, int) or size < 16 or size & (size - 1):",
        "            raise ValueError(f\"block size {size!r}: the Triton kernel needs a power of two >= 16\")",
        f"    {kname}[(triton.cdiv(L, block_m), B * H)](**args, BLOCK_P=block_m, BLOCK_{inner.upper()}=block_n)",
        "    return out",
    ]
