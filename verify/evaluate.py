"""Reference semantics: evaluate a cascade on concrete sizes, over a scalar algebra.

One evaluator serves every back end. Tensors are numpy arrays with named axes; the algebra decides what a
scalar is: float64 (`FLOAT`, the reference evaluator, vectorised), mpmath numbers (`Mp`, exact-enough replay
of counterexamples), or the symbolic scalars of the normal form, Z3 and SymPy back ends (object arrays).

Value conventions, shared by all algebras (README "Semantics"):
- inputs are finite reals; `Const` may be -inf (the identity of max);
- `x / 0` is *undefined* (NaN here), and so is `(-inf) - (-inf)` and `0 * (-inf)`; undefined propagates;
- `exp(-inf) = 0`, `log(0) = -inf`, `log(x < 0)` is undefined, `fin(-inf) = 0`; an empty sum is 0 and an empty max
  is -inf (ranks of size 0 do not occur in a bound, but the evaluator honours the identities);
- `exp2(-inf) = 0`, `log2(0) = -inf`, `log2(x < 0)` undefined; `tanh(-inf) = -1`, `tanh(+inf) = 1`;
- `eq(a, b)` is 1 or 0 (`eq(-inf, -inf) = 1`), undefined if a or b is; `where(c, a, b)` is undefined if c is,
  else a if c != 0 (c = -inf included) and b if c == 0, whatever the other branch is (undefined included).
Two results are equal when both are undefined or both are defined and equal.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, assert_never

import numpy as np

from . import ir
from .errors import Location, ShapeError

IDENTITY = {"add": 0.0, "max": -math.inf}
# The ring operations of every scalar type that overloads + - * (mpmath, SymPy and Z3 terms alike).
RING = {"add": operator.add, "sub": operator.sub, "mul": operator.mul}
BATCH = "#trial"


@dataclass
class Tensor:
    ranks: tuple[str, ...]
    data: np.ndarray

    def aligned(self, space: tuple[str, ...]) -> np.ndarray:
        """This tensor's data broadcastable against `space` (missing ranks become axes of size 1)."""
        order = [self.ranks.index(r) for r in space if r in self.ranks]
        data = np.transpose(self.data, order) if order != list(range(len(order))) else self.data
        shape = []
        it = iter(data.shape)
        for r in space:
            shape.append(next(it) if r in self.ranks else 1)
        return data.reshape(shape)


def as_array(value, dtype) -> np.ndarray:
    """`value` as an array; a lone scalar becomes a 0-d array. (np.array(x, dtype=object) would unpack a
    scalar that is a tuple, such as a Z3 (value, defined) pair, and np.take of a 1-d object array returns
    the bare element.)"""
    if isinstance(value, np.ndarray):
        return value
    out = np.empty((), dtype=dtype)
    out[()] = value
    return out


class Algebra:
    """Scalar operations as numpy-array functions. Subclasses supply the scalar semantics."""

    name = "abstract"
    dtype: Any = object

    def const(self, value: float):
        raise NotImplementedError

    def apply(self, op: str, *arrays: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def reduce(self, op: str, data: np.ndarray, axis: int) -> np.ndarray:
        raise NotImplementedError

    def full(self, shape, value) -> np.ndarray:
        out = np.empty(shape, dtype=self.dtype)
        out[...] = value if self.dtype is not object else self.const(value) if isinstance(value, float) else value
        return out


class FloatAlgebra(Algebra):
    name = "float64"

    def __init__(self, dtype=np.float64):
        self.dtype = dtype

    def const(self, value: float):
        return self.dtype(value)

    def apply(self, op, *a):
        with np.errstate(all="ignore"):
            match op:
                case "add":
                    return np.add(*a)
                case "sub":
                    return np.subtract(*a)
                case "mul":
                    return np.multiply(*a)
                case "div":
                    num, den = np.broadcast_arrays(*a)
                    return np.where(den == 0, np.nan, num / np.where(den == 0, 1, den)).astype(self.dtype)
                case "max":
                    return np.maximum(*a)
                case "exp":
                    return np.exp(*a)
                case "log":
                    (x,) = a
                    return np.where(x < 0, np.nan, np.log(np.where(x < 0, 1, x))).astype(self.dtype)
                case "fin":
                    (x,) = a
                    return np.where(np.isneginf(x), 0, x).astype(self.dtype)
                case "exp2":
                    return np.exp2(*a)
                case "log2":
                    (x,) = a
                    return np.where(x < 0, np.nan, np.log2(np.where(x < 0, 1, x))).astype(self.dtype)
                case "tanh":
                    return np.tanh(*a)
                case "eq":
                    x, y = a
                    undefined = np.isnan(x) | np.isnan(y)
                    return np.where(undefined, np.nan, np.where(x == y, 1.0, 0.0)).astype(self.dtype)
                case "where":
                    c, x, y = a
                    return np.where(np.isnan(c), np.nan, np.where(c != 0, x, y)).astype(self.dtype)
        raise ValueError(op)

    def reduce(self, op, data, axis):
        if data.shape[axis] == 0:
            shape = data.shape[:axis] + data.shape[axis + 1:]
            return np.full(shape, IDENTITY[op], dtype=self.dtype)
        with np.errstate(all="ignore"):
            return (np.add if op == "add" else np.maximum).reduce(data, axis=axis)


class ObjectAlgebra(Algebra):
    """An algebra of Python scalar objects; subclasses define the six scalar operations."""

    dtype = object

    def __init__(self):
        self._ufuncs: dict[str, Callable] = {}

    def scalar(self, op: str, *args):
        raise NotImplementedError

    def ufunc(self, op: str):
        if op not in self._ufuncs:
            arity = ir.MAP_OPS[op]
            self._ufuncs[op] = np.frompyfunc(lambda *xs, _op=op: self.scalar(_op, *xs), arity, 1)
        return self._ufuncs[op]

    def apply(self, op, *a):
        out = self.ufunc(op)(*a)
        return as_array(out, object)

    def reduce(self, op, data, axis):
        if data.shape[axis] == 0:
            return self.full(data.shape[:axis] + data.shape[axis + 1:], self.const(IDENTITY[op]))
        out = self.ufunc(op).reduce(data, axis=axis)
        return as_array(out, object)


class Mp(ObjectAlgebra):
    """mpmath at `digits` significant digits: replays counterexamples far beyond float64 rounding."""

    name = "mpmath"

    def __init__(self, digits: int = 60):
        super().__init__()
        import mpmath

        self.mp = mpmath.mp.clone() if hasattr(mpmath.mp, "clone") else mpmath.mp
        self.mp.dps = digits
        self.mpmath = mpmath

    def const(self, value):
        return self.mp.mpf(value)

    def scalar(self, op, *x):
        mp = self.mp
        nan = mp.mpf("nan")
        if op == "where":   # only the condition and the branch taken are read
            c, a, b = x
            return nan if mp.isnan(c) else a if c != 0 else b
        if any(mp.isnan(v) for v in x):
            return nan
        if op in RING:
            return RING[op](*x)
        match op:
            case "div":
                return nan if x[1] == 0 else x[0] / x[1]
            case "max":
                return x[0] if x[0] >= x[1] else x[1]
            case "exp":
                return mp.exp(x[0])
            case "log":
                return nan if x[0] < 0 else mp.mpf("-inf") if x[0] == 0 else mp.log(x[0])
            case "fin":
                return mp.mpf(0) if mp.isinf(x[0]) and x[0] < 0 else x[0]
            case "exp2":
                return mp.mpf(0) if mp.isinf(x[0]) and x[0] < 0 else mp.power(2, x[0])
            case "log2":
                return nan if x[0] < 0 else mp.mpf("-inf") if x[0] == 0 else mp.log(x[0], 2)
            case "tanh":
                return mp.mpf(1 if x[0] > 0 else -1) if mp.isinf(x[0]) else mp.tanh(x[0])
            case "eq":
                return mp.mpf(1 if x[0] == x[1] else 0)
        raise ValueError(op)


FLOAT = FloatAlgebra()


class Evaluator:
    """Evaluates the bindings of one program (or the two sides of a rule) at one size assignment."""

    def __init__(self, bindings: dict[str, ir.Binding], sizes: dict[str, int], algebra: Algebra,
                 inputs: dict[str, np.ndarray], file: str = "<program>", batch: int | None = None):
        # `batch`: evaluate many trials at once. Every input then carries a leading axis BATCH of that size
        # and every map iterates over it too; it is a parallel rank, so trials never mix.
        self.batch = (BATCH,) if batch is not None else ()
        if batch is not None:
            sizes = {**sizes, BATCH: batch}
        self.bindings = bindings
        self.sizes = sizes
        self.algebra = algebra
        self.inputs = inputs
        self.file = file
        self.memo: dict[str, Tensor] = {}

    def ref(self, name: str) -> Tensor:
        if name not in self.memo:
            self.memo[name] = self.eval(self.bindings[name].expr, {}, {})
        return self.memo[name]

    def size(self, rank: str, node) -> int:
        try:
            return self.sizes[rank]
        except KeyError:
            raise ShapeError(f"no size for rank '{rank}'", Location(self.file, getattr(node, "line", None))) from None

    @staticmethod
    def sliced(t: Tensor, at: dict[str, int]) -> Tensor:
        for rank, k in at.items():
            if rank in t.ranks:
                i = t.ranks.index(rank)
                t = Tensor(t.ranks[:i] + t.ranks[i + 1:], as_array(np.take(t.data, k, axis=i), t.data.dtype))
        return t

    def eval(self, expr: ir.Expr, at: dict[str, int], prev: dict[str, Tensor]) -> Tensor:
        alg = self.algebra
        match expr:
            case ir.Input(name=name, ranks=ranks):
                ranks = self.batch + ranks
                data = self.inputs[name]
                want = tuple(self.size(r, expr) for r in ranks)
                if data.shape != want:
                    raise ShapeError(f"input '{name}' has shape {data.shape}, expected {want} for ranks {ranks}")
                return self.sliced(Tensor(ranks, data), at)
            case ir.Const(value=value):
                return Tensor((), alg.full((), alg.const(value)))
            case ir.Ref(name=name):
                return self.sliced(self.ref(name), at)
            case ir.Map(op=op, space=space, args=args):
                space = self.batch + tuple(r for r in space if r not in at)
                operands = [self.eval(a, at, prev).aligned(space) for a in args]
                data = alg.apply(op, *operands)
                shape = tuple(self.size(r, expr) for r in space)
                return Tensor(space, np.broadcast_to(data, shape) if data.shape != shape else data)
            case ir.Reduce(op=op, rank=rank, arg=arg):
                t = self.eval(arg, at, prev)
                i = t.ranks.index(rank)
                return Tensor(t.ranks[:i] + t.ranks[i + 1:], alg.reduce(op, t.data, i))
            case ir.Split(rank=rank, outer=outer, inner=inner, arg=arg):
                t = self.eval(arg, at, prev)
                i = t.ranks.index(rank)
                n_outer, n_inner = self.size(outer, expr), self.size(inner, expr)
                if n_outer * n_inner != t.data.shape[i]:
                    raise ShapeError(
                        f"cannot split rank '{rank}' of size {t.data.shape[i]} into {n_outer} x {n_inner}",
                        Location(self.file, expr.line),
                    )
                shape = t.data.shape[:i] + (n_outer, n_inner) + t.data.shape[i + 1:]
                return Tensor(t.ranks[:i] + (outer, inner) + t.ranks[i + 1:], t.data.reshape(shape))
            case ir.Unsplit(outer=outer, inner=inner, rank=rank, arg=arg):
                t = self.eval(arg, at, prev)
                order = [r for r in t.ranks if r != inner]
                j = order.index(outer)
                order.insert(j + 1, inner)  # make (outer, inner) adjacent, outer major
                moved = np.transpose(t.data, [t.ranks.index(r) for r in order])
                shape = moved.shape[:j] + (moved.shape[j] * moved.shape[j + 1],) + moved.shape[j + 2:]
                ranks = tuple(rank if r == outer else r for r in order if r != inner)
                return Tensor(ranks, np.ascontiguousarray(moved).reshape(shape))
            case ir.Scan():
                return self.scan(expr, at, prev)
            case ir.Prev(name=name):
                return prev[name]
            case ir.Shift(rank=rank, arg=arg, init=init):
                t = self.eval(arg, at, prev)
                i = t.ranks.index(rank)
                first = self.eval(init, at, prev)
                state_ranks = t.ranks[:i] + t.ranks[i + 1:]
                state_shape = t.data.shape[:i] + t.data.shape[i + 1:]
                first_data = np.broadcast_to(first.aligned(state_ranks), state_shape)
                head = np.expand_dims(first_data, i).astype(t.data.dtype)
                earlier = np.take(t.data, range(t.data.shape[i] - 1), axis=i)
                return Tensor(t.ranks, np.concatenate([head, earlier], axis=i))
            case ir.Last(rank=rank, arg=arg):
                t = self.eval(arg, at, prev)
                i = t.ranks.index(rank)
                n = t.data.shape[i]
                if n == 0:
                    raise ShapeError(f"S_last_{rank} of an empty rank", Location(self.file, expr.line))
                return Tensor(t.ranks[:i] + t.ranks[i + 1:], as_array(np.take(t.data, n - 1, axis=i), t.data.dtype))
            case ir.Var(name=name):
                raise TypeError(f"pattern variable ?{name} has no value: give the rule its ranks first (shapes)")
            case _:
                assert_never(expr)

    def scan(self, expr: ir.Scan, at, prev) -> Tensor:
        # Step 0 sees the initial value as the previous state (it broadcasts like any operand); every later
        # step sees the state the step before produced, in the rank order of step 0's result.
        state = self.eval(expr.init, at, prev)
        states: list[Tensor] = []
        for k in range(self.size(expr.rank, expr)):
            out = self.eval(expr.body, {**at, expr.rank: k}, {**prev, expr.name: state})
            if states and out.ranks != states[0].ranks:
                out = Tensor(states[0].ranks, out.aligned(states[0].ranks))
            state = out
            states.append(out)
        if not states:
            raise ShapeError(f"S_scan_{expr.rank} over an empty rank", Location(self.file, expr.line))
        return Tensor((expr.rank,) + states[0].ranks, np.stack([s.data for s in states], axis=0))


def evaluate(bindings: dict[str, ir.Binding], names, sizes: dict[str, int], inputs: dict[str, np.ndarray],
             algebra: Algebra = FLOAT, file: str = "<program>", batch: int | None = None) -> dict[str, Tensor]:
    """Evaluate the named bindings (and everything they need); returns every binding computed on the way."""
    ev = Evaluator(bindings, sizes, algebra, inputs, file, batch)
    for name in names:
        ev.ref(name)
    return ev.memo


def same_value(a, b, rel=1e-7) -> bool:
    """Equality of two results under the conventions above: undefined (NaN) equals only undefined, an infinity
    only itself, numbers within `rel`. For floats, or the numbers of an exact algebra (mpmath, with its own
    `rel`); `mismatches` is the same rule over float arrays."""
    if a != a or b != b:                    # NaN, whatever the number type
        return a != a and b != b
    if abs(a) == math.inf or abs(b) == math.inf:
        return a == b
    return abs(a - b) <= rel * (1 + max(abs(a), abs(b)))


def mismatches(left: np.ndarray, right: np.ndarray, rel: float = 1e-7) -> np.ndarray:
    """Where two float arrays differ under `same_value`'s rule (vectorised: the numeric search's inner loop)."""
    with np.errstate(all="ignore"):
        ln, rn = np.isnan(left), np.isnan(right)
        infinite = np.isinf(left) | np.isinf(right)
        close = np.abs(left - right) <= rel * (1.0 + np.maximum(np.abs(left), np.abs(right)))
        return np.where(ln | rn, ln != rn, np.where(infinite, left != right, ~close))
