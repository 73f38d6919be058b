"""What the measuring code sees in one clip, frame by frame: the data every metric is computed from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClipSeries:
    """Per-frame measurements of one video (real or generated), NaN where no face was found.

    Real and generated clips go through the same code, so the two are comparable number for number.
    """

    name: str
    times: np.ndarray  # (T,) display time of each frame, s
    fps: float  # frames / duration (a variable-rate clip gets its average)
    size: tuple[int, int]  # (width, height) of the frames, px
    landmarks: np.ndarray  # (T, 68, 2) dlib's 68 points, px
    mouth: np.ndarray  # (T,) inner-lip gap / face height
    angles: np.ndarray  # (T, 3) yaw, pitch, roll, degrees
    ear: np.ndarray  # (T,) eye aspect ratio, mean of both eyes
    blinks: np.ndarray  # (B,) frame indices where a blink is deepest
    envelope: np.ndarray  # (T,) speech-band (200-4000 Hz) loudness, dB
    gaze: np.ndarray  # (T, 2) iris offset from the eye centre (MediaPipe), in eye widths

    def __len__(self) -> int:
        return len(self.times)

    @property
    def duration(self) -> float:
        return len(self.times) / self.fps
