"""Fundamental frequency per video frame: a windowed, normalised autocorrelation (Boersma 1993).

The motion layers need pitch only to find accents (a syllable pitched well above the speaker's
usual level raises the brows and draws a nod), so a plain autocorrelation with a voicing
threshold is enough; octave slips do little harm once the contour is compared with its own median.
"""

from __future__ import annotations

import numpy as np

F0_RANGE_HZ = (70.0, 400.0)
WINDOW_S = 0.04  # at least two periods of the lowest voice
VOICED_PEAK = 0.45  # normalised autocorrelation peak above which a window counts as voiced
OCTAVE_SHARE = 0.85  # a shorter lag wins if its peak reaches this share of the best one


class PitchTracker:
    """f0 of the WINDOW_S ending at each frame's end, from a stream of mono samples."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.window = int(round(WINDOW_S * rate))
        self.lags = (int(rate / F0_RANGE_HZ[1]), int(np.ceil(rate / F0_RANGE_HZ[0])))
        self.n_fft = 1 << int(np.ceil(np.log2(2 * self.window)))
        self.taper = np.hanning(self.window)
        acf_w = np.fft.irfft(np.abs(np.fft.rfft(self.taper, self.n_fft)) ** 2)[: self.lags[1] + 2]
        self.acf_taper = acf_w / acf_w[0]

    def f0(self, window: np.ndarray) -> float:
        """Hz of one window of samples (shorter ones are zero-padded in front); 0 when unvoiced."""
        x = np.zeros(self.window)
        tail = window[-self.window:]
        x[self.window - len(tail):] = tail
        x = (x - x.mean()) * self.taper
        power = np.abs(np.fft.rfft(x, self.n_fft)) ** 2
        acf = np.fft.irfft(power)[: self.lags[1] + 2]
        if acf[0] <= 1e-12:
            return 0.0
        r = (acf / acf[0]) / np.maximum(self.acf_taper, 1e-3)
        lo, hi = self.lags
        seg = r[lo:hi + 1]
        best = float(seg.max())
        if best < VOICED_PEAK:
            return 0.0
        # A period's multiples correlate almost as well as the period itself: take the shortest
        # lag whose local peak comes close to the best one (Boersma's octave cost, simplified).
        peaks = np.flatnonzero((seg[1:-1] >= seg[:-2]) & (seg[1:-1] >= seg[2:]) & (seg[1:-1] >= OCTAVE_SHARE * best))
        k = lo + 1 + int(peaks[0]) if len(peaks) else lo + int(np.argmax(seg))
        a, b, c = r[k - 1], r[k], r[min(k + 1, len(r) - 1)]
        shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) < 0 else 0.0
        return float(self.rate / (k + np.clip(shift, -0.5, 0.5)))
