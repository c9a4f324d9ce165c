"""Predicate masks: `(CreateTensor "B[m,p]:mask(PRED)")` is 0 where PRED holds and -inf elsewhere.

PRED is linear integer arithmetic (Presburger, plus the sizes as constants) over

- the mask's rank indices (`m`, `p`: 0 <= m < M),
- the sizes of the mask's ranks (`M`, `P`: the rank's name in upper case),
- integer literals, and named integer parameters declared in the file (`; param: W >= 1`, `; param: W in 1..8`),

with `+`, `-`, `*` by a literal, `< <= == != >= >`, `and`, `or`, `not` and parentheses. An index may also be
multiplied by a size or parameter (`m1*M0`, the first key of tile m1, for tile-level predicates of block-sparse
attention; never an index by an index): Z3 then decides nonlinear integer arithmetic, and may answer unknown,
which is never a pass. A mask is a function of
its indices and sizes only, so at given sizes (and parameter values) it is one fixed pattern: the bounded
checkers get that pattern, never an enumeration of patterns, and the unbounded lift reads PRED as integer
arithmetic over symbolic indices and sizes.

This module only parses and evaluates (numpy); the Z3 reading is in `verify/induction/masked.py` (z3 stays in the
engines). Everything here is plain data: a `Predicate` is frozen and hashable, so it can sit in an `ir.Input`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

PARAM_RE = re.compile(r"^\s*;+\s*param\s*:\s*(.*?)\s*$", re.I)
PARAM_SPAN = 4          # a parameter is checked within a bound at its 4 smallest values (the lift covers all)


class PredicateError(Exception):
    """A predicate that cannot be read; `column` is 1-based within the predicate text."""

    def __init__(self, cause: str, column: int | None = None):
        super().__init__(cause)
        self.cause = cause
        self.column = column


# A linear form: ((key, coefficient), ...) sorted by key, plus a constant. Keys: "m" the index of rank m,
# "#m" the size of rank m, "$W" the parameter W.
@dataclass(frozen=True)
class Lin:
    terms: tuple[tuple[str, int], ...]
    const: int

    @staticmethod
    def of(terms: dict[str, int], const: int) -> Lin:
        return Lin(tuple(sorted((k, c) for k, c in terms.items() if c)), const)

    def add(self, other: Lin, sign: int = 1) -> Lin:
        out = dict(self.terms)
        for k, c in other.terms:
            out[k] = out.get(k, 0) + sign * c
        return Lin.of(out, self.const + sign * other.const)

    def scale(self, k: int) -> Lin:
        if any(abs(c * k) > LITERAL_LIMIT for _, c in self.terms) or abs(self.const * k) > LITERAL_LIMIT ** 2:
            raise PredicateError(f"a coefficient above {LITERAL_LIMIT} (products of literals)")
        return Lin.of({n: c * k for n, c in self.terms}, self.const * k)


@dataclass(frozen=True)
class Cmp:
    op: str                 # < <= == != >= >
    lhs: Lin
    rhs: Lin


@dataclass(frozen=True)
class BoolOp:
    op: str                 # and | or | not
    args: tuple


Formula = Cmp | BoolOp


@dataclass(frozen=True)
class Param:
    name: str
    lo: int
    hi: int | None          # None: unbounded above
    seq: bool = False       # `; param: doc[]`: an integer sequence over positions (document ids), read `doc[m]`

    def checked(self) -> range:
        """The values a bounded check tries (the unbounded lift covers every value in [lo, hi])."""
        top = self.lo + PARAM_SPAN - 1 if self.hi is None else min(self.hi, self.lo + PARAM_SPAN - 1)
        return range(self.lo, top + 1)

    def __str__(self) -> str:
        if self.seq:
            return f"{self.name}[]"
        return f"{self.name} >= {self.lo}" if self.hi is None else f"{self.name} in {self.lo}..{self.hi}"


@dataclass(frozen=True)
class Predicate:
    text: str               # as written (whitespace normalised): shown in verdicts and compared across sides
    formula: Formula | Lin  # a Lin: the value of an index tensor
    ranks: tuple[str, ...]
    params: tuple[Param, ...]   # the declared parameters PRED uses

    def __str__(self) -> str:
        return self.text


def parse_params(lines: list[str]) -> dict[str, tuple[Param, int]]:
    """`; param: W >= 1` / `; param: W in 1..8` lines -> name -> (Param, line). A malformed one is an error
    naming its line (raised as (line, PredicateError))."""
    out: dict[str, tuple[Param, int]] = {}
    for number, line in enumerate(lines, 1):
        m = PARAM_RE.match(line)
        if not m:
            continue
        text = m.group(1)
        seq = re.fullmatch(r"([a-z][a-z0-9_]*)\s*\[\s*\]", text)
        ge = re.fullmatch(r"([A-Z][A-Z0-9_]*)\s*>=\s*(-?\d+)", text)
        rng = re.fullmatch(r"([A-Z][A-Z0-9_]*)\s+in\s+(-?\d+)\s*\.\.\s*(-?\d+)", text)
        if seq:
            param = Param(seq.group(1), 0, None, True)
        elif ge:
            param = Param(ge.group(1), int(ge.group(2)), None)
        elif rng and int(rng.group(2)) <= int(rng.group(3)):
            param = Param(rng.group(1), int(rng.group(2)), int(rng.group(3)))
        else:
            raise ParamLineError(number, f"cannot read parameter declaration '{text}'")
        if any(abs(v) > LITERAL_LIMIT for v in (param.lo, param.hi or 0)):
            raise ParamLineError(number, f"parameter {param.name}'s bounds exceed {LITERAL_LIMIT} in absolute value")
        if param.name in out:
            raise ParamLineError(number, f"parameter {param.name} declared twice (first at line "
                                         f"{out[param.name][1]})")
        out[param.name] = (param, number)
    return out


class ParamLineError(Exception):
    def __init__(self, line: int, cause: str):
        super().__init__(cause)
        self.line = line
        self.cause = cause


# -- parsing ----------------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(<=|>=|==|!=|<|>|\+|-|\*|\(|\)|\[|\]|&&|\|\||!)|(\S))")
_CMP = ("<", "<=", "==", "!=", ">=", ">")
_WORDS = {"&&": "and", "||": "or", "!": "not"}


def parse(text: str, ranks: tuple[str, ...], params: dict[str, Param], value: bool = False) -> Predicate:
    """PRED (a formula), or with `value` the linear form of an index tensor (`:index(m - p)`)."""
    tokens: list[tuple[str, str, int]] = []     # (kind, text, column)
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            break
        col = m.start(m.lastindex) + 1 if m.lastindex else pos + 1
        if m.group(1):
            tokens.append(("int", m.group(1), col))
        elif m.group(2):
            word = m.group(2)
            tokens.append(("kw" if word in ("and", "or", "not") else "name", word, col))
        elif m.group(3):
            op = m.group(3)
            tokens.append(("kw", _WORDS[op], col) if op in _WORDS else ("op", op, col))
        else:
            raise PredicateError(f"unexpected character '{m.group(4)}'", col)
        pos = m.end()
    if not tokens:
        raise PredicateError("empty predicate", 1)
    reader = _Reader(tokens, ranks, params, len(text) + 1)
    formula: Formula | Lin = reader.linear() if value else reader.disjunction()
    if reader.i < len(tokens):
        _, tok, col = tokens[reader.i]
        raise PredicateError(f"unexpected '{tok}'", col)
    used = sorted({part[1:].split(":")[0] for k in _keys(formula) for part in k.split("*")
                   if part.startswith(("$", "@"))})
    return Predicate(" ".join(text.split()), formula, ranks, tuple(params[n] for n in used))


def _keys(f) -> set[str]:
    if isinstance(f, Lin):
        return {k for k, _ in f.terms}
    if isinstance(f, Cmp):
        return {k for lin in (f.lhs, f.rhs) for k, _ in lin.terms}
    return set().union(*(_keys(a) for a in f.args))


class _Reader:
    def __init__(self, tokens, ranks, params, end):
        self.t, self.i, self.ranks, self.params, self.end = tokens, 0, ranks, params, end

    def peek(self, k: int = 0):
        return self.t[self.i + k] if self.i + k < len(self.t) else ("end", "", self.end)

    def take(self, text: str) -> bool:
        if self.peek()[1] == text and self.peek()[0] != "name":
            self.i += 1
            return True
        return False

    def expect(self, text: str, what: str):
        if not self.take(text):
            kind, tok, col = self.peek()
            raise PredicateError(f"expected {what}, found {repr(tok) if kind != 'end' else 'the end'}", col)

    def disjunction(self):
        args = [self.conjunction()]
        while self.take("or"):
            args.append(self.conjunction())
        return args[0] if len(args) == 1 else BoolOp("or", tuple(args))

    def conjunction(self):
        args = [self.negation()]
        while self.take("and"):
            args.append(self.negation())
        return args[0] if len(args) == 1 else BoolOp("and", tuple(args))

    def negation(self):
        if self.take("not"):
            return BoolOp("not", (self.negation(),))
        if self.peek()[1] == "(":
            # `(` opens either a parenthesised formula or a linear term: try the comparison first
            saved = self.i
            try:
                return self.comparison()
            except PredicateError:
                self.i = saved
            self.expect("(", "'('")
            inner = self.disjunction()
            self.expect(")", "')'")
            return inner
        return self.comparison()

    def comparison(self):
        lhs = self.linear()
        kind, op, col = self.peek()
        if op not in _CMP or kind != "op":
            raise PredicateError(f"expected a comparison ({' '.join(_CMP)}), found "
                                 f"{repr(op) if kind != 'end' else 'the end'}", col)
        self.i += 1
        rhs = self.linear()
        if self.peek()[1] in _CMP and self.peek()[0] == "op":
            raise PredicateError("chained comparison: write 'a < b and b <= c'", self.peek()[2])
        sequence = [k for side in (lhs, rhs) for k, _ in side.terms if k.startswith("@")]
        plain = all(len(side.terms) == 1 and side.terms[0][0].startswith("@") and side.terms[0][1] == 1
                    and side.const == 0 for side in (lhs, rhs))
        if sequence and not (plain and op in ("==", "!=")):
            # the checker tries every sequence up to renaming its values (predicates.sequences), which keeps
            # doc[m] == doc[p] but not doc[m] <= doc[p], doc[m] + 1 == doc[p] or doc[m] == 3
            raise PredicateError("a sequence value is only compared with another by == or != (doc[m] == doc[p]): "
                                 "order, arithmetic and constants depend on the values, which the checker does "
                                 "not try one by one", col)
        return Cmp(op, lhs, rhs)

    def linear(self) -> Lin:
        out = self.term()
        while self.peek()[1] in ("+", "-") and self.peek()[0] == "op":
            sign = 1 if self.peek()[1] == "+" else -1
            self.i += 1
            out = out.add(self.term(), sign)
        return out

    def term(self) -> Lin:
        col = self.peek()[2]
        out = self.factor()
        while self.take("*"):
            out = _product(out, self.factor(), col)
        return out

    def factor(self) -> Lin:
        kind, tok, col = self.peek()
        if self.take("-"):
            return self.factor().scale(-1)
        if kind == "int":
            self.i += 1
            if abs(int(tok)) > LITERAL_LIMIT:    # the evaluator's indices are int64: no overflow below 2^62
                raise PredicateError(f"integer {tok} is too large (at most {LITERAL_LIMIT} in absolute value)", col)
            return Lin((), int(tok))
        if kind == "name" and self.peek(1)[1] == "[" and tok in self.params and self.params[tok].seq:
            self.i += 2
            kind, rank, col2 = self.peek()
            if kind != "name" or rank not in self.ranks:
                raise PredicateError(f"a sequence is read at one of the mask's indices ({', '.join(self.ranks)}): "
                                     f"write {tok}[{self.ranks[0]}]", col2)
            self.i += 1
            self.expect("]", "']'")
            return Lin(((f"@{tok}:{rank}", 1),), 0)
        if kind == "name":
            self.i += 1
            return Lin(((self.key(tok, col), 1),), 0)
        if self.take("("):
            inner = self.linear()
            self.expect(")", "')'")
            return inner
        raise PredicateError(f"expected an index, a size, a parameter or an integer, found "
                             f"{repr(tok) if kind != 'end' else 'the end'}", col)

    def key(self, name: str, col: int) -> str:
        if name in self.ranks:
            return name
        if name in self.params:
            return f"${name}"
        if re.fullmatch(r"[A-Z][0-9]*", name):
            # the size of a rank: the mask's own, or another rank of the claim (a tile size M0 in a tile-level
            # predicate); a rank the claim lacks is refused when the claim is planned (masks.check_sizes)
            return f"#{name.lower()}"
        ranks = ", ".join(self.ranks)
        raise PredicateError(f"unknown name '{name}': the mask's indices are {ranks}, its sizes "
                             f"{', '.join(r.upper() for r in self.ranks)}; a parameter is declared with "
                             f"'; param: {name.upper()} >= 1'", col)


def _is_index(key: str) -> bool:
    return all(not k.startswith(("#", "$")) for k in key.split("*"))    # an index, or a sequence read at one


LITERAL_LIMIT = 1 << 20       # literals, parameter bounds and products of literals stay far from int64 overflow


def _product(a: Lin, b: Lin, col: int) -> Lin:
    """a * b, distributed. Linear when one side is a literal; otherwise each product must be an index (or a
    size) times sizes and parameters (`m1*M0`, the first key of tile m1), never index times index."""
    if not a.terms:
        return b.scale(a.const)
    if not b.terms:
        return a.scale(b.const)
    if any(_is_index(k) for k, _ in a.terms) and any(_is_index(k) for k, _ in b.terms):
        raise PredicateError("a product of two indices is not linear: multiply an index by a literal, a size or "
                             "a parameter only", col)
    out: dict[str, int] = {}
    for ka, ca in a.terms + (("", a.const),):
        for kb, cb in b.terms + (("", b.const),):
            k = "*".join(sorted(x for x in (ka, kb) if x))
            if k and k.count("*") > 1:
                raise PredicateError("a product of more than two names", col)
            out[k] = out.get(k, 0) + ca * cb
    const = out.pop("", 0)
    if any(abs(c) > LITERAL_LIMIT for c in out.values()):
        raise PredicateError(f"a coefficient above {LITERAL_LIMIT} (products of literals)", col)
    return Lin.of(out, const)


def sizes_named(pred: Predicate) -> set[str]:
    """The ranks whose sizes PRED names."""
    return {part[1:] for k in _keys(pred.formula) for part in k.split("*") if part.startswith("#")}


# -- evaluation -------------------------------------------------------------------------------------------------
def holds(pred: Predicate, sizes: dict[str, int], params: dict) -> np.ndarray:
    """PRED at every element of the mask (a boolean array over its ranks, in order), at these sizes."""
    shape = tuple(sizes[r] for r in pred.ranks)
    grids = np.indices(shape, dtype=np.int64) if shape else np.zeros((0,), dtype=np.int64)
    env: dict[str, object] = {r: grids[i] for i, r in enumerate(pred.ranks)}
    env.update({f"#{r}": sizes[r] for r in sizes_named(pred) | set(pred.ranks)})
    env.update({f"${n}": v for n, v in params.items()})
    for p in pred.params:
        if p.seq:        # doc[m]: the sequence read at every index of rank m (positions 0 .. its length - 1)
            env.update({f"@{p.name}:{r}": np.asarray(params[p.name])[grids[i]] for i, r in enumerate(pred.ranks)})
    return np.broadcast_to(np.asarray(_eval(pred.formula, env), dtype=bool), shape)


def sequences(length: int) -> list[tuple[int, ...]]:
    """Every integer sequence of this length up to renaming its values (restricted growth strings: the set
    partitions of the positions): all that `doc[m] == doc[p]` can tell apart. Bell(length) of them."""
    out: list[tuple[int, ...]] = []

    def grow(prefix: list[int], top: int) -> None:
        if len(prefix) == length:
            out.append(tuple(prefix))
            return
        for v in range(top + 2):
            grow(prefix + [v], max(top, v))
    grow([], -1)
    return out


def _lin(lin: Lin, env):
    out: object = lin.const
    for k, c in lin.terms:
        value: object = 1
        for part in k.split("*"):
            value = value * env[part]   # type: ignore[operator]
        out = out + c * value           # type: ignore[operator]
    return out


def _eval(f, env):
    if isinstance(f, Cmp):
        a, b = _lin(f.lhs, env), _lin(f.rhs, env)
        return {"<": np.less, "<=": np.less_equal, "==": np.equal, "!=": np.not_equal,
                ">=": np.greater_equal, ">": np.greater}[f.op](a, b)
    parts = [_eval(a, env) for a in f.args]
    if f.op == "not":
        return np.logical_not(parts[0])
    out = parts[0]
    for p in parts[1:]:
        out = np.logical_and(out, p) if f.op == "and" else np.logical_or(out, p)
    return out


def pattern(pred: Predicate, sizes: dict[str, int], params: dict) -> np.ndarray:
    """The mask's values: 0 where PRED holds, -inf elsewhere (an index tensor: its integer values)."""
    if isinstance(pred.formula, Lin):
        shape = tuple(sizes[r] for r in pred.ranks)
        grids = np.indices(shape, dtype=np.int64)
        env: dict[str, object] = {r: grids[i] for i, r in enumerate(pred.ranks)}
        env.update({f"#{r}": sizes[r] for r in sizes_named(pred) | set(pred.ranks)})
        env.update({f"${n}": v for n, v in params.items()})
        return np.broadcast_to(np.asarray(_lin(pred.formula, env), dtype=float), shape).copy()
    return np.where(holds(pred, sizes, params), 0.0, -np.inf)
