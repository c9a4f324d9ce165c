"""Reverse-mode differentiation of a program: `verify grad`.

`derive(program, wrt)` returns a program in the same notation whose inputs are the program's inputs plus one
cotangent `d<OUT>` per output (with the output's ranks) and whose outputs are the gradients `d<X>` of the
inputs in `wrt`, i.e. the vector-Jacobian product  sum_out <dOUT, d OUT / d X>.

How each operator is differentiated (Y the node, G its adjoint, which may lack ranks of Y: it then stands for
G broadcast along them, the notation's own broadcast; `unb` sums an operand's adjoint over the ranks the
operand was broadcast along, widening G first where G itself lacks such a rank, since a sum over a rank of a
broadcast value is N times it):

    add/sub      dA += unb(G), dB += unb(+-G)
    mul          dA += unb(G*B), dB += unb(G*A)
    div          dA += unb(G/B), dB -= unb(G*Y/B)             (Y = A/B)
    exp          dA += G*Y
    log          dA += G/A
    fin          dA += G      fin(x) = x on the finite reals, where the derivative exists
    R_add_r      dA += G      (broadcast along r)
    split/unsplit  the inverse view of G
    Const, masks   no adjoint (masks are constants: 0 or -inf, not differentiated)

max (map or reduce) has no derivative in the notation: its subgradient depends on ties. It is differentiated
only where it can be dropped EXACTLY (a stop-gradient): every *stop unit* (a subterm rooted at a max, or a
scan whose body contains one, and no larger unit) is treated as a constant, and the derivation carries a
*justification*: the program with every stop unit replaced by a fresh, unconstrained input of the same ranks.
If that program equals the original (a claim the gate checks), the outputs do not depend on the units' values
at all, so the total derivative through them is 0 and dropping them is exact, not a tie-dependent choice. The
reason is the chain rule: with F(x, c) = H(x) for every finite c, dF(x, g(x))/dx = dF/dx at fixed c + 0. The
replacement inputs are finite reals, so the justification covers the points where the units' values are
finite (always, for maxima of finite scores over nonempty ranges; not for a fully masked row, whose value is
undefined anyway). A max that the justification does not cover makes the command fail (exit 1): no gradient
is written. The softmax shift GM and the 1-pass running max RM are the stop units of attention.

Scans (S_scan, S_prev, S_shift, S_last) outside stop units are refused with a located error: the adjoint of
a recurrence runs in reverse order, and the notation has no reverse scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import ir
from .errors import Location, ShapeError
from .shapes import program_ranks

Ranks = tuple[str, ...]


class GradError(ShapeError):
    """A program `verify grad` cannot differentiate (located)."""


@dataclass
class StopUnit:
    binding: str           # the binding it is in
    text: str              # what it is, for the report
    replacement: str       # the input that replaces it in the justification
    ranks: Ranks
    line: int | None


@dataclass
class Derivation:
    program: ir.Program                  # the gradient program
    stops: list[StopUnit] = field(default_factory=list)
    justification: ir.Program | None = None   # the program with every stop unit a fresh input (None: no stop)


def _contains_max(e: ir.Expr) -> bool:
    return any(isinstance(n, ir.Map | ir.Reduce) and n.op == "max" for n in ir.walk(e))


def _is_stop_unit(e: ir.Expr) -> bool:
    match e:
        case ir.Map(op="max") | ir.Reduce(op="max"):
            return True
        case ir.Scan(body=body):
            return _contains_max(body)
    return False


class _Deriver:
    def __init__(self, program: ir.Program):
        self.program = program
        self.file = program.file
        self.env = program_ranks(program)
        self.names = set(program.bindings)
        self.bindings: dict[str, ir.Binding] = dict(program.bindings)
        self.scan_ranks: dict[str, Ranks] = {}
        self.contrib: dict[str, list[ir.Expr]] = {}    # binding name or "input:NAME" -> adjoint contributions
        self.tiles = {(n.rank, n.outer, n.inner): n.tiles for b in program.bindings.values()
                      for n in ir.walk(b.expr) if isinstance(n, ir.Split)}
        self.root: tuple[ir.Expr | None, str] = (None, "")
        self.last: dict[str, list[ir.Expr]] = {}        # scan binding -> adjoints of its final state
        self.inputs: dict[str, ir.Input] = {}
        for b in program.bindings.values():
            for n in ir.walk(b.expr):
                if isinstance(n, ir.Input) and n.kind == "real":
                    self.inputs.setdefault(n.name, n)

    # -- ranks ------------------------------------------------------------------------------------------------
    def ranks(self, e: ir.Expr) -> Ranks:
        match e:
            case ir.Input(ranks=ranks) | ir.Map(space=ranks):
                return ranks
            case ir.Const() | ir.Var():
                return ()
            case ir.Ref(name=name):
                return tuple(self.env[name])
            case ir.Reduce(rank=r, arg=arg) | ir.Last(rank=r, arg=arg):
                return tuple(x for x in self.ranks(arg) if x != r)
            case ir.Split(rank=r, outer=o, inner=i, arg=arg):
                out: list[str] = []
                for x in self.ranks(arg):
                    out += [o, i] if x == r else [x]
                return tuple(out)
            case ir.Unsplit(outer=o, inner=i, rank=r, arg=arg):
                a = self.ranks(arg)
                return tuple(r if x == o else x for x in a if x != i)
            case ir.Scan(body=body):
                return self.ranks(body)
            case ir.Prev(name=name):
                return self.scan_ranks.get(name, ())
            case ir.Shift(arg=arg):
                return self.ranks(arg)
        raise AssertionError(e)

    # -- names and bindings -----------------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        return name

    def bind(self, base: str, expr: ir.Expr) -> ir.Ref:
        name = self.fresh(base)
        self.bindings[name] = ir.Binding(name, expr)
        self.env[name] = self.ranks(expr)
        return ir.Ref(name)

    # -- algebra on adjoints ----------------------------------------------------------------------------------
    def widen(self, e: ir.Expr, ranks: Ranks) -> ir.Expr:
        """`e` materialised with exactly `ranks` (it has a subset of them)."""
        if self.ranks(e) == ranks:
            return e
        return ir.Map("mul", ranks, (e, ir.Const(1.0)))

    def unb(self, g: ir.Expr, space: Ranks, target: Ranks) -> ir.Expr:
        """The adjoint of an operand with ranks `target` of a map over `space`, from `g` over (part of) space."""
        missing = [r for r in space if r not in target and r not in self.ranks(g)]
        if missing:
            g = self.widen(g, tuple(r for r in space if r in self.ranks(g) or r in missing))
        for r in [r for r in self.ranks(g) if r not in target]:
            g = ir.Reduce("add", r, g)
        return g

    def total(self, key: str, ranks: Ranks) -> ir.Expr | None:
        parts = self.contrib.get(key, [])
        if not parts:
            return None
        acc = parts[0]
        for p in parts[1:]:
            acc = ir.Map("add", ranks, (acc, p))
        return acc

    def value(self, e: ir.Expr) -> ir.Expr:
        """The forward value of node `e`: the binding's name where `e` is the whole binding."""
        expr, name = self.root
        return ir.Ref(name) if e is expr else e

    # -- backpropagation --------------------------------------------------------------------------------------
    def back(self, e: ir.Expr, g: ir.Expr, binding: str) -> None:
        if _is_stop_unit(e):      # a constant for the sweep (justified as a whole, see the module docstring)
            return
        match e:
            case ir.Const():
                return
            case ir.Input(kind=kind, name=name):
                if kind == "real":
                    self.contrib.setdefault(f"input:{name}", []).append(g)
                return
            case ir.Ref(name=name):
                self.contrib.setdefault(name, []).append(g)
                return
            case ir.Last(rank=r, arg=ir.Ref(name=name)) if isinstance(self.bindings[name].expr, ir.Scan):
                self.last.setdefault(name, []).append(g)
                return
            case ir.Map(op=op, space=space, args=args):
                self.back_map(e, op, space, args, g, binding)
                return
            case ir.Reduce(op="add", arg=arg):
                self.back(arg, g, binding)
                return
            case ir.Split(rank=r, outer=o, inner=i, arg=arg):
                self.back(arg, ir.Unsplit(o, i, r, self.widen(g, self.ranks(e))), binding)
                return
            case ir.Unsplit(outer=o, inner=i, rank=r, arg=arg):
                self.back(arg, ir.Split(r, o, i, self.tiles.get((r, o, i)), self.widen(g, self.ranks(e))), binding)
                return
        what = type(e).__name__
        raise GradError(f"{binding}: cannot differentiate through {what} here (the adjoint of a scan runs in "
                        f"reverse order, and the notation has no reverse scan)", Location(self.file, e.line),
                        "only maxima and scans of maxima whose value the outputs do not depend on are dropped "
                        "(stop-gradient); differentiate the 3-pass form, which is certified equal")

    def back_scan(self, name: str, scan: ir.Scan) -> None:
        """The adjoint of a linear recurrence whose coefficient telescopes, read only through its final state:

            X[k] = B[k] + X[k-1] * exp(Z[k-1] - Z[k])   (k >= 1; X[0] = B[0] + INIT * exp(I - Z[0]), INIT constant)

        with Z a stop unit (a constant for the sweep; `S_shift_r Z I` gives Z[k-1] and I at k = 0), as the
        1-pass running denominator and numerator are. Unrolled, X[K-1] = sum_k B[k] * prod_{k<i<K} exp(Z[i-1] - Z[i])
        + INIT * (...), and the product telescopes to exp(Z[k] - Z[K-1]) (every factor has i >= 1, so I never
        enters, and Z is finite where the stop-gradient is justified). So dB[k] = G * exp(Z[k] - Z[K-1]) with G
        the adjoint of X[K-1]: a forward expression, no reverse scan. INIT is a constant: it has no adjoint.
        Any other scan that the outputs depend on is refused."""
        if self.contrib.get(name):
            raise GradError(f"{name}: a scan used other than through its final state (S_last) cannot be "
                            f"differentiated here (its adjoint would run in reverse order, and the notation has no "
                            f"reverse scan)", Location(self.file, self.bindings[name].line))
        parts = self.last.get(name, [])
        if not parts:
            return
        final = tuple(x for x in self.ranks(scan.body) if x != scan.rank)
        g: ir.Expr = parts[0]
        for p in parts[1:]:
            g = ir.Map("add", final, (g, p))
        shape = self._linear(scan)
        if shape is None or not isinstance(scan.init, ir.Const):
            raise GradError(f"{name}: only a scan X = B + prev * exp(shift(Z) - Z) with Z a stop-gradient (a running "
                            f"max) and a constant initial state is differentiated (its adjoint telescopes to a "
                            f"forward expression); this one is not of that form", Location(self.file, scan.line))
        b, z = shape
        space = self.ranks(scan.body)
        zr = self.ranks(z)
        weight = ir.Map("exp", zr, (ir.Map("sub", zr, (z, ir.Last(scan.rank, z))),))
        adj = self.bind(f"d{name}", ir.Map("mul", space, (g, weight)))
        self.root = (None, name)
        self.back(b, self.unb(adj, space, self.ranks(b)), name)

    def _resolve(self, e: ir.Expr) -> ir.Expr:
        while isinstance(e, ir.Ref) and not _is_stop_unit(self.bindings[e.name].expr):
            e = self.bindings[e.name].expr
        return e

    def _linear(self, scan: ir.Scan) -> tuple[ir.Expr, ir.Expr] | None:
        """(B, Z) when the body is B + prev * exp(shift(Z) - Z) (either order of each operation), else None."""
        body = scan.body
        if not (isinstance(body, ir.Map) and body.op == "add"):
            return None
        prev = ir.Prev(scan.rank, scan.name)
        for b, t in (body.args, body.args[::-1]):
            if any(isinstance(n, ir.Prev) for n in ir.walk(b)):
                continue
            t = self._resolve(t)
            if not (isinstance(t, ir.Map) and t.op == "mul"):
                continue
            for p, c in (t.args, t.args[::-1]):
                if p != prev:
                    continue
                c = self._resolve(c)
                if not (isinstance(c, ir.Map) and c.op == "exp"):
                    continue
                d = self._resolve(c.args[0])
                if not (isinstance(d, ir.Map) and d.op == "sub"):
                    continue
                sh, z = d.args
                sh = self._resolve(sh)
                if (isinstance(sh, ir.Shift) and sh.rank == scan.rank and sh.arg == z and isinstance(z, ir.Ref)
                        and _is_stop_unit(self.bindings[z.name].expr)):
                    return b, z
        return None

    def back_map(self, e: ir.Map, op: str, space: Ranks, args, g: ir.Expr, binding: str) -> None:
        def to(k: int, adj: ir.Expr) -> None:
            a = args[k]
            if isinstance(a, ir.Const) or (isinstance(a, ir.Input) and a.kind != "real"):
                return
            self.back(a, self.unb(adj, space, self.ranks(a)), binding)

        def m(o: str, *xs: ir.Expr) -> ir.Expr:
            return ir.Map(o, space, xs)

        match op:
            case "add":
                to(0, g)
                to(1, g)
            case "sub":
                to(0, g)
                to(1, m("mul", ir.Const(-1.0), g))
            case "mul":
                to(0, m("mul", g, args[1]))
                to(1, m("mul", g, args[0]))
            case "div":
                to(0, m("div", g, args[1]))
                to(1, m("mul", ir.Const(-1.0), m("div", m("mul", g, self.value(e)), args[1])))
            case "exp":
                to(0, m("mul", g, self.value(e)))
            case "log":
                to(0, m("div", g, args[0]))
            case "fin":
                to(0, g)
            case _:
                raise GradError(f"{binding}: no derivative for '{op}' here", Location(self.file, e.line))

    def cut(self, e: ir.Expr, b: ir.Binding, stops: list[StopUnit]) -> ir.Expr:
        """`e` with every stop unit a fresh input (recorded in `stops`): the justification's binding."""
        if _is_stop_unit(e):
            rep = self.fresh(f"{b.name}_c" if e is b.expr else f"{b.name}_c{len(stops) + 1}")
            ranks = self.ranks(e)
            stops.append(StopUnit(b.name, _describe(e), rep, ranks, e.line or b.line))
            return ir.Input(rep, ranks, e.line)
        if isinstance(e, ir.Scan):
            self.scan_ranks[e.name] = self.ranks(e.body)
        return ir.with_children(e, [self.cut(c, b, stops) for c in ir.children(e)])

    def run(self, wrt: list[str] | None) -> Derivation:
        prog = self.program
        real_inputs = list(self.inputs)
        if wrt is None:
            wrt = real_inputs
        for x in wrt:
            if x not in self.inputs:
                raise GradError(f"--wrt {x}: not a real input of the program (inputs: {', '.join(real_inputs)})",
                                Location(self.file, None))
        if not prog.outputs:
            raise GradError(f"{self.file} has no (extract ...): nothing to differentiate", Location(self.file, None))
        # stop units and the justification program
        stops: list[StopUnit] = []
        replaced: dict[str, ir.Binding] = {}
        for name, b in prog.bindings.items():
            if isinstance(b.expr, ir.Scan):
                self.scan_ranks[b.expr.name] = self.ranks(b.expr.body)
            replaced[name] = ir.Binding(name, self.cut(b.expr, b, stops), b.line)
        justification = (ir.Program(f"{self.file} (stop-gradient)", replaced, list(prog.outputs), dict(prog.sizes))
                         if stops else None)
        # cotangents
        cot: list[str] = []
        for out, line in prog.outputs:
            name = f"d{out}"
            if name in self.names:
                raise GradError(f"the cotangent of {out} would be named {name}, which the program already uses",
                                Location(self.file, line), f"rename the binding {name}")
            self.names.add(name)
            cot.append(name)
        for out, name in zip(prog.output_names(), cot):
            self.bindings[name] = ir.Binding(name, ir.Input(name, tuple(self.env[out])))
            self.env[name] = tuple(self.env[out])
            self.contrib.setdefault(out, []).append(ir.Ref(name))
        for x in wrt:
            if f"d{x}" in self.names:
                raise GradError(f"the gradient of {x} would be named d{x}, which the program already uses",
                                Location(self.file, None), f"rename the binding d{x}")
            self.names.add(f"d{x}")
        # reverse sweep over the bindings, each with its stop units as constants
        for name in reversed(list(prog.bindings)):
            expr = prog.bindings[name].expr
            if _is_stop_unit(expr) or (isinstance(expr, ir.Input)):
                if isinstance(expr, ir.Input) and expr.kind == "real":
                    self.contrib.setdefault(f"input:{expr.name}", []).extend(self.contrib.get(name, []))
                continue
            ranks = tuple(self.env[name])
            if isinstance(expr, ir.Scan):
                self.back_scan(name, expr)
                continue
            g = self.total(name, ranks)
            if g is None:
                continue
            if not isinstance(g, ir.Ref):
                g = self.bind(f"d{name}", g)
            self.root = (expr, name)
            self.back(expr, g, name)
        outs: list[tuple[str, int | None]] = []
        for x in wrt:
            ranks = self.inputs[x].ranks
            g = self.total(f"input:{x}", ranks)
            if g is None:     # no path from x to an output: the gradient is 0 (x is finite, so 0*x = 0)
                g = ir.Map("mul", ranks, (ir.Const(0.0), self.inputs[x]))
            name = f"d{x}"
            self.bindings[name] = ir.Binding(name, self.widen(g, ranks))
            outs.append((name, None))
        gradient = ir.Program(f"grad({self.file})", self.bindings, outs, dict(prog.sizes))
        program_ranks(gradient)      # every derived term is well-ranked (else an internal error, not a result)
        return Derivation(gradient, stops, justification)


def _describe(e: ir.Expr) -> str:
    match e:
        case ir.Reduce(op=op, rank=r):
            return f"R_{op}_{r}"
        case ir.Map(op=op, space=space):
            return f"M_{op}_{''.join(space)}"
        case ir.Scan(name=name, rank=r):
            return f'S_scan_{r} "{name}" (a running max)'
    return type(e).__name__


def derive(program: ir.Program, wrt: list[str] | None = None) -> Derivation:
    return _Deriver(program).run(wrt)


__all__ = ["Derivation", "GradError", "StopUnit", "derive"]
