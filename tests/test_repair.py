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
from verify.options import Options
from verify.repair import candidates, parse
from verify.targets import select

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
    (claim,) = select(f"{FILE}:local-shift", Options())
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
    (claim,) = select(f"{FILE}:{rule}", Options())
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


def _apply(explanations: list[dict], text: str, wants: list[str]) -> str:
    """The rule file with, for each explained rule, the repair whose change names `want` put in its place."""
    for explanation, want in zip(explanations, wants):
        (chosen,) = [r for r in explanation["repairs"] if want in r["change"]][:1]
        text = text.replace(rule_source(text, explanation["result"]["line"]), chosen["rule"])
    return text


@pytest.mark.slow
def test_repaired_file_exported_explicitly_drives_optimize_from_3_to_2_passes(tmp_path):
    """The hand-off without hand edits: explain's repairs, export --explicit, optimize, validated."""
    code, out, _ = run_cli("explain", f"{FILE}:local-shift", f"{FILE}:deferred-output", "--json", "--no-sympy",
                           "--cache", "off")
    repaired = tmp_path / "repaired.egg"
    repaired.write_text(_apply(json.loads(out), FILE.read_text(),
                               ["(M_exp_m1p (M_sub_m1p (R_max_m0 s) rowmax))",
                                "(R_add_m1 (R_add_m0 fixed)); insert the correction factor fix"]))
    exported = tmp_path / "explicit.egg"
    # the repaired shift (under exp, with its correction) is certified for all sizes (the lift's exp product rule)
    code, out, _ = run_cli("check", f"{repaired}:local-shift", "--no-sympy", "--cache", "off", "--plain")
    assert code == 0 and "local-shift: CERTIFIED (all sizes" in out
    # without --explicit nothing implicit is exported, and writing 0 of N rules is a failure
    code, out, err = run_cli("export", "--rules", repaired, "-o", tmp_path / "plain.egg", "--no-sympy")
    assert code == 1 and "none of the" in err and "export --explicit" in out
    code, out, err = run_cli("export", "--explicit", "--rules", repaired, "-o", exported, "--no-sympy")
    assert code == 0, out + err
    assert "view: split-unsplit" in exported.read_text()
    code, out, _ = run_cli("check", exported, "--no-sympy", "--cache", "off", "--plain")   # read back: certified
    assert code == 0 and "REFUTED" not in out
    code, out, err = run_cli("optimize", repaired, "--rules", exported, "--cost", "passes", "--no-sympy")
    assert code == 0, err
    assert "; input:  passes 3" in out and "; output: passes 2" in out
    assert "translation validation): CERTIFIED (all sizes" in out
    assert "deferred-output" in out.split("rules that matched:")[1].split("; extraction")[0]


@pytest.mark.slow
def test_several_rule_sources_and_the_builtin_library(tmp_path):
    program = SEED / "program_3pass.egg"
    code, out, err = run_cli("optimize", program, "--rules", "builtin", FILE, "--no-sympy")
    assert code == 0, err
    assert "; output: passes 1" in out
    code, _, err = run_cli("optimize", program, "--rules", tmp_path / "missing", "--no-sympy")
    assert code == 2 and "--rules" in err and "no such file" in err


@pytest.mark.slow
def test_optimize_output_keeps_the_inputs_datatype_and_sizes_and_reads_back(tmp_path):
    program = SEED / "program_3pass.egg"
    out_file = tmp_path / "opt.egg"
    code, out, err = run_cli("optimize", program, "--rules", "builtin", "--no-sympy", "--no-scan", "-o", out_file)
    assert code == 0, err
    text = out_file.read_text()
    assert "(CreateTensor i64 i64 String)" in text and '(CreateTensor 32 256 "Q")' in text
    assert "; added by verify optimize" in text          # operators the seed's datatype lacks are declared
    code, out, err = run_cli("run", out_file, "--no-sympy")   # egglog reads it back under its own datatype
    assert code == 0, out + err
    code, out, err = run_cli("equiv", program, out_file, "--no-sympy", "--cache", "off")
    assert code == 0, out + err


@pytest.mark.slow
def test_run_extracts_by_the_cost_model_and_validates(tmp_path):
    code, out, err = run_cli("run", SEED / "program_2pass_tiles.egg", "--cost", "passes", "--no-sympy")
    assert code == 0, out + err
    assert "extracted by verify's extractor, --cost passes" in out and "passes 2" in out
    code, out, err = run_cli("run", FILE, "--cost", "passes", "--no-sympy")
    # the buggy local-shift rule lets egglog merge the 3-pass with an ill-ranked 1-pass term: it is not validated
    assert code == 1 and "not validated" in out
    assert "Global" not in err and out.count("should start with `$`") <= 1


def test_the_positive_analysis_makes_only_divisions_by_sums_of_exps_finite():
    """A rewrite asks `(finite ?x)` of its variables; a quotient is finite only when its denominator is known
    positive: a sum or max of exps of finite values, never a sum of arbitrary reals or a difference."""
    from verify.egglog import ANALYSIS, analysis_rules, new_egraph, prelude, run_text
    from verify.egglog.session import holds

    ops = {"CreateTensor", "Const", "M_exp_mp", "M_div_mp", "M_sub_mp", "R_add_m", "R_max_m", "T_split_m_m1m0",
           "R_add_m0", "R_add_m1", "M_mul_mp"}
    egraph = new_egraph()
    a, b = '(CreateTensor "A[m,p]")', '(CreateTensor "B[m,p]")'
    run_text(egraph, prelude(ops) + analysis_rules(ops) + f"(finite {a})\n(finite {b})\n"
             f"(let $e (M_exp_mp {b}))\n"
             f"(let $good (M_div_mp {a} (R_add_m $e)))\n"
             f"(let $tiled (M_div_mp {a} (R_add_m1 (R_add_m0 (T_split_m_m1m0 $e 4)))))\n"
             f"(let $prod (M_div_mp {a} (M_mul_mp $e (R_max_m $e))))\n"
             f"(let $plain (M_div_mp {a} (R_add_m {b})))\n"
             f"(let $diff (M_div_mp {a} (M_sub_mp $e $e)))\n"
             f"(run-schedule (saturate (run {ANALYSIS})))\n")
    assert holds(egraph, "(check (finite $good))") and holds(egraph, "(check (finite $tiled))")
    assert holds(egraph, "(check (finite $prod))")
    assert not holds(egraph, "(check (finite $plain))")     # a sum of reals may be 0
    assert not holds(egraph, "(check (finite $diff))")      # exp(b) - exp(b) = 0


@pytest.mark.slow
def test_explicit_export_leaves_out_refuted_rules_and_reads_back_certified(tmp_path):
    out_file = tmp_path / "explicit.egg"
    code, out, err = run_cli("export", "--explicit", "--rules", FILE, "-o", out_file, "--no-sympy")
    assert code == 1                                      # two rules of the file are refuted
    assert "not exported: local-shift" in out and "not exported: deferred-output" in out
    text = out_file.read_text()
    assert ':name "local-shift"' not in text and ':name "deferred-output"' not in text
    assert ':name "two-level-max"' in text and "(T_split_m_m1m0 ?s 4)" in text     # the split it was checked with
    code, out, _ = run_cli("check", out_file, "--no-sympy", "--cache", "off", "--plain")
    assert code == 0 and "REFUTED" not in out and "two-level-max: CERTIFIED (all sizes" in out
