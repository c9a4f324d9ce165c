"""Every user mistake of this file is one located error with exit status 2, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"


def located(code, out, err, needle):
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    assert re.match(r"^(\S+(:\d+)?: )?[a-z ]*error: ", err.splitlines()[0]), err   # a flag has no file
    assert needle in err, err


@pytest.mark.parametrize("argv,needle", [
    (["numeric", "--M", "0", ROOT / "proofs" / "attention.egg"], "M=0 must be between 1"),
    (["numeric", CORPUS / "programs" / "two_outputs.egg"], "2 output(s)"),
])
def test_numeric_on_bad_sizes_and_programs(argv, needle):
    located(*run_cli(*argv), needle)


@pytest.mark.parametrize("program", [ROOT / "proofs" / "masked" / "attention_masked.egg",
                                     ROOT / "proofs" / "variants" / "attention_scaled.egg"])
def test_numeric_on_masked_and_scaled_programs(program):
    """Programs whose inputs are not exactly Q, K, V (a mask, a scalar scale) are evaluated, not refused."""
    code, out, err = run_cli("numeric", "--M", "64", "--E", "8", "--P", "8", "--F", "8", program)
    assert code == 0, (out, err)
    assert "worst float64 error" in out and "Traceback" not in out + err


@pytest.mark.slow
def test_report_into_a_path_that_cannot_be_a_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    located(*run_cli("report", "-o", blocker / "report", ROOT / "rules" / "softmax.egg", "--cache", "off",
                     "--no-sympy"), "Not a directory")


@pytest.mark.parametrize("data", [bytes(range(256)), b"\xff\xfe(let"])
def test_run_on_a_binary_file(tmp_path, data):
    path = tmp_path / "binary.egg"
    path.write_bytes(data)
    located(*run_cli("run", path), "binary.egg:1")


@pytest.mark.slow
def test_explain_on_masked_claims_offers_assumptions_not_signs(tmp_path):
    code, out, err = run_cli("explain", CORPUS / "false" / "mask-row-max-no-assumption.egg", "--cache", "off")
    assert code == 1 and "Traceback" not in out + err
    assert "certified under precondition B unmasked along m" in out
    assert "B >= 0" not in out and "B > 0" not in out
    code, out, err = run_cli("explain", CORPUS / "false" / "pin-assume-along-parallel-rank.egg", "--cache", "off")
    assert code == 1 and "Traceback" not in out + err


# -- chain files with values of any type ------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from verify.errors import VerifyError  # noqa: E402
from verify.targets import read_chain  # noqa: E402

PROGRAM = str(ROOT / "proofs" / "attention.egg")
VALUES = st.one_of(st.integers(-3, 3), st.booleans(), st.just(PROGRAM), st.text(max_size=8),
                   st.lists(st.one_of(st.integers(0, 3), st.just("B unmasked along m"), st.just(PROGRAM)),
                            max_size=3),
                   st.just({"x": 1}))


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\\\", "\\\\\\\\").replace('"', '\\\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return str(value)


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.sampled_from(["start", "end", "bound", "assume", "rules_dir"]), VALUES,
       st.sampled_from(["name", "from", "to", "by", "rules", "unbounded", "bound", "assume"]), VALUES)
def test_chain_values_of_any_type_are_read_or_refused(tmp_path_factory, top, top_value, key, value):
    step = {"name": "s", "from": PROGRAM, "to": PROGRAM, key: value}
    text = f"{top} = {_toml(top_value)}\n[[step]]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in step.items())
    path = tmp_path_factory.mktemp("chain") / "fuzz.chain.toml"
    path.write_text(text)
    try:
        read_chain(path)
    except VerifyError as exc:
        assert exc.location is not None and exc.location.file == str(path), exc.format()
