"""Where the speech puts its weight: pitch accents, the events the brows follow.

A pitch accent is a voiced stretch pitched clearly above the speaker's own median (in semitones,
so voices high and low count alike) and spoken loud. The median is the running one of the voice
heard so far (a live stream cannot know the rest); until enough voice is heard, or without a
pitch contour, the loudest onsets stand in for accents.
"""

from __future__ import annotations

import numpy as np

from facetalk.motion.filters import PeakPicker

ACCENT_ST = 1.5  # semitones above the median where an accent starts counting
ACCENT_RANGE_ST = 4.0  # and where it reaches full strength
ACCENT_HEIGHT = 0.2
MIN_GAP_S = 0.6
MIN_VOICED = 3  # voiced frames heard before pitch is compared with the median
F0_BINS_ST = 0.125  # resolution of the running median
F0_LOW_HZ, F0_HIGH_HZ = 50.0, 800.0


class Accents:
    """(frame within the chunk, strength 0..1) of pitch accents, chunk by chunk."""

    def __init__(self, fps: float) -> None:
        self.hist = np.zeros(int(12 * np.log2(F0_HIGH_HZ / F0_LOW_HZ) / F0_BINS_ST) + 1)
        self.recent = [0.0, 0.0]  # semitones of the two frames before the chunk (a causal 3-median)
        self.prev_loud = 0.0
        self.peaks = PeakPicker(ACCENT_HEIGHT, max(1, int(MIN_GAP_S * fps)))

    def _median_hz(self) -> float:
        cum = np.cumsum(self.hist)
        return F0_LOW_HZ * 2 ** (np.searchsorted(cum, 0.5 * cum[-1]) * F0_BINS_ST / 12)

    def _strength(self, pitch_hz: float, loud: float, prev_loud: float, learn: bool) -> float:
        voiced = pitch_hz > 0
        if voiced and learn:
            k = int(np.clip(12 * np.log2(pitch_hz / F0_LOW_HZ) / F0_BINS_ST, 0, len(self.hist) - 1))
            self.hist[k] += 1
        heard = self.hist.sum()
        if heard == 0:
            return float(np.clip((loud - prev_loud) / 0.25, 0, 1))  # no voice to go by: loud onsets
        if heard < MIN_VOICED:
            return 0.0
        st = 12 * np.log2(pitch_hz / self._median_hz()) if voiced else 0.0
        window = self.recent[-2:] + [st]
        if learn:
            self.recent = window[-2:]
        lift = (np.median(window) - ACCENT_ST) / (ACCENT_RANGE_ST - ACCENT_ST)
        return float(np.clip(lift, 0, 1) * loud)

    def run(self, pitch_hz: np.ndarray, loudness: np.ndarray, next_pitch: float,
            next_loud: float) -> list[tuple[int, float]]:
        strength = np.empty(len(loudness))
        for i, (hz, loud) in enumerate(zip(pitch_hz, loudness)):
            strength[i] = self._strength(float(hz), float(loud), self.prev_loud, learn=True)
            self.prev_loud = float(loud)
        saved = (self.hist.copy(), list(self.recent))  # the lookahead frame is read, not learnt
        after = self._strength(next_pitch, next_loud, self.prev_loud, learn=False)
        self.hist, self.recent = saved
        return self.peaks.run(strength, after)
