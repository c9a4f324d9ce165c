"""The records an obligation returns, the lemma groups and the cascades each describes, and the variants (wrong
cascades that show each obligation can fail)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

GROUP_2PASS = "3pass=2pass (all M1, M0)"
GROUP_1PASS = "3pass=1pass (all M1, M0)"
GROUP_MERGE = "merge operator"
GROUPS = (GROUP_2PASS, GROUP_1PASS, GROUP_MERGE)
# The cascades each group's lemmas describe (files in verify/models/): each is proved equal to the 3-pass
# cascade for every tile count. A chain step is lifted only when both its programs are among them.
# The lemma groups the argument for each model needs, all of them: a step is lifted only when it names every
# group the argument for both of its programs uses (the 1-pass conclusion is stated through the 2-pass AV; the
# split-KV argument goes n-ary merge -> fold of merges -> 1-pass -> 2-pass -> 3-pass; the n-ary merge step uses
# the rebase lemma of the 1-pass group).
REQUIRES = {
    "attention.egg": (),
    "attention_2pass.egg": (GROUP_2PASS,),
    "attention_2pass_deferred.egg": (GROUP_2PASS,),
    "attention_1pass.egg": (GROUP_2PASS, GROUP_1PASS),
    "attention_splitkv.egg": (GROUP_2PASS, GROUP_1PASS, GROUP_MERGE),
}
MODELS = {
    GROUP_2PASS: ("attention.egg", "attention_2pass.egg", "attention_2pass_deferred.egg"),
    GROUP_1PASS: ("attention.egg", "attention_1pass.egg"),
    GROUP_MERGE: ("attention.egg", "attention_splitkv.egg"),
}




class LemmaVerdict(enum.StrEnum):
    """What Z3 made of one induction obligation; the driver lifts a step only if every lemma is PROVED."""

    PROVED = "proved"
    REFUTED = "refuted"               # a model (or an extended-real case) where the obligation fails
    UNKNOWN = "unknown"               # a timeout, or hypotheses that are inconsistent (vacuous)


@dataclass
class Obligation:
    name: str
    statement: str
    verdict: LemmaVerdict
    seconds: float
    counterexample: dict | None = None
    group: str = ""
    result: str = ""                  # z3 answer: "unsat" | "sat" | "unknown" | "undefined" (-inf case)
    query: str = ""                   # SMT-LIB text of the query (hypotheses, facts, negated goal)
    replay: dict | None = None        # float replay of the counterexample


@dataclass(frozen=True)
class Variant:
    """Which cascade definitions to use. Only "correct" is the real algorithm."""
    correction: str = "old-new"       # 1-pass PRM[k] = exp(RM[k] - RM[k+1]); "new-old" flips it
    rnv_rescale: bool = True          # False: RNV[k+1] = SLNV' + RNV[k]
    merge_rescale_b: bool = True      # False: merge forgets exp(mb - m)
    prm_2pass: str = "LM-GM"          # 2-pass PRM = exp(LM - GM); "GM-LM" flipped; "none" dropped


VARIANTS: dict[str, Variant] = {
    "correct": Variant(),
    "drop_rnv_rescale": Variant(rnv_rescale=False),
    "flipped_correction": Variant(correction="new-old"),
    "merge_forgets_rescale": Variant(merge_rescale_b=False),
    "2pass_flipped_prm": Variant(prm_2pass="GM-LM"),
    "2pass_drop_prm": Variant(prm_2pass="none"),
}


def as_variant(name: str | Variant) -> Variant:
    if isinstance(name, Variant):
        return name
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; choose from {sorted(VARIANTS)}") from None


