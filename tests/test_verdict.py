"""verdict.py: the text of results and counterexamples."""

from __future__ import annotations

import io
import json

from helpers import run_cli, write
from rich.console import Console

from verify.verdict import Result, rich_counterexample


def test_values_that_differ_but_print_alike_are_printed_in_full(tmp_path):
    path = write(tmp_path / "r.egg", "(rewrite (M_add_p (M_add_p x (Const 0.1)) (Const 0.2)) (M_add_p x (Const 0.3)))\n")
    code, out, err = run_cli("check", path, "--cache", "off", "--no-sympy")
    assert code == 1 and "REFUTED" in out, (out, err)
    assert "lhs = 0.3, rhs = 0.3" not in out
    assert "lhs = 0.30000000000000004, rhs = 0.3" in out, out
    code, out, err = run_cli("check", path, "--cache", "off", "--no-sympy", "--json")
    cx = json.loads(out)[0]["counterexample"]
    assert cx["lhs_value"] != cx["rhs_value"]
    result = Result.from_json(json.loads(out)[0])
    console = Console(file=io.StringIO(), width=120)
    for renderable, style in rich_counterexample(result.counterexample):
        console.print(renderable, style=style)
    assert "0.30000000000000004" in console.file.getvalue()
