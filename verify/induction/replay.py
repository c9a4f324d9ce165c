"""The cascades in floats, to replay a counterexample (a Z3 model) on concrete tiles."""

from __future__ import annotations

import math

from .obligations import Variant


def fexp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def f_onepass_step(v: Variant, state, scores, values):
    rm, rd, rnv = state
    lm = max(scores)
    rm1 = max(rm, lm)
    sln = [fexp(s - rm1) for s in scores]
    sld = sum(sln)
    slnv = sum(w * x for w, x in zip(sln, values))
    prm = fexp(rm - rm1) if v.correction == "old-new" else fexp(rm1 - rm)
    return rm1, sld + rd * prm, slnv + (rnv * prm if v.rnv_rescale else rnv)


def f_onepass(v: Variant, tiles):
    state = (-math.inf, 0.0, 0.0)
    for scores, values in tiles:
        state = f_onepass_step(v, state, scores, values)
    return state


def f_threepass(scores, values):
    gm = max(scores)
    sn = [math.exp(s - gm) for s in scores]
    sd = sum(sn)
    return sum((w / sd) * x for w, x in zip(sn, values))


def f_twopass(v: Variant, tiles):
    lms = [max(sc) for sc, _ in tiles]
    gm = max(lms)
    acc = gd = 0.0
    for (sc, vals), lm in zip(tiles, lms):
        prm = {"LM-GM": fexp(lm - gm), "GM-LM": fexp(gm - lm), "none": 1.0}[v.prm_2pass]
        for s, x in zip(sc, vals):
            cn = math.exp(s - lm) * prm
            acc += cn * x
            gd += cn
    return acc / gd


def f_merge(v: Variant, a, b):
    (ma, da, oa), (mb, db, ob) = a, b
    m = max(ma, mb)
    fa = fexp(ma - m)
    fb = fexp(mb - m) if v.merge_rescale_b else 1.0
    return m, da * fa + db * fb, oa * fa + ob * fb


def differ(x: float, y: float, rel: float = 1e-9) -> bool:
    """Whether a replayed Z3 model shows the two values apart. Not `evaluate.same_value`: Z3's model is over
    the reals, where every value here is defined, so a NaN is the float replay itself breaking down (inf - inf
    after an overflowed exp), not the IR's "undefined", and two NaNs cannot vouch that the sides agree; the
    tolerance is relative to max(1, |x|, |y|), tighter than same_value's, since these are a few exps of
    moderate numbers, not whole cascades."""
    if math.isnan(x) or math.isnan(y):
        return True
    return abs(x - y) > rel * max(1.0, abs(x), abs(y))


def realise_tiles(summaries):
    """Concrete tiles (scores, values) with the given local summaries (LM, SLD >= 1, SLNV), same M0 for all.
    One element sits at LM (weight exp(0) = 1); the other M0-1 share the rest, each weight < 1, i.e. a
    finite score below LM. Needs SLD > 1 for every tile when M0 >= 2 (the tidy models guarantee it)."""
    if all(w == 1 for _, w, _ in summaries):
        m0 = 1
    else:
        m0 = int(max(w for _, w, _ in summaries)) + 2
    tiles = []
    for lm, w, num in summaries:
        if m0 == 1:
            scores = [lm]
        else:
            if w <= 1:
                raise ValueError("a tile of weight 1 with M0 >= 2 is not realisable with finite scores")
            rest = (w - 1) / (m0 - 1)
            scores = [lm] + [lm + math.log(rest)] * (m0 - 1)
        tiles.append((scores, [num / w] * m0))
    return tiles


