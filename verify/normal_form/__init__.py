"""Back end: the normal form, our fast prover for sums, products, quotients, max and exp.

Every scalar is brought to a canonical form over the reals:

    value = c * m * (f1 * f2 * ...) / (g1 * g2 * ...)        subject to the conditions  h1 != 0, h2 != 0, ...

- an *atom* is an input element (finite real) or a max-term: `max` of a set of normal forms, flattened,
  deduplicated, with -inf dropped (max is associative, commutative, idempotent, and -inf is its identity);
  the set is unordered, so `max(a, b)` and `max(b, a)` are the same atom; `log(c)` of a constant c > 0 and
  `log(f)` of a normalised positive factor f (below) are opaque atoms too;
- `m` is a Laurent monomial in atoms times `exp(P)` for a polynomial P (`exp(a) * exp(b) = exp(a + b)` and
  `exp(0) = 1`: every exp is merged into one exponent per monomial, so PRM-style corrections cancel);
- `c` is an exact rational (a Python int whenever it is integral, else a `Fraction`);
- each f_i, g_i is a polynomial with two or more terms, normalised so that it does not depend on how it was
  scaled: the least power of every atom over its terms (an absent atom has power 0) is factored out into `m`,
  and so is `coefficient * exp(P)` of its *first* term, leaving that term with coefficient 1 and `exp(0)`.
  Exponentials may be factored out freely because exp is never 0, atoms only with their least power (a
  negative power only arises from a division by that atom, made under the condition below).
  "First" is the least term in a monomial order that is compatible with multiplication (lexicographic on
  the exponent vector of the atoms, then on the coefficient vector of P), so multiplying a polynomial by a
  monomial never changes its normalised factor: `(X / D) * D = X` cancels however D was scaled. Equal
  factors in the numerator and the denominator cancel, which holds because division by D was only allowed
  under the condition D != 0 (recorded below, or implied by D > 0);
- a division by anything that is not provably positive (a sum of exponentials with positive coefficients is)
  records the condition `divisor != 0`. The value is *undefined* where a condition fails.

A sum over a rank (`R_add`) whose terms share one denominator is added in one step, and a max over a rank
(`R_max`) is flattened in one step; both give exactly the form that adding (or taking max) pairwise in index
order gives, without its quadratic cost.

Two sides are proved equal when their conditions are the same set and `lhs - rhs` normalises to 0: then
they are undefined at the same points and equal everywhere else. A value undefined everywhere (`x / 0`,
`(-inf) - (-inf)`, `(-inf) / (-inf)`, `0 * (-inf)`, `log(-inf)`) is `UNDEF`: it propagates through every
operation and is equal only to `UNDEF` (NaN semantics). Anything the form cannot express (a NaN or +inf
constant, `+inf`, `-inf` times a value of unknown sign, `log` of a value not provably positive) raises
`NotNormalizable`; the driver then falls back to numeric search and Z3 and never concludes CERTIFIED from
this module.

-inf is a separate value `NEG_INF` (inputs are finite, so an atom is never -inf): `max(-inf, x) = x`,
`-inf + x = -inf`, `exp(-inf) = 0`, `fin(-inf) = 0` (and `fin(x) = x` otherwise), `-inf * c = -inf` for a
constant c > 0 (or a provably positive c), `log(0) = -inf`; a provably positive value is
`c * exp(P) * f1... / g1...` with c > 0 and positive factors, and its log is
`log(c) + P + log(f1) + ... - log(g1) - ...` (atoms as above); conversely `exp(P + k log(f))` for an integer k
is `exp(P) * f^k` (f > 0; see `NormalForm._exp_of_logs`). A -inf
keeps the conditions of every value it absorbed (`-inf + x / y` is undefined where y = 0), so `NEG_INF` is the
-inf without conditions and `is_neg_inf` recognises every -inf.

Speed (see bench/run.py): polynomials are interned by content under an additive hash that a sum updates
term by term, so extending a long running sum by a few terms costs a dict copy, not a re-expansion; the
first term and the least atom powers of a sum are derived from those of its parts unless some term cancels
(then the sum is rescanned); `exp(P) * exp(Q)` is cached per pair of exponent ids.
"""

from .algebra import NormalForm, all_equal
from .overflow import exp_overflow_warning
from .values import NEG_INF, UNDEF, NotNormalizable, Rat, is_neg_inf

__all__ = ["NEG_INF", "UNDEF", "NormalForm", "NotNormalizable", "Rat", "all_equal", "exp_overflow_warning",
           "is_neg_inf"]
