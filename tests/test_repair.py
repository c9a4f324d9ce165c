"""`verify explain` proposes repairs of a refuted rule, each certified by the checker (verify/repair.py).

The rule file is tests/seed/rules_repairable.egg, in the seed's style with the seed's two bugs: a shift rule
with a free max and no correction (like the seed's Rule 5) and a union rule whose denominator no fact ties
(like its Step 2). A repair shown must be what was checked: written back into the file, it is certified by
`verify check`, and the original stays refuted.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from verify.certified_rules import rule_source
from verify.cli import run
from verify.explain import select
from verify.repair import candidates, parse

SEED = Path(__file__).resolve().parent / "seed"
FILE = SEED / "rules_repairable.egg"


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = run([str(a) for a in argv], out, err)
    return code, out.getvalue(), err.getvalue()


def test_sexpressions_keep_their_spans_past_comments_and_strings():
    text = '(rule ((= a (f "x)" b))) ; (not this\n  ((union a c)))'
    tree = parse(text)
    assert tree.head == "rule" and text[tree.end - 1] == ")" and tree.end == len(text)
    fact = tree.kids[1].kids[0]
    assert text[fact.start:fact.end] == '(= a (f "x)" b))'


def test_candidates_tie_only_variables_one_side_reads():
    (claim,) = select(f"{FILE}:local-shift")
    edits = candidates(rule_source(FILE.read_text(), claim.line), claim)
    ties = [change for kind, change, _ in edits if kind == "tie"]
    assert ties and all("`rowmax`" in c for c in ties)      # s is read by both sides: never tied


@pytest.mark.slow
@pytest.mark.parametrize("rule,needle", [("local-shift", "rowmax"), ("deferred-output", "(= den ")])
def test_a_refuted_rule_gets_a_certified_repair_that_checks_again(tmp_path, rule, needle):
    code, out, err = run_cli("explain", f"{FILE}:{rule}", "--json", "--no-sympy", "--cache", "off")
    assert code == 1, err
    (explanation,) = json.loads(out)
    assert explanation["result"]["verdict"] == "REFUTED"
    repairs = explanation["repairs"]
    assert repairs, "no certified repair"
    assert all(r["verdict"] == "CERTIFIED" for r in repairs)
    best = repairs[0]
    assert "all sizes" in best["bound"]
    # written back into the file, the repaired rule is certified by `verify check`; the original is not
    text = FILE.read_text()
    (claim,) = select(f"{FILE}:{rule}")
    original = rule_source(text, claim.line)
    fixed = tmp_path / "fixed.egg"
    fixed.write_text(text.replace(original, best["rule"]))
    code, out, _ = run_cli("check", f"{fixed}:{rule}", "--no-sympy", "--cache", "off", "--plain")
    assert code == 0 and "CERTIFIED" in out, out
    if rule == "deferred-output":   # the untied denominator is tied, and the correction factor inserted
        assert any(needle in r["rule"] and "M_exp_m1m0p (M_sub_m1m0p tmax rmax)" in r["rule"] for r in repairs)
    else:
        assert any(r["kind"] == "correction" for r in repairs) and any("tie" in r["kind"] for r in repairs)


@pytest.mark.slow
def test_the_text_form_prints_each_repair_as_a_diff():
    code, out, _ = run_cli("explain", f"{FILE}:local-shift", "--no-sympy", "--cache", "off", "--plain")
    assert code == 1
    assert "repairs (" in out and "each one shown is CERTIFIED" in out
    assert "-  (M_sub_mp s rowmax)" in out or "-(rewrite (M_sub_mp s rowmax)" in out


@pytest.mark.slow
def test_the_json_lists_repairs_in_the_schema():
    jsonschema = pytest.importorskip("jsonschema")
    code, out, _ = run_cli("explain", f"{FILE}:local-shift", "--json", "--no-sympy", "--cache", "off")
    schema = json.loads((Path(__file__).resolve().parent.parent / "schemas" / "explain.schema.json").read_text())
    jsonschema.validate(json.loads(out), schema)
