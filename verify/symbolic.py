"""Back end: SymPy, an independent second opinion. The only module that imports sympy.

For a claim the normal form certified, both sides are rebuilt as SymPy expressions (inputs are real symbols,
`exp` is sympy.exp, `max` is sympy.Max, -inf is -oo) at the smallest size assignments, and the difference is
simplified. It shares no code with the normal form beyond the evaluator's tensor plumbing, so agreement is
real corroboration. Outcomes (`Agreement`): AGREES (difference simplified to 0), DISAGREES (the difference is
numerically nonzero at a point: an internal error of the checker), INCONCLUSIVE (SymPy could not simplify
it, but it vanished at every numeric probe). Callers run it in a child process with a timeout, because SymPy
can run for minutes on a hard difference.
"""

from __future__ import annotations

import enum
import importlib
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .claims import Claim, side_values, symbolic_inputs
from .evaluate import RING, ObjectAlgebra
from .masks import patterns


class _OnFirstUse:
    """A module imported on its first attribute access. sympy takes 1-3 s to import and only the second opinion
    uses it, so `verify --version`, `run`, `export`, `deps` and a `--no-sympy` check never pay for it."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(self.load(), attr)

    def load(self):
        return importlib.import_module(self._name)


if TYPE_CHECKING:
    import sympy
else:
    sympy = _OnFirstUse("sympy")


def preload() -> None:
    """Import sympy now, in the parent: each claim is checked in a forked child, which would otherwise import it
    again (about 0.6 s per claim)."""
    importlib.import_module("sympy")


class SymPyAlgebra(ObjectAlgebra):
    name = "sympy"

    def __init__(self):
        super().__init__()
        self.symbols: list[sympy.Symbol] = []

    def input(self, name, index):
        s = sympy.Symbol(f"{name}_{'_'.join(map(str, index))}", real=True)
        self.symbols.append(s)
        return s

    def const(self, value):
        if value == float("-inf"):
            return -sympy.oo
        return sympy.nsimplify(value)

    def scalar(self, op, *x):
        if op == "where":   # a select: only the condition and the branch taken are read
            c, a, b = x
            if c is sympy.nan:
                return sympy.nan
            if c.is_zero is True:
                return b
            if c.is_zero is False or c == -sympy.oo:
                return a
            return sympy.Piecewise((a, sympy.Ne(c, 0)), (b, True))
        if op in RING:
            return RING[op](*x)
        match op:
            case "div":
                return x[0] / x[1]
            case "max":
                return sympy.Max(x[0], x[1])
            case "exp":
                return sympy.exp(x[0])
            case "log" | "log2":
                # the evaluator's conventions, not SymPy's: log 0 = -inf (SymPy says zoo), log(-inf) undefined
                if x[0] == 0:
                    return -sympy.oo
                if x[0] == -sympy.oo:
                    return sympy.nan
                return sympy.log(x[0]) if op == "log" else sympy.log(x[0]) / sympy.log(2)
            case "fin":
                return sympy.Integer(0) if x[0] == -sympy.oo else x[0]
            case "exp2":    # 2^x = exp(x log 2), exactly; written so that powsimp merges it with other exps
                return sympy.exp(x[0] * sympy.log(2))
            case "tanh":
                return sympy.tanh(x[0])
            case "eq":
                if x[0] is sympy.nan or x[1] is sympy.nan:
                    return sympy.nan
                d = sympy.simplify(x[0] - x[1]) if not (x[0].is_infinite or x[1].is_infinite) else None
                if x[0] == x[1] or d == 0:
                    return sympy.Integer(1)
                if d is not None and d.is_zero is False or x[0].is_infinite or x[1].is_infinite:
                    return sympy.Integer(0)
                return sympy.Piecewise((1, sympy.Eq(x[0], x[1])), (0, True))
        raise ValueError(op)


def _vanishes(diff) -> bool:
    if diff == 0:
        return True
    for attempt in (
        lambda d: sympy.cancel(sympy.powsimp(sympy.together(d), combine="exp", force=True)),
        lambda d: sympy.simplify(d),
    ):
        diff = attempt(diff)
        if diff == 0:
            return True
    return False


def _numerically_zero(diff, symbols, probes: int = 5) -> bool:
    rng = random.Random(0)
    free = sorted(diff.free_symbols, key=str)
    for _ in range(probes):
        point = {s: sympy.Rational(rng.randint(-300, 300), 100) for s in free}
        try:
            value = complex(diff.subs(point).evalf(30))
        except (TypeError, ZeroDivisionError):
            continue
        if value != value or abs(value) > 1e-12:
            if value == value:
                return False
    return True


class Agreement(enum.Enum):
    AGREES = "agrees"
    DISAGREES = "disagrees"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Opinion:
    """SymPy's opinion of a claim over some size assignments; `detail` says where, or what was checked."""
    agreement: Agreement
    detail: str

    def __str__(self) -> str:
        return f"{self.agreement.value}: {self.detail}"


def second_opinion(claim: Claim, assignments) -> Opinion:
    """SymPy's opinion over the given size assignments (the module docstring)."""
    checked = []
    for sizes in assignments:
        for fixed in patterns(claim, sizes):        # every mask pattern the assumptions allow; [{}] without masks
            alg = SymPyAlgebra()
            inputs = symbolic_inputs(claim, sizes, alg, fixed or None)
            lv, rv = side_values(claim, sizes, alg, inputs)
            for a, b in zip(lv.ravel(), rv.ravel()):
                if a is sympy.nan and b is sympy.nan:   # undefined on both sides (a fully masked row): equal
                    continue
                if (a.is_infinite or b.is_infinite) and a == b:   # the same infinity (an empty row's LSE): a - b
                    continue                                     # would be oo - oo, NaN
                diff = a - b
                if not _vanishes(diff):
                    where = f"sizes {sizes}" + (f", mask pattern {_pattern(fixed)}" if fixed else "")
                    if not _numerically_zero(diff, alg.symbols):
                        return Opinion(Agreement.DISAGREES, f"{where}: lhs - rhs = {diff}")
                    return Opinion(Agreement.INCONCLUSIVE, f"{where}: could not simplify lhs - rhs to 0")
        checked.append(sizes)
    desc = "; ".join(",".join(f"{k.upper()}={v}" for k, v in s.items()) for s in checked)
    return Opinion(Agreement.AGREES, f"difference simplifies to 0 at {desc}"
                   + (" for every mask pattern" if claim.masks else ""))


def _pattern(fixed) -> str:
    """A mask pattern as the positions it masks."""
    return "; ".join(f"{name} masked at {[tuple(int(i) for i in at) for at in np.argwhere(~np.isfinite(v))]}"
                     for name, v in fixed.items())


def version() -> str:
    return sympy.__version__
