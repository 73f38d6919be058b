"""Head layer: slow seeded drift plus nods on speech onsets, calmer in pauses.

Drift is an Ornstein-Uhlenbeck process per angle (a random walk pulled back to rest), so the head
wanders without ever drifting away; onsets of loud syllables add a small nod, as speakers do on
stressed syllables and phrase starts. Everything is causal with one frame of lookahead.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from facetalk.motion.filters import Follower, Pending, PeakPicker

# Stationary spread while talking. Set so that the rendered clips, measured by `facetalk eval`,
# spread like the real clips in ../shared/eval/video_real (yaw 1.2-2.5, pitch 1.7-4.9, roll
# 0.6-3.5 degrees over 5-13 s; short clips show about half an OU process's stationary spread).
DRIFT_SD_DEG = {"yaw": 4.0, "pitch": 4.2, "roll": 2.4}
DRIFT_TAU_S = {"yaw": 1.6, "pitch": 1.1, "roll": 2.0}
ANGLES = ("yaw", "pitch", "roll")
SMOOTH_S = 0.05  # two one-pole stages take the frame-to-frame grain out of the drift
CALM_S = 0.5  # how fast the head settles into a pause and wakes from it
NOD_DEG = 2.5  # pitch dip of a full-strength onset
NOD_S = 0.35  # duration of a nod
NOD_RISE = 0.06  # loudness rise per frame that counts as an onset
NOD_GAP_S = 0.45
PAUSE_CALM = 0.5  # share of drift kept in pauses


def ou_process(n: int, fps: float, sd: float, tau_s: float, rng: np.random.Generator) -> np.ndarray:
    """An Ornstein-Uhlenbeck series, y[i] = a*y[i-1] + noise, with stationary spread `sd`. It starts
    at 0, so the video opens on the photo's own pose and the motion grows in over about tau_s."""
    return _OU(fps, sd, tau_s, rng).run(n)


class _OU:
    def __init__(self, fps: float, sd: float, tau_s: float, rng: np.random.Generator) -> None:
        self.a = np.exp(-1.0 / (tau_s * fps))
        self.gain = sd * np.sqrt(1 - self.a * self.a)
        self.rng = rng
        self.state = np.zeros(1)  # lfilter's: a * the last value

    def run(self, n: int) -> np.ndarray:
        out, self.state = lfilter([self.gain], [1.0, -self.a], self.rng.standard_normal(n), zi=self.state)
        return out


def nod_kernel(fps: float) -> np.ndarray:
    n = max(2, int(round(NOD_S * fps)))
    t = np.linspace(0, 1, n)
    return -np.sin(np.pi * t) ** 2


class HeadMotion:
    """Yaw, pitch, roll in degrees, chunk by chunk (the caller scales them by the controls)."""

    def __init__(self, fps: float, rng: np.random.Generator) -> None:
        self.fps = fps
        self.drift = {k: _OU(fps, DRIFT_SD_DEG[k], DRIFT_TAU_S[k], r) for k, r in zip(ANGLES, rng.spawn(3))}
        self.smooth = {k: (Follower(fps, SMOOTH_S, SMOOTH_S), Follower(fps, SMOOTH_S, SMOOTH_S)) for k in ANGLES}
        self.calm = Follower(fps, CALM_S, CALM_S)
        self.level = Follower(fps, 1.0 / fps, 1.0 / fps)  # the loudness, lightly smoothed, for onsets
        self.onsets = PeakPicker(NOD_RISE, max(1, int(NOD_GAP_S * fps)))
        self.nods = Pending()
        self.kernel = nod_kernel(fps)
        self.turn = float(rng.choice([-1.0, 1.0]))  # which way nods also turn the head a little

    def run(self, active: np.ndarray, loudness: np.ndarray, next_loudness: float) -> dict[str, np.ndarray]:
        n = len(active)
        calm = PAUSE_CALM + (1 - PAUSE_CALM) * self.calm.run(active)
        out = {}
        for k in ANGLES:
            a, b = self.smooth[k]
            out[k] = b.run(a.run(self.drift[k].run(n))) * calm
        before = self.level.y
        level = self.level.run(loudness)
        after = self.level.y + self.level.up * (next_loudness - self.level.y)  # the next frame, not kept
        rise = np.diff(np.concatenate([[before], level, [after]]))
        for i, strength in self.onsets.run(rise[:-1], float(rise[-1])):
            self.nods.add(i, self.kernel * min(1.0, strength / 0.25) * NOD_DEG)
        nods = self.nods.take(n)
        out["pitch"] = out["pitch"] + nods
        out["yaw"] = out["yaw"] + 0.25 * nods * self.turn
        return out
