"""The conventions of real kernels (proofs/conventions/) and FlexAttention's softcap (proofs/flex/): each gets the
verdict README "Conventions of real kernels" states; the wrong twins are in tests/corpus/false/pair-*."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from verify import cli, numerics
from verify.evaluate import Mp, evaluate
from verify.gate import check_by_kind
from verify.options import Options
from verify.reader import read_file, read_text
from verify.targets import read_chain
from verify.verdict import Verdict

ROOT = Path(__file__).resolve().parent.parent
PROOFS = ROOT / "proofs"
FAST = Options(isolate=False, sympy=False)


def verdicts(chain: str):
    return [(c.name, check_by_kind(c, FAST)) for c in read_chain(PROOFS / chain)]


@pytest.mark.slow
@pytest.mark.parametrize("chain", ["flex/softcap.chain.toml", "flex/softcap_param.chain.toml"])
def test_softcap_certified_for_all_sizes(chain):
    ((name, result),) = verdicts(chain)
    assert result.verdict is Verdict.CERTIFIED, result.detail
    assert str(result.bound) == "all sizes (E, P, M, F, M1, M0 symbolic)"


@pytest.mark.slow
def test_triton_init_for_all_sizes_and_base2_at_the_bound():
    (triton, r1), (base2, r2) = verdicts("conventions/kernels.chain.toml")
    assert r1.verdict is Verdict.CERTIFIED and str(r1.bound) == "all sizes (E, P, M, F, M1, M0 symbolic)"
    # exp2 is outside the lift (log 2 in an exponent): certified at the bound, and it says so
    assert r2.verdict is Verdict.CERTIFIED and "all sizes" not in str(r2.bound)
    assert "exp2" in r2.engines["unbounded"] or "log2" in r2.engines["unbounded"]
    assert not r2.warnings, r2.warnings        # log2(exp(1)) is a constant: no overflow warning


@pytest.mark.slow
def test_empty_row_conventions_on_every_mask_pattern():
    results = verdicts("conventions/empty_rows.chain.toml") + verdicts("conventions/lse.chain.toml")
    for name, result in results:
        assert result.verdict is Verdict.CERTIFIED, (name, result.detail)
        # base 2 with log2(e) folded keeps every exp argument <= 0 (the unshifted LSE definition does not)
        assert not result.warnings or name.startswith("LSE by definition"), (name, result.warnings)
    # only flash-attn's LSE (+inf on an empty row) needs the assumption
    assumed = [name for name, r in results if r.assumptions]
    assert assumed == ["FlexAttention LSE -> flash-attn LSE (+inf on an empty row), on rows that keep a key"]


def test_sentinel_vanishes_in_float64_at_ordinary_scores():
    """The sentinel is refuted (tests/corpus/false/pair-sentinel-*), but at ordinary scores its error is the
    weight exp(-1e6 - max) of the masked keys, which float64 rounds to 0."""
    rows = numerics.compare([str(PROOFS / "conventions/sentinel_3pass.egg")], {"m": 64, "e": 8, "p": 8, "f": 4},
                            reference=str(PROOFS / "masked/attention_masked.egg"))
    f64 = [r for r in rows if r.dtype == "float64" and "reference evaluator" in r.against]
    assert f64 and all(r.max_abs_error == 0.0 for r in f64)


@pytest.mark.slow
def test_optimize_turns_the_softcap_3pass_into_one_pass():
    """egglog knows s / 50 is finite (a division by a nonzero constant), so the certified rules apply through the
    softcap; the result is translation-validated for all sizes."""
    out, err = io.StringIO(), io.StringIO()
    code = cli.run(["optimize", str(PROOFS / "flex/softcap_3pass.egg"), "--cost", "passes"], out, err)
    text = out.getvalue()
    assert code == 0, err.getvalue()
    assert "; output: passes 1" in text and "(M_tanh_mp (M_div_mp QK (Const 50.0)))" in text
    assert "CERTIFIED (all sizes" in text


def test_sentinel_difference_is_within_the_stated_bound():
    """README's bound for a row that keeps a key: |sentinel - exact| <= 2 * (masked keys) * exp(sentinel - max kept
    score) * max|V|. Checked exactly (mpmath) with the sentinel moved to -20, where the difference is visible:
    it is never 0 (not an equivalence) and never above the bound."""
    text = (PROOFS / "conventions/sentinel_3pass.egg").read_text().replace("-1000000.0", "-20.0")
    sentinel = read_text(text, "sentinel-20").program
    exact = read_file(PROOFS / "masked/attention_masked.egg").program
    mp = Mp(40)
    rng = np.random.default_rng(0)
    sizes = {"e": 2, "m": 6, "p": 3, "f": 2}
    for _ in range(5):
        q, k, v = rng.normal(size=(2, 3)) * 3, rng.normal(size=(2, 6)) * 3, rng.normal(size=(2, 6))
        b = np.where(rng.random((6, 3)) < 0.5, -np.inf, 0.0)
        b[rng.integers(0, 6), :] = 0.0                        # every row keeps a key
        inputs = {"Q": q, "K": k, "V": v, "B": b}
        as_mp = {n: np.vectorize(mp.const, otypes=[object])(x) for n, x in inputs.items()}
        got = evaluate(sentinel.bindings, ["AV"], sizes, as_mp, mp)["AV"].data
        want = evaluate(exact.bindings, ["AV"], sizes, as_mp, mp)["AV"].data
        scores = q.T @ k                                      # [p, m]
        for p in range(3):
            kept = b[:, p] == 0
            bound = 2 * (~kept).sum() * mp.mp.exp(-20 - scores[p, kept].max()) * np.abs(v).max()
            for f in range(2):
                diff = abs(got[f, p] - want[f, p])
                assert diff <= bound
                assert (diff > 0) == bool((~kept).any())
