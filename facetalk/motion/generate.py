"""Audio features + controls -> MotionTrack: the layers summed into one holistic motion.

The generator is an interface (`generate(features, controls) -> MotionTrack`): a learned model
can replace these layers later and be judged by the same evaluation.

Every layer is causal with LOOKAHEAD_FRAMES of lookahead and carries its state from chunk to
chunk, so `MotionGenerator` gives a live stream the same motion, frame for frame, as `generate`
gives the whole file (for the same features: a stream's features are running estimates).
"""

from __future__ import annotations

import numpy as np

from facetalk.audio.features import Features
from facetalk.audio.phones import silence_between
from facetalk.motion.brows import BrowMotion
from facetalk.motion.controls import ControlTrack, Controls, control_curves, with_expression_offsets
from facetalk.motion.eyes import EyeMotion
from facetalk.motion.expressions import SmileMotion
from facetalk.motion.head import HeadMotion
from facetalk.motion.listening import ListeningMotion
from facetalk.motion.mouth import MouthMotion
from facetalk.motion.rhythm import RhythmTracker
from facetalk.motion.track import MotionTrack

GAZE_MAX_DEG = 35.0  # the eyes' reach in their sockets
LOOKAHEAD_FRAMES = 1  # motion for frame i is made once the features of frame i + 1 are known


class MotionGenerator:
    """Features in, chunk by chunk; motion out, LOOKAHEAD_FRAMES behind. `finish` flushes."""

    def __init__(self, controls: Controls | ControlTrack, fps: float) -> None:
        self.controls = ControlTrack.of(controls)
        self.fps = fps
        head_rng, eye_rng, smile_rng, listen_rng = np.random.default_rng(self.controls.seed).spawn(4)
        self.head = HeadMotion(fps, head_rng)
        self.eyes = EyeMotion(fps, eye_rng)
        self.brows = BrowMotion(fps)
        self.smiles = SmileMotion(fps, smile_rng)
        self.rhythm = RhythmTracker(fps)
        self.mouth = MouthMotion(fps)
        self.listening = ListeningMotion(fps, listen_rng)
        self.hush = (0.0, 0.0)  # s: sound dropped by an interruption, read as silence by the lips
        self.pending: Features | None = None  # features of frames not yet made (the lookahead)
        self.frame = 0  # index of the next frame to make

    def push(self, features: Features) -> MotionTrack:
        buf = features if self.pending is None else self.pending.then(features)
        keep = min(LOOKAHEAD_FRAMES, len(buf))
        self.pending = buf.frames(len(buf) - keep, len(buf))
        return self._make(buf.frames(0, len(buf) - keep), buf.frames(len(buf) - keep, len(buf)))

    def finish(self) -> MotionTrack:
        """The last frames, with silence after them as their lookahead."""
        if self.pending is None or len(self.pending) == 0:
            return MotionTrack.neutral(0, self.fps)
        buf, self.pending = self.pending, None
        return self._make(buf, _silence(1, buf))

    def interrupt(self, until_s: float) -> None:
        """The sound up to `until_s` (s from the stream's start) that no frame has shown yet is
        dropped: the held-back frames go silent and the lips read it as silence, so the mouth closes
        as it does at the end of a phrase, while the head, brows and smiles glide on as in any pause."""
        if self.pending is not None:
            self.pending = _silence(len(self.pending), self.pending)
        self.hush = (self.frame / self.fps, until_s)

    def _make(self, f: Features, ahead: Features) -> MotionTrack:
        n = len(f)
        if n == 0:
            return MotionTrack.neutral(0, self.fps)
        c = control_curves(self.controls, n, self.fps, first=self.frame)
        pitch = f.pitch_hz if f.pitch_hz is not None else np.zeros(n)
        next_pitch = float(ahead.pitch_hz[0]) if ahead.pitch_hz is not None else 0.0
        moving = 1.0 - c.pose_lock
        rhythm = self.rhythm.run(f.active)  # phrases and engagement, shared by head, brows and smiles
        listen = self.listening.run(f.active)
        head = self.head.run(rhythm, f.loudness, float(ahead.loudness[0]))
        gain = c.motion_intensity * c.head_gain * moving
        head = {k: (v + listen[k]) * gain for k, v in head.items()}
        head["pitch"] = head["pitch"] + c.head_pitch * moving
        eyes = self.eyes.run(f.active, float(ahead.active[0]))
        for lid in ("eyeBlinkL", "eyeBlinkR"):
            eyes[lid] = eyes[lid] * c.blink
        brows = self.brows.run(pitch, f.loudness, next_pitch, float(ahead.loudness[0]), rhythm, c.brow_gain)
        smiles = self.smiles.run(rhythm, pitch, c.smile_gain, listen["smile"] * np.minimum(c.smile_gain, 1.5))
        shut = np.maximum(eyes["eyeBlinkL"], eyes["eyeBlinkR"])
        brows["eyeWide"] = brows["eyeWide"] * (1.0 - shut)  # a blink shuts the lids however wide they were
        phones = f.phones if f.phones is None or self.hush[1] <= self.hush[0] else silence_between(f.phones, *self.hush)
        curves = {**self.mouth.run(phones, f.loudness, f.brightness, f.active), **brows, **head, **eyes, **smiles}
        # The eyes hold the requested direction while the head moves: they counter-rotate (VOR).
        curves["gazeYaw"] = np.clip(eyes["gazeYaw"] + c.gaze_yaw - head["yaw"], -GAZE_MAX_DEG, GAZE_MAX_DEG)
        curves["gazePitch"] = np.clip(eyes["gazePitch"] + c.gaze_pitch - head["pitch"], -GAZE_MAX_DEG, GAZE_MAX_DEG)
        curves["scale"] = 1.0 / c.distance
        self.frame += n
        track = MotionTrack.neutral(n, self.fps).with_columns(**curves)
        return with_expression_offsets(track, c.expression)  # the emotion rides on top of the speech


def _silence(n: int, like: Features) -> Features:
    """n frames of silence, keeping `like`'s phones (timed from the stream's start)."""
    z = np.zeros(n, np.float32)
    return Features(like.fps, z, z, z, z, like.phones, z)


def generate(features: Features, controls: Controls | ControlTrack = Controls()) -> MotionTrack:
    g = MotionGenerator(controls, features.fps)
    return MotionTrack.concat([g.push(features), g.finish()])
