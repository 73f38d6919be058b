"""Mouth layer: phones give the shapes (visemes with coarticulation), loudness scales how open.

Without phones (recognition off or failed) a loudness-only fallback: the speech-band envelope is
the best single predictor of jaw opening; it opens fast and closes a little slower (muscles
release slower than they contract), and the lips spread for bright sounds and round for dark ones.
"""

from __future__ import annotations

import numpy as np

from facetalk.audio.features import Features
from facetalk.motion.visemes import blend

JAW_GAIN = 0.55  # jawOpen at full loudness (1.0 = the widest the face can open)
ATTACK_S, RELEASE_S = 0.025, 0.06  # time constants of opening and closing


def follow_envelope(x: np.ndarray, fps: float, attack_s: float, release_s: float) -> np.ndarray:
    """One-pole smoothing with separate rise and fall time constants."""
    a_up = 1.0 - np.exp(-1.0 / (attack_s * fps))
    a_dn = 1.0 - np.exp(-1.0 / (release_s * fps))
    out = np.empty_like(x)
    y = 0.0
    for i, v in enumerate(x):
        y += (a_up if v > y else a_dn) * (v - y)
        out[i] = y
    return out


def mouth_curves(features: Features) -> dict[str, np.ndarray]:
    """The mouth's coefficients; mouthClose is 1 throughout: the photo's own lip gap is removed and
    every opening comes from the speech, or a photo taken mid-word would never shut its mouth."""
    phones = features.phones
    if phones is not None and any(p != "SIL" for p in phones.labels):
        curves = viseme_curves(features)
    else:
        curves = loudness_curves(features)
    return {**curves, "mouthClose": np.ones(len(features))}


def loudness_gain(loudness: np.ndarray, fps: float) -> np.ndarray:
    """How far a viseme opens: quiet speech is mumbled, loud speech wide (0.25 .. 1.35)."""
    loud = follow_envelope(loudness.astype(np.float64), fps, ATTACK_S, RELEASE_S)
    return np.clip(0.25 + 1.1 * loud, 0.0, 1.35)


def viseme_curves(features: Features) -> dict[str, np.ndarray]:
    v = blend(features.phones, len(features), features.fps)
    gain = loudness_gain(features.loudness, features.fps)
    jaw = v["jawOpen"] * gain
    return {
        "jawOpen": jaw,
        "mouthPress": v["mouthPress"],
        "mouthFunnel": v["mouthFunnel"],
        "mouthPucker": v["mouthPucker"],
        "mouthStretchL": v["mouthStretch"],
        "mouthStretchR": v["mouthStretch"],
        "upperLipUp": v["upperLipUp"],
        "lowerLipDown": v["lowerLipDown"] * gain + jaw * 0.2,
    }


def loudness_curves(features: Features) -> dict[str, np.ndarray]:
    fps = features.fps
    loud = features.loudness.astype(np.float64)
    jaw = follow_envelope(np.power(loud, 0.8) * JAW_GAIN, fps, ATTACK_S, RELEASE_S)
    b = features.brightness.astype(np.float64)
    speaking = features.active.astype(np.float64)
    if np.any(speaking > 0.5):
        ref = np.median(b[speaking > 0.5])
        spread = np.std(b[speaking > 0.5]) + 1e-6
    else:
        ref, spread = 0.0, 1.0
    z = np.clip((b - ref) / (2 * spread), -1, 1) * speaking
    smooth = lambda v: follow_envelope(v, fps, 0.04, 0.08)  # noqa: E731
    return {
        "jawOpen": jaw,
        "mouthStretchL": smooth(np.clip(z, 0, 1) * 0.35),
        "mouthStretchR": smooth(np.clip(z, 0, 1) * 0.35),
        "mouthFunnel": smooth(np.clip(-z, 0, 1) * 0.35 * np.clip(loud * 2, 0, 1)),
        "mouthPucker": smooth(np.clip(-z, 0, 1) * 0.25),
        "lowerLipDown": jaw * 0.3,
    }
