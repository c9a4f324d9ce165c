"""The test corpus, run through the real checker: every file says what the checker must answer.

tests/corpus/{true,false,malformed} hold `.egg` rule files and `.chain.toml` program pairs; the first line of
each is its expectation, in the file's own comment syntax (`;` for egglog, `#` for TOML):

    ; expect: certified        every claim CERTIFIED, and the numeric cross-check agrees
    ; expect: refuted          every claim (every step, for a chain) REFUTED by a counterexample that replays
    ; expect-error: KIND       `verify check` refuses the file with one located error of that kind

`; expect: certified (slow)` marks a file whose check takes seconds: `pytest -m "not slow"` leaves it out; a
chain file (a pair of whole programs) is always slow. A verdict file's second line says in words what the
rule does. KIND is the error class's kind in
verify/errors.py without " error" (parse, notation, shape, bound, usage). tests/corpus/programs and
tests/corpus/malformed/inputs hold the programs the chain files name; they are not corpus entries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli

from verify import intervals, refute, targets
from verify.errors import VerifyError
from verify.gate import check_by_kind
from verify.options import Options
from verify.reader import read_file
from verify.verdict import Verdict

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"
OPTIONS = Options(isolate=False, sympy=False)
VERDICTS = {"true": "certified", "false": "refuted"}
ERROR_KINDS = frozenset(cls.kind.removesuffix(" error") for cls in VerifyError.__subclasses__())
HEADER = re.compile(r"^\s*[;#]+\s*(?:expect\s*:\s*(certified|refuted)(\s+\(slow\))?|expect-error\s*:\s*([a-z-]+))\s*$")


@dataclass(frozen=True)
class Expectation:
    verdict: str | None            # certified | refuted
    error: str | None              # one of ERROR_KINDS
    comment: str                   # the line under the header
    slow: bool = False


def expectation(path: Path) -> Expectation:
    """The header of a corpus file; a file without one fails here (binary files carry it as a first text line)."""
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines() + ["", ""]
    m = HEADER.match(lines[0])
    assert m, f"{path.name}: the first line must be '; expect: certified|refuted' or '; expect-error: <kind>'"
    assert m.group(3) is None or m.group(3) in ERROR_KINDS, f"{path.name}: error kind not in {sorted(ERROR_KINDS)}"
    return Expectation(m.group(1), m.group(3), lines[1].strip(";# "), bool(m.group(2)) or path.suffix == ".toml")


def entries(kind: str) -> list[Path]:
    return sorted(p for p in (CORPUS / kind).iterdir() if p.is_file())


TRUE, FALSE, MALFORMED = entries("true"), entries("false"), entries("malformed")


def claims_of(path: Path):
    if path.name.endswith(".chain.toml"):
        return targets.read_chain(path)
    return targets.claims_of(read_file(path))      # with the file's `; assume:` directives


def replays(claim, cx) -> bool:
    """The printed counterexample separates the sides in mpmath and, rigorously, in interval arithmetic."""
    inputs = {name: np.array(t.values, dtype=float) for name, t in cx.inputs.items()}
    _, _, idx = refute.replay(claim, cx.sizes, inputs)
    return idx is not None and intervals.rigorous_difference(claim, cx.sizes, inputs) is not None


def test_corpus_size_and_headers():
    assert len(FALSE) >= 60 and len(TRUE) >= 50 and len(MALFORMED) >= 60
    for path in TRUE + FALSE:
        expect = expectation(path)
        assert expect.verdict == VERDICTS[path.parent.name], path.name
        assert len(expect.comment) > 10, f"{path.name}: the second line says what the rule does"
    for path in MALFORMED:
        assert expectation(path).error, path.name


def test_a_file_without_a_header_fails_the_runner(tmp_path):
    path = tmp_path / "bare.egg"
    path.write_text("(rewrite (R_add_m x) (R_add_m x))\n")
    with pytest.raises(AssertionError, match="first line must be"):
        expectation(path)
    path.write_text("; expect-error: typo\n(rewrite (R_add_m x) (R_add_m x))\n")
    with pytest.raises(AssertionError, match="error kind"):
        expectation(path)


def case(path: Path):
    marks = [pytest.mark.slow] if expectation(path).slow else []
    return pytest.param(path, marks=marks, id=f"{path.parent.name}/{path.name}")


@pytest.mark.parametrize("path", [case(p) for p in TRUE + FALSE])
def test_verdict(path):
    assert claims_of(path), f"{path} has no claim to check"
    if expectation(path).verdict == "certified":
        for claim in claims_of(path):
            result = check_by_kind(claim, OPTIONS)
            assert result.verdict is Verdict.CERTIFIED, (result.verdict, result.detail)
            assert result.engines["numeric cross-check"].startswith("agrees")
        return
    steps: dict[str, list] = {}   # a step of programs with several outputs is one claim per output
    for claim in claims_of(path):
        steps.setdefault(claim.name.split(" [output ")[0], []).append((claim, check_by_kind(claim, OPTIONS)))
    for pairs in steps.values():
        refuted = [(c, r) for c, r in pairs if r.verdict is Verdict.REFUTED]
        assert refuted, [(r.verdict, r.detail) for _, r in pairs]
        for claim, result in refuted:
            assert result.counterexample is not None and result.counterexample.replayed
            assert replays(claim, result.counterexample)


def assert_one_located_error(path: Path, kind: str) -> None:
    code, out, err = run_cli("check", path, "--cache", "off", "--no-sympy")
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    first = err.splitlines()[0]
    m = re.match(r"^\S+:\d+: ([a-z ]*) error: ", first)          # file:line: kind error: cause
    assert m, err
    assert m.group(1) == kind, err
    if path.suffix == ".egg":
        assert first.startswith(f"{path}:"), err                 # a chain file may point into its programs
    assert sum("error:" in line for line in err.splitlines()) == 1, err
    # per-rule isolation: the file's other rules are still checked, but the bad one gets no verdict
    bad = re.search(r"rule '([^']+)'", first)
    if bad:
        assert f": {bad.group(1)}: " not in out, out
    else:
        assert not out.strip(), out


@pytest.mark.parametrize("path", MALFORMED, ids=[p.name for p in MALFORMED])
def test_malformed_input_is_one_located_error(path):
    assert_one_located_error(path, expectation(path).error)


# Inputs with no text cannot carry a header, so they are written here.
NO_TEXT = {"empty.egg": "", "empty-line.egg": "\n", "whitespace-only.egg": "   \n\n\t\n"}


@pytest.mark.parametrize("name", NO_TEXT)
def test_a_file_without_text_is_one_located_error(name, tmp_path):
    path = tmp_path / name
    path.write_text(NO_TEXT[name])
    assert_one_located_error(path, "parse")
    code, out, err = run_cli("run", path, "--no-sympy")
    assert code == 2 and "Traceback" not in out + err and "error" in err
