"""User controls of the generated motion: one dataclass for a whole clip, or keyframes over time.

The same names are used everywhere (CLI flags, API fields, the live session): gaze, distance,
emotion, motion_intensity, blink, pose_lock, seed. Keyframed controls are interpolated linearly
between their times, so a change in a live session blends in instead of snapping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facetalk.motion.emotion import expression_gains, expression_offset, head_offsets, parse_emotion
from facetalk.motion.track import EXPRESSIONS, MotionTrack

GAZE_LIMIT_DEG = (30.0, 20.0)  # |yaw|, |pitch| the eyes can be asked to hold without the head
DISTANCE_RANGE = (0.5, 2.0)


@dataclass(frozen=True)
class Controls:
    """How the generated face should behave.

    seed: the same seed and audio give the same motion.
    motion_intensity: scales head motion (0 = still head, 1 = natural, up to 3 = lively).
    blink: whether the eyes blink.
    gaze: (yaw, pitch) in degrees the eyes look at, relative to the camera (+yaw: the subject's
        left, the image right; +pitch: up). (0, 0) = into the camera.
    distance: head-to-camera distance relative to the photo's (0.8 = closer, 1.3 = farther).
    emotion: "NAME" or "NAME:INTENSITY" (neutral, happy, sad, angry, surprised; intensity 0..1.5).
    pose_lock: the head keeps the photo's pose (no turns, nods or emotion tilt).
    """

    seed: int = 0
    motion_intensity: float = 1.0
    blink: bool = True
    gaze: tuple[float, float] = (0.0, 0.0)
    distance: float = 1.0
    emotion: str = "neutral"
    pose_lock: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.motion_intensity <= 3.0:
            raise ValueError(f"motion_intensity must be within 0..3, got {self.motion_intensity}")
        if len(self.gaze) != 2 or abs(self.gaze[0]) > GAZE_LIMIT_DEG[0] or abs(self.gaze[1]) > GAZE_LIMIT_DEG[1]:
            raise ValueError(f"gaze must be (yaw, pitch) within ±{GAZE_LIMIT_DEG[0]:g}°, ±{GAZE_LIMIT_DEG[1]:g}°, "
                             f"got {self.gaze}")
        if not DISTANCE_RANGE[0] <= self.distance <= DISTANCE_RANGE[1]:
            raise ValueError(f"distance must be within {DISTANCE_RANGE[0]:g}..{DISTANCE_RANGE[1]:g}, got {self.distance}")
        parse_emotion(self.emotion)


@dataclass(frozen=True)
class ControlTrack:
    """Controls that change over time: (seconds, Controls) keyframes, interpolated linearly between
    them and held before the first and after the last. The seed is the first keyframe's."""

    keys: tuple[tuple[float, Controls], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a ControlTrack needs at least one keyframe")
        times = [t for t, _ in self.keys]
        if any(b < a for a, b in zip(times, times[1:])):
            raise ValueError("ControlTrack keyframes must be in time order")

    @staticmethod
    def of(controls: "Controls | ControlTrack | Sequence[tuple[float, Controls]]") -> "ControlTrack":
        if isinstance(controls, ControlTrack):
            return controls
        if isinstance(controls, Controls):
            return ControlTrack(((0.0, controls),))
        return ControlTrack(tuple((float(t), c) for t, c in controls))

    @property
    def seed(self) -> int:
        return self.keys[0][1].seed


@dataclass(frozen=True)
class ControlCurves:
    """The controls sampled at every video frame (what the generator's layers read)."""

    motion_intensity: np.ndarray  # (T,)
    blink: np.ndarray  # (T,) 1 = blinks allowed
    gaze_yaw: np.ndarray  # (T,) degrees
    gaze_pitch: np.ndarray
    distance: np.ndarray
    pose_lock: np.ndarray  # (T,) 1 = the head holds the photo's pose
    head_gain: np.ndarray  # (T,) from the emotion
    head_pitch: np.ndarray  # (T,) degrees, from the emotion
    expression: np.ndarray  # (T, len(EXPRESSIONS)) emotion offsets
    smile_gain: np.ndarray  # (T,) speech-driven smiles, from the emotion
    brow_gain: np.ndarray  # (T,) speech-driven brow raises, from the emotion


def control_curves(controls: Controls | ControlTrack, n: int, fps: float, first: int = 0) -> ControlCurves:
    """The controls at frames first .. first+n-1."""
    track = ControlTrack.of(controls)
    times = np.array([t for t, _ in track.keys])
    t = (first + np.arange(n)) / fps

    def curve(values: list[float]) -> np.ndarray:
        return np.interp(t, times, np.asarray(values, np.float64))

    ks = [c for _, c in track.keys]
    emotions = [parse_emotion(c.emotion) for c in ks]
    heads = [head_offsets(*e) for e in emotions]
    gains = [expression_gains(*e) for e in emotions]
    offsets = np.stack([expression_offset(*e) for e in emotions])  # (K, E)
    expression = np.stack([curve(list(offsets[:, j])) for j in range(len(EXPRESSIONS))], axis=1)
    return ControlCurves(
        motion_intensity=curve([c.motion_intensity for c in ks]), blink=curve([float(c.blink) for c in ks]),
        gaze_yaw=curve([c.gaze[0] for c in ks]), gaze_pitch=curve([c.gaze[1] for c in ks]),
        distance=curve([c.distance for c in ks]), pose_lock=curve([float(c.pose_lock) for c in ks]),
        head_gain=curve([h[0] for h in heads]), head_pitch=curve([h[1] for h in heads]),
        expression=expression, smile_gain=curve([g[0] for g in gains]), brow_gain=curve([g[1] for g in gains]),
    )


def with_expression_offsets(track: MotionTrack, offsets: np.ndarray) -> MotionTrack:
    """The track with (T, len(EXPRESSIONS)) offsets (an emotion's) laid over its expression, each
    coefficient kept in its range (mouthClose may reach -1 to part the lips, the others 0..1)."""
    curves = {}
    for j, name in enumerate(EXPRESSIONS):
        if np.any(offsets[:, j]):
            lo = -1.0 if name == "mouthClose" else 0.0
            curves[name] = np.clip(track.column(name) + offsets[:, j], lo, 1.0)
    return track.with_columns(**curves)
