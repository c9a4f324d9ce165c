"""Chain steps justified by rules (`by = "rules"`): every named rule is certified now, egglog rewrites the `from`
program into the `to` program with exactly those rules, and the whole-program equivalence double-checks it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import run_cli

from verify import certified_rules, gate
from verify.errors import ParseError
from verify.gate import check_by_kind, check_claims
from verify.options import Options
from verify.rules_step import weakest_bound
from verify.sizes import NO_BOUND, SizeBound
from verify.targets import read_chain
from verify.verdict import Result, Verdict

ROOT = Path(__file__).resolve().parent.parent
PROOFS = ROOT / "proofs"
FAST = Options(isolate=False, sympy=False)


def chain_file(tmp_path: Path, steps: str, header: str = "") -> Path:
    path = tmp_path / "proofs" / "c.chain.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + steps)
    return path


def derivation_step(tmp_path: Path, number: int, rules: str) -> Path:
    """A copy of step `number` of proofs/derivation.chain.toml, naming other rules."""
    steps = re.split(r"\n(?=\[\[step\]\])", (PROOFS / "derivation.chain.toml").read_text())[1:]
    step = re.sub(r"rules = \[.*\]", f"rules = {rules}", steps[number - 1])
    step = re.sub(r'(from|to) = "', lambda m: f'{m.group(1)} = "{PROOFS}/', step)
    return chain_file(tmp_path, step, f'rules_dir = "{ROOT / "rules"}"\nbound = "M1=8,M0=4,F=2"\n')


@pytest.mark.slow
def test_derivation_chain_certified_by_rules():
    claims = read_chain(PROOFS / "derivation.chain.toml")
    assert len(claims) == 4 and all(c.by_rules is not None for c in claims)
    assert Path(claims[0].lhs.file).name == "attention.egg"
    assert Path(claims[-1].rhs.file).name == "attention_1pass.egg"
    bounds = []
    for claim in claims:
        result = check_by_kind(claim, FAST)
        assert result.verdict is Verdict.CERTIFIED, result.detail
        assert result.method.startswith(f"rules: {', '.join(claim.by_rules.rules)} (egglog, ")
        assert result.engines["egglog"].startswith("connected after")
        assert result.engines["equivalence"].startswith("CERTIFIED")
        assert all(result.engines[f"rule {r}"].startswith("CERTIFIED") for r in claim.by_rules.rules)
        bounds.append(str(result.bound))
    # each step holds at the weakest bound of its rules: every rule is lifted to all sizes (verify/induction/rule_level/)
    assert bounds == ["all sizes (every rule holds at all sizes)"] * 4
    assert all("; shapes: " in check_by_kind(c, FAST).method for c in claims[:1])


@pytest.mark.slow
def test_rules_steps_in_parallel_with_isolated_children():
    """--jobs 2 runs claims in threads; egglog runs in this process, the proofs in forked children."""
    claims = read_chain(PROOFS / "derivation.chain.toml")[:2]
    results = check_claims(claims, Options(sympy=False, jobs=2, timeout=60))
    assert [r.verdict for r in results] == [Verdict.CERTIFIED] * 2, [r.detail for r in results]


@pytest.mark.slow
def test_rules_that_do_not_connect_the_programs_are_unknown(tmp_path):
    (claim,) = read_chain(derivation_step(tmp_path, 2, '["split-max"]'))
    result = check_by_kind(claim, FAST)
    assert result.verdict is Verdict.UNKNOWN
    assert "the named rules do not connect the programs within 12 iterations" in result.detail
    assert result.engines["equivalence"].startswith("CERTIFIED")   # equal programs, but not by these rules


@pytest.mark.slow
def test_a_rule_that_is_not_certified_now_makes_the_step_unknown(tmp_path, monkeypatch):
    real = certified_rules.check_claim

    def running_max_times_out(claim, options):
        if claim.name == "running-max":     # the rule (a program pair in rules/online/), not the step
            return Result(claim.name, claim.file, claim.line, claim.kind, Verdict.UNKNOWN, NO_BOUND, "-", 0.0,
                          detail="timeout after 60 s (process killed)")
        return real(claim, options)

    monkeypatch.setattr(certified_rules, "check_claim", running_max_times_out)   # the rules are checked there
    (claim,) = read_chain(derivation_step(tmp_path, 3, '["running-max"]'))
    result = gate.check_by_kind(claim, FAST)
    assert result.verdict is Verdict.UNKNOWN
    assert "rule 'running-max'" in result.detail and "UNKNOWN" in result.detail
    assert "egglog" not in result.engines           # an uncertified rule is never used


def false_rule_chain(tmp_path: Path, bound: str) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "bad.egg").write_text("; max-is-sum: a max over m is the sum over m (false unless M = 1)\n"
                                   "(rewrite (R_max_m x) (R_add_m x))\n")
    programs = tmp_path / "proofs"
    programs.mkdir()
    (programs / "max.egg").write_text('(let X (CreateTensor "X[m,p]"))\n(let Y (R_max_m X))\n(extract Y)\n')
    (programs / "sum.egg").write_text('(let X (CreateTensor "X[m,p]"))\n(let Y (R_add_m X))\n(extract Y)\n')
    return chain_file(tmp_path, '[[step]]\nname = "max to sum"\nfrom = "max.egg"\nto = "sum.egg"\n'
                                'by = "rules"\nrules = ["max-is-sum"]\n', f'bound = "{bound}"\n')


def test_a_refuted_rule_refutes_the_step_even_where_the_programs_agree(tmp_path):
    # at M = 1 a max is a sum: the programs are equal there, but the rule that justifies the step is false
    (claim,) = read_chain(false_rule_chain(tmp_path, "M=1..1"))   # rules/ found above the chain file
    assert Path(claim.by_rules.directory).resolve() == (tmp_path / "rules").resolve()
    result = check_by_kind(claim, FAST)
    assert result.verdict is Verdict.REFUTED
    assert "justified by a refuted rule: rule 'max-is-sum'" in result.detail
    assert result.engines["rule max-is-sum"].startswith("REFUTED")
    assert result.engines["equivalence"].startswith("CERTIFIED")


def test_unequal_programs_are_refuted_with_the_equivalence_counterexample(tmp_path):
    (claim,) = read_chain(false_rule_chain(tmp_path, "M=2"))
    result = check_by_kind(claim, FAST)
    assert result.verdict is Verdict.REFUTED
    assert result.counterexample is not None and result.counterexample.replayed


def test_unknown_rule_name_is_a_located_parse_error(tmp_path):
    path = derivation_step(tmp_path, 2, '["split-max",\n         "split-summ"]')
    with pytest.raises(ParseError) as info:
        read_chain(path)
    error = info.value
    assert error.location.file == str(path)
    assert path.read_text().splitlines()[error.location.line - 1].strip().startswith('"split-summ"')
    assert "no rule named 'split-summ'" in error.cause
    assert error.hint == "did you mean 'split-sum'?"


@pytest.mark.parametrize("step, message", [
    ('by = "rules"\n', "needs rules = ["),
    ('by = "equivalence"\nrules = ["split-max"]\n', "names rules but is justified by"),
    ('by = "rules"\nrules = ["split-max"]\nunbounded = ["merge operator"]\n', "lifts equivalence steps only"),
    ('by = "magic"\n', "unknown justification"),
])


def test_malformed_rules_steps(tmp_path, step, message):
    path = chain_file(tmp_path, f'[[step]]\nname = "s"\nfrom = "{PROOFS}/attention.egg"\n'
                                f'to = "{PROOFS}/attention_2pass.egg"\n' + step, f'rules_dir = "{ROOT / "rules"}"\n')
    with pytest.raises(ParseError, match=re.escape(message)):
        read_chain(path)


def _weakest(*bounds: str) -> str | None:
    found = weakest_bound([SizeBound.parse(b) for b in bounds])
    return None if found is None else str(found)


def test_weakest_bound():
    assert _weakest("M<=2", "M1<=4, M0<=4, E<=2", "M1<=8") == "M<=2, M1<=4, M0<=4, E<=2"
    assert _weakest("all sizes (no rank is reduced or tiled)", "M1=2..8", "M1<=4") == "M1=2..4"
    assert _weakest("M1=8..8", "M1<=4") is None
    assert _weakest("all sizes, by induction").startswith("all sizes")


def test_a_bound_reads_back_from_its_text():
    for text in ("M<=2, M1=2..4", "all sizes, by induction", "all sizes (M1, M0 symbolic)", "-"):
        assert str(SizeBound.parse(text)) == text
    assert SizeBound.parse("M<=two") is None


@pytest.mark.slow
def test_a_rule_name_two_rule_files_share_is_ambiguous_in_a_rules_step(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.egg").write_text("; dup: sum over m twice\n(rewrite (R_add_m x) (R_add_m x))\n")
    (rules / "b.egg").write_text("; dup: max over m twice\n(rewrite (R_max_m x) (R_max_m x))\n")
    (tmp_path / "p.egg").write_text('(let X (CreateTensor "X[m,p]"))\n(let Y (R_add_m X))\n(extract Y)\n')
    (tmp_path / "c.chain.toml").write_text('rules_dir = "rules"\n\n[[step]]\nname = "s"\nfrom = "p.egg"\n'
                                           'to = "p.egg"\nby = "rules"\nrules = ["dup"]\n')
    code, out, err = run_cli("check", tmp_path / "c.chain.toml", "--cache", "off", "--no-sympy")
    assert code == 2 and "ambiguous" in out + err, (out, err)
