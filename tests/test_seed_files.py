"""Files written the way the seed project (Allenjin123/egraph_attention) writes its own, checked as they are.

The files in tests/seed/ are ours, in the seed's style (never copies of the seed's files): sizes-first
`CreateTensor` under the file's own datatype, `:cost` on constructors, naming rules, rules that only add terms,
multi-fact union rules with let names, `(run N)` between rule groups, implicit tiling, and adversarial rules.
Each file states what it expects in its header:

    ; verdict NAME: CERTIFIED|REFUTED     the verdict of the rule NAME
    ; note LINE: TEXT                     a rule with nothing to prove, reported as a note at LINE
    ; error LINE: TEXT                    a located error at LINE (per-rule isolation: the rest is still checked)
    ; equiv OTHER.egg: CERTIFIED          the program equals OTHER.egg's program
    ; exit: N                             the exit status of `verify check FILE`

Everything runs the real reader (egglog's parser), the real normal form and Z3, and real egglog.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import run_cli

from verify.egglog import run_program
from verify.gate import check_paths
from verify.options import Options
from verify.reader import read_file
from verify.verdict import Verdict

ROOT = Path(__file__).resolve().parent.parent
SEED = Path(__file__).resolve().parent / "seed"
FILES = sorted(SEED.glob("*.egg"))
OPTIONS = Options(sympy=False, cache_mode="off")


def header(path: Path, key: str) -> list[tuple[str, str]]:
    found = []
    for line in path.read_text().splitlines():
        m = re.match(rf"^; {key} (.+?): (.+)$", line) or re.match(rf"^; {key}: (.+)$()", line)
        if m:
            found.append((m.group(1).strip(), m.group(2).strip()))
    return found


def expected_exit(path: Path) -> int | None:
    values = [a for a, _ in header(path, "exit")]
    return int(values[0]) if values else None


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in FILES if header(p, "verdict")], ids=lambda p: p.name)
def test_every_rule_gets_its_stated_verdict(path):
    report = check_paths([path], OPTIONS)
    got = {r.name: r.verdict.value for r in report.results}
    want = dict(header(path, "verdict"))
    assert got == want, (got, want)
    for r in report.results:   # a refuted rule carries a counterexample that replayed, as small tensors
        if r.verdict is Verdict.REFUTED:
            assert r.counterexample is not None and r.counterexample.replayed
            assert max(r.counterexample.sizes.values()) <= 4


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in FILES if header(p, "exit")], ids=lambda p: p.name)
def test_check_reports_notes_errors_and_exit_status(path):
    code, out, err = run_cli("check", path, "--no-sympy", "--cache", "off", "--plain")
    assert "Traceback" not in out + err
    assert code == expected_exit(path), (out, err)
    for line, text in header(path, "note"):
        assert f"note: {path}:{line}: {text}" in out, out
    errors = header(path, "error")
    located = [l for l in err.splitlines() if re.match(rf"^{re.escape(str(path))}:\d+: [a-z ]*error: ", l)]
    assert len(located) == len(errors), err
    for line, text in errors:
        assert any(l.startswith(f"{path}:{line}: ") and text in l for l in located), (line, text, err)
    for name, verdict in header(path, "verdict"):
        assert f": {name}: {verdict}" in out
    if "REFUTED" in out:            # counterexamples as small tensors with named ranks
        assert "counterexample (numeric search; replayed: yes)" in out and "inputs:" in out and "at " in out


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in FILES if header(p, "equiv")], ids=lambda p: p.name)
def test_programs_with_sizes_first_inputs_are_certified_equal(path):
    assert header(path, "equiv"), f"{path} names no program it equals"
    for other, verdict in header(path, "equiv"):
        code, out, err = run_cli("equiv", path, SEED / other, "--no-sympy", "--cache", "off", "--plain")
        assert verdict in out and code == 0, (out, err)


def test_sizes_first_create_tensor_is_read_as_declared():
    program = read_file(SEED / "program_3pass.egg").program
    q = program.bindings["Q"].expr
    assert (q.name, q.ranks) == ("Q", ("e", "p"))


@pytest.mark.parametrize("text,needle", [
    ('(datatype Tensor (CreateTensor i64 i64 String))\n(let Q (CreateTensor "Q"))\n(extract Q)\n',
     "declared (CreateTensor i64 i64 String) with 3 argument(s) but used with 1"),
    ('(datatype Tensor (CreateTensor i64 i64 String))\n(let Q (CreateTensor "Q" 4 4))\n(extract Q)\n',
     "argument 1 of 'CreateTensor' must be a i64"),
    ('(datatype Tensor (CreateTensor String i64))\n(let Q (CreateTensor 4 "Q"))\n(extract Q)\n',
     "argument 1 of 'CreateTensor' must be a String"),
])
def test_the_files_datatype_is_authoritative_for_arity_and_sorts(tmp_path, text, needle):
    path = tmp_path / "bad.egg"
    path.write_text(text)
    code, out, err = run_cli("check", path)
    assert code == 2 and needle in err and err.startswith(f"{path}:2:") and "Traceback" not in err


def test_name_first_and_ranked_names_still_read(tmp_path):
    path = tmp_path / "p.egg"
    path.write_text('(let Q (CreateTensor "Q" 4 8))\n(let S (CreateTensor "S[m,p]"))\n'
                    '(let X (M_add_mp S (R_add_e (M_mul_emp Q (CreateTensor 4 8 "K")))))\n(extract X)\n')
    source = read_file(path)
    assert source.program.bindings["S"].expr.ranks == ("m", "p")


@pytest.mark.slow
def test_implicit_tiling_is_named_in_the_verdict_and_strict_shapes_refuse_it(tmp_path):
    code, out, _ = run_cli("check", SEED / "rules_seed_style.egg", "--no-sympy", "--cache", "off", "--plain")
    assert "split-row-max: CERTIFIED (all sizes (M, M1, M0 symbolic)" in out
    assert "normal form at M1<=4, M0<=4; read with implicit tiling (m = m1*M0 + m0))" in out
    assert "checked (R_max_m x) = (R_max_m1 (R_max_m0 (T_split_m_m1m0 x))) for all x[m]" in out
    code, out, err = run_cli("check", SEED / "rules_seed_style.egg", "--no-sympy", "--cache", "off", "--plain",
                             "--strict-shapes")
    assert code == 2 and "read with implicit tiling" not in out and "split-row-max': the left side has ranks" in err
    strict = tmp_path / "strict.egg"
    strict.write_text("; shapes: strict\n" + (SEED / "rules_seed_style.egg").read_text())
    code, out, err = run_cli("check", strict, "--no-sympy", "--cache", "off", "--plain")
    assert code == 2 and "split-row-max': the left side has ranks" in err
    assert "defer-division: CERTIFIED" in out      # strictly ranked rules are still checked


@pytest.mark.slow
def test_strictly_ranked_rules_with_unrelated_tile_sizes_are_read_with_implicit_tiling():
    """`(R_add_m (M_mul_fmp a v))` = `(R_add_m1 (R_add_m0 (M_mul_fm1m0p a v)))` is strictly well-ranked with a, v
    constant along m, but then M and M1*M0 are unrelated sizes: the implicit reading is the one checked."""
    report = check_paths([SEED / "rules_seed_style.egg"], OPTIONS)
    (r,) = [r for r in report.results if r.name == "split-contract-v"]
    assert r.verdict is Verdict.CERTIFIED and "implicit tiling" in r.method
    assert "for all a[m,f,p], v[m,f,p]" in r.description


@pytest.mark.slow
def test_verify_run_keeps_egglogs_extraction_and_checks_the_rules():
    code, out, err = run_cli("run", SEED / "rules_seed_style.egg", "--no-sympy")
    assert "Traceback" not in out + err
    lines = out.splitlines()
    assert lines[0].startswith("(R_add_m (M_mul_fmp (M_exp_mp (M_sub_mp (CreateTensor 512 256 \"S[m,p]\")")
    assert "; rules of " in out and "7 checked: 5 certified, 2 refuted" in out
    assert "local-shift: REFUTED" in out and "defer-division-untied: REFUTED" in out
    assert "; translation validation: the extracted S equals the file's S: CERTIFIED" in out
    assert code == 1
    code, out, _ = run_cli("run", SEED / "rules_seed_style.egg", "--no-check")
    assert code == 0 and "rules of" not in out


def test_verify_run_on_a_program_annotates_the_extracted_term():
    code, out, err = run_cli("run", SEED / "program_2pass_tiles.egg")
    assert code == 0 and "; passes 2" in out and "rules of" not in out


def test_seed_style_files_run_in_egglog_as_they_are():
    for path in (SEED / "rules_seed_style.egg", SEED / "program_3pass.egg", SEED / "program_2pass_tiles.egg"):
        outputs, added = run_program(path.read_text(), str(path))
        assert not added and [o.kind for o in outputs] == ["extract"]


SHIPPED = sorted(p for d in ("rules", "proofs") for p in (ROOT / d).rglob("*.egg") if "certificates" not in p.parts)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_egg_file_runs_in_egglog(path):
    run_program(path.read_text(), str(path))      # raises on any egglog error


@pytest.mark.slow
def test_exported_rules_run_in_egglog_and_are_read_back(tmp_path):
    target = tmp_path / "certified.egg"
    code, out, err = run_cli("export", "--rules", ROOT / "rules", "-o", target, "--no-sympy")
    assert code == 0, err
    run_program(target.read_text(), str(target))
    code, out, err = run_cli("check", target, "--no-sympy", "--cache", "off", "--plain")
    assert "Traceback" not in out + err
    assert code == 0, (out, err)
    exported = target.read_text().count("\n(rewrite ")
    assert f"{exported} checked: {exported} certified" in out
    assert "only set facts of the file's own functions" in out


@pytest.mark.slow
def test_an_exported_chain_step_read_back_is_the_same_claim_and_a_broken_one_is_refuted(tmp_path):
    """`verify export` writes a chain step's programs inline (a shift inside a scan body); read back, the nested
    iteration means what the step's `let` meant, so the dropped rescale of the online sum is refuted."""
    target = tmp_path / "certified.egg"
    assert run_cli("export", "--rules", ROOT / "rules", "-o", target, "--no-sympy")[0] == 0
    text = target.read_text()
    (line,) = [l for l in text.splitlines() if l.startswith("(rewrite") and ':name "online-sum"' in l]
    rescale = '(M_mul_m1p (S_prev_m1 "RD") (M_exp_m1p (M_sub_m1p (S_shift_m1 ?R (Const -inf)) ?R)))'
    assert rescale in line
    head = text[: text.index("(rule ")]               # the datatype and the analyses' declarations
    broken = tmp_path / "broken.egg"
    broken.write_text(head + "(relation unused (Tensor))\n" + line.replace(rescale, '(S_prev_m1 "RD")') + "\n")
    code, out, err = run_cli("check", broken, "--no-sympy", "--cache", "off", "--plain")
    assert code == 1 and "online-sum: REFUTED" in out, (out, err)
    kept = tmp_path / "kept.egg"
    kept.write_text(head + line + "\n")
    code, out, err = run_cli("check", kept, "--no-sympy", "--cache", "off", "--plain")
    assert code == 0 and "online-sum: CERTIFIED" in out, (out, err)


@pytest.mark.slow
def test_implicitly_read_rules_are_not_exported_but_multi_fact_rules_are(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "seed_style.egg").write_text((SEED / "rules_seed_style.egg").read_text())
    target = tmp_path / "out.egg"
    code, out, err = run_cli("export", "--rules", rules, "-o", target, "--no-sympy")
    assert code == 1, err          # the file's refuted rules (local-shift, ...) are not exported: exit 1
    assert "not exported: split-row-max" in out and "read with implicit tiling" in out
    assert ':name "defer-division"' in target.read_text()
    run_program(target.read_text(), str(target))


@pytest.mark.slow
def test_verify_run_validates_terms_extracted_under_the_files_own_datatype():
    code, out, err = run_cli("run", SEED / "odd_forms.egg", "--no-sympy")
    assert out.startswith('(R_max_m (CreateTensor 1 4 "S[m]"))')
    assert "; translation validation: the extracted B equals the file's B: CERTIFIED" in out
    assert code == 0, (out, err)


MALFORMED = sorted(p for p in (ROOT / "tests" / "corpus" / "malformed").glob("*.egg")) + [SEED / "traps.egg"]


@pytest.mark.slow
@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.name)
def test_verify_run_on_bad_files_never_gives_a_traceback(path):
    code, out, err = run_cli("run", path, "--no-sympy")
    assert "Traceback" not in out + err
    assert code in (0, 1, 2)
    if code == 2:
        assert err.strip() and "error" in err


@pytest.mark.slow
def test_json_lists_each_bad_rule_as_its_own_error_entry():
    import json

    code, out, err = run_cli("check", SEED / "traps.egg", "--no-sympy", "--cache", "off", "--json")
    entries = {(r["name"], r["verdict"]) for r in json.loads(out)}
    assert code == 2
    assert ("two-terms", "ERROR") in entries and ("shadow", "ERROR") in entries and ("drop-outer", "ERROR") in entries
    assert ("tied", "CERTIFIED") in entries and ("untied", "REFUTED") in entries
