"""Brows layer: a raise on each pitch accent and at the end of a rising (question) phrase.

Speakers mark emphasis with their brows and widen their eyes on the strongest accents; a question's
rising end lifts the brows too. A raise comes on over ~150 ms from the accent, holds (lively
speakers keep their brows up for seconds: the hold is fitted, `brow_hold_s`) and eases back over
~0.5 s; the outer brows follow the inner ones a little less (AU1 leads AU2 in
emphasis). How high is fitted to real speakers (`fitted.json`) and scaled by how lively the talk
is (the engagement) and by the emotion.
"""

from __future__ import annotations

import numpy as np

from facetalk.motion.filters import Pending
from facetalk.motion.fitted import fitted
from facetalk.motion.prosody import Accents
from facetalk.motion.rhythm import Rhythm

OUTER_SHARE = 0.6
RISE_S, FALL_S = 0.15, 0.5  # the hold between them is fitted (brow_hold_s)
QUESTION_HOLD_S = 0.4  # a question's raise holds at least this long
WIDE_FROM = 0.5  # accents stronger than this widen the eyes too
QUESTION_ST = 3.0  # a phrase whose last voiced 0.4 s rose this many semitones reads as a question
QUESTION_S = 0.4


def raise_kernel(fps: float, hold_s: float) -> np.ndarray:
    t = np.arange(int(np.ceil((RISE_S + hold_s + FALL_S) * fps)) + 1) / fps
    up = np.clip(t / RISE_S, 0, 1)
    down = np.clip(1 - (t - RISE_S - hold_s) / FALL_S, 0, 1)
    k = np.minimum(up, down)
    return k * k * (3 - 2 * k)


class BrowMotion:
    def __init__(self, fps: float, params: dict | None = None) -> None:
        p = fitted().expression if params is None else params
        self.brow, self.wide, self.floor = float(p["brow"]), float(p["wide"]), float(p["brow_floor"])
        self.accents = Accents(fps)
        hold = float(p["brow_hold_s"])
        self.kernel = raise_kernel(fps, hold)
        self.question_kernel = raise_kernel(fps, max(QUESTION_HOLD_S, hold))
        self.raised = Pending()
        self.widened = Pending()
        self.voiced: list[float] = []  # log2 f0 of the last QUESTION_S of voiced frames
        self.keep = max(2, int(QUESTION_S * fps))

    def run(self, pitch_hz: np.ndarray, loudness: np.ndarray, next_pitch: float, next_loud: float,
            rhythm: Rhythm, gain: np.ndarray) -> dict[str, np.ndarray]:
        n = len(loudness)
        for i, strength in self.accents.run(pitch_hz, loudness, next_pitch, next_loud):
            self.raised.add(i, self.kernel * strength, np.maximum)
            if strength > WIDE_FROM:
                self.widened.add(i, self.kernel * (strength - WIDE_FROM) / (1 - WIDE_FROM), np.maximum)
        ends, engagement = rhythm.ends, rhythm.engagement
        for i in range(n):
            if pitch_hz[i] > 0:
                self.voiced = (self.voiced + [float(np.log2(pitch_hz[i]))])[-self.keep:]
            if ends[i] and len(self.voiced) >= self.keep // 2:
                half = len(self.voiced) // 2
                rise = 12 * (np.mean(self.voiced[half:]) - np.mean(self.voiced[:half]))
                if rise > QUESTION_ST:
                    self.raised.add(i, self.question_kernel, np.maximum)
                self.voiced = []
        scale = (self.floor + (1 - self.floor) * engagement) * gain
        inner = np.clip(self.raised.take(n) * self.brow * scale, 0, 1)  # `brow` may exceed 1: a strong accent tops out
        wide = np.clip(self.widened.take(n) * self.wide * scale, 0, 1)
        return {"browInnerUp": inner, "browOuterUpL": inner * OUTER_SHARE, "browOuterUpR": inner * OUTER_SHARE,
                "eyeWide": wide}
