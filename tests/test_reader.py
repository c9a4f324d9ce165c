"""The reader (verify/reader/): what it refuses, each as a located error, never a silent pass or a traceback
(rule forms, directives, sizes, nesting, file size and encoding), and what it still reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_cli, write

from verify.reader.source import BATCH_CHARS, batches

ROOT = Path(__file__).resolve().parent.parent


def run_apart(*argv):
    """The CLI in a process of its own: a test that reads a large or deep file must not leave this process so
    big that the forked, memory-capped children of later tests die of it."""
    done = subprocess.run([sys.executable, "-m", "verify", *map(str, argv)], capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr


def test_birewrite_whose_right_side_lacks_a_variable_is_refused(tmp_path):
    rule = write(tmp_path / "b.egg", "(birewrite (M_mul_p x (Const 0.0)) (M_add_p (Const 0.0) (Const 0.0)))\n")
    code, out, err = run_cli("check", "--cache", "off", rule)
    assert code == 2 and f"{rule}:1: parse error:" in err, (code, out, err)
    assert "pattern variable(s) x that the right-hand side does not bind" in err, err


def test_malformed_for_ranks_directive_is_a_located_error(tmp_path):
    rule = write(tmp_path / "f.egg", "; for-ranks: x in m, p1\n; t: split sum\n"
                                     "(rewrite (R_add_x y) (R_add_x1 (R_add_x0 (T_split_x_x1x0 y 2))))\n")
    code, out, err = run_cli("check", "--cache", "off", rule)
    assert code == 2 and f"{rule}:1: parse error: malformed directive" in err, (code, out, err)


def test_an_undeclared_function_in_a_rule_action_is_a_located_error(tmp_path):
    rule = write(tmp_path / "a.egg", "(rule ((= v (R_add_m x))) ((set (foo v) 1)))\n")
    code, out, err = run_cli("check", "--cache", "off", rule)
    assert code == 2 and f"{rule}:1: parse error:" in err and "'foo', a function this file does not declare" in err


def test_when_guard_message_agrees_with_the_readme(tmp_path):
    rule = write(tmp_path / "w.egg", "(rewrite (M_mul_p x (Const 1.0)) x :when ((finite x)))\n")
    code, out, err = run_cli("check", "--cache", "off", rule)
    assert code == 2 and "not supported yet" not in err, err
    assert "accepted only when it restates the checker's own assumptions" in err, err
    assert "accepted only when it restates the checker's own assumptions" in (ROOT / "README.md").read_text()


def test_create_tensor_sizes_below_one_are_a_located_error(tmp_path):
    path = tmp_path / "b.egg"
    path.write_text('(let K (CreateTensor 0 -2 "K"))\n(let S (R_add_m K))\n(extract S)\n')
    code, out, err = run_cli("check", path, "--cache", "off")
    assert code == 2 and f"{path}:1: parse error: CreateTensor sizes must be at least 1" in err, (out, err)


def nested(levels: int) -> str:
    term = "x"
    for _ in range(levels):
        term = f"(M_add_p {term} (Const 0.0))"
    return term


@pytest.mark.parametrize("levels", [600, 2000])
def test_a_deeply_nested_rule_is_refused_by_its_brackets_at_once(tmp_path, levels):
    # 600 levels took 7 GB before a RecursionError traceback; 2,000 were killed with no output
    path = write(tmp_path / "deep.egg", f"; deep: deep\n(rewrite {nested(levels)} x)\n")
    code, out, err = run_cli("check", path, "--cache", "off", "--no-sympy")
    assert code == 2 and f"{path}:2: parse error: nesting too deep" in err and "hint:" in err, (out, err)
    assert "Traceback" not in out + err


def let_chain(length: int) -> str:
    lines = ['(let X0 (CreateTensor "X[m,p]"))']
    lines += [f"(let X{i} (M_add_mp X{i - 1} (Const 0.0)))" for i in range(1, length)]
    return "\n".join(lines + [f"(extract (R_max_m X{length - 1}))"]) + "\n"


def test_the_nesting_limit_counts_through_lets(tmp_path):
    # 1,500 lets gave exit 2 with a ~2,950-line RecursionError traceback inside the ERROR line
    deep = write(tmp_path / "deep.egg", let_chain(1500))
    flat = write(tmp_path / "flat.egg", '(let X (CreateTensor "X[m,p]"))\n(extract (R_max_m X))\n')
    code, out, err = run_cli("equiv", deep, flat, "--cache", "off", "--no-sympy")
    assert code == 2 and f"{deep}:201: parse error: nesting too deep" in err, (out, err)
    assert len((out + err).splitlines()) <= 3 and "Traceback" not in out + err


@pytest.mark.slow
def test_just_below_the_nesting_limit_every_engine_copes(tmp_path):
    deep = write(tmp_path / "deep.egg", let_chain(199))
    flat = write(tmp_path / "flat.egg", '(let X (CreateTensor "X[m,p]"))\n(extract (R_max_m X))\n')
    code, out, err = run_apart("equiv", deep, flat, "--cache", "off")
    assert code == 0 and "CERTIFIED" in out, (out, err)
    term = "x"
    for _ in range(199):
        term = f"(M_add_p (Const 0.0) {term})"
    rule = write(tmp_path / "rule.egg", f"; deep: deep\n(rewrite {term} x)\n")
    code, out, err = run_apart("check", rule, "--cache", "off")
    assert code == 0 and "CERTIFIED" in out, (out, err)


def attention_with_sizes(tmp_path, tiles: int, m: int = 1000) -> tuple[Path, Path]:
    declared = {'(CreateTensor "Q")': '(CreateTensor 64 128 "Q")', '(CreateTensor "K")': f'(CreateTensor 64 {m} "K")',
                '(CreateTensor "V")': f'(CreateTensor 64 {m} "V")', "(T_split_m_m1m0 K 4)": f"(T_split_m_m1m0 K {tiles})"}
    paths = []
    for name in ("attention.egg", "attention_2pass.egg"):
        text = (ROOT / "proofs" / name).read_text()
        for old, new in declared.items():
            text = text.replace(old, new)
        paths.append(write(tmp_path / name, text))
    return paths[0], paths[1]


@pytest.mark.parametrize("command", ["equiv", "check", "optimize", "codegen", "numeric"])
def test_declared_sizes_that_a_literal_tile_count_cannot_split_are_a_located_error(tmp_path, command):
    # `verify equiv` certified M = 1000 in 3 tiles (exit 0, no warning); verify numeric rejects such sizes
    one, two = attention_with_sizes(tmp_path, tiles=3)
    args = [one, two] if command == "equiv" else [two]
    code, out, err = run_cli(command, *args, "--cache", "off") if command in ("equiv", "check") else \
        run_cli(command, *args)
    assert code == 2, (out, err)
    assert f"{two}:7: shape error: rank m has size 1000 (declared at line 4) but is split into 3 tiles" in err


@pytest.mark.slow
def test_declared_sizes_that_a_tile_count_divides_still_certify(tmp_path):
    one, two = attention_with_sizes(tmp_path, tiles=4, m=1024)
    code, out, err = run_cli("equiv", one, two, "--cache", "off", "--no-sympy")
    assert code == 0 and "CERTIFIED" in out, (out, err)


@pytest.mark.slow
def test_a_large_file_is_parsed_in_batches_and_its_lines_stay_right(tmp_path):
    # egglog-python copies the parsed text into every node's span: parsing 160 KB whole took 3 GB, 800 KB > 23 GB
    lets = [f"(let A{i} (M_add_mp X (Const {i}.0)))  ; let {i}" for i in range(3000)]
    text = '(let X (CreateTensor "X[m,p]"))\n' + "\n".join(lets) + '\n(let B (M_add_mp X "s"))\n(extract A0)\n'
    assert max(len(batch) for _, batch in batches(text, "t")) <= BATCH_CHARS
    assert "".join(batch for _, batch in batches(text, "t")).count("(let ") == 3002
    path = write(tmp_path / "big.egg", text)
    code, out, err = run_apart("check", path, "--cache", "off")
    assert code == 2 and f"{path}:3002: parse error:" in err, err
    path = write(tmp_path / "big.egg", text.replace('(let B (M_add_mp X "s"))\n', "(let B (M_add_mp X\n"))
    code, out, err = run_apart("check", path, "--cache", "off")           # unbalanced: egglog reads it whole
    assert code == 2 and f"{path}:" in err and "Traceback" not in err, err


def test_a_byte_order_mark_is_not_part_of_the_text(tmp_path):
    path = tmp_path / "bom.egg"
    path.write_bytes(b"\xef\xbb\xbf; same: a sum is a sum\n(rewrite (R_add_m x) (R_add_m x))\n")
    code, out, err = run_cli("check", path, "--cache", "off", "--no-sympy")
    assert code == 0 and "CERTIFIED" in out, (out, err)


def test_an_endless_or_huge_file_is_refused_before_it_is_read_whole(tmp_path):
    # /dev/zero filled memory (a MemoryError reported as an internal error under a cap, else the machine's memory)
    huge = tmp_path / "huge.egg"
    with open(huge, "wb") as handle:
        handle.truncate(65 << 20)        # sparse: no disk used
    for path in (huge, Path("/dev/zero")):
        code, out, err = run_cli("check", path, "--cache", "off")
        assert code == 2 and f"{path}: usage error: larger than 64 MiB (or endless)" in err, (out, err)
