"""The conventions of real kernels (proofs/conventions/) and FlexAttention's softcap (proofs/flex/): each gets the
verdict README "Conventions of real kernels" states; the wrong twins are in tests/corpus/false/pair-*."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from verify import cli, numerics
from verify.driver import Options
from verify.gate import check_claim
from verify.sources import read_chain
from verify.verdict import Verdict

ROOT = Path(__file__).resolve().parent.parent
PROOFS = ROOT / "proofs"
FAST = Options(isolate=False, sympy=False)


def verdicts(chain: str):
    return [(c.name, check_claim(c, FAST)) for c in read_chain(PROOFS / chain)]


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
    # only flash-attn's LSE (+inf on an empty row) needs the assumption
    assumed = [name for name, r in results if r.assumptions]
    assert assumed == ["FlexAttention LSE -> flash-attn LSE (+inf on an empty row), on rows that keep a key"]


def test_sentinel_vanishes_in_float64_at_ordinary_scores():
    """The sentinel is refuted (tests/corpus/false/pair-sentinel-*), but at ordinary scores its error is the
    weight exp(-1e6 - max) of the masked keys, which float64 rounds to 0."""
    rows = numerics.compare([str(PROOFS / "conventions/sentinel_3pass.egg")], {"M": 64, "E": 8, "P": 8, "F": 4},
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
