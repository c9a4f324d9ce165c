"""`optimize --emit` writes a kernel only for sizes the translation validation covers: a kernel runs at any size."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from verify import cli

ROOT = Path(__file__).resolve().parent.parent

# true only while M <= 2 (certified within M<=2, never lifted): a kernel made with it is wrong at M = 16
LAST_TWO = """; last2: softmax attention over m equals attention over the last two keys (true only for M <= 2)
(rewrite (M_mul_fmp_R_add_m (M_div_mp (M_exp_mp (M_sub_mp s (R_max_m s))) (R_add_m (M_exp_mp (M_sub_mp s (R_max_m s))))) v) (M_div_fp (M_add_fp (M_mul_fp (M_exp_p (M_sub_p (S_last_m s) (M_max_p (S_last_m s) (S_last_m (S_shift_m s (Const -inf)))))) (S_last_m v)) (M_mul_fp (M_exp_p (M_sub_p (S_last_m (S_shift_m s (Const -inf))) (M_max_p (S_last_m s) (S_last_m (S_shift_m s (Const -inf)))))) (S_last_m (S_shift_m v (Const 0.0))))) (M_add_p (M_exp_p (M_sub_p (S_last_m s) (M_max_p (S_last_m s) (S_last_m (S_shift_m s (Const -inf)))))) (M_exp_p (M_sub_p (S_last_m (S_shift_m s (Const -inf))) (M_max_p (S_last_m s) (S_last_m (S_shift_m s (Const -inf)))))))))
"""


def test_a_kernel_from_a_bounded_validation_with_no_declared_sizes_is_not_written(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "last2.egg").write_text(LAST_TWO)
    program = shutil.copy(ROOT / "proofs" / "attention.egg", tmp_path / "attention.egg")
    kernel = tmp_path / "k.py"
    out, err = io.StringIO(), io.StringIO()
    code = cli.run(["optimize", str(program), "--rules", str(rules), "--allow-bounded", "--cost", "memory",
                    "--emit", "torch", "--emit-output", str(kernel)], out, err)
    assert code == 1
    assert "fixes no size for E, M" in err.getvalue() and "no kernel is written" in err.getvalue()
    assert not kernel.exists()


SIZED_1022 = """(let Q (CreateTensor 8 3 "Q"))
(let K (CreateTensor 8 1022 "K"))
(let V (CreateTensor 2 1022 "V"))
(let QK (M_mul_emp_R_add_e Q K))
(let GM (R_max_m QK))
(let SN (M_exp_mp (M_sub_mp QK GM)))
(let SD (R_add_m SN))
(let AV (M_mul_fmp_R_add_m (M_div_mp SN SD) V))
(extract AV)
"""


def test_the_optimized_program_tiles_a_declared_size_by_a_count_that_divides_it(tmp_path):
    """M = 1022 is not a multiple of the rules' default 4 tiles: the output uses 2 and reads back."""
    program = tmp_path / "att1022.egg"
    program.write_text(SIZED_1022)
    written = tmp_path / "out.egg"
    out, err = io.StringIO(), io.StringIO()
    code = cli.run(["optimize", str(program), "--rules", str(ROOT / "rules"), "--no-sympy", "-o", str(written)],
                   out, err)
    assert code == 0, err.getvalue()
    text = written.read_text()
    assert "(T_split_m_m1m0 K 2)" in text and "(T_split_m_m1m0 K 4)" not in text
    out, err = io.StringIO(), io.StringIO()
    assert cli.run(["check", str(written)], out, err) == 0, err.getvalue()
