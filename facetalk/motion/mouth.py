"""Mouth layer: loudness opens the jaw, spectral brightness spreads or rounds the lips.

A first, phone-free lip-sync: the speech-band envelope is the best single predictor of jaw opening.
Opening follows the sound fast and closes a little slower (muscles release slower than they
contract), and the lips shape towards spread for bright sounds and rounded for dark ones.
"""

from __future__ import annotations

import numpy as np

from facetalk.audio.features import Features

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
