"""What many test modules share: the command line run in-process, and a file written where a test wants it."""

from __future__ import annotations

import io
from pathlib import Path

from verify import cli


def run_cli(*argv):
    """`verify ARGV...` in this process: (exit status, standard output, standard error)."""
    out, err = io.StringIO(), io.StringIO()
    code = cli.run([str(a) for a in argv], out, err)
    return code, out.getvalue(), err.getvalue()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# a rule true only while E <= 2 ((N-1)(N-2) y = 0 with N = E, a count over e) and a program it matches at E = 3
COUNT_RULE = """; count-vanish: (N-1)(N-2) y = 0 with N = E (a count over e): true only for E <= 2
(rewrite (M_mul_p (M_mul_p (M_sub_p (R_add_e (M_exp_ep (M_mul_ep x (Const 0.0)))) (Const 1.0)) (M_sub_p (R_add_e (M_exp_ep (M_mul_ep x (Const 0.0)))) (Const 2.0))) y) (M_mul_p y (Const 0.0)))
"""

COUNT_PROGRAM = """(let X (CreateTensor 3 4 "X[e,p]"))
(let Y (CreateTensor 4 "Y[p]"))
(let N (R_add_e (M_exp_ep (M_mul_ep X (Const 0.0)))))
(let W (M_mul_p (M_mul_p (M_sub_p N (Const 1.0)) (M_sub_p N (Const 2.0))) Y))
(let Z (M_add_p Y W))
(extract Z)
"""


def count_files(tmp_path: Path) -> tuple[Path, Path]:
    """rules/count.egg (COUNT_RULE) and prog.egg (COUNT_PROGRAM) under tmp_path."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "count.egg").write_text(COUNT_RULE)
    program = tmp_path / "prog.egg"
    program.write_text(COUNT_PROGRAM)
    return rules, program
