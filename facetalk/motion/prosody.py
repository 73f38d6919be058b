"""Where the speech puts its weight: pitch accents, the events the brows and the head follow.

A pitch accent is a voiced stretch pitched clearly above the speaker's own median (in semitones,
so voices high and low count alike) and spoken loud. Without a pitch contour the loudest onsets
stand in for them.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter
from scipy.signal import find_peaks

from facetalk.audio.features import Features

ACCENT_ST = 1.5  # semitones above the median where an accent starts counting
ACCENT_RANGE_ST = 4.0  # and where it reaches full strength
MIN_GAP_S = 0.6


def semitones(pitch_hz: np.ndarray) -> np.ndarray:
    """Pitch relative to the voiced median in semitones; 0 where unvoiced."""
    voiced = pitch_hz > 0
    if voiced.sum() < 3:
        return np.zeros(len(pitch_hz))
    st = np.zeros(len(pitch_hz))
    st[voiced] = 12 * np.log2(pitch_hz[voiced] / np.median(pitch_hz[voiced]))
    return median_filter(st, size=3, mode="nearest") * voiced


def accents(features: Features) -> list[tuple[int, float]]:
    """(frame, strength 0..1) of pitch accents, at least MIN_GAP_S apart."""
    loud = features.loudness.astype(np.float64)
    if len(loud) < 3:
        return []
    if features.pitch_hz is not None and (features.pitch_hz > 0).sum() >= 3:
        lift = np.clip((semitones(features.pitch_hz) - ACCENT_ST) / (ACCENT_RANGE_ST - ACCENT_ST), 0, 1)
        strength = lift * loud
    else:
        strength = np.clip(np.diff(loud, prepend=loud[:1]) / 0.25, 0, 1)
    peaks, _ = find_peaks(strength, height=0.2, distance=max(1, int(MIN_GAP_S * features.fps)))
    return [(int(i), float(strength[i])) for i in peaks]
