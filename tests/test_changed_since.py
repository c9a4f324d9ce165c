"""`verify check --changed-since` / `verify deps` on small scratch repositories: each edit here once slipped
past the gate (0 targets, exit 0) while `verify check` of the whole tree failed."""

from __future__ import annotations

import io
import json
import shutil
import subprocess

import pytest

from verify import cli

COMM = "; comm: a+b = b+a\n(rewrite (M_add_mp a b) (M_add_mp b a))\n"
MUL = "; comm2: a*b = b*a\n(rewrite (M_mul_mp a b) (M_mul_mp b a))\n"
SPLIT = "; split: max over tiles (implicit tiling)\n(rewrite (R_max_m x) (R_max_m1 (R_max_m0 x)))\n"
DECLARED = "(datatype Tensor (M_add_mp Tensor Tensor) (M_mul_mp Tensor Tensor))\n"
PROGRAM = '(let X (CreateTensor 4 8 "X[m,p]"))\n(let Y (M_add_mp X X))\n(extract Y)\n'


def _git(repo, *args):
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A repository with the given files committed, the working directory in it."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")

    def make(files: dict[str, str]):
        repo = tmp_path / "repo"
        for rel, text in files.items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(text)
        _git(repo, "init", "-q")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-qm", "base")
        monkeypatch.chdir(repo)
        return repo

    return make


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.run([str(a) for a in argv], out, err)
    return code, out.getvalue(), err.getvalue()


def targets(*paths) -> list[str]:
    code, out, err = run("deps", "--changed-since", "HEAD", "--json", *paths)
    assert code == 0, err
    return json.loads(out)["targets"]


def check_changed(*paths):
    return run("check", "--changed-since", "HEAD", "--plain", "--cache", "off", "--no-sympy", *paths)


@pytest.mark.parametrize("before, after", [
    (COMM + "\n" + MUL, COMM + "\n" + MUL.replace("(M_mul_mp b a))", "(M_add_mp b a c))")),  # wrong arity
    (DECLARED + COMM + "\n" + MUL, DECLARED.replace("(M_mul_mp Tensor Tensor)", "(M_mul_mp Tensor)")
     + COMM + "\n" + MUL),                                                                    # a declaration
    (COMM + "\n" + SPLIT, "; shapes: strict\n\n" + COMM + "\n" + SPLIT),                     # strict shapes
], ids=["arity", "datatype", "strict"])
def test_a_rule_that_stops_reading_rechecks_its_file_whole_and_fails(scratch, before, after):
    repo = scratch({"rules/r.egg": before})
    (repo / "rules/r.egg").write_text(after)
    assert targets("rules") == ["rules/r.egg"]
    code, out, err = check_changed("rules")
    assert code == 2, out + err
    assert "error" in out + err


def test_an_edit_of_either_rule_of_a_repeated_name_is_seen(scratch):
    dup = COMM.replace("comm:", "dup:")
    repo = scratch({"rules/r.egg": dup + "\n" + MUL.replace("comm2:", "dup:")})
    (repo / "rules/r.egg").write_text(dup.replace("(M_add_mp b a)", "(M_add_mp a a)") + "\n"
                                      + MUL.replace("comm2:", "dup:"))       # the first `dup` is now false
    assert targets("rules") == ["rules/r.egg:dup"]
    code, out, _ = check_changed("rules")
    assert code == 1 and "REFUTED" in out


def _chain(rules: str) -> str:
    return ('start = "a.egg"\nend = "b.egg"\nrules_dir = "../rules"\n\n[[step]]\nname = "add"\nfrom = "a.egg"\n'
            f'to = "b.egg"\nby = "rules"\nrules = {rules}\n')


def test_a_chain_citing_one_rule_by_a_plain_string_depends_on_it(scratch):
    repo = scratch({"rules/r.egg": COMM + "\n" + MUL, "proofs/a.egg": PROGRAM, "proofs/b.egg": PROGRAM,
                    "proofs/p.chain.toml": _chain('"comm"')})
    (repo / "rules/r.egg").write_text(MUL)
    assert targets("rules", "proofs") == ["proofs/p.chain.toml"]
    code, out, err = check_changed("rules", "proofs")
    assert code == 2 and "no rule named 'comm'" in out + err


def test_a_copied_rule_is_no_move_it_makes_the_name_ambiguous(scratch):
    repo = scratch({"rules/r.egg": COMM, "proofs/a.egg": PROGRAM, "proofs/b.egg": PROGRAM,
                    "proofs/p.chain.toml": _chain('["comm"]')})
    (repo / "rules/copy.egg").write_text(COMM)
    assert "proofs/p.chain.toml" in targets("rules", "proofs")
    code, out, err = check_changed("rules", "proofs")
    assert code == 2 and "ambiguous" in out + err
    (repo / "rules/r.egg").unlink()                   # now it is a move: the chain stays as it was
    assert targets("rules", "proofs") == ["rules/copy.egg:comm"]
