"""Certified rules drive egglog: export, optimize, run, draw. Real egglog, real checker, real numbers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from xml.etree import ElementTree

import pytest
from helpers import count_files, run_cli, write

from verify import optimize as optimize_module
from verify.cost import analyze
from verify.driver import ENCODING_VERSION
from verify.egglog import new_egraph, rewrite_text, run_text
from verify.optimize import certify_rules, optimize
from verify.options import Options
from verify.printer import program_text
from verify.reader import read_file, read_text
from verify.verdict import Result

ROOT = Path(__file__).resolve().parent.parent
PROOFS = ROOT / "proofs"

GOOD = """; expect: certified
; split-max-ok: the max over m is the max over tiles of the tile maxima
(rewrite (R_max_m x) (R_max_m1 (R_max_m0 (T_split_m_m1m0 x t))))
"""
BAD = """; expect: refuted
; sum-of-exp-wrong: exp does not commute with a sum
(rewrite (R_add_m (M_exp_mp x)) (M_exp_p (R_add_m x)))
"""


@pytest.fixture(scope="module")
def library():
    """The rule library, checked once for the module (sympy off: the CLI tests check with it)."""
    statuses, errors = certify_rules(ROOT / "rules", Options(sympy=False))
    assert not errors
    return statuses


@pytest.fixture()
def mixed_rules(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "good.egg").write_text(GOOD)
    (rules / "bad.egg").write_text(BAD)
    return rules


# -- export ----------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_export_contains_only_certified_rules(mixed_rules, tmp_path):
    target = tmp_path / "out" / "certified.egg"
    code, out, err = run_cli("export", "--rules", mixed_rules, "-o", target, "--no-sympy")
    assert code == 1, err      # written, but a rule under --rules is refuted: the exit-status rule says 1
    text = target.read_text()
    rewrites = [line for line in text.splitlines() if line.startswith("(rewrite")]
    assert len(rewrites) == 1 and ':name "split-max-ok"' in rewrites[0]
    assert "sum-of-exp-wrong" in out and "REFUTED" in out            # reported, not exported
    assert "M_exp_p" not in "\n".join(rewrites)
    # the certificate: sha256 of the rule's source text and the encoding version, and the bound
    source = "(rewrite (R_max_m x) (R_max_m1 (R_max_m0 (T_split_m_m1m0 x t))))"
    digest = hashlib.sha256(f"{source}\n{ENCODING_VERSION}".encode()).hexdigest()
    assert f"sha256:{digest}" in text and "bound all sizes (M, M1, M0 symbolic)" in text
    # egglog accepts the exported program, guards and all
    run_text(new_egraph(), text, str(target))


@pytest.mark.slow
def test_export_of_a_refuted_rule_is_an_error(mixed_rules, tmp_path):
    code, out, err = run_cli("export", "--rules", mixed_rules, "--rule", "sum-of-exp-wrong", "-o",
                             tmp_path / "x.egg", "--no-sympy")
    assert code == 2 and "not certified" in err and "REFUTED" in err
    assert not (tmp_path / "x.egg").exists()
    code, _, err = run_cli("export", "--rules", mixed_rules, "--rule", "no-such-rule", "-o", tmp_path / "y.egg",
                           "--no-sympy")
    assert code == 2 and "no rule named" in err


@pytest.mark.slow
def test_exported_rewrites_are_guarded(library):
    by_name = {s.name: s.rule for s in library if s.rule is not None}
    (factor,) = rewrite_text(by_name["factor-out-of-sum"])
    assert '(set-not-contains ?r_c "m")' in factor and "(finite ?c)" in factor
    (online,) = rewrite_text(by_name["online-sum"])      # a rule written as a chain step of two programs
    assert "S_scan_m1" in online and "(finite ?R)" in online


@pytest.mark.slow
def test_guard_keeps_a_rule_to_its_ranks(library):
    # c has rank m here, so factor-out-of-sum (c constant along m) must not fire; the result must stay equal
    program = read_text('(let C (CreateTensor "C[m,p]"))\n(let X (CreateTensor "X[m,p]"))\n'
                        "(let Y (R_add_m (M_mul_mp C X)))\n(extract Y)\n", "guard.egg").program
    result = optimize(program, library, "passes", options=Options(sympy=False))
    assert result.verified
    assert "M_mul_p " not in program_text(result.program)


# -- passes and memory -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,passes,barriers", [
    ("attention.egg", 3, 2), ("attention_2pass.egg", 2, 1), ("attention_2pass_deferred.egg", 2, 1),
    ("attention_1pass.egg", 1, 0),
])


def test_passes_of_the_cascades(name, passes, barriers):
    a = analyze(read_file(PROOFS / name).program)
    assert a.passes == passes
    assert len(a.barriers) == barriers


def test_memory_is_symbolic_and_exact_on_the_dag():
    three = analyze(read_file(PROOFS / "attention.egg").program)
    one = analyze(read_file(PROOFS / "attention_1pass.egg").program)
    assert str(three.memory) == "2*M*P + 3*P"                 # QK and SN stored whole across passes
    assert "M*P" not in str(one.memory).replace("M0*P", "")   # 1-pass: tiles and O(F*P) state only
    assert one.memory_value < three.memory_value


# -- optimize ------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_optimize_rediscovers_the_one_pass_cascade(tmp_path):
    target = tmp_path / "opt.egg"
    code, out, err = run_cli("optimize", PROOFS / "attention.egg", "--cost", "passes", "--json", "-o", target)
    assert code == 0, err
    data = json.loads(out)
    assert data["verified"] is True
    assert data["input"]["passes"] == 3 and data["output"]["passes"] == 1
    assert data["egraph"]["rows"] > 0 and data["egraph"]["iterations"] >= 1
    for op in ("S_scan_m1", "S_prev_m1", "S_shift_m1", "S_last_m1"):
        assert op in data["program"]
    # the printed program reads back and is the same 1-pass cascade
    again = read_file(target).program
    assert analyze(again).passes == 1


@pytest.mark.slow
def test_optimize_without_scans_finds_a_two_pass_cascade(library):
    program = read_file(PROOFS / "attention.egg").program
    result = optimize(program, library, "passes", forbid=("S_",), options=Options(sympy=False))
    assert result.verified and result.output.passes == 2
    assert "S_" not in program_text(result.program)


@pytest.mark.slow
def test_optimize_by_memory(library):
    program = read_file(PROOFS / "attention.egg").program
    result = optimize(program, library, "memory", options=Options(sympy=False))
    assert result.verified
    assert result.output.memory_value < result.input.memory_value
    assert "M*P" not in str(result.output.memory).replace("M0*P", "")


@pytest.mark.slow
def test_translation_validation_failure_is_loud(monkeypatch):
    from verify.sizes import SizeBound
    from verify.verdict import Verdict

    def refuse(before, after, options=None):
        return [Result("x", "x", None, "equiv", Verdict.REFUTED, SizeBound((("M", 1, 2),)), "test", 0.0,
                       detail="forced")]

    monkeypatch.setattr(optimize_module, "validate_translation", refuse)
    monkeypatch.setattr(optimize_module, "same_computation", lambda a, b: False)
    code, out, err = run_cli("optimize", PROOFS / "attention.egg", "--no-sympy")
    assert code == 1 and "TRANSLATION VALIDATION FAILED" in err


# -- run and draw ------------------------------------------------------------------------------------------------------


def test_run_shows_what_egglog_extracts(tmp_path):
    code, out, err = run_cli("run", PROOFS / "attention.egg")
    assert code == 0, err
    assert "prelude" in out and "(M_mul_fmp_R_add_m (M_div_mp" in out and "passes 3" in out
    bad = tmp_path / "bad.egg"
    bad.write_text('(let Q (CreateTensor "Q"))\n(let X (M_exp_mp Q Q))\n')
    code, _, err = run_cli("run", bad)
    assert code == 2 and "bad.egg:2" in err


@pytest.mark.slow
def test_run_applies_the_files_own_rules(tmp_path):
    path = tmp_path / "prog.egg"
    path.write_text('(let Q (CreateTensor "Q"))\n(let K (CreateTensor "K"))\n(let X (R_max_m (M_mul_emp_R_add_e Q K)))\n'
                    "(rewrite (R_max_m x) (R_max_m1 (R_max_m0 (T_split_m_m1m0 x 4))))\n(run 2)\n(extract X 2)\n")
    code, out, err = run_cli("run", path)
    assert code == 0, err
    assert "R_max_m1 (R_max_m0 (T_split_m_m1m0" in out


@pytest.mark.slow
def test_draw_writes_svg(tmp_path):
    code, out, err = run_cli("draw", PROOFS / "attention_1pass.egg", "-o", tmp_path / "a.svg")
    assert code == 0, err
    written = Path(out.split("wrote ", 1)[1].split(" (")[0].strip())
    assert written == tmp_path / "a.svg"
    ElementTree.parse(written)                       # well-formed SVG


@pytest.mark.slow
def test_draw_without_dot_draws_with_networkx_and_matplotlib(tmp_path):
    """No graphviz needed: --no-dot (as on a machine without `dot`) still writes the SVG, with every node."""
    code, out, err = run_cli("draw", PROOFS / "attention.egg", "-o", tmp_path / "a.svg", "--no-dot")
    assert code == 0 and "(matplotlib)" in out, err
    svg = (tmp_path / "a.svg").read_text()
    root = ElementTree.fromstring(svg)
    assert root.tag.endswith("svg")
    assert "3 pass(es)" in svg and svg.count("BARRIER") == 2
    for name in ("GM", "SN", "SD", "AV"):
        assert f">{name}<" in svg or f"{name}\n" in svg or name in svg


@pytest.mark.slow
def test_draw_dot_source_and_unwritable_format(tmp_path):
    code, out, err = run_cli("draw", PROOFS / "attention.egg", "-o", tmp_path / "a.dot")
    assert code == 0
    text = (tmp_path / "a.dot").read_text()
    assert "3 pass(es)" in text and text.count("BARRIER") == 2 and "doubleoctagon" in text
    # a format neither renderer writes here: the .dot source instead, and exit 1 (requested file not written)
    code, out, err = run_cli("draw", PROOFS / "attention.egg", "-o", tmp_path / "a.gif", "--no-dot")
    assert code == 1 and not (tmp_path / "a.gif").exists() and "was written instead" in err


@pytest.mark.slow
def test_run_checks_a_top_level_union_as_a_claim(tmp_path):
    program = write(tmp_path / "u.egg", '(let X (CreateTensor "X[p]"))\n'
                                        "(let A (M_exp_p (M_add_p (M_exp_p X) (Const 1.0))))\n"
                                        "(let B (M_mul_p X (Const 0.0)))\n(union A B)\n(extract A)\n")
    code, out, err = run_cli("run", program)
    assert code == 1, (code, out, err)
    assert "u:4: REFUTED" in out and "counterexample" in out, out
    code, out, err = run_cli("check", "--cache", "off", program)
    assert code == 1 and "u:4: REFUTED" in out, (code, out, err)


def test_run_on_a_file_the_checker_cannot_read_says_the_extraction_is_not_validated(tmp_path):
    program = write(tmp_path / "r.egg", '(let X (CreateTensor "X[m,p]"))\n(let A (R_add_m X))\n(M_exp_p A)\n'
                                        "(extract A)\n")
    code, out, err = run_cli("run", program)
    assert code == 2, (code, out, err)
    assert "NOT validated" in out and f"{program}:3: parse error: unsupported top-level action" in err, (out, err)


@pytest.mark.slow
def test_rules_certified_only_within_a_bound_do_not_drive_egglog(tmp_path):
    """The rule is CERTIFIED at E <= 2 and false at E = 3 (the program's size): it is not exported, and optimize
    leaves the program as it is; nothing claims Z = Y."""
    rules, program = count_files(tmp_path)
    code, out, err = run_cli("export", "--rules", rules, "-o", tmp_path / "out.egg", "--no-sympy")
    assert "not exported: count-vanish" in out and "not for all sizes" in out, (out, err)
    assert "count-vanish" not in (tmp_path / "out.egg").read_text().split("; not exported")[0].replace(
        "; count-vanish", "")
    code, out, err = run_cli("optimize", program, "--rules", rules, "--cost", "memory", "--no-sympy")
    assert code == 0 and "0 of 1 rules used" in out and "(Const 2.0)" in out, (out, err)


@pytest.mark.slow
def test_allow_bounded_warns_about_declared_sizes_and_writes_no_kernel(tmp_path):
    rules, program = count_files(tmp_path)
    kernel = tmp_path / "z.py"
    code, out, err = run_cli("optimize", program, "--rules", rules, "--cost", "memory", "--no-sympy",
                             "--allow-bounded", "--emit", "torch", "--emit-output", kernel)
    assert code == 1 and "declares E=3, outside the bound" in err and not kernel.exists(), (out, err)


def test_draw_refuses_an_ill_ranked_program_and_a_file_without_a_program(tmp_path):
    ill = tmp_path / "ill.egg"
    ill.write_text('(let S (CreateTensor "S[m,p]"))\n(let T (M_add_p S (Const 1.0)))\n(extract T)\n')
    code, out, err = run_cli("draw", ill, "-o", tmp_path / "ill.svg")
    assert code == 2 and "shape error" in err and not (tmp_path / "ill.svg").exists(), (out, err)
    rules = tmp_path / "rules.egg"
    rules.write_text("(rewrite (R_max_m x) (R_max_m x))\n")
    code, out, err = run_cli("draw", rules, "-o", tmp_path / "r.svg")
    assert code == 2 and "no program to draw" in err, (out, err)
