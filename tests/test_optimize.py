"""optimize.py: what counts as the same computation, and which translation validations verify an output."""

from __future__ import annotations

import pytest

from verify import optimize
from verify.reader import read_text
from verify.sizes import SizeBound
from verify.verdict import Result, Verdict

SPLIT = ('(let K (CreateTensor 1024 4 "K[m,e]"))\n(let T (T_split_m_m1m0 K {tiles}))\n'
         '(let S (R_max_m1 (R_max_m0 T)))\n(extract S)\n')


def bounded(**ranks) -> Result:
    return Result("c", "f.egg", None, "equiv", Verdict.CERTIFIED,
                  SizeBound(tuple((r, 1, hi) for r, hi in ranks.items())), "normal form", 0.0)


def test_a_retiled_program_is_not_the_same_computation():
    four, eight = (read_text(SPLIT.format(tiles=n), "p.egg").program for n in (4, 8))
    assert optimize.same_computation(four, read_text(SPLIT.format(tiles=4), "q.egg").program)
    assert not optimize.same_computation(four, eight)


def test_only_certified_validations_verify_a_rewritten_program(monkeypatch, tmp_path):
    program = read_text(SPLIT.format(tiles=4), str(tmp_path / "p.egg")).program
    monkeypatch.setattr(optimize, "same_computation", lambda a, b: False)     # as if a rule had rewritten it
    for verdict in (Verdict.ERROR, Verdict.UNKNOWN, Verdict.REFUTED):
        validation = bounded(M1=2)
        validation.verdict = verdict
        monkeypatch.setattr(optimize, "validate_translation", lambda *a, v=validation, **k: [v])
        out = optimize.optimize(program, [])
        assert not out.verified and not out.unchanged and out.verdicts[0].verdict is verdict


def test_an_unchanged_program_is_reported_unchanged_not_validated(monkeypatch, tmp_path):
    program = read_text(SPLIT.format(tiles=4), str(tmp_path / "p.egg")).program
    monkeypatch.setattr(optimize, "validate_translation", lambda *a, **k: pytest.fail("validated an identity"))
    out = optimize.optimize(program, [])
    assert out.unchanged and out.verified and out.verdicts == []
