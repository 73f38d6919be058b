"""Timed phones -> mouth expression curves: visemes blended by a dominance model of coarticulation.

Each phone maps to one of 14 visemes, a target for the mouth coefficients. A target's influence
rises before its sound (lips anticipate speech) and decays after it, with a strength
("dominance") per viseme and per articulator (Cohen & Massaro 1993): a bilabial dominates the lips
and always closes them, while T, D, K leave the lips to their neighbours, so the rounding of a
/u/ spreads over the consonants around it. Silence has a weak target of relaxed, closed lips, so
a pause lets the mouth settle instead of snapping shut.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetalk.audio.phones import Phones

# Coefficients a viseme sets, all measured from closed lips (the mouth layer removes the photo's
# own lip gap first, so a photo taken mid-word speaks like one with its mouth shut).
MOUTH = ("jawOpen", "mouthPress", "mouthFunnel", "mouthPucker", "mouthStretch", "upperLipUp", "lowerLipDown")
JAW, LIPS = 0, 1  # articulator groups: the jaw, and everything the lips do
_GROUP = np.array([JAW, LIPS, LIPS, LIPS, LIPS, LIPS, LIPS])

# The timing of the coarticulation (fitted to real speakers with the targets: motion/fitted.json):
ANTICIPATION_S = 0.03  # the mouth shapes this much before the sound's centre
REACH_S = 0.07  # how far (beyond its own half length) a viseme's influence reaches
CLOSURE_JAW = 0.0  # jawOpen at the closed frame of a bilabial: the rig's lips follow the jaw, and 0.03
# already shows a dark line between them (a real jaw may drop a little while the lips stay sealed)
BLOCK = 256  # frames blended at a time
REST_PRIOR = 1e-3  # weight of the rest shape everywhere


@dataclass(frozen=True)
class Viseme:
    target: tuple[float, ...]  # in MOUTH order
    dominance: tuple[float, float]  # (jaw, lips)


def _v(jaw=0.0, press=0.0, funnel=0.0, pucker=0.0, stretch=0.0, lip_up=0.0, lip_down=0.0,
       dom=(1.0, 1.0)) -> Viseme:
    return Viseme((jaw, press, funnel, pucker, stretch, lip_up, lip_down), dom)


VISEMES: dict[str, Viseme] = {
    "sil": _v(dom=(1.0, 1.0)),  # a pause settles the lips within ~0.1 s: real lips rest still in pauses
    "PP": _v(jaw=0.0, press=0.4, dom=(4.0, 6.0)),  # M B P: lips pressed shut
    "FF": _v(jaw=0.07, lip_up=0.35, dom=(2.0, 3.0)),  # F V: lower lip under the upper teeth
    "TH": _v(jaw=0.15, lip_up=0.1, dom=(1.0, 0.5)),
    "DD": _v(jaw=0.17, dom=(0.8, 0.2)),  # T D N L: the tongue works, the lips are free
    "SS": _v(jaw=0.06, stretch=0.3, dom=(1.5, 0.5)),  # S Z: teeth nearly together
    "SH": _v(jaw=0.1, funnel=0.55, pucker=0.2, dom=(1.2, 1.5)),  # SH CH JH ZH
    "KK": _v(jaw=0.22, dom=(0.8, 0.2)),  # K G NG HH
    "RR": _v(jaw=0.15, funnel=0.35, pucker=0.25, dom=(1.0, 1.0)),
    "WW": _v(jaw=0.1, pucker=0.85, funnel=0.3, dom=(1.0, 2.0)),  # W UW UH: rounded, protruded
    "AA": _v(jaw=0.62, stretch=0.1, lip_down=0.3, dom=(1.2, 0.8)),  # open vowels
    "EH": _v(jaw=0.4, stretch=0.3, lip_down=0.15, dom=(1.0, 0.8)),  # mid vowels
    "IY": _v(jaw=0.2, stretch=0.55, dom=(1.0, 1.0)),  # spread vowels
    "OW": _v(jaw=0.45, funnel=0.6, pucker=0.3, dom=(1.0, 1.2)),  # rounded vowels
    "ER": _v(jaw=0.28, funnel=0.3, pucker=0.15, dom=(1.0, 0.8)),
    "noise": _v(jaw=0.3, dom=(0.6, 0.3)),  # voice the recogniser cannot name: open by loudness
}

PHONE_VISEME: dict[str, str] = {
    "SIL": "sil", "M": "PP", "B": "PP", "P": "PP", "F": "FF", "V": "FF", "TH": "TH", "DH": "TH",
    "T": "DD", "D": "DD", "N": "DD", "L": "DD", "S": "SS", "Z": "SS",
    "SH": "SH", "ZH": "SH", "CH": "SH", "JH": "SH", "K": "KK", "G": "KK", "NG": "KK", "HH": "KK", "Y": "IY",
    "R": "RR", "W": "WW", "UW": "WW", "UH": "WW",
    "AA": "AA", "AE": "AA", "AH": "AA", "AY": "AA", "AW": "AA",
    "EH": "EH", "EY": "EH", "ER": "ER", "IY": "IY", "IH": "IY", "OW": "OW", "AO": "OW", "OY": "OW",
    "SPN": "noise",
}


def viseme_of(phone: str) -> str:
    return PHONE_VISEME.get(phone.upper(), "noise")


VISEME_NAMES = tuple(VISEMES)
_SIL = VISEME_NAMES.index("sil")


def target_table(visemes: dict[str, Viseme] = VISEMES) -> np.ndarray:
    """(V, P) targets in VISEME_NAMES x MOUTH order."""
    return np.array([visemes[name].target for name in VISEME_NAMES])


def viseme_weights(phones: Phones, n_frames: int, fps: float, first: int = 0, reach_s: float = REACH_S,
                   anticipation_s: float = ANTICIPATION_S) -> np.ndarray:
    """(n_frames, 2, V) normalised influence of each viseme on each articulator group (jaw, lips)
    at frames first .. first+n_frames-1 (phones timed from frame 0).

    Dominance of segment i at time t: its group's strength times a falloff that is flat over the
    segment (shifted earlier by `anticipation_s`) and decays with distance beyond it over `reach_s`.
    The blend is linear in the targets (`weights @ targets`), which is what lets the fit
    (tools/fit_motion.py) solve for the targets by least squares through this very coarticulation.
    """
    t = (first + np.arange(n_frames)) / fps
    out = np.zeros((n_frames, 2, len(VISEME_NAMES)))
    out[:, :, _SIL] = 1.0
    if len(phones) == 0:
        return out
    names = [viseme_of(p) for p in phones.labels]
    which = np.array([VISEME_NAMES.index(v) for v in names])
    onehot = np.eye(len(VISEME_NAMES))[which]  # (N, V)
    dom = np.array([VISEMES[v].dominance for v in names])  # (N, 2)
    reach = np.where([n == "sil" for n in names], 2 * reach_s, reach_s)  # rest comes on gently
    start = phones.starts - anticipation_s
    end = np.maximum(phones.ends - anticipation_s, start + 1.0 / fps)
    horizon = 4 * 2 * reach_s  # beyond this a segment's weight is nil (e^-16)
    for b0 in range(0, n_frames, BLOCK):  # frames in blocks, against nearby segments only: linear in length
        tb = t[b0:b0 + BLOCK]
        lo = np.searchsorted(end, tb[0] - horizon)
        hi = max(np.searchsorted(start, tb[-1] + horizon), lo + 1)
        lo = min(lo, len(names) - 1)
        hi = min(hi, len(names))
        # Distance of each frame outside each segment, in s (0 inside).
        dist = np.maximum(0.0, np.maximum(start[None, lo:hi] - tb[:, None], tb[:, None] - end[None, lo:hi]))
        fall = np.exp(-((dist / reach[None, lo:hi]) ** 2))  # (B, n)
        w = np.einsum("bn,ng,nv->bgv", fall, dom[lo:hi], onehot[lo:hi])
        # A faint rest prior: far from any segment (before the first, after the last) lips rest.
        w[:, :, _SIL] += REST_PRIOR
        out[b0:b0 + BLOCK] = w / w.sum(axis=2, keepdims=True)
    return out


def blend(phones: Phones, n_frames: int, fps: float, first: int = 0, targets: np.ndarray | None = None,
          reach_s: float = REACH_S, anticipation_s: float = ANTICIPATION_S) -> dict[str, np.ndarray]:
    """Per-frame mouth targets (MOUTH order) for frames first .. first+n_frames-1 from phones
    (timed from frame 0), with coarticulation and closures. `targets` (V, P) defaults to the
    VISEMES table."""
    table = target_table() if targets is None else targets
    w = viseme_weights(phones, n_frames, fps, first, reach_s, anticipation_s)
    out = np.einsum("tgv,vp->tgp", w, table)[:, _GROUP, np.arange(len(MOUTH))]
    shut = bilabial_closures(phones, n_frames, fps, first, anticipation_s)
    out[shut, MOUTH.index("jawOpen")] = np.minimum(out[shut, MOUTH.index("jawOpen")], CLOSURE_JAW)
    out[np.ix_(shut, [MOUTH.index(n) for n in PARTING])] = 0.0
    return {name: out[:, k] for k, name in enumerate(MOUTH)}


PARTING = ("mouthFunnel", "upperLipUp", "lowerLipDown")  # lip moves that part the lips


def bilabial_closures(phones: Phones, n_frames: int, fps: float, first: int = 0,
                      anticipation_s: float = ANTICIPATION_S) -> np.ndarray:
    """(n_frames,) bool: the frames first.. where the lips must be shut. Every M, B, P gets at least
    one, however short it was (the frame nearest its middle when no frame falls within it): a
    missed closure is the lip-sync error viewers notice first."""
    shut = np.zeros(n_frames, bool)
    if len(phones) == 0:
        return shut
    start = phones.starts - anticipation_s
    end = np.maximum(phones.ends - anticipation_s, start + 1.0 / fps)
    lo, hi = first / fps - 1.0, (first + n_frames) / fps + 1.0
    for k in np.flatnonzero((end >= lo) & (start <= hi)):  # only the segments near these frames
        if viseme_of(phones.labels[k]) != "PP":
            continue
        a, b = start[k], end[k]
        frames = np.arange(np.ceil(a * fps), np.floor(b * fps) + 1).astype(int)
        if len(frames) == 0:  # shorter than a frame: the frame nearest its middle
            frames = np.array([int(round((a + b) / 2 * fps))])
        frames = frames[(frames >= first) & (frames < first + n_frames)] - first
        shut[frames] = True
    return shut
