"""Head layer: slow seeded drift plus nods on speech onsets, calmer in pauses.

Drift is an Ornstein-Uhlenbeck process per angle (a random walk pulled back to rest), so the head
wanders without ever drifting away; onsets of loud syllables add a small nod, as speakers do on
stressed syllables and phrase starts.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks, lfilter

from facetalk.audio.features import Features

# Stationary spread while talking. Set so that the rendered clips, measured by `facetalk eval`,
# spread like the real clips in ../shared/eval/video_real (yaw 1.2-2.5, pitch 1.7-4.9, roll
# 0.6-3.5 degrees over 5-13 s; short clips show about half an OU process's stationary spread).
DRIFT_SD_DEG = {"yaw": 4.0, "pitch": 4.2, "roll": 2.4}
DRIFT_TAU_S = {"yaw": 1.6, "pitch": 1.1, "roll": 2.0}
NOD_DEG = 2.5  # pitch dip of a full-strength onset
NOD_S = 0.35  # duration of a nod
PAUSE_CALM = 0.5  # share of drift kept in pauses


def ou_process(n: int, fps: float, sd: float, tau_s: float, rng: np.random.Generator) -> np.ndarray:
    """An Ornstein-Uhlenbeck series, y[i] = a*y[i-1] + noise, with stationary spread `sd`. It starts
    at 0, so the video opens on the photo's own pose and the motion grows in over about tau_s."""
    a = np.exp(-1.0 / (tau_s * fps))
    noise = rng.standard_normal(n) * sd * np.sqrt(1 - a * a)
    return lfilter([1.0], [1.0, -a], noise)


def _smooth(x: np.ndarray, sigma_frames: float) -> np.ndarray:
    r = max(1, int(3 * sigma_frames))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / max(sigma_frames, 1e-3)) ** 2)
    return np.convolve(np.pad(x, r, mode="edge"), k / k.sum(), mode="valid")


def onsets(features: Features, min_gap_s: float = 0.45) -> list[tuple[int, float]]:
    """(frame, strength 0..1) where loudness rises sharply, at least min_gap_s apart."""
    loud = features.loudness.astype(np.float64)
    if len(loud) < 2:
        return []
    rise = np.diff(_smooth(loud, 1.0), prepend=loud[:1])
    peaks, _ = find_peaks(rise, height=0.06, distance=max(1, int(min_gap_s * features.fps)))
    return [(int(i), float(min(1.0, rise[i] / 0.25))) for i in peaks]


def nod_kernel(fps: float) -> np.ndarray:
    n = max(2, int(round(NOD_S * fps)))
    t = np.linspace(0, 1, n)
    return -np.sin(np.pi * t) ** 2


def head_curves(features: Features, rng: np.random.Generator, gain: np.ndarray | float) -> dict[str, np.ndarray]:
    """Yaw, pitch, roll in degrees; `gain` (per frame or one number) scales the whole motion."""
    n, fps = len(features), features.fps
    calm = PAUSE_CALM + (1 - PAUSE_CALM) * _smooth(features.active.astype(np.float64), 0.5 * fps)
    out = {}
    for name in ("yaw", "pitch", "roll"):
        drift = ou_process(n, fps, DRIFT_SD_DEG[name], DRIFT_TAU_S[name], rng)
        out[name] = _smooth(drift, 0.08 * fps) * calm
    nods = np.zeros(n + int(NOD_S * fps) + 2)
    kernel = nod_kernel(fps)
    for i, strength in onsets(features):
        nods[i:i + len(kernel)] += kernel * strength * NOD_DEG
    out["pitch"] = out["pitch"] + nods[:n]
    out["yaw"] = out["yaw"] + 0.25 * nods[:n] * rng.choice([-1.0, 1.0])
    return {k: v * gain for k, v in out.items()}
