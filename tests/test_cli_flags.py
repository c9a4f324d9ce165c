"""Flags and inputs the command line refuses as usage errors instead of running on a value it cannot mean."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from verify import cli

ROOT = Path(__file__).resolve().parent.parent


def run(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        code = cli.run(list(argv), out, err)
    except SystemExit as exc:        # argparse refuses a malformed flag value itself, with exit status 2
        code = int(exc.code or 0)
    return code, out.getvalue() + err.getvalue()


@pytest.mark.parametrize("argv", [
    ["numeric", "--tolerance", "nan"], ["numeric", "--tolerance", "-1"],
    ["check", "rules/tiling.egg", "--heartbeat", "-1"], ["check", "rules/tiling.egg", "--heartbeat", "inf"],
])
def test_a_number_flag_outside_its_range_is_a_usage_error(argv, capsys):
    code, _ = run(*argv)
    assert code == 2
    assert "must be a finite number >= 0" in capsys.readouterr().err


def test_a_size_in_non_ascii_digits_is_refused(monkeypatch):
    monkeypatch.chdir(ROOT)
    code, text = run("check", "rules/tiling.egg", "--bound", "M=\uff11")     # a full-width 1
    assert code == 2 and "cannot read bound" in text


def test_timeout_zero_is_a_usage_error_not_a_bound_error(monkeypatch):
    monkeypatch.chdir(ROOT)
    code, text = run("check", "rules/tiling.egg", "--timeout", "0")
    assert code == 2 and "usage error" in text and "bound error" not in text


@pytest.mark.parametrize("flag", ["--bound", "--sizes"])
def test_numeric_refuses_a_rank_no_program_has(flag, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, text = run("numeric", "proofs/attention.egg", flag, "Q=3")
    assert code == 2 and "no program here has rank Q" in text


def test_mutate_with_nothing_to_mutate_does_not_pass(tmp_path):
    program = tmp_path / "nothing.egg"
    program.write_text('(let Q (CreateTensor "Q"))\n')
    code, text = run("mutate", str(program))
    assert code == 1 and "nothing was tested" in text


def test_a_shapes_directive_is_not_a_rule_name(tmp_path):
    rules = tmp_path / "named.egg"
    rules.write_text("; shapes: strict\n; seedmax: the max over m is the max over tiles of tile maxima\n"
                     "(rewrite (R_max_m (T_unsplit_m1m0_m x)) (R_max_m1 (R_max_m0 x)))\n")
    code, text = run("check", str(rules), "--cache", "off")
    assert code == 0 and "seedmax: CERTIFIED" in text and "shapes:" not in text.split("seedmax")[0]
