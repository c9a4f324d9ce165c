"""The result cache trusts only entries this checker wrote with this machine's (or CI runner's) key: a tampered,
copied or foreign entry is ignored, reported and proved again; a hit reports where the claim is written now."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from verify import cache, cli
from verify.cache import KEY_ENV, Cache, cache_key, key_file
from verify.driver import ENCODING_VERSION
from verify.reader import read_text
from verify.sizes import Bound
from verify.targets import claims_of

RULE = "; right: x + 0\n(rewrite (R_add_m x) (R_add_m (M_add_mp x (Const 0.0))))\n"


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.run([str(a) for a in argv], out, err)
    return code, out.getvalue(), err.getvalue()


ROOT = Path(__file__).resolve().parent.parent
FALSE = '; wrong: the sum over m of x is the max over m of x\n(rewrite (R_add_m x) (R_max_m x))\n'
TRUE = '; right: the sum over m of x is the sum over m of x + 0\n(rewrite (R_add_m x) (R_add_m (M_add_mp x (Const 0.0))))\n'


@pytest.fixture(autouse=True)
def own_key(tmp_path, monkeypatch):
    """Each test gets its own key directory (the user's cache directory) and no key from the environment."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))


def check(path, cache, *extra):
    out, err = io.StringIO(), io.StringIO()
    code = cli.run(["check", str(path), "--no-sympy", "--json", "--cache-dir", str(cache), *extra], out, err)
    return code, json.loads(out.getvalue() or "[]"), err.getvalue()


def entries(cache: Path) -> list[Path]:
    return sorted(cache.rglob("*.json"))


@pytest.mark.slow
def test_the_key_lives_outside_the_repository_and_is_private(tmp_path):
    cache = tmp_path / "cache"
    (tmp_path / "wrong.egg").write_text(FALSE)
    check(tmp_path / "wrong.egg", cache)
    path = key_file()
    assert path.exists() and ROOT not in path.parents and cache not in path.parents
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert path.read_text().strip() not in entries(cache)[0].read_text()


@pytest.mark.slow
def test_an_entry_edited_from_refuted_to_certified_is_not_trusted(tmp_path):
    rule, cache = tmp_path / "wrong.egg", tmp_path / "cache"
    rule.write_text(FALSE)
    code, first, _ = check(rule, cache)
    assert code == 1 and first[0]["verdict"] == "REFUTED"
    (entry,) = entries(cache)
    outer = json.loads(entry.read_text())
    forged = json.loads(outer["result"])
    forged.update(verdict="CERTIFIED", counterexample=None, bound="M<=2", method="normal form")
    outer["result"] = json.dumps(forged)
    entry.write_text(json.dumps(outer))
    code, again, _ = check(rule, cache, "--cache", "ro")
    assert code == 1 and again[0]["verdict"] == "REFUTED"
    assert "failed authentication" in again[0]["engines"]["cache rejected"]
    assert any("failed authentication" in w for w in again[0]["warnings"])
    assert "cache" not in again[0]["engines"]


@pytest.mark.slow
def test_an_unauthenticated_entry_in_the_old_format_is_not_trusted(tmp_path):
    rule, cache = tmp_path / "wrong.egg", tmp_path / "cache"
    rule.write_text(FALSE)
    check(rule, cache)
    (entry,) = entries(cache)
    plain = json.loads(json.loads(entry.read_text())["result"])
    plain.update(verdict="CERTIFIED", counterexample=None)
    entry.write_text(json.dumps(plain))                      # a bare result, as a pull request could plant it
    code, again, _ = check(rule, cache, "--cache", "ro")
    assert code == 1 and again[0]["verdict"] == "REFUTED"
    assert "not an authenticated entry" in again[0]["engines"]["cache rejected"]


@pytest.mark.slow
def test_an_entry_copied_into_another_claims_slot_is_not_trusted(tmp_path):
    right, wrong, cache = tmp_path / "right.egg", tmp_path / "wrong.egg", tmp_path / "cache"
    right.write_text(TRUE)
    wrong.write_text(FALSE)
    check(right, cache)
    (certified,) = entries(cache)
    check(wrong, cache)
    (refuted,) = [p for p in entries(cache) if p != certified]
    shutil.copy(certified, refuted)                          # a genuine CERTIFIED entry, in the wrong slot
    code, again, _ = check(wrong, cache, "--cache", "ro")
    assert code == 1 and again[0]["verdict"] == "REFUTED"
    assert "failed authentication" in again[0]["engines"]["cache rejected"]


@pytest.mark.slow
def test_an_entry_written_with_another_key_is_not_trusted(tmp_path, monkeypatch):
    rule, cache = tmp_path / "wrong.egg", tmp_path / "cache"
    rule.write_text(FALSE)
    monkeypatch.setenv(KEY_ENV, "another-machine-" + "k" * 40)
    check(rule, cache)
    (entry,) = entries(cache)
    outer = json.loads(entry.read_text())
    forged = json.loads(outer["result"])
    forged.update(verdict="CERTIFIED", counterexample=None)
    payload = json.dumps(forged)
    import hashlib
    import hmac

    key = entry.stem                                         # signed properly, but with the other machine's key
    outer = {"result": payload, "mac": hmac.new(("another-machine-" + "k" * 40).encode(),
                                                f"verify-cache-entry-v1\n{key}\n{payload}".encode(),
                                                hashlib.sha256).hexdigest()}
    entry.write_text(json.dumps(outer))
    monkeypatch.delenv(KEY_ENV)                              # this machine: its own key
    code, again, _ = check(rule, cache, "--cache", "ro")
    assert code == 1 and again[0]["verdict"] == "REFUTED"
    monkeypatch.setenv(KEY_ENV, "another-machine-" + "k" * 40)
    code, again, _ = check(rule, cache, "--cache", "ro")   # under the key that signed it, it is trusted
    assert again[0]["verdict"] == "CERTIFIED" and "cache" in again[0]["engines"]


@pytest.mark.slow
def test_a_rejected_entry_is_replaced_in_rw_mode(tmp_path):
    rule, cache = tmp_path / "wrong.egg", tmp_path / "cache"
    rule.write_text(FALSE)
    check(rule, cache)
    (entry,) = entries(cache)
    entry.write_text("{}")
    check(rule, cache)                                       # rw: proved again and written back, authenticated
    code, again, _ = check(rule, cache, "--cache", "ro")
    assert again[0]["verdict"] == "REFUTED" and "cache" in again[0]["engines"]
    assert "cache rejected" not in again[0]["engines"]


@pytest.mark.slow
def test_a_cached_result_reports_the_current_file_and_line(tmp_path):
    cache = tmp_path / "cache"
    old, new = tmp_path / "old.egg", tmp_path / "elsewhere" / "new.egg"
    old.write_text(TRUE)
    new.parent.mkdir()
    new.write_text("\n\n\n" + TRUE)                           # the same rule, moved down three lines
    check(old, cache)
    code, again, _ = check(new, cache, "--cache", "ro")
    assert code == 0 and "cache" in again[0]["engines"]
    assert again[0]["file"] == str(new) and again[0]["line"] == 5


def test_without_a_usable_key_the_cache_is_off(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "no" / "such"))
    (tmp_path / "no").write_text("a file where the key directory would go")
    assert Cache(tmp_path / "cache", "rw").mode == "off"


def test_the_gate_workflow_keeps_its_cache_outside_the_checkout_and_deletes_a_committed_one():
    workflow = (ROOT / ".github" / "workflows" / "proof-gate.yml").read_text()
    assert "rm -rf .verify-cache" in workflow
    assert "VERIFY_CACHE_DIR: /tmp/verify-cache" in workflow and "path: /tmp/verify-cache" in workflow
    assert "path: .verify-cache" not in workflow and "--cache-dir .verify-cache" not in workflow
    assert "VERIFY_CACHE_KEY: ${{ secrets.VERIFY_CACHE_KEY }}" in workflow


def test_a_short_cache_key_in_the_environment_is_refused(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("VERIFY_CACHE_KEY", "a")
    monkeypatch.setattr(cache, "_SHORT_KEY_SAID", False)
    assert cache.secret_key() is None
    assert "VERIFY_CACHE_KEY is shorter than 32 characters" in capsys.readouterr().err
    assert cache.Cache(tmp_path / "cache", "rw").mode == "off"
    monkeypatch.setenv("VERIFY_CACHE_KEY", "k" * 32)
    assert cache.secret_key() == b"k" * 32


@pytest.mark.slow
def test_a_verdict_cached_without_sympy_does_not_answer_a_run_that_asks_for_it(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    (claim,) = claims_of(read_text(RULE, "r.egg"))
    assert cache_key(claim, Bound(), ENCODING_VERSION, True) != cache_key(claim, Bound(), ENCODING_VERSION, False)
    rule, cache = tmp_path / "r.egg", tmp_path / "cache"
    rule.write_text(RULE)

    def engines(*extra):
        code, out, err = run("check", rule, "--json", "--cache-dir", cache, *extra)
        assert code == 0, err
        return json.loads(out)[0]["engines"]

    assert "cache" not in engines("--no-sympy")
    assert "cache" in engines("--no-sympy")
    second = engines()
    assert "cache" not in second and "sympy" in second
