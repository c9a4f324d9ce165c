"""Translation validation of a kernel before it is written: the emitted code is run against the reference evaluator.

The same standard as `optimize`'s validation of egglog's extraction, applied to the last link: the generated
module is executed (torch on the CPU; Triton with `TRITON_INTERPRET=1`, its numpy interpreter) on random inputs
at several size assignments and compared, output by output, with `verify/evaluate.py` in float64. The sizes
include ragged ones (17 queries: a last block of 1 in Triton's BLOCK_P = 16; tiles of 19 keys in a block of
32) and several tile counts (1, 3, 4), so a kernel that is right only at one tiling, or only for full blocks,
is caught. This is a test, not a proof: it checks the translation at the sizes tried, while the certificate
covers the program; both are stated in the kernel's header.

A mismatch (or the code raising) is a `CodegenError` located at the first binding, in file order, whose own
kernel (the program with that binding extracted) differs from the evaluator, so the message points at the
operator the lowering got wrong rather than at the output. Without torch (or triton, for that target) nothing
can be run: `Validation.ran` is False and says why; callers must say so (never a silent pass).
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import os
import warnings
from dataclasses import dataclass, field, replace

import numpy as np

from .. import ir
from ..errors import Location
from ..evaluate import FloatAlgebra, evaluate
from ..shapes import program_ranks
from .lower import CodegenError, layout

# (size of a rank read off an input, size of a tile, tile count): small, ragged against the Triton blocks, one
# tile and several
CASES = ((3, 5, 1), (17, 19, 3), (4, 2, 4))
TOLERANCE = 1e-9         # float64, relative to the largest |value| of the output (rounding is ~1e-15 here)


@dataclass
class Validation:
    target: str
    ran: bool
    reason: str = ""                                        # why it did not run
    sizes: list[dict[str, int]] = field(default_factory=list)
    max_error: float = 0.0

    def summary(self) -> str:
        if not self.ran:
            return f"translation validation: NOT RUN ({self.reason}); the kernel is unchecked"
        shown = "; ".join(",".join(f"{k}={v}" for k, v in s.items()) for s in self.sizes)
        return (f"translation validation: the {self.target} code equals the reference evaluator (float64, random "
                f"inputs) at {len(self.sizes)} size assignments ({shown}); max error {self.max_error:.1e} "
                "relative to the output's largest value")


def module(code: str, name: str) -> dict:
    """Execute generated code; returns its namespace (one function per extracted output)."""
    namespace: dict = {}
    exec(compile(code, f"<generated from {name}>", "exec"), namespace)
    return namespace


def make_inputs(program: ir.Program, output: str, sizes: dict, seed: int = 0, masked_rows=(), tiles=None) -> dict:
    """Normal inputs; masks keep 60% of the keys (and none for the queries in `masked_rows`); scalars 0.125.
    `tiles` (the generated function's tile keywords) sizes inputs that carry a split's ranks (TE[m1,p])."""
    rng = np.random.default_rng(seed)
    out = {}
    sizes = full_sizes(program, output, sizes, tiles or {})
    for node in layout(program, output, program_ranks(program)).inputs:
        shape = tuple(sizes[r] for r in node.ranks)
        if node.kind == "mask":
            mask = np.where(rng.random(shape) < 0.4, -np.inf, 0.0)
            for p in masked_rows if "p" in node.ranks else ():      # every key masked for these queries
                at = [slice(None)] * len(node.ranks)
                at[node.ranks.index("p")] = slice(p, p + 1)
                mask[tuple(at)] = -np.inf
            out[node.name] = mask
        elif not node.ranks:
            out[node.name] = np.array(0.125)
        else:
            out[node.name] = rng.normal(size=shape)
    return out


def full_sizes(program: ir.Program, output: str, sizes: dict, tiles: dict) -> dict:
    """`sizes` with the sizes of split ranks: the generated function's tile keywords (or their defaults) turned into
    sizes, inner ranks the quotient, unsplit ranks the product."""
    plan = layout(program, output, program_ranks(program)).sizes
    full = dict(sizes)
    for rank in plan.order:
        if rank in plan.tiles:
            kw, default, _ = plan.tiles[rank]
            full[rank] = tiles[kw] if kw in tiles else full.get(rank, default)
        elif rank in plan.inner:
            whole, outer = plan.inner[rank]
            full[rank] = full[whole] // full[outer]
        elif rank in plan.product:
            a, b = plan.product[rank]
            full[rank] = full[a] * full[b]
    return full


def reference(program: ir.Program, output: str, sizes: dict, tiles: dict, inputs: dict, dtype=np.float64):
    """The reference evaluator's result, with the generated function's tile keywords turned into sizes."""
    full = full_sizes(program, output, sizes, tiles)
    data = {k: v.astype(dtype) for k, v in inputs.items()}
    return evaluate(program.bindings, [output], full, data, FloatAlgebra(dtype))[output].aligned(
        program_ranks(program)[output]).astype(np.float64)


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want| over the defined elements; inf when the undefined (NaN) elements differ."""
    if not np.array_equal(np.isnan(got), np.isnan(want)):
        return float("inf")
    defined = ~np.isnan(want)
    if not defined.any():
        return 0.0
    return float(np.max(np.abs(got[defined] - want[defined])) / max(np.max(np.abs(want[defined])), 1e-300))


def call(fn, inputs: dict, dtype, **kwargs) -> np.ndarray:
    """Call a generated function on torch copies of `inputs` in `dtype`; the result as float64 numpy."""
    import torch

    args = {name: torch.from_numpy(np.array(inputs[name], dtype=dtype))
            for name in inspect.signature(fn).parameters if name in inputs}
    return fn(**args, **kwargs).double().numpy()


def missing(target: str) -> str | None:
    """Why the code of `target` cannot be run here, or None."""
    for package in ("torch",) + (("triton",) if target == "triton" else ()):
        try:
            found = importlib.util.find_spec(package) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return f"{package} is not installed: `make codegen-extra` installs verify[codegen]"
    return None


def error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want| over the finite elements; inf when the undefined (NaN) or infinite elements
    differ (the reference's conventions: undefined equals only undefined, an infinity only itself)."""
    if got.shape != want.shape:
        return float("inf")
    if not np.array_equal(np.isnan(got), np.isnan(want)):
        return float("inf")
    inf = np.isinf(want) | np.isinf(got)
    if not np.array_equal(got[inf], want[inf]):
        return float("inf")
    finite = ~np.isnan(want) & ~inf
    if not finite.any():
        return 0.0
    scale = max(float(np.max(np.abs(want[finite]))), 1e-300)
    return float(np.max(np.abs(got[finite] - want[finite]))) / scale


def size_cases(program: ir.Program, output: str) -> list[tuple[dict[str, int], dict[str, int]]]:
    """(sizes of the ranks the inputs carry, tile keywords) for every case of CASES."""
    plan = layout(program, output, program_ranks(program)).sizes
    split_of = {node.rank: node for _, _, node in plan.tiles.values()}
    cases = []

    def size(rank: str, plain: int, tile: int, count: int, depth: int = 0) -> int:
        if rank in split_of and depth < 8:        # a split rank is count tiles of its inner rank's size
            return count * size(split_of[rank].inner, plain, tile, count, depth + 1)
        if any(node.inner == rank for node in split_of.values()):
            return tile
        if any(node.outer == rank for node in split_of.values()):
            return count
        return plain

    for plain, tile, count in CASES:
        sizes = {rank: size(rank, plain, tile, count) for rank in plan.from_input}
        cases.append((sizes, {kw: count for kw, _, _ in plan.tiles.values()}))
    return cases


@contextlib.contextmanager
def interpreter(target: str):
    """TRITON_INTERPRET=1 while Triton code is made and run: triton reads it when @triton.jit wraps a kernel and
    again when the kernel's language functions are called."""
    old = os.environ.get("TRITON_INTERPRET")
    if target == "triton":
        os.environ["TRITON_INTERPRET"] = "1"
    try:
        yield
    finally:
        if target == "triton":
            if old is None:
                del os.environ["TRITON_INTERPRET"]
            else:
                os.environ["TRITON_INTERPRET"] = old


def _run(fn, program, output, sizes, tiles, seed) -> tuple[float, str]:
    """The error of one call, and what went wrong ('' when it ran)."""
    accepted = inspect.signature(fn).parameters
    tiles = {k: v for k, v in tiles.items() if k in accepted}
    # the ragged case (seed 1) also masks every key of query 0: undefined rows must be undefined in the kernel too
    inputs = make_inputs(program, output, sizes, seed=seed, masked_rows=(0,) if seed == 1 else ())
    want = reference(program, output, sizes, tiles, inputs)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            got = call(fn, inputs, np.float64, **tiles)
    except Exception as exc:            # the generated code itself failed: that is the finding
        return float("inf"), f"the code raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return error(got, want), ""


def validate(program: ir.Program, code: str, target: str, generate) -> Validation:
    """Run `code` (generated from `program` for `target`) against the evaluator; raises CodegenError on the first
    mismatch. `generate(program, target)` regenerates code for one binding, to locate a mismatch."""
    why = missing(target)
    if why:
        return Validation(target, False, why)
    with interpreter(target):
        return _validate(program, code, target, generate)


def _validate(program: ir.Program, code: str, target: str, generate) -> Validation:
    namespace = module(code, program.file)
    result = Validation(target, True)
    for output, line in program.outputs:
        for seed, (sizes, tiles) in enumerate(size_cases(program, output)):
            err, crash = _run(namespace[output], program, output, sizes, tiles, seed)
            if err > TOLERANCE or crash:
                raise _located(program, output, line, sizes, tiles, seed, target, generate, err, crash)
            result.max_error = max(result.max_error, err)
            if len(result.sizes) < len(CASES):
                result.sizes.append({**sizes, **tiles})
    if "attention" in namespace:
        for shape in ATTENTION_CASES:
            err = _attention_error(program, namespace["attention"], *shape)
            if not err <= TOLERANCE:
                raise CodegenError(
                    f"translation validation failed: the generated {target} attention() differs from the reference "
                    f"evaluator (max error {err:.3g}; batch, heads, kv heads, L, S, E, Ev, block_m, block_n = "
                    f"{', '.join(map(str, shape))}); no file written", Location(program.file, program.outputs[0][1]),
                    "this is a bug of verify's code generator: please report it with the program")
            result.max_error = max(result.max_error, err)
            result.sizes.append(dict(zip(("batch", "heads", "kv_heads", "L", "S", "E", "Ev", "block_m", "block_n"),
                                         shape, strict=True)))
    return result


# attention(): grouped heads, L and S ragged against the blocks (37 = 2 x 16 + 5, 53 = 3 x 16 + 5), one block
ATTENTION_CASES = ((2, 4, 2, 37, 53, 5, 3, 16, 16), (1, 1, 1, 3, 2, 2, 17, 16, 32))


def _attention_error(program: ir.Program, attention, batch, heads, kv, length, keys, e, ev, bm, bn) -> float:
    """attention() against the evaluator run per (batch, head) on Q = scale * query^T (or tau = scale), K, V at one
    tile (M1 = 1: every tiling of a certified program has the same value, and one tile is what any S admits)."""
    import torch

    rng = np.random.default_rng(7)
    query, key, value = (rng.normal(size=s) for s in ((batch, heads, length, e), (batch, kv, keys, e),
                                                       (batch, kv, keys, ev)))
    scale = 0.3
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            got = attention(*(torch.from_numpy(x) for x in (query, key, value)), scale=scale, block_m=bm,
                            block_n=bn).numpy()
        except Exception:
            return float("inf")
    output = program.outputs[0][0]
    plan = layout(program, output, program_ranks(program)).sizes
    tiles = {kw: 1 for kw, _, _ in plan.tiles.values()}
    sizes = {"e": e, "p": length, "m": keys, "f": ev}
    worst = 0.0
    for b in range(batch):
        for h in range(heads):
            hk = h // (heads // kv)
            inputs = {"Q": query[b, h].T * (1.0 if "tau" in _names(program, output) else scale),
                      "K": key[b, hk].T, "V": value[b, hk].T, "tau": np.array(scale)}
            inputs = {k: v for k, v in inputs.items() if k in _names(program, output)}
            want = reference(program, output, sizes, tiles, inputs)
            order = program_ranks(program)[output]
            worst = max(worst, error(got[b, h].T if order == ("f", "p") else got[b, h], want))
    return worst


def not_attention(program: ir.Program, output: str) -> str:
    """Why the program with attention's interface does not compute softmax attention, or '' when it does at every
    size and tiling tried: the reference evaluator (float64) against numpy's softmax(tau * Q^T K) V at tile counts
    1, 2, 3, 6 (M = 6) and 1, 4, 8 (M = 8), normal and large (x 8) inputs. A test, not a proof: it keeps
    attention() away from programs that only look like attention (a per-tile normalisation, a missing rescale)."""
    plan = layout(program, output, program_ranks(program)).sizes
    kws = [kw for kw, _, _ in plan.tiles.values()]
    order = program_ranks(program)[output]
    rng = np.random.default_rng(11)
    for (e, p, m, f), counts in (((3, 4, 6, 2), (1, 2, 3, 6)), ((2, 3, 8, 3), (1, 4, 8))):
        for spread in (1.0, 8.0):
            inputs = {"Q": rng.normal(size=(e, p)) * spread, "K": rng.normal(size=(e, m)), "V": rng.normal(size=(f, m)),
                      "tau": np.array(0.5)}
            tau = 0.5 if "tau" in _names(program, output) else 1.0
            scores = tau * inputs["Q"].T @ inputs["K"]
            weights = np.exp(scores - scores.max(axis=1, keepdims=True))
            want = (weights / weights.sum(axis=1, keepdims=True)) @ inputs["V"].T        # [p, f]
            want = want.T if order == ("f", "p") else want
            for count in counts:
                inputs = {k: v for k, v in inputs.items() if k in _names(program, output)}
                with np.errstate(all="ignore"):
                    got = reference(program, output, {"e": e, "p": p, "m": m, "f": f}, dict.fromkeys(kws, count),
                                    inputs)
                err = error(got, want)
                if not err <= TOLERANCE:
                    return (f"it does not compute softmax attention: at E={e}, L={p}, S={m}, Ev={f} and "
                            f"{count} tile(s) it differs from softmax({'tau * ' if tau != 1.0 else ''}Q^T K) V by "
                            f"{err:.3g} (relative)")
    return ""


def _names(program: ir.Program, output: str) -> set[str]:
    return {node.name for node in layout(program, output, program_ranks(program)).inputs}


def _located(program, output, line, sizes, tiles, seed, target, generate, err, crash) -> CodegenError:
    """The error for a mismatch of `output`, located at the first binding whose own kernel is wrong."""
    where, name = line, output
    for candidate in layout(program, output, program_ranks(program)).names:
        b = program.bindings[candidate]
        if isinstance(b.expr, ir.Input) or candidate == output:
            continue
        single = replace(program, outputs=[(candidate, b.line)])
        # its own kernel on the target, else (a binding Triton cannot make an output of: no rank p, or needed whole)
        # on the torch target, which shares the elementwise lowering
        for kind in dict.fromkeys((target, "torch")):
            try:
                fn = module(generate(single, kind), program.file)[candidate]
            except CodegenError:
                continue
            if _run(fn, single, candidate, sizes, tiles, seed)[0] > TOLERANCE:
                where, name = b.line, candidate + ("" if kind == target else f" (in its {kind} code)")
            break
        if name != output:
            break
    at = ", ".join(f"{k}={v}" for k, v in {**sizes, **tiles}.items())
    what = crash or f"max error {err:.3g} relative to the output's largest value (tolerance {TOLERANCE:g})"
    return CodegenError(
        f"translation validation failed: the generated {target} code for '{output}' differs from the reference "
        f"evaluator; the first binding that differs is '{name}' ({what}; sizes {at}); no file written",
        Location(program.file, where),
        "this is a bug of verify's code generator: please report it with the program")
