"""The command line as a user drives it: every command honours every flag it accepts, and hints name the command
that ran."""

from __future__ import annotations

import argparse
import io
import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import write

from verify import cli, errors, isolation
from verify.cli import commands as cli_check

ROOT = Path(__file__).resolve().parent.parent

ILL_RANKED = "(rewrite (R_add_m (R_add_m x)) (R_add_m x))\n"

GOOD = "; sum-add: the sum of a sum\n(rewrite (R_add_m (M_add_mp x y)) (M_add_p (R_add_m x) (R_add_m y)))\n"


def crash():
    raise RecursionError("maximum recursion depth exceeded")


# a rule readable only with implicit tiling (implicit.py): x has rank m on the left and is reduced over m0 on the right
TILED = "(rewrite (R_max_m x) (R_max_m1 (R_max_m0 x)))\n"
# what a command needs beyond a rule file to run at all
EXTRA = {"report": lambda tmp: ["-o", str(tmp / "report")]}


def run_cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.run([str(a) for a in argv], out, err)
    return code, out.getvalue(), err.getvalue()


def commands_accepting(flag: str) -> list[str]:
    """The subcommands whose parser accepts `flag`."""
    sub = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(name for name, p in sub.choices.items() if any(flag in a.option_strings for a in p._actions))


def test_the_flag_census_sees_the_commands():
    accepting = commands_accepting("--strict-shapes")
    assert {"check", "explain", "report", "mutate", "run"} <= set(accepting)
    assert "equiv" not in accepting and "draw" not in accepting     # programs are always read strictly
    assert commands_accepting("--certificates") == ["check"]
    assert "mutate" not in commands_accepting("--cache") and "mutate" not in commands_accepting("--no-sympy")


@pytest.mark.slow
@pytest.mark.parametrize("command", commands_accepting("--strict-shapes"))
def test_every_command_accepting_strict_shapes_refuses_an_implicitly_tiled_rule(tmp_path, command):
    rule = tmp_path / "tiled.egg"
    rule.write_text(TILED)
    extra = EXTRA.get(command, lambda tmp: [])(tmp_path)
    code, out, err = run_cli(command, rule, "--strict-shapes", *extra)
    assert code == 2, (command, out, err)
    assert f"{rule}:1: shape error: rule 'tiled:1'" in err and "Traceback" not in err


@pytest.mark.slow
def test_the_tiled_rule_is_certified_without_strict_shapes(tmp_path):
    """The strict test above could pass on a rule every reading refuses: this one is certified when read implicitly."""
    rule = tmp_path / "tiled.egg"
    rule.write_text(TILED)
    code, out, _ = run_cli("check", rule, "--cache", "off", "--no-sympy", "--plain")
    assert code == 0 and "read with implicit tiling" in out


@pytest.mark.parametrize("command", ["check", "explain"])
def test_a_missing_target_file_names_the_command_that_ran(command):
    code, _, err = run_cli(command, "nosuch.egg:foo")
    assert code == 2 and f"hint: write verify {command} FILE or FILE:RULE" in err


def test_every_command_has_a_handler():
    sub = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert len(sub.choices) >= 12
    for name, p in sub.choices.items():
        assert p.get_default("func") or callable(cli.handler(name)), name


@pytest.mark.slow
def test_checking_one_rule_imports_no_other_command(tmp_path):
    """Commands are imported when they run (cli.COMMANDS): checking a rule loads neither codegen, mutate,
    the report writer, explain nor the egglog commands."""

    rule = tmp_path / "tiled.egg"
    rule.write_text(TILED)
    script = ("import io, sys; from verify import cli; "
              f"code = cli.run(['check', {str(rule)!r} + ':1', '--cache', 'off', '--no-sympy'], io.StringIO(), "
              "io.StringIO()); print(code, ' '.join(sorted(m for m in sys.modules if m.startswith('verify'))))")
    code, loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                  check=True).stdout.split(" ", 1)
    assert code == "0" and "verify.gate" in loaded.split()
    for module in ("verify.codegen", "verify.mutate", "verify.report", "verify.explain", "verify.draw",
                   "verify.numerics", "verify.optimize", "verify.cli.egglog_commands", "verify.cli.reporting"):
        assert module not in loaded.split(), module


def test_an_internal_error_is_one_line_with_the_traceback_only_under_verify_debug(monkeypatch):
    def child_says():      # what the killable child sends back, here in this process (no fork to wait on)
        receive, send = multiprocessing.Pipe(duplex=False)
        isolation._child(send, crash, ())
        return receive.recv()

    monkeypatch.delenv(errors.DEBUG_ENV, raising=False)
    kind, detail = child_says()
    assert kind == "internal" and "\n" not in detail and "RecursionError" in detail and "report" in detail, detail
    assert errors.DEBUG_ENV in detail and "test_cli.py" in detail and "in crash" in detail
    monkeypatch.setenv(errors.DEBUG_ENV, "1")
    assert "Traceback (most recent call last)" in child_says()[1]


def test_a_crash_outside_the_engines_is_one_line_and_exit_2(monkeypatch, tmp_path):
    monkeypatch.delenv(errors.DEBUG_ENV, raising=False)
    monkeypatch.setattr(cli_check, "check_claims", lambda *a, **k: crash())
    code, out, err = run_cli("check", write(tmp_path / "r.egg", GOOD), "--cache", "off")
    assert code == 2 and err.startswith("internal error: RecursionError") and len(err.splitlines()) == 1, err


def test_numeric_refuses_sizes_whose_tensors_cannot_be_allocated():
    # M = P = 2^20 was a MemoryError (8 TiB for the scores) reported as an internal error
    code, out, err = run_cli("numeric", ROOT / "proofs" / "attention.egg", "--sizes", "M=1048576,P=1048576")
    assert code == 2 and "bound error: at E=64, M=1048576, P=1048576 the tensor of line 8" in err, (out, err)


@pytest.mark.slow
def test_mutate_reports_an_ill_ranked_rule_and_still_mutates_the_others(tmp_path):
    bad = write(tmp_path / "rules" / "bad.egg", ILL_RANKED)
    code, out, err = run_cli("mutate", bad)
    assert code == 2 and f"{bad}:1: shape error:" in err, (code, out, err)
    assert "equivalent" not in out
    write(tmp_path / "rules" / "good.egg", GOOD)
    code, out, err = run_cli("mutate", tmp_path / "rules")
    assert code == 2 and "bad.egg:1: shape error:" in err, (code, out, err)
    assert "bad.egg:1" not in out and "of 1 rule(s)" in out   # no mutant of the broken rule
    assert " refuted, 0 equivalent" in out and "mutants: 0 refuted" not in out, out   # the good rule's mutants ran
