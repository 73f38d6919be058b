"""Brows layer: a raise on each pitch accent, as speakers mark emphasis with their brows.

The raise comes on over ~150 ms from the accent, holds a moment and eases back over ~0.5 s; the
outer brows follow the inner ones a little less (AU1 leads AU2 in emphasis).
"""

from __future__ import annotations

import numpy as np

from facetalk.motion.filters import Pending
from facetalk.motion.prosody import Accents

BROW_ACCENT = 0.5  # browInnerUp at a full-strength accent
OUTER_SHARE = 0.6
RISE_S, HOLD_S, FALL_S = 0.15, 0.1, 0.5


def raise_kernel(fps: float) -> np.ndarray:
    t = np.arange(int(np.ceil((RISE_S + HOLD_S + FALL_S) * fps)) + 1) / fps
    up = np.clip(t / RISE_S, 0, 1)
    down = np.clip(1 - (t - RISE_S - HOLD_S) / FALL_S, 0, 1)
    k = np.minimum(up, down)
    return k * k * (3 - 2 * k)


class BrowMotion:
    def __init__(self, fps: float) -> None:
        self.accents = Accents(fps)
        self.kernel = raise_kernel(fps)
        self.raised = Pending()

    def run(self, pitch_hz: np.ndarray, loudness: np.ndarray, next_pitch: float,
            next_loud: float) -> dict[str, np.ndarray]:
        for i, strength in self.accents.run(pitch_hz, loudness, next_pitch, next_loud):
            self.raised.add(i, self.kernel * strength, np.maximum)
        inner = np.clip(self.raised.take(len(loudness)) * BROW_ACCENT, 0, 1)
        return {"browInnerUp": inner, "browOuterUpL": inner * OUTER_SHARE, "browOuterUpR": inner * OUTER_SHARE}
