"""The rhythm of the talk, followed once for every layer that moves with it: where phrases start
and end, and how engaged (continuously talking) the voice is.

Head turns, smiles and question brows all key on phrases, and the head, brows and smiles all scale
with the engagement; one tracker gives them the same phrases and the same engagement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetalk.motion.filters import Follower, Phrases
from facetalk.motion.fitted import fitted

ENGAGE_RELEASE = 2.0  # engagement falls this many times slower than it rises


@dataclass(frozen=True)
class Rhythm:
    """Per frame of a chunk."""

    starts: np.ndarray  # length (s) of the pause before a phrase starting here, 0 elsewhere
    ends: np.ndarray  # bool: a phrase ended here (its pause has lasted long enough to count)
    engagement: np.ndarray  # floor .. 1: how continuously the voice has been talking lately


class Engagement:
    """How continuously the voice has been talking lately, raised to the fitted power, over a
    floor: `floor` (silent, or isolated words: a listener's small motion) .. 1 (flowing speech).
    Real speakers differ tenfold in how much they move, and this is what in the sound tells a
    reader of isolated words from a flowing talker best (tools/fit_motion.py)."""

    def __init__(self, fps: float, engage_s: float, power: float, floor: float) -> None:
        self.follow = Follower(fps, engage_s, engage_s * ENGAGE_RELEASE)
        self.power, self.floor = power, floor

    def run(self, active: np.ndarray) -> np.ndarray:
        e = np.power(np.clip(self.follow.run((active > 0.5).astype(np.float64)), 0.0, 1.0), self.power)
        return self.floor + (1.0 - self.floor) * e


class RhythmTracker:
    """Voice activity in, chunk by chunk; the Rhythm of the same frames out."""

    def __init__(self, fps: float, params: dict | None = None) -> None:
        p = fitted().head if params is None else params
        self.phrases = Phrases(fps)
        self.engagement = Engagement(fps, p["engage_s"], p["power"], p["floor"])

    def run(self, active: np.ndarray) -> Rhythm:
        starts, ends = self.phrases.run(active)
        return Rhythm(starts, ends, self.engagement.run(active))
