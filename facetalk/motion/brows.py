"""Brows layer: a raise on each pitch accent, as speakers mark emphasis with their brows.

The raise comes on over ~150 ms, holds a moment and eases back over ~0.5 s; the outer brows
follow the inner ones a little less (AU1 leads AU2 in emphasis).
"""

from __future__ import annotations

import numpy as np

from facetalk.audio.features import Features
from facetalk.motion.prosody import accents

BROW_ACCENT = 0.5  # browInnerUp at a full-strength accent
OUTER_SHARE = 0.6
RISE_S, HOLD_S, FALL_S = 0.15, 0.1, 0.5


def raise_kernel(fps: float) -> np.ndarray:
    t = np.arange(int(np.ceil((RISE_S + HOLD_S + FALL_S) * fps)) + 1) / fps
    up = np.clip(t / RISE_S, 0, 1)
    down = np.clip(1 - (t - RISE_S - HOLD_S) / FALL_S, 0, 1)
    k = np.minimum(up, down)
    return k * k * (3 - 2 * k)


def brow_curves(features: Features) -> dict[str, np.ndarray]:
    n = len(features)
    kernel = raise_kernel(features.fps)
    lead = int(round(RISE_S * features.fps))  # the brows are up when the accent is heard
    brows = np.zeros(n + len(kernel))
    for i, strength in accents(features):
        start = max(0, i - lead)
        brows[start:start + len(kernel)] = np.maximum(brows[start:start + len(kernel)], kernel * strength)
    inner = np.clip(brows[:n] * BROW_ACCENT, 0, 1)
    return {"browInnerUp": inner, "browOuterUpL": inner * OUTER_SHARE, "browOuterUpR": inner * OUTER_SHARE}
