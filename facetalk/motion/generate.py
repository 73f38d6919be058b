"""Audio features + controls -> MotionTrack: the layers summed into one holistic motion.

The generator is an interface (`generate(features, controls) -> MotionTrack`): a learned model
can replace these layers later and be judged by the same evaluation.
"""

from __future__ import annotations

import numpy as np

from facetalk.audio.features import Features
from facetalk.motion.brows import brow_curves
from facetalk.motion.controls import ControlTrack, Controls, control_curves, with_expression_offsets
from facetalk.motion.eyes import eye_curves
from facetalk.motion.head import head_curves
from facetalk.motion.mouth import mouth_curves
from facetalk.motion.track import MotionTrack

GAZE_MAX_DEG = 35.0  # the eyes' reach in their sockets


def generate(features: Features, controls: Controls | ControlTrack = Controls()) -> MotionTrack:
    n = len(features)
    c = control_curves(controls, n, features.fps)
    rng = np.random.default_rng(ControlTrack.of(controls).seed)
    moving = 1.0 - c.pose_lock
    head = head_curves(features, rng, c.motion_intensity * c.head_gain * moving)
    head["pitch"] = head["pitch"] + c.head_pitch * moving
    eyes = eye_curves(features, rng, c.blink)
    curves = {**mouth_curves(features), **brow_curves(features), **head, **eyes}
    # The eyes hold the requested direction while the head moves: they counter-rotate (VOR).
    curves["gazeYaw"] = np.clip(eyes["gazeYaw"] + c.gaze_yaw - head["yaw"], -GAZE_MAX_DEG, GAZE_MAX_DEG)
    curves["gazePitch"] = np.clip(eyes["gazePitch"] + c.gaze_pitch - head["pitch"], -GAZE_MAX_DEG, GAZE_MAX_DEG)
    curves["scale"] = 1.0 / c.distance
    track = MotionTrack.neutral(n, features.fps).with_columns(**curves)
    return with_expression_offsets(track, c.expression)  # the emotion rides on top of the speech
