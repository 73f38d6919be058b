"""Motion: the per-frame latent code of the face (pose, expression, gaze) and its time series.

A MotionTrack is a T x D float32 array with named columns and an explicit frame rate, so no stage
slices a flat vector by position. Pose is relative to the photo (0 = as photographed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POSE = ("yaw", "pitch", "roll", "tx", "ty", "scale")  # degrees, degrees, degrees, crop widths, -, x
EXPRESSIONS = (
    "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileL", "mouthSmileR",
    "mouthStretchL", "mouthStretchR", "mouthPress", "upperLipUp", "lowerLipDown",
    "eyeBlinkL", "eyeBlinkR", "eyeWide", "eyeSquint", "browInnerUp", "browOuterUpL",
    "browOuterUpR", "browDownL", "browDownR", "cheekRaise", "mouthFrownL", "mouthFrownR",
)  # each 0..1 (mouthClose may go to -1 to part lips); fields in face/basis.py
GAZE = ("gazeYaw", "gazePitch")  # degrees of the eyeballs relative to the head
COLUMNS = POSE + EXPRESSIONS + GAZE
_INDEX = {name: i for i, name in enumerate(COLUMNS)}
_EXPR = slice(len(POSE), len(POSE) + len(EXPRESSIONS))


@dataclass(frozen=True)
class Motion:
    """One frame of motion."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    tx: float = 0.0
    ty: float = 0.0
    scale: float = 1.0
    expression: np.ndarray | None = None  # (len(EXPRESSIONS),) in EXPRESSIONS order
    gaze_yaw: float = 0.0
    gaze_pitch: float = 0.0

    def expressions(self) -> np.ndarray:
        if self.expression is None:
            return np.zeros(len(EXPRESSIONS), np.float32)
        return self.expression

    @staticmethod
    def neutral() -> "Motion":
        return Motion()


@dataclass(frozen=True)
class MotionTrack:
    """T frames of motion at `fps`; `values[:, COLUMNS.index(name)]` is one named curve."""

    values: np.ndarray  # (T, len(COLUMNS)) float32
    fps: float

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[1] != len(COLUMNS):
            raise ValueError(f"expected (T, {len(COLUMNS)}) values, got {self.values.shape}")
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")

    @staticmethod
    def neutral(n_frames: int, fps: float) -> "MotionTrack":
        values = np.zeros((n_frames, len(COLUMNS)), np.float32)
        values[:, _INDEX["scale"]] = 1.0
        return MotionTrack(values, fps)

    def __len__(self) -> int:
        return self.values.shape[0]

    @property
    def duration(self) -> float:
        return len(self) / self.fps

    def column(self, name: str) -> np.ndarray:
        return self.values[:, _INDEX[name]]

    def with_columns(self, **curves: np.ndarray | float) -> "MotionTrack":
        """A copy with the named columns replaced (arrays of length T or scalars)."""
        values = self.values.copy()
        for name, curve in curves.items():
            values[:, _INDEX[name]] = curve
        return MotionTrack(values, self.fps)

    @staticmethod
    def concat(tracks: "list[MotionTrack]") -> "MotionTrack":
        return MotionTrack(np.concatenate([t.values for t in tracks]), tracks[0].fps)

    def slice(self, start: int, stop: int) -> "MotionTrack":
        return MotionTrack(self.values[start:stop], self.fps)

    def frame(self, i: int) -> Motion:
        v = self.values[i]
        return Motion(
            yaw=float(v[0]), pitch=float(v[1]), roll=float(v[2]), tx=float(v[3]), ty=float(v[4]),
            scale=float(v[5]), expression=v[_EXPR], gaze_yaw=float(v[_INDEX["gazeYaw"]]),
            gaze_pitch=float(v[_INDEX["gazePitch"]]),
        )
