"""The backward chain (proofs/backward*.chain.toml): the files it starts from are what `verify grad` derives today,
and the rule-level lift never lifts a wrong backward (the known bugs of tests/corpus/programs/bwd_*.egg)."""

from __future__ import annotations

from pathlib import Path

import pytest

from verify.claims import equiv_claims
from verify.grad import derive
from verify.induction import lift
from verify.induction.obligations import LemmaVerdict
from verify.induction.rule_level import lemma_obligations
from verify.options import Options
from verify.printer import program_text
from verify.reader import read_file
from verify.targets import collect

ROOT = Path(__file__).resolve().parent.parent
TEXTBOOK = ROOT / "proofs/backward/attention_grad.egg"


def _body(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith(";")]


@pytest.mark.parametrize("program, derived", [("attention.egg", "attention_grad_derived.egg"),
                                              ("attention_1pass.egg", "attention_1pass_grad_derived.egg"),
                                              ("variants/attention_scaled.egg", "attention_scaled_grad_derived.egg"),
                                              ("masked/attention_masked.egg", "attention_masked_grad_derived.egg"),
                                              ("causal/attention.egg", "attention_causal_grad_derived.egg")])
def test_chain_starts_from_what_grad_derives(program, derived):
    d = derive(read_file(ROOT / "proofs" / program).program, ["Q", "K", "V"])
    assert _body(program_text(d.program)) == _body((ROOT / "proofs/backward" / derived).read_text())


def test_interchange_lemma_is_proved():
    obligations = lemma_obligations()["interchange"]
    assert len(obligations) == 5 and all(o.verdict is LemmaVerdict.PROVED for o in obligations)


@pytest.mark.slow
@pytest.mark.parametrize("bug", ["bwd_d_from_unnormalised_output", "bwd_lse_without_log", "bwd_assumes_causal",
                                 "bwd_scaled_dk_without_scale"])
def test_lift_never_lifts_a_wrong_backward(bug):
    """dQ (and dK) of each bug differ from the true gradient (the corpus refutes them); the lift must not prove them
    for all sizes, whatever its normalisations do."""
    good = TEXTBOOK if "scaled" not in bug else ROOT / "proofs/backward/attention_scaled_grad_derived.egg"
    claims = equiv_claims(read_file(good).program, read_file(ROOT / f"tests/corpus/programs/{bug}.egg").program)
    wrong = claims[1:2] if "dk" in bug else claims[:2]
    for claim in wrong:
        assert not lift(claim).lifted, claim.name


@pytest.mark.slow
@pytest.mark.parametrize("program, tiles", [("flash2_bwd.egg", {}), ("flash2_bwd_tiled.egg", {"M1": 4, "P1": 2}),
                                            ("attention_grad_derived.egg", {}), ("flash2_bwd_scaled.egg", {})])
def test_backward_kernels_match_autograd_of_sdpa(tmp_path, program, tiles):
    """The torch code `verify codegen` writes for the backward programs against torch.autograd through SDPA."""
    torch = pytest.importorskip("torch", reason="torch is not installed (make codegen-extra)")
    import importlib.util
    import inspect
    import io

    from verify.cli import run

    out = tmp_path / "bwd.py"
    assert run(["codegen", str(ROOT / "proofs/backward" / program), "--target", "torch", "-o", str(out)],
               io.StringIO(), io.StringIO()) == 0
    spec = importlib.util.spec_from_file_location("bwd", out)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    E, F, M, P = 8, 4, 32, 12
    g = torch.Generator().manual_seed(3)
    Q, K, V, dO = (torch.randn(*s, generator=g, dtype=torch.float64) for s in ((E, P), (E, M), (F, M), (F, P)))
    scaled = "scaled" in program
    q, k, v = (x.T.clone().requires_grad_(True) for x in (Q, K, V))
    o = torch.nn.functional.scaled_dot_product_attention(q[None], k[None], v[None], scale=E ** -0.5 if scaled else 1.0)
    o[0].backward(dO.T)
    extra = {"tau": E ** -0.5} if scaled else {}
    for name, want in (("dQ", q.grad.T), ("dK", k.grad.T), ("dV", v.grad.T)):
        fn = getattr(mod, name)
        params = inspect.signature(fn).parameters
        args = {n: a for n, a in {"Q": Q, "K": K, "V": V, "dAV": dO, **extra, **tiles}.items() if n in params}
        got = fn(**args)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


# Rules the new normalisations of the lift must not prove (each false: the bounded checker refutes them).
FALSE_FOR_THE_LIFT = """
; log-of-any-sum: exp(x - log(sum y)) = exp(x) / sum y, where sum y may be <= 0 (the log is then undefined)
(rewrite (M_exp_mp (M_sub_mp x (M_log_p (R_add_m y)))) (M_div_mp (M_exp_mp x) (R_add_m y)))
; half-log: exp(log(SD) / 2) is not SD
(rewrite (M_exp_p (M_mul_p (Const 0.5) (M_log_p (R_add_m (M_exp_mp y))))) (R_add_m (M_exp_mp y)))
; divisor-not-positive: a sum over p of a / (sum_m b), sum_m b may be 0 for some p: not a sum without condition
(rewrite (R_add_p (M_div_mp a (R_add_m b))) (M_div_m (R_add_p a) (R_add_m (R_add_p b))))
; wrong-interchange: sum_f o * sum_m (a * v) against sum_m a * sum_f (o * a)
(rewrite (R_add_f (M_mul_fp o (R_add_m (M_mul_fmp a v)))) (R_add_m (M_mul_mp a (R_add_f (M_mul_fmp o a)))))
"""


def test_the_lift_does_not_prove_false_rules(tmp_path):
    path = tmp_path / "false.egg"
    path.write_text(FALSE_FOR_THE_LIFT)
    claims, errors, _ = collect([str(path)], Options())
    assert not errors and len(claims) == 4
    for claim in claims:
        assert not lift(claim).lifted, claim.name
