"""Use from another repository: the wheel (with the rule library as data), the pre-commit hook and the GitHub
Action, on a scratch rules-only repository that does not contain the checker."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_action_and_the_hook_install_the_checker_and_run_verify_check():
    action = (ROOT / "action.yml").read_text()
    assert "using: composite" in action and 'pip install "${{ github.action_path }}"' in action
    assert "verify check $VERIFY_PATHS --plain" in action
    hooks = (ROOT / ".pre-commit-hooks.yaml").read_text()
    assert "language: python" in hooks and "entry: verify check --staged" in hooks
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"share/verify/rules" = ["rules/*.egg"]' in pyproject


def _hook_entry() -> list[str]:
    line = next(x for x in (ROOT / ".pre-commit-hooks.yaml").read_text().splitlines() if x.strip().startswith("entry:"))
    return shlex.split(line.split("entry:", 1)[1])


def _action_command(paths: str) -> str:
    line = next(x for x in (ROOT / "action.yml").read_text().splitlines() if "verify check $VERIFY_PATHS" in x)
    return line.split("run:", 1)[1].strip().replace("$VERIFY_PATHS", paths).replace(
        ' ${VERIFY_BOUND:+--bound "$VERIFY_BOUND"}', "")


@pytest.mark.slow
def test_a_rules_only_repository_is_gated_by_the_wheel_the_hook_and_the_action(tmp_path):
    """Build the wheel, install it in a fresh virtual environment (dependencies from the configured index),
    and gate a scratch repository holding only rule files: the hook's command blocks a refuted rule, the
    Action's command passes a certified one, and `--rules builtin` finds the shipped library."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
                   check=True, timeout=600)
    (wheel,) = wheels.glob("verify-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True, timeout=900)
    assert (venv / "share" / "verify" / "rules" / "tiling.egg").is_file()   # the library travels as data

    repo = tmp_path / "myrules"
    (repo / "rules").mkdir(parents=True)
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "VERIFY_CACHE_DIR": str(tmp_path / "c")}
    env.pop("PYTHONPATH", None)

    def sh(*argv, **kw):
        return subprocess.run(list(argv), cwd=repo, env=env, capture_output=True, text=True, timeout=600, **kw)

    sh("git", "init", "-q")
    sh("git", "config", "user.email", "t@example.invalid")
    sh("git", "config", "user.name", "t")
    good = "; split-sum-mine: a sum over m is the sum of tile sums\n(rewrite (R_add_m x) (R_add_m1 (R_add_m0 (T_split_m_m1m0 x 4))))\n"
    (repo / "rules" / "mine.egg").write_text(good)
    sh("git", "add", "rules/mine.egg")
    hook = sh(*_hook_entry(), "--no-sympy")
    assert hook.returncode == 0, hook.stdout + hook.stderr
    assert "split-sum-mine: CERTIFIED" in hook.stdout
    sh("git", "commit", "-qm", "good rule")
    bad = "; drop-shift: exp(x - c) = exp(x) (false)\n(rewrite (M_exp_mp (M_sub_mp x c)) (M_exp_mp x))\n"
    (repo / "rules" / "bad.egg").write_text(bad)
    sh("git", "add", "rules/bad.egg")
    hook = sh(*_hook_entry(), "--no-sympy")
    assert hook.returncode == 1 and "drop-shift: REFUTED" in hook.stdout    # the commit is blocked
    action = sh("bash", "-c", _action_command("rules/mine.egg") + " --no-sympy")
    assert action.returncode == 0 and "CERTIFIED" in action.stdout, action.stdout + action.stderr
    builtin = sh("verify", "optimize", str(ROOT / "proofs" / "attention.egg"), "--rules", "builtin", "--no-sympy")
    assert builtin.returncode == 0 and "; output: passes 1" in builtin.stdout, builtin.stderr


@pytest.mark.slow
def test_the_pytest_plugin_caches_and_names_files_relatively(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.egg").write_text("; drop-shift: false\n(rewrite (M_exp_mp (M_sub_mp x c)) (M_exp_mp x))\n")
    env = {**os.environ, "VERIFY_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("VERIFY_CACHE", None)
    run = subprocess.run([sys.executable, "-m", "pytest", "rules", "-q", "--verify-no-sympy", "-p", "no:cacheprovider"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 1
    assert "rules/r.egg:2: drop-shift: REFUTED" in run.stdout and str(tmp_path) not in run.stdout.split("FAILURES")[-1]
    assert any((tmp_path / "cache").iterdir())       # the cache is on by default, as for verify check
