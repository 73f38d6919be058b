"""Audio features + controls -> MotionTrack: the layers summed into one holistic motion.

The generator is an interface (`generate(features, controls) -> MotionTrack`): a learned model
can replace these layers later and be judged by the same evaluation.
"""

from __future__ import annotations

import numpy as np

from facetalk.audio.features import Features
from facetalk.motion.controls import Controls
from facetalk.motion.eyes import eye_curves
from facetalk.motion.head import head_curves
from facetalk.motion.mouth import mouth_curves
from facetalk.motion.track import MotionTrack

BROW_ON_ONSET = 0.25  # browInnerUp at a strong loud onset


def generate(features: Features, controls: Controls) -> MotionTrack:
    rng = np.random.default_rng(controls.seed)
    head = head_curves(features, rng, controls.motion_intensity)
    eyes = eye_curves(features, rng, controls.blink)
    curves = {**mouth_curves(features), **head, **eyes}
    # Eyes keep looking at the camera while the head moves (they counter-rotate).
    curves["gazeYaw"] = curves["gazeYaw"] - head["yaw"]
    curves["gazePitch"] = curves["gazePitch"] - head["pitch"]
    loud = features.loudness.astype(np.float64)
    rise = np.clip(np.diff(loud, prepend=loud[:1]), 0, None)
    window = np.hanning(max(3, int(0.5 * features.fps)))
    brows = np.convolve(rise, window, mode="full")[len(window) // 2:][: len(rise)]  # same length as rise
    curves["browInnerUp"] = np.clip(brows * BROW_ON_ONSET, 0, 0.4)
    track = MotionTrack.neutral(len(features), features.fps)
    return track.with_columns(**{k: np.asarray(v, np.float32) for k, v in curves.items()})
