"""Eyes layer: blinks timed like people's, and gaze fixations with small saccades.

Blinks come about every 3-4 s (15-20 a minute), drawn from a gamma distribution and pulled towards
pauses; each closes fast (~90 ms) and opens slower (~170 ms). The gaze holds on a point near the
camera and jumps a little every few seconds; it counter-rotates against the head (the eyes keep
looking at the camera while the head moves), as the vestibulo-ocular reflex does.
"""

from __future__ import annotations

import numpy as np

from facetalk.audio.features import Features

BLINK_MEAN_S = 3.4
CLOSE_S, HOLD_S, OPEN_S = 0.09, 0.05, 0.17
SACCADE_EVERY_S = (1.2, 3.5)
SACCADE_SD_DEG = (2.0, 1.2)  # yaw, pitch spread of fixation points


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0, 1)
    return x * x * (3 - 2 * x)


def blink_shape(t: np.ndarray) -> np.ndarray:
    """Lid closure 0..1 at times t (s) after a blink starts."""
    closing = _smoothstep(t / CLOSE_S)
    opening = 1 - _smoothstep((t - CLOSE_S - HOLD_S) / OPEN_S)
    return np.where(t < CLOSE_S + HOLD_S, closing, opening) * (t >= 0)


def blink_times(features: Features, rng: np.random.Generator) -> list[float]:
    duration = features.duration
    pauses = np.flatnonzero(np.diff((features.active > 0.5).astype(np.int8)) < 0) / features.fps
    times, t = [], rng.uniform(0.3, BLINK_MEAN_S)
    while t < duration:
        near = pauses[np.abs(pauses - t) < 0.8]
        if len(near):
            t = float(near[0]) + 0.05
        times.append(t)
        t += max(0.6, rng.gamma(4.0, BLINK_MEAN_S / 4.0))
    return times


def eye_curves(features: Features, rng: np.random.Generator, blink: np.ndarray | bool = True) -> dict[str, np.ndarray]:
    """Lids and gaze (degrees, around straight ahead); `blink` (per frame or one flag) lets the
    eyes blink."""
    n, fps = len(features), features.fps
    t = np.arange(n) / fps
    lids = np.zeros(n)
    if np.any(blink):
        span = int(np.ceil((CLOSE_S + HOLD_S + OPEN_S) * fps)) + 2
        for start in blink_times(features, rng):
            i0 = max(0, int(np.floor(start * fps)))
            window = slice(i0, min(n, i0 + span))
            lids[window] = np.maximum(lids[window], blink_shape(t[window] - start))
        lids = lids * blink
    gaze_yaw, gaze_pitch = np.zeros(n), np.zeros(n)
    i = 0
    while i < n:
        hold = int(rng.uniform(*SACCADE_EVERY_S) * fps)
        gaze_yaw[i:i + hold] = rng.normal(0, SACCADE_SD_DEG[0])
        gaze_pitch[i:i + hold] = rng.normal(0, SACCADE_SD_DEG[1])
        i += max(hold, 1)
    return {"eyeBlinkL": lids, "eyeBlinkR": lids, "gazeYaw": gaze_yaw, "gazePitch": gaze_pitch}
