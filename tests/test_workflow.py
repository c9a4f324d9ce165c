"""The user's workflow end to end: the tutorial (check -> explain -> fix -> check), the rich terminal output,
`verify report`, the pytest plugin with JUnit XML, and the gate configuration files."""

from __future__ import annotations

import io
import json
import re
import time
import xml.etree.ElementTree as ET
from argparse import Namespace
from pathlib import Path

import pytest

from verify import cli
from verify.cli.output import Progress

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

FALSE_RULE = """\
; factor-out: pull the factor c out of the sum over m
(rewrite (R_add_m (M_mul_mp c x)) (M_mul_p (R_max_m c) (R_add_m x)))
"""
FIXED_RULE = FALSE_RULE.replace("(R_max_m c)", "c")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def verify(*argv, out=None):
    out = out if out is not None else io.StringIO()
    err = io.StringIO()
    code = cli.run([str(a) for a in argv], out, err)
    return code, out.getvalue(), err.getvalue()


# -- the tutorial ------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_tutorial_check_explain_fix_check(tmp_path, monkeypatch):
    """The README tutorial, command by command, in a fresh directory."""
    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    Path("myrules").mkdir()
    rule = Path("myrules/factor.egg")
    rule.write_text(FALSE_RULE)

    code, out, err = verify("check", rule)
    assert code == 1, err
    assert "factor-out: REFUTED" in out
    assert "counterexample" in out and "inputs:" in out and "c[m, p]:" in out
    assert "1 checked: 1 refuted" in out

    code, out, err = verify("explain", rule)
    assert code == 1, err                           # explaining does not make the rule true
    assert "smallest failing sizes: M=2" in out
    assert "certified at exactly these sizes: M=1" in out
    assert "certified under precondition M=1" in out
    assert "certified under precondition c constant along m" in out
    assert "does not help: c >= 0" in out           # refuted candidates are named as such
    assert "=> certified under precondition: M=1 | c constant along m" in out

    rule.write_text(FIXED_RULE)                     # state the precondition: c has no rank m
    code, out, err = verify("check", rule)
    assert code == 0, out + err
    assert "factor-out: CERTIFIED (all sizes (M, P symbolic); unbounded: factor-out (linearity)" in out
    assert time.monotonic() - start < 30


@pytest.mark.slow
def test_explain_positive_precondition_and_json(tmp_path):
    path = tmp_path / "div.egg"
    path.write_text("; div-cancel: (a/b)*b = a\n(rewrite (M_mul_p (M_div_p a b) b) a)\n")
    code, out, _ = verify("explain", f"{path}:div-cancel", "--json", "--cache", "off")
    assert code == 1
    (entry,) = json.loads(out)
    assert entry["result"]["verdict"] == "REFUTED"
    status = {p["precondition"]: p["status"] for p in entry["preconditions"]}
    assert status["b > 0"] == "certified"            # b = exp(t): a bounded proof under the precondition
    assert status["b >= 0"] == "refuted"             # b = 0 still breaks it
    assert status["a > 0"] == "refuted"


@pytest.mark.slow
def test_explain_selects_by_name_or_line_and_reports_unknown_names(tmp_path):
    path = tmp_path / "two.egg"
    path.write_text("; good: x = x\n(rewrite (M_exp_p x) (M_exp_p x))\n"
                    "; bad: exp x = x\n(rewrite (M_exp_p x) x)\n")
    code, out, _ = verify("explain", f"{path}:2", "--cache", "off")
    assert code == 0 and "nothing to explain" in out
    code, out, _ = verify("explain", f"{path}:bad", "--cache", "off")
    assert code == 1 and "bad: REFUTED" in out
    code, _, err = verify("explain", f"{path}:badd")
    assert code == 2 and "no rule or step named 'badd'" in err and "bad" in err


# -- terminal output ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_rich_output_has_verdict_table_and_tensor_tables(tmp_path):
    (tmp_path / "bad.egg").write_text(FALSE_RULE)
    code, out, _ = verify("check", tmp_path / "bad.egg", ROOT / "rules" / "tiling.egg", "--cache", "off",
                          "--no-sympy", out=Terminal())
    assert code == 1
    text = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert "verdicts" in text and "CERTIFIED" in text and "REFUTED" in text
    assert "c[m, p]" in text and "x[m, p]" in text and "lhs[p]" in text   # one table per tensor, named ranks
    assert "m=0" in text and "p=0" in text                               # rows and columns named by rank
    assert "┃" in text                                                   # a rich table, not the plain text


@pytest.mark.slow
def test_plain_output_when_not_a_terminal_and_json_unchanged(tmp_path):
    (tmp_path / "bad.egg").write_text(FALSE_RULE)
    code, out, _ = verify("check", tmp_path / "bad.egg", "--cache", "off")
    assert code == 1 and "┃" not in out and "\x1b[" not in out and "c[m, p]:" in out
    code, out, _ = verify("check", tmp_path / "bad.egg", "--cache", "off", "--json", out=Terminal())
    assert json.loads(out)[0]["verdict"] == "REFUTED"


def test_progress_bar_counts_results():
    from verify.sizes import NO_BOUND
    from verify.verdict import Result, Verdict

    out = Terminal()
    args = Namespace(json=False, plain=False, paths=[str(ROOT / "rules" / "tiling.egg")])
    with Progress(args, out) as progress:
        assert progress is not None
        progress._start()                           # as if the run had taken more than a second
        progress(Result("r", "f", 1, "rule", Verdict.CERTIFIED, NO_BOUND, "-", 0.0))
        task = progress.progress.tasks[0]
        assert task.completed == 1 and task.total == 6
    with Progress(Namespace(json=False, plain=True, paths=[]), Terminal()) as progress:
        assert progress is None                     # --plain: no bar
    with Progress(Namespace(json=False, plain=False, paths=[]), io.StringIO()) as progress:
        assert progress is None                     # not a terminal: no bar


# -- report ------------------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("fmt,name", [("html", "index.html"), ("md", "index.md")])
def test_report_lists_rules_steps_and_programs(tmp_path, fmt, name):
    (tmp_path / "bad.egg").write_text(FALSE_RULE)
    paths = [ROOT / "rules" / "tiling.egg", tmp_path / "bad.egg", ROOT / "proofs" / "attention.egg",
             ROOT / "proofs" / "attention_2pass.egg"]
    code, out, err = verify("report", "-o", tmp_path / "site", *paths, "--format", fmt, "--cache", "off",
                            "--no-sympy")
    assert code == 1, err
    assert f"wrote {tmp_path / 'site' / name}" in out
    page = (tmp_path / "site" / name).read_text()
    for needle in ("split-max", "factor-out", "CERTIFIED", "REFUTED", "M1&lt;=4" if fmt == "html" else "M1<=4",
                   "normal form", "attention.egg", "counterexample"):
        assert needle in page, needle
    results = json.loads((tmp_path / "site" / "results.json").read_text())
    assert {r["name"] for r in results} >= {"split-max", "factor-out"}


# -- the pytest plugin -------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_pytest_plugin_items_failure_message_and_junit(pytester):
    pytester.makefile(".egg", **{"rules/good": "; exp-rescale: e^(a-b) e^(b-c) = e^(a-c)\n"
                                 "(rewrite (M_mul_p (M_exp_p (M_sub_p a b)) (M_exp_p (M_sub_p b c)))"
                                 " (M_exp_p (M_sub_p a c)))\n",
                                 "rules/bad": FALSE_RULE})
    junit = pytester.path / "rules.xml"
    result = pytester.runpytest("rules", f"--junitxml={junit}", "--verify-no-sympy", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*factor-out: REFUTED*", "*counterexample*"])
    suite = ET.parse(junit).getroot().find("testsuite")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == {"exp-rescale", "factor-out"}
    failure = cases["factor-out"].find("failure")
    assert "REFUTED" in failure.get("message") and "counterexample" in failure.text
    props = {p.get("name"): p.get("value") for p in cases["exp-rescale"].iter("property")}
    assert props["verdict"] == "CERTIFIED" and props["method"]


@pytest.mark.slow
def test_pytest_plugin_leaves_testpaths_alone(pytester):
    """Rule files inside testpaths (a corpus of false rules) are not collected by a plain `pytest`."""
    pytester.makeini("[pytest]\ntestpaths = tests\n")
    pytester.makefile(".egg", **{"tests/corpus/bad": FALSE_RULE})
    pytester.makepyfile(**{"tests/test_ok": "def test_ok():\n    pass\n"})
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest("tests", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest("--verify-rules", "tests/corpus", "--verify-no-sympy", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result = pytester.runpytest("--verify-rules", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


@pytest.mark.slow
def test_pytest_plugin_expect_refuted_is_a_strict_xfail(pytester):
    pytester.makefile(".egg", **{"corpus/bad": "; expect: refuted\n" + FALSE_RULE})
    result = pytester.runpytest("corpus", "--verify-no-sympy", "-p", "no:cacheprovider")
    result.assert_outcomes(xfailed=1)


GOOD_RULE = ("; exp-rescale: e^(a-b) e^(b-c) = e^(a-c)\n"
             "(rewrite (M_mul_p (M_exp_p (M_sub_p a b)) (M_exp_p (M_sub_p b c))) (M_exp_p (M_sub_p a c)))\n")


def _plugin_verdicts(pytester, *argv) -> dict[str, str]:
    junit = pytester.path / "gate.xml"
    pytester.runpytest(*argv, f"--junitxml={junit}", "--verify-no-sympy", "-p", "no:cacheprovider")
    cases = ET.parse(junit).getroot().find("testsuite").iter("testcase")
    return {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}.get("verdict")
            for case in cases}


@pytest.mark.slow
def test_pytest_plugin_and_verify_check_are_one_gate(pytester, monkeypatch):
    """The plugin checks through the gate of `verify check`: the same verdicts for the same file, a failed
    vacuity guard makes both UNKNOWN, and a bound naming a rank no rule has is bad input to both."""
    from verify import vacuity

    pytester.makefile(".egg", **{"rules/mixed": GOOD_RULE + FALSE_RULE})
    rules = pytester.path / "rules"

    def check_verdicts():
        code, out, _ = verify("check", rules, "--json", "--no-sympy", "--cache", "off")
        return {r["name"]: r["verdict"] for r in json.loads(out)}

    assert _plugin_verdicts(pytester, "rules") == check_verdicts() == {"exp-rescale": "CERTIFIED",
                                                                        "factor-out": "REFUTED"}
    monkeypatch.setattr(vacuity, "_GUARD", (False, "forced for the test"))
    assert _plugin_verdicts(pytester, "rules") == check_verdicts() == {"exp-rescale": "UNKNOWN",
                                                                        "factor-out": "UNKNOWN"}
    monkeypatch.undo()
    assert verify("check", rules, "--bound", "Q=3", "--no-sympy")[0] == 2
    result = pytester.runpytest("rules", "--verify-bound", "Q=3", "--verify-no-sympy", "-p", "no:cacheprovider")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*--bound names rank Q, which no claim checked here has*"])


# -- gate configuration ------------------------------------------------------------------------------------------

def test_gate_configuration_runs_verify_check_on_rule_files_with_the_cache():
    workflow = (ROOT / ".github" / "workflows" / "proof-gate.yml").read_text()
    hooks = (ROOT / ".pre-commit-hooks.yaml").read_text()
    config = (ROOT / ".pre-commit-config.yaml").read_text()
    for text in (workflow, hooks, config):
        assert "verify check" in text and ".verify-cache" in text
        assert "tests/(corpus|soundness)" in text or "tests/corpus" in text
    assert "id: verify-rules" in hooks and "id: verify-rules" in config
    # the exact dependents of a change (verify/deps.py), deleted files included: no --diff-filter
    assert "--staged" in hooks and "--staged" in config and "always_run: true" in hooks
    assert "--changed-since" in workflow and "verify deps --changed-since" in workflow
    assert "diff-filter" not in workflow
    assert "actions/cache" in workflow
