"""The proof gate in daily use: streaming output in a pipe, --json of every command against its
schema, one exit-status rule, the basics (--version, FILE:RULE, --help, --bound), exact dependencies of a
change, convincing counterexamples, pictures without graphviz, `verify numeric` on any program, and the dask
executor. Everything runs the real command (a subprocess where the pipe matters)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
from helpers import count_files, run_cli

from verify import cli
from verify.errors import ShapeError
from verify.gate import declared_sizes, declared_sizes_outside
from verify.reader import read_text
from verify.sizes import SizeBound
from verify.verdict import Result, Verdict

SPLIT = ('(let K (CreateTensor 1024 4 "K[m,e]"))\n(let T (T_split_m_m1m0 K {tiles}))\n'
         '(let S (R_max_m1 (R_max_m0 T)))\n(extract S)\n')


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.run([str(a) for a in argv], out, err)
    return code, out.getvalue(), err.getvalue()


def bounded(**ranks) -> Result:
    return Result("c", "f.egg", None, "equiv", Verdict.CERTIFIED,
                  SizeBound(tuple((r, 1, hi) for r, hi in ranks.items())), "normal form", 0.0)


ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
WRONG = ("; swap: a/b = b/a (wrong everywhere; at b = 0 the left side is undefined)\n"
         "(rewrite (M_div_p a b) (M_div_p b a))\n")
GOOD = "; split-max-ok: max over tiles\n(rewrite (R_max_m x) (R_max_m1 (R_max_m0 (T_split_m_m1m0 x t))))\n"


def verify_process(*argv, cwd=ROOT, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "verify", *map(str, argv)], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, **kw)


def validate(name: str, text: str):
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the test extra")
    data = json.loads(text)
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(data, schema, cls=jsonschema.Draft202012Validator)
    return data


@pytest.fixture(autouse=True)
def _in_the_repository(monkeypatch):
    monkeypatch.chdir(ROOT)          # relative paths below are the repository's


@pytest.fixture
def rules(tmp_path):
    d = tmp_path / "r"
    d.mkdir()
    (d / "good.egg").write_text(GOOD)
    (d / "wrong.egg").write_text(WRONG)
    (d / "broken.egg").write_text("(rewrite (M_add_p a b)\n")
    return d


# -- streaming --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_results_stream_in_input_order_while_the_run_goes_on_and_the_summary_comes_last():
    proc = subprocess.Popen([sys.executable, "-m", "verify", "check", "--plain", "--cache", "off",
                             "rules/tiling.egg", "proofs/attention.chain.toml"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    still_running = proc.poll() is None
    rest, _ = proc.communicate(timeout=300)
    assert first.startswith("rules/tiling.egg:5: split-max: CERTIFIED"), first
    assert still_running, "the first result should be printed while later claims are still being checked"
    lines = (first + rest).splitlines()
    heads = [line for line in lines if ": CERTIFIED" in line]
    assert [h.split(":")[0] for h in heads] == ["rules/tiling.egg"] * 6 + ["proofs/attention.chain.toml"] * 3
    assert lines[-1] == "9 checked: 9 certified"


@pytest.mark.slow
def test_heartbeat_names_a_claim_that_runs_long():
    proc = verify_process("check", "--plain", "--cache", "off", "--heartbeat", "0.3", "proofs/attention.chain.toml")
    lines = proc.stdout.splitlines()
    beats = [i for i, line in enumerate(lines) if line.startswith("... still checking 3-pass -> 2-pass")]
    done = next(i for i, line in enumerate(lines) if ": 3-pass -> 2-pass (normalise in tiles): CERTIFIED" in line)
    assert beats and beats[0] < done and "proofs/attention.chain.toml:9" in lines[beats[0]]
    # with --json, stdout is one JSON document: the heartbeat goes to stderr, and follows the run
    proc = verify_process("check", "--json", "--cache", "off", "--heartbeat", "0.3", "proofs/attention.chain.toml")
    assert len(json.loads(proc.stdout)) == 3
    assert "... still checking 3-pass -> 2-pass" in proc.stderr and "... still checking 2-pass -> 1-pass" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_pipe_closed_early_stops_the_run_without_a_traceback(jobs):
    proc = subprocess.run(f"set -o pipefail; {sys.executable} -m verify check --plain --cache off --jobs {jobs} "
                          f"rules/tiling.egg rules/softmax.egg proofs/attention.chain.toml | head -1", shell=True,
                          executable="/bin/bash", cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1                       # the output was not all written
    assert "Traceback" not in proc.stderr and "Broken pipe" not in proc.stderr, proc.stderr
    assert proc.stdout.startswith("rules/tiling.egg:5: split-max: CERTIFIED") and len(proc.stdout.splitlines()) == 1


# -- --json, every command, against its schema -------------------------------------------------------------------


@pytest.mark.slow
def test_check_json_lists_every_result_including_errors(rules, tmp_path):
    code, out, err = run_cli("check", rules, tmp_path / "missing.egg", "--json", "--cache", "off")
    assert code == 2
    data = validate("check", out)
    verdicts = {(Path(r["file"]).name if r["file"] else r["name"], r["verdict"]) for r in data}
    assert ("good.egg", "CERTIFIED") in verdicts and ("wrong.egg", "REFUTED") in verdicts
    assert ("broken.egg", "ERROR") in verdicts
    assert any(r["kind"] == "input" and "missing.egg" in r["detail"] for r in data)
    # bad input alone still prints a JSON list with the error, not []
    code, out, _ = run_cli("check", tmp_path / "missing.egg", "--json")
    assert code == 2 and validate("check", out)[0]["verdict"] == "ERROR"


@pytest.mark.slow
def test_equiv_and_report_json(tmp_path):
    code, out, _ = run_cli("equiv", ROOT / "proofs/attention.egg", ROOT / "proofs/attention_2pass.egg", "--json",
                           "--cache", "off")
    assert code == 0 and validate("check", out)[0]["verdict"] == "CERTIFIED"
    code, out, _ = run_cli("equiv", ROOT / "proofs/attention.egg", tmp_path / "nope.egg", "--json")
    assert code == 2 and validate("check", out)[0]["kind"] == "input"
    code, out, _ = run_cli("report", "-o", tmp_path / "rep", ROOT / "rules/softmax.egg", "--json", "--cache", "off")
    assert code == 0 and len(validate("check", out)) == 5


@pytest.mark.slow
def test_explain_json_including_a_bad_target(rules):
    code, out, _ = run_cli("explain", f"{rules / 'wrong.egg'}:swap", f"{rules / 'good.egg'}:nope", "--json",
                           "--budget", "5")
    assert code == 2
    data = validate("explain", out)
    assert data[0]["result"]["verdict"] == "REFUTED" and data[1]["result"]["verdict"] == "ERROR"
    assert "did you mean" in data[1]["result"]["detail"] or "split-max-ok" in data[1]["result"]["detail"]


@pytest.mark.slow
def test_mutate_json_and_exit_status(rules, tmp_path):
    code, out, _ = run_cli("mutate", rules / "good.egg", "--json")
    assert code == 0 and validate("mutate", out)["score"] == 1.0
    # mutating a false rule proves nothing: the unmutated rule is REFUTED, so exit 1
    code, out, _ = run_cli("mutate", rules / "wrong.egg", "--json")
    data = validate("mutate", out)
    assert code == 1 and data["originals"][0]["verdict"] == "REFUTED"
    code, out, _ = run_cli("mutate", rules / "broken.egg", "--json")
    assert code == 2 and validate("mutate", out)["errors"]


@pytest.mark.slow
def test_numeric_and_deps_json():
    code, out, _ = run_cli("numeric", ROOT / "proofs/attention.egg", ROOT / "proofs/attention_1pass.egg",
                           "--sizes", "M=64,E=8,P=4,F=4", "--json")
    data = validate("numeric", out)
    assert code == 0 and data["ok"] and data["rows"]
    code, out, _ = run_cli("deps", "--changed-since", "HEAD", "--json")
    assert code == 0 and validate("deps", out)["ref"] == "HEAD"


@pytest.mark.slow
def test_optimize_json():
    code, out, _ = run_cli("optimize", ROOT / "proofs/attention.egg", "--json", "--no-sympy")
    data = validate("optimize", out)
    assert code == 0 and data["verified"] and data["output"]["passes"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("argv, schema", [
    (["check", "nope.egg"], "check"), (["check", "rules/softmax.egg", "--bound", "Q=2"], "check"),
    (["check", "rules", "--jobs", "0"], "check"), (["check", "rules", "--no-such-option"], "check"),
    (["equiv", "nope.egg", "nope2.egg"], "check"), (["report", "-o", "{tmp}/r", "nope.egg"], "check"),
    (["explain", "nope.egg"], "explain"), (["mutate", "nope.egg"], "mutate"),
    (["numeric", "nope.egg"], "numeric"), (["numeric", "proofs/attention.egg", "--M", "0"], "numeric"),
    (["deps", "--changed-since", "no-such-ref"], "deps"), (["optimize", "nope.egg"], "optimize"),
])


def test_json_of_bad_input_is_in_the_command_schema(argv, schema, tmp_path):
    code, out, err = run_cli(*[a.replace("{tmp}", str(tmp_path)) for a in argv], "--json")
    assert code == 2 and "Traceback" not in err
    data = validate(schema, out)
    text = json.dumps(data)
    assert "error" in text


# -- exit status, basics -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_version_help_and_exit_rule_in_help():
    proc = verify_process("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("verify ")
    proc = verify_process("--help")
    assert proc.returncode == 0
    assert "exit status (every command)" in proc.stdout and "examples:" in proc.stdout
    assert "--changed-since" in proc.stdout and "FILE:NAME" in proc.stdout


@pytest.mark.slow
def test_check_file_rule_by_name_and_line(rules):
    code, out, _ = run_cli("check", f"{rules / 'wrong.egg'}:swap", f"{ROOT / 'rules/tiling.egg'}:5", "--plain",
                           "--cache", "off")
    assert code == 1
    assert "swap: REFUTED" in out and "split-max: CERTIFIED" in out and out.strip().endswith(
        "2 checked: 1 certified, 1 refuted")
    code, _, err = run_cli("check", f"{ROOT / 'rules/tiling.egg'}:split-maxx")
    assert code == 2 and "did you mean 'split-max'" in err


@pytest.mark.slow
def test_bound_naming_an_unknown_rank_is_an_error():
    code, _, err = run_cli("check", ROOT / "rules/softmax.egg", "--bound", "Q=3")
    assert code == 2 and "--bound names rank Q" in err and "Traceback" not in err
    code, _, _ = run_cli("check", ROOT / "rules/tiling.egg:5", "--bound", "M1=3", "--cache", "off")
    assert code == 0
    code, _, err = run_cli("explain", f"{ROOT / 'rules/softmax.egg'}:exp-rescale", "--bound", "Z=2")
    assert code == 2 and "--bound names rank Z" in err


@pytest.mark.slow
def test_error_verdicts_exit_2_refuted_exit_1(rules):
    assert run_cli("check", rules / "good.egg", "--cache", "off")[0] == 0
    assert run_cli("check", rules / "good.egg", rules / "wrong.egg", "--cache", "off")[0] == 1
    assert run_cli("check", rules, "--cache", "off")[0] == 2


# -- counterexamples ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_an_ordinary_counterexample_comes_first_and_the_edge_case_second(rules):
    code, out, _ = run_cli("check", rules / "wrong.egg", "--json", "--cache", "off")
    (r,) = validate("check", out)
    cx = r["counterexample"]
    assert not isinstance(cx["lhs_value"], str) and not isinstance(cx["rhs_value"], str)   # defined, finite
    assert cx["lhs_value"] != cx["rhs_value"]
    edge = cx["edge_case"]
    assert edge is not None and "nan" in (edge["lhs_value"], edge["rhs_value"])
    code, out, _ = run_cli("check", rules / "wrong.egg", "--plain", "--cache", "off")
    first, second = out.index("  counterexample ("), out.index("second counterexample, an edge case")
    assert first < second and "undefined" in out[second:]


# -- pictures ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_report_shows_each_rule_text_and_picture(tmp_path):
    for library in ("matplotlib", "networkx"):
        pytest.importorskip(library, reason="the draw extra (networkx, matplotlib) is in the test extra")
    code, out, err = run_cli("report", "-o", tmp_path / "rep", ROOT / "rules/softmax.egg", ROOT / "proofs/attention.egg",
                             "--cache", "off")
    assert code == 0, err
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "<h2>Rules</h2>" in page and "factor-out-of-sum" in page
    assert "(rewrite (R_add_m (M_mul_mp c x)) (M_mul_p c (R_add_m x)))" in page.replace("&quot;", '"')
    pictures = sorted((tmp_path / "rep" / "pictures").glob("rule-*.svg"))
    assert len(pictures) == 5 and page.count('src="pictures/rule-') == 5
    svg = pictures[1].read_text()
    ElementTree.fromstring(svg)
    assert "left side" in svg and "right side" in svg and "R_add_m" in svg
    assert 'src="pictures/attention.svg"' in page           # the program's cascade, without graphviz
    cascade = (tmp_path / "rep" / "pictures" / "attention.svg").read_text()
    assert cascade.startswith("<?xml") and ElementTree.fromstring(cascade).tag.endswith("svg")
    assert "GM" in cascade                                  # a binding of the program, drawn as text


@pytest.mark.slow
def test_report_without_the_drawing_libraries_still_writes_and_says_so(tmp_path):
    """Neither graphviz nor networkx/matplotlib: the cascade is graphviz source shown as text, no rule pictures."""
    script = ("import sys; sys.modules.update(matplotlib=None, networkx=None); from verify.cli import main; "
              f"sys.argv = ['verify', 'report', '-o', {str(tmp_path / 'rep')!r}, 'rules/softmax.egg', "
              "'proofs/attention.egg', '--cache', 'off', '--no-sympy']; main()")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PATH": ""})
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "no rule pictures: " in page and "cascade pictures as graphviz source" in page
    assert not list((tmp_path / "rep" / "pictures").glob("*.svg"))
    assert (tmp_path / "rep" / "pictures" / "attention.dot").read_text().startswith("digraph cascade")
    assert "digraph cascade" in page


# -- numeric on any program --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_numeric_any_program_masks_scales_and_sizes():
    code, out, err = run_cli("numeric", ROOT / "proofs/masked/attention_masked.egg",
                             ROOT / "proofs/masked/attention_1pass_guarded.egg", "--sizes", "M=64,M1=8,E=8,P=4,F=4")
    assert code == 0, err
    assert "attention_1pass_guarded.egg" in out and "M0=8, M1=8" in out
    assert "reference evaluator (attention_masked.egg, float64)" in out and "numpy attention" in out
    code, out, _ = run_cli("numeric", ROOT / "proofs/variants/attention_1pass_scaled.egg", "--bound", "M=32,E=4")
    assert code == 0 and "numpy attention" in out
    # a program that is not attention: log-sum-exp, compared with its 3-pass form by the reference evaluator
    code, out, _ = run_cli("numeric", ROOT / "proofs/variants/lse_3pass.egg", ROOT / "proofs/variants/lse_1pass.egg",
                           "--sizes", "M=32")
    assert code == 0 and "reference evaluator (lse_3pass.egg" in out and "numpy attention" not in out
    code, _, err = run_cli("numeric", ROOT / "proofs/attention_1pass.egg", "--sizes", "M=30,M1=8")
    assert code == 2 and "not divisible" in err


# -- exact dependencies of a change ------------------------------------------------------------------------------


def _git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copytree(ROOT / "rules", repo / "rules")
    shutil.copytree(ROOT / "proofs", repo / "proofs", ignore=shutil.ignore_patterns("certificates"))
    _git(repo, "init", "-q")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "base")
    return repo


def deps(repo, *extra):
    proc = verify_process("deps", "--json", *extra, cwd=repo)
    assert proc.returncode == 0, proc.stderr
    return validate("deps", proc.stdout)


@pytest.mark.slow
def test_changed_rule_rechecks_that_rule_and_the_chains_citing_it(repo):
    tiling = repo / "rules/tiling.egg"
    text = tiling.read_text()
    tiling.write_text(text.replace("; split-max:", "; split-max: (reworded)", 1))      # a comment only
    assert deps(repo)["targets"] == []
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("; split-exp")) + 1
    lines[i] = lines[i].replace("(M_exp_mp x)", "(M_exp_mp (M_exp_mp x))", 1)
    tiling.write_text("\n".join(lines) + "\n")
    data = deps(repo)
    assert data["targets"][0] == "rules/tiling.egg:split-exp"
    assert not any(t.startswith("rules/tiling.egg:split-max") for t in data["targets"])
    assert "proofs/derivation.chain.toml" in data["targets"]
    assert "proofs/attention.chain.toml" not in data["targets"]          # it cites no rules


@pytest.mark.slow
def test_changed_program_rechecks_the_chains_naming_it(repo):
    p = repo / "proofs/attention_2pass.egg"
    p.write_text("; touched\n" + p.read_text())
    data = deps(repo)
    assert data["targets"] == ["proofs/attention.chain.toml"]
    assert "changed program" in data["reasons"]["proofs/attention.chain.toml"]


@pytest.mark.slow
def test_a_step_chain_inside_rules_counts_as_a_rule(repo):
    p = repo / "rules/online/running-max.rhs.egg"
    p.write_text("; touched\n" + p.read_text())
    targets = deps(repo)["targets"]
    assert "rules/online/running-max.chain.toml" in targets and "proofs/derivation.chain.toml" in targets


@pytest.mark.slow
def test_deleted_rules_recheck_their_citing_chain_and_fail_it(repo):
    (repo / "rules/softmax.egg").unlink()                 # division-deferral is cited by derivation.chain.toml
    data = deps(repo)
    assert data["targets"] == ["proofs/derivation.chain.toml"]
    assert "division-deferral" in data["reasons"]["proofs/derivation.chain.toml"]
    proc = verify_process("check", "--plain", "--cache", "off", "--changed-since", "HEAD", cwd=repo)
    assert proc.returncode in (1, 2), proc.stdout
    assert "defer the division (3-pass): CERTIFIED" not in proc.stdout
    assert "no rule named 'division-deferral'" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_a_renamed_unchanged_rule_file_does_not_recheck_chains(repo):
    _git(repo, "mv", "rules/softmax.egg", "rules/softmax2.egg")
    targets = deps(repo)["targets"]
    assert "proofs/derivation.chain.toml" not in targets
    assert all(t.startswith("rules/softmax2.egg:") for t in targets) and targets


@pytest.mark.slow
def test_staged_only_the_checker_and_a_bogus_ref(repo):
    (repo / "rules/extra.egg").write_text(GOOD)                   # untracked, not staged
    assert deps(repo, "--staged")["targets"] == []
    assert "rules/extra.egg:split-max-ok" in deps(repo)["targets"]
    _git(repo, "add", "rules/extra.egg")
    assert deps(repo, "--staged")["targets"] == ["rules/extra.egg:split-max-ok"]
    (repo / "verify").mkdir()
    (repo / "verify" / "x.py").write_text("")
    assert deps(repo)["targets"] == ["rules", "proofs"]
    outside = repo.parent / "not-a-repository"
    outside.mkdir()
    proc = verify_process("deps", "--changed-since", "HEAD", cwd=outside)
    assert proc.returncode == 2 and "not inside a git repository" in proc.stderr
    proc = verify_process("check", "--changed-since", "no-such-ref", cwd=repo)
    assert proc.returncode == 2 and "'no-such-ref' is not a commit" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_the_pre_commit_hook_entry_blocks_a_staged_deletion(repo):
    _git(repo, "rm", "-q", "rules/softmax.egg")
    entry = "check --staged --plain --cache off rules proofs".split()
    proc = verify_process(*entry, cwd=repo)
    assert proc.returncode != 0 and "derivation.chain.toml" in proc.stderr
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x")
    proc = verify_process(*entry, cwd=repo)
    assert proc.returncode == 0 and "nothing to check" in proc.stdout


# -- the dask executor -------------------------------------------------------------------------------------------


def _comparable(results):
    return [(r["file"], r["line"], r["name"], r["verdict"], r["bound"], r["method"]) for r in results]


@pytest.mark.slow
def test_dask_cluster_gives_the_same_verdicts_as_the_local_run(tmp_path):
    pytest.importorskip("distributed", reason="the cluster extra (dask.distributed) is not installed: "
                                              "pip install 'verify[cluster]' (make install does)")
    import dask
    from distributed import LocalCluster

    targets = ["rules", "proofs/attention.chain.toml"]
    local = run_cli("check", *targets, "--json", "--cache", "off", "--no-sympy")
    with dask.config.set({"distributed.worker.daemon": False}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=40)
    try:
        remote = run_cli("check", *targets, "--json", "--cache", "off", "--no-sympy",
                         "--executor", f"dask={cluster.scheduler_address}")
    finally:
        cluster.close()
    assert local[0] == remote[0] == 0, remote[2]
    assert _comparable(json.loads(local[1])) == _comparable(json.loads(remote[1]))
    # and a refuted rule is refuted there with the same counterexample
    (tmp_path / "w.egg").write_text(WRONG)
    a = json.loads(run_cli("check", tmp_path / "w.egg", "--json", "--cache", "off")[1])
    b = json.loads(run_cli("check", tmp_path / "w.egg", "--json", "--cache", "off", "--executor", "dask")[1])
    assert a[0]["counterexample"] == b[0]["counterexample"] and b[0]["verdict"] == "REFUTED"


@pytest.mark.slow
def test_dask_executor_errors_are_clear():
    proc = verify_process("check", "rules/softmax.egg", "--executor", "dask=127.0.0.1:9",
                          env={"VERIFY_DASK_CONNECT_TIMEOUT": "2"})
    if "not installed" in proc.stderr:
        assert proc.returncode == 2 and "verify[cluster]" in proc.stderr
        pytest.skip("dask.distributed is not installed")
    assert proc.returncode == 2 and "cannot reach the dask scheduler at 127.0.0.1:9" in proc.stderr
    assert "Traceback" not in proc.stderr
    code, _, err = run_cli("check", "rules/softmax.egg", "--executor", "spark")
    assert code == 2 and "unknown executor 'spark'" in err


@pytest.mark.slow
def test_equiv_says_when_declared_sizes_lie_outside_the_bound(tmp_path):
    _, program = count_files(tmp_path)
    other = tmp_path / "other.egg"
    other.write_text('(let X (CreateTensor 3 4 "X[e,p]"))\n(let Y (CreateTensor 4 "Y[p]"))\n'
                     '(let Z (M_add_p Y (M_mul_p Y (Const 0.0))))\n(extract Z)\n')
    code, out, err = run_cli("equiv", program, other, "--cache", "off", "--no-sympy")
    assert "declare E=3, outside the bound checked" in out, (out, err)
    code, out, err = run_cli("equiv", program, other, "--cache", "off", "--no-sympy", "--bound", "E=3..3")
    assert code == 1 and "REFUTED" in out, (out, err)


def test_the_sizes_a_split_makes_of_a_declared_rank_are_declared_too():
    program = read_text(SPLIT.format(tiles=4), "p.egg").program
    assert declared_sizes(program) == {"m": 1024, "e": 4, "m1": 4, "m0": 256}
    assert declared_sizes_outside(program, [bounded(E=4, M1=2, M0=2)]) == "M0=256, M1=4"
    assert declared_sizes_outside(program, [bounded(E=4, M1=4, M0=256)]) == ""
    with pytest.raises(ShapeError, match="1024 is not a multiple of 3"):   # such a program is refused when read
        read_text(SPLIT.format(tiles=3), "q.egg")


@pytest.mark.slow
def test_equiv_warns_when_the_bound_misses_the_split_sizes(tmp_path):
    """A running max over tiles equals the max (CERTIFIED within the bound, not lifted); K is 1024 long in 4
    tiles, so M1=4 and M0=256 lie outside M1<=2, M0<=2."""
    a, b = tmp_path / "a.egg", tmp_path / "b.egg"
    a.write_text('(let K (CreateTensor 1024 4 "K[m,p]"))\n(let S (R_max_m K))\n(extract S)\n')
    b.write_text('(let K (CreateTensor 1024 4 "K[m,p]"))\n(let BK (T_split_m_m1m0 K 4))\n(let LM (R_max_m0 BK))\n'
                 '(let RM (S_scan_m1 "RM" (Const -inf) (M_max_m1p (S_prev_m1 "RM") LM)))\n'
                 '(let S (S_last_m1 RM))\n(extract S)\n')
    code, out, err = run("equiv", a, b, "--cache", "off", "--no-sympy", "--plain", "--bound", "M1=2,M0=2,P=2")
    assert code == 0 and "CERTIFIED (M1<=2, M0<=2" in out, (out, err)
    assert "the programs declare M0=256, M1=4, outside the bound checked" in out, (out, err)
