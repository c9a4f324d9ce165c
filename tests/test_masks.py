"""Predicate masks (verify/predicates.py), their bounded checks and the masked lift (rule_level/masked.py)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from verify import predicates
from verify.claims import equiv_claim
from verify.gate import check_by_kind as check_claim
from verify.induction import lift
from verify.induction.rule_level import masked
from verify.options import Options
from verify.reader import read_file, read_text
from verify.verdict import Verdict

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "tests" / "corpus" / "programs" / "masks"
MASKED = ROOT / "proofs" / "masked"
OPTIONS = Options(isolate=False, sympy=False)


def pred(text: str, params: dict | None = None) -> predicates.Predicate:
    return predicates.parse(text, ("m", "p"), {n: predicates.Param(n, lo, None) for n, lo in (params or {}).items()})


@pytest.mark.parametrize("text,sizes,params,expect", [
    ("m <= p", {"m": 3, "p": 3}, {}, [[1, 1, 1], [0, 1, 1], [0, 0, 1]]),
    ("m <= p + M - P", {"m": 3, "p": 2}, {}, [[1, 1], [1, 1], [0, 1]]),
    ("p - W < m and m <= p", {"m": 3, "p": 3}, {"W": 2}, [[1, 1, 0], [0, 1, 1], [0, 0, 1]]),
    ("m < L or m <= p", {"m": 3, "p": 3}, {"L": 2}, [[1, 1, 1], [1, 1, 1], [0, 0, 1]]),
    ("not (m > p) and 2*m >= -(0)", {"m": 2, "p": 2}, {}, [[1, 1], [0, 1]]),
])
def test_predicates_read_and_evaluate(text, sizes, params, expect):
    found = pred(text, {k: 1 for k in params})
    assert predicates.holds(found, sizes, params).astype(int).tolist() == expect
    assert np.array_equal(predicates.pattern(found, sizes, params) == 0, np.array(expect, dtype=bool))


@pytest.mark.parametrize("text,column", [("m <= q", 6), ("m <= p +", 9), ("m * p <= 1", 1), ("m < p < 3", 7),
                                         ("(m <= p", 8), ("m = p", 3), ("", 1), ("m <= p or", 10)])
def test_bad_predicates_are_located(text, column):
    with pytest.raises(predicates.PredicateError) as err:
        pred(text)
    assert err.value.column == column


def test_a_bad_predicate_in_a_file_names_file_line_and_column():
    from verify.errors import ParseError
    with pytest.raises(ParseError) as err:
        read_text('(let Q (CreateTensor "S[m,p]"))\n(let B (CreateTensor "B[m,p]:mask(m <= p + Xs)"))\n'
                  '(let R (M_add_mp Q B))\n(extract R)\n', "f.egg")
    assert str(err.value.location) == "f.egg:2" and "column 10" in err.value.cause and "'Xs'" in err.value.cause


def _claim(a: Path, b: Path):
    return equiv_claim(read_file(a).program, read_file(b).program)


def test_splits_view_the_predicate_and_the_naive_top_left_causal_holds_for_all_sizes(tmp_path):
    from verify.errors import ShapeError
    with pytest.raises(ShapeError, match="in one place"):          # the same mask, once opaque, once a predicate
        _claim(PROGRAMS / "causal_3pass.egg", MASKED / "attention_1pass_naive.egg")
    result = check_claim(_claim(PROGRAMS / "causal_3pass.egg", _naive(PROGRAMS / "causal_3pass.egg", tmp_path)),
                         OPTIONS)
    assert result.verdict is Verdict.CERTIFIED and result.bound.is_all_sizes, result
    assert "masked.first_tile" in result.method and "no row is ever empty" in result.method


def _naive(three_pass: Path, folder: Path) -> Path:
    """The naive 1-pass with the mask of `three_pass` (same predicate)."""
    line = next(x for x in three_pass.read_text().splitlines() if ":mask(" in x)
    params = [x for x in three_pass.read_text().splitlines() if x.startswith("; param:")]
    text = (MASKED / "attention_1pass_naive.egg").read_text().replace('(let B (CreateTensor "B[m,p]:mask"))', line)
    out = folder / f"naive_{three_pass.name}"
    out.write_text("\n".join(params + [text]))
    return out


def test_first_tile_obligation_separates_the_families():
    assert masked.first_tile(pred("m <= p"))[0].verdict == "proved"
    assert masked.first_tile(pred("m <= p + M - P"))[0].verdict == "proved"     # first tile empty iff row empty
    assert masked.first_tile(pred("m < L or m <= p", {"L": 1}))[0].verdict == "proved"
    ob, where = masked.first_tile(pred("p - W < m and m <= p", {"W": 1}))
    assert ob.verdict == "failed" and "keeping key" in where
    ob, _ = masked.first_tile(pred("m > p"))            # wrong direction: row 0 keeps keys 1.. only
    assert ob.verdict == "failed"


def test_empty_rows_are_named():
    assert masked.empty_rows(pred("m <= p")) == "no row is ever empty"
    assert "rows where Not(p - P + M >= 0) keep no key" in masked.empty_rows(pred("m <= p + M - P"))
    assert "keep no key" in masked.empty_rows(pred("p - W < m and m <= p", {"W": 1}))


def test_masked_lemmas_are_proved_and_a_wrong_step_is_not():
    assert all(o.verdict == "proved" for o in masked.masked_lemmas())
    from verify.induction.query import Query, discharge
    q = Query("wrong", "F + kept tile without rescaling the prefix")
    d, w = q.weight("D"), q.weight("W")
    q.real("RM"), q.real("LM")
    rm1 = q.max_def("RM1", "RM", "LM")
    got, target = q.real("got"), q.real("target")
    q.hyp(got == q.exp_diff("LM", rm1) * w + d, target == q.exp_diff("RM", rm1) * d + q.exp_diff("LM", rm1) * w)
    q.goal(got == target)
    assert discharge(q, masked.GROUP).verdict == "refuted"


def test_opaque_naive_and_unmodelled_masked_programs_are_not_lifted(tmp_path):
    claim = _claim(MASKED / "attention_masked.egg", MASKED / "attention_1pass_naive.egg")
    out = lift(claim)
    assert not out.lifted and "opaque mask" in out.reason
    wrong = (MASKED / "attention_1pass_guarded.egg").read_text().replace(
        "(S_shift_m1 RM (Const -inf)) RMS", "RMS (S_shift_m1 RM (Const -inf))")
    (tmp_path / "w.egg").write_text(wrong)
    out = lift(_claim(MASKED / "attention_masked.egg", tmp_path / "w.egg"))
    assert not out.lifted and "not a masked cascade" in out.reason


@pytest.mark.slow
def test_a_predicate_mask_claim_at_a_large_bound_takes_seconds(tmp_path):
    from verify.sizes import Bound
    claim = _claim(PROGRAMS / "causal_3pass.egg", _naive(PROGRAMS / "causal_3pass.egg", tmp_path))
    start = time.monotonic()
    result = check_claim(claim, Options(isolate=False, sympy=False, bound=Bound.parse("M1=8,M0=8")))
    assert result.verdict is Verdict.CERTIFIED and time.monotonic() - start < 120


def _tile(text: str) -> predicates.Predicate:
    return predicates.parse(text, ("m1", "p"), {})


@pytest.mark.parametrize("te,tf,ok", [
    ("m1*M0 <= p", "m1*M0 + M0 - 1 <= p", True),             # causal: skip above the diagonal, full below
    ("m1*M0 <= p + 5", "(m1 + 1)*M0 <= p", True),            # visiting empty tiles too is harmless (B applies)
    ("(m1 + 1)*M0 <= p", "m1*M0 + M0 - 1 <= p", False),      # off by one tile: the diagonal tile skipped
    ("m1*M0 <= p", "m1*M0 <= p", False),                     # a "full" tile that is not full
    ("m1*M0 <= p", "m1*M0 + M0 <= p + 1 + 1", False),        # full one key too early
])
def test_block_classification_is_proved_or_names_the_tile(te, tf, ok):
    ob, where = masked.classification(pred("m <= p"), _tile(te), _tile(tf))
    assert (ob.verdict == "proved") is ok, where
    assert ok or ("tile m1=" in where and "query p=" in where)


def test_causal_chain_is_certified_for_all_sizes_and_wrong_blocks_name_the_tile():
    from verify.targets import read_chain
    for claim in read_chain(ROOT / "proofs" / "causal.chain.toml"):
        result = check_claim(claim, OPTIONS)
        assert result.verdict is Verdict.CERTIFIED and result.bound.is_all_sizes, (claim.name, result)
    wrong = _claim(ROOT / "proofs" / "causal" / "attention_1pass.egg", PROGRAMS / "causal_blocks_skip_diagonal.egg")
    result = check_claim(wrong, OPTIONS)
    assert result.verdict is Verdict.REFUTED and "classified empty (TE) but keeps" in result.detail


def test_document_masks_read_a_sequence_and_the_bound_enumerates_every_partition():
    doc = predicates.Param("doc", 0, None, True)
    found = predicates.parse("doc[m] == doc[p]", ("m", "p"), {"doc": doc})
    assert found.params == (doc,)
    held = predicates.holds(found, {"m": 3, "p": 3}, {"doc": (0, 0, 1)}).astype(int).tolist()
    assert held == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert [len(predicates.sequences(n)) for n in range(1, 6)] == [1, 2, 5, 15, 52]     # Bell numbers
    with pytest.raises(predicates.PredicateError):
        predicates.parse("doc[m + 1] == doc[p]", ("m", "p"), {"doc": doc})


def test_index_tensors_hold_their_integer_values():
    value = predicates.parse("m - p", ("m", "p"), {}, value=True)
    assert predicates.pattern(value, {"m": 2, "p": 3}, {}).tolist() == [[0, -1, -2], [1, 0, -1]]


FALSE_PAIRS = sorted(p for p in (ROOT / "tests" / "corpus" / "false").glob("pair-*.chain.toml")
                     if any(w in p.name for w in ("causal", "window", "blocks", "alibi", "document")))


@pytest.mark.parametrize("path", FALSE_PAIRS, ids=lambda p: p.name)
def test_the_lift_alone_never_takes_a_false_masked_claim_to_all_sizes(path):
    """Without the bounded checker in front: the lift of each false pair must fail (no false 'all sizes')."""
    from verify.targets import read_chain
    for claim in read_chain(path):
        out = lift(claim)
        assert not out.lifted, (path.name, out.shape)
