"""Emotions as offsets: on the expression coefficients and on how the head moves.

VASA-1 conditions its generator on an emotion offset; ours is explicit. Each preset is what a
face and head do while talking in that mood (FACS-style action units mapped to our coefficients),
and an intensity scales it, so "happy:0.3" is a faint smile and "happy:1" a broad one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facetalk.motion.track import EXPRESSIONS


@dataclass(frozen=True)
class Emotion:
    expression: dict[str, float] = field(default_factory=dict)  # coefficient offsets at intensity 1
    head_gain: float = 1.0  # head motion is this much livelier (1 = as when neutral)
    head_pitch: float = 0.0  # degrees the head is held up (+) or down (-)
    smile_gain: float = 1.0  # speech-driven smiles come this much more often and broader
    brow_gain: float = 1.0  # speech-driven brow raises are this much higher


EMOTIONS: dict[str, Emotion] = {
    "neutral": Emotion(),
    # AU6 + AU12: cheeks up, corners up and out; the lower lids rise with the cheeks
    "happy": Emotion({"mouthSmileL": 0.9, "mouthSmileR": 0.9, "cheekRaise": 0.6, "eyeSquint": 0.35},
                     head_gain=1.2, head_pitch=1.5, smile_gain=1.8),
    # AU1 + AU4 + AU15: inner brows up, corners down, lids heavy; a lower, slower head
    "sad": Emotion({"browInnerUp": 0.7, "mouthFrownL": 0.7, "mouthFrownR": 0.7, "eyeBlinkL": 0.2,
                    "eyeBlinkR": 0.2}, head_gain=0.6, head_pitch=-4.0, smile_gain=0.2),
    # AU4 + AU7 + AU24: brows down and together, lids tight, lips pressed
    "angry": Emotion({"browDownL": 1.0, "browDownR": 1.0, "eyeSquint": 0.5, "mouthPress": 0.5,
                      "mouthFrownL": 0.2, "mouthFrownR": 0.2}, head_gain=1.3, head_pitch=-2.0, smile_gain=0.1,
                     brow_gain=0.5),
    # AU1 + AU2 + AU5 + AU26: brows up, eyes wide, the jaw dropped a little
    "surprised": Emotion({"browInnerUp": 0.8, "browOuterUpL": 0.8, "browOuterUpR": 0.8, "eyeWide": 0.8,
                          "jawOpen": 0.1}, head_gain=1.1, head_pitch=2.0, brow_gain=1.5),
}


def parse_emotion(text: str) -> tuple[str, float]:
    """'happy' or 'happy:0.5' -> ('happy', 0.5); ValueError with the choices otherwise."""
    name, _, value = text.strip().lower().partition(":")
    if name not in EMOTIONS:
        raise ValueError(f"unknown emotion {name!r}; choose one of {', '.join(EMOTIONS)} (optionally NAME:INTENSITY)")
    try:
        intensity = float(value) if value else 1.0
    except ValueError:
        raise ValueError(f"emotion intensity must be a number, as in happy:0.5; got {value!r}") from None
    if not 0.0 <= intensity <= 1.5:
        raise ValueError(f"emotion intensity must be within 0..1.5, got {intensity}")
    return name, intensity


def expression_offset(name: str, intensity: float) -> np.ndarray:
    """(len(EXPRESSIONS),) offsets of one emotion at `intensity`."""
    out = np.zeros(len(EXPRESSIONS))
    for coef, value in EMOTIONS[name].expression.items():
        out[EXPRESSIONS.index(coef)] = value * intensity
    return out


def head_offsets(name: str, intensity: float) -> tuple[float, float]:
    """(head motion gain, head pitch offset in degrees) of one emotion at `intensity`."""
    e = EMOTIONS[name]
    return 1.0 + (e.head_gain - 1.0) * intensity, e.head_pitch * intensity


def expression_gains(name: str, intensity: float) -> tuple[float, float]:
    """(smile gain, brow gain) of the speech-driven expressions under one emotion at `intensity`."""
    e = EMOTIONS[name]
    return 1.0 + (e.smile_gain - 1.0) * intensity, 1.0 + (e.brow_gain - 1.0) * intensity
